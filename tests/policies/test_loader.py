"""parse_policy: the default file loads; every fault names the file and the key."""

import hashlib

import pytest

from policies import PolicyError, parse_policy
from tests.support.policy import DEFAULT, SOURCE, VALID


def edited(old: str, new: str, count: int = 1) -> bytes:
    assert old in VALID
    return VALID.replace(old, new, count).encode()


def test_the_default_policy_loads_and_its_version_is_the_sha256_of_its_bytes():
    data = DEFAULT.read_bytes()
    policy = parse_policy(data, source=str(DEFAULT))
    assert policy.version == hashlib.sha256(data).hexdigest()
    assert [r.key for r in policy.resources] == ["vpn"]
    (course,) = policy.training
    assert (course.course, course.validity_days, course.grace_days) == ("security-awareness", 365, 14)
    assert course.gates == frozenset({"vpn"}) and course.applies_to == "everyone"
    assert course.reminder_days == (30, 7, 1)
    assert (policy.reviews.cadence_days, policy.reviews.due_days) == (90, 14)
    assert (policy.guard.max_deactivation_share, policy.guard.max_deactivations) == (0.10, 50)


def test_a_valid_policy():
    policy = parse_policy(VALID.encode(), source=SOURCE)
    security, privacy = policy.training
    assert security.reminder_days == (30, 7, 1)
    assert privacy.gates == frozenset({"*"}) and privacy.applies_to == frozenset({"hr", "legal"})
    assert privacy.reminder_days == ()
    assert policy.requirements_for("git") == (privacy,)
    assert policy.resource("git").kind == "tool" and policy.resource("wiki") is None


def test_one_changed_byte_is_a_new_version():
    first = parse_policy(VALID.encode(), source=SOURCE)
    assert first.version != parse_policy(VALID.encode() + b"\n", source=SOURCE).version


def test_training_is_optional_and_a_share_of_one_is_allowed():
    start, end = VALID.index("[[training]]"), VALID.index("[reviews]")
    data = (VALID[:start] + VALID[end:]).replace("0.10", "1").encode()
    policy = parse_policy(data, source=SOURCE)
    assert policy.training == () and policy.guard.max_deactivation_share == 1.0


FAULTS = [
    # (old text, new text, key path, words in the problem)
    ('kind = "vpn"', 'kind = "vpn"\ncolour = "red"', "resources[0].colour", "unknown key"),
    ("[reviews]", "[extras]\na = 1\n\n[reviews]", "extras", "unknown key"),
    ("cadence_days = 90\n", "", "reviews.cadence_days", "missing"),
    ('kind = "vpn"\n', "", "resources[0].kind", "missing"),
    ("[guard]\nmax_deactivation_share = 0.10\nmax_deactivations = 50\n", "", "guard", "missing"),
    ("validity_days = 365", 'validity_days = "365"', "training[0].validity_days", "integer, got a string"),
    ("validity_days = 365", "validity_days = true", "training[0].validity_days", "integer, got a boolean"),
    ("validity_days = 365", "validity_days = 365.0", "training[0].validity_days", "integer, got a number"),
    ("validity_days = 365", "validity_days = 0", "training[0].validity_days", "between 1 and"),
    ("validity_days = 365", "validity_days = 100000", "training[0].validity_days", "between 1 and 36500"),
    ("grace_days = 14", "grace_days = -1", "training[0].grace_days", "between 0 and"),
    ("reminder_days = [7, 30, 1]", "reminder_days = [7, -30]", "training[0].reminder_days[1]", "between 1 and"),
    ("reminder_days = [7, 30, 1]", "reminder_days = [7, 7]", "training[0].reminder_days[1]", "duplicate"),
    ("reminder_days = [7, 30, 1]", "reminder_days = 7", "training[0].reminder_days", "must be a list"),
    ('gates = ["vpn"]', 'gates = ["vpn", "wiki"]', "training[0].gates[1]", "names no resource"),
    ('gates = ["vpn"]', "gates = []", "training[0].gates", "must not be empty"),
    ('gates = ["vpn"]', 'gates = ["vpn", "vpn"]', "training[0].gates[1]", "duplicate"),
    ('gates = ["vpn"]', "gates = [1]", "training[0].gates[0]", "string, got an integer"),
    ('applies_to = "everyone"', 'applies_to = "all"', "training[0].applies_to", '"everyone" or a list'),
    ('applies_to = "everyone"', "applies_to = []", "training[0].applies_to", "must not be empty"),
    ('applies_to = "everyone"', "applies_to = [3]", "training[0].applies_to[0]", "must be a string"),
    ('key = "git"', 'key = "vpn"', "resources[1].key", "duplicate resource key 'vpn'"),
    ('course = "privacy"', 'course = "security-awareness"', "training[1].course", "duplicate course"),
    ('key = "vpn"', 'key = "VPN"', "resources[0].key", "must match"),
    ('key = "vpn"', 'key = "-vpn"', "resources[0].key", "must match"),
    ('key = "vpn"', 'key = "v' + "x" * 64 + '"', "resources[0].key", "must match"),
    ('course = "privacy"', 'course = "privacy:hr"', "training[1].course", "must match"),
    ('name = "Git"', 'name = "  "', "resources[1].name", "must not be empty"),
    ('kind = "tool"', 'kind = "printer"', "resources[1].kind", "one of vpn, tool"),
    ("0.10", "0", "guard.max_deactivation_share", "more than 0 and at most 1"),
    ("0.10", "0.0", "guard.max_deactivation_share", "more than 0 and at most 1"),
    ("0.10", "-0.1", "guard.max_deactivation_share", "more than 0 and at most 1"),
    ("0.10", "1.5", "guard.max_deactivation_share", "more than 0 and at most 1"),
    ("0.10", "nan", "guard.max_deactivation_share", "more than 0 and at most 1"),
    ("0.10", '"10%"', "guard.max_deactivation_share", "must be a number"),
    ("max_deactivations = 50", "max_deactivations = -1", "guard.max_deactivations", "must not be negative"),
    ("cadence_days = 90", "cadence_days = 0", "reviews.cadence_days", "between 1 and"),
    ("due_days = 14", "due_days = 91", "reviews.due_days", "must not exceed reviews.cadence_days"),
]


