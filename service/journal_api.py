"""GET /api/v1/journal/{seq}/proof and /api/v1/journal/consistency (scope journal:read): the Merkle proofs.

Reading a proof extends the stored tree to the head (append-only nodes), so
the view runs in a transaction; the proof names the signed checkpoint of its
tree size, if one is stored, for the caller to verify the root against.
"""

from flask import Blueprint, jsonify, request

from service import web
from service.auth.guards import require_scope
from service.errors import BadRequest
from service.journal import proofs

bp = Blueprint("journal_api", __name__, url_prefix="/api/v1/journal")
SCOPE = "journal:read"


def _size(name: str, *, required: bool = False, raw: str | None = None) -> int | None:
    raw = request.args.get(name) if raw is None else raw
    if raw is None or raw == "":
        if required:
            raise BadRequest(f"the query parameter {name} is required")
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18 or int(raw) < 1:
        raise BadRequest(f"{name} must be a whole number from 1, got {raw[:40]!r}")
    return int(raw)


@bp.get("/<seq>/proof")
@require_scope(SCOPE, journal_kind="admin")
def proof(seq: str):
    """Row seq's RFC 9162 inclusion proof (tree_size: default the newest checkpoint covering it, else the head)."""
    row, size = _size("seq", raw=seq) or 0, _size("tree_size")
    with web.transaction() as conn:
        return jsonify(proofs.inclusion(conn, row, size))


@bp.get("/consistency")
@require_scope(SCOPE, journal_kind="admin")
def consistency():
    """The RFC 9162 consistency proof between tree sizes `from` and `to`."""
    old, new = _size("from", required=True), _size("to", required=True)
    with web.transaction() as conn:
        return jsonify(proofs.consistency(conn, old or 0, new or 0))
