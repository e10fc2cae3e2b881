"""Fixtures of the review tests: the SMTP server and the review world (tests/support/reviews.py)."""

import pytest

from tests.support.reviews import world_for


@pytest.fixture
def world(settings, database, smtp, tmp_path):
    w = world_for(settings, database, smtp, tmp_path)
    yield w
    w.services.close()
