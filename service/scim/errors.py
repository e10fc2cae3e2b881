"""SCIM errors (RFC 7644 §3.12): one class per scimType (and per status that has none), as scim2-models has them.

Raise the class that says what went wrong (`raise InvalidValue("userName is too long")`); the class carries
the HTTP status and scimType, so no call site spells them and no two spell them differently.
"""


class ScimError(Exception):
    """A SCIM error response: status, scimType, detail. Use a subclass; this one is a plain 400."""

    status: int = 400
    scim_type: str | None = None

    def __init__(self, detail: str, *, status: int | None = None, scim_type: str | None = None):
        """status and scim_type override the class's, for errors that come from outside SCIM (HTTP, input checks)."""
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        if scim_type is not None:
            self.scim_type = scim_type

    def body(self) -> dict:
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": str(self.status),
                "detail": self.detail}
        if self.scim_type:
            body["scimType"] = self.scim_type
        return body


# -- 400 with a scimType (RFC 7644 §3.12 Table 9) --


class InvalidFilter(ScimError, ValueError):
    """The filter syntax was invalid, or the attribute and operator do not go together."""

    scim_type = "invalidFilter"


class TooMany(ScimError):
    """The filter asks for more than this server evaluates."""

    scim_type = "tooMany"


class Mutability(ScimError):
    """An attempt to change an attribute its mutability does not allow (readOnly, id, a required one removed)."""

    scim_type = "mutability"


class InvalidSyntax(ScimError):
    """The request body is not a SCIM message of the expected shape (or not JSON)."""

    scim_type = "invalidSyntax"


class InvalidPath(ScimError):
    """A PATCH path that names no attribute of the schema."""

    scim_type = "invalidPath"


class NoTarget(ScimError):
    """A PATCH path whose value filter matched nothing, or a remove without a path."""

    scim_type = "noTarget"


class InvalidValue(ScimError):
    """A missing required value, a value of the wrong type, too long, or holding a control character."""

    scim_type = "invalidValue"


class InvalidVersion(ScimError):
    scim_type = "invalidVers"


class Sensitive(ScimError):
    scim_type = "sensitive"


# -- statuses without a scimType, and 409 uniqueness --


class Forbidden(ScimError):
    """The client may not act on this resource (e.g. another client's person, with ownership on)."""

    status = 403


class NotFound(ScimError):
    status = 404


class Uniqueness(ScimError):
    """A value that must be unique is taken (userName, externalId, employeeNumber, a group's displayName)."""

    status = 409
    scim_type = "uniqueness"


class PreconditionFailed(ScimError):
    """If-Match named another version of the resource."""

    status = 412


class UnsupportedMediaType(ScimError):
    status = 415
    scim_type = "invalidSyntax"


_BY_TYPE = {cls.scim_type: cls for cls in (InvalidFilter, TooMany, Mutability, InvalidSyntax, InvalidPath, NoTarget,
                                           InvalidValue, InvalidVersion, Sensitive, Uniqueness)}


def of_type(scim_type: str) -> type[ScimError]:
    """The class for a scimType (the 400 ones and uniqueness)."""
    return _BY_TYPE[scim_type]
