"""Real components for the tests: a PostgreSQL server, one migrated template, a fresh database per test.

The server: GATEHOUSE_TEST_DATABASE_URL (a superuser URL) if set; else a
testcontainers PostgreSQL when a Docker engine answers; else an embedded
pgserver under /tmp (pgserver opens permissions on every parent directory).
"""

import gc
import itertools
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from service import db
from service.config import Settings
from service.db import migrate

OWNER, APP, TEMPLATE = "gatehouse_test_owner", "gatehouse_test_app", "gatehouse_test_template"
_names = itertools.count(1)


def _docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=2)
    except Exception:  # no engine, no socket, no permission: all mean "no"
        client = None
    if client is None:
        # A client that failed in its constructor leaves its unix socket, in a cycle with the traceback, to the
        # garbage collector: collect it now, quietly, not in whichever later test the collector happens to run
        # (where "error" makes its ResourceWarning fail that test).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
        return False
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        client.close()  # else its socket is left for the garbage collector, a ResourceWarning under "error"


@pytest.fixture(scope="session")
def pg_superuser():
    """A superuser URL on a real PostgreSQL server for the whole test session."""
    given = os.environ.get("GATEHOUSE_TEST_DATABASE_URL")
    if given:
        yield given
        return
    if _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as pg:
            yield pg.get_connection_url()
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
    pgdata = Path(tempfile.mkdtemp(prefix="gatehouse-test-pg-", dir="/tmp"))
    server = pgserver.get_server(pgdata, cleanup_mode="delete")
    info = server.get_postmaster_info()
    yield db.url(host=str(info.socket_dir), port=info.port, dbname="postgres", user="postgres")
    server.cleanup()
    shutil.rmtree(pgdata, ignore_errors=True)


def _at(superuser_url: str, dbname: str, user: str) -> str:
    """The same server as superuser_url, another database and role (trust or same password)."""
    info = psycopg.conninfo.conninfo_to_dict(superuser_url)
    return db.url(host=info.get("host") or "127.0.0.1", port=info.get("port") or 5432, dbname=dbname,
                  user=user, password=info.get("password"))


@pytest.fixture(scope="session")
def pg_template(pg_superuser):
    """A migrated template database and the two roles (owner, app)."""
    with psycopg.connect(pg_superuser, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TEMPLATE)))
    password = psycopg.conninfo.conninfo_to_dict(pg_superuser).get("password")
    db.ensure_roles_and_database(pg_superuser, owner=OWNER, app=APP, dbname=TEMPLATE, password=password)
    database = db.Database(owner_url=_at(pg_superuser, TEMPLATE, OWNER), app_url=_at(pg_superuser, TEMPLATE, APP),
                           app_role=APP)
    migrate.migrate(database)
    return database


@pytest.fixture
def database(pg_superuser, pg_template) -> db.Database:
    """A fresh, migrated database for one test, dropped afterwards."""
    name = f"gatehouse_t{os.getpid()}_{next(_names)}"
    with psycopg.connect(pg_superuser, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
            sql.Identifier(name), sql.Identifier(TEMPLATE), sql.Identifier(OWNER)))
        conn.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
            sql.Identifier(name), sql.Identifier(APP)))
    yield db.Database(owner_url=_at(pg_superuser, name, OWNER), app_url=_at(pg_superuser, name, APP), app_role=APP)
    with psycopg.connect(pg_superuser, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def empty_database(pg_superuser) -> db.Database:
    """A database with the roles but no schema yet."""
    name = f"gatehouse_e{os.getpid()}_{next(_names)}"
    db.ensure_roles_and_database(pg_superuser, owner=OWNER, app=APP, dbname=name)
    yield db.Database(owner_url=_at(pg_superuser, name, OWNER), app_url=_at(pg_superuser, name, APP), app_role=APP)
    with psycopg.connect(pg_superuser, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def superuser(pg_superuser, database) -> str:
    """A superuser URL on this test's database."""
    info = psycopg.conninfo.conninfo_to_dict(pg_superuser)
    return _at(
        pg_superuser, psycopg.conninfo.conninfo_to_dict(database.app_url)["dbname"], info.get("user") or "postgres"
    )


@pytest.fixture
def settings(database, tmp_path) -> Settings:
    return Settings(database_url=database.app_url, database_owner_url=database.owner_url, data_dir=tmp_path,
                    log_level="WARNING", db_timeout=3.0, token_cache_seconds=0)


@pytest.fixture
def services(settings, database):
    from service import bootstrap

    built = bootstrap.build(settings, database)
    yield built
    built.close()


@pytest.fixture
def app(services):
    from service.app import create_app

    return create_app(services=services)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(autouse=True)
def _root_logging_restored():
    """A test that configures logging (logs.configure) leaves the root logger as it found it.

    Else its handler keeps writing to that test's captured stderr, closed once the test ends: a record from a
    server thread of a later test (aiosmtpd's "connection lost") then fails in the handler, and the traceback
    logging prints for it races the main thread in CPython 3.11's ast (SystemError: AST constructor recursion
    depth mismatch, seen as a pytest INTERNALERROR).
    """
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def host_of(url: str) -> str:
    return urlsplit(url).hostname or ""


# Fixtures shared across the tree, defined with their helpers in tests/support: registered once here rather than
# imported (and re-exported) by each test module.
pytest_plugins = ["tests.support.net", "tests.support.admin", "tests.support.ldap", "tests.support.samba",  # net first
                  "tests.support.smtpserver", "tests.support.training", "tests.support.oidc",
                  "tests.support.stoppable"]  # (the others import it)
