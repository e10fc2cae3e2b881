"""SCIM resources (RFC 7643): requests validated with scim2-models, responses rendered from the store.

Rendering is plain dict building (stored e-mails from LDAP need not pass an
e-mail validator to be shown), with `attributes` / `excludedAttributes`
applied as RFC 7644 §3.9 says.
"""

import unicodedata

import email_validator
import pydantic
from scim2_models import Context, EnterpriseUser, Group, User

from service.identity.groups import Group as StoredGroup
from service.identity.people import Fields, Person
from service.scim.errors import InvalidSyntax, InvalidValue

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
USER_MODEL = User[EnterpriseUser]
ALWAYS = {"id", "schemas"}  # returned: always (RFC 7643 §7)

# scim2-models checks emails.value with email-validator, which by default refuses special-use names (RFC 6761:
# .local, .internal, .test, ...). Directories really use them (ann@corp.local), and the LDAP sync takes them: SCIM
# checks an address's syntax only. The list is read at each validation, so emptying it here is enough.
email_validator.SPECIAL_USE_DOMAIN_NAMES = []


def _validate(model, payload, ctx: Context):
    if not isinstance(payload, dict):
        raise InvalidSyntax("the request body must be a JSON object")
    try:
        return model.model_validate(payload, scim_ctx=ctx)
    except pydantic.ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "__root__")
        raise InvalidValue(f"{where}: {first.get('msg')}" if where else str(first.get("msg"))) from None


def _text(value) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


# Every string Gatehouse stores from SCIM is checked here, before any SQL: a too-long value or one holding a
# control character is a 400 invalidValue naming the attribute, never a database error. 256 characters fits
# the CHECK on userName and a group's displayName, and keeps any value well inside a btree index entry
# (2704 bytes; several attributes are indexed); externalIds (often DNs or long opaque ids) get 512.
MAX_TEXT = 256
MAX_EXTERNAL_ID = 512


