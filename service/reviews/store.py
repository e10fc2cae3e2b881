"""Access reviews in the database: campaigns, their items, reminders, movers, the link key. No Flask here."""

import dataclasses
import secrets
from collections.abc import Sequence
from datetime import datetime

import psycopg
from psycopg.types.json import Jsonb

from service.db.query import is_uuid, scalar


@dataclasses.dataclass(frozen=True)
class Campaign:
    id: str
    key: str
    origin: str
    resources: list[str]
    started_at: datetime
    due_at: datetime
    state: str
    guard_share: float
    items_total: int
    items_open: int
    created_by: str
    held_at: datetime | None
    confirmed_by: str | None
    closed_at: datetime | None


@dataclasses.dataclass(frozen=True)
class Candidate:
    """An active grant at the start, with what the reviewer is picked from."""

    grant_id: str
    epoch: int
    person_id: str
    resource_id: str
    resource: str
    snapshot: dict
    chain: tuple[tuple[str | None, bool], ...]


@dataclasses.dataclass(frozen=True)
class Item:
    """One item as a page, the deadline or an export sees it."""

    id: str
    campaign_id: str
    grant_id: str
    grant_epoch: int
    person_id: str
    resource: str
    reviewer_id: str | None
    route: str
    snapshot: dict
    decision: str | None
    decided_by: str | None
    decided_at: datetime | None
    comment: str | None
    evidence: dict | None
    second_stage_by: str | None
    second_stage_why: str | None
    missed_at: datetime | None


@dataclasses.dataclass(frozen=True)
class Reviewer:
    id: str
    name: str
    email: str | None
    manager_email: str | None
    open_items: int
    people: int


_CAMPAIGN_COLUMNS = ("id::text, key, origin, resources, started_at, due_at, state, guard_share, items_total, "
                     "items_open, created_by, held_at, confirmed_by, closed_at")

_ITEM_COLUMNS = ("i.id::text, i.campaign_id::text, i.grant_id::text, i.grant_epoch, i.person_id::text, r.key, "
                 "i.reviewer_id::text, i.route, i.snapshot, i.decision, i.decided_by, i.decided_at, i.comment, "
                 "i.evidence, i.second_stage_by::text, i.second_stage_why, i.missed_at")

# -- snapshot -- the active grants of live, active people on the listed resources, with each person's manager and
# manager's manager (whether they are active) and how the grant came (the groups whose rule grants it).
_SNAPSHOT = """
SELECT g.id::text, g.epoch, p.id::text, r.id::text, r.key,
       p.user_name, coalesce(p.display_name, concat_ws(' ', p.given_name, p.family_name), p.user_name),
       p.title, p.department, p.started_at, g.granted_by, g.granted_at, rg.groups,
       m.id::text, coalesce(m.active AND m.deleted_at IS NULL, false),
       mm.id::text, coalesce(mm.active AND mm.deleted_at IS NULL, false)
FROM grants g
JOIN resources r ON r.id = g.resource_id
JOIN people p ON p.id = g.person_id AND p.deleted_at IS NULL AND p.active
LEFT JOIN people m ON m.id = p.manager_id
LEFT JOIN people mm ON mm.id = m.manager_id
LEFT JOIN LATERAL (
    SELECT array_agg(gr.display_name ORDER BY gr.display_name) AS groups
    FROM group_grant_rules x JOIN group_members gm ON gm.group_id = x.group_id AND gm.person_id = p.id
    JOIN groups gr ON gr.id = x.group_id
    WHERE x.resource_id = r.id AND g.granted_by = 'rule'
) rg ON true
WHERE g.state = 'active' AND r.key = ANY(%(resources)s) {only}
ORDER BY p.id, r.key
"""


