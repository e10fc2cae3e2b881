"""Parse and strictly validate a policy file's bytes (the caller reads the file)."""

import dataclasses
import hashlib
import re
import tomllib
from typing import Any

from policies.model import (
    ALL_RESOURCES,
    EVERYONE,
    AccessRule,
    Guard,
    Policy,
    Resource,
    Reviews,
    Target,
    TrainingRequirement,
)

KEY_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
KINDS = ("vpn", "tool")
MAX_GROUP_NAME = 256  # groups.display_name's limit
EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+")
MAX_DAYS = 36500  # a century: keeps date arithmetic far from datetime's limits


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file, the key and the fault."""

    def __init__(self, source: str, path: str | None, problem: str):
        self.source, self.path, self.problem = source, path, problem
        super().__init__(f"{source}: {path}: {problem}" if path else f"{source}: {problem}")


class _Fault(Exception):
    """Raised inside the parser; parse_policy adds the file name."""

    def __init__(self, path: str, problem: str):
        super().__init__(path, problem)
        self.path, self.problem = path, problem


def parse_policy(data: bytes, *, source: str) -> Policy:
    """Parse TOML policy bytes into a Policy whose version is their SHA-256 hex."""
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise PolicyError(source, None, f"not UTF-8 ({e.reason} at byte {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise PolicyError(source, None, f"invalid TOML: {e}") from None
    try:
        return dataclasses.replace(_policy(doc, hashlib.sha256(data).hexdigest()), text=data.decode("utf-8"))
    except _Fault as f:
        raise PolicyError(source, f.path, f.problem) from None


def _policy(doc: dict, version: str) -> Policy:
    _keys(doc, "", required={"resources", "reviews", "guard"}, optional={"training", "targets", "rules"})
    tables = _tables(doc["resources"], "resources")
    resources = tuple(_resource(t, f"resources[{i}]") for i, t in enumerate(tables))
    _no_duplicates([r.key for r in resources], "resources[{}].key", "resource key")
    known = {r.key for r in resources}
    tables = _tables(doc.get("training", []), "training")
    training = tuple(_training(t, f"training[{i}]", known) for i, t in enumerate(tables))
    _no_duplicates([t.course for t in training], "training[{}].course", "course")
    return Policy(version, resources, training, _reviews(doc["reviews"], known), _guard(doc["guard"]),
                  targets=_targets(doc.get("targets", []), known), rules=_rules(doc.get("rules", []), known))


# Outbound targets ([[targets]]): where a resource's access also lives. Per type, the keys it takes beyond
# key/type/resource and the retry settings; "secret" names the keys of which exactly one must say where a
# secret is (a file path or an environment variable's name), never the secret itself.
TARGET_TYPES: dict[str, dict[str, Any]] = {
    "scim": {"required": {"url"}, "optional": {"timeout_seconds", "verify", "group"},
             "secret": ("token_file", "token_env")},
    "ldap_group": {"required": {"url", "group_dn"},
                   "optional": {"bind_dn", "member_attribute", "dn_template", "timeout_seconds"},
                   "secret": ("password_file", "password_env"), "secret_optional": True},
    "webhook": {"required": {"url"}, "optional": {"timeout_seconds"}, "secret": ("secret_file", "secret_env")},
    "openvpn": {"required": {"url"}, "optional": {"timeout_seconds"}, "secret": ("password_file", "password_env"),
                "secret_optional": True},
    "command": {"required": {"command"}, "optional": {"timeout_seconds"}, "secret": (), "secret_optional": True},
}
# A SCIM target that gets its bearer token by OAuth 2.0 client credentials (RFC 6749 §4.4) instead of a static one.
SCIM_OAUTH: dict[str, Any] = {"required": {"url", "token_url", "client_id"},
              "optional": {"timeout_seconds", "verify", "group", "scope"},
              "secret": ("client_secret_file", "client_secret_env")}
_RETRY = {"max_attempts": (1, 100), "backoff_seconds": (1, 86400), "backoff_max_seconds": (1, 7 * 86400),
          "confirm_within_seconds": (60, 7 * 86400), "quarantine_after": (1, 1000)}


def _targets(value: Any, known: set[str]) -> tuple[Target, ...]:
    targets = tuple(_target(t, f"targets[{i}]", known) for i, t in enumerate(_tables(value, "targets")))
    _no_duplicates([t.key for t in targets], "targets[{}].key", "target key")
    return targets


def _target(table: dict, path: str, known: set[str]) -> Target:
    if "type" not in table:
        raise _Fault(f"{path}.type", "missing")
    kind = _str(table["type"], f"{path}.type")
    if kind not in TARGET_TYPES:
        raise _Fault(f"{path}.type", f"must be one of {', '.join(TARGET_TYPES)}, got {kind!r}")
    spec = SCIM_OAUTH if kind == "scim" and "token_url" in table else TARGET_TYPES[kind]
    _keys(table, path, required={"key", "type", "resource", *spec["required"]},
          optional={*spec["optional"], *spec["secret"], *_RETRY})
    resource = _str(table["resource"], f"{path}.resource")
    if resource not in known:
        raise _Fault(f"{path}.resource", f"names no resource in [[resources]]: {resource!r}")
    secrets = [k for k in spec["secret"] if k in table]
    if len(secrets) > 1 or (not secrets and not spec.get("secret_optional")):
        raise _Fault(f"{path}.{spec['secret'][0]}", f"give exactly one of {' or '.join(spec['secret'])}")
    settings: dict[str, object] = {}
    for name in sorted(table.keys() - {"key", "type", "resource", *_RETRY}):
        if name in ("timeout_seconds",):
            settings[name] = _bounded(table[name], f"{path}.{name}", 1, 300)
        elif name == "command":
            settings[name] = _argv(table[name], f"{path}.{name}")
        elif name == "verify":
            if not isinstance(table[name], bool):
                raise _Fault(f"{path}.{name}", f"must be a boolean, got {_type(table[name])}")
            settings[name] = table[name]
        else:
            settings[name] = _str(table[name], f"{path}.{name}")
    for url in ("url", "token_url"):
        if url in settings and not str(settings[url]).startswith(_SCHEMES[kind]):
            raise _Fault(f"{path}.{url}", f"must start with {' or '.join(_SCHEMES[kind])}, got {settings[url]!r}")
    retry = {name: _bounded(table[name], f"{path}.{name}", *_RETRY[name]) for name in _RETRY if name in table}
    return Target(key=_key(table["key"], f"{path}.key"), type=kind, resource=resource, settings=settings, **retry)


def _argv(value: Any, path: str) -> tuple[str, ...]:
    """A command as a list of words, run without a shell: an absolute program path, then its arguments."""
    if not isinstance(value, list) or not value or not all(isinstance(w, str) and w for w in value):
        raise _Fault(path, "must be a non-empty list of non-empty strings (the program, then its arguments)")
    if not value[0].startswith("/"):
        raise _Fault(path, f"the program must be an absolute path, got {value[0]!r}")
    return tuple(value)


_SCHEMES = {"scim": ("https://", "http://"), "webhook": ("https://", "http://"), "ldap_group": ("ldap://", "ldaps://"),
            "openvpn": ("tcp://", "unix://")}


def _bounded(value: Any, path: str, low: int, high: int) -> int:
    number = _int(value, path)
    if not low <= number <= high:
        raise _Fault(path, f"must be between {low} and {high}, got {number}")
    return number


def _resource(table: dict, path: str) -> Resource:
    _keys(table, path, required={"key", "name", "kind"}, optional={"owners"})
    kind = _str(table["kind"], f"{path}.kind")
    if kind not in KINDS:
        raise _Fault(f"{path}.kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    return Resource(_key(table["key"], f"{path}.key"), _str(table["name"], f"{path}.name"), kind,
                    _owners(table.get("owners", []), f"{path}.owners"))


def _owners(value: Any, path: str) -> tuple[str, ...]:
    """The resource owners' e-mail addresses: they review an item when no manager qualifies."""
    owners = [_str(v, f"{path}[{i}]").strip().lower() for i, v in enumerate(_list(value, path))]
    for i, owner in enumerate(owners):
        if not EMAIL_PATTERN.fullmatch(owner):
            raise _Fault(f"{path}[{i}]", f"must be an e-mail address, got {owner!r}")
    _no_duplicates(owners, path + "[{}]", "owner")
    return tuple(owners)


