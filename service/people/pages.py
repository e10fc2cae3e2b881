"""The people pages: search people, and one person's whole story. Read-only, for admins and for the hr role.

They read every domain (identity, access, training, journal), so they sit at the top like console.py. No route
here changes anything; an admin's role buttons post to identity/views.py, behind a WebAuthn step-up.
"""

from datetime import UTC, datetime

from flask import abort, g, render_template, request

from policies import decide, training_status
from service import journal, web
from service.access import facts as access_facts
from service.access import store as grant_store
from service.auth import sessions
from service.auth.guards import require_role, session_principal
from service.db.query import scalar
from service.identity import people, profile, roles
from service.training import store as training

bp = web.console_blueprint("console_people", __name__)
MAX_QUERY = 256


def _signed_out():
    """No session: the sign-in page (admins: security key; hr: SSO), not a JSON 401."""
    return render_template("admin_login.html"), 401


@bp.get("/people")
def search():
    if session_principal() is None:
        return _signed_out()
    return _search()


@require_role("admin", "hr")
def _search():
    q = request.args.get("q", "")[:MAX_QUERY]
    with web.connection() as conn:
        found = profile.search(conn, q)
    return render_template("people.html", me=g.principal, q=q, found=found, limit=profile.SEARCH_LIMIT,
                           csrf=sessions.csrf_token(web.services(), request))


@bp.get("/people/<person_id>")
def person(person_id: str):
    if session_principal() is None:
        return _signed_out()
    return _person(person_id)


@require_role("admin", "hr")
def _person(person_id: str):
    policy = web.services().policy
    now = datetime.now(UTC)
    with web.connection() as conn:
        found = people.get(conn, person_id, deleted=True)
        if found is None:
            abort(404, "no such person")
        view = {
            "person": found, "manager": profile.name_of(conn, found.manager_id),
            "reports": profile.reports_of(conn, found.id), "groups": profile.groups_of(conn, found.id),
            "roles": roles.roles_of(conn, found.id), "grants": _grants(conn, found, policy, now),
            "completions": training.completions_of(conn, found.id),
            "training": training_status(training.latest_completions(conn, found.id), policy.training, now,
                                        started_at=_started(conn, found.id), department=found.department),
            "journal": journal.recent_about(conn, found.id),
        }
    names = {t.course: t.name for t in policy.training}
    return render_template("person.html", me=g.principal, now=now, course_names=names, grantable=roles.GRANTABLE,
                           csrf=sessions.csrf_token(web.services(), request), **view)


def _started(conn, person_id: str) -> datetime:
    return scalar(conn, "SELECT started_at FROM people WHERE id = %s", (person_id,))


def _grants(conn, person: people.Person, policy, now: datetime) -> list[tuple]:
    """Each grant with the answer a gateway would get now and its reasons (decide, as the check does)."""
    shown = []
    for held in grant_store.grants_of(conn, person.id):
        facts = access_facts.load_facts(conn, person.user_name, held.resource, identifiers=("user_name",)).facts
        shown.append((held, decide(facts, policy, now)))
    return shown


def init_app(app) -> None:
    app.register_blueprint(bp)
