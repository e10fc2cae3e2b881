"""A downstream tool's SCIM server for the outbox tests: python-scim's scim2-server, a real process on 127.0.0.1."""

import json
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


class OAuthGate:
    """The tool behind OAuth 2.0: POST /token grants client credentials (RFC 6749 §4.4, HTTP Basic client
    authentication), every other request needs one of the tokens it issued and is relayed to the tool."""

    def __init__(self, tool: ScimTool, client_id: str, client_secret: str):
        import base64
        import secrets
        import threading
        import urllib.error
        import urllib.parse
        import urllib.request
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        gate = self
        self.issued: set[str] = set()
        self.token_requests = 0
        basic = "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, data: bytes, kind: str = "application/json"):
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _relay(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
                if self.command == "POST" and self.path == "/token":
                    gate.token_requests += 1
                    form = urllib.parse.parse_qs((body or b"").decode())
                    if self.headers.get("Authorization") != basic or form.get("grant_type") != ["client_credentials"]:
                        return self._answer(401, b'{"error": "invalid_client"}')
                    token = secrets.token_urlsafe(16)
                    gate.issued.add(token)
                    return self._answer(200, json.dumps({"access_token": token, "token_type": "Bearer",
                                                         "expires_in": 3600}).encode())
                if self.headers.get("Authorization", "").removeprefix("Bearer ") not in gate.issued:
                    return self._answer(401, b'{"status": "401"}', "application/scim+json")
                headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/scim+json"}
                request = urllib.request.Request(tool.url + self.path, data=body, headers=headers, method=self.command)
                try:
                    with urllib.request.urlopen(request, timeout=10) as answer:
                        self._answer(answer.status, answer.read(), "application/scim+json")
                except urllib.error.HTTPError as e:
                    self._answer(e.code, e.read(), "application/scim+json")

            do_GET = do_POST = do_PATCH = _relay

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def add_group(tool: ScimTool, name: str, members: list[str]) -> str:
    r = requests.post(tool.url + "/Groups", headers=tool._headers(), timeout=10, json={
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name,
        "members": [{"value": m} for m in members]})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def members(tool: ScimTool, group_id: str) -> set[str]:
    r = requests.get(f"{tool.url}/Groups/{group_id}", headers=tool._headers(), timeout=10)
    assert r.status_code == 200, r.text
    return {m["value"] for m in r.json().get("members") or []}