# -- items -- the snapshot above as rows of review_items, in one INSERT ... SELECT, each with its reviewer picked in
# SQL as policies.reviews.pick_reviewer picks one: the active manager, else the active manager's manager, else the
# first of the resource's owners (%(owner_resources)s, %(owner_ids)s: pairs in the policy's order), never the
# person; else nobody (NULL: the admins' queue). The snapshot jsonb is what snapshot() builds for one person
# (its instants in UTC with six digits of microseconds, which datetime.fromisoformat reads).
_ITEMS = """
WITH owner AS (
    SELECT o.resource, o.person_id, o.n
    FROM unnest(%(owner_resources)s::text[], %(owner_ids)s::uuid[]) WITH ORDINALITY AS o (resource, person_id, n)
), c AS (
    SELECT g.id AS grant_id, g.epoch, p.id AS person_id, r.id AS resource_id, r.key AS resource,
           jsonb_build_object(
               'user', p.user_name,
               'name', coalesce(p.display_name, concat_ws(' ', p.given_name, p.family_name), p.user_name),
               'title', p.title, 'department', p.department, 'started_at', to_char(p.started_at AT TIME ZONE 'UTC',
               'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), 'resource', r.key, 'granted_by', g.granted_by,
               'granted_at', to_char(g.granted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
               'via', CASE WHEN rg.groups IS NOT NULL THEN 'group rule (' || array_to_string(rg.groups, ', ') || ')'
                           WHEN g.granted_by = 'rule' THEN 'group rule'
                           ELSE 'admin (' || g.granted_by || ')' END) AS snapshot,
           CASE WHEN m.active AND m.deleted_at IS NULL AND m.id <> p.id THEN 1
                WHEN mm.active AND mm.deleted_at IS NULL AND mm.id <> p.id THEN 2 END AS level,
           m.id AS manager_id, mm.id AS managers_manager_id
    FROM grants g
    JOIN resources r ON r.id = g.resource_id
    JOIN people p ON p.id = g.person_id AND p.deleted_at IS NULL AND p.active
    LEFT JOIN people m ON m.id = p.manager_id
    LEFT JOIN people mm ON mm.id = m.manager_id
    LEFT JOIN (  -- the groups whose rule grants it, for every (person, resource) at once (not a subquery per row)
        SELECT gm.person_id, x.resource_id, array_agg(gr.display_name ORDER BY gr.display_name) AS groups
        FROM group_grant_rules x JOIN group_members gm ON gm.group_id = x.group_id
        JOIN groups gr ON gr.id = x.group_id
        GROUP BY gm.person_id, x.resource_id
    ) rg ON rg.person_id = p.id AND rg.resource_id = r.id AND g.granted_by = 'rule'
    WHERE g.state = 'active' AND r.key = ANY(%(resources)s) {only}
), picked AS (
    SELECT c.*, CASE c.level WHEN 1 THEN c.manager_id WHEN 2 THEN c.managers_manager_id
                ELSE (SELECT o.person_id FROM owner o WHERE o.resource = c.resource AND o.person_id <> c.person_id
                      ORDER BY o.n LIMIT 1) END AS reviewer_id
    FROM c
)
INSERT INTO review_items (campaign_id, grant_id, grant_epoch, person_id, resource_id, reviewer_id, route, snapshot)
SELECT %(campaign)s, grant_id, epoch, person_id, resource_id, reviewer_id,
       CASE WHEN level = 1 THEN %(manager)s WHEN level = 2 THEN %(managers_manager)s
            WHEN reviewer_id IS NOT NULL THEN %(owner)s ELSE %(admins)s END, snapshot
FROM picked ORDER BY person_id, resource
"""


