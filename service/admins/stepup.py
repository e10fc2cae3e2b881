"""Admin step-up: every admin action carries a WebAuthn assertion bound to that very action.

The console asks POST /admin/api/challenge for (action, params); the server
records a single-use challenge for (admin, action, SHA-256 of the canonical
params), valid two minutes. The action request then carries
{"params": ..., "assertion": ...}; `requires_webauthn(action)` runs the view
only if the assertion verifies for exactly that challenge. The view writes its
change, the new sign counter and the journal row in one transaction via
`Proof.record`.
"""

import dataclasses
import functools
from pathlib import Path

from flask import g, request

from service import journal, web
from service.admins import store as admins
from service.admins import webauthn
from service.auth.guards import refuse, require_role
from service.auth.principal import Forbidden, Principal
from service.errors import BadRequest


@dataclasses.dataclass(frozen=True)
class Proof:
    """A verified, action-bound assertion: who, with which key, at which counter."""

    principal: Principal
    action: str
    credential_id: bytes
    old_count: int
    new_count: int

    def record(self, conn, *, outcome: str = "ok", subject: str | None = None, resource: str | None = None,
               **detail) -> journal.Receipt:
        """In the action's transaction: store the counter, append the journal row."""
        if not admins.record_use(conn, self.credential_id, old=self.old_count, new=self.new_count):
            raise Forbidden("this key was used concurrently; try again")
        detail.update(action=self.action, credential_id=webauthn.b64(self.credential_id), counter=self.new_count)
        return journal.append(conn, journal.Event(
            kind="admin", outcome=outcome, actor=self.principal.actor, subject=subject, resource=resource,
            detail=detail))


def key_rules(settings) -> webauthn.KeyRules:
    """The WebAuthn relying party and admin-key rules from the settings."""
    roots = ()
    if settings.webauthn_roots:
        text = Path(settings.webauthn_roots).read_text()
        marker = "-----END CERTIFICATE-----"
        roots = tuple((part.strip() + "\n" + marker + "\n").encode() for part in text.split(marker) if part.strip())
    return webauthn.KeyRules(rp_id=settings.relying_party_id, rp_name=settings.rp_name,
                              origins=settings.allowed_origins, device_bound=settings.webauthn_device_bound,
                              roots_pem=roots, aaguids=settings.webauthn_aaguids)


def json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("expected a JSON object")
    return body


def issue_action_challenge(principal: Principal, action: str, params) -> dict:
    """Request options for navigator.credentials.get(), bound to (admin, action, params)."""
    rules = key_rules(web.services().settings)
    with web.connection() as conn:
        keys = admins.keys_of(conn, principal.id)
        challenge = admins.create_challenge(conn, "action", admin_id=principal.id, action=action,
                                            body_hash=webauthn.body_hash(params))
    return webauthn.authentication_options(rules, allow=[k.id for k in keys], challenge=challenge)


def verify_action(principal: Principal, action: str, params, assertion) -> Proof:
    """Check an assertion against the challenge issued for exactly this admin, action and params."""
    rules = key_rules(web.services().settings)
    if not isinstance(assertion, dict):
        raise webauthn.WebAuthnRefused("webauthn_missing", f"the action {action} needs a security-key assertion")
    challenge = webauthn.challenge_of(assertion)
    with web.connection() as conn:
        record = admins.consume_challenge(conn, challenge, "action")  # committed: good for one try
    if record is None:
        raise webauthn.WebAuthnRefused("webauthn_replay", "unknown or already used challenge")
    if record.expired:
        raise webauthn.WebAuthnRefused("webauthn_expired", "the challenge expired")
    if record.admin_id != principal.id:
        raise webauthn.WebAuthnRefused("webauthn_wrong_admin", "this challenge was issued to another admin")
    if record.action != action:
        raise webauthn.WebAuthnRefused(
            "webauthn_wrong_action", f"this assertion was made for {record.action}, not {action}"
        )
    if record.body_hash != webauthn.body_hash(params):
        raise webauthn.WebAuthnRefused("webauthn_wrong_body", "this assertion was made for other parameters")
    with web.connection() as conn:
        key = admins.key_by_id(conn, webauthn.credential_id_of(assertion))
    if key is None or key.admin_id != principal.id:
        raise webauthn.WebAuthnRefused("webauthn_unknown_key", "unknown security key")
    verified = webauthn.verify_assertion(rules, assertion, challenge=challenge, public_key=key.public_key,
                                         stored_count=key.sign_count)
    return Proof(principal=principal, action=action, credential_id=key.id, old_count=key.sign_count,
                 new_count=verified.sign_count)


_ACTIONS: set[str] = set()  # every action a view guards, filled as the views are defined


def known_actions() -> frozenset[str]:
    """The admin actions a challenge may be asked for: exactly those some view guards."""
    return frozenset(_ACTIONS)


def requires_webauthn(action: str):
    """Guard an admin action: admin session, CSRF, same origin, and an assertion bound to it.

    The view is called as view(params, proof, **kwargs). Naming the action here registers it (known_actions).
    """
    _ACTIONS.add(action)

    def decorate(view):
        @require_role("admin")
        @functools.wraps(view)
        def guarded(**kwargs):
            body = json_body()
            params = body.get("params", {})
            try:
                proof = verify_action(g.principal, action, params, body.get("assertion"))
            except webauthn.WebAuthnRefused as e:
                error = Forbidden(str(e))
                error.code = e.code
                raise refuse(error, kind="admin", actor=g.principal.actor, what=action) from None
            return view(params, proof, **kwargs)

        return guarded

    return decorate
