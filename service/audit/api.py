"""The journal for machines: a SIEM pulls it in order, `GET /api/v1/journal?after_seq=N` (scope journal:read).

Each row comes with its prev_hash and hash, so the puller checks the chain as it goes (the first row's prev_hash
is the hash of the row it already has) and notices a rewritten history without trusting this server.
"""

from flask import Blueprint, Response, request

from service import web
from service.audit import query, store
from service.auth.guards import require_scope
from service.errors import BadRequest

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
