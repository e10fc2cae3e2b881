"""connectors.ldap against a real OpenLDAP slapd (tests/support/ldapserver.py), and the AD-only mapping."""

import logging
import re
import signal
import time
import uuid
from dataclasses import replace

import pytest

from connectors.ldap import (
    AD_MAPPING,
    LdapAuthError,
    LdapConfig,
    LdapConfigError,
    LdapIncomplete,
    LdapUnavailable,
    Mapping,
    _members_by_recursion,
    _person,
    ad_preset,
    normalize_dn,
    openldap_preset,
    read_directory,
)
from tests.support.ldapserver import (
    BLIND_DN,
    BLIND_PW,
    GROUPS,
    PEOPLE,
    READER_DN,
    READER_PW,
    LdapServer,
    directory_ldif,
    group_dn,
    slapd_missing,
    user_dn,
    write_certificates,
)

PEOPLE_COUNT, SIZE_LIMIT = 120, 50
DISABLED = {f"user{i:03d}" for i in range(PEOPLE_COUNT) if i % 7 == 3}


def start_server(tmp_path, **options) -> LdapServer:
    missing = slapd_missing()
    if missing:
        pytest.fail(missing)  # never skip: CI installs slapd and ldap-utils
    server = LdapServer.start(tmp_path, size_limit=SIZE_LIMIT, **options)
    server.add(directory_ldif(PEOPLE_COUNT))
    return server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with start_server(tmp_path_factory.mktemp("ldap")) as running:
        yield running


def config(server: LdapServer, **options) -> LdapConfig:
    settings = {"urls": server.url, "bind_dn": READER_DN, "bind_password": READER_PW, "user_base": PEOPLE,
                "group_base": GROUPS, "allow_plaintext_bind": True, "page_size": 40, **options}
    return openldap_preset(**settings)


def by_name(snapshot):
    return {p.user_name: p for p in snapshot.people}


def test_paged_read_returns_everything_past_the_server_size_limit(server):
    snapshot = read_directory(config(server, page_size=40))
    assert len(snapshot.people) == PEOPLE_COUNT > SIZE_LIMIT > 40
    assert len({p.key for p in snapshot.people}) == PEOPLE_COUNT
    assert snapshot.complete is True
    assert snapshot.pages == 3 + 1  # 120 people in pages of 40, then the groups
    assert snapshot.entries_read == PEOPLE_COUNT + 5


def test_unpaged_read_over_the_size_limit_raises_instead_of_a_short_list(server):
    with pytest.raises(LdapIncomplete, match="sizeLimitExceeded"):
        read_directory(config(server, page_size=0))


def test_a_paged_run_cut_short_by_the_server_raises(tmp_path):
    with start_server(tmp_path, paged_total=60) as capped:  # the server stops paging after 60 entries
        pages = []
        with pytest.raises(LdapIncomplete, match="sizeLimitExceeded"):
            read_directory(config(capped, page_size=50), on_page=pages.append)
        assert pages == [50]


def test_every_attribute_is_mapped(server):
    people = by_name(read_directory(config(server)))
    p = people["user017"]
    assert (p.dn, p.user_name, p.given_name, p.family_name, p.display_name, p.email, p.employee_number,
            p.department, p.title) == (user_dn(17), "user017", "Given17", "Family17", "Person 17",
                                       "user017@example.com", "E00017", "dept2", "Title 17")
    assert p.manager_dn == user_dn(10) and people["user010"].manager_dn is None
    assert uuid.UUID(p.key) and re.fullmatch(r"\d{14}Z", p.modified)
    assert {n for n, q in people.items() if q.disabled} == DISABLED
    assert set(people["user001"].member_of) == {group_dn("g1"), group_dn("big")}  # memberOf overlay, direct only


def test_nested_groups_resolve_transitively_through_a_cycle(server):
    groups = {g.name: g for g in read_directory(config(server)).groups}
    assert groups["g1"].member_dns == (user_dn(1), group_dn("g2"))
    assert groups["g1"].members == groups["g2"].members == (user_dn(1), user_dn(2))  # g1 -> g2 -> g1
    assert groups["g3"].members == (user_dn(1), user_dn(2), user_dn(3))
    assert groups["u1"].member_dns == (user_dn(4), group_dn("g3"))  # groupOfUniqueNames holding a groupOfNames
    assert groups["u1"].members == tuple(user_dn(i) for i in (1, 2, 3, 4))
    assert len(groups["big"].members) == PEOPLE_COUNT


