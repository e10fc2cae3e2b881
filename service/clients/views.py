"""Console routes for API clients: create, revoke, rotate a secret, issue a SCIM pusher's token.

Each is an admin action bound to a WebAuthn assertion; a secret is shown in its response only.
"""

from flask import jsonify

from service import web
from service.admins.stepup import Proof, requires_webauthn
from service.clients import actions

bp = web.console_blueprint("console_clients", __name__)


def _act(proof: Proof, change):
    """Run the use case and record the admin's proof with its detail, in one transaction."""
    with web.transaction() as conn:
        result, detail = change(conn)
        proof.record(conn, **detail)
    return result


def _name(params) -> str:
    return str(params.get("name", ""))


@bp.post("/api/clients/create")
@requires_webauthn("clients.create")
def clients_create(params, proof: Proof):
    """Create an API client; its secret is in this response only."""
    issued = _act(proof, lambda conn: actions.create(conn, name=_name(params), scopes=params.get("scopes") or [],
                                                     actor=proof.principal.actor))
    return jsonify(ok=True, client_id=issued.client.client_id, secret=issued.secret)


@bp.post("/api/clients/revoke")
@requires_webauthn("clients.revoke")
def clients_revoke(params, proof: Proof):
    _act(proof, lambda conn: actions.revoke(conn, _name(params)))
    return jsonify(ok=True)


@bp.post("/api/clients/rotate")
@requires_webauthn("clients.rotate")
def clients_rotate(params, proof: Proof):
    """A new secret for a client (its access tokens stop working); in this response only."""
    issued = _act(proof, lambda conn: actions.rotate(conn, _name(params)))
    return jsonify(ok=True, client_id=issued.client.client_id, secret=issued.secret)


@bp.post("/api/clients/token")
@requires_webauthn("clients.token")
def clients_token(params, proof: Proof):
    """A static bearer token for a SCIM pusher (Okta, Entra); in this response only."""
    issued = _act(proof, lambda conn: actions.issue_token(conn, _name(params)))
    return jsonify(ok=True, client=issued.client.name, token=issued.secret)


def init_app(app) -> None:
    app.register_blueprint(bp)
