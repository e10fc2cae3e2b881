"""One name, one person: the login key (sql/013) for uniqueness and lookups; SCIM ownership between clients."""

import dataclasses

import psycopg
import pytest

from service.db import migrate
from service.errors import MigrationError
from tests.support.factories import rows
from tests.support.migrations import migrate_before
from tests.support.scim import USER, Scim, make_token, patch_op


def user(user_name: str, **extra) -> dict:
    return {"schemas": [USER], "userName": user_name, **extra}


@pytest.mark.parametrize("other", ["zoe", "ＺＯＥ", "Zoe ", " ZOE", "Zoe\u00a0"])
def test_names_that_are_one_name_are_one_person_409_uniqueness(scim, database, other):
    assert scim.post("Users", user("Zoe"))[0] == 201
    status, body, _ = scim.post("Users", user(other))
    assert (status, body["scimType"]) == (409, "uniqueness"), body
    assert rows(database, "SELECT user_name FROM people") == [("Zoe",)]  # stored as sent


def test_accents_are_not_folded_but_composition_is(scim, database):
    assert scim.post("Users", user("Zoe\u0301"))[0] == 201  # Zoé, decomposed
    assert scim.post("Users", user("Zo\u00e9"))[1]["scimType"] == "uniqueness"  # Zoé, precomposed: the same name
    assert scim.post("Users", user("Zoe"))[0] == 201  # without the accent: another name
    assert scim.post("Users", user("STRASSE"))[0] == 201
    assert scim.post("Users", user("straße"))[1]["scimType"] == "uniqueness"  # full case folding
    assert sorted(rows(database, "SELECT login_key FROM person_logins")) == [
        ("strasse",), ("zoe",), ("zo\u00e9",)]


def test_a_rename_to_another_persons_name_is_409_and_to_ones_own_variant_is_fine(scim, database):
    zoe = scim.post("Users", user("Zoe"))[1]["id"]
    ann = scim.post("Users", user("ann"))[1]["id"]
    status, body, _ = scim.patch(f"Users/{ann}", patch_op({"op": "replace", "path": "userName", "value": "ＺＯＥ"}))
    assert (status, body["scimType"]) == (409, "uniqueness")
    status, body, _ = scim.patch(f"Users/{zoe}", patch_op({"op": "replace", "path": "userName", "value": "zoe"}))
    assert (status, body["userName"]) == (200, "zoe")
    assert sorted(rows(database, "SELECT login_key, logins->>'userName' FROM person_logins")) == [
        ("ann", "ann"), ("zoe", "zoe")]


def test_an_access_check_names_the_person_by_any_variant_of_their_login(client, scim, database):
    rows(database, "INSERT INTO resources (key, name, kind) VALUES ('wiki', 'Wiki', 'tool') "
                         "ON CONFLICT (key) DO NOTHING RETURNING 1")
    scim.post("Users", user("Zoé"))
    with psycopg.connect(database.app_url) as conn:
        from service.access import store as grant_store
        grant_store.grant(conn, "Zoé", "wiki", by="test")
    gateway = {"Authorization": f"Bearer {make_token(database, 'gw', scopes=('access:check',))}"}
    for name in ("ZOÉ", "ｚｏé", "Zoe\u0301 "):
        answer = client.post("/api/v1/access/check", json={"user": name, "resource": "wiki"}, headers=gateway)
        assert answer.status_code == 200 and answer.json["allow"] is True, (name, answer.json)
    answer = client.post("/api/v1/access/check", json={"user": "Zoe", "resource": "wiki"}, headers=gateway)
    assert answer.json["allow"] is False


def test_013_stops_on_names_that_are_one_and_drops_nobody(empty_database, monkeypatch):
    migrate_before(empty_database, 13, monkeypatch)
    names = ["Zoe", "ＺＯＥ", "zoe ", "Zoé", "Zoe\u0301", "ann"]
    with psycopg.connect(empty_database.owner_url) as conn:
        for name in names:
            conn.execute("INSERT INTO people (user_name, source) VALUES (%s, 'manual')", (name,))
    with pytest.raises(MigrationError) as e:
        migrate.migrate(empty_database)
    message = str(e.value)
    del e  # its traceback holds the failed run's frames (and their connection) until collected
    assert "013_" in message and "migrate again; 2 clashes: " in message and "ann" not in message
    assert "zoe: Zoe (" in message and "ＺＯＥ (" in message and "zoe  (" in message
    assert "zoé: Zoé (" in message
    with psycopg.connect(empty_database.owner_url) as conn:
        assert conn.execute("SELECT count(*) FROM people").fetchone() == (len(names),)  # nobody dropped
        assert conn.execute("SELECT to_regclass('person_logins')").fetchone() == (None,)
        conn.execute("UPDATE people SET user_name = user_name || '-' || left(id::text, 4) WHERE user_name <> 'Zoe' "
                     "AND user_name <> 'Zoé' AND user_name <> 'ann'")
    assert 13 in [m.version for m in migrate.migrate(empty_database)]
    with psycopg.connect(empty_database.owner_url) as conn:
        assert conn.execute("SELECT count(*) FROM person_logins").fetchone() == (len(names),)


def test_with_ownership_on_a_client_changes_only_its_own_people(app, client, database, monkeypatch):
    from service import web

    okta, entra = Scim(client, make_token(database, "okta")), Scim(client, make_token(database, "entra"))
    mine = okta.post("Users", user("mine"))[1]["id"]
    theirs = entra.post("Users", user("theirs"))[1]["id"]
    with app.app_context():
        services = web.services()
    monkeypatch.setattr(services, "settings", dataclasses.replace(services.settings, scim_ownership=True))
    before = rows(database, "SELECT id::text, user_name, active, deleted_at, version FROM people ORDER BY 2")
    for status, body, _ in (
        okta.patch(f"Users/{theirs}", patch_op({"op": "replace", "path": "active", "value": False})),
        okta.put(f"Users/{theirs}", user("theirs", title="x")),
        okta.delete(f"Users/{theirs}"),
    ):
        assert status == 403 and body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"], body
    assert rows(database, "SELECT id::text, user_name, active, deleted_at, version FROM people ORDER BY 2") \
        == before
    assert okta.patch(f"Users/{mine}", patch_op({"op": "replace", "path": "title", "value": "ok"}))[0] == 200
    assert okta.get(f"Users/{theirs}")[0] == 200  # reading is not changing
    assert rows(database, "SELECT user_name, scim_owner FROM people ORDER BY 1") == [
        ("mine", "scim:okta"), ("theirs", "scim:entra")]
    # off (the default): anyone may
    monkeypatch.setattr(services, "settings", dataclasses.replace(services.settings, scim_ownership=False))
    assert okta.delete(f"Users/{theirs}")[0] == 204
