"""SCIM PATCH (RFC 7644 §3.5.2) applied to a User or Group in SCIM JSON form: pure, no I/O.

Attribute and message names match case-insensitively (RFC 7643 §2.1) and come
back in their canonical case. Unassigned, null and empty are one state (RFC
7643 §2.5): an attribute left empty is dropped from the resource.
"""

import copy

from service.scim.errors import InvalidPath, InvalidSyntax, InvalidValue, Mutability, NoTarget
from service.scim.errors import ScimError as PatchError  # noqa: F401  (what a PATCH raises: any ScimError)
from service.scim.paths import Attr, Target, _fold, _resolve

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def _complex(name: str, *subs: "Attr | str", **kw) -> Attr:
    return Attr(name, "complex", subs=tuple(Attr(s) if isinstance(s, str) else s for s in subs), **kw)


# The root of each schema is named by its core URN; extensions are complex attributes named by theirs.
_COMMON = (
    Attr("schemas", multi=True, mutability="readOnly"),
    Attr("id", mutability="readOnly"),
    Attr("externalId"),
    _complex("meta", mutability="readOnly"),
)

def _multi(name: str, *subs: str) -> Attr:
    return _complex(name, "value", "type", "display", *subs, Attr("primary", "boolean"), multi=True,
                    key=("value", "type"))


# The rest of the RFC 7643 §4.1 User schema: accepted (Entra's default mappings send
# phoneNumbers, addresses and preferredLanguage) but not stored, so never returned.
_UNSTORED = (
    Attr("nickName"), Attr("profileUrl"), Attr("userType"), Attr("preferredLanguage"), Attr("locale"),
    Attr("timezone"), _multi("phoneNumbers"), _multi("ims"), _multi("photos"), _multi("entitlements"),
    _multi("roles"), _multi("x509Certificates"),
    _complex("addresses", "formatted", "streetAddress", "locality", "region", "postalCode", "country", "type",
             Attr("primary", "boolean"), multi=True, key=("type", "formatted")),
)
_USER = _complex(
    CORE_USER, *_COMMON,
    Attr("userName", required=True),
    _complex("name", "givenName", "familyName", "formatted", "middleName", "honorificPrefix", "honorificSuffix"),
    Attr("displayName"),
    Attr("title"),
    Attr("active", "boolean"),
    _complex("emails", "value", "type", "display", Attr("primary", "boolean"), multi=True, key=("value", "type")),
    Attr("password", mutability="writeOnly"),  # Okta may send it; accepted and never kept
    _complex("groups", "value", "display", "type", "$ref", multi=True, mutability="readOnly"),
    *_UNSTORED,
    _complex(
        ENTERPRISE, "employeeNumber", "department", "organization", "costCenter", "division",
        # RFC 7643 §4.3: manager.displayName is read-only, derived from the manager's own record.
        _complex("manager", "value", "displayName", "$ref", reference=True),
    ),
)
_GROUP = _complex(
    CORE_GROUP, *_COMMON,
    Attr("displayName", required=True),
    _complex("members", "value", "display", "type", "$ref", multi=True, key=("value",)),
)
_ROOTS = {"User": _USER, "Group": _GROUP}



def apply_patch(resource: dict, body: dict, *, kind: str) -> dict:
    """Apply a PatchOp body to a copy of a User or Group and return the copy (RFC 7644 §3.5.2)."""
    if kind not in _ROOTS:
        raise ValueError(f"kind must be 'User' or 'Group', not {kind!r}")
    root = _ROOTS[kind]
    result = copy.deepcopy(resource)
    # RFC 7644 §3.5.2: operations apply in order and the whole PATCH is atomic; we work on a copy.
    for op, path, value in _operations(body):
        target = Target((), root) if path is None else _resolve(root, path)
        _apply(result, root, op, target, value)
    _sync_schemas(result, root)
    return result


_MISSING = object()


def _field(obj: dict, name: str, default=None):
    """A member of a request object, its name matched in any case (RFC 7643 §2.1)."""
    return next((v for k, v in obj.items() if isinstance(k, str) and k.lower() == name.lower()), default)


def _operations(body) -> list[tuple[str, str | None, object]]:
    """Check the PatchOp message (RFC 7644 §3.5.2) and return its operations."""
    schemas = _field(body, "schemas") if isinstance(body, dict) else None
    if not isinstance(schemas, list) or PATCH_OP.lower() not in {str(s).lower() for s in schemas}:
        raise InvalidSyntax(f'"schemas" must contain "{PATCH_OP}"')
    ops = _field(body, "Operations")
    if not isinstance(ops, list) or not ops:
        raise InvalidSyntax('"Operations" must be a non-empty list')
    return [_operation(o) for o in ops]


