"""VPN gateway tests' real components: `gatehouse serve` on a test database, and Debian's FreeRADIUS in front of it.

FreeRADIUS runs the configuration shipped in deploy/radius/, copied to a temp
directory with only the test's port, client secret, log directory and
reject_delay substituted (each substitution must match exactly once, so a
changed shipped file fails here rather than being silently tested stale).
GATEHOUSE_URL and GATEHOUSE_RADIUS_TOKEN reach it through the environment, as
in production, and it is started through deploy/radius/check-env.sh.
"""

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.support.cli import db_env, gatehouse
from tests.support.net import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[2]
RADIUS_CONFIG = ROOT / "deploy" / "radius"
CHECK_ENV = RADIUS_CONFIG / "check-env.sh"
SEARCH_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
SECRET = "test-shared-secret"


def tool(name: str) -> str:
    """The full path of a Debian tool; fails (not skips) when it is missing."""
    found = shutil.which(name, path=SEARCH_PATH)
    if not found:
        raise RuntimeError(f"{name} not found: apt-get install freeradius freeradius-rest freeradius-utils curl")
    return found


def gateway_token(database, name: str = "vpn-gw") -> str:
    """A static token of a new access:check client, made with the commands the README gives operators."""
    created = gatehouse("clients", "create", name, "--scope", "access:check", env=db_env(database))
    assert created.returncode == 0, created.stderr
    issued = gatehouse("clients", "token", name, env=db_env(database))
    assert issued.returncode == 0, issued.stderr
    return issued.stdout.splitlines()[0].strip()


