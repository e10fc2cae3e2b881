"""jsonb's text form, reproduced in Python: for any JSON value, PostgreSQL's `::text` and ours are the same bytes."""

import json

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.journal import jsonb

_TEXT = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=12)
_SCALARS = st.none() | st.booleans() | st.integers(-10**20, 10**20) | _TEXT
VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
                      max_leaves=20)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=VALUES)
def test_our_text_is_postgresqls_text(database, value):
    with psycopg.connect(database.app_url) as conn:
        theirs = conn.execute("SELECT %s::jsonb::text", (json.dumps(value),)).fetchone()[0]
    assert jsonb.text(value) == theirs
    assert jsonb.text(jsonb.loads(theirs)) == theirs  # parsed back (numbers as text) and printed: the same bytes


def test_numbers_keep_the_text_postgresql_stored(database):
    with psycopg.connect(database.app_url) as conn:
        for sent in ('{"n": 1.50}', '{"n": 1e3}', '{"n": -0.0}', '[100000000000000000000000000001, 2.5E-3]',
                     '{"bb": 1, "a": {"ccc": [], "dd": {}}, "é": "\\u0001 \\"q\\""}'):
            stored = conn.execute("SELECT %s::jsonb::text", (sent,)).fetchone()[0]
            assert jsonb.text(jsonb.loads(stored)) == stored