def secret(conn: psycopg.Connection, name: str, *, create: bool = True) -> bytes | None:
    """A key the service keeps for itself (app_secrets), created on first use, the same for every replica.

    create=False only reads (a page behind a GET writes nothing): None while no campaign has made it.
    """
    if create:
        conn.execute("INSERT INTO app_secrets (name, value) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                     (name, secrets.token_bytes(32)))
    row = conn.execute("SELECT value FROM app_secrets WHERE name = %s", (name,)).fetchone()
    return row[0] if row else None


def known_resources(conn: psycopg.Connection, keys: Sequence[str]) -> set[str]:
    return {r[0] for r in conn.execute("SELECT key FROM resources WHERE key = ANY(%s)", (list(keys),))}


def snapshot(conn: psycopg.Connection, resources: Sequence[str], *, people: Sequence[str] | None = None
             ) -> list[Candidate]:
    """What a campaign over `resources` covers now (only `people`, when given)."""
    only = "AND p.id = ANY(%(people)s::uuid[])" if people is not None else ""
    rows = conn.execute(_SNAPSHOT.format(only=only), {"resources": list(resources), "people": list(people or ())})
    out = []
    for (grant_id, epoch, pid, rid, key, user, name, title, dept, started, by, granted_at, groups, m, m_active,
         mm, mm_active) in rows:
        via = f"group rule ({', '.join(groups)})" if groups else ("group rule" if by == "rule" else f"admin ({by})")
        snap = {"user": user, "name": name, "title": title, "department": dept, "started_at": started.isoformat(),
                "resource": key, "granted_by": by, "granted_at": granted_at.isoformat(), "via": via}
        out.append(Candidate(grant_id, epoch, pid, rid, key, snap, ((m, m_active), (mm, mm_active))))
    return out


def people_by_email(conn: psycopg.Connection, emails: Sequence[str]) -> dict[str, str]:
    """Live, active people by lower-case primary e-mail."""
    rows = conn.execute("SELECT lower(primary_email), id::text FROM people WHERE lower(primary_email) = ANY(%s) "
                        "AND active AND deleted_at IS NULL", ([e.lower() for e in emails],))
    return dict(rows.fetchall())


def key_taken(conn: psycopg.Connection, key: str) -> bool:
    return scalar(conn, "SELECT EXISTS (SELECT 1 FROM review_campaigns WHERE key = %s)", (key,))


def create_campaign(conn: psycopg.Connection, *, key: str, origin: str, resources: Sequence[str],
                    started_at: datetime, due_at: datetime, guard_share: float, created_by: str,
                    policy_version: str) -> str:
    return scalar(conn,
        "INSERT INTO review_campaigns (key, origin, resources, started_at, due_at, guard_share, created_by, "
        "policy_version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id::text",
        (key, origin, list(resources), started_at, due_at, guard_share, created_by, policy_version))


def insert_items(conn: psycopg.Connection, campaign_id: str, resources: Sequence[str], *,
                 owners: dict[str, Sequence[str]], routes: dict[str, str], people: Sequence[str] | None = None
                 ) -> tuple[int, list[tuple[str, str, str, str]]]:
    """The campaign's items, one per active grant of `resources` (of `people` only, when given), reviewers picked
    in the same statement (_ITEMS); then its counts. `owners`: resource key -> owner ids in the policy's order;
    `routes`: the route names by level (manager, managers_manager, owner, admins).

    Returns how many items, and those nobody may review, (person id, resource key, grant id, user name), for the
    admins' queue."""
    only = "AND p.id = ANY(%(people)s::uuid[])" if people is not None else ""
    pairs = [(r, o) for r, ids in owners.items() for o in ids]
    count = conn.execute(_ITEMS.format(only=only), {
        "campaign": campaign_id, "resources": list(resources), "people": list(people or ()),
        "owner_resources": [r for r, _ in pairs], "owner_ids": [o for _, o in pairs], **routes}).rowcount
    conn.execute("UPDATE review_campaigns SET items_total = %s, items_open = %s WHERE id = %s",
                 (count, count, campaign_id))
    return count, conn.execute(
        "SELECT i.person_id::text, r.key, i.grant_id::text, i.snapshot->>'user' FROM review_items i "
        "JOIN resources r ON r.id = i.resource_id WHERE i.campaign_id = %s AND i.reviewer_id IS NULL "
        "ORDER BY i.person_id, r.key", (campaign_id,)).fetchall()


def campaign(conn: psycopg.Connection, ref: str, *, lock: bool = False) -> Campaign | None:
    """The campaign with this key (or id)."""
    where = "id = %s::uuid" if is_uuid(ref) else "key = %s"
    row = conn.execute(f"SELECT {_CAMPAIGN_COLUMNS} FROM review_campaigns WHERE {where}"
                       + (" FOR UPDATE" if lock else ""), (ref,)).fetchone()
    return Campaign(*row) if row else None


def campaigns(conn: psycopg.Connection, *, states: Sequence[str] | None = None) -> list[Campaign]:
    where = "WHERE state = ANY(%s)" if states else ""
    rows = conn.execute(f"SELECT {_CAMPAIGN_COLUMNS} FROM review_campaigns {where} ORDER BY started_at DESC, key",
                        (list(states),) if states else ())
    return [Campaign(*r) for r in rows]


def due_campaigns(conn: psycopg.Connection, now: datetime) -> list[Campaign]:
    """Campaigns whose deadline the job has to act on: open and due, or confirmed by an admin."""
    rows = conn.execute(f"SELECT {_CAMPAIGN_COLUMNS} FROM review_campaigns WHERE state IN ('open', 'confirmed') "
                        "AND due_at <= %s ORDER BY due_at", (now,))
    return [Campaign(*r) for r in rows]


def last_started(conn: psycopg.Connection, origin: str) -> datetime | None:
    return scalar(conn, "SELECT max(started_at) FROM review_campaigns WHERE origin = %s", (origin,))


def items(conn: psycopg.Connection, campaign_id: str, *, reviewer_id: str | None = None, ids: Sequence[str] = (),
          undecided: bool = False, lock: bool = False) -> list[Item]:
    """Items of a campaign: a reviewer's (theirs and those routed to them for a second stage), some, or all."""
    where, params = ["i.campaign_id = %(c)s"], dict[str, object](c=campaign_id)
    if reviewer_id is not None:
        where.append("(i.reviewer_id = %(r)s OR i.second_stage_by = %(r)s)")
        params["r"] = reviewer_id
    if ids:
        where.append("i.id = ANY(%(ids)s::uuid[])")
        params["ids"] = list(ids)
    if undecided:
        where.append("i.decision IS NULL")
    query = (f"SELECT {_ITEM_COLUMNS} FROM review_items i JOIN resources r ON r.id = i.resource_id "
             f"WHERE {' AND '.join(where)} ORDER BY i.snapshot->>'name', r.key, i.id")
    rows = conn.execute(query + (" FOR UPDATE OF i" if lock else ""), params)
    return [Item(*r) for r in rows]


def item(conn: psycopg.Connection, item_id: str, *, lock: bool = False) -> Item | None:
    """One item by id (None for a malformed or unknown id)."""
    if not is_uuid(item_id):
        return None
    row = conn.execute(f"SELECT {_ITEM_COLUMNS} FROM review_items i JOIN resources r ON r.id = i.resource_id "
                       "WHERE i.id = %s" + (" FOR UPDATE OF i" if lock else ""), (item_id,)).fetchone()
    return Item(*row) if row else None


def email_of(conn: psycopg.Connection, person_id: str) -> str | None:
    row = conn.execute("SELECT lower(primary_email) FROM people WHERE id = %s", (person_id,)).fetchone()
    return row[0] if row else None


def campaigns_of(conn: psycopg.Connection, reviewer_id: str) -> list[tuple[str, str, datetime, str]]:
    """(id, key, due, state) of each campaign where the person reviews, reviewed, or delegated; newest due first."""
    return conn.execute("""
        SELECT c.id::text, c.key, c.due_at, c.state FROM review_campaigns c
        WHERE EXISTS (SELECT 1 FROM review_items i WHERE i.campaign_id = c.id
                      AND (i.reviewer_id = %(r)s OR i.second_stage_by = %(r)s))
           OR EXISTS (SELECT 1 FROM review_delegations d WHERE d.campaign_id = c.id AND d.from_id = %(r)s)
        ORDER BY c.due_at DESC, c.key""", {"r": reviewer_id}).fetchall()


def admin_queue(conn: psycopg.Connection) -> list[Item]:
    """Undecided items of live campaigns that no reviewer qualified for."""
    rows = conn.execute(f"SELECT {_ITEM_COLUMNS} FROM review_items i JOIN resources r ON r.id = i.resource_id "
                        "JOIN review_campaigns c ON c.id = i.campaign_id "
                        "WHERE i.reviewer_id IS NULL AND i.decision IS NULL AND c.state IN ('open', 'held') "
                        "ORDER BY c.due_at, i.snapshot->>'name'")
    return [Item(*r) for r in rows]


def decide(conn: psycopg.Connection, item_id: str, decision: str, *, by: str, at: datetime, comment: str | None,
           evidence: dict) -> bool:
    """Record a decision on an undecided item; False if it was decided already (a replayed POST)."""
    row = conn.execute("UPDATE review_items SET decision = %s, decided_by = %s, decided_at = %s, comment = %s, "
                       "evidence = %s WHERE id = %s AND decision IS NULL RETURNING 1",
                       (decision, by, at, comment, Jsonb(evidence), item_id)).fetchone()
    return row is not None


def route_second_stage(conn: psycopg.Connection, item_id: str, to: str, why: str, evidence: dict) -> bool:
    row = conn.execute("UPDATE review_items SET second_stage_by = %s, second_stage_why = %s, evidence = %s "
                       "WHERE id = %s AND decision IS NULL AND second_stage_by IS NULL RETURNING 1",
                       (to, why, Jsonb(evidence), item_id)).fetchone()
    return row is not None


def count_decided(conn: psycopg.Connection, campaign_id: str, n: int) -> None:
    conn.execute("UPDATE review_campaigns SET items_open = items_open - %s WHERE id = %s", (n, campaign_id))


def revoke_grant(conn: psycopg.Connection, grant_id: str, epoch: int, reason: str) -> bool:
    """Revoke the grant at the item's epoch (never a later grant); False if it is not live at that epoch."""
    row = conn.execute("UPDATE grants SET state = 'revoked', reason = %s, updated_at = now() "
                       "WHERE id = %s AND epoch = %s AND state <> 'revoked' RETURNING 1",
                       (reason, grant_id, epoch)).fetchone()
    return row is not None


# Every undecided item missed at once, and the grants of those still live at the item's epoch revoked, in one
# statement (the grants trigger queues their outbox rows); the missed count, then one row per revocation.
_MISS = """
WITH missed AS (
    UPDATE review_items SET missed_at = %(at)s
    WHERE campaign_id = %(c)s AND decision IS NULL AND missed_at IS NULL
    RETURNING id, grant_id, grant_epoch, person_id, reviewer_id
), revoked AS (
    UPDATE grants g SET state = 'revoked', reason = %(reason)s, updated_at = now() FROM missed i
    WHERE g.id = i.grant_id AND g.epoch = i.grant_epoch AND g.state <> 'revoked'
    RETURNING i.id, i.person_id, i.reviewer_id, i.grant_id, g.resource_id
)
SELECT m.n, v.id::text, v.person_id::text, v.reviewer_id::text, v.grant_id::text, v.key
FROM (SELECT count(*) AS n FROM missed) m
LEFT JOIN (SELECT revoked.*, r.key FROM revoked JOIN resources r ON r.id = revoked.resource_id) v ON true
ORDER BY v.person_id, v.key
"""


@dataclasses.dataclass(frozen=True)
class Revoked:
    """A missed item whose grant the deadline revoked."""

    item_id: str
    person_id: str
    reviewer_id: str | None
    grant_id: str
    resource: str


def miss_and_revoke(conn: psycopg.Connection, campaign_id: str, at: datetime, reason: str
                    ) -> tuple[int, list[Revoked]]:
    """Mark every undecided item missed at `at` and revoke its grant at the item's epoch (never a later grant),
    in one statement: how many items were missed, and each revocation, by person and resource."""
    rows = conn.execute(_MISS, {"c": campaign_id, "at": at, "reason": reason}).fetchall()
    return rows[0][0], [Revoked(*r[1:]) for r in rows if r[1] is not None]


def set_state(conn: psycopg.Connection, campaign_id: str, state: str, **fields) -> None:
    sets = ", ".join(["state = %(state)s"] + [f"{k} = %({k})s" for k in fields])
    allowed = {"held_at", "confirmed_by", "closed_at", "due_at"}
    assert set(fields) <= allowed, fields
    conn.execute(f"UPDATE review_campaigns SET {sets} WHERE id = %(id)s", {"state": state, "id": campaign_id,
                                                                            **fields})


def reviewers(conn: psycopg.Connection, campaign_id: str, *, ids: Sequence[str] | None = None) -> list[Reviewer]:
    """Each reviewer of the campaign (first stage or second), with their open items and how many people."""
    only = "WHERE x.rid = ANY(%(ids)s::uuid[])" if ids is not None else ""
    rows = conn.execute(f"""
        WITH x AS (
            SELECT coalesce(second_stage_by, reviewer_id) AS rid, person_id, decision FROM review_items
            WHERE campaign_id = %(c)s AND (reviewer_id IS NOT NULL OR second_stage_by IS NOT NULL)
        )
        SELECT p.id::text, coalesce(p.display_name, p.given_name, p.user_name), p.primary_email, m.primary_email,
               count(*) FILTER (WHERE x.decision IS NULL), count(DISTINCT x.person_id)
        FROM x JOIN people p ON p.id = x.rid LEFT JOIN people m ON m.id = p.manager_id AND m.deleted_at IS NULL
        {only}
        GROUP BY p.id, m.primary_email ORDER BY p.id""", {"c": campaign_id, "ids": list(ids or ())})
    return [Reviewer(*r) for r in rows]


def person(conn: psycopg.Connection, person_id: str) -> tuple[str, str | None, str | None] | None:
    """(name, e-mail, manager id) of a live person."""
    return conn.execute("SELECT coalesce(display_name, given_name, user_name), primary_email, manager_id::text "
                        "FROM people WHERE id = %s AND deleted_at IS NULL", (person_id,)).fetchone()


def people_named(conn: psycopg.Connection, ids: Sequence[str]) -> dict[str, tuple[str, str | None]]:
    """(name, e-mail) of each live person among `ids`, in one query."""
    rows = conn.execute("SELECT id::text, coalesce(display_name, given_name, user_name), primary_email FROM people "
                        "WHERE id = ANY(%s::uuid[]) AND deleted_at IS NULL", (list(ids),))
    return {pid: (name, email) for pid, name, email in rows}


def person_by_user(conn: psycopg.Connection, user: str) -> str | None:
    row = conn.execute("SELECT p.id::text FROM person_logins l JOIN people p ON p.id = l.person_id "
                       "WHERE l.login_key = login_key(%s) AND p.deleted_at IS NULL AND p.active", (user,)).fetchone()
    return row[0] if row else None


def record_reminder(conn: psycopg.Connection, campaign_id: str, reviewer_id: str, days: Sequence[int]) -> bool:
    """Record reminder offsets as sent; False if another runner recorded the first of them already."""
    first = conn.execute("INSERT INTO review_reminders (campaign_id, reviewer_id, days_before) VALUES (%s, %s, %s) "
                         "ON CONFLICT DO NOTHING RETURNING 1", (campaign_id, reviewer_id, days[0])).fetchone()
    for d in days[1:]:
        conn.execute("INSERT INTO review_reminders (campaign_id, reviewer_id, days_before) VALUES (%s, %s, %s) "
                     "ON CONFLICT DO NOTHING", (campaign_id, reviewer_id, d))
    return first is not None


def reminders_sent(conn: psycopg.Connection, campaign_id: str) -> dict[str, list[int]]:
    sent: dict[str, list[int]] = {}
    for rid, d in conn.execute("SELECT reviewer_id::text, days_before FROM review_reminders WHERE campaign_id = %s",
                               (campaign_id,)):
        sent.setdefault(rid, []).append(d)
    return sent


def take_movers(conn: psycopg.Connection) -> list[str]:
    """The people who moved since the last run (removed from the queue in the caller's transaction)."""
    return [r[0] for r in conn.execute("DELETE FROM review_movers RETURNING person_id::text")]


def last_use(conn: psycopg.Connection, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], datetime]:
    """The last allowed check of each (person id, resource key), from the journal."""
    if not pairs:
        return {}
    rows = conn.execute("""
        SELECT x.pid, x.res, (SELECT max(j.ts) FROM journal j WHERE j.subject = x.pid AND j.resource = x.res
                              AND j.kind = 'check' AND j.outcome = 'allow')
        FROM unnest(%s::text[], %s::text[]) AS x (pid, res)""", ([p for p, _ in pairs], [r for _, r in pairs]))
    return {(p, r): ts for p, r, ts in rows if ts is not None}


