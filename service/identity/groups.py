"""Groups and their members."""

import dataclasses
import uuid
from datetime import datetime

import psycopg
from psycopg import sql

from service.db.query import required, scalar
from service.errors import BadRequest, Conflict, GatehouseError

_COLUMNS = sql.SQL("g.id::text, g.display_name, g.external_id, g.source, g.version, g.created_at, g.updated_at")
_MEMBERS = sql.SQL("""coalesce((SELECT jsonb_agg(jsonb_build_array(m.person_id::text,
                                                   coalesce(m.display, p.display_name, p.user_name))
                                 ORDER BY m.added_at, m.person_id)
                      FROM group_members m JOIN people p ON p.id = m.person_id WHERE m.group_id = g.id), '[]')""")


@dataclasses.dataclass(frozen=True)
class Member:
    person_id: str
    display: str  # as the client sent it, else the person's display name, else their userName


@dataclasses.dataclass(frozen=True)
class Group:
    id: str
    display_name: str
    external_id: str | None
    source: str
    version: int
    created_at: datetime
    updated_at: datetime
    members: tuple[Member, ...] | None  # None when not loaded

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'


def _group(row, with_members: bool) -> Group:
    members = tuple(Member(pid, display) for pid, display in row[7]) if with_members else None
    group_id, display_name, external_id, source, version, created_at, updated_at = row[:7]
    return Group(group_id, display_name, external_id, source, version, created_at, updated_at, members)


def _select(where: sql.Composable, with_members: bool) -> sql.Composed:
    extra = _MEMBERS if with_members else sql.SQL("NULL")
    return sql.SQL("SELECT {}, {} FROM groups g WHERE {}").format(_COLUMNS, extra, where)


def get(conn: psycopg.Connection, group_id: str, *, lock: bool = False, with_members: bool = True) -> Group | None:
    try:
        uuid.UUID(group_id)
    except (ValueError, TypeError):
        return None
    query = _select(sql.SQL("g.id = %s"), with_members) + (sql.SQL(" FOR UPDATE OF g") if lock else sql.SQL(""))
    row = conn.execute(query, (group_id,)).fetchone()
    return _group(row, with_members) if row else None


def search(conn: psycopg.Connection, where: sql.Composable | None, params: dict, *, offset: int, limit: int,
           with_members: bool = True) -> tuple[int, list[Group]]:
    condition = where if where is not None else sql.SQL("true")
    total = scalar(conn, sql.SQL("SELECT count(*) FROM groups g WHERE {}").format(condition), params)
    if limit <= 0 or offset >= total:
        return total, []
    query = _select(condition, with_members) + sql.SQL(" ORDER BY g.created_at, g.id OFFSET %(_o)s LIMIT %(_l)s")
    rows = conn.execute(query, {**params, "_o": offset, "_l": limit}).fetchall()
    return total, [_group(r, with_members) for r in rows]


def _check_members(conn: psycopg.Connection, members: list[tuple[str, str | None]]) -> list[str]:
    ids = list(dict.fromkeys(pid for pid, _ in members))
    try:
        [uuid.UUID(i) for i in ids]
    except ValueError:
        raise BadRequest("members must be the ids of people") from None
    known = {r[0] for r in conn.execute("SELECT id::text FROM people WHERE id = ANY(%s::uuid[]) AND deleted_at IS NULL",
                                        (ids,))}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise BadRequest(f"no person with id {unknown[0]}")
    return ids


def _refused(e: psycopg.Error, name: str) -> GatehouseError:
    """A database refusal of a group's values, by constraint name: never a 500."""
    constraint = getattr(e.diag, "constraint_name", None) or ""
    if isinstance(e, psycopg.errors.UniqueViolation):
        error = Conflict(f"a group named {name!r} exists")
        error.code = "uniqueness"
        return error
    if constraint == "groups_display_name_check":
        return BadRequest("displayName must be 1 to 256 characters")
    return BadRequest(f"a value cannot be stored ({constraint or e.sqlstate})")


_REFUSALS = (psycopg.errors.IntegrityError, psycopg.errors.DataError, psycopg.errors.ProgramLimitExceeded)
# A display is kept only where it differs from the person's own (so a rename of the person still shows).
_SET_MEMBERS = """
INSERT INTO group_members (group_id, person_id, display)
SELECT %(g)s, p.id, NULLIF(s.display, coalesce(p.display_name, p.user_name))
FROM unnest(%(ids)s::uuid[], %(displays)s::text[]) AS s(person_id, display) JOIN people p ON p.id = s.person_id
ON CONFLICT (group_id, person_id) DO UPDATE SET display = EXCLUDED.display
"""


def _write_members(conn: psycopg.Connection, group_id: str, members: list[tuple[str, str | None]]) -> None:
    displays = dict(members)
    conn.execute(_SET_MEMBERS, {"g": group_id, "ids": list(displays), "displays": list(displays.values())})


def create(conn: psycopg.Connection, *, display_name: str, external_id: str | None,
           members: list[tuple[str, str | None]], source: str) -> Group:
    """A new group with its members, each (person id, display as sent or None)."""
    _check_members(conn, members)
    try:  # no savepoint: a refusal aborts the caller's transaction
        group_id = scalar(conn,
            "INSERT INTO groups (display_name, external_id, source) VALUES (%s, %s, %s) RETURNING id::text",
            (display_name, external_id, source))
        _write_members(conn, group_id, members)
    except _REFUSALS as e:
        raise _refused(e, display_name) from None
    return required(get(conn, group_id), f"group {group_id}")


def replace(conn: psycopg.Connection, group: Group, *, display_name: str, external_id: str | None,
            members: list[tuple[str, str | None]]) -> tuple[Group, dict]:
    """Set name, external id and members (with their displays); return the group and what changed."""
    ids = _check_members(conn, members)
    if group.members is None:
        raise ValueError("replacing a group's members needs them loaded")
    before = {m.person_id: m.display for m in group.members}
    added, removed = [i for i in ids if i not in before], sorted(set(before) - set(ids))
    redisplayed = [pid for pid, display in members if pid in before and display and display != before[pid]]
    changes: dict[str, list] = {}
    if display_name != group.display_name:
        changes["display_name"] = [group.display_name, display_name]
    if external_id != group.external_id:
        changes["external_id"] = [group.external_id, external_id]
    if added:
        changes["members_added"] = added
    if removed:
        changes["members_removed"] = removed
    if redisplayed:
        changes["members_display"] = sorted(set(redisplayed))
    if not changes:
        return group, {}
    try:
        conn.execute("UPDATE groups SET display_name = %s, external_id = %s, version = version + 1, "
                     "updated_at = now() WHERE id = %s", (display_name, external_id, group.id))
        conn.execute("DELETE FROM group_members WHERE group_id = %s AND person_id = ANY(%s::uuid[])",
                     (group.id, removed))
        _write_members(conn, group.id, [(pid, display) for pid, display in members
                                        if pid in added or pid in redisplayed])
    except _REFUSALS as e:
        raise _refused(e, display_name) from None
    return required(get(conn, group.id), f"group {group.id}"), changes


def delete(conn: psycopg.Connection, group: Group) -> None:
    conn.execute("DELETE FROM groups WHERE id = %s", (group.id,))
