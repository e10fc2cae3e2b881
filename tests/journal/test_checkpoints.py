"""Signed checkpoints: signed, stored append-only, published; verify catches the superuser rewrite with them."""

import dataclasses
import json
from pathlib import Path

import psycopg
import pytest

from service import journal
from service.jobs import registry
from service.journal import checkpoints, merkle, note, signers
from tests.journal.test_journal import _append, _event, _rewrite
from tests.support.cli import db_env, gatehouse
from tests.support.training import token

ORIGIN = "gatehouse.test/journal"


@pytest.fixture
def keyed(database, tmp_path):
    """A key file made by `gatehouse journal keygen`, the environment that signs with it, and its verifier key."""
    key = tmp_path / "journal.key"
    published = tmp_path / "published" / "checkpoint"
    published.parent.mkdir()
    env = {**db_env(database), "GATEHOUSE_JOURNAL_ORIGIN": ORIGIN, "GATEHOUSE_JOURNAL_KEY_FILE": str(key),
           "GATEHOUSE_JOURNAL_CHECKPOINT_FILE": str(published)}
    done = gatehouse("journal", "keygen", "-o", str(key), env={**db_env(database), "GATEHOUSE_JOURNAL_ORIGIN": ORIGIN})
    assert done.returncode == 0, done.stderr
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    return env, done.stdout.strip(), published


def _checkpoint(env) -> str:
    done = gatehouse("journal", "checkpoint", env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _stored(database) -> list[tuple]:
    with psycopg.connect(database.app_url) as conn:
        return conn.execute("SELECT tree_size, root_hash, key_name, key_id, note, signer FROM journal_checkpoints "
                            "ORDER BY id").fetchall()


def _leaves(database) -> list[bytes]:
    with psycopg.connect(database.app_url) as conn:
        return [bytes(h) for (h,) in conn.execute("SELECT hash FROM journal ORDER BY seq")]


def _root(leaves) -> bytes:
    frontier = merkle.Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    return frontier.root()


def test_a_checkpoint_is_signed_stored_and_published_in_the_standard_format(database, keyed):
    env, vkey, published = keyed
    _append(database.app_url, [_event(i) for i in range(5)])
    text = _checkpoint(env)
    root = _root(_leaves(database))
    body = note.checkpoint_body(ORIGIN, 5, root)
    assert text.startswith(body + "\n\u2014 " + ORIGIN + " ")
    name, public = note.parse_verifier_key(vkey)
    opened = note.open_checkpoint(text, name, public)
    assert (opened.origin, opened.size, opened.root) == (ORIGIN, 5, root)
    assert published.read_text() == text
    assert _stored(database) == [(5, root, ORIGIN, note.key_id(ORIGIN, public), text, "file")]
    done = gatehouse("journal", "verify", env=env)
    assert (done.returncode, done.stdout.split()[:2], done.stderr) == (0, ["OK", "5"], "")


def test_a_changed_signature_or_another_key_does_not_verify(database, keyed, tmp_path):
    env, vkey, published = keyed
    _append(database.app_url, [_event(0)])
    text = _checkpoint(env)
    name, public = note.parse_verifier_key(vkey)
    forged = text.replace("\n1\n", "\n2\n", 1)
    with pytest.raises(note.NoteError, match="does not verify"):
        note.open_checkpoint(forged, name, public)
    other = tmp_path / "other.key"
    other_vkey = signers.generate_key_file(other, ORIGIN)
    with pytest.raises(note.NoteError, match="no signature by"):
        note.open_checkpoint(text, *note.parse_verifier_key(other_vkey))
    copy = tmp_path / "forged"
    copy.write_text(forged)
    done = gatehouse("journal", "verify", "--checkpoint", str(copy), env=env)
    assert (done.returncode, done.stdout.strip()) == (
        1, f"BAD {copy}: the signature by {ORIGIN} does not verify")


@pytest.mark.parametrize("statement", ["UPDATE journal_checkpoints SET tree_size = 0",
                                       "DELETE FROM journal_checkpoints", "TRUNCATE journal_checkpoints",
                                       "UPDATE journal_merkle SET idx = idx + 100",
                                       "DELETE FROM journal_merkle", "TRUNCATE journal_merkle"])
def test_checkpoints_and_tree_nodes_are_append_only_for_everyone(database, keyed, superuser, statement):
    env, _, _ = keyed
    _append(database.app_url, [_event(i) for i in range(3)])
    _checkpoint(env)
    for url in (database.app_url, database.owner_url, superuser):
        with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)
    assert [row[0] for row in _stored(database)] == [3]


