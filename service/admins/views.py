"""The admins' console routes: WebAuthn sign-in and enrollment, security keys, admins, action challenges.

Pages are server-rendered; their buttons call the JSON endpoints below through
static/gatehouse.js, which runs navigator.credentials.create()/get(). Every
state-changing admin action goes through stepup.requires_webauthn.
"""

from flask import g, jsonify, render_template, request

from service import journal, web
from service.admins import store as admins
from service.admins import webauthn
from service.admins.stepup import Proof, issue_action_challenge, json_body, key_rules, known_actions, requires_webauthn
from service.auth import sessions
from service.auth.guards import refuse, require_role
from service.auth.principal import Forbidden, Principal
from service.auth.store import create_session, destroy_session
from service.errors import BadRequest, NotFound

bp = web.console_blueprint("console_admins", __name__)


def _check_origin() -> None:
    """Endpoints used before there is a session: the Origin header must be ours."""
    origin = (request.headers.get("Origin") or "").rstrip("/")
    if origin not in web.services().settings.allowed_origins:
        raise refuse(Forbidden("cross-origin request refused"), kind="admin", actor="anonymous", what="origin")


def _refused(e: webauthn.WebAuthnRefused, actor: str, what: str, *, credential: bool):
    error = Forbidden(str(e))
    error.code = e.code
    return refuse(error, kind="admin", actor=actor, what=what, credential=credential)


# --- sign in ----------------------------------------------------------------------------------


@bp.get("/login")
def login_page():
    return render_template("admin_login.html")


@bp.post("/api/login/begin")
def login_begin():
    """Sign-in options; the challenge is signed, not stored: an anonymous request writes nothing."""
    _check_origin()
    challenge = webauthn.login_challenge(_login_key())
    return jsonify(webauthn.authentication_options(key_rules(web.services().settings), allow=[], challenge=challenge))


def _login_key() -> bytes:
    return sessions.ensure_secret_key()


def _verify_sign_in(response: dict):
    """The key, admin, assertion and challenge expiry of a sign-in; refusals journaled or counted."""
    live = False  # once the response answers a live challenge of ours, a key is being tried: journal each
    try:
        challenge = webauthn.challenge_of(response)
        expires = webauthn.check_login_challenge(_login_key(), challenge)
        live = True
        with web.connection() as conn:
            key = admins.key_by_id(conn, webauthn.credential_id_of(response))
            admin = admins.admin_by_id(conn, key.admin_id) if key else None
        if key is None or admin is None or not admin.active:
            raise webauthn.WebAuthnRefused("webauthn_unknown_key", "unknown security key")
        verified = webauthn.verify_assertion(key_rules(web.services().settings), response, challenge=challenge,
                                             public_key=key.public_key, stored_count=key.sign_count)
    except webauthn.WebAuthnRefused as e:
        raise _refused(e, "anonymous", "signin", credential=live) from None
    return key, admin, verified, challenge, expires


@bp.post("/api/login/finish")
def login_finish():
    _check_origin()
    assertion = json_body().get("assertion")
    key, admin, verified, challenge, expires = _verify_sign_in(assertion if isinstance(assertion, dict) else {})
    settings = web.services().settings
    principal = Principal(kind="admin", id=admin.id, name=admin.email, roles=frozenset({"admin"}))
    proof = Proof(principal, "signin", key.id, key.sign_count, verified.sign_count)
    with web.transaction() as conn:
        fresh = admins.use_login_challenge(conn, challenge, expires)  # single use, recorded with the sign-in
        if fresh:
            token = create_session(conn, lifetime=settings.session_lifetime, admin_id=admin.id)
            proof.record(conn, method="webauthn")
    if not fresh:
        raise _refused(webauthn.WebAuthnRefused("webauthn_replay", "this challenge was already used"),
                       principal.actor, "signin", credential=True)
    response = jsonify(ok=True, redirect="/admin")
    sessions.set_cookie(response, token, settings)
    return response


