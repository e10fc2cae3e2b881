"""[[targets]] in the policy file: each type's keys, a secret named exactly once, clear faults."""

import pytest

from policies import PolicyError, parse_policy
from tests.support.policy import policy_toml, resource

SCIM = {"key": "gh", "type": "scim", "resource": "github", "url": "https://t.example/scim/v2", "token_env": "T"}


def parse(*targets):
    return parse_policy(policy_toml(resources=[resource("github")], targets=targets).encode(), source="p.toml")


def test_a_target_parses_with_its_settings_and_retry_defaults():
    (t,) = parse_policy(policy_toml(resources=[resource("github")], targets=[{**SCIM, "max_attempts": 3}]).encode(),
                        source="p.toml").targets
    assert (t.key, t.type, t.resource, dict(t.settings), t.max_attempts, t.backoff_seconds) == (
        "gh", "scim", "github", {"url": "https://t.example/scim/v2", "token_env": "T"}, 3, 30)


@pytest.mark.parametrize(("change", "where", "problem"), [
    ({"type": "ftp"}, "targets[0].type", "must be one of scim, ldap_group, webhook"),
    ({"resource": "nope"}, "targets[0].resource", "names no resource"),
    ({"token": "s3cret"}, "targets[0].token", "unknown key"),  # a secret itself is never accepted
    ({"token_file": "/x"}, "targets[0].token_file", "give exactly one of token_file or token_env"),
    ({"url": "ftp://x"}, "targets[0].url", "must start with"),
    ({"max_attempts": 0}, "targets[0].max_attempts", "between 1 and 100"),
])
def test_a_bad_target_names_the_key(change, where, problem):
    with pytest.raises(PolicyError) as e:
        parse({**SCIM, **change})
    assert e.value.path == where and problem in e.value.problem


def test_target_keys_are_unique_and_a_secret_is_required():
    with pytest.raises(PolicyError, match=r"targets\[1\].key: duplicate target key 'gh'"):
        parse(SCIM, SCIM)
    with pytest.raises(PolicyError, match="give exactly one of token_file or token_env"):
        parse({k: v for k, v in SCIM.items() if k != "token_env"})


def test_a_scim_target_may_take_its_token_by_client_credentials_and_manage_a_group():
    oauth = {**{k: v for k, v in SCIM.items() if k != "token_env"}, "token_url": "https://t.example/oauth/token",
             "client_id": "gatehouse", "client_secret_env": "S", "scope": "scim", "group": "GitHub Users"}
    (t,) = parse(oauth).targets
    assert dict(t.settings) == {"url": "https://t.example/scim/v2", "token_url": "https://t.example/oauth/token",
                                "client_id": "gatehouse", "client_secret_env": "S", "scope": "scim",
                                "group": "GitHub Users"}
    for change, where, problem in [
        ({"client_secret_env": None}, "targets[0].client_secret_file", "give exactly one of client_secret_file"),
        ({"client_id": None}, "targets[0].client_id", "missing"),
        ({"token_env": "T"}, "targets[0].token_env", "unknown key"),  # a static token and OAuth: one or the other
        ({"token_url": "ftp://x"}, "targets[0].token_url", "must start with"),
    ]:
        with pytest.raises(PolicyError) as e:
            parse({k: v for k, v in {**oauth, **change}.items() if v is not None})
        assert (e.value.path, problem in e.value.problem) == (where, True), e.value


def test_vpn_session_targets_openvpn_and_command():
    vpn = {"key": "vpn", "type": "openvpn", "resource": "github", "url": "tcp://127.0.0.1:7505"}
    cmd = {"key": "cmd", "type": "command", "resource": "github", "command": ["/usr/local/sbin/end", "--user"]}
    a, b = parse(vpn, cmd).targets
    assert (dict(a.settings), dict(b.settings)) == ({"url": "tcp://127.0.0.1:7505"},
                                                    {"command": ("/usr/local/sbin/end", "--user")})
    for change, problem in [({"command": "/bin/end kim"}, "must be a non-empty list"),
                            ({"command": []}, "must be a non-empty list"),
                            ({"command": ["end"]}, "must be an absolute path")]:
        with pytest.raises(PolicyError) as e:
            parse({**cmd, **change})
        assert e.value.path == "targets[0].command" and problem in e.value.problem
    with pytest.raises(PolicyError, match="must start with tcp:// or unix://"):
        parse({**vpn, "url": "http://x"})