def test_recursion_visits_each_group_once_and_each_person_once():
    given = {"cn=a": ("cn=b", "uid=x"), "cn=b": ("CN=A", "cn=c", "uid=x"), "cn=c": ("cn=a", "UID=X", "uid=y")}
    direct = {group: [(normalize_dn(m), m) for m in members] for group, members in given.items()}
    assert _members_by_recursion("cn=b", direct) == ("uid=x", "uid=y")


def test_incremental_read_returns_only_what_changed_and_the_high_water_mark(server):
    full = read_directory(config(server))
    while time.strftime("%Y%m%d%H%M%SZ", time.gmtime()) <= full.high_water:
        time.sleep(0.05)  # modifyTimestamp has one-second resolution
    since = time.strftime("%Y%m%d%H%M%SZ", time.gmtime())
    server.modify("".join(f"dn: {user_dn(i)}\nchangetype: modify\nreplace: title\ntitle: Moved {i}\n\n"
                          for i in (60, 61)))
    delta = read_directory(config(server), since=since)
    assert [(p.user_name, p.title) for p in delta.people] == [("user060", "Moved 60"), ("user061", "Moved 61")]
    assert delta.complete is False and delta.high_water >= since
    assert delta.high_water == max(p.modified for p in delta.people)
    assert len(delta.groups) == 5  # groups are always read whole: nesting can change without touching a group
    later = read_directory(config(server), since="29991231235959Z")
    assert later.people == () and later.high_water == "29991231235959Z"


def test_bad_bind_is_an_auth_error_without_the_password(server, caplog):
    caplog.set_level(logging.DEBUG)
    read_directory(config(server))
    assert READER_PW not in caplog.text and "ldap read: 120 people" in caplog.text
    with pytest.raises(LdapAuthError, match="invalidCredentials") as caught:
        read_directory(config(server, bind_password="not-the-password"))
    assert "not-the-password" not in str(caught.value)
    assert READER_PW not in repr(config(server))


def test_stopped_server_is_unavailable(tmp_path):
    down = start_server(tmp_path)
    down.stop()
    with pytest.raises(LdapUnavailable, match="Connection refused"):
        read_directory(config(down))


def test_server_going_away_mid_read_is_unavailable(tmp_path):
    with start_server(tmp_path) as going:
        with pytest.raises(LdapUnavailable):
            read_directory(config(going, page_size=10), on_page=lambda n: going.stop())


def test_a_server_that_stops_answering_times_out_as_unavailable(tmp_path):
    with start_server(tmp_path) as hung:
        hung.process.send_signal(signal.SIGSTOP)  # the kernel still accepts connections; nothing answers
        try:
            started = time.monotonic()
            with pytest.raises(LdapUnavailable):
                read_directory(config(hung, receive_timeout=1))
            assert time.monotonic() - started < 5
        finally:
            hung.process.send_signal(signal.SIGCONT)


def test_second_url_is_used_when_the_first_does_not_answer(server, tmp_path):
    dead = LdapServer.start(tmp_path)
    dead.stop()
    snapshot = read_directory(config(server, urls=(dead.url, server.url)))
    assert len(snapshot.people) == PEOPLE_COUNT


def test_plaintext_bind_is_refused_unless_allowed(server):
    with pytest.raises(LdapConfigError, match="unencrypted"):
        config(server, allow_plaintext_bind=False)
    assert len(read_directory(config(server, allow_plaintext_bind=True)).people) == PEOPLE_COUNT


