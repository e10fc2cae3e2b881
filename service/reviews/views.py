"""Review pages: the reviewer's page behind the e-mailed link (or SSO), and the console's campaign pages.

GET never writes anything (mail scanners and link previews open links). A decision is a POST from the page,
carrying the page's CSRF token and our Origin. Errors on the reviewer's pages are pages, never tracebacks.
"""

import csv
import io
from datetime import UTC, datetime

from flask import Blueprint, Response, g, jsonify, render_template, request
from markupsafe import Markup

from service import web
from service.admins import webauthn
from service.admins.stepup import Proof, requires_webauthn
from service.auth import sessions
from service.auth.guards import require_role, session_principal
from service.errors import BadRequest, NotFound
from service.reviews import campaigns, chart, decisions, links
from service.reviews import store as reviews

bp = Blueprint("reviews", __name__)
console = web.console_blueprint("console_reviews", __name__)

def _now() -> datetime:
    return datetime.now(UTC)


def _message(status: int, title: str, text: str):
    return render_template("review_message.html", title=title, message=text), status


@bp.get("/reviews/<token>")
def review_page(token: str):
    """The reviewer's items, evidence and what was decided; read only."""
    services = web.services()
    now = _now()
    try:
        with web.connection() as conn:
            campaign, reviewer_id = decisions.resolve(conn, token)
            shown = decisions.page(conn, services.policy, campaign, reviewer_id, now=now)
            secret = reviews.secret(conn, links.SECRET_NAME, create=False)
    except decisions.Refused as e:
        return _message(403, "Review link not valid", e.message)
    return _render(shown, token, secret, now)


def _render(shown: decisions.Page, token: str, secret: bytes, now: datetime, *, outcome=None, error=None,
            status: int = 200, delegated=None):
    needs_sso = web.services().policy.reviews.require_sso and not _signed_in_as(shown.reviewer_id)
    return render_template(
        "review_page.html", page=shown, token=token, csrf=links.csrf(secret, token),
        opened=decisions.opened_token(secret, now), outcome=outcome, error=error, needs_sso=needs_sso,
        delegated=delegated,
        open_count=sum(1 for r in shown.rows if decisions._open_for(r.item, shown.reviewer_id)),
        at=lambda m: m.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if m else "never"), status


def _signed_in_as(person_id: str) -> bool:
    principal = session_principal()
    return principal is not None and principal.kind == "person" and principal.id == person_id


def _same_origin() -> bool:
    origin = request.headers.get("Origin")
    return origin is None or origin in web.services().settings.allowed_origins


@bp.post("/reviews/<token>")
def review_decide(token: str):
    """Approve or revoke items from the page; a refused POST changes nothing and says why."""
    services = web.services()
    now = _now()
    with web.connection() as conn:
        try:
            campaign, reviewer_id = decisions.resolve(conn, token)
        except decisions.Refused as e:
            return _message(403, "Review link not valid", e.message)
        secret = reviews.secret(conn, links.SECRET_NAME, create=False)
    if not _same_origin() or not links.csrf_ok(secret, token, request.form.get("csrf", "")):
        return _message(403, "Request refused", "This form did not come from your review page; nothing was changed. "
                                                "Open the link from your e-mail again.")
    if services.policy.reviews.require_sso and not _signed_in_as(reviewer_id):
        return _message(403, "Sign in first", "The policy requires you to sign in with your company account "
                                              "before deciding; nothing was changed.")
    if "delegate" in request.form:
        return _delegate(token, secret, campaign, reviewer_id, now)
    try:
        outcome, error, status = _attempt(lambda conn: decisions.decide(
            conn, services.policy, campaign.id, reviewer_id, _choices(request.form), now=now,
            seconds_open=decisions.opened_at(secret, request.form.get("opened"), now),
            actor=f"reviewer:{reviewer_id}", base_url=services.settings.public_base_url))
    except decisions.Refused as e:
        return _message(403, "Not yours to review", f"{e.message}. Nothing was changed.")
    with web.connection() as conn:
        fresh = reviews.campaign(conn, campaign.id)
        shown = decisions.page(conn, services.policy, fresh, reviewer_id, now=now)
    return _render(shown, token, secret, now, outcome=outcome, error=error, status=status)


