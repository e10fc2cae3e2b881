"""Reminders and escalation, movers, the schedule, and the operator's commands, with `now` passed in."""

import subprocess
import sys
import threading
from pathlib import Path

import psycopg

from service.reviews import jobs
from tests.support.cli import db_env, gatehouse
from tests.support.factories import rows
from tests.support.reviews import days, now


def test_reminders_go_out_once_per_offset_and_copy_the_manager_from_three_days_before(world):
    started = world.start(["vpn"])  # mona reviews alice and bob; boss is mona's manager
    due = started.due_at
    for at, expected in ((due - days(8), 0), (due - days(7) + days(1) / 24, 1), (due - days(6), 1),
                         (due - days(3) + days(1) / 24, 2), (due - days(1) + days(1) / 24, 3), (due - days(0.5), 3)):
        jobs.remind(world.services, now=at)
        assert rows(world.database, "SELECT count(*) FROM notifications WHERE kind = 'review_reminder'") == [
            (expected,)], at
    assert rows(world.database, "SELECT days_before FROM review_reminders ORDER BY 1") == [(1,), (3,), (7,)]
    world.deliver()
    reminders = [m for m in world.smtp.to("mona@example.com") if m.subject.startswith("Reminder")]
    assert [m.rcpt_tos for m in reminders] == [("mona@example.com",), ("mona@example.com", "boss@example.com"),
                                               ("mona@example.com", "boss@example.com")]
    assert all(world.links_of("mona")) and len(rows(world.database, "SELECT 1 FROM journal WHERE kind = 'notify' "
                                                                    "AND outcome = 'review_reminder'")) == 3


def test_two_runners_firing_at_the_same_moment_send_each_reminder_once(world):
    started = world.start(["vpn", "github"])
    at = started.due_at - days(7) + days(1) / 24
    barrier = threading.Barrier(2)
    results = []

    def fire():
        barrier.wait()
        results.append(jobs.remind(world.services, now=at))

    threads = [threading.Thread(target=fire) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r["reminders"] for r in results) == 2  # mona and olivia, once each
    assert rows(world.database, "SELECT count(*) FROM notifications WHERE kind = 'review_reminder'") == [(2,)]


def test_two_worker_processes_running_the_job_at_once_send_each_reminder_once(world, tmp_path):
    # Due in six days by the real clock: the 7-day reminder is due now, for the `gatehouse jobs run` processes.
    world.start(["vpn"], at=now() - days(8))
    env = {**db_env(world.database), "GATEHOUSE_POLICY_FILE": str(world.services.settings.policy_file),
           "GATEHOUSE_SMTP_HOST": "127.0.0.1", "GATEHOUSE_SMTP_PORT": str(world.smtp.port),
           "GATEHOUSE_BASE_URL": "http://localhost:8080"}
    exe = str(Path(sys.executable).with_name("gatehouse"))
    procs = [subprocess.Popen([exe, "jobs", "run", "reviews_remind"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert any("reminders=1" in out for out, _ in outs), outs
    assert rows(world.database, "SELECT count(*) FROM notifications WHERE kind = 'review_reminder'") == [(1,)]
    assert gatehouse("jobs", "run", "mail_deliver", env=env).returncode == 0
    assert len([m for m in world.smtp.to("mona@example.com") if m.subject.startswith("Reminder")]) == 1


def test_a_mover_gets_a_review_by_the_new_manager(world):
    with psycopg.connect(world.database.owner_url) as conn:  # as a SCIM or LDAP update writes it
        conn.execute("UPDATE people SET manager_id = %s WHERE user_name = 'alice'", (world.ids["boss"],))
        conn.execute("UPDATE people SET manager_id = %s WHERE user_name = 'carl'", (world.ids["mona"],))  # a first
    counts = jobs.movers(world.services, now=now())
    assert counts == {"campaigns": 1, "items": 2}
    got = rows(world.database, "SELECT c.origin, p.user_name, v.user_name, c.due_at - c.started_at "
                               "FROM review_items i JOIN review_campaigns c ON c.id = i.campaign_id "
                               "JOIN people p ON p.id = i.person_id JOIN people v ON v.id = i.reviewer_id")
    assert got == [("mover", "alice", "boss", days(7))] * 2
    assert jobs.movers(world.services, now=now()) == {"campaigns": 0, "items": 0}  # each move once
    world.deliver()
    assert len(world.links_of("boss")) == 1


def test_the_schedule_starts_a_campaign_once_per_cadence(world):
    assert jobs.schedule(world.services, now=now())["items"] == 5
    assert jobs.schedule(world.services, now=now() + days(89))["started"] is None
    assert jobs.schedule(world.services, now=now() + days(91))["items"] == 5


def test_the_operator_starts_lists_shows_and_exports_a_campaign(world):
    env = {**db_env(world.database), "GATEHOUSE_POLICY_FILE": str(world.services.settings.policy_file),
           "GATEHOUSE_BASE_URL": "http://localhost:8080"}
    ran = gatehouse("reviews", "start", "--resources", "vpn,github", "--due", "14d", "--key", "q4-test", env=env)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("campaign q4-test: 5 items, 2 reviewers, 1 in the admins' queue")
    (actor, detail), = rows(world.database, "SELECT actor, detail FROM journal WHERE outcome = 'started'")
    assert actor.startswith("operator:") and detail["resources"] == ["github", "vpn"]
    assert "q4-test" in gatehouse("reviews", "list", env=env).stdout
    assert "mona" in gatehouse("reviews", "show", "q4-test", env=env).stdout
    export = gatehouse("reviews", "export", "q4-test", env=env).stdout.splitlines()
    assert export[0].startswith("item,user,name") and len(export) == 6
    for bad, message in ((["--resources", "nope"], "unknown resource 'nope'"),
                         (["--resources", "vpn", "--due", "soon"], "due must be a number of days"),
                         (["--resources", "vpn", "--key", "q4-test"], "exists already")):
        refused = gatehouse("reviews", "start", *bad, env=env)
        assert refused.returncode != 0 and message in refused.stderr and "Traceback" not in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    assert rows(world.database, "SELECT count(*) FROM review_campaigns") == [(1,)]
