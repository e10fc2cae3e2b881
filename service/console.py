"""The console's front page: what an admin sees first, drawn from every domain (keys, admins, clients, held syncs).

Each domain serves its own console routes (admins/, clients/, directory/, access/ views); this page only reads.
"""

from flask import render_template, request

from service import web
from service.access import policy_store
from service.admins import store as admins
from service.admins import webauthn
from service.auth import sessions
from service.auth.guards import session_principal
from service.clients import store as clients
from service.directory import store as sync

bp = web.console_blueprint("console", __name__)


@bp.get("")
def console():
    principal = session_principal()
    if principal is None or principal.kind != "admin":
        return render_template("admin_login.html"), 401
    with web.connection() as conn:
        keys = admins.keys_of(conn, principal.id)
        everyone = admins.list_admins(conn)
        api_clients = clients.list_all(conn)
        held = sync.list_runs(conn, state="held")
        held_policy = policy_store.held(conn)
    return render_template("admin_console.html", me=principal, keys=keys, admins=everyone, clients=api_clients,
                           held=held, held_policy=held_policy, csrf=sessions.csrf_token(web.services(), request),
                           b64=webauthn.b64)


def init_app(app) -> None:
    app.register_blueprint(bp)