def _attempt(action) -> tuple:
    """A reviewer's action in one transaction: (its result, None, 200), or (None, why nothing changed, status).
    Refused (not this reviewer's to decide) goes to the caller, which answers with the refusal page."""
    try:
        with web.transaction() as conn:
            return action(conn), None, 200
    except decisions.Closed as e:
        return None, f"Campaign closed: {e.message}. Nothing was changed.", 409
    except BadRequest as e:
        return None, f"{e.message}. Nothing was changed.", 400


def _delegate(token: str, secret: bytes, campaign: reviews.Campaign, reviewer_id: str, now: datetime):
    """The whole open set to another manager; a refusal changes nothing and says why."""
    services = web.services()
    try:
        delegated, error, status = _attempt(lambda conn: decisions.delegate(
            conn, campaign.id, reviewer_id, request.form.get("delegate", ""),
            comment=(request.form.get("delegate_comment") or "").strip() or None, now=now,
            actor=f"reviewer:{reviewer_id}", base_url=services.settings.public_base_url))
    except decisions.Refused as e:
        return _message(403, "Not yours to review", f"{e.message}. Nothing was changed.")
    with web.connection() as conn:
        shown = decisions.page(conn, services.policy, reviews.campaign(conn, campaign.id), reviewer_id, now=now)
    return _render(shown, token, secret, now, delegated=delegated, error=error, status=status)


def _choices(form) -> list[decisions.Choice]:
    """One item's button (decide=<item>:<choice>), or the selected items with "approve all N" confirmed."""
    if "decide" in form:
        item_id, _, choice = form["decide"].partition(":")
        return [decisions.Choice(item_id, choice, _comment(form, item_id))]
    if form.get("bulk") == "approve":
        selected = form.getlist("select")
        if not selected:
            raise BadRequest("select the items to approve")
        if form.get("confirm") != str(len(selected)):
            raise BadRequest(f"confirm the number of items to approve ({len(selected)})")
        return [decisions.Choice(i, "approve", _comment(form, i)) for i in selected]
    raise BadRequest("choose approve or revoke for an item")


def _comment(form, item_id: str) -> str | None:
    return (form.get(f"comment:{item_id}") or "").strip() or None


@bp.get("/reviews")
def my_reviews():
    """A reviewer signed in with SSO: their campaigns with open items, each linking to the same page."""
    principal = session_principal()
    if principal is None or principal.kind != "person":
        return _message(401, "Sign in", "Sign in with your company account to see your reviews: /login")
    with web.connection() as conn:
        secret = reviews.secret(conn, links.SECRET_NAME, create=False)
        rows = [] if secret is None else reviews.campaigns_of(conn, principal.id)
    mine = [(key, due, state, links.make(secret, cid, principal.id)) for cid, key, due, state in rows]
    return render_template("review_mine.html", mine=mine, title="Your access reviews")


# --- the console ---------------------------------------------------------------------------------


@console.get("/reviews")
@require_role("admin", "auditor")
def console_list():
    with web.connection() as conn:
        found = reviews.campaigns(conn)
        queue = reviews.admin_queue(conn)
    resources = [r.key for r in web.services().policy.resources]
    return render_template("admin_reviews.html", me=g.principal, campaigns=found, queue=queue, resources=resources,
                           csrf=sessions.csrf_token(web.services(), request), b64=webauthn.b64)


@console.get("/reviews/<key>")
@require_role("admin", "auditor")
def console_campaign(key: str):
    now = _now()
    with web.connection() as conn:
        c = _campaign(conn, key)
        per = reviews.counts_by(conn, c.id)
        progress = reviews.progress(conn, c.id)
    would_hold = campaigns.held(campaigns.as_item(c), max(now, c.due_at))
    svg = chart.progress_svg(progress, total=c.items_total, start=c.started_at, end=min(now, c.due_at))
    return render_template("admin_review.html", me=g.principal, c=c, per=per, progress=progress,
                           would_hold=would_hold, now=now,
                           chart=Markup(svg),  # noqa: S704 (built from numbers and dates, escaped in chart.py)
                           csrf=sessions.csrf_token(web.services(), request), b64=webauthn.b64)


