"""Training compliance, the auditor's figures: who is current, due soon, lapsed or missing on each course, computed
set-wise for everyone at once, and the same as the sweep's rule gives person by person."""

from datetime import timedelta

import psycopg

from policies import parse_policy, training_status
from service.training import outlook, store
from tests.support.factories import add_completion, add_grant, add_person, now
from tests.support.policy import course, policy_toml, resource

POLICY = parse_policy(policy_toml(
    resources=[resource("vpn", "VPN", "vpn"), resource("git"), resource("wiki")],
    training=[course("a", "Course A", grace_days=14, gates=("vpn",), reminder_days=[30]),
              course("b", "Course B", gates=("git",))]).encode(), source="test")


def _people(database) -> dict[str, str]:
    with psycopg.connect(database.owner_url) as conn:
        conn.execute("INSERT INTO resources (key, name, kind) VALUES ('vpn', 'VPN', 'vpn'), ('git', 'Git', 'tool'), "
                     "('wiki', 'Wiki', 'tool')")
    at = now()
    ids = {}
    for name in ("ok", "soon", "lapsed", "missing", "held_until_lapse", "both", "wiki_only", "left", "inactive"):
        ids[name] = add_person(database, name, deleted=name == "left", active=name != "inactive")
    for name in ("ok", "soon", "lapsed", "missing", "both", "left", "inactive"):
        add_grant(database, ids[name], "vpn")
    add_grant(database, ids["held_until_lapse"], "vpn", "suspended", "training_lapsed:a")
    add_grant(database, ids["both"], "git")
    add_grant(database, ids["wiki_only"], "wiki")
    add_completion(database, ids["ok"], at - timedelta(days=500), course="a")  # an old one; the latest counts
    add_completion(database, ids["ok"], at - timedelta(days=10), course="a")
    add_completion(database, ids["soon"], at - timedelta(days=360), course="a")
    add_completion(database, ids["lapsed"], at - timedelta(days=400), course="a")
    add_completion(database, ids["held_until_lapse"], at - timedelta(days=390), course="a")
    add_completion(database, ids["both"], at - timedelta(days=1), course="a")
    for name in ("left", "inactive"):
        add_completion(database, ids[name], at - timedelta(days=400), course="a")
    return ids


def test_each_course_counts_the_active_people_it_gates_by_state(database):
    ids = _people(database)
    with psycopg.connect(database.app_url) as conn:
        a, b = outlook.compliance(conn, POLICY, now())
    assert (a.course, a.counts) == ("a", {"ok": 2, "due_soon": 1, "lapsed": 2, "missing": 1})
    assert {pid for pid, *_ in a.behind} == {ids["lapsed"], ids["held_until_lapse"], ids["missing"]}
    assert [lapse for *_, lapse in a.behind] == sorted(lapse for *_, lapse in a.behind)  # soonest lapse first
    assert (b.course, b.counts, [pid for pid, *_ in b.behind]) == (
        "b", {"ok": 0, "due_soon": 0, "lapsed": 0, "missing": 1}, [ids["both"]])


def test_the_set_wise_figures_are_the_sweeps_rule_person_by_person(database):
    _people(database)
    at = now()
    with psycopg.connect(database.app_url) as conn:
        figures = {c.course: c.counts for c in outlook.compliance(conn, POLICY, at)}
        by_person = {t.course: {"ok": 0, "due_soon": 0, "lapsed": 0, "missing": 0} for t in POLICY.training}
        for standing in store.load_standing(conn):
            held = {g.resource for g in standing.grants}
            for s in training_status(standing.completions, [t for t in POLICY.training
                                                            if any(t.gates_resource(k) for k in held)], at,
                                     started_at=standing.started_at, department=standing.department):
                by_person[s.course][s.state] += 1
    assert figures == by_person