def _operation(raw) -> tuple[str, str | None, object]:
    """Check one operation: its op, path and value."""
    op = _field(raw, "op") if isinstance(raw, dict) else None
    if not isinstance(op, str) or op.lower() not in ("add", "replace", "remove"):
        raise InvalidSyntax(f'"op" must be add, replace or remove, not {op!r}')
    op, path, value = op.lower(), _field(raw, "path"), _field(raw, "value", _MISSING)
    if path is not None and not isinstance(path, str):
        raise InvalidPath('"path" must be a string')
    path = (path.strip() or None) if path is not None else None
    if op == "remove" and path is None:
        # RFC 7644 §3.5.2.2: a remove without a path fails with noTarget.
        raise NoTarget("remove needs a path")
    if op != "remove" and (value is _MISSING or (op == "add" and value is None)):
        raise InvalidValue(f"{op} needs a value")
    if op != "remove" and path is None and not isinstance(value, dict):
        raise InvalidValue(f"{op} without a path needs an object of attributes as its value")
    return op, path, None if value is _MISSING else value


def _apply(resource: dict, root: Attr, op: str, target: Target, value) -> None:
    """Apply one operation at its target."""
    if target.attr is root:
        # RFC 7644 §3.5.2.1, §3.5.2.3: without a path, the value's members name the attributes.
        if op == "remove" or not isinstance(value, dict):
            raise InvalidValue(f"{op} on the whole resource needs an object of attributes")
        for key, item in value.items():
            _apply(resource, root, op, _resolve(root, key), item)
        return
    container = _container(resource, target.parents, create=op != "remove")
    if container is None:
        return  # removing below an unassigned attribute: nothing to do
    if target.attr.multi:
        _apply_multi(container, target, op, value)
    elif op == "remove":
        _unassign(container, target.attr)
    else:
        # RFC 7644 §3.5.2.1: add on a single-valued attribute replaces it (Entra deactivates with "Add").
        _put(container, target.attr, value)
    _prune(resource, target.parents)


def _container(resource: dict, parents: tuple[Attr, ...], *, create: bool) -> dict | None:
    """The object holding the target attribute, made on the way if create."""
    node = resource
    for parent in parents:
        if not isinstance(node.get(parent.name), dict):
            if not create:
                return None
            node[parent.name] = {}
        node = node[parent.name]
    return node


def _prune(resource: dict, parents: tuple[Attr, ...]) -> None:
    """Drop complex attributes an operation left empty (RFC 7643 §2.5)."""
    for depth in range(len(parents), 0, -1):
        holder = _container(resource, parents[:depth - 1], create=False)
        if holder is not None and holder.get(parents[depth - 1].name) == {}:
            del holder[parents[depth - 1].name]


def _put(container: dict, attr: Attr, value) -> None:
    """Add or replace a single-valued attribute; a complex one keeps unmentioned sub-attributes."""
    if attr.mutability == "readOnly":
        _restate(container, attr, value)
    elif value is None:
        _unassign(container, attr)
    elif attr.type != "complex":
        value = _scalar(attr, value)
        if attr.mutability != "writeOnly":
            container[attr.name] = value
    else:
        # RFC 7644 §3.5.2.3: sub-attributes the value does not mention are left unchanged.
        start = {} if attr.reference else dict(container.get(attr.name) or {})
        _store(container, attr.name, _merge(attr, start, value))


def _merge(attr: Attr, current: dict, value) -> dict:
    """Write the members of value into current, a value of the complex attribute attr."""
    if attr.reference and isinstance(value, str):
        value = {"value": value}  # Entra sends the manager as a bare id
    if not isinstance(value, dict):
        raise InvalidValue(f"{attr.name} takes an object, not {type(value).__name__}")
    for key, item in value.items():
        if attr.name.startswith("urn:") and isinstance(key, str) and key.lower() == "schemas":
            continue  # an extension's value as scim2-models dumps it names its own schema: not an attribute
        sub = attr.sub(key)
        if sub is None:
            raise InvalidPath(f"{attr.name} has no sub-attribute {key!r}")
        _put(current, sub, item)
    return current


def _scalar(attr: Attr, value):
    """A string or boolean value in canonical form."""
    if attr.type == "boolean":
        # Entra sends booleans as strings ("True", "False"); accept them in any case.
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if isinstance(value, bool):
            return value
        raise InvalidValue(f"{attr.name} is boolean, not {value!r}")
    if not isinstance(value, str):
        raise InvalidValue(f"{attr.name} takes a string, not {type(value).__name__}")
    return value


def _unassign(container: dict, attr: Attr) -> None:
    """Remove an attribute (RFC 7644 §3.5.2.2)."""
    # RFC 7644 §3.5.2.2: unassigning a required or read-only attribute fails with "mutability".
    if attr.required or attr.mutability == "readOnly":
        raise Mutability(f"{attr.name} is {'required' if attr.required else 'read-only'}")
    container.pop(attr.name, None)