def completions(conn: psycopg.Connection, person_ids: Sequence[str]) -> dict[str, dict[str, datetime]]:
    out: dict[str, dict[str, datetime]] = {}
    for pid, course, at in conn.execute(
            "SELECT person_id::text, course, max(completed_at) FROM training_completions "
            "WHERE person_id = ANY(%s::uuid[]) GROUP BY person_id, course", (list(person_ids),)):
        out.setdefault(pid, {})[course] = at
    return out


def progress(conn: psycopg.Connection, campaign_id: str) -> list[tuple[datetime, int]]:
    """Decisions per day: (day, count), for the progress chart."""
    return conn.execute("SELECT date_trunc('day', decided_at), count(*) FROM review_items WHERE campaign_id = %s "
                        "AND decided_at IS NOT NULL GROUP BY 1 ORDER BY 1", (campaign_id,)).fetchall()


def counts_by(conn: psycopg.Connection, campaign_id: str) -> list[tuple]:
    """Per (resource, reviewer): open, approved, revoked, missed."""
    return conn.execute("""
        SELECT r.key, coalesce(p.user_name, '(admins)'),
               count(*) FILTER (WHERE i.decision IS NULL AND i.missed_at IS NULL),
               count(*) FILTER (WHERE i.decision = 'approve'), count(*) FILTER (WHERE i.decision = 'revoke'),
               count(*) FILTER (WHERE i.missed_at IS NOT NULL)
        FROM review_items i JOIN resources r ON r.id = i.resource_id
        LEFT JOIN people p ON p.id = coalesce(i.second_stage_by, i.reviewer_id)
        WHERE i.campaign_id = %s GROUP BY 1, 2 ORDER BY 1, 2""", (campaign_id,)).fetchall()