def terminate(process: subprocess.Popen | None, *, timeout: float) -> None:
    """SIGTERM, wait up to timeout seconds, then SIGKILL; a no-op for None."""
    if process is None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class GatehouseServe:
    """A real `gatehouse serve` process on a test database; stop() and start() again keep the port."""

    database: object
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
        env.update(db_env(self.database), GATEHOUSE_HOST="127.0.0.1", GATEHOUSE_PORT=str(self.port),
                   GATEHOUSE_WORKERS="1", GATEHOUSE_BASE_URL=self.url)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([str(Path(sys.executable).with_name("gatehouse")), "serve"], env=env,
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_ready(f"{self.url}/readyz", self.process)

    def stop(self) -> None:
        """SIGTERM and wait; afterwards the port refuses connections."""
        process, self.process = self.process, None
        terminate(process, timeout=30)


@contextlib.contextmanager
def serving(database, tmp_path: Path) -> Iterator[GatehouseServe]:
    """A started `gatehouse serve` for one test, stopped afterwards (the log is tmp_path/serve.log)."""
    server = GatehouseServe(database, tmp_path / "serve.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


class StubApi:
    """A stand-in HTTP API on 127.0.0.1 answering every POST with (status, body) after delay seconds.

    For answers a healthy Gatehouse never gives (5xx, HTML, redirects, slowness); it records each request.
    """

    def __init__(self, status: int = 200, body: bytes = b"", delay: float = 0.0,
                 content_type: str = "application/json"):
        self.requests: list[tuple[str, dict, bytes]] = []
        requests = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                requests.append((self.path, dict(self.headers), self.rfile.read(length)))
                time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the caller gave up waiting (timeout cases)
                    pass

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> "StubApi":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _substitute(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{path.name}: expected {old!r} exactly once (did the shipped file change?)"
    path.write_text(text.replace(old, new))


def prepare_config(directory: Path, *, port: int, secret: str = SECRET) -> Path:
    """Copy deploy/radius/ to directory for a test on 127.0.0.1:port; return the config directory."""
    shutil.copytree(RADIUS_CONFIG, directory)
    directory.chmod(0o750)  # FreeRADIUS refuses globally writable configuration directories
    _substitute(directory / "radiusd.conf", "logdir = /var/log/freeradius", f"logdir = {directory}")
    _substitute(directory / "radiusd.conf", "run_dir = /var/run/freeradius", f"run_dir = {directory}")
    _substitute(directory / "radiusd.conf", "reject_delay = 1", "reject_delay = 0")
    _substitute(directory / "sites-available" / "gatehouse", "ipaddr = *", "ipaddr = 127.0.0.1")
    _substitute(directory / "sites-available" / "gatehouse", "port = 1812", f"port = {port}")
    _substitute(directory / "clients.conf", "ipaddr = 192.0.2.10", "ipaddr = 127.0.0.1")
    _substitute(directory / "clients.conf", "secret = CHANGE-ME-shared-secret", f"secret = {secret}")
    return directory


@dataclass(frozen=True)
class Reply:
    """What radclient received: the packet type (None when no answer came) and the Reply-Message as printed."""

    code: str | None
    message: str | None
    output: str


@dataclass
class RadiusServer:
    """One `freeradius -X` process on a copy of deploy/radius/; start with RadiusServer.start(...)."""

    directory: Path
    port: int
    env: dict = field(repr=False)
    wrapped: bool = True
    secret: str = field(default=SECRET, repr=False)
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.directory / "radiusd.out"

    @classmethod
    def start(cls, directory: Path, *, gatehouse_url: str, token: str, wrapped: bool = True) -> "RadiusServer":
        """Configure, start and wait until FreeRADIUS is ready; wrapped: through check-env.sh, as documented."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
        env.update(GATEHOUSE_URL=gatehouse_url, GATEHOUSE_RADIUS_TOKEN=token)
        for attempt in range(3):  # another process may take the free port before freeradius binds it
            port = _free_udp_port()
            config = prepare_config(directory / f"raddb-{port}", port=port)
            server = cls(directory=config, port=port, env=env, wrapped=wrapped)
            try:
                server.run()
                return server
            except RuntimeError:
                if attempt == 2:
                    raise

    def command(self) -> list[str]:
        # -X: foreground, one thread, full debug to stdout (kept in radiusd.out for failures).
        radiusd = [tool("freeradius"), "-X", "-d", str(self.directory)]
        return [str(CHECK_ENV), *radiusd] if self.wrapped else radiusd

    def run(self) -> None:
        """Start (or restart) and wait for "Ready to process requests"."""
        if self.process is not None:
            return
        seen = len(self.log())  # a restart appends to the same log
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command(), env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if "Ready to process requests" in self.log()[seen:]:
                return
            if self.process.poll() is not None:
                self.process = None
                raise RuntimeError(f"freeradius exited: {self.log()[-3000:]}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"freeradius not ready within 15 s: {self.log()[-3000:]}")

    def stop(self) -> None:
        process, self.process = self.process, None
        terminate(process, timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> "RadiusServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def send(self, user: str, password: str = "pw", *, message_authenticator: bool = True,
             timeout: float = 10) -> Reply:
        """Send one Access-Request with radclient (PAP User-Password, as a VPN gateway does)."""
        lines = [f"User-Name = {_quoted(user)}", f"User-Password = {_quoted(password)}",
                 "NAS-IP-Address = 127.0.0.1"]
        if message_authenticator:
            lines.append("Message-Authenticator = 0x00")  # radclient computes it
        done = subprocess.run(
            [tool("radclient"), "-x", "-r", "1", "-t", str(timeout), f"127.0.0.1:{self.port}", "auth", self.secret],
            input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=timeout + 10)
        return parse_radclient(done.stdout + done.stderr)


def _quoted(value: str) -> str:
    """A double-quoted radclient value; radclient turns the escapes back into the characters."""
    for char, escape in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        value = value.replace(char, escape)
    return f'"{value}"'


def parse_radclient(output: str) -> Reply:
    """The answer in radclient -x output (values stay as radclient prints them, with \\ escapes)."""
    received = re.search(r"^Received (Access-\w+) ", output, re.M)
    code = received.group(1) if received else None
    answer = output[received.end():] if received else ""
    message = re.search(r'^\s+Reply-Message = "(.*)"$', answer, re.M)
    return Reply(code, message.group(1) if message else None, output)
