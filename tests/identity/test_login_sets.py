"""person_logins_set (sql/032) does for many people what person_login_set (sql/018) does for one, and new people
get their userName's login from one statement-level trigger: the same rows, the same refusals."""

import psycopg
import pytest


def _logins(conn) -> list[tuple]:
    return conn.execute("SELECT login_key, person_id::text, logins FROM person_logins ORDER BY login_key").fetchall()


def _people(conn, *names) -> list[str]:
    return [conn.execute("INSERT INTO people (user_name, source) VALUES (%s, 'ldap') RETURNING id::text",
                         (n,)).fetchone()[0] for n in names]


CASES = [  # (person index, login): new logins, one already so, a case change of the same key, one removed
    [(0, "ann.uid"), (1, "bob.uid"), (2, "carl")],
    [(0, "ann.uid"), (1, "BOB.uid"), (2, None)],
    [(0, "Ann2"), (1, None), (2, "carl.uid")],
]


def test_a_set_of_logins_leaves_the_rows_one_call_per_person_leaves(database):
    outcomes = []
    for one_by_one in (True, False):
        with psycopg.connect(database.owner_url) as conn:
            ids = _people(conn, "ann", "bob", "carl")
            for case in CASES:
                if one_by_one:
                    for i, login in case:
                        conn.execute("SELECT person_login_set(%s, 'ldap', %s)", (ids[i], login))
                else:
                    conn.execute("SELECT person_logins_set(%s::uuid[], 'ldap', %s::text[])",
                                 ([ids[i] for i, _ in case], [login for _, login in case]))
                outcomes.append([(key, ids.index(who), logins) for key, who, logins in _logins(conn)])
            conn.rollback()
    assert outcomes[:3] == outcomes[3:]
    assert outcomes[2] == [("ann", 0, {"userName": "ann"}), ("ann2", 0, {"ldap": "Ann2"}),
                           ("bob", 1, {"userName": "bob"}), ("carl", 2, {"userName": "carl"}),
                           ("carl.uid", 2, {"ldap": "carl.uid"})]


@pytest.mark.parametrize("logins", [["bob", "x"], ["same", "SAME"]], ids=["another person's", "two at once"])
def test_a_login_that_would_name_two_people_is_refused_and_changes_nothing(database, logins):
    with psycopg.connect(database.owner_url) as conn:
        ids = _people(conn, "ann", "bob")
        conn.commit()
        before = _logins(conn)
        with pytest.raises(psycopg.errors.UniqueViolation) as raised:
            conn.execute("SELECT person_logins_set(%s::uuid[], 'ldap', %s::text[])", (ids, logins))
        assert raised.value.diag.constraint_name == "person_logins_pkey"
        conn.rollback()
        assert _logins(conn) == before


def test_people_added_in_one_statement_each_get_their_username_login_and_a_clash_refuses_them_all(database):
    with psycopg.connect(database.owner_url) as conn:
        conn.execute("INSERT INTO people (user_name, source) SELECT 'user' || i, 'ldap' FROM generate_series(1, 300) i")
        assert conn.execute("SELECT count(*) FROM person_logins l JOIN people p ON p.id = l.person_id "
                            "WHERE l.login_key = p.user_name AND l.logins = jsonb_build_object('userName', p.user_name)"
                            ).fetchone()[0] == 300
        conn.commit()
        with pytest.raises(psycopg.errors.UniqueViolation) as raised:  # ＵＳＥＲ7 has user7's key
            conn.execute("INSERT INTO people (user_name, source) VALUES ('new1', 'ldap'), ('ＵＳＥＲ7', 'ldap')")
        assert raised.value.diag.constraint_name == "person_logins_pkey"
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM people").fetchone()[0] == 300
        assert conn.execute("SELECT count(*) FROM person_logins").fetchone()[0] == 300
