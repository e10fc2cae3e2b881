"""[[rules]] in the policy file: parsed and checked like the rest, diffed against the rules in force, guarded."""

import pytest

from policies import AccessRule, Guard, PolicyError, parse_policy
from policies.rules import RuleChanges, diff_rules, hold_reason, over_guard, rule_pairs
from tests.support.policy import DEFAULT, SOURCE, VALID

RULES = """
[[rules]]
group = "VPN-Users"
resources = ["vpn"]

[[rules]]
group = "engineers"
resources = ["vpn", "git"]
"""


def test_rules_parse_in_file_order_and_are_optional():
    policy = parse_policy((VALID + RULES).encode(), source=SOURCE)
    assert policy.rules == (AccessRule("VPN-Users", ("vpn",)), AccessRule("engineers", ("vpn", "git")))
    assert rule_pairs(policy) == (("VPN-Users", "vpn"), ("engineers", "vpn"), ("engineers", "git"))
    assert parse_policy(VALID.encode(), source=SOURCE).rules == ()


def test_the_default_policy_documents_a_rule_and_grants_nothing():
    text = DEFAULT.read_text()
    assert parse_policy(text.encode(), source=str(DEFAULT)).rules == ()
    example = text.replace("# [[rules]]\n# group", "[[rules]]\ngroup").replace("# resources = [", "resources = [")
    assert parse_policy(example.encode(), source=str(DEFAULT)).rules == (AccessRule("vpn-users", ("vpn",)),)


RULE_FAULTS = [
    ('resources = ["vpn"]\n', 'resources = ["wiki"]\n', "rules[0].resources[0]", "names no resource in [[resources]]"),
    ('resources = ["vpn"]\n', "resources = []\n", "rules[0].resources", "must not be empty"),
    ('resources = ["vpn"]\n', 'resources = "vpn"\n', "rules[0].resources", "must be a list"),
    ('resources = ["vpn"]\n', 'resources = ["vpn", "vpn"]\n', "rules[0].resources[1]", "duplicate resource 'vpn'"),
    ('resources = ["vpn"]\n', 'resources = [7]\n', "rules[0].resources[0]", "string, got an integer"),
    ('resources = ["vpn"]\n', "", "rules[0].resources", "missing"),
    ('group = "VPN-Users"\n', "", "rules[0].group", "missing"),
    ('group = "VPN-Users"', 'group = ""', "rules[0].group", "must not be empty"),
    ('group = "VPN-Users"', 'group = " VPN-Users"', "rules[0].group", "no surrounding spaces"),
    ('group = "VPN-Users"', 'group = "VPN\\u0000"', "rules[0].group", "control characters"),
    ('group = "VPN-Users"', 'group = "' + "g" * 257 + '"', "rules[0].group", "1 to 256 characters"),
    ('group = "VPN-Users"', "group = 3", "rules[0].group", "must be a string"),
    ('group = "VPN-Users"', 'group = "VPN-Users"\nmembers = ["ada"]', "rules[0].members", "unknown key"),
    ('group = "engineers"', 'group = "vpn-users"', "rules[1].group", "duplicate group 'vpn-users'"),
]


@pytest.mark.parametrize("old, new, path, words", RULE_FAULTS, ids=[f[2] + ":" + f[3] for f in RULE_FAULTS])
def test_each_rule_fault_names_the_file_and_the_key(old, new, path, words):
    assert old in RULES
    with pytest.raises(PolicyError) as caught:
        parse_policy((VALID + RULES.replace(old, new, 1)).encode(), source=SOURCE)
    assert str(caught.value).startswith(f"{SOURCE}: {path}: "), str(caught.value)
    assert words in str(caught.value)


def test_rules_must_be_an_array_of_tables():
    with pytest.raises(PolicyError, match=r"^etc/policy.toml: rules: must be an array of tables"):
        parse_policy(('rules = "vpn"\n' + VALID).encode(), source=SOURCE)


def test_diff_matches_groups_in_any_case_and_keeps_order():
    current = [("Sales", "vpn"), ("ops", "vpn"), ("ops", "git")]
    wanted = [("sales", "vpn"), ("ops", "git"), ("eng", "wiki")]
    assert diff_rules(wanted, current) == RuleChanges(added=(("eng", "wiki"),), removed=(("ops", "vpn"),),
                                                      renamed=(("sales", "vpn"),))
    assert not diff_rules(current, current)


def test_the_guard_holds_what_the_ldap_sync_would_hold():
    guard = Guard(max_deactivation_share=0.10, max_deactivations=50)
    assert not over_guard(guard, 0, 0) and not over_guard(guard, 10, 100)
    assert over_guard(guard, 11, 100) and over_guard(guard, 51, 10_000) and not over_guard(guard, 50, 10_000)
    assert hold_reason(guard, ending=["a → vpn"] * 10, active=100) is None
    message = hold_reason(guard, ending=[f"u{i:02} → vpn" for i in range(12)], active=100)
    assert message.startswith("would end 12 of 100 active grants (12%): u00 → vpn, ")
    assert ", ..." in message and "at most 10% or 50" in message
