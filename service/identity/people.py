"""People: one row per person, whichever sources (SCIM, LDAP) know them."""

import dataclasses
import functools
import uuid
from collections.abc import Collection
from datetime import datetime

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from service.db.query import required, scalar
from service.errors import BadRequest, Conflict, GatehouseError
from service.identity.model import FIELDS, primary_email

_COLUMNS = sql.SQL("""
    p.id::text, p.user_name, p.given_name, p.family_name, p.display_name, p.emails, p.primary_email,
    p.employee_number, p.department, p.organization, p.title, p.manager_id::text, p.manager_ref, p.active,
    p.source, p.attribute_sources, p.version, p.created_at, p.updated_at, p.deleted_at, p.formatted_name,
    p.scim_owner, p.active_assigned,
    coalesce((SELECT jsonb_object_agg(x.source, x.external_id) FROM person_external_ids x
              WHERE x.person_id = p.id), '{}'),
    coalesce((SELECT jsonb_object_agg(e.key, e.value) FROM person_logins l CROSS JOIN jsonb_each_text(l.logins) e
              WHERE l.person_id = p.id), '{}'),
    coalesce((SELECT jsonb_agg(jsonb_build_object('id', g.id::text, 'name', g.display_name)
                               ORDER BY lower(g.display_name), g.id)
              FROM group_members m JOIN groups g ON g.id = m.group_id WHERE m.person_id = p.id), '[]')""")



@dataclasses.dataclass(frozen=True)
class Person:
    id: str
    user_name: str
    given_name: str | None
    family_name: str | None
    display_name: str | None
    emails: list
    primary_email: str | None
    employee_number: str | None
    department: str | None
    organization: str | None
    title: str | None
    manager_id: str | None
    manager_ref: str | None
    active: bool
    source: str
    attribute_sources: dict
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    formatted_name: str | None  # name.formatted as a SCIM client sent it
    scim_owner: str | None  # the SCIM client ("scim:<name>") that created or joined this person
    active_assigned: bool  # False after a SCIM remove of `active`: inactive, and `active` not returned
    external_ids: dict
    logins: dict  # source → the login it gave ("userName", "ldap", "scim:okta"), each resolving this person
    groups: list  # [{"id", "name"}]: the groups this person is a member of, by name

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'


@dataclasses.dataclass(frozen=True)
class Fields:
    """What a source says about a person; None means "not given" for active."""

    user_name: str
    given_name: str | None = None
    family_name: str | None = None
    formatted_name: str | None = None
    display_name: str | None = None
    emails: tuple = ()
    employee_number: str | None = None
    department: str | None = None
    organization: str | None = None
    title: str | None = None
    manager_ref: str | None = None
    active: bool | None = None
    external_id: str | None = None
    # Attributes the source removed ("active", "external_id"): None above means "not given", this "take it away".
    removed: frozenset = frozenset()


def _select(where: sql.Composable) -> sql.Composed:
    return sql.SQL("SELECT {} FROM people p WHERE {}").format(_COLUMNS, where)


def get(conn: psycopg.Connection, person_id: str, *, lock: bool = False, deleted: bool = False) -> Person | None:
    """A live (not deleted) person by id; with `deleted`, someone who left too (the people pages show leavers)."""
    try:
        uuid.UUID(person_id)
    except (ValueError, TypeError):
        return None
    query = _select(sql.SQL("p.id = %s") if deleted else sql.SQL("p.id = %s AND p.deleted_at IS NULL"))
    if lock:
        query = query + sql.SQL(" FOR UPDATE OF p")
    row = conn.execute(query, (person_id,)).fetchone()
    return Person(*row) if row else None


