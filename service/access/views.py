"""Console page for access by hand: grant or revoke a resource, and group → resource rules.

Every change is an admin action bound to a WebAuthn assertion; its grant rows
and journal rows commit with the change.
"""

from flask import jsonify, render_template, request

from service import web
from service.access import grants, policy_store
from service.access import policy as access_policy
from service.access import store as grant_store
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
        rules = grant_store.rules(conn)
        resources = grant_store.resource_keys(conn)
        held = policy_store.held(conn)
    return render_template("admin_access.html", rules=[r for r in rules if r.source == "console"],
                           file_rules=[r for r in rules if r.source == "policy"], resources=resources,
                           held_policy=held, csrf=sessions.csrf_token(web.services(), request), b64=webauthn.b64)


@bp.post("/api/grants/grant")
@requires_webauthn("grants.grant")
def grant(params, proof: Proof):
    with web.transaction() as conn:
        change = grants.grant(conn, _text(params, "user"), _text(params, "resource"),
                                     actor=proof.principal.actor, via="admin")
        proof.record(conn, subject=change.person_id, resource=change.resource, user=change.user_name)
    return jsonify(ok=True)


@bp.post("/api/grants/revoke")
@requires_webauthn("grants.revoke")
def revoke(params, proof: Proof):
    with web.transaction() as conn:
        change = grants.revoke(conn, _text(params, "user"), _text(params, "resource"),
                                      actor=proof.principal.actor, via="admin", reason=_text(params, "reason"))
        proof.record(conn, subject=change.person_id, resource=change.resource, user=change.user_name)
    return jsonify(ok=True)


@bp.post("/api/rules/add")
@requires_webauthn("rules.add")
def rule_add(params, proof: Proof):
    """Members of the group get the resource, now and whenever they join."""
    with web.transaction() as conn:
        rule = grant_store.add_rule(conn, _text(params, "group"), _text(params, "resource"), by=proof.principal.actor)
        proof.record(conn, group=rule.group, resource=rule.resource)
        changed = grants.apply_rules(conn, actor=proof.principal.actor)
    return jsonify(ok=True, granted=len(changed))


@bp.post("/api/rules/remove")
@requires_webauthn("rules.remove")
def rule_remove(params, proof: Proof):
    """Members keep the resource only if another rule or an admin grants it."""
    with web.transaction() as conn:
        rule = grant_store.remove_rule(conn, _text(params, "group"), _text(params, "resource"))
        proof.record(conn, group=rule.group, resource=rule.resource)
        changed = grants.apply_rules(conn, actor=proof.principal.actor)
    return jsonify(ok=True, revoked=len(changed))


def _policy_decision(params, proof: Proof, decide):
    """Confirm or discard the held policy change; its grant changes and the admin's journal row commit together."""
    with web.transaction() as conn:
        outcome = decide(conn, _text(params, "run"), actor=proof.principal.actor)
        proof.record(conn, run=outcome.run_id, version=outcome.version, counts=outcome.counts())
    return jsonify(ok=True, state=outcome.state, message=outcome.message)


@bp.post("/api/policy/confirm")
@requires_webauthn("policy.confirm")
def policy_confirm(params, proof: Proof):
    """Apply the held policy change: the file's rules it was held with, grants created and ended accordingly."""
    return _policy_decision(params, proof, access_policy.confirm)


@bp.post("/api/policy/discard")
@requires_webauthn("policy.discard")
def policy_discard(params, proof: Proof):
    return _policy_decision(params, proof, access_policy.discard)


def init_app(app) -> None:
    app.register_blueprint(bp)