def test_the_superuser_rewrite_is_caught_against_the_earlier_checkpoint(database, keyed, superuser):
    env, _, published = keyed
    _append(database.app_url, [_event(i) for i in range(5)])
    _checkpoint(env)
    honest = _root(_leaves(database))
    _append(database.app_url, [_event(i) for i in range(5, 7)])
    _rewrite(superuser, 2, through=7)  # row 2 changed, the chain recomputed, the head moved
    rewritten = _root(_leaves(database)[:5])
    for done in (gatehouse("journal", "verify", env=env), gatehouse("journal", "verify", env=db_env(database))):
        assert done.returncode == 1  # stored checkpoints are checked with or without the key at hand
        assert done.stdout.startswith(
            f"BAD 5 the Merkle root of rows 1..5 is {rewritten.hex()}, but stored checkpoint 1 (")
        assert done.stdout.rstrip().endswith(f"signed {honest.hex()}")

    with psycopg.connect(superuser) as conn:  # the stored checkpoints go too
        conn.execute("ALTER TABLE journal_checkpoints DISABLE TRIGGER journal_checkpoints_no_update")
        conn.execute("DELETE FROM journal_checkpoints")
        conn.execute("ALTER TABLE journal_checkpoints ENABLE TRIGGER journal_checkpoints_no_update")
    blind = gatehouse("journal", "verify", env=env)
    assert (blind.returncode, blind.stdout.split()[:2]) == (0, ["OK", "7"])
    assert "warning: no checkpoint is stored" in blind.stderr
    done = gatehouse("journal", "verify", "--checkpoint", str(published), env=env)
    assert (done.returncode, done.stdout.strip()) == (
        1, f"BAD 5 the Merkle root of rows 1..5 is {rewritten.hex()}, but checkpoint {published} signed {honest.hex()}")


def test_verify_warns_when_the_newest_checkpoint_is_older_than_the_schedule_allows(database, keyed):
    env, _, _ = keyed
    _append(database.app_url, [_event(0)])
    _checkpoint(env)
    with psycopg.connect(database.app_url) as conn:
        conn.execute("INSERT INTO journal_checkpoints (origin, tree_size, root_hash, key_name, key_id, note, signer, "
                     "signed_at) SELECT origin, tree_size, root_hash, key_name, key_id, note, signer, "
                     "signed_at - interval '1 hour' FROM journal_checkpoints")
    fresh = gatehouse("journal", "verify", env=env)
    assert (fresh.returncode, fresh.stderr) == (0, "")
    stale_env = {**env, "GATEHOUSE_JOURNAL_CHECKPOINT_MINUTES": "1"}
    with psycopg.connect(database.owner_url) as conn:
        conn.execute("ALTER TABLE journal_checkpoints DISABLE TRIGGER journal_checkpoints_no_update")
        conn.execute("UPDATE journal_checkpoints SET signed_at = signed_at - interval '10 minutes'")
        conn.execute("ALTER TABLE journal_checkpoints ENABLE TRIGGER journal_checkpoints_no_update")
    stale = gatehouse("journal", "verify", env=stale_env)
    assert stale.returncode == 0
    assert "older than the schedule (every 1 min) allows" in stale.stderr