def _restate(container: dict, attr: Attr, value) -> None:
    """A read-only attribute may be restated unchanged (Okta sends the id on rename), never changed."""
    have = container.get(attr.name)
    if isinstance(value, list) and isinstance(have, list) and all(isinstance(x, str) for x in value + have):
        value, have = sorted(map(str.casefold, value)), sorted(map(str.casefold, have))  # schemas
    if _fold(value) != _fold(have):
        # RFC 7644 §3.5.2: a client MUST NOT modify a readOnly attribute.
        raise Mutability(f"{attr.name} is read-only")


def _store(container: dict, name: str, value) -> None:
    if value in (None, {}, []):
        container.pop(name, None)
    else:
        container[name] = value


def _apply_multi(container: dict, target: Target, op: str, value) -> None:
    """Apply one operation to a multi-valued attribute (RFC 7644 §3.5.2.1-3)."""
    attr = target.attr
    if attr.mutability == "readOnly":
        if op == "remove":
            raise Mutability(f"{attr.name} is read-only")
        _restate(container, attr, value)
        return
    items = [dict(v) for v in container.get(attr.name) or [] if isinstance(v, dict)]
    if target.select is None:
        items, touched = _whole(attr, items, op, value)
    else:
        items, touched = _selected(target, items, op, value)
    _store(container, attr.name, _settle(attr, items, touched))


def _whole(attr: Attr, items: list[dict], op: str, value) -> tuple[list[dict], list[dict]]:
    """Add to, replace or remove a whole multi-valued attribute."""
    if op == "remove" and value is None:
        return [], []
    if not isinstance(value, list) and value is not None:
        raise InvalidValue(f"{attr.name} takes a list of values")
    new = [_merge(attr, {}, v) for v in value or []]
    if op == "remove":
        # Not in RFC 7644: Entra removes members with path "members" and a value listing them.
        # Members already gone are not an error, so a retried removal succeeds.
        return [i for i in items if not any(_covers(g, i) for g in new)], []
    # RFC 7644 §3.5.2.1: add appends; §3.5.2.3: replace replaces every value.
    return (items + new if op == "add" else new), new


def _covers(given: dict, item: dict) -> bool:
    """True if every sub-attribute in given (none empty) equals item's."""
    return bool(given) and all(_fold(item.get(k)) == _fold(v) for k, v in given.items())


def _selected(target: Target, items: list[dict], op: str, value) -> tuple[list[dict], list[dict]]:
    """Apply an operation to the values a filter selects, or to a sub-attribute of each."""
    attr, sub = target.attr, target.sub
    hits = [i for i in items if target.select.test(i)]
    if not hits:
        # RFC 7644 §3.5.2.2 and §3.5.2.3: remove and replace with a filter that matches nothing fail with
        # noTarget. An add creates the value the filter describes, as Entra expects of
        # 'emails[type eq "work"].value' (RFC 7644 §3.5.2.1: a missing target is added; erratum 8097).
        # Attributes Gatehouse does not store are never returned, so a client's replace or remove of
        # them always finds nothing: accept it rather than fail every update Entra sends.
        if attr in _UNSTORED and op != "add":
            return items, []
        if op != "add" or target.select.makes is None:
            raise NoTarget(f"no {attr.name} value matches the filter")
        hits = [dict(target.select.makes)]
        items = items + hits
    if op == "remove":
        if sub is None:
            return [i for i in items if not any(i is h for h in hits)], []
        for hit in hits:
            _unassign(hit, sub)
        return items, []
    for hit in hits:
        if sub is not None:
            _put(hit, sub, value)
        elif op == "replace":
            # RFC 7644 §3.5.2.3: all matching values are replaced.
            hit.clear()
            hit.update(_merge(attr, {}, value))
        else:
            _merge(attr, hit, value)
    return items, hits


def _settle(attr: Attr, items: list[dict], touched: list[dict]) -> list[dict]:
    """Keep one primary value (RFC 7643 §2.4) and merge values with the same key."""
    winner = next((t for t in reversed(touched) if t.get("primary") is True), None)
    out: list[dict] = []
    for item in items:
        if winner is not None and item is not winner and item.get("primary") is True:
            item["primary"] = False
        twin = next((o for o in out if attr.key and all(_fold(o.get(k)) == _fold(item.get(k)) for k in attr.key)),
                    None)
        if twin is not None:
            twin.update(item)
        elif item:
            out.append(item)
    return out


def _sync_schemas(resource: dict, root: Attr) -> None:
    """List an extension's URN in schemas exactly when the resource carries it (RFC 7643 §3)."""
    for ext in (a for a in root.subs if a.name.startswith("urn:")):
        schemas = list(resource.get("schemas") or [])
        listed = [s for s in schemas if isinstance(s, str) and s.lower() == ext.name.lower()]
        if ext.name in resource and not listed:
            resource["schemas"] = schemas + [ext.name]
        elif ext.name not in resource and listed:
            resource["schemas"] = [s for s in schemas if s not in listed]