def _training(table: dict, path: str, known: set[str]) -> TrainingRequirement:
    _keys(table, path, required={"course", "name", "validity_days", "grace_days", "gates"},
          optional={"applies_to", "reminder_days"})
    return TrainingRequirement(
        course=_key(table["course"], f"{path}.course"),
        name=_str(table["name"], f"{path}.name"),
        validity_days=_days(table["validity_days"], f"{path}.validity_days", minimum=1),
        grace_days=_days(table["grace_days"], f"{path}.grace_days"),
        gates=_gates(table["gates"], f"{path}.gates", known),
        applies_to=_applies_to(table.get("applies_to", EVERYONE), f"{path}.applies_to"),
        reminder_days=_reminder_days(table.get("reminder_days", []), f"{path}.reminder_days"),
    )


def _gates(value: Any, path: str, known: set[str]) -> frozenset[str]:
    gates = _list(value, path, nonempty=True)
    for i, gate in enumerate(gates):
        if _str(gate, f"{path}[{i}]") != ALL_RESOURCES and gate not in known:
            raise _Fault(f"{path}[{i}]", f"names no resource in [[resources]]: {gate!r}")
    _no_duplicates(gates, path + "[{}]", "gate")
    return frozenset(gates)


def _applies_to(value: Any, path: str) -> str | frozenset[str]:
    if value == EVERYONE:
        return EVERYONE
    if isinstance(value, str):
        raise _Fault(path, f'must be "{EVERYONE}" or a list of department names, got {value!r}')
    departments = [_str(d, f"{path}[{i}]") for i, d in enumerate(_list(value, path, nonempty=True))]
    _no_duplicates(departments, path + "[{}]", "department")
    return frozenset(departments)


