"""End a revoked person's live VPN sessions: OpenVPN's management interface, or a configured command.

A revocation already denies the next connect (the gateway asks Gatehouse, deploy/vpn/client-connect.sh); these
targets end the sessions that are up. An enable needs nothing: a restored person connects again when they want.

OpenVPN (`management HOST PORT [pwfile]` in the server's config): `kill <common name>` ends every session of that
certificate name ("not found" = none was up = done); the re-read is `status 3`, whose CLIENT_LIST lines must no
longer name them. The name goes into a line of the management protocol, which splits on spaces and quotes, so
only names of `[A-Za-z0-9._@+-]` (the client-connect hook's rule) are sent; any other is refused, never quoted.

A command (any gateway with a CLI): run `argv + [user name]` directly, without a shell, with an empty
environment but PATH; exit 0 = ended. It cannot be re-read, so its exit status is its confirmation.
"""

import re
import socket
import subprocess
import urllib.parse

from connectors.outbound import DISABLE, Account, DeliveryError, Outcome

SAFE_NAME = re.compile(r"[A-Za-z0-9._@+-]{1,128}")
NOTHING = Outcome(None, {"vpn": "nothing to restore: the person connects again when allowed"})


def _name(account: Account) -> str:
    name = account.user_name or ""
    if not SAFE_NAME.fullmatch(name):
        raise DeliveryError(f"userName {name!r} is not a name a VPN session can be ended by "
                            "(letters, digits and ._@+- only)", permanent=True)
    return name


class OpenVpnTarget:
    def __init__(self, url: str, *, password: str | None = None, timeout: float = 10):
        self.url, self.password, self.timeout = url, password, timeout

    def apply(self, op: str, account: Account, *, idempotency_key: str) -> Outcome:
        if op != DISABLE:
            return NOTHING
        name = _name(account)
        with _Management(self.url, self.password, self.timeout) as m:
            answer = m.command(f"kill {name}")
        if answer.startswith("SUCCESS:"):
            return Outcome(None, {"vpn": "killed", "answer": answer})
        if "not found" in answer:
            return Outcome(None, {"vpn": "no session", "answer": answer})
        raise DeliveryError(f"openvpn kill {name}: {answer}")

    def verify(self, op: str, account: Account) -> Outcome | None:
        if op != DISABLE:
            return NOTHING
        name = _name(account)
        with _Management(self.url, self.password, self.timeout) as m:
            lines = m.status()
        sessions = [line for line in lines if line.split("\t")[:2] == ["CLIENT_LIST", name]]
        return None if sessions else Outcome(None, {"vpn": "no session"})


class _Management:
    """One session on OpenVPN's management interface (TCP or a unix socket), line by line."""

    def __init__(self, url: str, password: str | None, timeout: float):
        self.url, self.password, self.timeout = url, password, timeout

    def __enter__(self):
        parts = urllib.parse.urlsplit(self.url)
        try:
            if parts.scheme == "unix":
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(self.timeout)
                self.sock.connect(parts.path)
            else:
                self.sock = socket.create_connection((parts.hostname, parts.port), timeout=self.timeout)
            self.file = self.sock.makefile("rwb")
            first = self._read_line(prompt=True)
            if first.startswith("ENTER PASSWORD:"):
                if self.password is None:
                    raise DeliveryError("the management interface asks for a password; the target names none",
                                        permanent=True)
                self._write(self.password)
                if not self._read_line(prompt=True).startswith("SUCCESS:"):  # refused: it asks again
                    raise DeliveryError("the management interface refused the password", permanent=True)
        except OSError as e:
            self.close()
            raise DeliveryError(f"openvpn management {self.url}: {e}") from None
        except DeliveryError:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        try:
            self._write("quit")
        except OSError:
            pass  # gone already
        self.close()

    def close(self):
        for part in ("file", "sock"):
            if hasattr(self, part):
                getattr(self, part).close()

    def command(self, line: str) -> str:
        """Send one command; its one-line answer (SUCCESS: or ERROR:), real-time notifications skipped."""
        try:
            self._write(line)
            while True:
                answer = self._read_line()
                if answer.startswith(("SUCCESS:", "ERROR:")):
                    return answer
        except OSError as e:
            raise DeliveryError(f"openvpn management {self.url}: {e}") from None

    def status(self) -> list[str]:
        """The lines of `status 3` (tab-separated) up to END."""
        try:
            self._write("status 3")
            lines = []
            while (line := self._read_line()) != "END":
                if line.startswith("ERROR:"):
                    raise DeliveryError(f"openvpn status: {line}")
                if not line.startswith(">"):
                    lines.append(line)
            return lines
        except OSError as e:
            raise DeliveryError(f"openvpn management {self.url}: {e}") from None

    def _write(self, line: str) -> None:
        self.file.write(line.encode() + b"\n")
        self.file.flush()

    def _read_line(self, *, prompt: bool = False) -> str:
        if prompt:  # "ENTER PASSWORD:" comes without a newline
            head = self.sock.recv(15, socket.MSG_PEEK)
            if head.startswith(b"ENTER PASSWORD:"):
                self.file.read(len(b"ENTER PASSWORD:"))
                return "ENTER PASSWORD:"
        raw = self.file.readline(65536)
        if not raw:
            raise ConnectionError("the management interface closed the connection")
        return raw.decode(errors="replace").rstrip("\r\n")


class CommandTarget:
    def __init__(self, argv: list[str], *, timeout: float = 10):
        self.argv, self.timeout = [str(a) for a in argv], timeout

    def apply(self, op: str, account: Account, *, idempotency_key: str) -> Outcome:
        if op != DISABLE:
            return NOTHING
        name = _name(account)
        try:
            done = subprocess.run([*self.argv, name], shell=False, capture_output=True, text=True,
                                  timeout=self.timeout, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                                  stdin=subprocess.DEVNULL, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise DeliveryError(f"{self.argv[0]}: {e}") from None
        if done.returncode != 0:
            said = (done.stderr.strip().splitlines() or [""])[-1][:200]
            raise DeliveryError(f"{self.argv[0]} exited {done.returncode}: {said}")
        return Outcome(None, {"vpn": "command", "exit": 0, "said": done.stdout.strip()[:200]})

    def verify(self, op: str, account: Account) -> Outcome | None:
        return Outcome(None, {"confirmed_by": "exit 0"}) if op == DISABLE else NOTHING
