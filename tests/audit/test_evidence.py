"""Evidence bundles: exported for a period through the real CLI, verified offline, and each tampering caught with
its place named."""

import dataclasses
import hashlib
import json
import shutil
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from service import journal
from service.jobs import registry
from tests.support.admin import ORIGIN
from tests.support.audit import story
from tests.support.cli import db_env, gatehouse
from tests.support.factories import rows
from tests.support.people import session_for

TODAY = datetime.now(UTC).date()


@pytest.fixture
def bundle(database, tmp_path):
    told = story(database)
    path = tmp_path / "evidence.zip"
    done = gatehouse("evidence", "export", "--from", str(TODAY - timedelta(days=1)), "--to", str(TODAY),
                     "-o", str(path), env=db_env(database))
    assert done.returncode == 0, done.stderr
    assert f"{len(told['seqs'])} journal rows (seq 1 to {len(told['seqs'])})" in done.stdout
    return path, told


def _verify(path, *extra):
    return gatehouse("evidence", "verify", str(path), *extra, env={})  # no database settings at all


def test_a_fresh_bundle_verifies_offline_and_holds_what_it_should(bundle, database):
    path, told = bundle
    checked = _verify(path)
    assert checked.returncode == 0 and checked.stdout.startswith(f"OK {len(told['seqs'])} rows"), checked
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        assert {"journal.jsonl", "chain.json", "verification.txt", "reviews.csv", "training.json", "controls.json",
                "manifest.json"} <= names
        assert any(n.startswith("policies/") for n in names)
        controls = json.loads(zf.read("controls.json"))
        for control in ("A.5.15", "A.5.16", "A.5.18", "A.6.3", "A.8.2", "A.8.5", "A.8.15", "CC6.1", "CC6.2",
                        "CC6.3", "CC7.2"):
            assert any(control in key for key in controls), control
        assert zf.read("verification.txt").decode().split(": ")[1].startswith("OK ")
    exported = rows(database, "SELECT detail->>'action', (detail->>'rows')::int FROM journal WHERE kind = 'admin'")
    assert exported == [("evidence.export", len(told["seqs"]))]  # the export itself is journaled
    last = rows(database, f"SELECT encode(hash, 'hex') FROM journal WHERE seq = {len(told['seqs'])}")[0][0]
    assert _verify(path, "--expect", f"{len(told['seqs'])}:{last}").returncode == 0
    wrong = _verify(path, "--expect", f"3:{'0' * 64}")
    assert wrong.returncode == 1 and "anchor kept outside" in wrong.stdout


def _rewrite(path, tmp_path, change, *, fix_manifest=True):
    """A copy of the bundle with journal.jsonl changed by `change(lines)`; its manifest digest recomputed, as an
    attacker who knows the format would (so the chain, not the manifest, must catch it)."""
    import hashlib
    out = tmp_path / "tampered.zip"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        lines = src.read("journal.jsonl").decode().splitlines(keepends=True)
        data = "".join(change(lines)).encode()
        manifest = json.loads(src.read("manifest.json"))
        if fix_manifest:
            manifest["files"]["journal.jsonl"] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        for name in src.namelist():
            if name == "journal.jsonl":
                dst.writestr(name, data)
            elif name == "manifest.json":
                dst.writestr(name, json.dumps(manifest))
            else:
                dst.writestr(name, src.read(name))
    return out


def _byte(lines):
    lines[4] = lines[4].replace('"review_missed"', '"review_misses"', 1)
    return lines


@pytest.mark.parametrize("change, where", [
    (_byte, "line 5: seq 5: hash does not match the row's content"),
    (lambda lines: lines[:6] + lines[7:], "line 7: seq 7: seq 7 is missing"),
    (lambda lines: lines[:2] + [lines[3], lines[2]] + lines[4:], "line 3: seq 3: seq 3 is missing"),
    (lambda lines: lines[:-1], "rows removed at the end?"),
])
def test_each_tampering_is_caught_and_placed(bundle, tmp_path, change, where):
    path, _ = bundle
    checked = _verify(_rewrite(path, tmp_path, change))
    assert checked.returncode == 1 and checked.stdout.startswith("BAD") and where in checked.stdout, checked.stdout


