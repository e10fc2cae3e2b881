"""Training in: HR's learning system reports completed courses; each item gets its own result."""

from datetime import UTC, datetime

from flask import Blueprint, g, jsonify, request

from service import web
from service.auth.guards import require_scope
from service.errors import BadRequest
from service.training import plan as planning
from service.training import sweep as training

bp = Blueprint("training", __name__, url_prefix="/api/v1/training")
SCOPE = "training:write"


@bp.post("/completions")
@require_scope(SCOPE, journal_kind="sync")
def completions():
    """POST {"completions": [...]}: one transaction; per item accepted, duplicate, unknown_person,
    ambiguous_person or invalid."""
    items = _items()
    with web.transaction(what="the completions could not be recorded") as conn:
        results = training.record_completions(
            conn, items, policy=web.services().policy, now=datetime.now(UTC), actor=g.principal.actor)
    counts = dict.fromkeys(planning.STATUSES, 0)
    for r in results:
        counts[r.status] += 1
    return jsonify(results=[{"index": r.index, "status": r.status, "detail": r.detail} for r in results],
                   counts=counts)


def _items() -> list:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("completions"), list):
        raise BadRequest('expected a JSON object {"completions": [...]} with Content-Type: application/json')
    items = body["completions"]
    if not 1 <= len(items) <= planning.MAX_ITEMS:
        raise BadRequest(f"send between 1 and {planning.MAX_ITEMS} completions per request")
    return items
