"""Directory sync in the database: load what a read may touch, write a plan in bulk, record runs and marks.

Bulk on purpose: a full sync of 100,000 people is a handful of statements
(COPY for new rows, one UPDATE from a temporary table, unnest for the rest),
not 100,000 round trips.
"""

import dataclasses
import functools
import json
from datetime import datetime

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from service import journal
from service.directory.plan import Current, CurrentGroup, Loaded
from service.identity import people
from service.identity.model import primary_email

SOURCE = "ldap"
_VALUES = ("user_name", "given_name", "family_name", "display_name", "emails", "employee_number", "department",
           "title", "manager_id", "manager_ref")
_WRITTEN = sql.SQL(", ").join(map(sql.Identifier, ("id", *_VALUES[:5], "primary_email", *_VALUES[5:], "active",
                                                     "attribute_sources")))


_PERSON = sql.SQL("""
SELECT p.id::text, p.version, p.user_name, p.given_name, p.family_name, p.display_name, p.emails::text,
       p.employee_number, p.department, p.title, p.manager_id::text, p.manager_ref, p.active, p.attribute_sources::text,
       p.deleted_at IS NOT NULL, k.external_id, d.external_id,
       p.source <> 'ldap' OR EXISTS (SELECT 1 FROM person_external_ids o WHERE o.person_id = p.id
                                     AND o.source NOT IN ('ldap', 'ldap:dn')),
       CASE WHEN %(with_ids)s THEN ARRAY(SELECT x.external_id FROM person_external_ids x WHERE x.person_id = p.id) END,
       login_key(p.user_name),
       (SELECT l.logins->>'ldap' FROM person_logins l WHERE l.person_id = p.id AND l.logins ? 'ldap')
FROM people p
LEFT JOIN person_external_ids k ON k.person_id = p.id AND k.source = 'ldap'
LEFT JOIN person_external_ids d ON d.person_id = p.id AND d.source = 'ldap:dn'
WHERE {}
""")
_ALL_KNOWN = "k.external_id IS NOT NULL"
# By key, or by login (a returning entry with a new key); two index lookups, not a scan.
_KNOWN = ("k.external_id IS NOT NULL AND p.id = ANY(ARRAY(SELECT person_id FROM person_external_ids "
          "WHERE source = 'ldap' AND external_id = ANY(%(keys)b) "
          "UNION SELECT person_id FROM person_logins WHERE login_key = ANY(%(name_keys)b)))")
_CANDIDATES = {  # oldest first: the plan joins the first person a value names
    "email": "lower(p.primary_email) = ANY(%(emails)b) ORDER BY p.created_at, p.id",
    "employeeNumber": "p.employee_number = ANY(%(numbers)b) ORDER BY p.created_at, p.id",
    "externalId": ("EXISTS (SELECT 1 FROM person_external_ids x WHERE x.person_id = p.id "
                   "AND x.external_id = ANY(%(keys)b)) ORDER BY p.created_at, p.id"),
}
_PENDING = ("p.deleted_at IS NULL AND p.manager_id IS NULL AND p.manager_ref IS NOT NULL "
            "AND lower(p.manager_ref) = ANY(%(dns)b)")
# Taken by anyone: logins and employee numbers (deleted people's too), primary e-mails of live people.
_ALL_TAKEN = ("SELECT employee_number, CASE WHEN deleted_at IS NULL THEN lower(primary_email) END, "
              "id::text FROM people")
_TAKEN = _ALL_TAKEN + (" WHERE employee_number = ANY(%(numbers)b) "
                       "OR (deleted_at IS NULL AND lower(primary_email) = ANY(%(emails)b))")
# Every login (userName, LDAP uid, SCIM userName: sql/018) by its key, the one key names are compared by.
_ALL_LOGINS = "SELECT login_key, person_id::text FROM person_logins"
_LOGINS = _ALL_LOGINS + " WHERE login_key = ANY(%(name_keys)b)"
_KEYS = "SELECT n, login_key(n) FROM unnest(%b::text[]) AS n"
_DNS = ("SELECT d.external_id, d.person_id::text FROM person_external_ids d JOIN people p ON p.id = d.person_id "
        "WHERE d.source = 'ldap:dn' AND p.deleted_at IS NULL")
_GROUPS = """
SELECT g.id::text, g.external_id, g.display_name,
       coalesce(array_agg(m.person_id::text) FILTER (WHERE m.person_id IS NOT NULL), '{}')
FROM groups g LEFT JOIN group_members m ON m.group_id = g.id WHERE g.source = 'ldap' GROUP BY g.id
"""


