"""The auditor's pages (role auditor, or an admin): the journal searched and exported, the revocation log, a person's
timeline, training compliance and the dashboard's charts. GET only; nothing here changes anything.

They read every domain, so they sit at the top beside the people pages.
"""

from datetime import UTC, datetime, timedelta

from flask import Response, g, redirect, render_template, request, stream_with_context

from service import web
from service.audit import charts, export, query, requests, store
from service.auth import sessions
from service.auth.guards import require_role, session_principal
from service.errors import BadRequest, NotFound
from service.identity import people
from service.journal import Event
from service.training import outlook

bp = web.console_blueprint("console_audit", __name__)
ROLES = ("admin", "auditor")


def _signed_out():
    return render_template("admin_login.html"), 401


def _page(template: str, status: int = 200, **values):
    return render_template(template, me=g.principal, csrf=sessions.csrf_token(web.services(), request),
                           **values), status


@bp.get("/audit")
def dashboard():
    return _signed_out() if session_principal() is None else _dashboard()


@require_role(*ROLES)
def _dashboard():
    now = datetime.now(UTC)
    with web.connection() as conn:
        revoked = charts.chart("Suspensions and revocations per week, by reason",
                               store.revocations_per_week(conn, now))
        checks = charts.chart("Gateway checks per day, allowed and denied", store.decisions_per_day(conn, now))
        campaigns = charts.chart("Access review campaigns: items by outcome", store.campaign_progress(conn))
        courses = outlook.compliance(conn, web.services().policy, now)
    trained = charts.chart("People with current training, per course (%)",
                           [(c.course_name, "current", round(100 * c.current / c.people, 1))
                            for c in courses if c.people], unit="%", scale=100)
    return _page("audit_dashboard.html", charts=[("revocations", revoked), ("training", trained),
                                                 ("checks", checks), ("campaigns", campaigns)],
                 svg=charts.svg, courses=courses)


@bp.get("/audit/journal")
def journal():
    return _signed_out() if session_principal() is None else _journal()


@require_role(*ROLES)
def _journal():
    with web.connection() as conn:
        try:
            search, kept = query.parse(conn, request.args)
            before = query.cursor(request.args, "before")
        except (BadRequest, NotFound) as e:
            return _page("audit_journal.html", e.status, error=e.message, kept=request.args, rows=[], more=None)
        rows = store.page(conn, search, before=before)
    more = rows[-1].seq if len(rows) == store.PAGE else None
    return _page("audit_journal.html", error=None, kept=kept, rows=rows, more=more, kinds=store.REVOKING)


@bp.get("/audit/journal.<fmt>")
def journal_export(fmt: str):
    return _signed_out() if session_principal() is None else _export(fmt)


@require_role(*ROLES)
def _export(fmt: str):
    """The whole search, streamed (no page limit): the rows are read through a server-side cursor as they go."""
    if fmt not in export.FORMATS:
        raise NotFound(f"no export format {fmt!r}: csv or jsonl")
    with web.connection() as conn:
        search, _ = query.parse(conn, request.args)  # refused before the stream starts: a clear 400

    def rows():
        with web.transaction() as conn:
            if fmt == "csv":
                yield from export.csv_rows(store.stream(conn, search))
            else:
                yield from store.copy_lines(conn, search)

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Response(stream_with_context(rows()), mimetype=export.FORMATS[fmt],
                    headers={"Content-Disposition": f'attachment; filename="gatehouse-journal-{stamp}.{fmt}"',
                             "Cache-Control": "no-store"})


@bp.get("/audit/revocations")
def revocations():
    return _signed_out() if session_principal() is None else _revocations()


@require_role(*ROLES)
def _revocations():
    with web.connection() as conn:
        try:
            search, kept = query.parse(conn, request.args)
            before = query.cursor(request.args, "before")
        except (BadRequest, NotFound) as e:
            return _page("audit_revocations.html", e.status, error=e.message, kept=request.args, found=[],
                         more=None)
        found = store.revocations(conn, search, before=before)
    more = found[-1].entry.seq if len(found) == store.PAGE else None
    return _page("audit_revocations.html", error=None, kept=kept, found=found, more=more)


@bp.get("/audit/people/<person_id>")
def timeline(person_id: str):
    return _signed_out() if session_principal() is None else _timeline(person_id)


@require_role(*ROLES)
def _timeline(person_id: str):
    with web.connection() as conn:
        found = store.person_by_ref(conn, person_id)
        if found is None:
            raise NotFound("no such person")
        person = people.get(conn, found[0], deleted=True)
        before = query.cursor(request.args, "before")
        rows = store.page(conn, store.Search(subject=found[0]), before=before)
    more = rows[-1].seq if len(rows) == store.PAGE else None
    return _page("audit_timeline.html", person=person, rows=rows, more=more)


@bp.get("/audit/training")
def training():
    return _signed_out() if session_principal() is None else _training()


@require_role(*ROLES)
def _training():
    with web.connection() as conn:
        courses = outlook.compliance(conn, web.services().policy, datetime.now(UTC))
    return _page("audit_training.html", courses=courses)


@bp.post("/audit/evidence")
def evidence_request():
    return _signed_out() if session_principal() is None else _evidence_request()


@require_role(*ROLES)
def _evidence_request():
    """Queue the evidence bundle of [since, until] (dates) for the worker; the request journaled with it. Nothing
    else changes: the bundle is built by the evidence_export job, never inside this request."""
    since = query.instant(request.form.get("since"), "since")
    until = query.instant(request.form.get("until"), "until", end=True)
    if since is None or until is None or since >= until:
        raise BadRequest("since and until (dates, since before until) are required")
    with web.transaction() as conn:
        requests.queue(conn, by=g.principal.actor, since=since, until=until)
    return redirect("/admin/audit/evidence", code=303)


@bp.get("/audit/evidence")
def evidence_list():
    return _signed_out() if session_principal() is None else _evidence_list()


@require_role(*ROLES)
def _evidence_list():
    with web.connection() as conn:
        found = requests.recent(conn)
    return _page("audit_evidence.html", found=found)


@bp.get("/audit/evidence/<request_id>.zip")
def evidence_download(request_id: str):
    return _signed_out() if session_principal() is None else _evidence_download(request_id)


@require_role(*ROLES)
def _evidence_download(request_id: str):
    """A built bundle, streamed from its stored parts; its download journaled (who, which bundle, its hash)."""
    if not request_id.isdigit() or len(request_id) > 18:
        raise NotFound("no built evidence bundle with that number")
    with web.connection() as conn:
        found = requests.get(conn, int(request_id))
    if found is None or found.state != "done":
        raise NotFound("no built evidence bundle with that number")
    web.services().journal.record(Event(kind="admin", outcome="ok", actor=g.principal.actor, detail={
        "action": "evidence.download", "request": found.id, "sha256": found.sha256}))

    def body():
        with web.connection() as conn:
            yield from requests.parts(conn, found.id)

    name = f"gatehouse-evidence-{found.since.date()}-{(found.until - timedelta(seconds=1)).date()}.zip"
    return Response(stream_with_context(body()), mimetype="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Content-Length": str(found.bytes),
        "Cache-Control": "no-store"})


def init_app(app) -> None:
    app.register_blueprint(bp)
