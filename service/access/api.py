"""The access API gateways call: may this person use this resource now? Load, decide, journal, answer.

Fail closed: when the facts cannot be read or the decision cannot be journaled,
the answer is allow false (HTTP 503, reason `unavailable`), never allow.
"""

import contextlib
import dataclasses
import hashlib
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
from flask import Blueprint, current_app, g, jsonify, request

from policies import Decision, decide, unavailable
from service import metrics, web
from service.access import facts as access
from service.access.resources import sync_resources_at
from service.auth.guards import authorize_scope, require_scope
from service.auth.principal import Principal
from service.db import first_line
from service.errors import BadRequest, DatabaseUnavailable, GatehouseError, NotFound
from service.journal import Event

log = logging.getLogger(__name__)
bp = Blueprint("access", __name__, url_prefix="/api/v1/access")
SCOPE = "access:check"
MAX_VALUE = 256


@bp.record_once
def _sync_resources(state) -> None:
    """Make the policy's resources exist when the app starts; `gatehouse serve` has done so already."""
    services = state.app.extensions["gatehouse"]
    try:
        sync_resources_at(services.database.app_url, services.policy, timeout=services.settings.db_timeout)
    except DatabaseUnavailable as e:
        log.warning("policy resources not synced at start: %s", e.message)


@dataclasses.dataclass(frozen=True)
class Checked:
    """A decision and where the journal recorded it."""

    decision: Decision
    decision_id: int


def check(principal: Principal, user: str, resource: str, detail: dict) -> Checked:
    """Load the facts, decide at now, journal the decision; returns once the journal row has committed."""
    services = web.services()
    with metrics.step("facts"), _reading(services) as conn:
        loaded = access.load_facts(conn, user, resource, identifiers=services.settings.check_identifiers)
    with metrics.step("decide"):
        decision = decide(loaded.facts, services.policy, datetime.now(UTC))
    if loaded.facts.ambiguous:  # no subject: every person the reference named, for whoever looks into it
        detail = {**detail, "ambiguous": list(loaded.facts.ambiguous)}
    with metrics.step("journal_wait"):
        receipt = services.journal.record(Event(
            kind="check", outcome="allow" if decision.allow else "deny", actor=principal.actor,
            subject=loaded.person_id, resource=resource, reasons=tuple(_reasons(decision)), detail=detail,
            policy_version=decision.policy_version))
    metrics.checked(decision)
    return Checked(decision, receipt.seq)


@contextlib.contextmanager
def _reading(services) -> Iterator[psycopg.Connection]:
    """A pooled connection for reads; any database failure (PoolTimeout included) is DatabaseUnavailable."""
    try:
        with services.pool.connection() as conn:
            # Autocommit, as the pool's own check does: a read needs no BEGIN and COMMIT round trips.
            conn.autocommit = True
            try:
                yield conn
            finally:
                with contextlib.suppress(psycopg.Error):  # a broken connection is discarded by the pool
                    conn.autocommit = False
    except psycopg.Error as e:
        raise DatabaseUnavailable(f"the facts could not be read: {first_line(e)}") from None


@bp.post("/check")
def check_post():
    """POST {user, resource}: the decision."""
    return _answer(lambda: _pair(_json_object()))


@bp.get("/check")
def check_get():
    """GET ?user=&resource=: the decision."""
    return _answer(lambda: _pair(request.args))


def _answer(read_input):
    with metrics.check_timer():
        try:
            with metrics.step("token"):
                principal = authorize_scope(SCOPE, journal_kind="check")
            user, resource = read_input()
            checked = check(principal, user, resource, {"user": user})
        except DatabaseUnavailable as e:
            return _unavailable(e)
        with metrics.step("respond"):
            return jsonify(allow=checked.decision.allow, reasons=_reasons(checked.decision),
                           decision_id=checked.decision_id, policy_version=checked.decision.policy_version)


def _failed_closed(e: DatabaseUnavailable) -> Decision:
    log.warning("access check failed closed: %s", e.message)
    decision = unavailable(web.services().policy.version)
    metrics.checked(decision)
    return decision


def _unavailable(e: DatabaseUnavailable):
    decision = _failed_closed(e)
    response = jsonify(allow=False, reasons=_reasons(decision), decision_id=None,
                       policy_version=decision.policy_version, code="unavailable")
    response.status_code = 503
    response.headers["Retry-After"] = "5"
    return response


@bp.post("/radius")
def radius():
    """FreeRADIUS rlm_rest: 200 to accept, 401 to reject; it reads the reply body on those two only."""
    try:
        principal = authorize_scope(SCOPE, journal_kind="check")
        body = _json_object()
        user, resource = _value(body, "user"), _value(body, "resource", default="vpn")
        checked = check(principal, user, resource, {"user": user, "via": "radius"})
    except DatabaseUnavailable as e:
        return _radius_reply(401, "unavailable: " + _failed_closed(e).reasons[0].text)
    except GatehouseError as e:  # refused or bad input: reject, with the reason FreeRADIUS can log
        return _radius_reply(401, f"{e.code}: {e.message}")
    decision = checked.decision
    return _radius_reply(200 if decision.allow else 401, "; ".join(r.text for r in decision.reasons))


def _radius_reply(status: int, message: str):
    # do_xlat false, per attribute: FreeRADIUS 3.2 honours it only inside the attribute's object (a
    # top-level "do_xlat" is ignored), and must never expand %{...} in our text (it leaked passwords).
    response = jsonify({"reply:Reply-Message": {"value": message, "do_xlat": False}})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="gatehouse"'
    return response


@bp.get("/resources/<resource>/members")
@require_scope(SCOPE, journal_kind="check")
def members(resource: str):
    """The userNames allowed to use the resource now, with an ETag over the list and the policy version."""
    services = web.services()
    _check_value(resource, "resource")
    with _reading(services) as conn:
        found = access.load_members(conn, resource)
        if not found and not access.resource_exists(conn, resource):
            raise NotFound(f"no such resource: {resource}")
    now, policy = datetime.now(UTC), services.policy
    names = sorted(m.user_name for m in found if decide(m.facts, policy, now).allow)
    etag = hashlib.sha256("\n".join([policy.version, *names]).encode()).hexdigest()[:32]
    fresh = etag in request.if_none_match
    services.journal.record(Event(
        kind="check", outcome="members", actor=g.principal.actor, resource=resource,
        detail={"members": len(names), "etag": etag, "not_modified": fresh},
        policy_version=policy.version))
    response = current_app.response_class(status=304) if fresh else jsonify(
        resource=resource, members=names, policy_version=policy.version)
    response.set_etag(etag)
    return response


def _json_object() -> dict:
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # json.loads recurses per bracket and raises this, not a ValueError
        body = None
    if not isinstance(body, dict):
        raise BadRequest("expected a JSON object with Content-Type: application/json")
    return body


def _pair(source) -> tuple[str, str]:
    return _value(source, "user"), _value(source, "resource")


def _value(source, name: str, *, default: str | None = None) -> str:
    value = source.get(name, default)
    if value is None:
        raise BadRequest(f"{name} is required")
    return _check_value(value, name)


def _check_value(value, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{name} must be a non-empty string")
    if len(value) > MAX_VALUE:
        raise BadRequest(f"{name} is longer than {MAX_VALUE} characters")
    if not value.isprintable():  # control characters, NUL and lone surrogates never name anyone
        raise BadRequest(f"{name} contains control or unencodable characters")
    return value


def _reasons(decision: Decision) -> list[dict]:
    return [{"code": r.code, "text": r.text} for r in decision.reasons]