@functools.lru_cache(maxsize=1024)
def _sources(text: str) -> dict:
    """attribute_sources, parsed once per distinct value (most people share one); callers copy before changing."""
    return json.loads(text)


def _people(conn: psycopg.Connection, where: str, params: dict) -> list[Current]:
    rows = conn.execute(_PERSON.format(sql.SQL(where)), {"with_ids": False, **params}).fetchall()
    return [
        Current(
            id=r[0],
            version=r[1],
            values={**dict(zip(_VALUES, r[2:12], strict=False)), "emails": json.loads(r[6]), "active": r[12]},
            sources=_sources(r[13]),
            deleted=r[14],
            key=r[15],
            dn=r[16],
            shared=r[17],
            external_ids=tuple(r[18] or ()),
            name_key=r[19],
            login=r[20],
        )
        for r in rows
    ]


def load(conn: psycopg.Connection, snapshot, *, full: bool, join_key: str, normalize) -> Loaded:
    """Everything the plan compares a read with, in a few queries (all of it for a full read)."""
    read = snapshot.people
    keys: dict[str, str] = dict(conn.execute(_KEYS, ([p.user_name for p in read],)).fetchall()) if read else {}
    params = {"keys": [p.key for p in read], "name_keys": list(set(keys.values())),
              "numbers": [p.employee_number for p in read if p.employee_number],
              "emails": [p.email.lower() for p in read if p.email], "dns": [normalize(p.dn) for p in read]}
    known = {c.key: c for c in _people(conn, _ALL_KNOWN if full else _KNOWN, params)}
    unknown = [p for p in read if p.key not in known]
    candidates = []
    if unknown:
        where = "k.external_id IS NULL AND p.deleted_at IS NULL AND " + _CANDIDATES[join_key]
        candidates = _people(conn, where, {**params, "with_ids": join_key == "externalId"})
    numbers, emails = {}, {}
    names: dict[str, str] = dict(conn.execute(_ALL_LOGINS if full else _LOGINS, params).fetchall())
    for number, email, pid in conn.execute(_ALL_TAKEN if full else _TAKEN, params):  # a scan beats 100k probes
        if number:
            numbers[number] = pid
        if email:
            emails[email] = pid
    groups = {key: CurrentGroup(gid, key, name, frozenset(members))
              for gid, key, name, members in conn.execute(_GROUPS)}
    # Every live LDAP person has a DN, so len(dns) counts them; a full load already has them all.
    dns = ({c.dn: c.id for c in known.values() if not c.deleted and c.dn} if full
           else dict(conn.execute(_DNS).fetchall()))
    return Loaded(known=known, candidates=candidates, pending=_people(conn, _PENDING, params), names=names, keys=keys,
                  numbers=numbers, emails=emails, dns=dns, groups=groups, total=len(dns),
                  other_group_names={r[0] for r in conn.execute(
                      "SELECT lower(display_name) FROM groups WHERE source <> 'ldap'")})


# --- write ------------------------------------------------------------------------------------

_TEMP_PEOPLE = """
CREATE TEMPORARY TABLE sync_people (version bigint, id uuid, user_name text, given_name text, family_name text,
    display_name text, emails jsonb, primary_email text, employee_number text, department text, title text,
    manager_id uuid, manager_ref text, active boolean, attribute_sources jsonb) ON COMMIT DROP
"""
# Only at the version the plan saw: a person changed since (by SCIM, say) makes the run stale, not overwritten.
_UPDATE_PEOPLE = """
UPDATE people p SET (user_name, given_name, family_name, display_name, emails, primary_email, employee_number,
                     department, title, manager_id, manager_ref, active, attribute_sources)
    = (s.user_name, s.given_name, s.family_name, s.display_name, s.emails, s.primary_email, s.employee_number,
       s.department, s.title, s.manager_id, s.manager_ref, s.active, s.attribute_sources),
    deleted_at = NULL, version = p.version + 1, updated_at = now()
FROM sync_people s WHERE p.id = s.id AND p.version = s.version
"""
# A DN now names this person: take it from whoever held it before (a moved or deleted entry). Stable keys never
# move, and a returning key revives its person, so only DNs are released.
_RELEASE = """
DELETE FROM person_external_ids x USING unnest(%b::uuid[], %b::text[]) AS s(person_id, dn)
WHERE x.source = 'ldap:dn' AND x.external_id = s.dn AND x.person_id <> s.person_id
"""
_UPSERT_LINK = ("INSERT INTO person_external_ids (person_id, source, external_id) VALUES (%s, %s, %s) "
                "ON CONFLICT (person_id, source) DO UPDATE SET external_id = EXCLUDED.external_id")