def search(conn: psycopg.Connection, where: sql.Composable | None, params: dict, *, offset: int,
           limit: int) -> tuple[int, list[Person]]:
    """Live people matching `where` (over alias p), in a stable order, with the total count.

    One round trip when the page has rows (the count rides along as a window);
    a second, count-only one when it has none.
    """
    condition = (
        sql.SQL("p.deleted_at IS NULL") if where is None else sql.SQL("p.deleted_at IS NULL AND ({})").format(where)
    )
    rows = []
    if limit > 0:
        query = sql.SQL(
            "WITH page AS (SELECT p.id, count(*) OVER () AS total FROM people p WHERE {} "
            "ORDER BY p.created_at, p.id OFFSET %(_offset)s LIMIT %(_limit)s) "
            "SELECT {}, page.total FROM page JOIN people p ON p.id = page.id ORDER BY p.created_at, p.id"
        ).format(condition, _COLUMNS)
        rows = conn.execute(query, {**params, "_offset": offset, "_limit": limit}).fetchall()
    if rows:
        return rows[0][-1], [Person(*r[:-1]) for r in rows]
    total = scalar(conn, sql.SQL("SELECT count(*) FROM people p WHERE {}").format(condition), params)
    return total, []


# How a reference may name a person in a check or an import: each identifier's condition over alias p. A userName
# is unique over everyone, deleted people too, so it keeps naming its person after they leave; an e-mail or an
# employee number names only live people.
_NAMED_BY = {
    # through the login key (sql/013): NFKC, trimmed and case-folded, so ＺＯＥ and "zoe " name Zoe
    # (the login key is person_logins' primary key: at most one person, found by index, then people by its pkey;
    # an EXISTS per row here would make the OR below a sequential scan of people)
    "user_name": "p.id = (SELECT l.person_id FROM person_logins l WHERE l.login_key = login_key({r}))",
    "email": "p.deleted_at IS NULL AND lower(p.primary_email) = lower({r})",
    "employee_number": "p.deleted_at IS NULL AND p.employee_number = {r}",
}
IDENTIFIERS = tuple(_NAMED_BY)

# -- matching -- exactly one row: the person (NULL columns when none), and the ids when several live people match.
_MATCHING = """
SELECT p.id, p.active, p.deleted_at IS NOT NULL AS deleted, p.started_at, p.department, m.ambiguous
FROM (
    SELECT coalesce(
               -- named by the userName of someone deleted or inactive: that person, whoever else matches
               min(f.id::text) FILTER (WHERE f.by_name AND NOT f.usable),
               CASE WHEN count(*) FILTER (WHERE f.live) = 1 THEN min(f.id::text) FILTER (WHERE f.live) END
           )::uuid AS id,
           CASE WHEN count(*) FILTER (WHERE f.by_name AND NOT f.usable) = 0 AND count(*) FILTER (WHERE f.live) > 1
                THEN array_agg(f.id::text ORDER BY f.id) FILTER (WHERE f.live) END AS ambiguous
    FROM (
        SELECT p.id, {by_name} AS by_name, p.deleted_at IS NULL AS live, p.deleted_at IS NULL AND p.active AS usable
        FROM people p WHERE {named}
    ) f
) m
LEFT JOIN people p ON p.id = m.id"""


@functools.lru_cache(maxsize=16)
def _matching(identifiers: tuple[str, ...]) -> str:
    named = " OR ".join(f"({_NAMED_BY[i]})" for i in identifiers)
    by_name = _NAMED_BY["user_name"] if "user_name" in identifiers else "false"
    return _MATCHING.replace("{named}", named).replace("{by_name}", by_name)


def matching(ref: sql.Composable, identifiers: Collection[str]) -> sql.Composed:
    """Which person a reference names, through the given identifiers (any case, but employee numbers).

    One row (id, active, deleted, started_at, department, ambiguous): a userName naming someone deleted or
    inactive is that person; else the one live person matched; else, when several live people match, no
    person and their ids in `ambiguous`; else NULLs. Never a fall-through from one person to another.
    `ref` may be a column of the enclosing query (inside, the aliases are p, f and m).
    """
    if not identifiers or set(identifiers) - set(IDENTIFIERS):
        raise ValueError(f"identifiers must be some of {IDENTIFIERS}, got {tuple(identifiers)!r}")
    return sql.SQL(_matching(tuple(i for i in IDENTIFIERS if i in identifiers))).format(r=ref)


