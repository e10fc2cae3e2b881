"""A real slapd with a generated directory, and the settings that point Gatehouse at it."""

import dataclasses

import pytest

from tests.support.ldapserver import GROUPS, PEOPLE, READER_DN, READER_PW, LdapServer, directory_ldif, slapd_missing

COUNT = 120


@pytest.fixture
def ldap(tmp_path):
    missing = slapd_missing()
    if missing:
        pytest.fail(missing)  # never skip: CI installs slapd and ldap-utils
    with LdapServer.start(tmp_path, size_limit=50) as server:
        server.add(directory_ldif(COUNT))
        yield server


def ldap_settings(settings, server, **changes):
    return dataclasses.replace(settings, **{
        "ldap_url": (server.url,), "ldap_bind_dn": READER_DN, "ldap_bind_password": READER_PW,
        "ldap_user_base": PEOPLE, "ldap_group_base": GROUPS, "ldap_allow_plaintext": True, "ldap_page_size": 40,
        **changes})


def ldap_env(server, **extra) -> dict:
    return {"GATEHOUSE_LDAP_URL": server.url, "GATEHOUSE_LDAP_BIND_DN": READER_DN,
            "GATEHOUSE_LDAP_BIND_PASSWORD": READER_PW, "GATEHOUSE_LDAP_USER_BASE": PEOPLE,
            "GATEHOUSE_LDAP_GROUP_BASE": GROUPS, "GATEHOUSE_LDAP_ALLOW_PLAINTEXT": "true",
            "GATEHOUSE_LDAP_PAGE_SIZE": "40", **extra}