_UNLINK = "DELETE FROM person_external_ids WHERE person_id = ANY(%s::uuid[]) AND source IN ('ldap', 'ldap:dn')"
# Removed from the directory: soft-deleted, or only deactivated when another source (SCIM) knows them too.
_REMOVE = """
UPDATE people p SET active = false, deleted_at = CASE WHEN r.unlink THEN NULL ELSE now() END,
    attribute_sources = p.attribute_sources || '{"active": "ldap"}', version = p.version + 1, updated_at = now()
FROM unnest(%s::uuid[], %s::bigint[], %s::boolean[]) AS r(id, version, unlink)
WHERE p.id = r.id AND p.version = r.version
"""
_GROUP_WRITES = {
    "delete": "DELETE FROM groups WHERE id = ANY(%s::uuid[])",
    "rename": ("UPDATE groups g SET display_name = r.name, version = g.version + 1, updated_at = now() "
               "FROM unnest(%s::uuid[], %s::text[]) AS r(id, name) WHERE g.id = r.id"),
    "create": ("INSERT INTO groups (id, external_id, display_name, source) "
               "SELECT id, key, name, 'ldap' FROM unnest(%s::uuid[], %s::text[], %s::text[]) AS r(id, key, name)"),
}
_MEMBER_WRITES = {
    "remove": ("DELETE FROM group_members m USING unnest(%b::uuid[], %b::uuid[]) AS r(g, p) "
               "WHERE m.group_id = r.g AND m.person_id = r.p"),
    "add": ("INSERT INTO group_members (group_id, person_id) SELECT * FROM unnest(%b::uuid[], %b::uuid[]) "
            "ON CONFLICT DO NOTHING"),
}
_JOURNAL_COPY = ("COPY journal (kind, subject, resource, outcome, reasons, detail, actor, policy_version, request_id) "
                 "FROM STDIN")
_OUTCOMES = {"create": "created", "join": "joined", "update": "updated", "revive": "revived", "groups": "updated"}
_GROUP_OUTCOMES = {"create": "group_created", "rename": "group_renamed", "delete": "group_deleted"}


class StaleWrite(Exception):
    """Rows the plan was made from changed before it was written."""


def _copy(conn: psycopg.Connection, statement, rows) -> None:
    with conn.cursor().copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _row(entry: dict, sources_json: dict) -> tuple:
    v = entry["values"]
    sources = v["attribute_sources"]  # mostly one shared dict (everything from LDAP): encode it once
    encoded = sources_json.get(id(sources)) or sources_json.setdefault(id(sources), json.dumps(sources))
    return (entry["id"], *(v[c] for c in _VALUES[:4]), json.dumps(v["emails"]), primary_email(v["emails"]),
            *(v[c] for c in _VALUES[5:]), v["active"], encoded)


def apply(conn: psycopg.Connection, plan, *, run_id: str, actor: str) -> None:
    """Write the plan and one journal row per person (and group, and conflict), in the caller's transaction."""
    creates = [e for e in plan.people if e["op"] == "create"]
    updates = [e for e in plan.people if e["op"] not in ("create", "groups")]
    encoded: dict[int, str] = {}
    _copy(conn, sql.SQL("COPY people ({}, source) FROM STDIN").format(_WRITTEN),
          (_row(e, encoded) + (SOURCE,) for e in creates))
    if updates:
        conn.execute(_TEMP_PEOPLE)
        _copy(conn, sql.SQL("COPY sync_people (version, {}) FROM STDIN").format(_WRITTEN),
              ((e["version"], *_row(e, encoded)) for e in updates))
        _expect(conn.execute(_UPDATE_PEOPLE).rowcount, len(updates), "people")
    _write_links(conn, plan.people, {e["id"] for e in creates})
    _write_logins(conn, [e for e in plan.people if e["op"] == "create" or "login" in e["changes"]])
    _write_removals(conn, plan.removals)
    leavers = [(e["id"], "disabled in") for e in plan.people if e["leaver"]] + [(r["id"], "removed from")
                                                                                  for r in plan.removals]
    revoked = {pid: people.end_access(conn, pid, reason=f"leaver: {why} the directory") for pid, why in leavers}
    for op in ("delete", "rename", "create"):
        _write_groups(conn, op, [g for g in plan.groups if g["op"] == op])
    _write_members(conn, plan.members, {g["id"] for g in plan.groups if g["op"] == "create"})
    _copy(conn, _JOURNAL_COPY, (e.columns() for e in _events(plan, revoked, run_id=run_id, actor=actor)))