def _reminder_days(value: Any, path: str) -> tuple[int, ...]:
    days = [_days(d, f"{path}[{i}]", minimum=1) for i, d in enumerate(_list(value, path))]
    _no_duplicates(days, path + "[{}]", "reminder")
    return tuple(sorted(days, reverse=True))


def _rules(value: Any, known: set[str]) -> tuple[AccessRule, ...]:
    """[[rules]]: group → resources; one table per group (any case), each resource one the file names."""
    rules = tuple(_rule(t, f"rules[{i}]", known) for i, t in enumerate(_tables(value, "rules")))
    _no_duplicates([r.group.lower() for r in rules], "rules[{}].group", "group")
    return rules


def _rule(table: dict, path: str, known: set[str]) -> AccessRule:
    _keys(table, path, required={"group", "resources"})
    group = _str(table["group"], f"{path}.group")
    if len(group) > MAX_GROUP_NAME or group != group.strip() or any(ord(c) < 32 or ord(c) == 127 for c in group):
        raise _Fault(f"{path}.group", f"must be a group's name (1 to {MAX_GROUP_NAME} characters, no surrounding "
                                      f"spaces or control characters), got {group!r}")
    resources = _list(table["resources"], f"{path}.resources", nonempty=True)
    for i, key in enumerate(resources):
        if _str(key, f"{path}.resources[{i}]") not in known:
            raise _Fault(f"{path}.resources[{i}]", f"names no resource in [[resources]]: {key!r}")
    _no_duplicates(resources, path + ".resources[{}]", "resource")
    return AccessRule(group, tuple(resources))


def _reviews(value: Any, known: set[str]) -> Reviews:
    table = _table(value, "reviews")
    _keys(table, "reviews", required={"cadence_days", "due_days"}, optional=set(REVIEW_OPTIONS))
    cadence = _days(table["cadence_days"], "reviews.cadence_days", minimum=1)
    due = _days(table["due_days"], "reviews.due_days", minimum=1)
    if due > cadence:
        raise _Fault("reviews.due_days", f"must not exceed reviews.cadence_days ({cadence}), got {due}")
    return Reviews(cadence, due, **_review_options(table, known))


# The [reviews] settings besides cadence and due; each optional, with the default in policies.model.Reviews.
REVIEW_OPTIONS = ("resources", "reminder_days", "escalate_days", "guard_share", "unused_days",
                  "comment_required_for_revoke", "require_sso", "bulk_items", "bulk_seconds", "mover_due_days")