def find_join_candidate(conn: psycopg.Connection, fields: Fields, *, key: str, other_than: str) -> Person | None:
    """A live person from another source who is this one, by the configured join key."""
    value = {"externalId": fields.external_id, "employeeNumber": fields.employee_number,
             "email": primary_email(list(fields.emails))}.get(key)
    if not value:
        return None
    condition = {
        "externalId": "EXISTS (SELECT 1 FROM person_external_ids x WHERE x.person_id = p.id AND x.external_id = %s)",
        "employeeNumber": "p.employee_number = %s",
        "email": "lower(p.primary_email) = lower(%s)",
    }[key]
    row = conn.execute(_select(sql.SQL(
        "p.deleted_at IS NULL AND " + condition + " AND NOT EXISTS (SELECT 1 FROM person_external_ids y "
        "WHERE y.person_id = p.id AND y.source = %s) ORDER BY p.created_at LIMIT 1")), (value, other_than)).fetchone()
    return Person(*row) if row else None


def resolve_manager(conn: psycopg.Connection, ref: str | None) -> str | None:
    """The id of the person a manager reference names: id, userName, e-mail or employee number (or LDAP DN)."""
    if not ref:
        return None
    row = conn.execute(
        "SELECT p.id::text FROM people p WHERE p.deleted_at IS NULL AND (p.id::text = %(r)s "
        "OR p.id = (SELECT l.person_id FROM person_logins l WHERE l.login_key = login_key(%(r)s)) "
        "OR p.employee_number = %(r)s OR lower(p.primary_email) = lower(%(r)s) "
        "OR EXISTS (SELECT 1 FROM person_external_ids x "
        "WHERE x.person_id = p.id AND lower(x.external_id) = lower(%(r)s))) "
        "ORDER BY (p.id::text = %(r)s) DESC LIMIT 1",
        {"r": ref},
    ).fetchone()
    return row[0] if row else None


def adopt_pending_reports(conn: psycopg.Connection, person: Person) -> int:
    """People whose manager reference names this person now get them as manager (as resolve_manager would).

    A reference names them by id, e-mail or external id, by employee number, or by any of their logins through
    the login key (ＢＯＳＳ names boss; an LDAP uid names the person Okta renamed).
    """
    refs = [person.id, *(v.lower() for v in person.external_ids.values())]
    if person.primary_email:
        refs.append(person.primary_email.lower())
    return conn.execute(
        "UPDATE people SET manager_id = %s, manager_ref = NULL, version = version + 1, updated_at = now() "
        "WHERE manager_ref IS NOT NULL AND manager_id IS NULL AND id <> %s "
        "AND (lower(manager_ref) = ANY(%s) OR manager_ref = %s "
        "OR login_key(manager_ref) IN (SELECT l.login_key FROM person_logins l WHERE l.person_id = %s))",
        (person.id, person.id, refs, person.employee_number, person.id)).rowcount


def _values(fields: Fields, conn: psycopg.Connection) -> dict:
    emails = [dict(e) for e in fields.emails]
    return {
        "user_name": fields.user_name, "given_name": fields.given_name, "family_name": fields.family_name,
        "formatted_name": fields.formatted_name,
        "display_name": fields.display_name, "emails": Jsonb(emails), "primary_email": primary_email(emails),
        "employee_number": fields.employee_number, "department": fields.department,
        "organization": fields.organization, "title": fields.title,
        "manager_id": resolve_manager(conn, fields.manager_ref),
        "manager_ref": fields.manager_ref,
    }


# What each constraint on a person's rows means, by its name: a violation is the client's mistake, told as such
# (409 for a taken value, 400 for one that cannot be stored), never a 500 with the row in the log.
_TAKEN = {
    "people_user_name_key": "userName", "person_logins_pkey": "userName",
    "people_employee_number_key": "employeeNumber", "people_primary_email_key": "primary e-mail",
    "person_external_ids_pkey": "externalId",
}
_LIMITS = {
    "people_user_name_check": "userName must be 1 to 256 characters",
    "person_logins_login_key_check": "userName must be 1 to 1024 characters once normalized",
    "people_formatted_name_check": "name.formatted is limited to 1024 characters",
    "person_external_ids_external_id_check": "externalId must be 1 to 1024 characters",
}


