"""The journal: append-only in the database, one gapless linear chain, verifiable."""

import hashlib
import multiprocessing
import threading

import psycopg
import pytest

from service import journal
from service.errors import DatabaseUnavailable
from service.journal import Event, JournalWriter

from .conftest import db_env, gatehouse


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
    for before, after in zip(rows, rows[1:]):
        assert after[1] == before[2]
    with psycopg.connect(database.app_url) as conn:
        first = conn.execute(journal._CANONICAL_SELECT, (0,)).fetchone()
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
    with pytest.raises(DatabaseUnavailable):
        writer.record(_event())
    writer.close()


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
    assert {name for name, definer, _ in found if definer} == {"journal_chain", "journal_advance"}
    for name, _, config in found:
        assert config == ["search_path=pg_catalog, public, pg_temp"], name
    with psycopg.connect(database.app_url) as conn:  # public is searched, so only the owner may create there
        assert conn.execute("SELECT has_schema_privilege('public', 'CREATE')").fetchone() == (False,)
