"""The training sweep on real PostgreSQL and a real SMTP server: lapse once, mail, restore exactly, remind once."""

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from connectors import mail
from policies import parse_policy
from service import bootstrap
from service.access.resources import sync_resources_at
from service.app import create_app
from service.bootstrap import load_policy
from service.training import plan as planning
from service.training import sweep as training
from tests.support.cli import db_env, gatehouse
from tests.support.factories import COURSE, add_completion, add_grant, add_person, grants_of, now, rows
from tests.support.policy import course, policy_toml, resource
from tests.support.training import LAPSED, item, post, token

PERIOD = timedelta(days=365 + 14)  # validity + grace in POLICY


@pytest.fixture
def swept(settings, database, policy_file, smtp):
    """Services on POLICY that mail through the test SMTP server, and a test client of their app."""
    mailing = dataclasses.replace(settings, policy_file=policy_file, smtp_host="127.0.0.1", smtp_port=smtp.port,
                                  smtp_from="gatehouse@example.com")
    built = bootstrap.build(mailing, database, policy=load_policy(policy_file))
    client = create_app(services=built).test_client()  # the app start syncs the policy's resources
    yield built, client
    built.close()


def lapsed_alice(database) -> tuple[str, str]:
    """alice (with a manager) holds vpn, wiki and git; her training lapsed an hour ago."""
    manager = add_person(database, "mona", email="mona@example.com")
    alice = add_person(database, "alice", email="alice@example.com", manager=manager)
    for key in ("vpn", "wiki", "git"):
        add_grant(database, alice, key)
    add_completion(database, alice, now() - PERIOD - timedelta(hours=1))
    return alice, manager


def journal_of(database, kind: str) -> list[tuple]:
    # Without the outbox's delivery rows (notify mail_sent / mail_failed): these tests look at what was queued.
    return rows(database, "SELECT subject, outcome, reasons, detail, actor FROM journal WHERE kind = %s "
                "AND outcome NOT IN ('mail_sent', 'mail_failed') ORDER BY seq", (kind,))


def check(client, headers, user, resource="vpn") -> dict:
    return client.post("/api/v1/access/check", json={"user": user, "resource": resource}, headers=headers).json


# --- lapse ---------------------------------------------------------------------------------------


def test_a_lapse_suspends_the_gated_grants_once_and_mails_the_person_and_manager(database, swept, smtp):
    services, _ = swept
    alice, _ = lapsed_alice(database)
    bob = add_person(database, "bob", email="bob@example.com")
    add_grant(database, bob)
    add_completion(database, bob, now() - timedelta(days=100))
    counts = training.sweep(services, now=now())
    assert counts == {"people": 2, "restored": 0, "lapses": 1, "suspended": 2, "reminders": 0, "mail_sent": 1,
                      "mail_failed": 0}
    assert grants_of(database, alice) == {"vpn": ("suspended", LAPSED), "wiki": ("suspended", LAPSED),
                                          "git": ("active", None)}
    assert grants_of(database, bob) == {"vpn": ("active", None)}
    (subject, outcome, reasons, detail, actor), = journal_of(database, "suspend")
    assert (subject, outcome, actor, detail["resources"]) == (alice, "training_lapsed", "job:training_sweep",
                                                               ["vpn", "wiki"])
    assert [r["code"] for r in reasons] == [LAPSED] and "lapsed at" in reasons[0]["text"]
    assert detail["notified"] == ["alice@example.com", "mona@example.com"] and detail["mail"] == "queued"
    (sent,) = smtp.received
    assert set(sent.rcpt_tos) == {"alice@example.com", "mona@example.com"}
    assert sent.message["To"] == "alice@example.com" and sent.message["Cc"] == "mona@example.com"
    assert sent.mail_from == "gatehouse@example.com" and "lapsed" in sent.subject
    assert "Corporate VPN (vpn)" in sent.body and "Wiki (wiki)" in sent.body and "Git" not in sent.body

    again = training.sweep(services, now=now() + timedelta(hours=1))
    assert (again["lapses"], again["suspended"], again["mail_sent"]) == (0, 0, 0)
    assert len(journal_of(database, "suspend")) == 1 and len(smtp.received) == 1
    assert rows(database, "SELECT course, state, resources FROM training_lapses") == [
        (COURSE, "lapsed", ["vpn", "wiki"])]


def test_a_grant_reactivated_by_hand_during_the_same_lapse_is_not_suspended_again(database, swept, smtp):
    services, _ = swept
    alice, _ = lapsed_alice(database)
    training.sweep(services, now=now())
    rows(database, "UPDATE grants SET state = 'active', reason = NULL RETURNING 1")
    assert training.sweep(services, now=now())["suspended"] == 0
    assert len(journal_of(database, "suspend")) == 1


