"""Fixtures of the review tests: the SMTP server and the review world (tests/reviews/support.py)."""

import pytest

from tests.reviews.support import world_for
from tests.smtpserver import smtp  # noqa: F401  (a fixture)


@pytest.fixture
def world(settings, database, smtp, tmp_path):  # noqa: F811
    w = world_for(settings, database, smtp, tmp_path)
    yield w
    w.services.close()