def test_a_changed_file_without_a_fixed_manifest_and_other_broken_bundles(bundle, tmp_path):
    path, _ = bundle
    checked = _verify(_rewrite(path, tmp_path, _byte, fix_manifest=False))
    assert checked.returncode == 1 and "journal.jsonl: its SHA-256 is not the one in the manifest" in checked.stdout
    extra = tmp_path / "extra.zip"
    shutil.copy(path, extra)
    with zipfile.ZipFile(extra, "a") as zf:
        zf.writestr("policies/" + "0" * 64 + ".toml", "[x]")
    assert "in the zip but not in the manifest" in _verify(extra).stdout
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    junk = _verify(tmp_path / "junk.zip")
    assert junk.returncode == 1 and "not a readable zip" in junk.stdout
    bad = gatehouse("evidence", "verify", str(path), "--expect", "x", env={})
    assert bad.returncode == 1 and bad.stderr.startswith("gatehouse: error: --expect") and not bad.stdout


def test_export_refuses_a_bad_period_in_one_line(database, tmp_path):
    for args in (("--from", "2026-02-01", "--to", "2026-01-01"), ("--from", "soon", "--to", "2026-01-01")):
        done = gatehouse("evidence", "export", *args, "-o", str(tmp_path / "x.zip"), env=db_env(database))
        assert done.returncode == 1 and done.stderr.count("\n") == 1 and "gatehouse: error:" in done.stderr
        assert not (tmp_path / "x.zip").exists()


def _ask(web, csrf, since, until):
    return web.post("/admin/audit/evidence", data={"since": since, "until": until, "csrf_token": csrf},
                    headers={"Origin": ORIGIN})


def test_an_auditor_asks_the_worker_for_a_bundle_and_downloads_it(web, database, tmp_path, services):
    told = story(database)
    csrf = session_for(web, database, told["audra"])
    r = _ask(web, csrf, str(TODAY), str(TODAY))
    assert r.status_code == 303 and r.headers["Location"] == "/admin/audit/evidence"
    assert rows(database, "SELECT requested_by, state FROM evidence_requests") == [("person:audra", "queued")]
    assert rows(database, "SELECT actor, outcome, detail->>'action' FROM journal WHERE kind = 'admin'") == [
        ("person:audra", "queued", "evidence.request")]  # who asked, when: the request's own journal row
    page = web.get("/admin/audit/evidence").get_data(as_text=True)
    assert "queued" in page and "/admin/audit/evidence/1.zip" not in page
    assert web.get("/admin/audit/evidence/1.zip").status_code == 404  # not built yet

    done = registry.run_job(services, registry.configured(services.settings)["evidence_export"])
    assert (done.outcome, done.counts) == ("ok", {"built": 1, "failed": 0})
    (state, count, digest), = rows(database, "SELECT state, row_count, sha256 FROM evidence_requests")
    assert (state, count) == ("done", len(told["seqs"]) + 1)  # the story and the request's row
    built = rows(database, "SELECT actor, detail->>'sha256', detail->>'built_by' FROM journal "
                           "WHERE detail->>'action' = 'evidence.export'")
    assert built == [("person:audra", digest, "job:evidence_export")]  # who asked, the bundle's hash
    page = web.get("/admin/audit/evidence").get_data(as_text=True)
    assert "done" in page and digest in page and "/admin/audit/evidence/1.zip" in page
    r = web.get("/admin/audit/evidence/1.zip")
    assert r.status_code == 200 and r.mimetype == "application/zip"
    path = tmp_path / "download.zip"
    path.write_bytes(r.get_data())
    r.close()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert _verify(path).stdout.startswith(f"OK {count} rows")
    assert rows(database, "SELECT actor, detail->>'sha256' FROM journal WHERE detail->>'action' = "
                          "'evidence.download'") == [("person:audra", digest)]


