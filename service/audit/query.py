"""A journal search as the auditor's pages and the SIEM API take it from a query string; bad values refused whole."""

from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta

import psycopg

from service.audit import store
from service.audit.store import Search
from service.errors import BadRequest, NotFound
from service.journal import KINDS

MAX_TEXT = 256


def parse(conn: psycopg.Connection, args: Mapping[str, str]) -> tuple[Search, dict[str, str]]:
    """The Search the arguments ask for, and the arguments kept (to carry into the next page's and the export's
    links). Unknown kinds, bad instants and control characters are a BadRequest; a person nobody is NotFound."""
    kept = {k: v.strip() for k in ("person", "resource", "kind", "outcome", "reason", "actor", "since", "until")
            if (v := args.get(k, "")).strip()}
    for name, value in kept.items():
        if len(value) > MAX_TEXT or not value.isprintable():
            raise BadRequest(f"{name} must be at most {MAX_TEXT} printable characters")
    kinds = tuple(k for k in kept.get("kind", "").split(",") if k)
    if unknown := [k for k in kinds if k not in KINDS]:
        raise BadRequest(f"unknown kind {unknown[0]!r}: one of {', '.join(KINDS)}")
    subject = None
    if "person" in kept:
        found = store.person_by_ref(conn, kept["person"])
        if found is None:
            raise NotFound(f"no person is named {kept['person']!r}")
        subject = found[0]
    since, until = instant(kept.get("since"), "since"), instant(kept.get("until"), "until", end=True)
    if since and until and since >= until:
        raise BadRequest("since must be before until")
    return Search(subject=subject, resource=kept.get("resource"), kinds=kinds, outcome=kept.get("outcome"),
                  reason=kept.get("reason"), actor=kept.get("actor"), since=since, until=until), kept


def cursor(args: Mapping[str, str], name: str) -> int | None:
    """A keyset cursor (a seq), or None; anything but a non-negative integer is a BadRequest."""
    value = args.get(name)
    if value in (None, ""):
        return None
    if not value.isdigit() or len(value) > 19:
        raise BadRequest(f"{name} must be a journal seq (a non-negative integer)")
    return int(value)


def instant(value: str | None, name: str, *, end: bool = False) -> datetime | None:
    """An ISO 8601 date or instant; a bare date is UTC midnight (an `until` date includes that whole day)."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            midnight = datetime.combine(datetime.fromisoformat(value).date(), time(), UTC)
            return midnight + timedelta(days=1) if end else midnight
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name} must be an ISO 8601 date or instant, e.g. 2026-10-01 or 2026-10-01T09:00:00Z") \
            from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