def _review_options(table: dict, known: set[str]) -> dict:
    options: dict[str, Any] = {}
    if "resources" in table:
        keys = [_str(k, f"reviews.resources[{i}]") for i, k in enumerate(_list(table["resources"],
                                                                                "reviews.resources"))]
        for i, key in enumerate(keys):
            if key not in known:
                raise _Fault(f"reviews.resources[{i}]", f"names no resource in [[resources]]: {key!r}")
        _no_duplicates(keys, "reviews.resources[{}]", "resource")
        options["resources"] = tuple(keys)
    if "reminder_days" in table:
        options["reminder_days"] = _reminder_days(table["reminder_days"], "reviews.reminder_days")
    for name, minimum in (("escalate_days", 0), ("unused_days", 1), ("bulk_seconds", 0), ("mover_due_days", 1)):
        if name in table:
            options[name] = _days(table[name], f"reviews.{name}", minimum=minimum)
    if "bulk_items" in table:
        options["bulk_items"] = _int(table["bulk_items"], "reviews.bulk_items")
        if options["bulk_items"] < 1:
            raise _Fault("reviews.bulk_items", f"must be at least 1, got {options['bulk_items']}")
    if "guard_share" in table:
        options["guard_share"] = _share(table["guard_share"], "reviews.guard_share")
    for name in ("comment_required_for_revoke", "require_sso"):
        if name in table:
            if not isinstance(table[name], bool):
                raise _Fault(f"reviews.{name}", f"must be true or false, got {_type(table[name])}")
            options[name] = table[name]
    return options


def _share(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Fault(path, f"must be a number, got {_type(value)}")
    if not 0 < value <= 1:
        raise _Fault(path, f"must be more than 0 and at most 1, got {value}")
    return float(value)


def _guard(value: Any) -> Guard:
    table = _table(value, "guard")
    _keys(table, "guard", required={"max_deactivation_share", "max_deactivations"})
    share = _share(table["max_deactivation_share"], "guard.max_deactivation_share")
    count = _int(table["max_deactivations"], "guard.max_deactivations")
    if count < 0:
        raise _Fault("guard.max_deactivations", f"must not be negative, got {count}")
    return Guard(share, count)


def _keys(table: dict, path: str, *, required: set[str], optional: frozenset[str] | set[str] = frozenset()) -> None:
    prefix = f"{path}." if path else ""
    unknown = [key for key in table if key not in required | optional]
    if unknown:
        raise _Fault(prefix + unknown[0], "unknown key")
    missing = sorted(required - table.keys())
    if missing:
        raise _Fault(prefix + missing[0], "missing")


def _table(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise _Fault(path, f"must be a table, got {_type(value)}")
    return value


def _tables(value: Any, path: str) -> list[dict]:
    if not isinstance(value, list):
        raise _Fault(path, f"must be an array of tables ([[{path}]]), got {_type(value)}")
    return [_table(t, f"{path}[{i}]") for i, t in enumerate(value)]


def _list(value: Any, path: str, *, nonempty: bool = False) -> list:
    if not isinstance(value, list):
        raise _Fault(path, f"must be a list, got {_type(value)}")
    if nonempty and not value:
        raise _Fault(path, "must not be empty")
    return value


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _Fault(path, f"must be a string, got {_type(value)}")
    if not value.strip():
        raise _Fault(path, "must not be empty")
    return value


def _key(value: Any, path: str) -> str:
    if not KEY_PATTERN.fullmatch(_str(value, path)):
        raise _Fault(path, f"must match ^{KEY_PATTERN.pattern}$, got {value!r}")
    return value


def _int(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Fault(path, f"must be an integer, got {_type(value)}")
    return value


def _days(value: Any, path: str, *, minimum: int = 0) -> int:
    days = _int(value, path)
    if not minimum <= days <= MAX_DAYS:
        raise _Fault(path, f"must be between {minimum} and {MAX_DAYS} days, got {days}")
    return days


def _no_duplicates(values: list, path: str, what: str) -> None:
    seen = set()
    for i, value in enumerate(values):
        if value in seen:
            raise _Fault(path.format(i), f"duplicate {what} {value!r}")
        seen.add(value)


def _type(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a table"}
    return names.get(type(value), type(value).__name__)
