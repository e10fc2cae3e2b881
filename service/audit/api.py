"""The journal for machines (scope journal:read): a SIEM pulls it in order, `GET /api/v1/journal?after_seq=N`, and
asks for Merkle proofs, `GET /api/v1/journal/{seq}/proof` and `/api/v1/journal/consistency`.

Each row comes with its prev_hash and hash, so the puller checks the chain as it goes (the first row's prev_hash
is the hash of the row it already has) and notices a rewritten history without trusting this server. Reading a
proof extends the stored tree to the head (append-only nodes), so those views run in a transaction; a proof names
the signed checkpoint of its tree size, if one is stored, for the caller to verify the root against.
"""

from flask import Blueprint, Response, jsonify, request

from service import web
from service.audit import query, store
from service.auth.guards import require_scope
from service.errors import BadRequest
from service.journal import proofs

bp = Blueprint("journal_api", __name__, url_prefix="/api/v1/journal")
SCOPE = "journal:read"


@bp.get("")
@require_scope(SCOPE)
def pull():
    """Rows after `after_seq` (default 0), oldest first, at most `limit` (default 500, at most 1000); the same
    filters as the auditor's search (kind, resource, outcome, reason, actor, person, since, until)."""
    after = query.cursor(request.args, "after_seq") or 0
    limit = query.cursor(request.args, "limit")
    limit = 500 if limit is None else limit
    if not 1 <= limit <= store.MAX_PAGE:
        raise BadRequest(f"limit must be 1 to {store.MAX_PAGE}")
    with web.connection() as conn:
        search, _ = query.parse(conn, request.args)
        rows = store.page(conn, search, after=after, limit=limit)
        head = store.head(conn)
    # Built as text, not through jsonify: each row's reasons and detail go out as the very jsonb text the hash
    # covers (a JSON re-encoding could reorder keys or reformat numbers, and the SIEM's check would fail).
    body = ('{"rows":[' + ",".join(r.as_json() for r in rows) + "],"
            f'"next_after_seq":{rows[-1].seq if rows else after},"head":{{"seq":{head[0]},"hash":"{head[1]}"}}}}')
    return Response(body, mimetype="application/json")


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
