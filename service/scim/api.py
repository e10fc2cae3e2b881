"""SCIM 2.0 service provider (RFC 7644) at /scim/v2, as Okta and Microsoft Entra ID use it.

Each write is one transaction with its journal row (kind sync, actor the SCIM
client). A person set inactive or deleted is a leaver: their grants are
revoked in that same transaction, and every later access check denies.
"""

import dataclasses
import json
import logging

from flask import Blueprint, Response, g, request

from service import journal, web
from service.access import grants
from service.auth.guards import authorize_scope
from service.errors import GatehouseError
from service.identity import groups, people
from service.scim import discovery, errors, filters, patch
from service.scim.errors import InvalidFilter, InvalidSyntax, InvalidValue, Mutability, NotFound, ScimError, TooMany
from service.scim.resources import LIST, parse_group, parse_user, project, render_group, render_user

bp = Blueprint("scim", __name__, url_prefix="/scim/v2")
log = logging.getLogger("gatehouse.scim")
MEDIA = "application/scim+json"
ACCEPTED = ("application/scim+json", "application/json", "text/json")  # text/json: Okta


def scim_response(body, status: int = 200, *, etag: str | None = None, location: str | None = None) -> Response:
    response = Response(json.dumps(body, default=str) if body is not None else "", status=status,
                        content_type=f"{MEDIA}; charset=utf-8")
    if etag:
        response.headers["ETag"] = etag
    if location:
        response.headers["Location"] = location
    return response


def error_response(error: ScimError) -> Response:
    return scim_response(error.body(), error.status)


@bp.errorhandler(ScimError)
def _scim_error(e: ScimError):
    return error_response(e)


@bp.errorhandler(GatehouseError)
def _gatehouse_error(e: GatehouseError):
    kind = {"uniqueness": errors.Uniqueness, "bad_request": InvalidValue, "not_found": NotFound,
            "forbidden": errors.Forbidden}.get(e.code, ScimError)
    error = kind(e.message, status=e.status)
    response = error_response(error)
    response.headers.update(e.headers)
    return response


def _database_refusal(e):
    """The last net under the checks before SQL: a constraint the input broke is the client's error, named by
    the constraint (never the row, which the database's message carries), not a 500."""
    log.warning("SCIM input refused by the database: %s %s", e.sqlstate, getattr(e.diag, "constraint_name", None))
    return _gatehouse_error(people.refused(e))


for _refusal in people.REFUSALS:
    bp.register_error_handler(_refusal, _database_refusal)


@bp.before_request
def _authorize_and_parse():
    authorize_scope("scim")
    if request.method in ("POST", "PUT", "PATCH"):
        kind = (request.mimetype or "").lower()
        if kind and kind not in ACCEPTED:
            raise errors.UnsupportedMediaType(f"send {MEDIA}, application/json or text/json, not {kind}")
        try:
            g.body = json.loads(request.get_data(cache=False) or b"null")
        except (ValueError, UnicodeDecodeError):
            raise InvalidSyntax("the request body is not valid JSON") from None


def _base() -> str:
    return web.services().settings.public_base_url + "/scim/v2"


def _source() -> str:
    """Where this client's externalIds live: one namespace per SCIM client."""
    return f"scim:{g.principal.name}"


def _record(conn, outcome: str, detail: dict, subject: str | None = None) -> None:
    journal.append(conn, journal.Event(kind="sync", outcome=outcome, actor=g.principal.actor, subject=subject,
                                       detail=detail))


def _check_version(current_etag: str) -> None:
    """If-Match (RFC 7644 §3.14): a stale version is 412 and changes nothing."""
    wanted = request.headers.get("If-Match")
    if wanted and wanted.strip() != "*":
        tags = {t.strip().removeprefix("W/") for t in wanted.split(",")}
        if current_etag.removeprefix("W/") not in tags:
            raise errors.PreconditionFailed("the resource changed since that version (If-Match)")


def _immutable_id(body, resource_id: str) -> None:
    if isinstance(body, dict) and body.get("id") not in (None, resource_id):
        raise Mutability("id cannot be changed")


