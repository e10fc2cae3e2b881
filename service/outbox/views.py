"""Console page for outbound enforcement: each target's health, its dead letters and unconfirmed rows.

Retrying or discarding a row is an admin action bound to a WebAuthn assertion; the row's move, its journal row
(kind outbound) and the admin's journal row (kind admin) commit in one transaction.
"""

from flask import jsonify, render_template, request

from service import web
from service.admins import webauthn
from service.admins.stepup import Proof, requires_webauthn
from service.auth import sessions
from service.auth.guards import require_role
from service.errors import BadRequest
from service.outbox import reconcile, store

bp = web.console_blueprint("console_outbox", __name__)
SHOWN = 200


@bp.get("/outbox")
@require_role("admin")
def page():
    with web.connection() as conn:
        targets = store.summary(conn)
        dead = store.rows(conn, state="dead", limit=SHOWN)
        unconfirmed = store.rows(conn, state="sent", limit=SHOWN)
        held = store.held_reconciliations(conn)
    return render_template("admin_outbox.html", targets=targets, dead=dead, unconfirmed=unconfirmed, held=held,
                           csrf=sessions.csrf_token(web.services(), request), b64=webauthn.b64)


def _row_id(params, name: str = "row") -> int:
    value = str(params.get(name, "")).strip() if isinstance(params, dict) else ""
    if not value.isdigit() or len(value) > 18:
        raise BadRequest(f"params.{name} must be an id (a positive integer)")
    return int(value)


def _decide(params, proof: Proof, decide):
    with web.transaction() as conn:
        row = decide(conn, _row_id(params), actor=proof.principal.actor, via="console")
        proof.record(conn, subject=row.person_id, resource=row.resource, outbox=row.id, target=row.target,
                     op=row.op, user=row.user_name, state=row.state)
    return jsonify(ok=True, row=row.id, state=row.state)


@bp.post("/api/outbox/retry")
@requires_webauthn("outbox.retry")
def retry(params, proof: Proof):
    """Send a dead letter again (refused when a later change of the same person and target supersedes it)."""
    return _decide(params, proof, store.retry)


@bp.post("/api/outbox/discard")
@requires_webauthn("outbox.discard")
def discard(params, proof: Proof):
    """Give up on an unfinished row: it is never delivered."""
    return _decide(params, proof, store.discard)


def _reconcile_decision(params, proof: Proof, *, confirm: bool):
    """Confirm (the next outbox_reconcile run applies the plan exactly as held) or discard a held run."""
    with web.transaction() as conn:
        run = reconcile.decide(conn, _row_id(params, "run"), confirm=confirm, actor=proof.principal.actor)
        proof.record(conn, run=run.id, target=run.target, removals=len(run.plan["removals"]),
                     additions=len(run.plan["additions"]))
    return jsonify(ok=True, run=run.id, state=run.state)


@bp.post("/api/outbox/reconcile_confirm")
@requires_webauthn("outbox.reconcile_confirm")
def reconcile_confirm(params, proof: Proof):
    return _reconcile_decision(params, proof, confirm=True)


@bp.post("/api/outbox/reconcile_discard")
@requires_webauthn("outbox.reconcile_discard")
def reconcile_discard(params, proof: Proof):
    return _reconcile_decision(params, proof, confirm=False)


def init_app(app) -> None:
    app.register_blueprint(bp)
