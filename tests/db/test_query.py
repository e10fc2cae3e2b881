"""Reading the one row a query always answers: none is a bug raised as one, never a None read as a value."""

import pytest

from service import db
from service.db.query import one, required, scalar


def test_the_row_and_its_first_column(database):
    with db.connect(database.app_url, timeout=5) as conn:
        assert one(conn, "SELECT 1, 'two'") == (1, "two")
        assert scalar(conn, "SELECT count(*) FROM people WHERE user_name = %s", ("nobody",)) == 0


def test_a_query_that_answers_no_row_raises_instead_of_answering_none(database):
    with db.connect(database.app_url, timeout=5) as conn:
        with pytest.raises(LookupError, match="expected one row"):
            scalar(conn, "SELECT id FROM people WHERE false")


def test_a_value_just_produced_that_is_missing_raises():
    assert required(0, "zero") == 0  # falsy is present: only None is missing
    with pytest.raises(LookupError, match="the receipt is missing"):
        required(None, "the receipt")
