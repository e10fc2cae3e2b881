"""Console routes for held directory sync runs: confirm or discard, each bound to a WebAuthn assertion."""

from flask import jsonify

from service import web
from service.admins.stepup import Proof, requires_webauthn
from service.directory import sync as ldapsync

bp = web.console_blueprint("console_directory", __name__)


def _sync_decision(params, proof: Proof, decide):
    """Confirm or discard a held sync run; its changes and the admin's journal row commit together."""
    with web.transaction() as conn:
        result = decide(conn, str(params.get("run", "")), actor=proof.principal.actor)
        proof.record(conn, run=result.run_id, counts=result.counts)
    return jsonify(ok=True, state=result.state, message=result.message)


@bp.post("/api/sync/confirm")
@requires_webauthn("sync.confirm")
def sync_confirm(params, proof: Proof):
    """Apply a held directory sync run exactly as it was held."""
    return _sync_decision(params, proof, ldapsync.confirm)


@bp.post("/api/sync/discard")
@requires_webauthn("sync.discard")
def sync_discard(params, proof: Proof):
    return _sync_decision(params, proof, ldapsync.discard)


def init_app(app) -> None:
    app.register_blueprint(bp)
