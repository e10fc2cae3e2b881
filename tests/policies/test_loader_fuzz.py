"""Hypothesis against the policy loader: any text in, a Policy or the loader's own PolicyError out, nothing else."""

import json
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies import Policy, PolicyError, parse_policy
from tests.support.policy import DEFAULT, SOURCE, VALID, policy_toml, resource

# Outbound targets too, each type with its retry settings, so the mutations reach every part of the loader
TARGETS = policy_toml(resources=[resource("github"), resource("vpn", kind="vpn")], rules=[
    {"group": "Engineering", "resources": ["github"]}], targets=[
    {"key": "gh", "type": "scim", "resource": "github", "url": "https://t.example/scim/v2", "token_env": "T",
     "max_attempts": 3, "backoff_seconds": 30},
    {"key": "hook", "type": "webhook", "resource": "vpn", "url": "https://hooks.example/x", "secret_env": "H"}])
LINES = {name: text.splitlines() for name, text in (("default", DEFAULT.read_text()), ("valid", VALID),
                                                    ("targets", TARGETS))}
_ASSIGNMENT = re.compile(r"^(\s*[A-Za-z0-9_.\"-]+\s*=\s*)(.*)$")
_KEYS = sorted({m.group(1).split("=")[0].strip() for lines in LINES.values() for line in lines
                if (m := _ASSIGNMENT.match(line))})

_SCALARS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda f: {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(
        repr(f), repr(f))),
    st.booleans().map(lambda b: "true" if b else "false"),
    st.text(max_size=40).map(json.dumps),  # a basic string with JSON's escapes, which TOML shares
    st.sampled_from(["1979-05-27", "1979-05-27T07:32:00Z", "07:32:00", "0001-01-01", "9999-12-31T23:59:59+14:00",
                     "\"\"", "\"everyone\"", "\"vpn\"", "[]", "{}", "-0", "0", "1", "36501", "0.0", "1.0000001"]),
)
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4).map(lambda items: "[" + ", ".join(items) + "]"),
    st.dictionaries(st.sampled_from(_KEYS), inner, max_size=3).map(
        lambda d: "{" + ", ".join(f"{k} = {v}" for k, v in d.items()) + "}")), max_leaves=8)


@st.composite
def mutated_policies(draw) -> str:
    """A real policy file with a few lines changed: a value replaced, a line dropped, doubled or added."""
    lines = list(LINES[draw(st.sampled_from(sorted(LINES)))])
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["value", "value", "drop", "double", "add", "header"]))
        match = _ASSIGNMENT.match(lines[i])
        if action == "value" and match:
            lines[i] = match.group(1) + draw(_VALUES)
        elif action == "drop":
            del lines[i]
        elif action == "double":
            lines.insert(i, lines[i])
        elif action == "add":
            lines.insert(i, f"{draw(st.sampled_from(_KEYS))} = {draw(_VALUES)}")
        elif action == "header":
            name = draw(st.sampled_from(["resources", "training", "targets", "rules", "reviews", "guard", "x"]))
            lines.insert(i, f"[[{name}]]" if draw(st.booleans()) else f"[{name}]")
        if not lines:
            lines = [""]
    return "\n".join(lines) + "\n"


def _loads_or_refuses_clearly(data: bytes) -> None:
    try:
        policy = parse_policy(data, source=SOURCE)
    except PolicyError as e:
        assert str(e).startswith(SOURCE + ": ") and "\n" not in str(e).strip() or "invalid TOML" in str(e)
        return
    assert isinstance(policy, Policy) and policy.resources


def test_the_targets_policy_is_valid():
    assert parse_policy(TARGETS.encode(), source=SOURCE).targets


_FUZZ = settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(mutated_policies())
def test_a_changed_policy_loads_or_is_a_policy_error(text):
    _loads_or_refuses_clearly(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=200, deadline=None, database=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_any_bytes_load_or_are_a_policy_error(data):
    _loads_or_refuses_clearly(data)


def test_the_mutator_reaches_past_toml_syntax():
    """The fuzz is worth something only if most changed files are valid TOML and reach the policy's own checks."""
    reached = []

    @settings(max_examples=200, deadline=None, database=None)
    @given(mutated_policies())
    def sample(text):
        try:
            parse_policy(text.encode("utf-8", "surrogatepass"), source=SOURCE)
            reached.append("policy")
        except PolicyError as e:
            reached.append("toml" if e.path is None else "checks")

    sample()
    assert reached.count("checks") + reached.count("policy") > len(reached) // 3, reached
