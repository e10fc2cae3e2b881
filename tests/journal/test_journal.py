"""The journal: append-only in the database, one gapless linear chain, verifiable."""

import hashlib
import multiprocessing
import threading

import psycopg
import pytest

from service import journal
from service.errors import DatabaseUnavailable, JournalBroken
from service.journal import Event, JournalWriter
from tests.support.cli import db_env, gatehouse


def _event(i: int = 0, **kw) -> Event:
    base = dict(kind="check", outcome="allow", actor="client:vpn-gw", subject=f"person-{i}", resource="vpn",
                reasons=({"code": "ok", "text": "all good ü"},), detail={"n": i}, policy_version="p1",
                request_id=f"req-{i}")
    base.update(kw)
    return Event(**base)


def _append(url: str, events) -> list[journal.Receipt]:
    with psycopg.connect(url) as conn:
        return [journal.append(conn, e) for e in events]


def _rows(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT seq, prev_hash, hash FROM journal ORDER BY seq").fetchall()


def test_rows_are_chained_by_the_database_and_the_hash_is_reproducible(database):
    receipts = _append(database.app_url, [_event(i) for i in range(5)])
    assert [r.seq for r in receipts] == [1, 2, 3, 4, 5]
    rows = _rows(database.app_url)
    assert rows[0][1] == journal.GENESIS
    for before, after in zip(rows, rows[1:], strict=False):
        assert after[1] == before[2]
    with psycopg.connect(database.app_url) as conn:
        first = conn.execute(journal.chain._CANONICAL_SELECT, (0,)).fetchone()
    assert hashlib.sha256(journal.canonical(first[:12])).hexdigest() == first[12] == receipts[0].hash
    with psycopg.connect(database.app_url) as conn:
        result = journal.verify(conn)
    assert (result.ok, result.count, result.head) == (True, 5, receipts[-1].hash)


def test_values_supplied_for_chain_fields_are_overwritten(database):
    with psycopg.connect(database.app_url) as conn:
        conn.execute("INSERT INTO journal (seq, ts, kind, outcome, actor, prev_hash, hash) "
                     "VALUES (99, '2000-01-01', 'admin', 'ok', 'x', %s, %s)", (b"\x01" * 32, b"\x02" * 32))
    (seq, prev, _),  = _rows(database.app_url)
    assert (seq, prev) == (1, journal.GENESIS)


@pytest.mark.parametrize("statement", [
    "UPDATE journal SET outcome = 'deny'",
    "DELETE FROM journal",
    "TRUNCATE journal",
])
def test_app_role_cannot_change_the_journal(database, statement):
    _append(database.app_url, [_event()])
    with psycopg.connect(database.app_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)
    assert len(_rows(database.app_url)) == 1


@pytest.mark.parametrize("statement", [
    "UPDATE journal SET outcome = 'deny'",
    "DELETE FROM journal",
    "TRUNCATE journal",
    "UPDATE journal_head SET seq = 0",
    "DELETE FROM journal_head",
])
def test_owner_and_superuser_are_refused_by_the_triggers(database, superuser, statement):
    _append(database.app_url, [_event()])
    for url in (database.owner_url, superuser):
        with psycopg.connect(url) as conn:
            with pytest.raises(psycopg.Error) as refused:
                conn.execute(statement)
            assert "append-only" in str(refused.value)
    with psycopg.connect(database.app_url) as conn:
        assert journal.verify(conn).ok


def test_app_role_cannot_move_the_head(database):
    with psycopg.connect(database.app_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("UPDATE journal_head SET seq = 5")


def _tamper_and_verify(database, superuser, rows: int, statement: str):
    """Append rows, change one behind the triggers' back as a superuser, run `gatehouse journal verify`."""
    _append(database.app_url, [_event(i) for i in range(rows)])
    with psycopg.connect(superuser) as conn:
        conn.execute("ALTER TABLE journal DISABLE TRIGGER journal_no_update")
        conn.execute(statement)
        conn.execute("ALTER TABLE journal ENABLE TRIGGER journal_no_update")
    return gatehouse("journal", "verify", env=db_env(database))


def test_tampered_row_is_reported_at_its_seq(database, superuser):
    done = _tamper_and_verify(database, superuser, 6, "UPDATE journal SET outcome = 'deny' WHERE seq = 4")
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("BAD 4 hash does not match"), done.stdout


def test_deleted_last_row_is_reported(database, superuser):
    done = _tamper_and_verify(database, superuser, 3, "DELETE FROM journal WHERE seq = 3")
    assert (done.returncode, done.stdout.split()[:3]) == (1, ["BAD", "3", "the"])


def test_deleted_middle_row_is_reported(database, superuser):
    done = _tamper_and_verify(database, superuser, 5, "DELETE FROM journal WHERE seq = 2")
    assert (done.returncode, done.stdout.strip()) == (1, "BAD 2 seq 2 is missing")


def test_verify_prints_count_and_head(database):
    receipts = _append(database.app_url, [_event(i) for i in range(3)])
    done = gatehouse("journal", "verify", env=db_env(database))
    assert (done.returncode, done.stdout.strip()) == (0, f"OK 3 {receipts[-1].hash}")


def _assert_one_gapless_chain(database, expected: int):
    rows = _rows(database.app_url)
    assert [r[0] for r in rows] == list(range(1, expected + 1))
    with psycopg.connect(database.app_url) as conn:
        result = journal.verify(conn)
    assert (result.ok, result.count) == (True, expected), result


def test_fifty_threads_appending_in_their_own_transactions_form_one_chain(database):
    errors = []

    def work(n):
        try:
            with psycopg.connect(database.app_url) as conn:
                for i in range(20):
                    with conn.transaction():
                        journal.append(conn, _event(n * 100 + i))
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    _assert_one_gapless_chain(database, 50 * 20)


def test_fifty_threads_through_the_group_commit_writer(database):
    writer = JournalWriter(database.app_url)
    receipts, errors = [], []

    def work(n):
        try:
            for i in range(20):
                receipts.append(writer.record(_event(n * 100 + i)))
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    assert not errors
    assert sorted(r.seq for r in receipts) == list(range(1, 1001))
    _assert_one_gapless_chain(database, 1000)


def _process_appender(url: str, n: int, count: int):
    writer = JournalWriter(url)
    for i in range(count // 2):
        writer.record(_event(n * 1000 + i))
    writer.close()
    _append(url, [_event(n * 1000 + 500 + i) for i in range(count - count // 2)])


def test_four_processes_appending_form_one_chain(database):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_process_appender, args=(database.app_url, n, 100)) for n in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    _assert_one_gapless_chain(database, 400)


def test_a_rolled_back_append_leaves_no_gap(database):
    with psycopg.connect(database.app_url) as conn:
        with pytest.raises(RuntimeError), conn.transaction():
            journal.append(conn, _event(1))
            raise RuntimeError("the change failed")
        journal.append(conn, _event(2))
        conn.commit()
    _assert_one_gapless_chain(database, 1)


def test_writer_reports_an_unreachable_database():
    writer = JournalWriter("postgresql://nobody@127.0.0.1:1/none", timeout=2)
    with pytest.raises(DatabaseUnavailable) as raised:
        writer.record(_event())
    writer.close()
    assert not isinstance(raised.value, JournalBroken)  # only the chain trigger's refusal is that
    assert raised.value.message.startswith("the journal could not be written: ")


def test_other_database_errors_are_not_mistaken_for_a_broken_journal(database):
    with psycopg.connect(database.app_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        journal.append(conn, _event(outcome="x" * 65))


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError):
        _event(kind="coffee")


def _head(url: str) -> tuple:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT seq, hash FROM public.journal_head").fetchone()


def test_temp_tables_cannot_redirect_the_chain_triggers(database):
    """The app role shadows journal and journal_head with temp tables (pg_temp is searched first unless named)."""
    real = _append(database.app_url, [_event(i) for i in range(3)])
    forged = b"\x66" * 32
    with psycopg.connect(database.app_url) as conn:
        conn.execute("CREATE TEMP TABLE journal (seq bigint, hash bytea)")
        conn.execute("CREATE TEMP TABLE journal_head (id boolean, seq bigint, hash bytea)")
        conn.execute("INSERT INTO pg_temp.journal VALUES (1000, %s)", (forged,))
        conn.execute("INSERT INTO pg_temp.journal_head VALUES (true, 1000, %s)", (forged,))
        conn.execute("GRANT ALL ON pg_temp.journal, pg_temp.journal_head TO PUBLIC")
        conn.execute("INSERT INTO public.journal (kind, outcome, actor) VALUES ('admin', 'ok', 'attacker')")
        conn.commit()
    (seq, prev, digest), = [r for r in _rows(database.app_url) if r[0] > 3] or [(None, None, None)]
    assert (seq, prev) == (4, bytes.fromhex(real[-1].hash)), "the chain did not continue from the real last row"
    assert _head(database.app_url) == (4, digest)
    done = gatehouse("journal", "verify", env=db_env(database))
    assert (done.returncode, done.stdout.strip()) == (0, f"OK 4 {digest.hex()}"), done.stdout + done.stderr


def test_every_function_of_ours_pins_its_search_path_with_pg_temp_last(database):
    """A function without a pinned path, or with pg_temp unnamed (so searched first), can be redirected."""
    with psycopg.connect(database.owner_url) as conn:
        found = conn.execute(
            "SELECT p.proname, p.prosecdef, p.proconfig FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'public' ORDER BY 1").fetchall()
    # outbox_enqueue_set (017, 033): the grants triggers write the outbox rows the application role may not insert.
    assert {name for name, definer, _ in found if definer} == {"journal_chain", "journal_advance",
                                                               "outbox_enqueue_set"}
    # Besides the path, a function may carry only planner settings (026: outbox_guard plans each call for its
    # partial index); nothing that changes what a name resolves to.
    for name, _, config in found:
        assert config[0] == "search_path=pg_catalog, public, pg_temp", name
        assert set(config[1:]) <= {"plan_cache_mode=force_custom_plan"}, name
    with psycopg.connect(database.app_url) as conn:  # public is searched, so only the owner may create there
        assert conn.execute("SELECT has_schema_privilege('public', 'CREATE')").fetchone() == (False,)


# --- a tail deleted behind the triggers -----------------------------------------------------------


def _delete_tail(database, superuser, *, rows: int, keep: int) -> None:
    """Append rows, then delete those after `keep` as a superuser with the refusing trigger disabled."""
    _append(database.app_url, [_event(i) for i in range(rows)])
    with psycopg.connect(superuser) as conn:
        conn.execute("ALTER TABLE journal DISABLE TRIGGER journal_no_update")
        conn.execute("DELETE FROM journal WHERE seq > %s", (keep,))
        conn.execute("ALTER TABLE journal ENABLE TRIGGER journal_no_update")


def _broken(head: int, last: int) -> str:
    return f"the journal's head is at seq {head} but its last row is {last}: run gatehouse journal verify"


@pytest.mark.parametrize("keep", [2, 0])
def test_after_a_deleted_tail_appends_are_refused_with_one_clear_error(database, superuser, keep):
    _delete_tail(database, superuser, rows=3, keep=keep)
    with psycopg.connect(database.app_url) as conn:
        with pytest.raises(JournalBroken) as refused, conn.transaction():
            journal.append(conn, _event(9))
        assert refused.value.message == _broken(3, keep)
        with pytest.raises(JournalBroken) as found:
            journal.check_tail(conn)
        assert found.value.message == _broken(3, keep)
    writer = JournalWriter(database.app_url)
    try:
        for _ in range(2):  # the writer's connection survives the refusal
            with pytest.raises(JournalBroken) as refused:
                writer.record(_event(9))
            assert refused.value.message == _broken(3, keep)
    finally:
        writer.close()
    assert [r[0] for r in _rows(database.app_url)] == list(range(1, keep + 1))
    assert _head(database.app_url)[0] == 3


def test_a_batch_of_appends_is_not_mistaken_for_a_deleted_tail(database):
    """Inside one multi-row INSERT the head moves only at the statement's end."""
    with psycopg.connect(database.app_url) as conn:
        rows = conn.execute(
            journal.chain._INSERT_MANY, [list(c) for c in zip(*(_event(i).columns() for i in range(5)), strict=False)]
        )
        assert [r[0] for r in rows.fetchall()] == [1, 2, 3, 4, 5]
        conn.commit()
        journal.check_tail(conn)
    _assert_one_gapless_chain(database, 5)


def test_after_a_deleted_tail_cli_commands_that_append_exit_1_with_one_line(database, superuser):
    _delete_tail(database, superuser, rows=3, keep=2)
    for command in (("clients", "create", "gw", "--scope", "access:check"), ("admin", "enroll", "a@example.com")):
        done = gatehouse(*command, env=db_env(database))
        assert (done.returncode, done.stdout, done.stderr) == (1, "", f"gatehouse: error: {_broken(3, 2)}\n")
    with psycopg.connect(database.app_url) as conn:  # the change and its journal row vanished together
        assert conn.execute("SELECT (SELECT count(*) FROM api_clients), (SELECT count(*) FROM admins)").fetchone() == (
            0,
            0,
        )
    done = gatehouse("journal", "verify", env=db_env(database))
    assert (done.returncode, done.stdout.strip()) == (1, "BAD 3 the chain ends at seq 2 but its head says 3")
    assert _verify(database) == journal.Verification(False, 2, _rows(database.app_url)[1][2].hex(), 3,
                                                     "the chain ends at seq 2 but its head says 3")


def test_after_a_deleted_tail_checks_fail_closed_and_readyz_names_it(client, database, superuser):
    from service.clients import store as clients

    with psycopg.connect(database.app_url) as conn:
        clients.create(conn, name="gw", scopes=("access:check",), created_by="test")
        token = clients.issue_static_token(conn, "gw").secret
    _delete_tail(database, superuser, rows=3, keep=2)
    bearer = {"Authorization": f"Bearer {token}"}
    for r in (client.post("/api/v1/access/check", json={"user": "alice", "resource": "vpn"}, headers=bearer),
              client.get("/api/v1/access/check?user=alice&resource=vpn", headers=bearer),
              client.post("/api/v1/access/check", json={"user": "alice", "resource": "vpn"},
                          headers={"Authorization": "Bearer wrong"})):  # a refusal journaled one by one, too
        assert r.status_code == 503 and r.headers["Retry-After"], r.json
        assert (r.json["allow"], r.json["code"], [x["code"] for x in r.json["reasons"]]) == (
            False, "unavailable", ["unavailable"])
    # A request with no credential is refused without touching the journal (service/auth/refusals.py counts it).
    assert client.post("/api/v1/access/check", json={"user": "alice", "resource": "vpn"}).status_code == 401
    radius = client.post("/api/v1/access/radius", json={"user": "alice"}, headers=bearer)
    # FreeRADIUS reads a reply body on 200 and 401 only: a reject that says why (tests/access/test_radius.py)
    assert radius.status_code == 401
    assert radius.json["reply:Reply-Message"]["value"].startswith("unavailable: ")
    ready = client.get("/readyz")
    assert (ready.status_code, ready.json["code"], ready.json["detail"]) == (503, "unavailable", _broken(3, 2))
    assert [r[0] for r in _rows(database.app_url)] == [1, 2]


# --- rewrites by someone who can disable the triggers (the owner, a superuser) ----------------------


def _rewrite(superuser, seq: int, *, through: int | None = None) -> None:
    """As a superuser behind the triggers: change row seq and recompute its hash, then re-chain rows up to `through`.

    With `through` the last row, the head is moved too: the whole chain is consistent again.
    """
    with psycopg.connect(superuser) as conn:
        conn.execute("ALTER TABLE journal DISABLE TRIGGER journal_no_update")
        conn.execute("UPDATE journal SET outcome = 'deny' WHERE seq = %s", (seq,))
        conn.execute("UPDATE journal j SET hash = sha256(journal_payload(j)) WHERE seq = %s", (seq,))
        for n in range(seq + 1, (through or seq) + 1):
            conn.execute("UPDATE journal SET prev_hash = (SELECT hash FROM journal WHERE seq = %s) WHERE seq = %s",
                         (n - 1, n))
            conn.execute("UPDATE journal j SET hash = sha256(journal_payload(j)) WHERE seq = %s", (n,))
        if through:
            conn.execute("ALTER TABLE journal_head DISABLE TRIGGER journal_head_forward")
            conn.execute("UPDATE journal_head SET hash = (SELECT hash FROM journal WHERE seq = %s)", (through,))
            conn.execute("ALTER TABLE journal_head ENABLE TRIGGER journal_head_forward")
        conn.execute("ALTER TABLE journal ENABLE TRIGGER journal_no_update")


def test_a_row_rewritten_with_its_hash_recomputed_is_reported_at_the_next_row(database, superuser):
    _append(database.app_url, [_event(i) for i in range(5)])
    _rewrite(superuser, 3)
    done = gatehouse("journal", "verify", env=db_env(database))
    assert (done.returncode, done.stdout.strip()) == (1, "BAD 4 prev_hash does not match the previous row")


def test_the_last_row_rewritten_with_its_hash_recomputed_is_reported_against_the_head(database, superuser):
    _append(database.app_url, [_event(i) for i in range(5)])
    _rewrite(superuser, 5)
    done = gatehouse("journal", "verify", env=db_env(database))
    assert (done.returncode, done.stdout.strip()) == (1, "BAD 5 hash does not match the one the head recorded")
    assert _verify(database) == journal.Verification(False, 5, _rows(database.app_url)[4][2].hex(), 5,
                                                     "hash does not match the one the head recorded")


def test_a_rewrite_that_recomputes_the_chain_passes_verify_but_not_an_anchor(database, superuser):
    receipts = _append(database.app_url, [_event(i) for i in range(5)])
    _rewrite(superuser, 2, through=5)
    rewritten = {seq: digest.hex() for seq, _, digest in _rows(database.app_url)}
    env = db_env(database)
    plain = gatehouse("journal", "verify", env=env)  # the chain alone cannot tell
    assert (plain.returncode, plain.stdout.strip()) == (0, f"OK 5 {rewritten[5]}")
    head = gatehouse("journal", "verify", "--expect", f"5:{receipts[4].hash}", env=env)
    assert (head.returncode, head.stdout) == (
        1,
        f"BAD 5 hash is {rewritten[5]}, expected {receipts[4].hash} (--expect)\n",
    )
    several = gatehouse("journal", "verify", "--expect", f"1:{receipts[0].hash}", "--expect",
                        f"2:{receipts[1].hash.upper()}", env=env)
    assert (several.returncode, several.stdout.split()[:2]) == (1, ["BAD", "2"])
    untouched = gatehouse("journal", "verify", "--expect", f"1:{receipts[0].hash}", env=env)
    assert (untouched.returncode, untouched.stdout.strip()) == (0, f"OK 5 {rewritten[5]}")
    assert _verify(database, expect=[(1, receipts[0].hash), (5, receipts[4].hash)]) == journal.Verification(
        False, 5, rewritten[5], 5, f"hash is {rewritten[5]}, expected {receipts[4].hash} (--expect)")


def test_an_anchor_past_the_end_is_a_missing_row_and_a_malformed_one_is_refused(database):
    receipts = _append(database.app_url, [_event(i) for i in range(2)])
    env = db_env(database)
    gone = gatehouse("journal", "verify", "--expect", f"3:{receipts[1].hash}", env=env)
    assert (gone.returncode, gone.stdout.strip()) == (
        1,
        f"BAD 3 row is missing, expected {receipts[1].hash} (--expect)",
    )
    for bad in ("2", f"0:{receipts[1].hash}", f"2:{receipts[1].hash[:-1]}", f"x:{receipts[1].hash}"):
        done = gatehouse("journal", "verify", "--expect", bad, env=env)
        assert done.returncode == 2 and done.stdout == "", bad
        assert done.stderr.startswith("gatehouse: error: Invalid value for '--expect'") and done.stderr.count("\n") == 1


def _verify(database, **kwargs) -> journal.Verification:
    with psycopg.connect(database.app_url) as conn:
        return journal.verify(conn, **kwargs)


def test_verification_carries_the_chain_across_batches(database, superuser):
    """Batches of 2 rows: each batch's first row is checked against the previous batch's last."""
    hashes = [r.hash for r in _append(database.app_url, [_event(i) for i in range(5)])]
    assert _verify(database, batch=2) == journal.Verification(True, 5, hashes[4])
    with psycopg.connect(superuser) as conn:
        conn.execute("ALTER TABLE journal DISABLE TRIGGER journal_no_update")
        conn.execute("UPDATE journal SET outcome = 'deny' WHERE seq = 4")
        conn.execute("ALTER TABLE journal ENABLE TRIGGER journal_no_update")
    assert _verify(database, batch=2) == journal.Verification(
        False, 3, hashes[2], 4, "hash does not match the row's content")
    _rewrite(superuser, 2)  # row 3 opens the second batch: its prev_hash no longer matches
    rewritten = _rows(database.app_url)[1][2].hex()
    assert _verify(database, batch=2) == journal.Verification(
        False, 2, rewritten, 3, "prev_hash does not match the previous row")


def test_check_rows_starts_at_the_genesis_or_where_it_is_told(database):
    hashes = [r.hash for r in _append(database.app_url, [_event(i) for i in range(3)])]
    with psycopg.connect(database.app_url) as conn:
        rows = conn.execute(journal.chain._CANONICAL_SELECT, (0,)).fetchall()
    assert journal.check_rows(iter(rows)) == journal.Verification(True, 3, hashes[2])
    assert journal.check_rows(iter(rows[1:]), after_seq=1, after_hash=hashes[0]) == journal.Verification(
        True, 2, hashes[2])
    assert journal.check_rows(iter(rows[1:])) == journal.Verification(False, 0, journal.GENESIS.hex(), 1,
                                                                      "seq 1 is missing")
