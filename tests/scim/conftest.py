"""The `scim` fixture: a SCIM client as Okta, on the app under test."""

import pytest

from tests.support.scim import Scim, make_token


@pytest.fixture
def scim(client, database) -> Scim:
    return Scim(client, make_token(database, "okta"))
