"""The database: connections, pools, roles (`pool`) and the schema migrations (`migrate`)."""

from service.db.pool import (
           EMBEDDED_DB,
           EMBEDDED_OWNER,
           Database,
           connect,
           embedded,
           ensure_roles_and_database,
           first_line,
           make_pool,
           resolve,
           role_of,
           url,
)

__all__ = ["EMBEDDED_DB", "EMBEDDED_OWNER", "Database", "connect", "embedded", "ensure_roles_and_database",
           "first_line", "make_pool", "resolve", "role_of", "url"]
