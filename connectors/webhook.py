"""A webhook: POST a JSON event, signed with HMAC-SHA256 over the timestamp and the body.

Headers: `Gatehouse-Timestamp: <unix seconds>` and `Gatehouse-Signature: v1=<hex>`, where the hex is
HMAC-SHA256(secret, "<timestamp>." + body). The body holds `id` (the outbox row's idempotency key, the same
on every retry), `type` (`access.disable` or `access.enable`), `user`, `person_id`, `resource`, `cause`,
`reason` (a journal checkpoint, published by the journal_checkpoint job: `id` `checkpoint-<id>`, `type`
`journal.checkpoint`, `origin`, `tree_size`, `root` (hex), `signed_at`, `note`, the signed note itself). A receiver
verifies with `verify_signature` below (or its three lines in any language): recompute
the HMAC, compare in constant time, refuse a timestamp outside the replay window (default 300 s), and refuse
an `id` it has already processed within that window. A webhook cannot be re-read: a 2xx is its confirmation.
"""

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request

from connectors.outbound import Account, DeliveryError, Outcome, retry_after

REPLAY_WINDOW = 300


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, timestamp: str, body: bytes, header: str, *, now: float | None = None,
                     window: int = REPLAY_WINDOW) -> bool:
    """The receiver's check: a fresh timestamp and a matching signature (then refuse an id seen before)."""
    if not timestamp.isdigit() or abs((now or time.time()) - int(timestamp)) > window:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), header)


class WebhookTarget:
    def __init__(self, url: str, secret: bytes, *, timeout: float = 10):
        self.url, self.secret, self.timeout = url, secret, timeout

    def apply(self, op: str, account: Account, *, idempotency_key: str) -> Outcome:
        status = post(self.url, self.secret, {
            "id": idempotency_key, "type": f"access.{op}", "user": account.user_name, "person_id": account.person_id,
            "resource": account.resource, "cause": account.cause, "reason": account.reason}, timeout=self.timeout)
        return Outcome(None, {"status": status})

    def verify(self, op: str, account: Account) -> Outcome | None:
        return Outcome(None, {"confirmed_by": "2xx"})


def post(url: str, secret: bytes, event: dict, *, timeout: float = 10) -> int:
    """POST one event (its `id` the idempotency key) signed as above; the HTTP status, or DeliveryError."""
    body = json.dumps(event, sort_keys=True).encode()
    stamp = str(int(time.time()))
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "Gatehouse-Timestamp": stamp,
        "Gatehouse-Signature": signature(secret, stamp, body), "Idempotency-Key": str(event["id"])})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read()
            return answer.status
    except urllib.error.HTTPError as e:
        e.close()
        raise DeliveryError(f"POST webhook: HTTP {e.code}", status=e.code,
                            after=retry_after(e.headers.get("Retry-After")),
                            permanent=e.code in (400, 404, 410)) from None
    except OSError as e:
        raise DeliveryError(f"POST webhook: {e}") from None