@pytest.mark.parametrize("old, new, path, words", FAULTS, ids=[f[2] + ":" + f[3] for f in FAULTS])
def test_each_fault_names_the_file_and_the_key(old, new, path, words):
    with pytest.raises(PolicyError) as caught:
        parse_policy(edited(old, new), source=SOURCE)
    assert str(caught.value).startswith(f"{SOURCE}: {path}: ")
    assert words in str(caught.value)
    assert (caught.value.source, caught.value.path) == (SOURCE, path)


@pytest.mark.parametrize(
    "scalar, cut, message",
    [
        ("resources = 3", VALID[: VALID.index("[[training]]")], "resources: must be an array of tables"),
        ("reviews = 3", "[reviews]\ncadence_days = 90\ndue_days = 14\n", "reviews: must be a table, got an integer"),
        ("guard = []", VALID[VALID.index("[guard]") :], "guard: must be a table, got a list"),
    ],
)
def test_a_section_of_the_wrong_type(scalar, cut, message):
    data = scalar + "\n" + VALID.replace(cut, "")
    with pytest.raises(PolicyError, match=f"^{SOURCE}: {message}"):
        parse_policy(data.encode(), source=SOURCE)


def test_invalid_toml_names_the_file_and_the_line():
    with pytest.raises(PolicyError, match=r"^etc/policy\.toml: invalid TOML: .*line 2"):
        parse_policy(b'[reviews]\ncadence_days = = 3\n', source=SOURCE)


def test_bytes_that_are_not_utf8():
    with pytest.raises(PolicyError, match=r"^etc/policy\.toml: not UTF-8"):
        parse_policy(VALID.encode() + b"# \xff\n", source=SOURCE)


def test_a_policy_error_is_a_value_error():
    assert issubclass(PolicyError, ValueError)


