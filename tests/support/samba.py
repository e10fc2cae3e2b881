"""A real Active Directory for tests: Samba's AD DC, provisioned in a temp dir once per session.

Samba serves LDAP on 389/636 only (smb.conf has no setting for the LDAP port), so the DC listens on 127.0.0.1:389
and a session holds /tmp/gatehouse-samba.lock while it runs: two test sessions on one machine take turns rather
than collide. Only the `ldap` service runs (no KDC, SMB, DNS): up in about 3 s after a 4-14 s provision.
Plain binds are allowed (`ldap server require strong auth = no`) as the slapd fixture allows them.

The 1,600-member group (AD answers `member` in ranges of 1,500) is a fixture of its own: its users are written
straight into sam.ldb by Samba's own Python bindings (/usr/bin/python3), about 3 times faster than over LDAP, and
only when a test asks for it.
"""

import contextlib
import dataclasses
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REALM, DOMAIN = "ACME.TEST", "ACME"
BASE = "DC=acme,DC=test"
STAFF = f"OU=Staff,{BASE}"
GROUPS = f"OU=Groups,{BASE}"
BULK = f"OU=Bulk,{BASE}"
ADMIN_DN, ADMIN_PW = f"CN=Administrator,CN=Users,{BASE}", "Passw0rd!Passw0rd"
URL = "ldap://127.0.0.1:389"
ENABLED, DISABLED = 0x220, 0x222  # NORMAL_ACCOUNT | PASSWD_NOTREQD, and ACCOUNTDISABLE (0x2) on top
BIG = 1600
LOCK = Path("/tmp/gatehouse-samba.lock")


def samba_missing() -> str | None:
    for tool in ("samba", "samba-tool"):
        if not shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin"):
            return f"{tool} not found: apt-get install samba samba-ad-dc samba-ad-provision"
    return None


@dataclasses.dataclass
class SambaDC:
    directory: Path
    process: subprocess.Popen

    @contextlib.contextmanager
    def connection(self):
        """Bound as Administrator; unbound (socket closed) at the end: ldap3's own `with` leaves it bound."""
        import ldap3
        conn = ldap3.Connection(ldap3.Server("127.0.0.1", port=389, get_info=ldap3.NONE), ADMIN_DN, ADMIN_PW,
                                auto_bind=True, raise_exceptions=True)
        try:
            yield conn
        finally:
            conn.unbind()

    def add_user(self, conn, name: str, *, ou: str = STAFF, disabled: bool = False, **attributes) -> str:
        dn = f"CN={name},{ou}"
        conn.add(dn, ["top", "person", "organizationalPerson", "user"],
                 {"sAMAccountName": name, "userAccountControl": DISABLED if disabled else ENABLED, **attributes})
        return dn

    def add_group(self, conn, name: str, members: list[str], *, ou: str = GROUPS) -> str:
        dn = f"CN={name},{ou}"
        conn.add(dn, ["top", "group"], {"sAMAccountName": name, **({"member": members} if members else {})})
        return dn

    def read(self, dn: str, *attributes: str) -> dict:
        import ldap3
        with self.connection() as conn:
            conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=list(attributes))
            return conn.response[0]["raw_attributes"]


def _wait_ldap(process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    import ldap3
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"samba exited {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", 389), timeout=1):
                pass
            conn = ldap3.Connection(ldap3.Server("127.0.0.1", port=389, get_info=ldap3.NONE), ADMIN_DN, ADMIN_PW)
            try:
                if conn.bind():
                    return
            finally:
                conn.unbind()
        except (OSError, ldap3.core.exceptions.LDAPException):
            pass
        time.sleep(0.2)
    raise AssertionError(f"samba's LDAP not up in {timeout}s: {log.read_text()[-2000:]}")


def _provision(directory: Path) -> Path:
    subprocess.run(["samba-tool", "domain", "provision", f"--targetdir={directory}", f"--realm={REALM}",
                    f"--domain={DOMAIN}", "--server-role=dc", "--dns-backend=NONE", f"--adminpass={ADMIN_PW}",
                    "--use-rfc2307", "--option=interfaces=lo", "--option=bind interfaces only=yes"],
                   check=True, capture_output=True, timeout=120)
    conf = directory / "etc" / "smb.conf"
    lines = [line for line in conf.read_text().splitlines()
             if not line.strip().startswith(("server services", "log file"))]
    at = lines.index("[global]") + 1
    lines[at:at] = ["\tserver services = ldap", "\tldap server require strong auth = no",
                    f"\tlog file = {directory}/log.%m"]
    conf.write_text("\n".join(lines) + "\n")
    return conf


@pytest.fixture(scope="session")
def samba_dc():
    """A provisioned, running Samba AD DC with OU=Staff and OU=Groups (empty); stopped at the session's end."""
    missing = samba_missing()
    if missing:
        pytest.fail(missing)  # never skip: tests/run installs samba
    if os.geteuid() != 0:
        pytest.fail("the Samba AD DC fixture needs root (samba binds 389)")
    with LOCK.open("a") as lock:
        deadline = time.monotonic() + 600
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, f"{LOCK} held for 10 minutes by another test session"
                time.sleep(1)
        directory = Path(tempfile.mkdtemp(prefix="gatehouse-samba-", dir="/tmp"))
        conf = _provision(directory)
        log = directory / "samba.out"
        with log.open("w") as out:
            process = subprocess.Popen(["samba", "-i", "-s", str(conf)], stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        try:
            _wait_ldap(process, log)
            dc = SambaDC(directory, process)
            with dc.connection() as conn:
                for ou in (STAFF, GROUPS):
                    conn.add(ou, "organizationalUnit")
            yield dc
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
            shutil.rmtree(directory, ignore_errors=True)


_BULK_SCRIPT = """
import sys
from samba.auth import system_session
from samba.param import LoadParm
from samba.samdb import SamDB
lp = LoadParm()
lp.load(sys.argv[1])
db = SamDB(url=sys.argv[2], session_info=system_session(), lp=lp)
db.transaction_start()
db.add_ldif(sys.stdin.read())
db.transaction_commit()
"""


@pytest.fixture(scope="session")
def samba_big_group(samba_dc) -> str:
    """OU=Bulk with BIG users, all direct members of CN=big (over AD's 1,500 values a range); its DN."""
    ldif = [f"dn: {BULK}\nobjectClass: organizationalUnit\n"]
    ldif += [f"dn: CN=bulk{i:04d},{BULK}\nobjectClass: user\nsAMAccountName: bulk{i:04d}\n"
             f"mail: bulk{i:04d}@corp.local\nuserAccountControl: {ENABLED}\n" for i in range(BIG)]
    ldif.append(f"dn: CN=big,{BULK}\nobjectClass: group\nsAMAccountName: big\n"
                + "".join(f"member: CN=bulk{i:04d},{BULK}\n" for i in range(BIG)))
    subprocess.run(["/usr/bin/python3", "-c", _BULK_SCRIPT, str(samba_dc.directory / "etc" / "smb.conf"),
                    str(samba_dc.directory / "private" / "sam.ldb")],
                   input="\n".join(ldif), text=True, check=True, capture_output=True, timeout=300)
    return f"CN=big,{BULK}"