def test_a_bad_period_queues_nothing_and_others_may_not_download(web, database, services):
    told = story(database)
    csrf = session_for(web, database, told["audra"])
    assert _ask(web, csrf, "2026-02-01", "").status_code == 400
    assert _ask(web, csrf, str(TODAY), str(TODAY - timedelta(days=2))).status_code == 400
    assert web.post("/admin/audit/evidence", data={"since": str(TODAY), "until": str(TODAY)},
                    headers={"Origin": ORIGIN}).status_code == 403  # no CSRF token
    assert rows(database, "SELECT count(*) FROM evidence_requests") == [(0,)]
    assert _ask(web, csrf, str(TODAY), str(TODAY)).status_code == 303
    registry.run_job(services, registry.configured(services.settings)["evidence_export"])
    hr = rows(database, "INSERT INTO people (user_name, source) VALUES ('hank', 'scim') RETURNING id::text")[0][0]
    rows(database, "INSERT INTO person_roles (person_id, role, granted_by) VALUES (%s, 'hr', 'test') RETURNING 1",
         (hr,))
    session_for(web, database, hr)
    assert web.get("/admin/audit/evidence/1.zip").status_code == 403
    assert web.get("/admin/audit/evidence").status_code == 403
    web.delete_cookie("gatehouse_session", domain="localhost")
    assert web.get("/admin/audit/evidence/1.zip").status_code == 401


def test_the_consoles_bundle_is_signed_at_export_when_a_key_is_configured(settings, database, tmp_path):
    from tests.support.admin import make_app
    told = story(database)
    env, vkey = _keyed(database, tmp_path)
    app, services = make_app(dataclasses.replace(settings, journal_origin=env["GATEHOUSE_JOURNAL_ORIGIN"],
                                                 journal_key_file=Path(env["GATEHOUSE_JOURNAL_KEY_FILE"])), database)
    try:
        web = app.test_client()
        assert _ask(web, session_for(web, database, told["audra"]), str(TODAY), str(TODAY)).status_code == 303
        assert registry.run_job(services, registry.configured(services.settings)["evidence_export"]).outcome == "ok"
        r = web.get("/admin/audit/evidence/1.zip")
        assert r.status_code == 200
        path = tmp_path / "signed-download.zip"
        path.write_bytes(r.get_data())
        r.close()
    finally:
        services.close()
    assert rows(database, "SELECT count(*) FROM journal_checkpoints") == [(1,)]  # signed at this export
    checked = _verify(path, "--key", vkey)
    assert checked.returncode == 0 and "signed checkpoint of" in checked.stdout, checked


def _keyed(database, tmp_path, name="keys"):
    """A checkpoint key made by `gatehouse journal keygen`; the environment that signs with it; its verifier key."""
    key = tmp_path / f"{name}.key"
    env = {**db_env(database), "GATEHOUSE_JOURNAL_ORIGIN": "evidence.example/journal"}
    done = gatehouse("journal", "keygen", "-o", str(key), env=env)
    assert done.returncode == 0, done.stderr
    return {**env, "GATEHOUSE_JOURNAL_KEY_FILE": str(key)}, done.stdout.split()[-1]


@pytest.fixture
def signed(database, tmp_path):
    told = story(database)
    env, vkey = _keyed(database, tmp_path)
    assert gatehouse("journal", "checkpoint", env=env).returncode == 0  # an earlier checkpoint, as the job leaves
    with psycopg.connect(database.app_url) as conn:  # and the journal grew since
        journal.append(conn, journal.Event(kind="check", outcome="deny", actor="client:vpn-gw", resource="vpn"))
    story_more = rows(database, "SELECT count(*) FROM journal")[0][0]
    path = tmp_path / "signed.zip"
    done = gatehouse("evidence", "export", "--from", str(TODAY), "--to", str(TODAY), "-o", str(path), env=env)
    assert done.returncode == 0, done.stderr
    return path, vkey, told, story_more