def refused(e: psycopg.Error, what: dict[str, str] | None = None) -> GatehouseError:
    """The error to answer for a database refusal of a person's values, by constraint name.

    `what` names the value each unique constraint guards ({"userName": "'zoe'"}), for the message.
    """
    constraint = getattr(e.diag, "constraint_name", None) or ""
    if isinstance(e, psycopg.errors.UniqueViolation):
        attribute = _TAKEN.get(constraint, "a unique attribute")
        shown = (what or {}).get(attribute)
        error = Conflict(f"{attribute} {shown} is already taken" if shown else f"{attribute} is already taken")
        error.code = "uniqueness"
        return error
    if constraint in _LIMITS:
        return BadRequest(_LIMITS[constraint])
    # Any other CHECK, a value too long for an index entry, a character the encoding cannot hold: still the
    # input's fault (our own writes satisfy our constraints), named by constraint or SQLSTATE, never the row.
    return BadRequest(f"a value cannot be stored ({constraint or e.sqlstate})")


REFUSALS = (psycopg.errors.IntegrityError, psycopg.errors.DataError, psycopg.errors.ProgramLimitExceeded)


def _refused(e: psycopg.Error, fields: Fields) -> GatehouseError:
    return refused(e, {"userName": repr(fields.user_name), "employeeNumber": repr(fields.employee_number),
                       "primary e-mail": repr(primary_email(list(fields.emails))),
                       "externalId": repr(fields.external_id)})


_INSERT = """
INSERT INTO people (user_name, given_name, family_name, formatted_name, display_name, emails, primary_email,
                    employee_number, department, organization, title, manager_id, manager_ref, active, source,
                    attribute_sources, scim_owner)
VALUES (%(user_name)s, %(given_name)s, %(family_name)s, %(formatted_name)s, %(display_name)s, %(emails)s,
        %(primary_email)s, %(employee_number)s, %(department)s, %(organization)s, %(title)s, %(manager_id)s,
        %(manager_ref)s, %(active)s, %(source)s, %(sources)s, %(scim_owner)s)
RETURNING id::text
"""

_UPDATE = """
UPDATE people SET user_name = %(user_name)s, given_name = %(given_name)s, family_name = %(family_name)s,
       formatted_name = %(formatted_name)s, scim_owner = coalesce(scim_owner, %(scim_owner)s),
       display_name = %(display_name)s, emails = %(emails)s, primary_email = %(primary_email)s,
       employee_number = %(employee_number)s, department = %(department)s, organization = %(organization)s,
       title = %(title)s, manager_id = %(manager_id)s, manager_ref = %(manager_ref)s, active = %(active)s,
       active_assigned = %(active_assigned)s,
       attribute_sources = %(sources)s, version = version + 1, updated_at = now()
WHERE id = %(id)s
"""

# The key of attribute_sources naming the SCIM client that owns the person (people.scim_owner), if one does.
OWNER = "owner"

# Changes that can make this person the manager someone is waiting for.
_IDENTITY = {"user_name", "emails", "employee_number", "external_id"}


def create(conn: psycopg.Connection, fields: Fields, *, source: str, ext_source: str) -> Person:
    """Insert a person in the caller's transaction; Conflict on a taken userName.

    No savepoint: a unique violation aborts the caller's transaction, as it should.
    """
    values = _values(fields, conn)
    values["manager_ref"] = None if values["manager_id"] else fields.manager_ref
    params = {**values, "active": fields.active is not False, "source": source,
              "scim_owner": ext_source if ext_source.startswith("scim:") else None}
    # Who owns the person (scim_ownership) is shown with who set what: attribute_sources["owner"].
    owned = {OWNER: params["scim_owner"]} if params["scim_owner"] else {}
    params["sources"] = Jsonb({**{f: ext_source for f in FIELDS}, **owned})
    try:
        person_id = scalar(conn, _INSERT, params)
        if fields.external_id:
            link_external_id(conn, person_id, ext_source, fields.external_id)
        set_login(conn, person_id, ext_source, fields.user_name)
    except REFUSALS as e:
        raise _refused(e, fields) from None
    person = required(get(conn, person_id), f"person {person_id}")
    adopt_pending_reports(conn, person)
    return person


