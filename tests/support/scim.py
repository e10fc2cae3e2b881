"""A SCIM client against the real endpoints, authenticated with a static token as Okta or Entra would be."""

import json

import psycopg

from service.clients import store as clients


class Scim:
    """Thin helper: JSON in, (status, json body, response) out."""

    def __init__(self, http, token: str):
        self.http, self.token = http, token

    def call(self, method: str, path: str, body=None, *, content_type="application/scim+json", headers=None,
             raw: bytes | None = None, token: str | None = ...):
        h = {"Content-Type": content_type, **(headers or {})}
        bearer = self.token if token is ... else token
        if bearer:
            h["Authorization"] = f"Bearer {bearer}"
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        r = self.http.open(path if path.startswith("/") else "/scim/v2/" + path, method=method, data=data, headers=h)
        parsed = json.loads(r.data) if r.data else None
        return r.status_code, parsed, r

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.call("POST", path, body, **kw)

    def put(self, path, body, **kw):
        return self.call("PUT", path, body, **kw)

    def patch(self, path, body, **kw):
        return self.call("PATCH", path, body, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)


def make_token(database, name: str, scopes=("scim",)) -> str:
    with psycopg.connect(database.app_url) as conn:
        clients.create(conn, name=name, scopes=scopes, created_by="test")
        return clients.issue_static_token(conn, name).secret



PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def patch_op(*operations) -> dict:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}
