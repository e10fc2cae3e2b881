"""Checking exported journal rows with no database: JSON Lines in, the chain's verdict out.

The rows are those of an export (`/admin/audit/journal.jsonl`, the SIEM pull, an evidence bundle): one JSON object
per row with every field as the hash covers it. Each is parsed, its reasons and detail printed back as jsonb text
(journal/jsonb.py), encoded canonically and hashed, and the chain's rule applied: the same check_rows that
`gatehouse journal verify` runs against the database.

`check_blocks` does the same over blocks of lines in a pool of processes: each block's rows are checked (hash,
seq and link between its own rows), then the joins between blocks here, in order, so the first problem is the
one a single pass would name, at the same place. A line written exactly as Gatehouse exports it is checked on
its bytes (its reasons and detail are already the jsonb text the hash covers, so nothing is re-printed); any
other line, or one whose hash does not match that way, goes the parsing way above, which decides.
"""

import dataclasses
import itertools
import os
import re
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from hashlib import sha256

from service.journal import jsonb
from service.journal.chain import FORMAT, GENESIS, Verification, canonical, check_rows

FIELDS = ("seq", "ts", "kind", "subject", "resource", "outcome", "reasons", "detail", "actor", "policy_version",
          "request_id", "prev_hash", "hash")


def fields(row: dict) -> tuple:
    """A parsed row as check_rows reads it: text fields in canonical order, then the hash."""
    return (str(row["seq"]), row["ts"], row["kind"], row["subject"], row["resource"], row["outcome"],
            jsonb.text(row["reasons"]), jsonb.text(row["detail"]), row["actor"], row["policy_version"],
            row["request_id"], row["prev_hash"], row["hash"])


def rows_of(lines: Iterable[str]) -> Iterator[tuple]:
    for line in lines:
        if line.strip():
            yield fields(jsonb.loads(line))


def check_lines(lines: Iterable[str], *, after_seq: int = 0, after_hash: str = GENESIS.hex()) -> Verification:
    """Verify JSON Lines rows in order, the first one following (after_seq, after_hash): a whole journal from the
    genesis by default, or a slice from the row before it."""
    return check_rows(rows_of(lines), after_seq=after_seq, after_hash=after_hash)


# --- the fast way: blocks of lines, checked on their bytes, in parallel ----------------------------------------

# A JSON string with no escape and no raw control character, captured without its quotes, or null (captured as
# None); a line with an escape in such a field goes the parsing way.
_S = rb'(?:null|"([^"\\\x00-\x1f]*)")'
# A line exactly as store.Entry.as_json writes it. Its reasons and detail are jsonb text, which never holds
# `,"detail":` or `,"actor":` (jsonb separates members with ", "), so those groups end where the export put the
# next key; whatever they hold, the hash decides (a line whose bytes do not hash right goes the parsing way).
_LINE = re.compile(
    rb'\{"seq":([1-9][0-9]*),"ts":"([0-9T:.Z-]*)","kind":' + _S + rb',"subject":' + _S + rb',"resource":' + _S
    + rb',"outcome":' + _S + rb',"reasons":([^,]*(?:,(?!"detail":)[^,]*)*),"detail":([^,]*(?:,(?!"actor":)[^,]*)*)'
    + rb',"actor":' + _S + rb',"policy_version":' + _S + rb',"request_id":' + _S
    + rb',"prev_hash":"([^"]{64})","hash":"([^"]{64})"\}\r?')  # the hashes are compared with hexdigests
_PREFIX = FORMAT.encode()
_ALL_TEXT = _PREFIX + b"|%d:%s" * 12  # the canonical encoding of twelve fields none of which is NULL