def test_ldaps_and_start_tls_check_the_certificate(server, tmp_path):
    tls = config(server, allow_plaintext_bind=False, start_tls=True, ca_file=server.ca_file)
    assert len(read_directory(tls).people) == PEOPLE_COUNT
    assert len(read_directory(replace(tls, urls=(server.ldaps_url,), start_tls=False)).people) == PEOPLE_COUNT
    write_certificates(tmp_path)  # another CA, which did not sign the server's certificate
    with pytest.raises(LdapUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        read_directory(replace(tls, ca_file=str(tmp_path / "ca.pem")))
    with pytest.raises(LdapUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        read_directory(replace(tls, urls=(server.ldaps_url,), start_tls=False, ca_file=str(tmp_path / "ca.pem")))


def test_an_account_that_sees_nothing_gives_an_empty_snapshot_the_caller_can_tell(server):
    snapshot = read_directory(config(server, bind_dn=BLIND_DN, bind_password=BLIND_PW))
    assert snapshot.people == () and snapshot.groups == ()
    assert snapshot.entries_read == 0 and snapshot.pages == 2  # both bases answered, with nothing in them


def test_a_base_that_does_not_exist_is_a_config_error(server):
    with pytest.raises(LdapConfigError, match="noSuchObject"):
        read_directory(config(server, user_base="ou=nobody,dc=example,dc=com"))


@pytest.mark.parametrize("options, why", [
    ({"urls": ("http://x",)}, "ldap://"), ({"urls": ("ldaps:///",)}, "ldap://"), ({"urls": ()}, "ldap://"),
    ({"urls": ("ldaps://x",), "start_tls": True}, "start_tls"),
    ({"bind_password": ""}, "unauthenticated"), ({"flavor": "novell"}, "flavor"),
    ({"user_filter": "objectClass=person"}, "parenthesized"), ({"page_size": -1}, "page_size")])
def test_unusable_settings_are_refused(options, why):
    settings = {"urls": ("ldaps://ldap.example.com",), "bind_dn": "cn=x", "bind_password": "pw", "user_base": "o=x"}
    with pytest.raises(LdapConfigError, match=why):
        LdapConfig(**{**settings, **options})


def test_ad_preset_and_mapping_of_an_ad_entry():
    ad = ad_preset("ldaps://dc1.example.com", bind_dn="CN=svc,DC=example,DC=com", bind_password="pw",
                   user_base="OU=Staff,DC=example,DC=com", user_name="userPrincipalName")
    assert ad.flavor == "ad" and ad.mapping.key == "objectGUID" and ad.mapping.user_name == "userPrincipalName"
    assert ad.user_filter == "(&(objectCategory=person)(objectClass=user))"
    guid = uuid.UUID("b9e0c5d8-1f2a-4c3b-9d4e-5f6a7b8c9d0e")
    attrs = {"objectguid": [guid.bytes_le], "samaccountname": [b"ada"], "useraccountcontrol": [b"514"],
             "usnchanged": [b"90210"], "manager": [b"CN=Boss,OU=Staff,DC=example,DC=com"],
             "department": ["Gr\u00fcn".encode()]}
    person = _person(("CN=Ada,OU=Staff,DC=example,DC=com", attrs), AD_MAPPING)
    assert person.key == str(guid)  # AD stores the GUID's first three fields little-endian
    assert (person.user_name, person.disabled, person.modified) == ("ada", True, "90210")
    assert person.department == "Gr\u00fcn"
    assert person.manager_dn == "CN=Boss,OU=Staff,DC=example,DC=com"
    attrs["useraccountcontrol"] = [b"512"]
    assert _person(("CN=Ada", attrs), AD_MAPPING).disabled is False


def test_disabled_by_a_configured_value():
    mapping = Mapping(disabled="employeeType", disabled_value="disabled")
    attrs = {"entryuuid": [b"k"], "uid": [b"u"], "employeetype": [b"staff", b"Disabled"]}
    assert _person(("uid=u", attrs), mapping).disabled is True
    assert _person(("uid=u", {**attrs, "employeetype": [b"staff"]}), mapping).disabled is False


def test_entries_without_the_key_are_refused_not_skipped():
    with pytest.raises(LdapIncomplete, match="entryUUID"):
        _person(("uid=u", {"uid": [b"u"]}), Mapping())


def test_normalize_dn():
    assert normalize_dn(" UID=Ada , OU=People,dc=Example ") == "uid=ada,ou=people,dc=example"


def test_a_deleted_person_is_gone_from_the_next_full_read_and_from_its_groups(tmp_path):
    with start_server(tmp_path) as changing:
        changing.delete(user_dn(1))
        snapshot = read_directory(config(changing))
    assert "user001" not in by_name(snapshot) and len(snapshot.people) == PEOPLE_COUNT - 1
    groups = {g.name: g for g in snapshot.groups}
    assert groups["g1"].members == (user_dn(2),)  # refint removed the member value
    assert user_dn(1) not in groups["big"].member_dns


def test_an_offline_bulk_load_reads_back_whole(tmp_path):
    missing = slapd_missing()
    if missing:
        pytest.fail(missing)
    ldif = tmp_path / "bulk.ldif"
    ldif.write_text(directory_ldif(1000))
    with LdapServer.start(tmp_path, size_limit=SIZE_LIMIT) as bulk:
        bulk.load_offline(ldif)
        snapshot = read_directory(config(bulk, page_size=500))
    assert len(snapshot.people) == 1000 and snapshot.pages == 2 + 1
    assert all(p.key and p.modified for p in snapshot.people)  # slapadd adds entryUUID and modifyTimestamp
    assert {p.member_of for p in snapshot.people} == {()}  # overlays do not run offline