# -- delegation -- a reviewer's whole open set moves to another manager; review_delegations keeps the hand-over.


@dataclasses.dataclass(frozen=True)
class Delegation:
    to_id: str
    to_name: str
    to_email: str | None
    items: int
    comment: str | None
    delegated_at: datetime


def manager_by_ref(conn: psycopg.Connection, ref: str) -> str | None:
    """A live, active person, by user name or primary e-mail, who manages at least one live person."""
    row = conn.execute("SELECT p.id::text FROM people p WHERE (lower(p.user_name) = lower(%(r)s) "
                       "OR lower(p.primary_email) = lower(%(r)s)) AND p.active AND p.deleted_at IS NULL "
                       "AND EXISTS (SELECT 1 FROM people x WHERE x.manager_id = p.id AND x.deleted_at IS NULL) "
                       "ORDER BY p.id LIMIT 1", {"r": ref.strip()}).fetchone()
    return row[0] if row else None


def delegate_items(conn: psycopg.Connection, campaign_id: str, from_id: str, to_id: str) -> int:
    """Move from_id's open items (first stage and second stage) to to_id; how many moved."""
    first = conn.execute("UPDATE review_items SET reviewer_id = %(to)s WHERE campaign_id = %(c)s "
                         "AND reviewer_id = %(me)s AND second_stage_by IS NULL AND decision IS NULL "
                         "AND missed_at IS NULL", {"c": campaign_id, "me": from_id, "to": to_id}).rowcount
    second = conn.execute("UPDATE review_items SET second_stage_by = %(to)s WHERE campaign_id = %(c)s "
                          "AND second_stage_by = %(me)s AND decision IS NULL AND missed_at IS NULL",
                          {"c": campaign_id, "me": from_id, "to": to_id}).rowcount
    return first + second


def record_delegation(conn: psycopg.Connection, campaign_id: str, from_id: str, to_id: str, items: int,
                      comment: str | None, at: datetime) -> None:
    conn.execute("INSERT INTO review_delegations (campaign_id, from_id, to_id, items, comment, delegated_at) "
                 "VALUES (%s, %s, %s, %s, %s, %s)", (campaign_id, from_id, to_id, items, comment, at))


def delegations_from(conn: psycopg.Connection, campaign_id: str, from_id: str) -> list[Delegation]:
    rows = conn.execute("SELECT d.to_id::text, coalesce(p.display_name, p.given_name, p.user_name), p.primary_email, "
                        "d.items, d.comment, d.delegated_at FROM review_delegations d JOIN people p ON p.id = d.to_id "
                        "WHERE d.campaign_id = %s AND d.from_id = %s ORDER BY d.delegated_at, d.id",
                        (campaign_id, from_id))
    return [Delegation(*r) for r in rows]
