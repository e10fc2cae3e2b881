"""Migrations: in order, once, under a lock, recorded with checksums."""

import concurrent.futures
import re

import psycopg
import pytest

from service.db import migrate
from service.errors import MigrationError
from tests.support.cli import db_env, gatehouse
from tests.support.migrations import migrate_before


def _applied(url):
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT version, checksum FROM schema_migrations ORDER BY version").fetchall()


def _schema(url):
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT table_name, column_name, data_type FROM information_schema.columns "
                            "WHERE table_schema = 'public' ORDER BY 1, 2").fetchall()


def test_applies_every_file_in_order_then_nothing(empty_database):
    done = migrate.migrate(empty_database)
    assert [m.version for m in done] == [m.version for m in migrate.available()]
    before = (_applied(empty_database.owner_url), _schema(empty_database.owner_url))
    assert migrate.migrate(empty_database) == []
    assert (_applied(empty_database.owner_url), _schema(empty_database.owner_url)) == before


def test_two_processes_migrating_at_once_both_succeed_and_apply_each_file_once(empty_database):
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: gatehouse("db", "migrate", env=db_env(empty_database)), range(2)))
    assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
    assert sorted(r.stdout.splitlines()[-1] for r in runs) == sorted(
        [f"{len(migrate.available())} migration(s) applied", "up to date"])
    assert [v for v, _ in _applied(empty_database.owner_url)] == [m.version for m in migrate.available()]


def test_status_reports_pending_then_current(empty_database):
    pending = gatehouse("db", "status", env=db_env(empty_database))
    assert pending.returncode == 1 and "pending 001_core" in pending.stdout
    migrate.migrate(empty_database)
    current = gatehouse("db", "status", env=db_env(empty_database))
    assert current.returncode == 0 and "applied 002_journal" in current.stdout


def test_a_changed_file_is_refused(database):
    with psycopg.connect(database.owner_url) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1")
        with pytest.raises(MigrationError, match="changed after it was applied"):
            migrate.status(conn)


def test_a_failing_migration_rolls_back_and_is_not_recorded(empty_database, monkeypatch):
    broken = migrate.Migration(1, "broken", "CREATE TABLE half_done (x int); SELECT 1/0;")
    monkeypatch.setattr(migrate, "available", lambda: [broken])
    with pytest.raises(MigrationError, match="001_broken.sql failed: division by zero"):
        migrate.migrate(empty_database)
    with psycopg.connect(empty_database.owner_url) as conn:
        assert conn.execute("SELECT to_regclass('half_done')").fetchone() == (None,)
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (0,)


def test_migration_files_never_import_application_code():
    python_import = re.compile(r"^\s*(import|from)\s+[\w.]+(\s+import\b|\s*$)", re.MULTILINE)
    for m in migrate.available():
        assert not python_import.search(m.text), m.name


def test_012_stops_on_shared_primary_emails_with_their_list_and_drops_nobody(empty_database, monkeypatch):
    migrate_before(empty_database, 12, monkeypatch)
    people = [("ann", "Ann@Example.com", False), ("ann2", "ann@example.COM", False), ("ann3", "ANN@example.com", False),
              ("bo", "bo@example.com", False), ("bo2", "bo@example.com", False),
              ("cy", "cy@example.com", False), ("cy-old", "cy@example.com", True),  # a deleted one may share
              ("dee", None, False), ("dee2", None, False)]
    with psycopg.connect(empty_database.owner_url) as conn:
        for user_name, email, deleted in people:
            conn.execute("INSERT INTO people (user_name, primary_email, source, active, deleted_at) "
                         "VALUES (%s, %s, 'manual', %s, CASE WHEN %s THEN now() END)",
                         (user_name, email, not deleted, deleted))
    with pytest.raises(MigrationError) as e:
        migrate.migrate(empty_database)
    assert "012_" in str(e.value) and "migrate again; 2 shared: " in str(e.value)
    assert "cy@example.com" not in str(e.value) and "dee" not in str(e.value)
    assert "ann@example.com: 3 people (ann, ann2, ann3)" in str(e.value)
    assert "bo@example.com: 2 people (bo, bo2)" in str(e.value)
    with psycopg.connect(empty_database.owner_url) as conn:
        assert conn.execute("SELECT count(*) FROM people").fetchone() == (len(people),)  # nobody dropped
        assert conn.execute("SELECT to_regclass('people_primary_email_key')").fetchone() == (None,)
        assert 12 not in [v for v, in conn.execute("SELECT version FROM schema_migrations")]
        conn.execute(
            "UPDATE people SET primary_email = user_name || '@example.com' WHERE user_name IN ('ann2', 'ann3', 'bo2')"
        )
    assert 12 in [m.version for m in migrate.migrate(empty_database)]
    with psycopg.connect(empty_database.owner_url) as conn, pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("INSERT INTO people (user_name, primary_email, source) VALUES ('eve', 'BO@example.com', 'manual')")


def test_012_lists_at_most_50_shared_emails_and_10_names_each_and_counts_the_rest(empty_database, monkeypatch):
    migrate_before(empty_database, 12, monkeypatch)
    with psycopg.connect(empty_database.owner_url) as conn:
        conn.execute("INSERT INTO people (user_name, primary_email, source) SELECT 'p' || i || '-' || k, "
                     "'shared' || lpad(i::text, 2, '0') || '@example.com', 'manual' "
                     "FROM generate_series(1, 52) i, generate_series(1, 2) k")
        conn.execute("INSERT INTO people (user_name, primary_email, source) SELECT 'q' || lpad(k::text, 2, '0'), "
                     "'many@example.com', 'manual' FROM generate_series(1, 12) k")
    with pytest.raises(MigrationError) as e:
        migrate.migrate(empty_database)
    message = str(e.value)
    assert "53 shared: many@example.com: 12 people (q01, q02, q03, q04, q05, q06, q07, q08, q09, q10, ...); " \
           "shared01@example.com: 2 people (p1-1, p1-2); " in message
    assert "shared49@example.com" in message and "shared50@example.com" not in message
    assert message.endswith("; and 3 more")
