"""Full LDAP sync of 100,000 people vs a bare ldap3 paged read of the same entries (and ldapsearch, for context).

    python bench/ldap_sync.py [--people N] [--page-size P]

One run, one machine: slapd is loaded offline (slapadd -q), then the bare
ldap3 read (the floor for the client library the sync uses), ldapsearch (the C
client), a full Gatehouse sync into an empty database, the bare read again,
and an incremental sync of 100 changed entries. Printed last: sync time /
bare ldap3 time (mean of the two bare reads).
"""

import argparse
import gc
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._pg import bench_database  # noqa: E402
from bench._result import bench_result  # noqa: E402
from connectors.ldap import Mapping, _person_attrs  # noqa: E402
from service import bootstrap
from service.config import Settings  # noqa: E402
from service.directory import sync as ldapsync
from tests.support.ldapserver import (  # noqa: E402
    BASE,
    BLIND_DN,
    GROUPS,
    PEOPLE,
    READER_DN,
    READER_PW,
    SEARCH_PATH,
    LdapServer,
    group_dn,
    group_ldif,
    person_ldif,
    ssha,
    user_dn,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import ldap3

TEAM = 100  # people per team group; ten department groups nest the teams
GROUP_ATTRS = ["entryUUID", "cn", "member", "uniqueMember"]


def directory(people: int) -> str:
    """People (with managers, some disabled), one team group each, departments nesting the teams."""
    head = [f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n",
            f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n",
            f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n",
            f"dn: ou=system,{BASE}\nobjectClass: organizationalUnit\nou: system\n"]
    for dn in (READER_DN, BLIND_DN):
        cn = dn.split(",")[0][3:]
        head.append(f"dn: {dn}\nobjectClass: person\ncn: {cn}\nsn: {cn}\nuserPassword: {ssha(READER_PW)}\n")
    persons = [person_ldif(i, manager=None if i % 10 == 0 else i // 10 * 10, disabled=i % 97 == 3)
               for i in range(people)]
    teams = [f"team{t:04d}" for t in range((people + TEAM - 1) // TEAM)]
    groups = [group_ldif(t, [user_dn(i) for i in range(n * TEAM, min(people, (n + 1) * TEAM))])
              for n, t in enumerate(teams)]
    groups += [group_ldif(f"dept{d}", [group_dn(t) for t in teams[d::10]]) for d in range(min(10, len(teams)))]
    return "\n".join(head + persons + groups)


def bare_read(server: LdapServer, page_size: int) -> int:
    """A paged search of the same entries and attributes the sync reads, doing nothing with them."""
    conn = ldap3.Connection(ldap3.Server("127.0.0.1", port=server.port, get_info=ldap3.NONE), READER_DN, READER_PW,
                            auto_bind=True, read_only=True)
    entries = 0
    for base, search_filter, attrs in ((PEOPLE, "(objectClass=inetOrgPerson)", _person_attrs(Mapping())),
                                       (GROUPS, "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))",
                                        GROUP_ATTRS)):
        cookie = None
        while True:
            conn.search(base, search_filter, attributes=attrs, paged_size=page_size, paged_cookie=cookie)
            entries += sum(r["type"] == "searchResEntry" for r in conn.response)
            cookie = conn.result["controls"]["1.2.840.113556.1.4.319"]["value"]["cookie"]
            if not cookie:
                break
    conn.unbind()
    return entries


def ldapsearch(server: LdapServer, page_size: int) -> None:
    tool = shutil.which("ldapsearch", path=SEARCH_PATH)
    for base, search_filter, attrs in ((PEOPLE, "(objectClass=inetOrgPerson)", _person_attrs(Mapping())),
                                       (GROUPS, "(objectClass=groupOfNames)", GROUP_ATTRS)):
        subprocess.run([tool, "-x", "-LLL", "-H", server.url, "-D", READER_DN, "-w", READER_PW, "-b", base,
                        "-E", f"pr={page_size}/noprompt", search_filter, *attrs], check=True,
                       stdout=subprocess.DEVNULL)


def timed(what, *args, **kwargs):
    started = time.perf_counter()
    result = what(*args, **kwargs)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=1000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gatehouse-bench-ldap-", dir="/tmp"))
    (work / "directory.ldif").write_text(directory(args.people))
    with LdapServer.start(work, size_limit=args.page_size) as server, bench_database("gatehouse_bench_ldap") as (db, _):
        load, _ = timed(server.load_offline, work / "directory.ldif")
        print(f"slapadd -q of {args.people:,} people: {load:.1f} s")
        # slapadd stamps thousands of entries with each second; the high-water mark is inclusive (one-second
        # resolution), so make one entry the newest, as in a live directory, before the full sync.
        time.sleep(1.05 - time.time() % 1)
        server.modify(f"dn: {user_dn(args.people - 1)}\nchangetype: modify\nreplace: description\ndescription: x\n")
        settings = Settings(database_url=db.app_url, database_owner_url=db.owner_url, data_dir=work,
                            log_level="WARNING", ldap_url=(server.url,), ldap_bind_dn=READER_DN,
                            ldap_bind_password=READER_PW, ldap_user_base=PEOPLE, ldap_group_base=GROUPS,
                            ldap_allow_plaintext=True, ldap_page_size=args.page_size)
        services = bootstrap.build(settings, db)
        try:
            report(server, services, args)
        finally:
            services.close()
    shutil.rmtree(work, ignore_errors=True)


def report(server: LdapServer, services, args) -> None:
    bare1, entries = timed(bare_read, server, args.page_size)
    print(f"(b) bare ldap3 paged read: {entries:,} entries in {bare1:.2f} s")
    c, _ = timed(ldapsearch, server, args.page_size)
    print(f"(c) ldapsearch (C client):  {c:.2f} s")
    full = sync(services, "(a) full Gatehouse sync into an empty database", full=True)
    bare2, _ = timed(bare_read, server, args.page_size)
    print(f"(b) bare ldap3 paged read again: {bare2:.2f} s")
    again = sync(services, "full re-sync, nothing changed (the nightly run)", full=True)
    time.sleep(1.05 - time.time() % 1)  # modifyTimestamp has one-second resolution
    server.modify("".join(f"dn: {user_dn(i)}\nchangetype: modify\nreplace: title\ntitle: Moved {i}\n\n"
                          for i in range(0, args.people, max(1, args.people // 100))[:100]))
    sync(services, "incremental sync, 100 changed entries (target <= 2 s)", full=False)
    bare = (bare1 + bare2) / 2
    print(f"full re-sync with nothing changed / bare ldap3 read: {again / bare:.2f}")
    bench_result(f"LDAP full sync, {args.people:,} people", ours=f"{full:.2f} s",
                 baseline=f"{bare:.2f} s bare ldap3 read", ratio=full / bare, target="ratio <= 1.5",
                 met=full / bare <= 1.5)
    print(f"ratio full sync / bare ldap3 read: {full / bare:.2f} (target <= 1.5)")


def sync(services, label: str, *, full: bool) -> float:
    """Time one run; drop its result (a 100,000-person plan) so later reads do not pay for GC passes over it."""
    seconds, result = timed(ldapsync.run_sync, services, full=full)
    print(f"{label}: {seconds:.2f} s ({result.state}: {result.message})")
    print("    phases: " + ", ".join(f"{k} {v:.2f} s" for k, v in result.seconds.items()))
    del result
    gc.collect()
    return seconds


if __name__ == "__main__":
    main()