# The whole message, key path and words both: an operator acts on them (the mutation run found the words
# above checked only as substrings and several paths never checked).
WITHOUT_TRAINING = VALID[: VALID.index("[[training]]")] + VALID[VALID.index("[reviews]") :]
WITHOUT_RESOURCES = VALID[VALID.index("[[training]]") :]
EXACT = [
    (edited("validity_days = 365", 'validity_days = 365\ncolour = "red"'), "training[0].colour: unknown key"),
    (edited("max_deactivations = 50", "max_deactivations = 50\ncolour = 1"), "guard.colour: unknown key"),
    (edited("cadence_days = 90\n", ""), "reviews.cadence_days: missing"),
    (edited("0.10", '"10%"'), "guard.max_deactivation_share: must be a number, got a string"),
    (
        edited("max_deactivations = 50", 'max_deactivations = "50"'),
        "guard.max_deactivations: must be an integer, got a string",
    ),
    (edited("due_days = 14", 'due_days = "14"'), "reviews.due_days: must be an integer, got a string"),
    (edited("due_days = 14", "due_days = 0"), "reviews.due_days: must be between 1 and 36500 days, got 0"),
    (
        edited("reminder_days = [7, 30, 1]", "reminder_days = 7"),
        "training[0].reminder_days: must be a list, got an integer",
    ),
    (
        edited("reminder_days = [7, 30, 1]", "reminder_days = [7, 7]"),
        "training[0].reminder_days[1]: duplicate reminder 7",
    ),
    (edited('gates = ["vpn"]', 'gates = ["vpn", "vpn"]'), "training[0].gates[1]: duplicate gate 'vpn'"),
    (edited('gates = ["vpn"]', "gates = []"), "training[0].gates: must not be empty"),
    (
        edited('applies_to = ["hr", "legal"]', 'applies_to = ["hr", "hr"]'),
        "training[1].applies_to[1]: duplicate department 'hr'",
    ),
    (edited('name = "Git"', 'name = "  "'), "resources[1].name: must not be empty"),
    (edited('kind = "tool"', "kind = 1"), "resources[1].kind: must be a string, got an integer"),
    (edited('key = "git"', "key = 1"), "resources[1].key: must be a string, got an integer"),
    (edited('name = "Security awareness"', "name = 1"), "training[0].name: must be a string, got an integer"),
    (
        edited('name = "Security awareness"', "name = 2024-01-01T00:00:00Z"),
        "training[0].name: must be a string, got datetime",
    ),  # a TOML type we have no phrase for keeps its name
    (edited('gates = ["vpn"]', 'gates = [{ key = "vpn" }]'), "training[0].gates[0]: must be a string, got a table"),
    (
        ("training = 3\n" + WITHOUT_TRAINING).encode(),
        "training: must be an array of tables ([[training]]), got an integer",
    ),
    (("training = [1]\n" + WITHOUT_TRAINING).encode(), "training[0]: must be a table, got an integer"),
    (("resources = [1, 2]\n" + WITHOUT_RESOURCES).encode(), "resources[0]: must be a table, got an integer"),
    (
        ("resources = 3\n" + WITHOUT_RESOURCES).encode(),
        "resources: must be an array of tables ([[resources]]), got an integer",
    ),
]


@pytest.mark.parametrize("data, message", EXACT, ids=[m for _, m in EXACT])
def test_the_whole_message_of_a_fault(data, message):
    with pytest.raises(PolicyError) as caught:
        parse_policy(data, source=SOURCE)
    assert str(caught.value) == f"{SOURCE}: {message}"


@pytest.mark.parametrize(
    "old, new, check",
    [
        ("due_days = 14", "due_days = 90", lambda p: p.reviews.due_days == p.reviews.cadence_days == 90),
        ("due_days = 14", "due_days = 1", lambda p: p.reviews.due_days == 1),
        ("max_deactivations = 50", "max_deactivations = 0", lambda p: p.guard.max_deactivations == 0),
        ("validity_days = 365", "validity_days = 36500", lambda p: p.training[0].validity_days == 36500),
        ('applies_to = "everyone"\n', "", lambda p: p.training[0].applies_to == "everyone"),
        ("reminder_days = [7, 30, 1]\n", "", lambda p: p.training[0].reminder_days == ()),
    ],
    ids=["due equals cadence", "due of one day", "no deactivation without a confirmation", "a century",
         "applies_to defaults to everyone", "reminder_days default to none"],
)
def test_the_edges_that_are_allowed(old, new, check):
    assert check(parse_policy(edited(old, new), source=SOURCE))


def test_every_field_of_a_course_is_read():
    security = parse_policy(VALID.encode(), source=SOURCE).training[0]
    assert (security.course, security.name, security.validity_days, security.grace_days) == (
        "security-awareness", "Security awareness", 365, 14)
    assert security.gates == frozenset({"vpn"})


def test_review_settings_and_resource_owners_are_read_and_checked():
    policy = parse_policy(edited('key = "git"\nname = "Git"\nkind = "tool"\n',
                                 'key = "git"\nname = "Git"\nkind = "tool"\nowners = ["Olivia@Example.com"]\n')
                          .replace(b"due_days = 14\n", b"due_days = 14\nguard_share = 0.3\nreminder_days = [1, 7]\n"
                                                       b"resources = [\"vpn\"]\nrequire_sso = true\n"), source=SOURCE)
    assert policy.resource("git").owners == ("olivia@example.com",)
    r = policy.reviews
    assert (r.guard_share, r.reminder_days, r.resources, r.require_sso, r.unused_days) == (0.3, (7, 1), ("vpn",),
                                                                                           True, 60)
    for old, new, path in (('kind = "tool"\n', 'kind = "tool"\nowners = ["nobody"]\n', "resources[1].owners[0]"),
                           ("due_days = 14\n", "due_days = 14\nguard_share = 0\n", "reviews.guard_share"),
                           ("due_days = 14\n", 'due_days = 14\nresources = ["nope"]\n', "reviews.resources[0]"),
                           ("due_days = 14\n", "due_days = 14\nrequire_sso = 1\n", "reviews.require_sso"),
                           ("due_days = 14\n", "due_days = 14\nbulk_items = 0\n", "reviews.bulk_items")):
        with pytest.raises(PolicyError) as caught:
            parse_policy(edited(old, new), source=SOURCE)
        assert caught.value.path == path