@bp.post("/logout")
@require_role("admin")
def logout():
    with web.transaction() as conn:
        destroy_session(conn, request.cookies.get(sessions.COOKIE, ""))
        journal.append(conn, journal.Event(kind="admin", outcome="ok", actor=g.principal.actor,
                                           detail={"action": "signout"}))
    response = jsonify(ok=True, redirect="/admin/login")
    sessions.clear_cookie(response, web.services().settings)
    return response


# --- enrollment (first key, from `gatehouse admin enroll` or admins.add) -----------------------


def _enrollment(token: str):
    with web.connection() as conn:
        admin = admins.enrollment_admin(conn, token)
    if admin is None:
        raise refuse(NotFound("this enrollment link is unknown, used or expired"), kind="admin",
                     actor="anonymous", what="enroll")
    return admin


@bp.get("/enroll/<token>")
def enroll_page(token):
    """Shows the enrollment button; GET never changes state (mail scanners prefetch links)."""
    return render_template("admin_enroll.html", admin=_enrollment(token), token=token)


@bp.post("/api/enroll/<token>/begin")
def enroll_begin(token):
    _check_origin()
    admin = _enrollment(token)
    with web.connection() as conn:
        exclude = [k.id for k in admins.keys_of(conn, admin.id)]
        challenge = admins.create_challenge(conn, "register", admin_id=admin.id)
    return jsonify(webauthn.registration_options(
        key_rules(web.services().settings), user_handle=admin.user_handle, email=admin.email,
        display_name=admin.display_name, exclude=exclude, challenge=challenge))


def _verify_new_key(admin_id: str, credential, actor: str, what: str):
    """Consume the registration challenge and verify the new key under the key rules."""
    try:
        response = credential if isinstance(credential, dict) else {}
        challenge = webauthn.challenge_of(response)
        with web.connection() as conn:
            record = admins.consume_challenge(conn, challenge, "register")
        if record is None or record.expired or record.admin_id != admin_id:
            raise webauthn.WebAuthnRefused("webauthn_replay", "unknown, used or expired challenge")
        return record, webauthn.verify_registration(key_rules(web.services().settings), response, challenge=challenge)
    except webauthn.WebAuthnRefused as e:  # past a live link or a session: journaled one by one
        raise _refused(e, actor, what, credential=True) from None


def _key_detail(key: webauthn.NewKey, name: str) -> dict:
    return {"key": webauthn.b64(key.credential_id), "name": name, "fmt": key.fmt, "aaguid": key.aaguid,
            "kind": key.kind, "attested": key.attested, "backup_eligible": key.backup_eligible,
            "backed_up": key.backed_up, "user_verified": key.user_verified}


@bp.post("/api/enroll/<token>/finish")
def enroll_finish(token):
    _check_origin()
    admin = _enrollment(token)
    body = json_body()
    name = str(body.get("name") or "security key")[:64]
    _, key = _verify_new_key(admin.id, body.get("credential"), f"admin:{admin.email}", "enroll")
    settings = web.services().settings
    with web.transaction() as conn:
        # Checked again here, in the transaction that adds the key: the admin may have been removed
        # (or the link used) since _enrollment() looked.
        enrolled = admins.enroll_key(conn, token, admin.id, name, key)
        if enrolled:
            session = create_session(conn, lifetime=settings.session_lifetime, admin_id=admin.id)
            journal.append(conn, journal.Event(kind="admin", outcome="ok", actor=f"admin:{admin.email}",
                                               detail={"action": "keys.enroll", **_key_detail(key, name)}))
    if not enrolled:  # rolled back; the refusal is journaled on its own
        raise refuse(NotFound("this enrollment link is unknown, used or expired"), kind="admin",
                     actor=f"admin:{admin.email}", what="enroll", credential=True)
    response = jsonify(ok=True, redirect="/admin")
    sessions.set_cookie(response, session, settings)
    return response


