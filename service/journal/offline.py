"""Checking exported journal rows with no database: JSON Lines in, the chain's verdict out.

The rows are those of an export (`/admin/audit/journal.jsonl`, the SIEM pull, an evidence bundle): one JSON object
per row with every field as the hash covers it. Each is parsed, its reasons and detail printed back as jsonb text
(journal/jsonb.py), encoded canonically and hashed, and the chain's rule applied: the same check_rows that
`gatehouse journal verify` runs against the database.
"""

from collections.abc import Iterable, Iterator

from service.journal import jsonb
from service.journal.chain import GENESIS, Verification, check_rows

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