def _expect(done: int, planned: int, what: str) -> None:
    if done != planned:
        raise StaleWrite(f"{planned - done} of {planned} {what} changed since the plan was made")


def _write_links(conn: psycopg.Connection, entries: list, new: set) -> None:
    links = [(e["id"], source, value) for e in entries for source, value in e["links"].items()]
    if not links:
        return
    moved = [(pid, dn) for pid, source, dn in links if source == "ldap:dn"]
    if moved:
        conn.execute(_RELEASE, tuple(map(list, zip(*moved, strict=False))))
    _copy(conn, "COPY person_external_ids (person_id, source, external_id) FROM STDIN",
          (link for link in links if link[0] in new))
    conn.cursor().executemany(_UPSERT_LINK, [link for link in links if link[0] not in new])


def _write_logins(conn: psycopg.Connection, entries: list) -> None:
    """Each entry's uid as the person's "ldap" login (sql/018): it resolves them at gateways whoever sets their
    userName. The plan already refused a uid another person has (a conflict), so this does not raise."""
    if entries:
        conn.execute("SELECT person_logins_set(%b::uuid[], 'ldap', %b::text[])",
                     ([e["id"] for e in entries], [e["user_name"] for e in entries]))


def _write_members(conn: psycopg.Connection, members: dict, new_groups: set) -> None:
    """Memberships: removals, then additions (COPY for groups made by this run, which nobody else can touch yet)."""
    if members["remove"][0]:
        conn.execute(_MEMBER_WRITES["remove"], members["remove"])
    pairs = list(zip(*members["add"], strict=False))
    _copy(conn, "COPY group_members (group_id, person_id) FROM STDIN", (p for p in pairs if p[0] in new_groups))
    rest = [p for p in pairs if p[0] not in new_groups]
    if rest:
        conn.execute(_MEMBER_WRITES["add"], tuple(map(list, zip(*rest, strict=False))))


def _write_removals(conn: psycopg.Connection, removals: list) -> None:
    if not removals:
        return
    conn.execute(_UNLINK, ([r["id"] for r in removals if r["unlink"]],))
    done = conn.execute(_REMOVE, ([r["id"] for r in removals], [r["version"] for r in removals],
                                  [r["unlink"] for r in removals])).rowcount
    _expect(done, len(removals), "removed people")


def _write_groups(conn: psycopg.Connection, op: str, groups: list) -> None:
    if groups:
        columns = {"delete": ("id",), "rename": ("id", "name"), "create": ("id", "key", "name")}[op]
        conn.execute(_GROUP_WRITES[op], tuple([g[c] for g in groups] for c in columns))


def _events(plan, revoked: dict, *, run_id: str, actor: str):
    """One journal row per person changed (with the access it lost), per group changed, per conflict."""
    base = {"source": SOURCE, "run": run_id}
    for e in plan.people:
        detail = {**base, "dn": e["dn"], "changes": e["changes"]}
        if e["leaver"]:
            detail.update(leaver=True, revoked=revoked.get(e["id"], []))
        outcome = "disabled" if e["leaver"] else _OUTCOMES[e["op"]]
        yield journal.Event(kind="sync", outcome=outcome, actor=actor, subject=e["id"], detail=detail)
    for r in plan.removals:
        detail = {**base, "dn": r["dn"], "user_name": r["user_name"], "changes": r["changes"], "leaver": True,
                  "revoked": revoked.get(r["id"], [])}
        yield journal.Event(kind="sync", outcome="deactivated" if r["unlink"] else "removed", actor=actor,
                            subject=r["id"], detail=detail)
    for g in plan.groups:
        yield journal.Event(kind="sync", outcome=_GROUP_OUTCOMES[g["op"]], actor=actor,
                            detail={**base, "group": g["name"], "old_name": g["old"], "key": g["key"]})
    for c in plan.conflicts:
        yield journal.Event(kind="sync", outcome="conflict", actor=actor, detail={**base, **c},
                            reasons=({"code": "conflict", "text": c["reason"]},))


