"""SCIM errors (RFC 7644 §3.12): an HTTP status and, where one applies, a scimType."""


class ScimError(Exception):
    """A SCIM error response: status, scimType, detail."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type

    def body(self) -> dict:
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": str(self.status),
                "detail": self.detail}
        if self.scim_type:
            body["scimType"] = self.scim_type
        return body