@console.get("/reviews/<key>.csv")
@require_role("admin", "auditor")
def console_export(key: str):
    with web.connection() as conn:
        c = _campaign(conn, key)
        body = export_csv(reviews.items(conn, c.id))
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="review-{c.key}.csv"'})


def _campaign(conn, key: str) -> reviews.Campaign:
    c = reviews.campaign(conn, key)
    if c is None:
        raise NotFound(f"no campaign {key!r}")
    return c


EXPORT_COLUMNS = ("item", "user", "name", "department", "resource", "via", "reviewer", "route", "decision",
                  "decided_by", "decided_at", "comment", "missed_at", "second_stage_why", "last_used",
                  "recommendation")


def export_csv(found) -> str:
    """Every item with its decision and the evidence recorded with it, one row each."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    for i in found:
        s, e = i.snapshot, i.evidence or {}
        writer.writerow([_cell(v) for v in (
            i.id, s.get("user"), s.get("name"), s.get("department"), i.resource, s.get("via"), i.reviewer_id,
            i.route, i.decision, i.decided_by, i.decided_at.isoformat() if i.decided_at else None, i.comment,
            i.missed_at.isoformat() if i.missed_at else None, i.second_stage_why, e.get("last_used"),
            e.get("recommendation"))])
    return out.getvalue()


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text  # no formulas in a spreadsheet


@console.post("/api/reviews/start")
@requires_webauthn("reviews.start")
def start(params, proof: Proof):
    """Start a campaign over the listed resources, due in N days."""
    resources = [str(r).strip() for r in (params.get("resources") or []) if str(r).strip()]
    if isinstance(params.get("resources"), str):
        resources = [r.strip() for r in params["resources"].split(",") if r.strip()]
    due_days = campaigns.parse_due(str(params.get("due", web.services().policy.reviews.due_days)))
    with web.transaction() as conn:
        started = campaigns.start(conn, web.services().policy, resources=resources, due_days=due_days, now=_now(),
                                  origin="admin", actor=proof.principal.actor,
                                  base_url=web.services().settings.public_base_url)
        proof.record(conn, campaign=started.key, items=started.items)
    return jsonify(ok=True, campaign=started.key, items=started.items, reviewers=started.reviewers,
                   admins_queue=started.admins_queue)


@console.post("/api/reviews/decide")
@requires_webauthn("reviews.decide")
def decide(params, proof: Proof):
    """Approve or revoke an item of the admins' queue (nobody else may review it)."""
    choice = decisions.Choice(str(params.get("item", "")), str(params.get("decision", "")),
                              (str(params.get("comment") or "")).strip() or None)
    with web.transaction() as conn:
        c, item = decisions.admin_decide(conn, web.services().policy, choice.item_id, choice, now=_now(),
                                         actor=proof.principal.actor, admin_email=proof.principal.name)
        proof.record(conn, subject=item.person_id, resource=item.resource, campaign=c.key, item=item.id,
                     decision=choice.decision)
    return jsonify(ok=True, campaign=c.key, item=item.id, decision=choice.decision)


@console.post("/api/reviews/confirm")
@requires_webauthn("reviews.confirm")
def confirm(params, proof: Proof):
    """Confirm a held campaign: its undecided items are revoked by the deadline job."""
    with web.transaction() as conn:
        c = campaigns.confirm(conn, str(params.get("campaign", "")), now=_now(), actor=proof.principal.actor)
        proof.record(conn, campaign=c.key)
    return jsonify(ok=True, campaign=c.key)


@console.post("/api/reviews/extend")
@requires_webauthn("reviews.extend")
def extend(params, proof: Proof):
    """Give reviewers more days (a held campaign opens again)."""
    days = campaigns.parse_due(str(params.get("days", "")))
    with web.transaction() as conn:
        due_at = campaigns.extend(conn, str(params.get("campaign", "")), days=days, now=_now(),
                                  actor=proof.principal.actor)
        proof.record(conn, campaign=str(params.get("campaign", "")), due_at=due_at.isoformat())
    return jsonify(ok=True, due_at=due_at.isoformat())


def init_app(app) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(console)
