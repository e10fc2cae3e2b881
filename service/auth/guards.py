"""The guards: role and scope checks, CSRF and same-origin, refusals journaled (principals: principal.py).

Machines authenticate with bearer tokens (service/auth/tokens.py); people and admins
with a session cookie (service/auth/sessions.py). A guard that refuses answers 401
or 403 with a JSON problem body, journals the refusal (or, without any
credential, counts it: service/auth/refusals.py), and changes nothing.
"""

import functools
import hmac

from flask import g, request

from service import web
from service.auth import sessions, tokens
from service.auth.principal import ROLES, SCOPES, Forbidden, Principal, Unauthenticated
from service.errors import GatehouseError
from service.journal import Event


def refuse(error: GatehouseError, *, kind: str, actor: str, what: str, credential: bool = False) -> GatehouseError:
    """Journal a refusal (committed before the answer) and return the error to raise.

    A request that carries no credential at all (no Authorization header, no session cookie,
    and `credential` false: the caller saw none in the body either) is only counted, one
    journal row per route and minute (service/auth/refusals.py), so that a flood writes nothing.
    """
    if not (credential or carries_credential()):
        count_anonymous(kind=kind, code=error.code, text=error.message)
        return error
    web.services().journal.record(Event(
        kind=kind, outcome="refused", actor=actor,
        reasons=({"code": error.code, "text": error.message},),
        detail={"what": what, "method": request.method, "path": request.path}))
    return error


def carries_credential() -> bool:
    """Whether the request presents an Authorization header or a session cookie, valid or not."""
    return "Authorization" in request.headers or sessions.COOKIE in request.cookies


def count_anonymous(*, kind: str, code: str, text: str) -> None:
    """Count a refusal of a request without credentials (see refuse)."""
    route = request.url_rule.rule if request.url_rule else request.path[:200]
    web.services().refusals.count(kind=kind, route=f"{request.method} {route}", code=code, text=text,
                              source=request.remote_addr)


def bearer_principal() -> Principal | None:
    """The machine client behind the Authorization header, or None."""
    return tokens.principal_from_request(web.services(), request)


def session_principal() -> Principal | None:
    """The person or admin behind the session cookie, or None."""
    if "session_principal" not in g:
        g.session_principal = sessions.principal_from_request(web.services(), request)
    return g.session_principal


def authorize_scope(scope: str, *, journal_kind: str = "admin") -> Principal:
    """The bearer-token client of this request, if it holds `scope`; else refuse (journaled)."""
    assert scope in SCOPES, scope
    principal = bearer_principal()
    if principal is None:
        raise refuse(Unauthenticated("a valid bearer token is required"), kind=journal_kind,
                     actor="anonymous", what=f"scope:{scope}")
    if scope not in principal.scopes:
        raise refuse(Forbidden(f"this client lacks the {scope!r} scope"), kind=journal_kind,
                     actor=principal.actor, what=f"scope:{scope}")
    g.principal = principal
    return principal


def require_scope(scope: str, *, journal_kind: str = "admin"):
    """Guard a machine API: a valid bearer token carrying `scope`."""

    def decorate(view):
        @functools.wraps(view)
        def guarded(*args, **kwargs):
            authorize_scope(scope, journal_kind=journal_kind)
            return view(*args, **kwargs)

        return guarded

    return decorate


def require_role(*roles: str):
    """Guard a page or console API: a session whose principal holds one of `roles`."""
    assert roles and set(roles) <= set(ROLES), roles

    def decorate(view):
        @functools.wraps(view)
        def guarded(*args, **kwargs):
            principal = session_principal()
            what = "role:" + "|".join(roles)
            if principal is None:
                raise refuse(Unauthenticated("sign in first"), kind="admin", actor="anonymous", what=what)
            if not principal.roles & set(roles):
                raise refuse(Forbidden(f"this needs the {' or '.join(roles)} role"), kind="admin",
                             actor=principal.actor, what=what)
            if request.method not in ("GET", "HEAD", "OPTIONS"):
                check_same_origin_and_csrf(principal)
            g.principal = principal
            return view(*args, **kwargs)

        return guarded

    return decorate


def check_same_origin_and_csrf(principal: Principal | None) -> None:
    """State-changing browser requests: Origin must be ours and the CSRF token must match."""
    origin = request.headers.get("Origin")
    actor = principal.actor if principal else "anonymous"
    if origin is None or origin.rstrip("/") not in web.services().settings.allowed_origins:
        raise refuse(Forbidden("cross-origin request refused"), kind="admin", actor=actor, what="origin")
    expected = sessions.csrf_token(web.services(), request)
    given = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token", "")
    if not expected or not hmac.compare_digest(expected, given):
        raise refuse(Forbidden("missing or wrong CSRF token"), kind="admin", actor=actor, what="csrf")
