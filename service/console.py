"""The console's front page: what an admin sees first, drawn from every domain.

People by source, active grants per resource, who lapses in the next 30 days, held syncs and failed jobs, then
the admin's own keys, the admins and the API clients. Each domain serves its own console routes (admins/,
clients/, directory/, access/, identity/ views, people_pages); this page only reads.
"""

from datetime import UTC, datetime

from flask import Blueprint, redirect, render_template, request

from service import web
from service.access import policy_store
from service.access import store as grant_store
from service.admins import store as admins
from service.admins import webauthn
from service.auth import sessions
from service.auth.guards import session_principal
from service.clients import store as clients
from service.directory import store as sync
from service.identity import profile
from service.jobs import store as jobs
from service.training import outlook

bp = web.console_blueprint("console", __name__)
home = Blueprint("home", __name__)
LAPSE_DAYS = 30


@home.get("/")
def front():
    """What to do next: with no admin yet, how to enroll the first; else the console (or the people pages)."""
    with web.connection() as conn:
        admins_exist = bool(admins.list_admins(conn))
    base = web.services().settings.public_base_url
    here = request.host_url.rstrip("/")
    if admins_exist and here == base:
        return redirect("/admin")
    response = render_template("index.html", admins_exist=admins_exist, base=base, here=here)
    return response


@bp.get("")
def console():
    principal = session_principal()
    if principal is not None and principal.kind == "person" and "hr" in principal.roles:
        return redirect("/admin/people")  # hr reads the people pages; the rest of the console is the admins'
    if principal is not None and principal.kind == "person" and "auditor" in principal.roles:
        return redirect("/admin/audit")
    if principal is None or principal.kind != "admin":
        return render_template("admin_login.html"), 401
    now = datetime.now(UTC)
    with web.connection() as conn:
        keys = admins.keys_of(conn, principal.id)
        everyone = admins.list_admins(conn)
        api_clients = clients.list_all(conn)
        held = sync.list_runs(conn, state="held")
        by_source = profile.people_by_source(conn)
        per_resource = grant_store.grants_per_resource(conn)
        lapsing = outlook.lapsing_within(conn, web.services().policy, now, days=LAPSE_DAYS)
        failed = jobs.failed_runs(conn)
        held_policy = policy_store.held(conn)
    return render_template("admin_console.html", me=principal, keys=keys, admins=everyone, clients=api_clients,
                           held=held, held_policy=held_policy, by_source=by_source, per_resource=per_resource,
                           lapsing=lapsing,
                           lapse_days=LAPSE_DAYS, failed=failed, csrf=sessions.csrf_token(web.services(), request),
                           b64=webauthn.b64)


def init_app(app) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(home)
