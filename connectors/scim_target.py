"""A downstream tool's SCIM 2.0 service provider (RFC 7644): deactivate and reactivate its user, or take the user
out of (and back into) one of its groups.

The user is found by a stored remote id, else by `filter=userName eq "..."` (§3.4.2.2); deactivation is
`PATCH active=false` (§3.5.2), reactivation `active=true`; the re-read is a GET of the user. With `group` set,
the target manages membership of the group of that displayName instead (a tool whose accounts serve other
resources too): PATCH remove `members[value eq "id"]`, add `members`; the re-read is the group's members. Each
operation reads first and changes only what differs, so a repeated delivery sends nothing (409 on an add =
already there, 404 on a removal = already gone). A user the tool does not have is done for a deactivation and
needs nothing for a reactivation (Gatehouse does not create accounts in tools).

The bearer token is static (token_file / token_env) or fetched with OAuth 2.0 client credentials (RFC 6749 §4.4,
authlib's client), kept until shortly before it expires and fetched again once when the tool answers 401.
"""

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from connectors.outbound import DISABLE, Account, DeliveryError, Outcome, retry_after

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SCIM_JSON = "application/scim+json"
EARLY = 30  # seconds before its expiry a token is no longer used


class ClientCredentials:
    """Bearer tokens from an OAuth 2.0 token endpoint by the client-credentials grant, cached per process."""

    _cache: dict[tuple, tuple[str, float]] = {}
    _lock = threading.Lock()

    def __init__(self, token_url: str, client_id: str, client_secret: str, *, scope: str | None = None,
                 timeout: float = 10):
        self.token_url, self.client_id, self.client_secret = token_url, client_id, client_secret
        self.scope, self.timeout = scope, timeout

    @property
    def _key(self) -> tuple:
        return self.token_url, self.client_id, self.client_secret, self.scope

    def token(self) -> str:
        with self._lock:
            cached = self._cache.get(self._key)
            if cached and cached[1] > time.time() + EARLY:
                return cached[0]
        from authlib.common.errors import AuthlibBaseError
        from authlib.integrations.requests_client import OAuth2Session
        from requests import RequestException

        try:
            with OAuth2Session(self.client_id, self.client_secret, scope=self.scope,
                               token_endpoint_auth_method="client_secret_basic") as session:
                got = session.fetch_token(self.token_url, grant_type="client_credentials", timeout=self.timeout)
        except (AuthlibBaseError, RequestException, ValueError) as e:
            raise DeliveryError(f"token {self.token_url}: {e}") from None
        access, expires = got.get("access_token"), got.get("expires_at") or time.time() + 300
        if not access:
            raise DeliveryError(f"token {self.token_url}: no access_token in the answer")
        with self._lock:
            self._cache[self._key] = (access, float(expires))
        return access

    def forget(self) -> None:
        with self._lock:
            self._cache.pop(self._key, None)


