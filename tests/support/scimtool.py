"""A downstream tool's SCIM server for the outbox tests: python-scim's scim2-server, a real process on 127.0.0.1."""

import subprocess
import sys
from pathlib import Path

import requests

from tests.support.net import free_port, wait_ready

TOKEN = "tool-token"


class ScimTool:
    """scim2-server on a port of its own (given, to come back on the same one), with a bearer token."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "ScimTool":
        exe = Path(sys.executable).with_name("scim2-server")
        self.proc = subprocess.Popen([str(exe), "--hostname", "127.0.0.1", "--port", str(self.port),
                                      "--bearer-token", TOKEN], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_ready_auth(self.url + "/ServiceProviderConfig", self.proc)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def _headers(self):
        return {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/scim+json"}

    def add_user(self, user_name: str, active: bool = True) -> str:
        r = requests.post(self.url + "/Users", headers=self._headers(), timeout=10, json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name, "active": active})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def user(self, remote_id: str) -> dict:
        r = requests.get(f"{self.url}/Users/{remote_id}", headers=self._headers(), timeout=10)
        assert r.status_code == 200, r.text
        return r.json()


def wait_ready_auth(url: str, proc) -> None:
    """scim2-server answers its discovery with the token too; wait_ready polls without headers, which it allows."""
    wait_ready(url, proc, timeout=30)