def _fast(line: bytes) -> tuple[int, str, str] | None:
    """(seq, prev_hash, hash) of a line in the export's exact form whose hash matches its bytes; else None."""
    m = _LINE.fullmatch(line)
    if m is None:
        return None
    values = m.groups()
    a, b, c, d, e, f, g, h, i, j, k, x = values[:12]
    if None in values:
        encoded = _PREFIX + b"".join([b"|-" if v is None else b"|%d:%s" % (len(v), v) for v in values[:12]])
    else:  # one format, not twelve
        encoded = _ALL_TEXT % (len(a), a, len(b), b, len(c), c, len(d), d, len(e), e, len(f), f, len(g), g,
                               len(h), h, len(i), i, len(j), j, len(k), k, len(x), x)
    if sha256(encoded).hexdigest().encode() != values[12]:
        return None
    return int(values[0]), values[11].decode(), values[12].decode()


def _slow(line: bytes) -> tuple:
    """The row as check_rows reads it, by parsing: raises ValueError, KeyError or TypeError if it is not a row."""
    row = fields(jsonb.loads(line.decode("utf-8")))
    int(row[0])
    return row


@dataclasses.dataclass(frozen=True)
class Problem:
    """The first thing wrong in a block: at `line` (of the whole input, from 1), after `rows` good rows of the
    block, `head` the hash of the last of them."""

    line: int
    rows: int
    head: str
    kind: str  # "row" (not a journal row), "anchor" (not the hash kept outside), "chain"
    seq: int | None
    text: str


@dataclasses.dataclass(frozen=True)
class Block:
    count: int
    first: tuple[int, str, str] | None  # (seq, prev_hash, hash) of its first row
    first_at: int  # the line of its first row
    last: tuple[int, str] | None  # (seq, hash) of the last good row
    problem: Problem | None


def check_block(data: bytes, first_line: int = 1, anchors: dict[int, str] | None = None,
                blank_ok: bool = True) -> Block:
    """Check one block of lines: every row's hash, and seq and prev_hash of each row but the first against the
    row before it (the first is joined to the block before by `_join`). An anchor (seq -> hash) must hold."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    anchors = anchors or {}
    count, first, first_at, prev_seq, prev_hash = 0, None, 0, 0, ""
    for n, line in enumerate(lines, first_line):
        if blank_ok and not line.strip():
            continue
        problem: tuple[str, int | None, str] | None = None
        got = _fast(line)
        if got is None:
            try:
                row = _slow(line)
            except (ValueError, KeyError, TypeError) as e:
                row, problem = None, ("row", None, f"line {n} is not a journal row ({e})")
            if row is not None:
                seq, prev, digest = int(row[0]), row[11], row[12]
                good = sha256(canonical(row[:12])).hexdigest() == digest
        else:
            (seq, prev, digest), good = got, True
        if problem:
            pass
        elif first is None:  # its seq and prev_hash are joined to the block before, its own checks come after
            first, first_at = (seq, prev, digest), n
        if problem:
            pass
        elif seq in anchors and anchors[seq] != digest:
            problem = ("anchor", seq, f"line {n}: seq {seq} has hash {digest}, but the anchor kept outside says "
                                      f"{anchors[seq]}")
        elif count and seq != prev_seq + 1:
            problem = ("chain", prev_seq + 1, f"seq {prev_seq + 1} is missing")
        elif count and prev != prev_hash:
            problem = ("chain", seq, "prev_hash does not match the previous row")
        elif not good:
            problem = ("chain", seq, "hash does not match the row's content")
        last = (prev_seq, prev_hash) if count else None
        if problem:
            return Block(count, first, first_at or n, last, Problem(n, count, prev_hash, *problem))
        count, prev_seq, prev_hash = count + 1, seq, digest
    return Block(count, first, first_at, (prev_seq, prev_hash) if count else None, None)


@dataclasses.dataclass(frozen=True)
class Checked:
    """The chain's verdict over all blocks, the first row's hash, the anchors seen, and where the first problem
    is (`line`, and `kind` as in Problem; `row` and `anchor` problems are not chain verdicts)."""

    result: Verification
    first_hash: str | None
    line: int | None = None
    kind: str | None = None
    text: str | None = None


def blocks_of(stream, size: int = 1 << 22) -> Iterator[bytes]:
    """A binary stream cut into blocks of about `size` bytes, each ending at a line's end."""
    rest = b""
    while chunk := stream.read(size):
        data = rest + chunk
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            rest = data
            continue
        rest = data[cut:]
        yield data[:cut]
    if rest:
        yield rest