@bp.post("/api/challenge")
@require_role("admin")
def action_challenge():
    body = json_body()
    action = body.get("action")
    if action not in known_actions():
        raise BadRequest(f"unknown action {action!r}")
    return jsonify(issue_action_challenge(g.principal, action, body.get("params", {})))


@bp.post("/api/keys/add")
@requires_webauthn("keys.add")
def keys_add(params, proof: Proof):
    """Step one of adding a key: the step-up is verified, hand out registration options."""
    name = str(params.get("name") or "security key")[:64]
    with web.transaction() as conn:
        admin = admins.admin_by_id(conn, proof.principal.id)
        exclude = [k.id for k in admins.keys_of(conn, admin.id)]
        challenge = admins.create_challenge(conn, "register", admin_id=admin.id, action="keys.add",
                                            step_up={"name": name, "credential_id": webauthn.b64(proof.credential_id),
                                                     "counter": proof.new_count})
        if not admins.record_use(conn, proof.credential_id, old=proof.old_count, new=proof.new_count):
            raise Forbidden("this key was used concurrently; try again")
    return jsonify(webauthn.registration_options(key_rules(web.services().settings), user_handle=admin.user_handle,
                                                 email=admin.email, display_name=admin.display_name,
                                                 exclude=exclude, challenge=challenge))


@bp.post("/api/keys/finish")
@require_role("admin")
def keys_finish():
    """Step two: verify the new key; the journal row names the step-up assertion that allowed it."""
    principal = g.principal
    record, key = _verify_new_key(principal.id, json_body().get("credential"), principal.actor, "keys.add")
    if record.action != "keys.add" or not record.step_up:
        raise refuse(Forbidden("adding a key needs a security-key assertion first"), kind="admin",
                     actor=principal.actor, what="keys.add")
    name = record.step_up["name"]
    with web.transaction() as conn:
        added = admins.add_key(conn, principal.id, name, key)
        if added:
            journal.append(conn, journal.Event(
                kind="admin", outcome="ok", actor=principal.actor,
                detail={"action": "keys.add", "credential_id": record.step_up["credential_id"],
                        "counter": record.step_up["counter"], **_key_detail(key, name)}))
    if not added:  # removed since the session was checked
        raise refuse(Forbidden("this admin was removed"), kind="admin", actor=principal.actor, what="keys.add")
    return jsonify(ok=True)


@bp.post("/api/keys/remove")
@requires_webauthn("keys.remove")
def keys_remove(params, proof: Proof):
    try:
        credential_id = webauthn.unb64(str(params.get("key", "")))
    except Exception:
        raise BadRequest("params.key must be a base64url credential id") from None
    with web.transaction() as conn:
        removed = admins.remove_key(conn, proof.principal.id, credential_id)
        proof.record(conn, key=webauthn.b64(removed.id), name=removed.name)
    return jsonify(ok=True)


@bp.post("/api/admins/add")
@requires_webauthn("admins.add")
def admins_add(params, proof: Proof):
    """Add an admin and hand back their single-use enrollment link (shown once)."""
    with web.transaction() as conn:
        admin = admins.create_admin(conn, str(params.get("email", "")), display_name=params.get("display_name"),
                                    created_by=proof.principal.actor)
        token = admins.create_enrollment(conn, admin.id, created_by=proof.principal.actor)
        proof.record(conn, email=admin.email)
    return jsonify(ok=True, enrollment_url=enrollment_url(token))


@bp.post("/api/admins/remove")
@requires_webauthn("admins.remove")
def admins_remove(params, proof: Proof):
    with web.transaction() as conn:
        removed = admins.remove_admin(conn, str(params.get("email", "")))
        proof.record(conn, email=removed.email)
    return jsonify(ok=True)


def enrollment_url(token: str) -> str:
    return f"{web.services().settings.public_base_url}/admin/enroll/{token}"


def init_app(app) -> None:
    app.register_blueprint(bp)
