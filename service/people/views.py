"""Console actions on people: give or take the hr and auditor roles, each bound to a WebAuthn assertion.

The same use cases as `gatehouse people role add|remove` (identity/roles.py); the journal row is the admin's
step-up proof, written with the change.
"""

from flask import jsonify

from service import web
from service.admins.stepup import Proof, requires_webauthn
from service.identity import roles

bp = web.console_blueprint("console_identity", __name__)


def _act(proof: Proof, change) -> roles.RoleChange:
    with web.transaction() as conn:
        result, detail = change(conn)
        proof.record(conn, subject=result.person_id, **detail)
    return result


def _text(params, key: str) -> str:
    return str(params.get(key, "")).strip()[:320]


@bp.post("/api/roles/add")
@requires_webauthn("roles.add")
def roles_add(params, proof: Proof):
    done = _act(proof, lambda conn: roles.add(conn, _text(params, "email"), _text(params, "role"),
                                              actor=proof.principal.actor))
    return jsonify(ok=True, email=done.email, role=done.role)


@bp.post("/api/roles/remove")
@requires_webauthn("roles.remove")
def roles_remove(params, proof: Proof):
    done = _act(proof, lambda conn: roles.remove(conn, _text(params, "email"), _text(params, "role")))
    return jsonify(ok=True, email=done.email, role=done.role)


def init_app(app) -> None:
    app.register_blueprint(bp)
