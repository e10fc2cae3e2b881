"""A database migrated only up to a version, to test a later migration on the rows an older schema held."""

from service.db import migrate


def migrate_before(database, version: int, monkeypatch) -> list:
    """Apply the shipped migrations older than `version`; migrate.migrate() afterwards applies the rest.

    The app role's grants (sql/grants.sql) name tables of every migration, so they wait for the full run.
    """
    shipped = migrate.available()
    with monkeypatch.context() as m:
        m.setattr(migrate, "available", lambda: [s for s in shipped if s.version < version])
        m.setattr(migrate, "_grant", lambda conn, app_role: None)
        return migrate.migrate(database)