def _checked(name: str, value: str | None, *, limit: int = MAX_TEXT, login: bool = False) -> str | None:
    """value, if it may be stored: at most limit characters, no control character (C0, C1, DEL) or lone
    surrogate; a login (userName) also no invisible format character (zero-width space, bidi overrides), so
    that two names that look the same are not two people."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidValue(f"{name} must be a string")
    if len(value) > limit:
        raise InvalidValue(f"{name} is limited to {limit} characters")
    refused = ("Cc", "Cs", "Cf", "Zl", "Zp") if login else ("Cc", "Cs")
    if any(unicodedata.category(c) in refused for c in value):
        what = "a control or invisible formatting character" if login else "a control character"
        raise InvalidValue(f"{name} contains {what}")
    return value


def _checked_user(fields: Fields) -> Fields:
    _checked("userName", fields.user_name, login=True)
    if not fields.user_name.strip():
        raise InvalidValue("userName must not be blank")
    for name, value in (("name.givenName", fields.given_name), ("name.familyName", fields.family_name),
                        ("name.formatted", fields.formatted_name), ("displayName", fields.display_name),
                        ("title", fields.title), ("employeeNumber", fields.employee_number),
                        ("department", fields.department), ("organization", fields.organization),
                        ("manager.value", fields.manager_ref)):
        _checked(name, value)
    for email in fields.emails:
        _checked("emails.value", email["value"])
        _checked("emails.type", email["type"])
    _checked("externalId", fields.external_id, limit=MAX_EXTERNAL_ID)
    return fields


def parse_user(payload, *, replacing: bool) -> Fields:
    """A POST or PUT body → the fields a source sets (password is accepted and discarded)."""
    ctx = Context.RESOURCE_REPLACEMENT_REQUEST if replacing else Context.RESOURCE_CREATION_REQUEST
    payload, manager = _without_manager(payload)
    user = _validate(USER_MODEL, payload, ctx)
    ext = user[EnterpriseUser] if ENTERPRISE in (user.schemas or []) or user[EnterpriseUser] else None
    name = user.name
    return _checked_user(Fields(
        user_name=user.user_name, given_name=name.given_name if name else None,
        family_name=name.family_name if name else None, formatted_name=name.formatted if name else None,
        display_name=user.display_name,
        emails=tuple({"value": e.value, "type": _text(e.type), "primary": bool(e.primary)} for e in user.emails or ()
                     if e.value),
        employee_number=ext.employee_number if ext else None, department=ext.department if ext else None,
        organization=ext.organization if ext else None, title=user.title,
        manager_ref=manager,
        active=user.active, external_id=user.external_id))


def _without_manager(payload):
    """Take the enterprise manager out before validation: Okta and Entra send only its value
    (Entra as a plain string), which scim2-models refuses without "$ref"."""
    if not isinstance(payload, dict):
        return payload, None
    key = next((k for k in payload if k.lower() == ENTERPRISE.lower()), None)
    ext = payload.get(key) if key else None
    if not isinstance(ext, dict):
        return payload, None
    name = next((k for k in ext if k.lower() == "manager"), None)
    if name is None:
        return payload, None
    rest = {k: v for k, v in ext.items() if k != name}
    manager = ext[name]
    if isinstance(manager, dict):
        manager = next((v for k, v in manager.items() if k.lower() == "value"), None)
    if manager is not None and not isinstance(manager, str):
        raise InvalidValue("manager.value must be a string")
    return {**payload, key: rest}, (manager or None)


def parse_group(payload, *, replacing: bool) -> tuple[str, str | None, list[tuple[str, str | None]]]:
    """A POST or PUT body → (displayName, externalId, members as (id, display as sent or None))."""
    ctx = Context.RESOURCE_REPLACEMENT_REQUEST if replacing else Context.RESOURCE_CREATION_REQUEST
    group = _validate(Group, payload, ctx)
    if not group.display_name or not group.display_name.strip():
        raise InvalidValue("displayName is required")
    _checked("displayName", group.display_name)
    _checked("externalId", group.external_id, limit=MAX_EXTERNAL_ID)
    members = [(_checked("members.value", m.value), _checked("members.display", m.display))
               for m in group.members or () if m.value]
    return group.display_name, group.external_id, members


def _meta(kind: str, base: str, obj) -> dict:
    return {"resourceType": kind, "created": obj.created_at.isoformat(), "lastModified": obj.updated_at.isoformat(),
            "location": f"{base}/{kind}s/{obj.id}", "version": obj.etag}


def render_user(person: Person, *, base: str, ext_source: str) -> dict:
    """The full SCIM User for a person."""
    user = {"schemas": [CORE_USER], "id": person.id}
    if person.external_ids.get(ext_source):
        user["externalId"] = person.external_ids[ext_source]
    user["userName"] = person.user_name
    # name.formatted as sent (RFC 7643 §4.1.1), never derived: a derived one would come back to a PATCH as if sent
    name = {k: v for k, v in (("givenName", person.given_name), ("familyName", person.family_name),
                              ("formatted", person.formatted_name)) if v}
    if name:
        user["name"] = name
    for key, value in (("displayName", person.display_name), ("title", person.title)):
        if value:
            user[key] = value
    if person.active_assigned:  # removed by a PATCH: inactive, and not returned (RFC 7644 §3.5.2.2)
        user["active"] = person.active
    if person.emails:
        user["emails"] = [{k: v for k, v in e.items() if v is not None} for e in person.emails]
    if person.groups:  # readOnly (RFC 7643 §4.1.2): changed through the Group resource, never here
        user["groups"] = [{"value": g["id"], "$ref": f"{base}/Groups/{g['id']}", "display": g["name"],
                           "type": "direct"} for g in person.groups]
    enterprise = {k: v for k, v in (("employeeNumber", person.employee_number), ("department", person.department),
                                    ("organization", person.organization)) if v}
    manager = person.manager_id or person.manager_ref
    if manager:
        enterprise["manager"] = {"value": manager}
    if enterprise:
        user["schemas"].append(ENTERPRISE)
        user[ENTERPRISE] = enterprise
    user["meta"] = _meta("User", base, person)
    return user


def render_group(group: StoredGroup, *, base: str) -> dict:
    body = {"schemas": [CORE_GROUP], "id": group.id, "displayName": group.display_name}
    if group.external_id:
        body["externalId"] = group.external_id
    if group.members is not None:
        body["members"] = [{"value": m.person_id, "display": m.display, "type": "User",
                            "$ref": f"{base}/Users/{m.person_id}"} for m in group.members]
    body["meta"] = _meta("Group", base, group)
    return body


def _paths(text: str | None) -> list[list[str]]:
    """`attributes=userName,name.givenName,urn:...:User:department` → lower-cased path parts."""
    paths = []
    for raw in (text or "").split(","):
        raw = raw.strip()
        if not raw:
            continue
        lowered = raw.lower()
        for urn in (ENTERPRISE.lower(), CORE_USER.lower(), CORE_GROUP.lower()):
            if lowered.startswith(urn + ":"):
                rest = lowered[len(urn) + 1:].split(".")
                paths.append(rest if urn != ENTERPRISE.lower() else [urn, *rest])
                break
            if lowered == urn:
                paths.append([urn])
                break
        else:
            paths.append(lowered.split("."))
    return paths


def project(resource: dict, *, attributes: str | None, excluded: str | None) -> dict:
    """Apply attributes / excludedAttributes (RFC 7644 §3.9); id and schemas are always returned."""
    keep, drop = _paths(attributes), _paths(excluded)
    if keep:
        picked = {k: v if k in ALWAYS else _selected(k, v, keep) for k, v in resource.items()}
        return {k: v for k, v in picked.items() if v is not None}
    if drop:
        return {k: _without(v, [p[1:] for p in drop if p[0] == k.lower()]) for k, v in resource.items()
                if k in ALWAYS or [k.lower()] not in drop}
    return resource


def _selected(key: str, value, paths: list[list[str]]):
    """The part of resource[key] the attribute paths ask for, or None."""
    subs = [p[1:] for p in paths if p[0] == key.lower()]
    if not subs:
        return None
    if [] in subs or not isinstance(value, (dict, list)):
        return value
    if isinstance(value, list):
        return [{k: v for k, v in item.items() if [k.lower()] in subs} for item in value if isinstance(item, dict)]
    picked = {k: _selected(k, v, subs) for k, v in value.items()}
    return {k: v for k, v in picked.items() if v is not None} or None


def _without(value, subs: list[list[str]]):
    if not subs or not isinstance(value, (dict, list)):
        return value
    if isinstance(value, list):
        return [_without(item, subs) for item in value]
    return {k: _without(v, [s[1:] for s in subs if s and s[0] == k.lower()]) for k, v in value.items()
            if [k.lower()] not in subs}
