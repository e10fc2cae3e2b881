"""A downstream tool's SCIM 2.0 service provider (RFC 7644): deactivate and reactivate its user.

The user is found by a stored remote id, else by `filter=userName eq "..."` (§3.4.2.2); deactivation is
`PATCH active=false` (§3.5.2), reactivation `active=true`; the re-read is a GET of the user. A user the tool
does not have is done for a deactivation (already gone) and needs nothing for a reactivation (Gatehouse does
not create accounts in tools).
"""

import json
import urllib.error
import urllib.parse
import urllib.request

from connectors.outbound import DISABLE, Account, DeliveryError, Outcome, retry_after

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SCIM_JSON = "application/scim+json"


class ScimTarget:
    def __init__(self, url: str, token: str, *, timeout: float = 10):
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout

    def apply(self, op: str, account: Account, *, idempotency_key: str) -> Outcome:
        user = self._find(account)
        if user is None:
            return Outcome(None, {"remote": "absent"})
        want = op != DISABLE
        if user.get("active", True) is want:
            return Outcome(user["id"], {"remote": "already", "active": want})
        body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": want}]}
        status, _ = self._call("PATCH", f"/Users/{urllib.parse.quote(user['id'], safe='')}", body,
                               idempotency_key=idempotency_key, ok_404=op == DISABLE)
        return Outcome(user["id"], {"remote": "gone" if status == 404 else "patched", "status": status})

    def verify(self, op: str, account: Account) -> Outcome | None:
        user = self._find(account)
        if user is None:
            return Outcome(None, {"remote": "absent"})
        active = user.get("active", True)
        if active is (op != DISABLE):
            return Outcome(user["id"], {"active": active})
        return None

    def _find(self, account: Account) -> dict | None:
        if account.remote_id:
            status, user = self._call("GET", f"/Users/{urllib.parse.quote(account.remote_id, safe='')}", ok_404=True)
            if status != 404:
                return user
        if not account.user_name:
            raise DeliveryError("the person has no userName to look up", permanent=True)
        name = account.user_name.replace("\\", "\\\\").replace('"', '\\"')
        query = urllib.parse.urlencode({"filter": f'userName eq "{name}"'})
        _, found = self._call("GET", f"/Users?{query}")
        users = (found or {}).get("Resources") or []
        if len(users) > 1:
            raise DeliveryError(f"{len(users)} remote users have userName {account.user_name!r}", permanent=True)
        return users[0] if users else None

    def _call(self, method: str, path: str, body: dict | None = None, *, idempotency_key: str | None = None,
              ok_404: bool = False) -> tuple[int, dict | None]:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": SCIM_JSON}
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
            if e.code == 404 and ok_404:
                return 404, None
            raise DeliveryError(f"{method} {path.split('?')[0]}: HTTP {e.code}", status=e.code,
                                after=retry_after(e.headers.get("Retry-After")),
                                permanent=e.code in (400, 404)) from None
        except (OSError, ValueError) as e:  # refused, timed out, reset, not JSON
            raise DeliveryError(f"{method} {path.split('?')[0]}: {e}") from None
