"""A real OpenVPN server (Debian's openvpn) with its management interface, and real clients connected to it.

The server runs in TCP server mode on 127.0.0.1 with a tun device it never configures (ifconfig-noexec,
route-noexec: the host's network is left alone); clients use `dev null`. Certificates come from a throwaway CA
made here; each client's certificate carries the person's userName as its common name. A client exits when its
session is ended (remap-usr1 SIGTERM) instead of reconnecting, so a killed session stays gone.
"""

import datetime
import shutil
import subprocess
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.net import free_port

OPENVPN = shutil.which("openvpn") or "/usr/sbin/openvpn"


class OpenVpn:
    def __init__(self, directory: Path, *, password: str | None = None):
        self.dir, self.password = directory, password
        self.port, self.management_port = free_port(), free_port()
        self.url = f"tcp://127.0.0.1:{self.management_port}"
        self.procs: list[subprocess.Popen] = []
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        self._ca = self._cert("gatehouse test ca", self._ca_key, None, None)
        (self.dir / "ca.pem").write_bytes(self._ca.public_bytes(serialization.Encoding.PEM))

    def start(self) -> "OpenVpn":
        assert Path(OPENVPN).exists(), "Debian's openvpn is not installed (bash tests/run installs it)"
        self._keypair("server", ExtendedKeyUsageOID.SERVER_AUTH)
        management = f"management 127.0.0.1 {self.management_port}"
        if self.password:
            (self.dir / "management.pw").write_text(self.password + "\n")
            management += " management.pw"
        (self.dir / "server.conf").write_text("\n".join([
            "mode server", "tls-server", "dev tun", "topology subnet", "server 10.203.0.0 255.255.255.0",
            "disable-dco", "ifconfig-noexec", "route-noexec", "proto tcp-server", "local 127.0.0.1",
            f"port {self.port}", "ca ca.pem", "cert server.pem", "key server.key", "dh none", management,
            "verb 3", ""]))
        self._run("server", "server.conf")
        self._wait_log("server", "Initialization Sequence Completed")
        return self

    def connect(self, common_name: str) -> subprocess.Popen:
        """A client with a certificate for common_name, connected (its session is up) when this returns."""
        self._keypair(common_name, ExtendedKeyUsageOID.CLIENT_AUTH)
        (self.dir / f"{common_name}.conf").write_text("\n".join([
            "client", "dev null", "proto tcp-client", f"remote 127.0.0.1 {self.port}", "ca ca.pem",
            f"cert {common_name}.pem", f"key {common_name}.key", "ifconfig-noexec", "route-noexec",
            "remap-usr1 SIGTERM", "connect-retry-max 1", "verb 3", ""]))
        proc = self._run(common_name, f"{common_name}.conf")
        self._wait_log(common_name, "Initialization Sequence Completed")
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)

    def _run(self, name: str, config: str) -> subprocess.Popen:
        log = (self.dir / f"{name}.log").open("w")
        proc = subprocess.Popen([OPENVPN, "--config", config], cwd=self.dir, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs.append(proc)
        return proc

    def _wait_log(self, name: str, text: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        log = self.dir / f"{name}.log"
        while text not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)

    def _keypair(self, common_name: str, usage) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._cert(common_name, key, self._ca_key, usage)
        (self.dir / f"{common_name}.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        (self.dir / f"{common_name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def _cert(self, common_name: str, key, issuer_key, usage) -> x509.Certificate:
        now = datetime.datetime.now(datetime.UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        ca = issuer_key is None
        builder = (x509.CertificateBuilder().subject_name(subject)
                   .issuer_name(subject if ca else self._ca.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=ca, crl_sign=ca,
                                                content_commitment=False, key_encipherment=False,
                                                data_encipherment=False, key_agreement=not ca, encipher_only=False,
                                                decipher_only=False), critical=True))
        if usage is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        return builder.sign(key if ca else issuer_key, hashes.SHA256())