class ScimTarget:
    def __init__(self, url: str, token: "str | ClientCredentials", *, group: str | None = None,
                 timeout: float = 10):
        self.url, self.token, self.group, self.timeout = url.rstrip("/"), token, group, timeout

    def apply(self, op: str, account: Account, *, idempotency_key: str) -> Outcome:
        user = self._find(account)
        if user is None:
            return Outcome(None, {"remote": "absent"})
        want = op != DISABLE
        if self.group:
            return self._apply_membership(want, user["id"], idempotency_key)
        if user.get("active", True) is want:
            return Outcome(user["id"], {"remote": "already", "active": want})
        body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": want}]}
        status, _ = self._call("PATCH", f"/Users/{_quote(user['id'])}", body, idempotency_key=idempotency_key,
                               ok=(404,) if op == DISABLE else ())
        return Outcome(user["id"], {"remote": "gone" if status == 404 else "patched", "status": status})

    def verify(self, op: str, account: Account) -> Outcome | None:
        user = self._find(account)
        if user is None:
            return Outcome(None, {"remote": "absent"})
        want = op != DISABLE
        if self.group:
            member = user["id"] in _members(self._group())
            return Outcome(user["id"], {"member": member}) if member is want else None
        active = user.get("active", True)
        return Outcome(user["id"], {"active": active}) if active is want else None

    def key_of(self, account: Account) -> str:
        """How reconciliation names an account here: its userName, lower-cased."""
        return (account.user_name or "").lower()

    def holders(self) -> dict[str, Account]:
        """Who has access now: active users (or, with a group, its members), by lower-cased userName."""
        users = self._all_users()
        if self.group:
            inside = _members(self._group())
            return {k: a for k, (a, _active, rid) in users.items() if rid in inside}
        return {k: a for k, (a, active, _rid) in users.items() if active}

    def accounts(self) -> set[str]:
        """Every userName the tool has (Gatehouse re-adds access only to accounts that exist)."""
        return set(self._all_users())

    def _all_users(self, page: int = 100) -> dict[str, tuple[Account, bool, str]]:
        found: dict[str, tuple[Account, bool, str]] = {}
        start = 1
        while True:
            _, body = self._call("GET", f"/Users?{urllib.parse.urlencode({'startIndex': start, 'count': page})}")
            resources = (body or {}).get("Resources") or []
            for user in resources:
                name = str(user.get("userName") or "")
                found[name.lower()] = (Account("", name, remote_id=user.get("id")), user.get("active", True) is True,
                                       str(user.get("id")))
            start += len(resources)
            if not resources or start > int((body or {}).get("totalResults") or 0):
                return found

    def _apply_membership(self, want: bool, user_id: str, idempotency_key: str) -> Outcome:
        group = self._group()
        if (user_id in _members(group)) is want:
            return Outcome(user_id, {"remote": "already", "group": group["id"], "member": want})
        if want:
            change = {"op": "add", "path": "members", "value": [{"value": user_id}]}
        else:
            change = {"op": "remove", "path": f'members[value eq "{_escape(user_id)}"]'}
        status, _ = self._call("PATCH", f"/Groups/{_quote(group['id'])}", {"schemas": [PATCH_OP], "Operations": [
            change]}, idempotency_key=idempotency_key, ok=(409,) if want else (404,))
        return Outcome(user_id, {"remote": "patched" if status < 300 else "already", "group": group["id"],
                                 "status": status})

    def _group(self) -> dict:
        query = urllib.parse.urlencode({"filter": f'displayName eq "{_escape(self.group)}"'})
        _, found = self._call("GET", f"/Groups?{query}")
        groups = (found or {}).get("Resources") or []
        if len(groups) != 1:
            raise DeliveryError(f"{len(groups)} remote groups have displayName {self.group!r}, not one")
        group = groups[0]
        if "members" not in group:  # a list response may leave members out (§3.4.2.5): read the group itself
            _, group = self._call("GET", f"/Groups/{_quote(group['id'])}")
        return group or {}

    def _find(self, account: Account) -> dict | None:
        if account.remote_id:
            status, user = self._call("GET", f"/Users/{_quote(account.remote_id)}", ok=(404,))
            if status != 404:
                return user
        if not account.user_name:
            raise DeliveryError("the person has no userName to look up", permanent=True)
        query = urllib.parse.urlencode({"filter": f'userName eq "{_escape(account.user_name)}"'})
        _, found = self._call("GET", f"/Users?{query}")
        users = (found or {}).get("Resources") or []
        if len(users) > 1:
            raise DeliveryError(f"{len(users)} remote users have userName {account.user_name!r}", permanent=True)
        return users[0] if users else None

    def _call(self, method: str, path: str, body: dict | None = None, *, idempotency_key: str | None = None,
              ok: tuple[int, ...] = ()) -> tuple[int, dict | None]:
        try:
            return self._send(method, path, body, idempotency_key, ok)
        except _Unauthorized:
            if not isinstance(self.token, ClientCredentials):
                raise DeliveryError(f"{method} {path.split('?')[0]}: HTTP 401", status=401) from None
            self.token.forget()  # expired or revoked early: one new token, one more try
            try:
                return self._send(method, path, body, idempotency_key, ok)
            except _Unauthorized:
                raise DeliveryError(f"{method} {path.split('?')[0]}: HTTP 401 with a new token", status=401) from None

    def _send(self, method, path, body, idempotency_key, ok) -> tuple[int, dict | None]:
        token = self.token.token() if isinstance(self.token, ClientCredentials) else self.token
        headers = {"Authorization": f"Bearer {token}", "Accept": SCIM_JSON}
        if body is not None:
            headers["Content-Type"] = SCIM_JSON
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                text = answer.read()
                return answer.status, json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            e.close()
            if e.code in ok:
                return e.code, None
            if e.code == 401:
                raise _Unauthorized() from None
            raise DeliveryError(f"{method} {path.split('?')[0]}: HTTP {e.code}", status=e.code,
                                after=retry_after(e.headers.get("Retry-After")),
                                permanent=e.code in (400, 404)) from None
        except (OSError, ValueError) as e:  # refused, timed out, reset, not JSON
            raise DeliveryError(f"{method} {path.split('?')[0]}: {e}") from None


class _Unauthorized(Exception):
    pass


def _members(group: dict) -> set[str]:
    return {str(m.get("value")) for m in group.get("members") or [] if isinstance(m, dict)}


def _escape(value: str) -> str:
    """A string inside a SCIM filter's double quotes (RFC 7644 §3.4.2.2: JSON string rules)."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")
