"""An access-review world under test: a policy, people with managers, grants, mail through aiosmtpd, the app."""

import dataclasses
import re
from datetime import UTC, datetime, timedelta

import psycopg

from service import bootstrap
from service.app import create_app
from service.bootstrap import load_policy
from service.clients import store as clients
from service.reviews import campaigns
from service.training import sweep as outbox
from tests.support.admin import ORIGIN
from tests.support.factories import rows

POLICY = """\
[[resources]]
key = "vpn"
name = "Corporate VPN"
kind = "vpn"

[[resources]]
key = "github"
name = "GitHub"
kind = "tool"
owners = ["olivia@example.com"]

[reviews]
cadence_days = 90
due_days = 14
guard_share = {share}
bulk_items = 3
bulk_seconds = 60
unused_days = 60

{extra}
[guard]
max_deactivation_share = 0.10
max_deactivations = 50
"""
LINK = re.compile(r"http://localhost:8080/reviews/[A-Za-z0-9._-]+")


def now() -> datetime:
    return datetime.now(UTC)


def add_person(database, user: str, *, manager=None, active=True, department="eng") -> str:
    with psycopg.connect(database.owner_url) as conn:
        return conn.execute(
            "INSERT INTO people (user_name, display_name, title, department, primary_email, manager_id, active, "
            "source, started_at) VALUES (%s, %s, 'Engineer', %s, %s, %s, %s, 'manual', now() - interval '3 years') "
            "RETURNING id::text",
            (user, user.capitalize(), department, f"{user}@example.com", manager, active)).fetchone()[0]


def add_grant(database, person_id: str, resource: str, *, granted_days_ago: int = 400) -> str:
    with psycopg.connect(database.owner_url) as conn:
        return conn.execute(
            "INSERT INTO grants (person_id, resource_id, state, granted_by, granted_at) SELECT %s, id, 'active', "
            "'operator:root', now() - %s * interval '1 day' FROM resources WHERE key = %s RETURNING id::text",
            (person_id, granted_days_ago, resource)).fetchone()[0]


def used(database, person_id: str, resource: str) -> None:
    """An allowed check in the journal now, as a gateway's check writes it."""
    from service import journal

    with psycopg.connect(database.app_url) as conn:
        journal.append(conn, journal.Event(kind="check", outcome="allow", actor="client:vpn-gw", subject=person_id,
                                           resource=resource, reasons=({"code": "ok", "text": "ok"},)))


@dataclasses.dataclass
class World:
    """boss manages mona, who manages alice and bob; carl has no manager (olivia, github's owner, reviews his
    github); olivia has no manager and owns github herself: her own grant goes to the admins' queue."""

    ids: dict
    grants: dict
    services: object
    client: object
    gateway: dict
    database: object
    smtp: object

    def start(self, resources=("vpn", "github"), *, at=None, due_days=14, origin="admin") -> campaigns.Started:
        with psycopg.connect(self.database.app_url) as conn, conn.transaction():
            return campaigns.start(conn, self.services.policy, resources=resources, due_days=due_days,
                                   now=at or now(), origin=origin, actor="admin:test", base_url=ORIGIN)

    def deliver(self) -> dict:
        return outbox.deliver_job(self.services)

    def links_of(self, user: str) -> list[str]:
        found = []
        for message in self.smtp.to(f"{user}@example.com"):
            text = message.message.get_body(preferencelist=("plain",)).get_content()
            found += LINK.findall(text)
        return found

    def path(self, link: str) -> str:
        return link.removeprefix(ORIGIN)

    def check(self, user: str, resource: str) -> dict:
        return self.client.post("/api/v1/access/check", json={"user": user, "resource": resource},
                                headers=self.gateway).json

    def grant_state(self, user: str, resource: str) -> tuple:
        return rows(self.database, "SELECT g.state, g.reason FROM grants g JOIN people p ON p.id = g.person_id "
                                   "JOIN resources r ON r.id = g.resource_id WHERE p.user_name = %s AND r.key = %s",
                    (user, resource))[0]


def world_for(settings, database, smtp, tmp_path, *, share=0.9, require_sso=False) -> World:
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(POLICY.format(share=share, extra="require_sso = true\n" if require_sso else ""))
    configured = dataclasses.replace(settings, policy_file=policy_file, smtp_host="127.0.0.1", smtp_port=smtp.port,
                                     smtp_from="gatehouse@example.com", base_url=ORIGIN)
    services = bootstrap.build(configured, database, policy=load_policy(policy_file))
    client = create_app(services=services).test_client()  # syncs the policy's resources
    ids = {}
    ids["boss"] = add_person(database, "boss")
    ids["mona"] = add_person(database, "mona", manager=ids["boss"])
    ids["alice"] = add_person(database, "alice", manager=ids["mona"])
    ids["bob"] = add_person(database, "bob", manager=ids["mona"])
    ids["carl"] = add_person(database, "carl")
    ids["olivia"] = add_person(database, "olivia")
    grants = {(u, r): add_grant(database, ids[u], r) for u, r in (
        ("alice", "vpn"), ("alice", "github"), ("bob", "vpn"), ("carl", "github"), ("olivia", "github"))}
    with psycopg.connect(database.app_url) as conn:
        clients.create(conn, name="vpn-gw", scopes=("access:check",), created_by="test")
        gateway = {"Authorization": f"Bearer {clients.issue_static_token(conn, 'vpn-gw').secret}"}
    return World(ids, grants, services, client, gateway, database, smtp)


def days(n: float) -> timedelta:
    return timedelta(days=n)


def state(database) -> list[tuple]:
    """What a review action may change: the journal's length, grants, secrets, mail, items, campaigns."""
    return rows(database, "SELECT (SELECT count(*) FROM journal), (SELECT json_agg(g ORDER BY g.id) FROM grants g), "
                          "(SELECT count(*) FROM app_secrets), (SELECT count(*) FROM notifications), "
                          "(SELECT json_agg(i ORDER BY i.id) FROM review_items i), "
                          "(SELECT json_agg(c) FROM review_campaigns c)")

def page_form(html: str) -> dict:
    """The review page's hidden csrf and opened values."""
    return {name: re.search(rf'name="{name}" value="([^"]*)"', html).group(1) for name in ("csrf", "opened")}

def item_id(world, user: str, resource: str) -> str:
    return rows(world.database, "SELECT i.id::text FROM review_items i JOIN people p ON p.id = i.person_id JOIN "
                                "resources r ON r.id = i.resource_id WHERE p.user_name = %s AND r.key = %s "
                                "ORDER BY i.campaign_id", (user, resource))[-1][0]


def mona_and_two(database) -> None:
    """mona, manager of alice and bob, who each hold the VPN."""
    mona = add_person(database, "mona")
    for name in ("alice", "bob"):
        add_grant(database, add_person(database, name, manager=mona), "vpn")