def test_the_worker_job_signs_stores_publishes_and_is_journaled(database, keyed, services):
    env, vkey, published = keyed
    settings = dataclasses.replace(services.settings, journal_origin=ORIGIN,
                                   journal_key_file=Path(env["GATEHOUSE_JOURNAL_KEY_FILE"]),
                                   journal_checkpoint_file=published)
    jobs = registry.configured(settings)
    assert (jobs["journal_checkpoint"].every_minutes, "journal_checkpoint" in registry.configured(services.settings)) \
        == (10, False)
    _append(database.app_url, [_event(i) for i in range(4)])
    done = registry.run_job(dataclasses.replace(services, settings=settings), jobs["journal_checkpoint"])
    assert (done.outcome, done.counts["tree_size"]) == ("ok", 4)
    opened = note.open_checkpoint(published.read_text(), *note.parse_verifier_key(vkey))
    assert (opened.size, opened.root) == (4, _root(_leaves(database)[:4]))
    with psycopg.connect(database.app_url) as conn:
        kind, outcome, detail = conn.execute(
            "SELECT kind, outcome, detail FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
    assert (kind, outcome, detail["job"], detail["counts"]["checkpoint"]) == ("job", "ok", "journal_checkpoint", 1)


def test_inclusion_proofs_over_the_api_verify_against_the_signed_checkpoint(database, keyed, client):
    env, vkey, _ = keyed
    _append(database.app_url, [_event(i) for i in range(6)])
    text = _checkpoint(env)
    _append(database.app_url, [_event(i) for i in range(6, 9)])
    opened = note.open_checkpoint(text, *note.parse_verifier_key(vkey))
    headers = token(database, scopes=("journal:read",), name="siem")
    for seq in range(1, 7):
        got = client.get(f"/api/v1/journal/{seq}/proof", headers=headers)
        assert got.status_code == 200, got.json
        body = got.json
        assert (body["tree_size"], body["checkpoint"]) == (6, text)
        path = [bytes.fromhex(p) for p in body["inclusion_path"]]
        assert bytes.fromhex(body["leaf_input"]) == _leaves(database)[seq - 1]
        assert merkle.verify_inclusion(seq - 1, 6, merkle.leaf_hash(bytes.fromhex(body["leaf_input"])), path,
                                       opened.root)
    later = client.get("/api/v1/journal/8/proof", headers=headers).json
    assert (later["tree_size"], later["checkpoint"]) == (9, None)
    assert later["root"]["hex"] == _root(_leaves(database)).hex()
    proof = client.get("/api/v1/journal/consistency?from=6&to=9", headers=headers).json
    assert merkle.verify_consistency(6, 9, [bytes.fromhex(p) for p in proof["consistency_path"]], opened.root,
                                     bytes.fromhex(proof["new_root"]["hex"]))
    for url, status in (("/api/v1/journal/10/proof", 404), ("/api/v1/journal/0/proof", 400),
                        ("/api/v1/journal/2/proof?tree_size=1", 400), ("/api/v1/journal/x/proof", 400),
                        ("/api/v1/journal/consistency?from=7&to=6", 400), ("/api/v1/journal/consistency", 400)):
        bad = client.get(url, headers=headers)
        assert (bad.status_code, bad.content_type) == (status, "application/problem+json"), url
    other = token(database, scopes=("access:check",), name="vpn")
    assert client.get("/api/v1/journal/1/proof", headers=other).status_code == 403
    assert client.get("/api/v1/journal/1/proof").status_code == 401
    with psycopg.connect(database.app_url) as conn:
        refused = conn.execute("SELECT outcome, actor FROM journal WHERE kind = 'admin' ORDER BY seq").fetchall()
    assert refused == [("refused", "client:vpn")]


def test_the_cli_prints_proofs_that_verify(database, keyed):
    env, _, _ = keyed
    _append(database.app_url, [_event(i) for i in range(7)])
    leaves = _leaves(database)
    done = gatehouse("journal", "proof", "3", env=env)
    assert done.returncode == 0, done.stderr
    proof = json.loads(done.stdout)
    assert merkle.verify_inclusion(2, 7, merkle.leaf_hash(leaves[2]),
                                   [bytes.fromhex(p) for p in proof["inclusion_path"]], _root(leaves))
    done = gatehouse("journal", "consistency", "3", "7", env=env)
    proof = json.loads(done.stdout)
    assert merkle.verify_consistency(3, 7, [bytes.fromhex(p) for p in proof["consistency_path"]], _root(leaves[:3]),
                                     _root(leaves))
    bad = gatehouse("journal", "proof", "99", env=env)
    assert (bad.returncode, bad.stderr.strip()) == (1, "gatehouse: error: no journal row 99 (the head is at 7)")


def test_verify_with_checkpoints_matches_the_library(database, keyed):
    env, _, _ = keyed
    _append(database.app_url, [_event(i) for i in range(3)])
    _checkpoint(env)
    with psycopg.connect(database.app_url) as conn:
        cps = checkpoints.stored(conn)
        conn.commit()
        result = journal.verify(conn, checkpoints=[(c.tree_size, c.root, "c") for c in cps])
        wrong = journal.verify(conn, checkpoints=[(2, cps[0].root, "c"), (9, cps[0].root, "d")])
    assert result.ok
    assert (wrong.ok, wrong.bad_seq) == (False, 2)


@pytest.fixture
def hook(tmp_path):
    from tests.support.outbox import SECRET, webhook_receiver

    secret = tmp_path / "hook.secret"
    secret.write_bytes(SECRET + b"\n")
    with webhook_receiver() as (handler, url):
        yield handler, url + "/checkpoints", secret


def test_the_job_publishes_each_checkpoint_to_a_signed_webhook(database, keyed, services, hook):
    env, vkey, published = keyed
    handler, url, secret = hook
    settings = dataclasses.replace(services.settings, journal_origin=ORIGIN,
                                   journal_key_file=Path(env["GATEHOUSE_JOURNAL_KEY_FILE"]),
                                   journal_checkpoint_webhook_url=url, journal_checkpoint_webhook_secret_file=secret)
    job = registry.configured(settings)["journal_checkpoint"]
    _append(database.app_url, [_event(i) for i in range(3)])
    done = registry.run_job(dataclasses.replace(services, settings=settings), job)
    assert (done.outcome, done.counts["webhook_status"]) == ("ok", 204)
    (event,) = handler.accepted  # its signature verified by the receiver's recipe (connectors/webhook.py)
    stored = _stored(database)
    with psycopg.connect(database.app_url) as conn:
        (last,) = conn.execute("SELECT max(id) FROM journal_checkpoints").fetchone()
    assert (event["type"], event["id"], event["tree_size"]) == ("journal.checkpoint", f"checkpoint-{last}", 3)
    opened = note.open_checkpoint(event["note"], *note.parse_verifier_key(vkey))  # the signed note itself
    assert (opened.size, opened.root.hex()) == (3, event["root"])

    wrong = secret.with_name("other.secret")
    wrong.write_bytes(b"not the receiver's")
    refused = registry.run_job(dataclasses.replace(services, settings=dataclasses.replace(  # manual: in the same due
        settings, journal_checkpoint_webhook_secret_file=wrong)), job, trigger="manual")  # time, as an operator's
    assert refused.outcome == "failed"
    assert "is stored, but publishing it failed: POST webhook: HTTP 401" in refused.error
    assert len(_stored(database)) == len(stored) + 1 and len(handler.refused) == 1  # stored all the same
    with psycopg.connect(database.app_url) as conn:
        outcome, detail = conn.execute("SELECT outcome, detail FROM journal WHERE kind = 'job' "
                                       "ORDER BY seq DESC LIMIT 1").fetchone()
    assert (outcome, detail["error"]) == ("failed", refused.error)
