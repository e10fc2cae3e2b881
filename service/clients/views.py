"""Console routes for API clients: create, revoke, rotate a secret, issue a SCIM pusher's token.

Each is an admin action bound to a WebAuthn assertion; a secret is shown in its response only.
"""

from flask import jsonify

from service import web
from service.admins.stepup import Proof, requires_webauthn
from service.clients import store as clients

bp = web.console_blueprint("console_clients", __name__)


@bp.post("/api/clients/create")
@requires_webauthn("clients.create")
def clients_create(params, proof: Proof):
    """Create an API client; its secret is in this response only."""
    with web.services().pool.connection() as conn, conn.transaction():
        issued = clients.create(conn, name=str(params.get("name", "")), scopes=params.get("scopes") or [],
                                created_by=proof.principal.actor)
        proof.record(conn, client=issued.client.name, client_id=issued.client.client_id,
                     scopes=list(issued.client.scopes))
    return jsonify(ok=True, client_id=issued.client.client_id, secret=issued.secret)


@bp.post("/api/clients/revoke")
@requires_webauthn("clients.revoke")
def clients_revoke(params, proof: Proof):
    with web.services().pool.connection() as conn, conn.transaction():
        client, tokens = clients.revoke(conn, str(params.get("name", "")))
        proof.record(conn, client=client.name, client_id=client.client_id, tokens_revoked=tokens)
    return jsonify(ok=True)


@bp.post("/api/clients/rotate")
@requires_webauthn("clients.rotate")
def clients_rotate(params, proof: Proof):
    """A new secret for a client (its access tokens stop working); in this response only."""
    with web.services().pool.connection() as conn, conn.transaction():
        issued = clients.rotate_secret(conn, str(params.get("name", "")))
        proof.record(conn, client=issued.client.name, client_id=issued.client.client_id)
    return jsonify(ok=True, client_id=issued.client.client_id, secret=issued.secret)


@bp.post("/api/clients/token")
@requires_webauthn("clients.token")
def clients_token(params, proof: Proof):
    """A static bearer token for a SCIM pusher (Okta, Entra); in this response only."""
    with web.services().pool.connection() as conn, conn.transaction():
        issued = clients.issue_static_token(conn, str(params.get("name", "")))
        proof.record(conn, client=issued.client.name, client_id=issued.client.client_id)
    return jsonify(ok=True, client=issued.client.name, token=issued.secret)


def init_app(app) -> None:
    app.register_blueprint(bp)