def test_never_completed_past_the_grace_is_a_lapse_too(database, swept, smtp):
    services, _ = swept
    newcomer = add_person(database, "nina", email="nina@example.com", started_at=now() - timedelta(days=15))
    add_grant(database, newcomer)
    assert training.sweep(services, now=now())["suspended"] == 1
    (_, _, reasons, detail, _), = journal_of(database, "suspend")
    assert detail["lapses"][0]["state"] == "missing" and "never completed" in reasons[0]["text"]
    assert [r.rcpt_tos for r in smtp.received] == [("nina@example.com",)]


# --- restore -------------------------------------------------------------------------------------


def test_a_completion_restores_exactly_what_the_lapse_suspended_and_checks_follow(database, swept, smtp):
    services, client = swept
    alice, _ = lapsed_alice(database)
    add_grant(database, add_person(database, "x"), "vpn")  # someone else's grant is never touched
    gateway = token(database, scopes=("access:check",), name="vpn-gw")
    denied = check(client, gateway, "alice")
    assert denied["allow"] is False and [r["code"] for r in denied["reasons"]] == [LAPSED]  # live, before any job

    training.sweep(services, now=now())
    rows(database, "UPDATE grants g SET state = 'revoked', reason = 'left the wiki team' FROM resources r "
                   "WHERE r.id = g.resource_id AND r.key = 'wiki' AND g.person_id = %s RETURNING 1", (alice,))
    assert [r["code"] for r in check(client, gateway, "alice")["reasons"]] == ["grant_suspended", LAPSED]

    done = post(client, token(database), item("alice", "c-1")).json["results"]
    assert done == [{"index": 0, "status": "accepted", "detail": "recorded; access restored: vpn"}]
    assert grants_of(database, alice) == {"vpn": ("active", None), "wiki": ("revoked", "left the wiki team"),
                                          "git": ("active", None)}
    (subject, outcome, _, detail, actor), = journal_of(database, "restore")
    assert (subject, outcome, detail["resources"], actor) == (alice, "training_completed", ["vpn"], "client:hr-lms")
    assert check(client, gateway, "alice")["allow"] is True
    assert check(client, gateway, "alice", "wiki")["allow"] is False  # revoked stays revoked
    assert training.sweep(services, now=now())["restored"] == 0


def test_the_sweep_restores_when_compliance_came_another_way(database, swept, smtp):
    services, _ = swept
    alice, _ = lapsed_alice(database)
    add_grant(database, add_person(database, "sam"), "vpn", "suspended", "security incident")
    training.sweep(services, now=now())
    add_completion(database, alice, now() - timedelta(days=1))  # written past the API, say by a restore from backup
    assert training.sweep(services, now=now())["restored"] == 2
    assert grants_of(database, alice) == {"vpn": ("active", None), "wiki": ("active", None), "git": ("active", None)}
    (_, outcome, _, detail, actor), = journal_of(database, "restore")
    assert (outcome, detail["resources"], actor) == ("training_compliant", ["vpn", "wiki"], "job:training_sweep")
    assert rows(database, "SELECT g.state, g.reason FROM grants g JOIN people p ON p.id = g.person_id "
                          "WHERE p.user_name = 'sam'") == [("suspended", "security incident")]


def test_restoring_waits_until_every_course_gating_the_resource_is_done():
    policy = parse_policy(policy_toml(resources=[resource("vpn", "VPN", "vpn")],
                                      training=[course("a"), course("b")]).encode(), source="test")
    at = datetime(2025, 6, 1, tzinfo=UTC)
    suspended = planning.Grant("g1", "vpn", "suspended", "training_lapsed:a")
    standing = planning.Standing("p1", "Pat", None, None, at - timedelta(days=900), None, (suspended,),
                                 {"a": at - timedelta(days=1), "b": at - timedelta(days=400)},
                                 frozenset({("b", at - timedelta(days=35))}), frozenset())
    assert planning.plan(standing, policy, at).restore == ()
    done = dataclasses.replace(standing, completions={"a": at - timedelta(days=1), "b": at - timedelta(days=1)})
    assert planning.plan(done, policy, at).restore == (suspended,)


# --- reminders and mail delivery -----------------------------------------------------------------


def test_reminders_go_out_once_at_each_offset_then_the_lapse_is_notified(database, swept, smtp):
    services, _ = swept
    alice = add_person(database, "alice", email="alice@example.com")
    add_grant(database, alice)
    lapse = now() + timedelta(days=40)
    add_completion(database, alice, lapse - PERIOD)
    hour = timedelta(hours=1)
    for at, sent in ((lapse - timedelta(days=31), 0), (lapse - timedelta(days=30) + hour, 1),
                     (lapse - timedelta(days=29), 1), (lapse - timedelta(days=7) + hour, 2),
                     (lapse - timedelta(days=7) + 2 * hour, 2), (lapse - timedelta(days=1) + hour, 3),
                     (lapse - hour, 3)):
        training.sweep(services, now=at)
        assert len(smtp.received) == sent, at
    notes = journal_of(database, "notify")
    assert [d["days_before"] for _, _, _, d, _ in notes] == [[30], [7], [1]]
    assert {(s, o) for s, o, _, _, _ in notes} == {(alice, "training_reminder")}
    assert rows(database, "SELECT days_before FROM training_reminders ORDER BY 1") == [(1,), (7,), (30,)]
    assert all(r.rcpt_tos == ("alice@example.com",) and "Reminder" in r.subject for r in smtp.received)
    training.sweep(services, now=lapse + hour)
    assert len(smtp.received) == 4 and "lapsed" in smtp.received[-1].subject
    assert len(journal_of(database, "notify")) == 3  # no reminder after the lapse


