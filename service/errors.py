"""The error tree: every error we raise on purpose, with its HTTP status and code.

Handlers map these to JSON problem bodies (RFC 9457), SCIM errors or a CLI line;
nothing else turns exceptions into responses.
"""


class GatehouseError(Exception):
    """Something went wrong."""

    status = 500
    code = "internal"
    headers: dict = {}

    def __init__(self, message: str | None = None):
        super().__init__(message or (self.__doc__ or self.code).strip())

    @property
    def message(self) -> str:
        return str(self.args[0])


class ConfigError(GatehouseError):
    """A setting is invalid."""

    status = 500
    code = "config"

    def __init__(self, setting: str, message: str):
        self.setting = setting
        super().__init__(f"{setting}: {message}")


class DatabaseUnavailable(GatehouseError):
    """The database cannot be reached."""

    status = 503
    code = "unavailable"


class JournalBroken(DatabaseUnavailable):
    """The journal's chain is broken; nothing is appended until an operator has looked."""


class MigrationError(GatehouseError):
    """The database schema cannot be brought up to date."""

    status = 500
    code = "migration"


class MigrationsPending(MigrationError):
    """The schema is behind this version: an operator runs `gatehouse db migrate`."""


class BadRequest(GatehouseError):
    """The request is malformed."""

    status = 400
    code = "bad_request"


class NotFound(GatehouseError):
    """No such thing."""

    status = 404
    code = "not_found"


class Conflict(GatehouseError):
    """The request conflicts with the current state."""

    status = 409
    code = "conflict"


class Skipped(GatehouseError):
    """The job had nothing it could do now."""

    status = 409
    code = "skipped"
