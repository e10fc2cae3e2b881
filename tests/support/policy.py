"""A policy file for a test, built from the parts that matter to it; the rest takes the usual values."""

import json
from pathlib import Path

import policies

REVIEWS = {"cadence_days": 90, "due_days": 14}
GUARD = {"max_deactivation_share": 0.1, "max_deactivations": 50}


def resource(key: str, name: str | None = None, kind: str = "tool", **more) -> dict:
    return {"key": key, "name": name or key.capitalize(), "kind": kind, **more}


def course(course: str, name: str | None = None, *, validity_days=365, grace_days=0, gates=("vpn",),
           **more) -> dict:
    return {"course": course, "name": name or course.capitalize(), "validity_days": validity_days,
            "grace_days": grace_days, "gates": list(gates), **more}


def policy_toml(*, resources=(), training=(), reviews=REVIEWS, guard=GUARD, **arrays) -> str:
    """TOML text: [[resources]], [[training]] and any other array of tables, then [reviews] and [guard]."""
    parts = [_table(f"[[{name}]]", t) for name, tables in (("resources", resources), ("training", training),
                                                            *arrays.items()) for t in tables]
    parts += [_table(f"[{name}]", t) for name, t in (("reviews", reviews), ("guard", guard)) if t is not None]
    return "\n".join(parts)


def _table(header: str, values: dict) -> str:
    return "\n".join([header, *(f"{key} = {_value(v)}" for key, v in values.items())]) + "\n"


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string: JSON's escapes are TOML's
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"no TOML form for {v!r} here")


# A complete, valid policy file as text, and the shipped default, for the loader's tests.
DEFAULT = Path(policies.__file__).with_name("default.toml")

SOURCE = "etc/policy.toml"

VALID = """\
[[resources]]
key = "vpn"
name = "Corporate VPN"
kind = "vpn"

[[resources]]
key = "git"
name = "Git"
kind = "tool"

[[training]]
course = "security-awareness"
name = "Security awareness"
validity_days = 365
grace_days = 14
gates = ["vpn"]
applies_to = "everyone"
reminder_days = [7, 30, 1]

[[training]]
course = "privacy"
name = "Privacy"
validity_days = 730
grace_days = 0
gates = ["*"]
applies_to = ["hr", "legal"]

[reviews]
cadence_days = 90
due_days = 14

[guard]
max_deactivation_share = 0.10
max_deactivations = 50
"""
