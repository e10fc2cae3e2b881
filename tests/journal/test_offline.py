"""The offline check in parallel blocks: the same verdict, at the same place, as the single pass over the lines,
whatever the tampering and wherever the cut between blocks falls."""

import psycopg
import pytest

from service.audit import export, store
from service.audit.store import Search
from service.journal import offline
from tests.support.audit import odd_rows

ROWS = 120


@pytest.fixture
def lines(database) -> list[bytes]:
    odd_rows(database, ROWS)
    with psycopg.connect(database.app_url) as conn:
        with conn.transaction():
            data = b"".join(export.jsonl(store.stream(conn, Search())))
    return data.splitlines(keepends=True)


def _blocks(lines: list[bytes], every: int) -> list[bytes]:
    return [b"".join(lines[i:i + every]) for i in range(0, len(lines), every)]


def _swap(lines, i):
    lines[i], lines[i + 1] = lines[i + 1], lines[i]
    return lines


CHANGES = {
    "none": lambda ls: ls,
    "a byte in a row": lambda ls: [*ls[:30], ls[30].replace(b'"allow"', b'"alloW"'), *ls[31:]],
    "a byte in the first row of a block": lambda ls: [*ls[:40], ls[40].replace(b'"req-41"', b'"req-4l"'), *ls[41:]],
    "a row removed at a cut": lambda ls: ls[:40] + ls[41:],
    "a row removed inside a block": lambda ls: ls[:45] + ls[46:],
    "rows reordered across a cut": lambda ls: _swap(list(ls), 39),
    "rows reordered inside a block": lambda ls: _swap(list(ls), 50),
    "not a row": lambda ls: [*ls[:60], b"{not json\n", *ls[61:]],
    "a prev_hash changed at a cut": lambda ls: [*ls[:80], ls[80].replace(b'"prev_hash":"', b'"prev_hash":"0', 1)
                                                .replace(b'","hash"', b'","hash"', 1), *ls[81:]],
    "re-serialized with spaces (the parsing way)": lambda ls: [*ls[:10], ls[10].replace(b'","kind":', b'", "kind": '),
                                                               *ls[11:]],
}


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize("workers", [1, 2])
def test_blocks_give_the_single_passs_verdict_at_its_place(lines, change, workers):
    changed = CHANGES[change](list(lines))
    assert change == "none" or changed != lines
    parallel = offline.check_blocks(_blocks(changed, 20), workers=workers)
    if change == "not a row":  # the single pass raises there; the blocks name the line
        with pytest.raises(ValueError):
            offline.check_lines(line.decode() for line in changed)
        assert (parallel.kind, parallel.line, parallel.result.count, parallel.result.ok) == ("row", 61, 60, False)
        assert parallel.text.startswith("line 61 is not a journal row")
        return
    single = offline.check_lines(line.decode() for line in changed)
    assert parallel.result == single, change
    assert (change in ("none", "re-serialized with spaces (the parsing way)")) == single.ok
    if not single.ok:  # the line where the single pass stopped: the one after the rows it passed
        assert parallel.line == single.count + 1, change


def test_every_line_of_a_real_export_takes_the_fast_way_and_a_tampered_one_does_not(lines):
    fast = [line for line in lines if offline._fast(line.rstrip(b"\n"))]  # else the speed is the parsing way's
    assert [line for line in lines if line not in fast] == [line for line in lines if b'"actor":"admin:' in line]
    assert len(fast) > 100
    assert offline._fast(lines[3].replace(b'"req-4"', b'"req-5"').rstrip(b"\n")) is None


def test_a_file_checked_in_a_pool_and_cut_anywhere(lines, tmp_path):
    path = tmp_path / "journal.jsonl"
    path.write_bytes(b"".join(lines))
    assert offline.check_file(str(path), workers=2) == offline.check_lines(path.read_text().splitlines())
    with open(path, "rb") as f:
        cut = list(offline.blocks_of(f, size=1000))
    assert len(cut) > 10 and all(b.endswith(b"\n") for b in cut) and b"".join(cut) == path.read_bytes()
    with open(path, "rb") as f:
        assert offline.check_blocks(offline.blocks_of(f, size=1000), workers=2).result.count == ROWS


def test_the_lines_postgresql_builds_are_the_entries_json_byte_for_byte(database):
    odd_rows(database, ROWS)
    with psycopg.connect(database.app_url) as conn, conn.transaction():
        entries = [e.as_json() for e in store.stream(conn, Search())]
        built = [line for rows in store.stream_lines(conn, Search(), chunk=7) for _, _, line in rows]
        assert b"".join(export.jsonl_lines(store.stream_lines(conn, Search(outcome="deny")))) == b"".join(
            export.jsonl(store.stream(conn, Search(outcome="deny"))))
    assert len(built) == ROWS and built == entries


def test_the_copy_path_gives_the_same_bytes_as_the_lines(database):
    odd_rows(database, ROWS)
    with psycopg.connect(database.app_url) as conn, conn.transaction():
        lines = b"".join(export.jsonl_lines(store.stream_lines(conn, Search())))
        copied = list(store.copy_lines(conn, Search(), every=2000))
        denied = b"".join(store.copy_lines(conn, Search(outcome="deny")))
        assert denied == b"".join(export.jsonl_lines(store.stream_lines(conn, Search(outcome="deny"))))
    assert len(copied) > 5 and b"".join(copied) == lines and b"\\\\" in lines  # escapes survive COPY's doubling
