"""Sign-in for people (managers, auditors, hr) through the company's OpenID Connect provider.

authlib's Flask client runs the code flow; its state and nonce live in Flask's
short-lived signed "gatehouse_flow" cookie. A signed-in person gets our
server-side session (service/auth/sessions.py); the flow cookie is then cleared.
Who a token is: its (iss, sub) binding, else a verified e-mail (which binds),
else a trusted preferred_username (service/auth/store.py).
"""

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, current_app, redirect, render_template, request, session
from flask.sessions import SecureCookieSessionInterface
from joserfc.errors import JoseError

from service import web
from service.auth import sessions, store
from service.auth.guards import check_same_origin_and_csrf, session_principal
from service.auth.principal import Forbidden
from service.auth.store import Person
from service.journal import Event, append

bp = Blueprint("oidc", __name__)

EXTENSION = "gatehouse.oidc"
HUMAN_ROLES = frozenset({"auditor", "hr", "manager"})
FLOW_PATHS = ("/login", "/auth/callback")  # the routes that use flask.session
PROVIDER_TIMEOUT = 10  # seconds for each call to the provider (discovery, keys, token)
MAX_ISSUER, MAX_SUBJECT = 2048, 255  # as the CHECKs in sql/010 (OIDC Core §2: sub is at most 255 characters)


def init_app(app) -> None:
    """Register the sign-in routes when an OIDC issuer is configured."""
    settings = app.extensions["gatehouse"].settings
    if not settings.oidc_issuer:
        return
    oauth = OAuth(app)
    app.extensions[EXTENSION] = oauth.register(
        "sso", server_metadata_url=settings.oidc_issuer + "/.well-known/openid-configuration",
        client_id=settings.oidc_client_id, client_secret=settings.oidc_client_secret,
        client_kwargs={"scope": "openid email profile", "default_timeout": PROVIDER_TIMEOUT})
    app.session_interface = _FlowSessions()
    app.register_blueprint(bp)


class _FlowSessions(SecureCookieSessionInterface):
    """Flask's signed flow cookie, its key loaded (ensure_secret_key) before a sign-in path opens it.

    Not in before_request: Flask opens the session before those hooks run, so the
    first request of each process would get a null session and lose the state.
    """

    def open_session(self, app, request):
        if not app.secret_key and request.path in FLOW_PATHS:
            sessions.ensure_secret_key()
        return super().open_session(app, request)


def _page(status: int, title: str, message: str, *, retry: bool = False):
    return render_template("oidc_message.html", title=title, message=message, retry=retry), status


def _issuer() -> str:
    return web.services().settings.oidc_issuer


def _refused(status: int, code: str, text: str, *, actor: str = "anonymous", subject: str | None = None,
             claims: dict | None = None, detail: dict | None = None):
    """Journal a refused sign-in (committed before the answer) and answer with a page."""
    claims = claims or {}
    seen = {k: str(v)[:256] for k, v in claims.items() if k in ("sub", "email", "preferred_username")}
    issuer = str(claims.get("iss") or _issuer())[:256]
    web.services().journal.record(Event(
        kind="admin", outcome="refused", actor=actor, subject=subject,
        reasons=({"code": code, "text": text},),
        detail={"action": "signin", "method": "oidc", "issuer": issuer, **seen, **(detail or {})}))
    return _page(status, "Sign-in refused", text, retry=status != 403)


@bp.get("/login")
def login():
    session.clear()  # one flow at a time keeps the flow cookie small
    redirect_uri = web.services().settings.public_base_url + "/auth/callback"
    try:
        return current_app.extensions[EXTENSION].authorize_redirect(redirect_uri)
    except (requests.RequestException, ValueError) as e:
        return _refused(502, "provider_unreachable",
                        f"The sign-in provider cannot be reached ({type(e).__name__}).")