# --- runs and high-water marks ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Run:
    id: str
    kind: str
    state: str
    actor: str
    started_at: datetime
    finished_at: datetime | None
    counts: dict
    high_water: str | None
    message: str | None
    error: str | None
    decided_by: str | None
    plan: dict | None = None


_RUN_COLUMNS = sql.SQL("id::text, kind, state, actor, started_at, finished_at, counts, high_water, message, error, "
                       "decided_by")


def start_run(conn: psycopg.Connection, run_id: str, *, kind: str, actor: str) -> None:
    """Record a run as running (committed by the caller); runs left running by a dead process are failed."""
    conn.execute("UPDATE sync_runs SET state = 'failed', finished_at = now(), error = 'interrupted: the process "
                 "running it stopped' WHERE source = %s AND state = 'running'", (SOURCE,))
    conn.execute("INSERT INTO sync_runs (id, source, kind, state, actor) VALUES (%s, %s, %s, 'running', %s)",
                 (run_id, SOURCE, kind, actor))


def finish_run(conn: psycopg.Connection, run_id: str, *, state: str, counts: dict, high_water: str | None = None,
               message: str | None = None, error: str | None = None, plan: dict | None = None) -> list[str]:
    """Close a run; an applied or held run supersedes older held runs (their plans are stale); return their ids."""
    conn.execute("UPDATE sync_runs SET state = %s, finished_at = now(), counts = %s, high_water = %s, message = %s, "
                 "error = %s, plan = %s WHERE id = %s",
                 (state, Jsonb(counts), high_water, message, error, Jsonb(plan) if plan else None, run_id))
    if state not in ("applied", "held"):
        return []
    rows = conn.execute("UPDATE sync_runs SET state = 'discarded', decided_by = %s, decided_at = now() "
                        "WHERE source = %s AND state = 'held' AND id <> %s RETURNING id::text",
                        (f"run:{run_id}", SOURCE, run_id)).fetchall()
    return [r[0] for r in rows]


def decide_run(conn: psycopg.Connection, run_id: str, *, state: str, actor: str, counts: dict | None = None) -> None:
    conn.execute("UPDATE sync_runs SET state = %s, decided_by = %s, decided_at = now(), "
                 "counts = counts || %s WHERE id = %s", (state, actor, Jsonb(counts or {}), run_id))


def get_run(conn: psycopg.Connection, run_id: str, *, lock: bool = False) -> Run | None:
    """A run with its plan; lock it for a decision."""
    query = sql.SQL("SELECT {}, plan FROM sync_runs WHERE id = %s {}").format(
        _RUN_COLUMNS, sql.SQL("FOR UPDATE" if lock else ""))
    row = conn.execute(query, (run_id,)).fetchone()
    return Run(*row) if row else None


def list_runs(conn: psycopg.Connection, *, limit: int = 20, state: str | None = None) -> list[Run]:
    """Recent runs, newest first (without plans)."""
    query = sql.SQL("SELECT {} FROM sync_runs WHERE source = %s AND (%s::text IS NULL OR state = %s) "
                    "ORDER BY started_at DESC LIMIT %s").format(_RUN_COLUMNS)
    rows = conn.execute(query, (SOURCE, state, state, limit)).fetchall()
    return [Run(*r) for r in rows]


def high_water(conn: psycopg.Connection) -> str | None:
    row = conn.execute("SELECT high_water FROM sync_state WHERE source = %s", (SOURCE,)).fetchone()
    return row[0] if row else None


def save_state(conn: psycopg.Connection, mark: str | None, *, full: bool) -> None:
    """Where the next incremental read starts; a run that saw nothing newer keeps the old mark."""
    conn.execute(
        "INSERT INTO sync_state (source, high_water, last_full_at) VALUES (%s, %s, CASE WHEN %s THEN now() END) "
        "ON CONFLICT (source) DO UPDATE SET high_water = coalesce(EXCLUDED.high_water, sync_state.high_water), "
        "last_full_at = coalesce(EXCLUDED.last_full_at, sync_state.last_full_at), updated_at = now()",
        (SOURCE, mark, full))


def expected_entries(conn: psycopg.Connection, kind: str) -> int:
    """Entries the last run of this kind read (a progress bar's length), or 0."""
    row = conn.execute("SELECT (counts->>'entries_read')::int FROM sync_runs WHERE source = %s AND kind = %s "
                       "AND counts ? 'entries_read' ORDER BY started_at DESC LIMIT 1", (SOURCE, kind)).fetchone()
    return row[0] if row else 0