def test_a_signed_bundle_ties_its_rows_to_a_checkpoint_verified_offline(signed, database):
    path, vkey, told, _ = signed
    with zipfile.ZipFile(path) as zf:
        assert {"checkpoint.txt", "checkpoint_previous.txt", "checkpoint_key.txt", "proofs.json"} <= set(zf.namelist())
        proofs = json.loads(zf.read("proofs.json"))
    assert proofs["first"]["seq"] == 1 and proofs["previous"]["tree_size"] < proofs["tree_size"]
    checked = _verify(path, "--key", vkey)
    assert checked.returncode == 0 and "signed checkpoint of" in checked.stdout, checked
    assert rows(database, "SELECT count(*) FROM journal_checkpoints") == [(2,)]  # one more, made by the export


def _replace(path, tmp_path, **files):
    """A copy with some files replaced, the manifest's digests recomputed to match (a careful forger)."""
    import hashlib
    out = tmp_path / "forged.zip"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        manifest = json.loads(src.read("manifest.json"))
        for name, data in files.items():
            manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        for name in src.namelist():
            if name == "manifest.json":
                dst.writestr(name, json.dumps(manifest))
            else:
                dst.writestr(name, files.get(name, src.read(name)))
    return out


def test_an_altered_signature_or_a_swapped_key_is_caught(signed, database, tmp_path):
    path, vkey, _, _ = signed
    with zipfile.ZipFile(path) as zf:
        text = zf.read("checkpoint.txt").decode()
    body, _, sig = text.partition("\n\n")
    name, _, b64 = sig.strip().rpartition(" ")
    flipped = b64[:10] + ("A" if b64[10] != "A" else "B") + b64[11:]
    altered = _verify(_replace(path, tmp_path, **{"checkpoint.txt": f"{body}\n\n{name} {flipped}\n".encode()}))
    assert altered.returncode == 1 and "checkpoint.txt" in altered.stdout and "verify" in altered.stdout, altered
    # another key re-signs a checkpoint of a rewritten history: the bundle's own key says OK, the pinned one not
    env2, other = _keyed(database, tmp_path, "other")
    assert gatehouse("journal", "checkpoint", env=env2).returncode == 0
    (forged,), = rows(database, "SELECT note FROM journal_checkpoints ORDER BY id DESC LIMIT 1")
    swapped = _replace(path, tmp_path, **{"checkpoint_key.txt": (other + "\n").encode()})
    assert _verify(swapped).returncode == 1  # the old signature does not verify under the swapped key
    pinned = _verify(swapped, "--key", vkey)
    assert pinned.returncode == 1 and "not the key given" in pinned.stdout, pinned.stdout
    wrong_root = _replace(path, tmp_path, **{"checkpoint.txt": forged.encode(), "checkpoint_key.txt": other.encode()})
    checked = _verify(wrong_root)
    assert checked.returncode == 1 and "proofs.json" in checked.stdout, checked.stdout


def test_a_checkpoint_of_the_same_size_over_another_history_fails_the_inclusion_proofs(signed, tmp_path, database):
    from pathlib import Path

    from service.journal import signers
    path, _, _, _ = signed
    env2, other = _keyed(database, tmp_path, "forger")
    with zipfile.ZipFile(path) as zf:
        size = json.loads(zf.read("proofs.json"))["tree_size"]
    forger = signers.KeyFileSigner(Path(env2["GATEHOUSE_JOURNAL_KEY_FILE"]), "evidence.example/journal")
    forged = signers.sign_checkpoint(forger, size, bytes(32))  # the right size, a root of some other rows
    checked = _verify(_replace(path, tmp_path, **{"checkpoint.txt": forged.encode(),
                                                  "checkpoint_key.txt": (other + "\n").encode()}))
    assert checked.returncode == 1 and "row is not in the signed tree" in checked.stdout, checked.stdout
