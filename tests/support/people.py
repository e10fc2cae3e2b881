"""A small staff for the people pages: written as the schema owner, as a source would leave them."""

from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.types.json import Json

from service.auth import store as auth_store


def sql(database, query, params=()):
    with psycopg.connect(database.owner_url) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else None


def person(database, user_name, email, **fields):
    columns = {"user_name": user_name, "primary_email": email, "emails": Json([{"value": email, "primary": True}]),
               "source": "manual", **fields}
    names = ", ".join(columns)
    marks = ", ".join(["%s"] * len(columns))
    return sql(database, f"INSERT INTO people ({names}) VALUES ({marks}) RETURNING id::text",
                tuple(columns.values()))[0][0]


def seed_staff(database) -> dict:
    """hana (hr), ivo (in engineering, a VPN grant, training lapsing in 10 days; LDAP + SCIM), jon (a leaver)."""
    ids = {"hana": person(database, "hana", "hana@example.com", given_name="Hana", family_name="Ito",
                           department="People")}
    ids["ivo"] = person(database, "ivo.petrov", "ivo@example.com", display_name="Ivo Petrov", employee_number="E-7731",
                         department="Engineering", manager_id=ids["hana"], source="ldap",
                         attribute_sources=Json({"department": "ldap", "emails": "scim:okta"}))
    ids["jon"] = person(database, "jon", "jon@example.com", active=False, deleted_at=datetime.now(UTC))
    sql(database, "INSERT INTO person_roles (person_id, role, granted_by) VALUES (%s, 'hr', 'test')", (ids["hana"],))
    sql(database, "INSERT INTO person_external_ids (person_id, source, external_id) VALUES (%s, 'ldap', 'uid=ivo'), "
                   "(%s, 'scim:okta', '00u-ivo')", (ids["ivo"], ids["ivo"]))
    sql(database, "SELECT person_login_set(%s, 'ldap', 'ivo')", (ids["ivo"],))  # his uid; Okta set the userName
    sql(database, "INSERT INTO resources (key, name, kind) VALUES ('vpn', 'Corporate VPN', 'vpn') "
                   "ON CONFLICT (key) DO NOTHING")
    sql(database, "INSERT INTO grants (person_id, resource_id, state, granted_by) "
                   "SELECT %s, id, 'active', 'admin:ada@example.com' FROM resources WHERE key = 'vpn'", (ids["ivo"],))
    done = datetime.now(UTC) - timedelta(days=365 + 14 - 10)  # validity 365 + grace 14: lapses in 10 days
    sql(database, "INSERT INTO training_completions (person_id, course, completed_at, source, source_id) "
                   "VALUES (%s, 'security-awareness', %s, 'lms', 'c-1')", (ids["ivo"], done))
    sql(database, "INSERT INTO groups (display_name, source) VALUES ('vpn-users', 'ldap')")
    sql(database, "INSERT INTO group_members (group_id, person_id) SELECT id, %s FROM groups", (ids["ivo"],))
    return ids


def session_for(web, database, person_id) -> str:
    """Sign a person in as OIDC does (a web_sessions row, its cookie); their CSRF token."""
    with psycopg.connect(database.app_url) as conn:
        token = auth_store.create_session(conn, lifetime=600, person_id=person_id)
        csrf = auth_store.load_session(conn, token)[0]
    web.set_cookie("gatehouse_session", token, domain="localhost")
    return csrf
