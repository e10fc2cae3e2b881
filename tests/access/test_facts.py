"""The facts query a check runs: the person it names is found by index, never by reading every person."""

import psycopg

from service.access import facts
from service.identity import people
from service.training import store as training_store


def _people_read(conn, query, params) -> int:
    """How many rows of people the query's plan read (returned or filtered away), as it ran."""
    plan = conn.execute(psycopg.sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) {}").format(query), params).fetchone()[0]
    read, todo = 0, [plan[0]["Plan"]]
    while todo:
        node = todo.pop()
        if node.get("Relation Name") == "people":
            read += (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * node["Actual Loops"]
        todo.extend(node.get("Plans", ()))
    return read


def _seed(conn) -> None:
    conn.execute("INSERT INTO people (user_name, primary_email, employee_number, source) "
                 "SELECT 'user' || i, 'user' || i || '@example.com', 'E' || i, 'manual' "
                 "FROM generate_series(1, 2000) i")
    conn.execute("ANALYZE people")
    conn.execute("ANALYZE person_logins")


def test_a_check_finds_its_person_by_index_through_every_identifier(database):
    with psycopg.connect(database.owner_url) as conn:
        _seed(conn)
        for identifiers in [("user_name",), ("user_name", "email"), people.IDENTIFIERS]:
            query = facts._load_facts(frozenset(identifiers))
            assert _people_read(conn, query, {"user": "USER42", "resource": "vpn"}) <= 4, identifiers
            loaded = facts.load_facts(conn, "USER42", "vpn", identifiers=identifiers)
            assert loaded.person_id == conn.execute("SELECT id::text FROM people WHERE user_name = 'user42'"
                                                    ).fetchone()[0]
        by_mail = facts.load_facts(conn, "User7@Example.com", "vpn", identifiers=("user_name", "email"))
        assert by_mail.person_id is not None and by_mail.facts.person is not None


def test_a_training_import_resolves_each_reference_by_index(database):
    with psycopg.connect(database.owner_url) as conn:
        _seed(conn)
        refs = ["user42", "E7", "user9@example.com"]
        assert _people_read(conn, training_store._RESOLVE, (refs,)) <= 4 * len(refs)