# --- discovery --------------------------------------------------------------------------------


@bp.get("/ServiceProviderConfig")
def service_provider_config():
    return scim_response(discovery.service_provider_config(_base()))


def _listing(resources: list[dict]) -> dict:
    return {"schemas": [LIST], "totalResults": len(resources), "startIndex": 1, "itemsPerPage": len(resources),
            "Resources": resources}


def _one(resources: list[dict], wanted: str):
    found = next((r for r in resources if r["id"] == wanted), None)
    if found is None:
        raise NotFound(f"no {wanted}")
    return scim_response(found)


@bp.get("/Schemas")
def schemas():
    return scim_response(_listing(discovery.schemas(_base())))


@bp.get("/Schemas/<schema_id>")
def schema(schema_id):
    return _one(discovery.schemas(_base()), schema_id)


@bp.get("/ResourceTypes")
def resource_types():
    return scim_response(_listing(discovery.resource_types(_base())))


@bp.get("/ResourceTypes/<type_id>")
def resource_type(type_id):
    return _one(discovery.resource_types(_base()), type_id)


# --- listing and search (RFC 7644 §3.4.2) -------------------------------------------------------


def _int_param(value, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidValue(f"{name} must be an integer") from None


def _query(source: dict) -> dict:
    def joined(v):
        return ",".join(v) if isinstance(v, list) else v

    start = max(1, _int_param(source.get("startIndex"), "startIndex", 1))
    count = min(max(0, _int_param(source.get("count"), "count", 100)), discovery.MAX_RESULTS)
    return {"filter": source.get("filter"), "start": start, "count": count,
            "attributes": joined(source.get("attributes")), "excluded": joined(source.get("excludedAttributes"))}


MAX_FILTER_LENGTH = 4096


def _list(kind: str, q: dict):
    where, params = None, {}
    if q["filter"] and len(q["filter"]) > MAX_FILTER_LENGTH:
        raise TooMany(f"filters are limited to {MAX_FILTER_LENGTH} characters")
    if q["filter"]:
        compiled = filters.compile_filter(q["filter"], kind, scim_source=_source())  # invalidFilter, tooMany
        where, params = compiled.sql, compiled.params
    base = _base()
    with web.connection() as conn:
        if kind == "User":
            total, found = people.search(conn, where, params, offset=q["start"] - 1, limit=q["count"])
            rendered = [render_user(p, base=base, ext_source=_source()) for p in found]
        else:
            members = "members" not in (q["excluded"] or "").lower() and (
                not q["attributes"] or "members" in q["attributes"].lower())
            total, found = groups.search(conn, where, params, offset=q["start"] - 1, limit=q["count"],
                                         with_members=members)
            rendered = [render_group(g_, base=base) for g_ in found]
    resources = [project(r, attributes=q["attributes"], excluded=q["excluded"]) for r in rendered]
    return scim_response({"schemas": [LIST], "totalResults": total, "startIndex": q["start"],
                          "itemsPerPage": len(resources), "Resources": resources})


@bp.get("/Users")
def list_users():
    return _list("User", _query(request.args))


@bp.get("/Groups")
def list_groups():
    return _list("Group", _query(request.args))


@bp.post("/Users/.search")
def search_users():
    return _list("User", _query(_search_body()))


@bp.post("/Groups/.search")
def search_groups():
    return _list("Group", _query(_search_body()))


@bp.post("/.search")
def search_all():
    """RFC 7644 §3.4.3: a search over every resource type, Users then Groups, paged as one list.

    A filter naming an attribute only one type has matches none of the other (an invalid filter for
    both is still invalidFilter).
    """
    q = _query(_search_body())
    if q["filter"] and len(q["filter"]) > MAX_FILTER_LENGTH:
        raise TooMany(f"filters are limited to {MAX_FILTER_LENGTH} characters")
    wheres = {}
    for kind in ("User", "Group"):
        try:
            wheres[kind] = filters.compile_filter(q["filter"], kind, scim_source=_source()) if q["filter"] else None
        except InvalidFilter:
            continue
    if not wheres:
        filters.compile_filter(q["filter"], "User", scim_source=_source())  # raises that type's error
    base, offset, left, total, rendered = _base(), q["start"] - 1, q["count"], 0, []
    with web.connection() as conn:
        for kind, where in wheres.items():
            sql_where, params = (where.sql, where.params) if where else (None, {})
            search = people.search if kind == "User" else groups.search
            found_total, found = search(conn, sql_where, params, offset=offset, limit=left)
            offset = max(0, offset - found_total)  # what is left to skip in the next type
            total += found_total
            left -= len(found)
            rendered += [render_user(r, base=base, ext_source=_source()) if kind == "User"
                         else render_group(r, base=base) for r in found]
    resources = [project(r, attributes=q["attributes"], excluded=q["excluded"]) for r in rendered]
    return scim_response({"schemas": [LIST], "totalResults": total, "startIndex": q["start"],
                          "itemsPerPage": len(resources), "Resources": resources})


def _search_body() -> dict:
    if not isinstance(g.body, dict):
        raise InvalidSyntax("the search request must be a JSON object")
    return g.body


# --- users ------------------------------------------------------------------------------------


def _user_out(person, status: int = 200):
    body = render_user(person, base=_base(), ext_source=_source())
    body = project(body, attributes=request.args.get("attributes"), excluded=request.args.get("excludedAttributes"))
    return scim_response(body, status, etag=person.etag, location=body["meta"]["location"] if status == 201 else None)


def _person(conn, person_id: str, *, lock: bool = False):
    person = people.get(conn, person_id, lock=lock)
    if person is None:
        raise NotFound(f"no User {person_id}")
    return person


@bp.get("/Users/<person_id>")
def get_user(person_id):
    with web.connection() as conn:
        person = _person(conn, person_id)
    if request.headers.get("If-None-Match") == person.etag:
        return scim_response(None, 304, etag=person.etag)
    return _user_out(person)


@bp.post("/Users")
def create_user():
    fields = parse_user(g.body, replacing=False)
    settings = web.services().settings
    with web.transaction() as conn:
        candidate = people.find_join_candidate(conn, fields, key=settings.scim_join_key, other_than=_source())
        if candidate is not None:  # known from LDAP: join, never a second copy
            if candidate.scim_owner:  # another client's person is not joined by this one (ownership on)
                _check_owner(candidate)
            person, changes = people.update(conn, candidate, fields, ext_source=_source(), owner=_source())
            _record(conn, "joined", {"resource": "User", "join_key": settings.scim_join_key, "changes": changes},
                    person.id)
        else:
            person = people.create(conn, fields, source="scim", ext_source=_source())
            _record(conn, "created", {"resource": "User", "user_name": person.user_name, "active": person.active},
                    person.id)
    return _user_out(person, 201)


def _check_owner(person) -> None:
    """With scim_ownership on, a client changes or deletes only the people it created or its join linked."""
    if web.services().settings.scim_ownership and person.scim_owner != _source():
        raise errors.Forbidden(f"User {person.id} belongs to another SCIM client (scim_ownership is on)")


def _apply_user(person_id: str, make_fields):
    """Load (locked), check If-Match, compute new fields, write, journal; leaver effects when deactivated."""
    with web.transaction() as conn:
        person = _person(conn, person_id, lock=True)
        _check_owner(person)
        _check_version(person.etag)
        fields = make_fields(person)
        updated, changes = people.update(conn, person, fields, ext_source=_source())
        if changes:
            outcome, detail = "updated", {"resource": "User", "changes": changes}
            if person.active and not updated.active:
                outcome = "deactivated"
                detail.update(leaver=True, revoked=people.end_access(conn, person.id, reason="leaver: deactivated"))
            _record(conn, outcome, detail, person.id)
    return _user_out(updated)


@bp.put("/Users/<person_id>")
def replace_user(person_id):
    _immutable_id(g.body, person_id)
    fields = parse_user(g.body, replacing=True)  # `active` omitted → unchanged (documented in the README)
    if fields.external_id is None:  # PUT replaces (RFC 7644 §3.5.1): an externalId left out is removed
        fields = dataclasses.replace(fields, removed=frozenset({"external_id"}))
    return _apply_user(person_id, lambda person: fields)


@bp.patch("/Users/<person_id>")
def patch_user(person_id):
    def patched(person):
        current = render_user(person, base=_base(), ext_source=_source())
        result = patch.apply_patch(current, g.body, kind="User")
        # A removed externalId or active is taken away, not "not given" (which leaves it as it is).
        removed = {stored for name, stored in (("active", "active"), ("externalId", "external_id"))
                   if name in current and name not in result}
        return dataclasses.replace(parse_user(result, replacing=True), removed=frozenset(removed))

    return _apply_user(person_id, patched)


@bp.delete("/Users/<person_id>")
def delete_user(person_id):
    with web.transaction() as conn:
        person = _person(conn, person_id, lock=True)
        _check_owner(person)
        _check_version(person.etag)
        people.soft_delete(conn, person)
        revoked = people.end_access(conn, person.id, reason="leaver: deleted")
        _record(conn, "deleted", {"resource": "User", "user_name": person.user_name, "leaver": True,
                                  "revoked": revoked}, person.id)
    return scim_response(None, 204)


# --- groups -----------------------------------------------------------------------------------


def _group(conn, group_id: str, *, lock: bool = False):
    found = groups.get(conn, group_id, lock=lock)
    if found is None:
        raise NotFound(f"no Group {group_id}")
    return found


def _group_out(group, status: int = 200):
    body = project(render_group(group, base=_base()), attributes=request.args.get("attributes"),
                   excluded=request.args.get("excludedAttributes"))
    return scim_response(body, status, etag=group.etag, location=body["meta"]["location"] if status == 201 else None)


@bp.get("/Groups/<group_id>")
def get_group(group_id):
    with web.connection() as conn:
        return _group_out(_group(conn, group_id))


@bp.post("/Groups")
def create_group():
    name, external_id, members = parse_group(g.body, replacing=False)
    with web.transaction() as conn:
        group = groups.create(conn, display_name=name, external_id=external_id, members=members, source="scim")
        _record(conn, "created", {"resource": "Group", "group": group.id, "display_name": name,
                                  "members": [m.person_id for m in group.members]})
        grants.apply_rules(conn, actor=g.principal.actor)
    return _group_out(group, 201)


def _apply_group(group_id: str, make_values, status: int):
    with web.transaction() as conn:
        group = _group(conn, group_id, lock=True)
        _check_version(group.etag)
        name, external_id, members = make_values(group)
        updated, changes = groups.replace(conn, group, display_name=name, external_id=external_id, members=members)
        if changes:
            _record(conn, "updated", {"resource": "Group", "group": group.id, "changes": changes})
            grants.apply_rules(conn, actor=g.principal.actor)
    return _group_out(updated) if status == 200 else scim_response(None, 204, etag=updated.etag)


@bp.put("/Groups/<group_id>")
def replace_group(group_id):
    _immutable_id(g.body, group_id)
    values = parse_group(g.body, replacing=True)
    return _apply_group(group_id, lambda group: values, 200)


@bp.patch("/Groups/<group_id>")
def patch_group(group_id):
    def patched(group):
        result = patch.apply_patch(render_group(group, base=_base()), g.body, kind="Group")
        return parse_group(result, replacing=True)

    return _apply_group(group_id, patched, 204)  # Entra expects 204 for a group PATCH


@bp.delete("/Groups/<group_id>")
def delete_group(group_id):
    with web.transaction() as conn:
        group = _group(conn, group_id, lock=True)
        _check_version(group.etag)
        groups.delete(conn, group)
        _record(conn, "deleted", {"resource": "Group", "group": group.id, "display_name": group.display_name})
        grants.apply_rules(conn, actor=g.principal.actor)
    return scim_response(None, 204)
