"""A throwaway OpenLDAP slapd for tests: its own cn=config, mdb database and port on 127.0.0.1.

Debian 12's slapd 2.5 ships no ppolicy schema file; loading the ppolicy module
registers pwdAccountLockedTime, which the OpenLDAP preset reads as "disabled".
The root DN is exempt from size limits, so tests read as READER (limited) and
BLIND (an account that sees nothing under ou=people or ou=groups).
"""

import base64
import datetime
import hashlib
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.net import free_port

BASE = "dc=example,dc=com"
PEOPLE = f"ou=people,{BASE}"
GROUPS = f"ou=groups,{BASE}"
ROOT_DN, ROOT_PW = f"cn=admin,{BASE}", "root-secret"
READER_DN, READER_PW = f"cn=reader,ou=system,{BASE}", "reader-secret"
BLIND_DN, BLIND_PW = f"cn=blind,ou=system,{BASE}", "blind-secret"
SEARCH_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

DEFAULT_ACCESS = (
    "to attrs=userPassword by anonymous auth by * none",
    f'to dn.children="{PEOPLE}" by dn.exact="{BLIND_DN}" none by users read',
    f'to dn.children="{GROUPS}" by dn.exact="{BLIND_DN}" none by users read',
    "to * by users read by anonymous auth",
)


def slapd_missing() -> str | None:
    """Why a slapd server cannot be started here, or None when it can."""
    for tool in ("slapd", "slapadd", "ldapadd", "ldapmodify", "ldapdelete"):
        if not shutil.which(tool, path=SEARCH_PATH):
            return f"{tool} not found: apt-get install slapd ldap-utils"
    return None


def ssha(password: str) -> str:
    """An RFC 2307-style {SSHA} hash, as slappasswd makes."""
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def write_certificates(directory: Path, names: tuple[str, ...] = ("localhost", "127.0.0.1")) -> None:
    """A throwaway CA (ca.pem) and a server certificate for `names` (server.pem, server.key) in directory."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def cert(subject, key, issuer, issuer_key, *extensions):
        now = datetime.datetime.now(datetime.UTC)
        builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=2)))
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert("gatehouse test CA", ca_key, "gatehouse test CA", ca_key,
              (x509.BasicConstraints(ca=True, path_length=None), True))
    alt = [x509.IPAddress(ipaddress.ip_address(n)) if n[0].isdigit() else x509.DNSName(n) for n in names]
    server = cert(names[0], key, "gatehouse test CA", ca_key, (x509.SubjectAlternativeName(alt), False))
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "server.pem").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    (directory / "server.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def config_ldif(directory: Path, *, size_limit: str, paged_total: str, access: tuple[str, ...],
                limits: tuple[str, ...]) -> str:
    """The cn=config of one throwaway server."""
    schemas = "".join(f"include: file:///etc/ldap/schema/{n}.ldif\n\n"
                      for n in ("core", "cosine", "nis", "inetorgperson"))
    rules = "".join(f"olcLimits: {x}\n" for x in limits) + "".join(f"olcAccess: {a}\n" for a in access)
    return f"""dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {directory}/slapd.pid
olcTLSCACertificateFile: {directory}/ca.pem
olcTLSCertificateFile: {directory}/server.pem
olcTLSCertificateKeyFile: {directory}/server.key

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
olcModuleLoad: memberof
olcModuleLoad: refint
olcModuleLoad: ppolicy

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

{schemas}dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend
olcSizeLimit: size.soft={size_limit} size.hard={size_limit} size.prtotal={paged_total}

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcDbDirectory: {directory}/data
olcSuffix: {BASE}
olcRootDN: {ROOT_DN}
olcRootPW: {ssha(ROOT_PW)}
olcDbMaxSize: 4294967296
olcDbIndex: objectClass eq
olcDbIndex: entryUUID eq
olcDbIndex: member,uniqueMember,memberOf eq
olcSizeLimit: size.soft={size_limit} size.hard={size_limit} size.prtotal={paged_total}
{rules}
dn: olcOverlay={{0}}memberof,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {{0}}memberof
olcMemberOfRefInt: TRUE
olcMemberOfGroupOC: groupOfNames
olcMemberOfMemberAD: member
olcMemberOfMemberOfAD: memberOf