@bp.get("/auth/callback")
def callback():
    try:
        token = current_app.extensions[EXTENSION].authorize_access_token()
    except requests.RequestException as e:
        return _refused(502, "provider_unreachable",
                        f"The sign-in provider cannot be reached ({type(e).__name__}).")
    except (AuthlibBaseError, JoseError, ValueError) as e:
        code = str(getattr(e, "error", None) or type(e).__name__)[:64]
        return _refused(400, "signin_failed", f"The sign-in could not be completed ({code}). Start again.")
    claims = dict(token.get("userinfo") or {})  # the ID token's claims, validated by authlib (iss among them)
    if not (_text(claims.get("iss"), MAX_ISSUER) and _text(claims.get("sub"), MAX_SUBJECT)):
        return _refused(400, "no_id_token", "The sign-in provider sent no usable ID token. Start again.",
                        claims=claims)
    with web.connection() as conn:
        match, person, code, text, detail = _decide(conn, claims)
    if not code:
        try:
            return _sign_in(person, claims, match.how)
        except store.AlreadyBound:  # a concurrent sign-in bound this person or this account first
            code, text = "already_bound", _already_bound_text(_who(claims))
    actor = f"person:{person.user_name}" if person else "anonymous"
    return _refused(403, code, text, actor=actor, subject=person.id if person else None, claims=claims,
                    detail=detail)


def _text(value, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit


def _who(claims: dict) -> str:
    return str(claims.get("email") or claims.get("preferred_username") or claims["sub"])[:256]


def _already_bound_text(who: str) -> str:
    return f"The Gatehouse account for {who} is already linked to another account at the sign-in provider."


def _decide(conn, claims: dict):
    """Who the token is and whether they may sign in: match, person, refusal code and text, journal detail."""
    match = store.find(conn, claims, trust_username=web.services().settings.oidc_trust_username)
    who = _who(claims)
    person, code, text = admit(match.people, who)
    detail = {"matched": match.how}
    if not code and match.how != "binding":  # a second account at the provider never reaches a bound person
        other = store.bound_subject(conn, claims["iss"], person.id)
        if other is not None:
            code, text = "already_bound", _already_bound_text(who)
            detail["bound_sub"] = other[:256]
    return match, person, code, text, detail


def admit(found: tuple[Person, ...], who: str) -> tuple[Person | None, str | None, str]:
    """Pick the one live person and check they may sign in; else a refusal code and text."""
    live = [p for p in found if p.active]
    if len(live) > 1:
        return None, "ambiguous_person", f"More than one Gatehouse account matches {who}."
    if not found:
        return None, "unknown_person", f"There is no Gatehouse account for {who}."
    if not live:
        return found[0], "inactive_person", f"The Gatehouse account for {who} is not active."
    if not live[0].roles & HUMAN_ROLES:
        return live[0], "no_role", f"{who} is not a manager, auditor or hr in Gatehouse."
    return live[0], None, ""


def _sign_in(person: Person, claims: dict, how: str):
    """One transaction: bind or touch the account, end any previous session, start a new one, journal it."""
    services = web.services()
    settings = services.settings
    issuer, subject = claims["iss"], claims["sub"]
    previous = request.cookies.get(sessions.COOKIE)
    with services.pool.connection() as conn, conn.transaction():
        bound = how == "email" and store.bind(conn, issuer, subject, person.id)  # AlreadyBound rolls back
        if how == "binding":
            store.touch(conn, issuer, subject)
        if previous:  # a fresh token on every sign-in (no session fixation)
            store.destroy_session(conn, previous)
        token = store.create_session(conn, lifetime=settings.session_lifetime, person_id=person.id)
        append(conn, Event(kind="admin", outcome="ok", actor=f"person:{person.user_name}", subject=person.id,
                           detail={"action": "signin", "method": "oidc", "issuer": issuer, "sub": subject,
                                   "matched": how, "bound": bound}))
    session.clear()
    response = redirect("/me")
    sessions.set_cookie(response, token, settings)
    return response


@bp.get("/me")
def me():
    principal = session_principal()
    if principal is None:
        return redirect("/login")
    csrf = sessions.csrf_token(web.services(), request)
    return render_template("oidc_me.html", title="Signed in", principal=principal, roles=sorted(principal.roles),
                           csrf_token=csrf)


@bp.post("/logout")
def logout():
    services = web.services()
    principal = session_principal()
    if principal is not None:
        try:
            check_same_origin_and_csrf(principal)  # journals its own refusal
        except Forbidden as e:
            return _page(403, "Sign-out refused", e.message)
        with services.pool.connection() as conn, conn.transaction():
            store.destroy_session(conn, request.cookies[sessions.COOKIE])
            append(conn, Event(kind="admin", outcome="ok", actor=principal.actor,
                               subject=principal.id if principal.kind == "person" else None,
                               detail={"action": "signout"}))
    # A page, not a redirect to /login: that would go straight back through the
    # provider and, with its session still live, sign the person in again.
    response = current_app.make_response(_page(200, "Signed out", "You are signed out of Gatehouse.", retry=True))
    sessions.clear_cookie(response, services.settings)
    return response