def check_blocks(blocks: Iterable[bytes], *, after_seq: int = 0, after_hash: str = GENESIS.hex(),
                 anchors: dict[int, str] | None = None, workers: int | None = None,
                 blank_ok: bool = True) -> Checked:
    """check_rows over the lines of `blocks` in order, the blocks checked in `workers` processes (the CPUs this
    process may use by default; a single block is checked here), at most two blocks per worker in flight."""
    workers = workers or len(os.sched_getaffinity(0))
    anchors = anchors or {}
    state: dict = {"seq": after_seq, "hash": after_hash, "count": 0, "first": None}
    numbered = _numbered(blocks)
    started = list(itertools.islice(numbered, 2))
    if len(started) < 2 or workers < 2:
        for data, line in itertools.chain(started, numbered):
            if done := _join(state, check_block(data, line, anchors, blank_ok)):
                return done
        return _ok(state)
    with ProcessPoolExecutor(workers) as pool:
        pending: deque[Future] = deque()
        for data, line in started:
            pending.append(pool.submit(check_block, data, line, anchors, blank_ok))
        for data, line in numbered:
            while len(pending) >= 2 * workers:
                if done := _join(state, pending.popleft().result()):
                    _cancel(pending)
                    return done
            pending.append(pool.submit(check_block, data, line, anchors, blank_ok))
        while pending:
            if done := _join(state, pending.popleft().result()):
                _cancel(pending)
                return done
    return _ok(state)


def _numbered(blocks: Iterable[bytes]) -> Iterator[tuple[bytes, int]]:
    """Each block with the number of its first line."""
    line = 1
    for data in blocks:
        yield data, line
        line += data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def _cancel(pending: deque) -> None:
    for f in pending:
        f.cancel()


def _ok(state: dict) -> Checked:
    return Checked(Verification(True, state["count"], state["hash"]), state["first"])


def _join(state: dict, block: Block) -> Checked | None:
    """Add a block's verdict to the whole: its first row joined to the last one before it, then its own problem.
    A Checked when the chain stops here, else None."""
    p = block.problem
    if p and p.rows == 0 and p.kind in ("row", "anchor"):  # found before the row's links are looked at
        return _bad(state, p)
    if block.first is not None:
        seq, prev, _ = block.first
        if seq != state["seq"] + 1:
            return _bad(state, Problem(block.first_at, 0, state["hash"], "chain", state["seq"] + 1,
                                       f"seq {state['seq'] + 1} is missing"))
        if prev != state["hash"]:
            return _bad(state, Problem(block.first_at, 0, state["hash"], "chain", seq,
                                       "prev_hash does not match the previous row"))
        if state["first"] is None:
            state["first"] = block.first[2]
    if p:
        return _bad(state, p)
    if block.last is not None:
        state["seq"], state["hash"] = block.last
    state["count"] += block.count
    return None


def _bad(state: dict, p: Problem) -> Checked:
    head = p.head if p.rows else state["hash"]
    count = state["count"] + p.rows
    return Checked(Verification(False, count, head, p.seq, p.text), state["first"], p.line or None, p.kind, p.text)


def check_file(path: str, *, after_seq: int = 0, after_hash: str = GENESIS.hex(),
               workers: int | None = None) -> Verification:
    """check_lines over a JSON Lines file, in parallel blocks."""
    with open(path, "rb") as f:
        return check_blocks(blocks_of(f), after_seq=after_seq, after_hash=after_hash, workers=workers).result
