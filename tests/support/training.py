"""Training's test material: a policy with gated and ungated resources, completions as a learning system sends them."""

from datetime import timedelta

import psycopg
import pytest

from service.clients import store as clients
from tests.support.factories import COURSE, now
from tests.support.policy import course, policy_toml, resource

LAPSED = f"training_lapsed:{COURSE}"

# Two gated resources and one that is not, so "exactly those grants" can be told apart.
POLICY = policy_toml(
    resources=[resource("vpn", "Corporate VPN", "vpn"), resource("wiki"), resource("git")],
    training=[course(COURSE, "Security awareness training", grace_days=14, gates=["vpn", "wiki"],
                     reminder_days=[30, 7, 1])])


def token(database, scopes=("training:write",), name="hr-lms") -> dict:
    with psycopg.connect(database.app_url) as conn:
        clients.create(conn, name=name, scopes=scopes, created_by="test")
        return {"Authorization": f"Bearer {clients.issue_static_token(conn, name).secret}"}


@pytest.fixture
def policy_file(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text(POLICY)
    return path


def post(client, headers, *items):
    return client.post("/api/v1/training/completions", json={"completions": list(items)}, headers=headers)


def item(person, source_id, *, completed_at=None, course=COURSE, source="lms"):
    when = completed_at if isinstance(completed_at, str) else (completed_at or now() - timedelta(days=1)).isoformat()
    return {"person": person, "course": course, "completed_at": when, "source": source, "source_id": source_id}
