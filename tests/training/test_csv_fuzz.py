"""Hypothesis against the CSV training import: a file refused in one clear line, or each line's own result; a line
that is not imported writes nothing, and the only rows written are those of the lines reported accepted."""

import csv
import io
from datetime import timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from service.bootstrap import load_policy
from service.config import Settings
from service.errors import BadRequest
from service.training import plan as planning
from service.training import sweep as training
from service.training.cli import COLUMNS, read_csv
from tests.support.factories import COURSE, add_person, now

DAY = (now() - timedelta(days=2)).isoformat()
_NOISE = st.one_of(
    st.sampled_from(["", " ", "\ufeff", "yesterday", "2024-05-01T10:00:00", (now() + timedelta(days=3)).isoformat()]),
    st.text(max_size=12),
    st.text(alphabet="\x00\r\n\",;'\t\\\u2028\ud800 x", max_size=6),
)
_GOOD = {"person": st.sampled_from(["alice", "ALICE@example.com", "E-7", "nobody"]),
         "course": st.sampled_from([COURSE, COURSE, "knitting"]), "completed_at": st.just(DAY),
         "source_id": st.integers(1, 5).map(lambda n: f"r{n}"), "source": st.sampled_from(["lms", ""])}


@st.composite
def csv_files(draw) -> bytes:
    """A CSV export, mostly well formed (so that lines reach the database), with noise in fields and bytes."""
    header = list(draw(st.permutations([*COLUMNS, "source"])))[:draw(st.integers(4, 5))]
    if draw(st.integers(0, 4)) == 0:
        header = draw(st.lists(st.sampled_from([*COLUMNS, "source", "user", "", "person"]), max_size=6))
    rows = []
    for _ in range(draw(st.integers(0, 8))):
        row = [draw(_NOISE if draw(st.integers(0, 5)) == 0 else _GOOD.get(c, _NOISE)) for c in header]
        if draw(st.integers(0, 5)) == 0:  # a field short or too many
            row = row[:-1] if draw(st.booleans()) else [*row, draw(_NOISE)]
        rows.append(row)
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    text = out.getvalue()
    if draw(st.integers(0, 3)) == 0:  # a hand-made line: stray quotes, separators, a NUL
        text += draw(st.text(alphabet="alice,\"\x00\r\n;", max_size=30))
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:  # bytes that are no UTF-8
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] + draw(st.binary(min_size=1, max_size=4)) + data[cut:]
    return data


def _counts(database) -> tuple[int, int]:
    with psycopg.connect(database.owner_url) as conn:
        return (conn.execute("SELECT count(*) FROM training_completions").fetchone()[0],
                conn.execute("SELECT count(*) FROM journal").fetchone()[0])


@pytest.mark.slow
def test_a_csv_file_is_refused_clearly_or_imported_line_by_line(database, tmp_path):
    add_person(database, "alice", email="alice@example.com", employee="E-7")
    policy = load_policy(Settings().policy_file)
    path = tmp_path / "fuzz.csv"
    seen = set()

    @settings(max_examples=100, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(csv_files())
    # Each outcome at least once whatever the draw (the assertion after the run stays a check of the generator's
    # reach, and cannot fail by chance): accepted, unknown person, invalid line, refused file.
    @example(f"person,course,completed_at,source_id\nalice,{COURSE},{DAY},r9\n".encode())
    @example(f"person,course,completed_at,source_id\nnobody,{COURSE},{DAY},r8\n".encode())
    @example(f"person,course,completed_at,source_id\nalice,{COURSE},yesterday,r7\n".encode())
    @example(b"user\nalice\n")
    def one_file(data):
        path.write_bytes(data)
        before = _counts(database)
        try:
            lines = read_csv(path, "csv:fuzz.csv")
        except BadRequest as e:  # the whole file refused: one line, naming the file, nothing written
            assert str(e.message).count("\n") == 0 and str(path) in e.message
            assert _counts(database) == before
            seen.add("refused")
            return
        good = [raw for _, raw in lines if isinstance(raw, dict)]
        assert all(isinstance(raw, str) and raw for _, raw in lines if not isinstance(raw, dict))
        with psycopg.connect(database.app_url, autocommit=True) as conn:
            results = training.record_completions(conn, good, policy=policy, now=now(), actor="operator:test")
        assert [r.index for r in results] == list(range(len(good)))
        assert all(r.status in planning.STATUSES for r in results)
        accepted = sum(r.status == planning.ACCEPTED for r in results)
        completions, journal = _counts(database)
        assert completions - before[0] == accepted  # nothing written for a line not imported
        if not accepted:
            assert journal == before[1]
        seen.update(r.status for r in results)

    one_file()
    assert {"refused", planning.ACCEPTED, planning.INVALID, planning.UNKNOWN_PERSON} <= seen, seen
