"""One place that builds the service's parts from the settings."""

import dataclasses
from pathlib import Path

from psycopg_pool import ConnectionPool

from policies import Policy, parse_policy
from service import db
from service.auth.refusals import RefusalTally
from service.auth.tokens import TokenCache
from service.config import Settings, load_settings
from service.errors import ConfigError
from service.journal import JournalWriter


@dataclasses.dataclass
class Services:
    """The long-lived parts a request or job uses."""

    settings: Settings
    database: db.Database
    pool: ConnectionPool
    journal: JournalWriter
    policy: Policy
    tokens: TokenCache
    refusals: RefusalTally

    def close(self) -> None:
        """Write the anonymous refusals still counted, then stop the journal writer and the pool."""
        self.refusals.close()
        self.journal.close()
        self.pool.close()


def build(settings: Settings | None = None, database: db.Database | None = None, *,
          policy: Policy | None = None) -> Services:
    """Wire settings → policy, database → pool and journal writer (opened lazily, nothing connects yet)."""
    settings = settings or load_settings()
    policy = policy or load_policy(settings.policy_file)
    database = database or db.resolve(settings)
    pool = db.make_pool(database.app_url, size=settings.pool_size, timeout=settings.db_timeout)
    # One chain, one head lock: each batch holds it through its insert and fsync. Two flushers per process
    # overlap a batch's preparation with another's commit, but with several processes (gunicorn workers) the
    # others already do, and more flushers only split the queue into more, smaller batches waiting on the lock
    # (pg_stat_statements at 300 checks/s, 2 workers x 2 flushers: 1.3 rows a batch, 13 ms of lock wait a row).
    journal = JournalWriter(database.app_url, timeout=settings.db_timeout, flushers=1 if settings.workers > 1 else 2)
    return Services(settings=settings, database=database, pool=pool, journal=journal, policy=policy,
                    tokens=TokenCache(settings.token_cache_seconds), refusals=RefusalTally(journal))


def load_policy(path: Path) -> Policy:
    """Read and parse the policy file; PolicyError names the file and the key at fault."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ConfigError("GATEHOUSE_POLICY_FILE", f"cannot read {path}: {e.strerror}") from None
    return parse_policy(data, source=str(path))
