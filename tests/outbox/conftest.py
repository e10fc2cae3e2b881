import pytest

from tests.support.outbox import outbox_services
from tests.support.scimtool import TOKEN, ScimTool


@pytest.fixture
def make_services(settings, database):
    built = []

    def make(targets):
        built.append(outbox_services(settings, database, targets))
        return built[-1]

    yield make
    for s in built:
        s.close()


@pytest.fixture
def tool(monkeypatch):
    """The downstream tool: a real scim2-server, its token in GH_SCIM_TOKEN."""
    monkeypatch.setenv("GH_SCIM_TOKEN", TOKEN)
    server = ScimTool().start()
    yield server
    server.stop()


