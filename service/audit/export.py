"""Journal rows as CSV or JSON Lines, produced as a stream: a million rows in the memory of one chunk.

Each row carries its prev_hash and hash, so whoever receives a JSON Lines export can re-check the chain (the
README's recipe, `gatehouse journal verify`'s rule) without trusting the server that sent it.
"""

import csv
import io
from collections.abc import Iterable, Iterator

from service.audit.store import COLUMNS, Entry

FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/jsonl; charset=utf-8"}
_FORMULA = ("=", "+", "-", "@", "\t", "\r", "'")


def jsonl(entries: Iterable[Entry], *, every: int = 500) -> Iterator[bytes]:
    """One JSON object per line, keys in the journal's column order."""
    buffer = []
    for e in entries:
        buffer.append(e.as_json())
        if len(buffer) >= every:
            yield ("\n".join(buffer) + "\n").encode()
            buffer.clear()
    if buffer:
        yield ("\n".join(buffer) + "\n").encode()


def jsonl_lines(chunks: Iterable[list[tuple]]) -> Iterator[bytes]:
    """jsonl() of store.stream_lines' chunks: the lines PostgreSQL built, joined (the same bytes)."""
    for rows in chunks:
        yield ("\n".join([r[2] for r in rows]) + "\n").encode()


def csv_rows(entries: Iterable[Entry], *, every: int = 500) -> Iterator[bytes]:
    """A header, then a line per row; reasons and detail as JSON text.

    A cell a spreadsheet would run as a formula (= + - @ tab CR first) gets a leading quote (OWASP's CSV-injection
    rule), and so does a cell that already starts with a quote, so the rule reverses without doubt: drop one
    leading quote from any cell that has one. CSV is for reading (an empty cell is NULL or empty text); verify a
    chain from JSON Lines, which keeps every value as the hash took it.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    n = 0
    for e in entries:
        writer.writerow(_cell(v) for v in e.canonical_fields())
        n += 1
        if n % every == 0:
            yield out.getvalue().encode()
            out.seek(0)
            out.truncate()
    yield out.getvalue().encode()


def _cell(value: str | None) -> str:
    if value is None:
        return ""
    return "'" + value if value.startswith(_FORMULA) else value
