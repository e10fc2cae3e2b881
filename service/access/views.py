"""Console page for access by hand: grant or revoke a resource, and group → resource rules.

Every change is an admin action bound to a WebAuthn assertion; its grant rows
and journal rows commit with the change.
"""

from flask import jsonify, render_template, request

from service import web
from service.access import grants as grant_changes
from service.access import store as grants
from service.admins import webauthn
from service.admins.stepup import Proof, requires_webauthn
from service.auth import sessions
from service.auth.guards import require_role

bp = web.console_blueprint("console_access", __name__)


def _text(params, key: str) -> str:
    return str(params.get(key, "")).strip()[:256]


@bp.get("/access")
@require_role("admin")
def page():
    with web.connection() as conn:
        rules = grants.rules(conn)
        resources = grants.resource_keys(conn)
    return render_template("admin_access.html", rules=rules, resources=resources,
                           csrf=sessions.csrf_token(web.services(), request), b64=webauthn.b64)


@bp.post("/api/grants/grant")
@requires_webauthn("grants.grant")
def grant(params, proof: Proof):
    with web.transaction() as conn:
        change = grants.grant(conn, _text(params, "user"), _text(params, "resource"), by=proof.principal.actor)
        proof.record(conn, subject=change.person_id, resource=change.resource, user=change.user_name)
        grant_changes.record(conn, [change], actor=proof.principal.actor, via="admin")
    return jsonify(ok=True)


@bp.post("/api/grants/revoke")
@requires_webauthn("grants.revoke")
def revoke(params, proof: Proof):
    reason = _text(params, "reason") or f"revoked by {proof.principal.actor}"
    with web.transaction() as conn:
        change = grants.revoke(conn, _text(params, "user"), _text(params, "resource"), reason=reason)
        proof.record(conn, subject=change.person_id, resource=change.resource, user=change.user_name)
        grant_changes.record(conn, [change], actor=proof.principal.actor, via="admin")
    return jsonify(ok=True)


@bp.post("/api/rules/add")
@requires_webauthn("rules.add")
def rule_add(params, proof: Proof):
    """Members of the group get the resource, now and whenever they join."""
    with web.transaction() as conn:
        rule = grants.add_rule(conn, _text(params, "group"), _text(params, "resource"), by=proof.principal.actor)
        proof.record(conn, group=rule.group, resource=rule.resource)
        changed = grant_changes.apply_rules(conn, actor=proof.principal.actor)
    return jsonify(ok=True, granted=len(changed))


@bp.post("/api/rules/remove")
@requires_webauthn("rules.remove")
def rule_remove(params, proof: Proof):
    """Members keep the resource only if another rule or an admin grants it."""
    with web.transaction() as conn:
        rule = grants.remove_rule(conn, _text(params, "group"), _text(params, "resource"))
        proof.record(conn, group=rule.group, resource=rule.resource)
        changed = grant_changes.apply_rules(conn, actor=proof.principal.actor)
    return jsonify(ok=True, revoked=len(changed))


def init_app(app) -> None:
    app.register_blueprint(bp)