def update(conn: psycopg.Connection, person: Person, fields: Fields, *, ext_source: str,
           owner: str | None = None) -> tuple[Person, dict]:
    """Replace what this source says about a person; return the new person and {attribute: [old, new]}.

    owner: the SCIM client whose join links this person, recorded unless one already owns them.
    """
    values = _values(fields, conn)
    if values["manager_id"]:
        values["manager_ref"] = None
    active = person.active if fields.active is None else fields.active
    assigned = person.active_assigned if fields.active is None else True
    if "active" in fields.removed:  # fails closed: unassigned is inactive
        active, assigned = False, False
    changes = _changes(person, values, active)
    if assigned != person.active_assigned:
        changes["active"] = [person.active if person.active_assigned else None, active if assigned else None]
    if fields.external_id is not None and person.external_ids.get(ext_source) != fields.external_id:
        changes["external_id"] = [person.external_ids.get(ext_source), fields.external_id]
    elif "external_id" in fields.removed and person.external_ids.get(ext_source) is not None:
        changes["external_id"] = [person.external_ids.get(ext_source), None]
    if owner and not person.scim_owner:
        changes["scim_owner"] = [None, owner]
    if not changes:
        return person, {}
    sources = {**person.attribute_sources, **{f: ext_source for f in changes if f != "scim_owner"}}
    if "scim_owner" in changes:
        sources[OWNER] = owner
    try:
        conn.execute(_UPDATE, {**values, "active": active, "sources": Jsonb(sources), "id": person.id,
                               "scim_owner": owner, "active_assigned": assigned})
        if "external_id" in changes and fields.external_id is None:
            conn.execute("DELETE FROM person_external_ids WHERE person_id = %s AND source = %s",
                         (person.id, ext_source))
        elif "external_id" in changes and fields.external_id is not None:
            link_external_id(conn, person.id, ext_source, fields.external_id)
        if "user_name" in changes or person.logins.get(ext_source) != fields.user_name:
            set_login(conn, person.id, ext_source, fields.user_name)
    except REFUSALS as e:
        raise _refused(e, fields) from None
    updated = required(get(conn, person.id), f"person {person.id}")
    if _IDENTITY & changes.keys():
        adopt_pending_reports(conn, updated)
    return updated, changes


def set_login(conn: psycopg.Connection, person_id: str, source: str, login: str | None) -> None:
    """This source's login of the person (sql/018): it replaces the source's old one; another source's stay.

    Gateways send the directory login, SCIM clients their userName: each keeps resolving the person through the
    one login key. A key that is another person's raises UniqueViolation on person_logins_pkey.
    """
    conn.execute("SELECT person_login_set(%s, %s, %s)", (person_id, source, login))


def link_external_id(conn: psycopg.Connection, person_id: str, source: str, external_id: str) -> None:
    conn.execute("INSERT INTO person_external_ids (person_id, source, external_id) VALUES (%s, %s, %s) "
                 "ON CONFLICT (person_id, source) DO UPDATE SET external_id = EXCLUDED.external_id",
                 (person_id, source, external_id))


def _changes(person: Person, values: dict, active: bool) -> dict:
    """{attribute: [old, new]} for what differs ("manager" is the resolved id, else the pending reference)."""
    old = {f: getattr(person, f) for f in FIELDS if f not in ("manager", "active")}
    new = {f: values[f] for f in old}
    new["emails"] = values["emails"].obj
    old["manager"], new["manager"] = (
        person.manager_id or person.manager_ref,
        values["manager_id"] or values["manager_ref"],
    )
    old["active"], new["active"] = person.active, active
    return {f: [old[f], new[f]] for f in FIELDS if old[f] != new[f]}


def soft_delete(conn: psycopg.Connection, person: Person) -> None:
    """Mark deleted (kept for the journal): inactive from now on."""
    conn.execute("UPDATE people SET active = false, deleted_at = now(), version = version + 1, updated_at = now() "
                 "WHERE id = %s", (person.id,))


def end_access(conn: psycopg.Connection, person_id: str, *, reason: str) -> list[str]:
    """A leaver: revoke every grant that is not revoked yet; return the resource keys."""
    rows = conn.execute(
        "UPDATE grants g SET state = 'revoked', reason = %s, updated_at = now() FROM resources r "
        "WHERE g.person_id = %s AND g.state <> 'revoked' AND r.id = g.resource_id RETURNING r.key",
        (reason, person_id)).fetchall()
    return sorted(r[0] for r in rows)
