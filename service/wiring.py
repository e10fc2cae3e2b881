"""One place that builds the service's parts from the settings."""

import dataclasses

from psycopg_pool import ConnectionPool

from . import db
from .config import Settings, load_settings
from .journal import JournalWriter


@dataclasses.dataclass
class Services:
    """The long-lived parts a request or job uses."""

    settings: Settings
    database: db.Database
    pool: ConnectionPool
    journal: JournalWriter

    def close(self) -> None:
        self.journal.close()
        self.pool.close()


def build(settings: Settings | None = None, database: db.Database | None = None) -> Services:
    """Wire settings → database → pool and journal writer (opened lazily, nothing connects yet)."""
    settings = settings or load_settings()
    database = database or db.resolve(settings)
    pool = db.make_pool(database.app_url, size=settings.pool_size, timeout=settings.db_timeout)
    journal = JournalWriter(database.app_url, timeout=settings.db_timeout)
    return Services(settings=settings, database=database, pool=pool, journal=journal)
