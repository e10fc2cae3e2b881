"""Browser sessions: a random token in a Secure, HttpOnly, SameSite=Lax cookie; its hash in web_sessions."""

import secrets

from flask import current_app, g

from service import web
from service.auth import store
from service.auth.principal import Principal
from service.db import tx

COOKIE = "gatehouse_session"



def _load(services, request):
    if "session_row" not in g:
        token = request.cookies.get(COOKIE)
        row = None
        if token:
            with tx.connection(services.pool) as conn:  # a database that fails: 503, not 500
                row = store.load_session(conn, token)
        g.session_row = row
    return g.session_row


def principal_from_request(services, request) -> Principal | None:
    """The admin or person signed in with this request's cookie, if the session is live."""
    row = _load(services, request)
    if row is None:
        return None
    _, admin_id, email, person_id, user_name, active, roles, manages = row
    if admin_id:
        return Principal(kind="admin", id=admin_id, name=email, roles=frozenset({"admin"}))
    if person_id and active:
        return Principal(kind="person", id=person_id, name=user_name,
                         roles=frozenset(roles) | ({"manager"} if manages else set()))
    return None


def csrf_token(services, request) -> str | None:
    """The CSRF token bound to this request's session."""
    row = _load(services, request)
    return row[0] if row else None


def set_cookie(response, token: str, settings) -> None:
    response.set_cookie(COOKIE, token, max_age=settings.session_lifetime, secure=settings.secure_cookies,
                        httponly=True, samesite="Lax", path="/")


def clear_cookie(response, settings) -> None:
    response.delete_cookie(COOKIE, secure=settings.secure_cookies, httponly=True, samesite="Lax", path="/")


def ensure_secret_key() -> bytes:
    """Load (or create, once for all workers) the key that signs Flask's flow cookie and sign-in challenges."""
    if not current_app.secret_key:
        with web.connection() as conn:
            current_app.secret_key = store.flask_secret(conn, secrets.token_bytes(32))
    return current_app.secret_key