dn: olcOverlay={{1}}refint,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcRefintConfig
olcOverlay: {{1}}refint
olcRefintAttribute: member uniqueMember manager
"""


@dataclass
class LdapServer:
    """One slapd process and its directories; start with LdapServer.start(tmp_path)."""

    directory: Path
    port: int
    tls_port: int
    process: subprocess.Popen | None = field(default=None, repr=False)
    base_dn: str = BASE
    root_dn: str = ROOT_DN
    root_pw: str = field(default=ROOT_PW, repr=False)

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    @property
    def ca_file(self) -> str:
        """The CA that signed the server's certificate (for ldaps:// and StartTLS)."""
        return str(self.directory / "ca.pem")

    @classmethod
    def start(cls, tmp_path: Path, *, size_limit: int | str = 50, paged_total: int | str = "unlimited",
              access: tuple[str, ...] = DEFAULT_ACCESS,
              limits: tuple[str, ...] = ()) -> "LdapServer":
        """Build a cn=config under tmp_path, start slapd and wait until it answers."""
        # size_limit: entries per search for all but the root DN; paged_total: entries per paged search
        # (size.prtotal, which slapd otherwise caps at size_limit); access, limits: olcAccess, olcLimits lines.
        missing = slapd_missing()
        if missing:
            raise RuntimeError(missing)
        directory = Path(tempfile.mkdtemp(prefix="slapd-", dir=tmp_path))
        (directory / "config").mkdir()
        (directory / "data").mkdir()
        (directory / "config.ldif").write_text(
            config_ldif(directory, size_limit=str(size_limit), paged_total=str(paged_total), access=access,
                        limits=limits))
        (directory / "rootpw").write_text(ROOT_PW)
        write_certificates(directory)
        _run("slapadd", "-n0", "-F", str(directory / "config"), "-l", str(directory / "config.ldif"))
        for attempt in range(3):  # another process may take a free port before slapd binds it
            server = cls(directory=directory, port=free_port(), tls_port=free_port())
            try:
                server.run()
                return server
            except RuntimeError:
                if attempt == 2:
                    raise

    def run(self) -> None:
        """Start (or restart) slapd on this server's port and wait until it accepts connections."""
        if self.process is not None:
            return
        with open(self.directory / "slapd.log", "ab") as log:
            self.process = subprocess.Popen(
                [shutil.which("slapd", path=SEARCH_PATH), "-d", "0", "-h", f"{self.url}/ {self.ldaps_url}/",
                 "-F", str(self.directory / "config")], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                raise RuntimeError(f"slapd exited: {(self.directory / 'slapd.log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError("slapd did not answer within 10 s")

    def stop(self) -> None:
        """Stop slapd cleanly (SIGTERM, then wait); a no-op when it is not running."""
        if self.process is None:
            return
        process, self.process = self.process, None
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> "LdapServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _client(self, tool: str, *args: str, ldif: str | None = None) -> None:
        _run(tool, "-x", "-H", self.url, "-D", self.root_dn, "-y", str(self.directory / "rootpw"), *args,
             stdin=ldif)

    def add(self, ldif_text: str) -> None:
        """Add entries online (overlays run, so memberOf is maintained)."""
        self._client("ldapadd", ldif=ldif_text)

    def modify(self, ldif_text: str) -> None:
        """Apply an LDIF of changetype records online."""
        self._client("ldapmodify", ldif=ldif_text)

    def delete(self, dn: str) -> None:
        """Delete one entry online."""
        self._client("ldapdelete", dn)

    def dns(self, search_filter: str) -> list[str]:
        """The DNs of the entries under the base that match an LDAP filter."""
        out = _run("ldapsearch", "-x", "-LLL", "-o", "ldif-wrap=no", "-H", self.url, "-D", self.root_dn,
                   "-y", str(self.directory / "rootpw"), "-b", BASE, search_filter, "1.1")
        return [line[4:] for line in out.splitlines() if line.startswith("dn: ")]

    def wait_until_none(self, search_filter: str, timeout: float = 10) -> None:
        """Wait for background overlay work (refint rewrites references after a rename, asynchronously)."""
        deadline = time.monotonic() + timeout
        while self.dns(search_filter):
            if time.monotonic() > deadline:
                raise AssertionError(f"entries still match {search_filter} after {timeout}s")
            time.sleep(0.05)

    def load_offline(self, ldif_path: Path) -> None:
        """Bulk-load with slapadd -q (fast; overlays do not run, so no memberOf), restarting slapd."""
        was_running = self.process is not None
        self.stop()
        _run("slapadd", "-q", "-n1", "-F", str(self.directory / "config"), "-l", str(ldif_path))
        if was_running:
            self.run()


def _run(tool: str, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run([shutil.which(tool, path=SEARCH_PATH), *args], input=stdin, capture_output=True,
                          text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout


def person_ldif(i: int, *, manager: int | None = None, disabled: bool = False) -> str:
    """One inetOrgPerson uid=userNNN with every attribute the OpenLDAP preset maps."""
    lines = [f"dn: uid=user{i:03d},{PEOPLE}", "objectClass: inetOrgPerson", f"uid: user{i:03d}",
             f"cn: Given{i} Family{i}", f"givenName: Given{i}", f"sn: Family{i}", f"displayName: Person {i}",
             f"mail: user{i:03d}@example.com", f"employeeNumber: E{i:05d}", f"departmentNumber: dept{i % 3}",
             f"title: Title {i}"]
    if manager is not None:
        lines.append(f"manager: uid=user{manager:03d},{PEOPLE}")
    if disabled:
        lines.append("pwdAccountLockedTime: 000001010000Z")
    return "\n".join(lines) + "\n"


def group_ldif(name: str, members: list[str], *, unique: bool = False) -> str:
    """A groupOfNames (member) or groupOfUniqueNames (uniqueMember) under ou=groups."""
    oc, attr = ("groupOfUniqueNames", "uniqueMember") if unique else ("groupOfNames", "member")
    return "\n".join([f"dn: cn={name},{GROUPS}", f"objectClass: {oc}", f"cn: {name}",
                      *(f"{attr}: {m}" for m in members)]) + "\n"


def user_dn(i: int) -> str:
    return f"uid=user{i:03d},{PEOPLE}"


def group_dn(name: str) -> str:
    return f"cn={name},{GROUPS}"


def directory_ldif(people: int = 120) -> str:
    """The test directory: base, ou=people, ou=groups, ou=system (READER, BLIND), people and groups."""
    # People user000..: user i (i % 10 != 0) reports to user i // 10 * 10; user i with i % 7 == 3 is
    # disabled. Groups: g1 = {user001, g2}, g2 = {user002, g1} (a cycle), g3 = {user003, g1},
    # u1 (groupOfUniqueNames) = {user004, g3}, big = everyone.
    head = [f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n",
            f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n",
            f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n",
            f"dn: ou=system,{BASE}\nobjectClass: organizationalUnit\nou: system\n"]
    for dn, pw in ((READER_DN, READER_PW), (BLIND_DN, BLIND_PW)):
        cn = dn.split(",")[0][3:]
        head.append(f"dn: {dn}\nobjectClass: person\ncn: {cn}\nsn: {cn}\nuserPassword: {ssha(pw)}\n")
    persons = [person_ldif(i, manager=None if i % 10 == 0 else i // 10 * 10, disabled=i % 7 == 3)
               for i in range(people)]
    groups = [group_ldif("g1", [user_dn(1), group_dn("g2")]), group_ldif("g2", [user_dn(2), group_dn("g1")]),
              group_ldif("g3", [user_dn(3), group_dn("g1")]),
              group_ldif("u1", [user_dn(4), group_dn("g3")], unique=True),
              group_ldif("big", [user_dn(i) for i in range(people)])]
    # Forward references (g1 -> g2) are fine: slapd does not check member values exist.
    return "\n".join(head + persons + groups)