def test_a_late_first_sweep_sends_one_reminder_for_every_offset_due(database, swept, smtp):
    services, _ = swept
    alice = add_person(database, "alice", email="alice@example.com")
    add_grant(database, alice)
    add_completion(database, alice, now() + timedelta(days=5) - PERIOD)
    training.sweep(services, now=now())
    assert len(smtp.received) == 1
    assert [d["days_before"] for _, _, _, d, _ in journal_of(database, "notify")] == [[30, 7]]


def test_mail_that_fails_is_kept_and_sent_by_the_next_sweep(database, swept, smtp):
    services, _ = swept
    lapsed_alice(database)
    smtp.refuse()
    first = training.sweep(services, now=now())
    assert (first["suspended"], first["mail_sent"], first["mail_failed"]) == (2, 0, 1)
    (attempts, error, sent_at), = rows(database, "SELECT attempts, last_error, sent_at FROM notifications")
    assert attempts == 1 and "451" in error and sent_at is None
    smtp.refuse(False)
    second = training.sweep(services, now=now())
    assert (second["suspended"], second["mail_sent"], second["mail_failed"]) == (0, 1, 0)
    assert len(smtp.received) == 1 and len(journal_of(database, "suspend")) == 1
    assert rows(database, "SELECT attempts, last_error, sent_at IS NOT NULL FROM notifications") == [(2, None, True)]


def test_an_smtp_server_that_is_down_keeps_the_mail_queued(database, swept, smtp):
    services, _ = swept
    lapsed_alice(database)
    smtp.stop()
    try:
        assert training.sweep(services, now=now())["mail_failed"] == 1
    finally:
        smtp.start()
    assert rows(database, "SELECT attempts, sent_at FROM notifications") == [(1, None)]
    assert training.sweep(services, now=now())["mail_sent"] == 1


def test_without_smtp_the_lapse_is_recorded_and_nothing_is_queued(database, services):
    sync_resources_at(database.app_url, services.policy, timeout=5)  # the default policy: vpn gated
    alice = add_person(database, "alice", email="alice@example.com")
    add_grant(database, alice)
    add_completion(database, alice, now() - PERIOD + timedelta(days=3))  # a reminder would be due
    add_grant(database, bob := add_person(database, "bob", email="bob@example.com"))
    add_completion(database, bob, now() - PERIOD - timedelta(days=1))
    counts = training.sweep(services, now=now())
    assert (counts["suspended"], counts["reminders"]) == (1, 0) and "mail_sent" not in counts
    (_, _, _, detail, _), = journal_of(database, "suspend")
    assert (detail["mail"], detail["notified"]) == ("off", [])
    assert rows(database, "SELECT count(*) FROM notifications UNION ALL SELECT count(*) FROM training_reminders") == [
        (0,), (0,)]


def test_the_mail_connector_never_sends_credentials_in_clear(smtp):
    with pytest.raises(mail.MailUnavailable, match="STARTTLS"):
        with mail.session(mail.SmtpConfig("127.0.0.1", smtp.port, user="u", password="p")):
            pass
    with pytest.raises(mail.MailUnavailable, match="cannot connect"):
        with mail.session(mail.SmtpConfig("127.0.0.1", 1)):
            pass
    assert smtp.received == []


# --- the job -------------------------------------------------------------------------------------


def test_gatehouse_jobs_run_training_sweep_suspends_and_mails(database, policy_file, smtp):
    sync_resources_at(database.app_url, load_policy(policy_file), timeout=5)  # as `gatehouse serve` does at start
    lapsed_alice(database)
    env = {**db_env(database), "GATEHOUSE_POLICY_FILE": str(policy_file), "GATEHOUSE_SMTP_HOST": "127.0.0.1",
           "GATEHOUSE_SMTP_PORT": str(smtp.port)}
    ran = gatehouse("jobs", "run", "training_sweep", env=env)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("job training_sweep ok") and "suspended=2" in ran.stdout
    assert [r.rcpt_tos for r in smtp.received] == [("alice@example.com", "mona@example.com")]
    (actor, detail), = rows(database, "SELECT actor, detail FROM journal WHERE kind = 'job'")
    assert actor.startswith("operator:") and detail["counts"]["lapses"] == 1
