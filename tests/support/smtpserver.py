"""An in-process SMTP server for tests (aiosmtpd) on 127.0.0.1 that keeps every message it receives."""

import dataclasses
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from tests.support.net import free_port


@dataclasses.dataclass(frozen=True)
class Received:
    """One message as the server took it: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def body(self) -> str:
        return self.message.get_content()


class _Handler:
    def __init__(self):
        self.received: list[Received] = []
        self.refuse = False  # answer 451 to every message, as a server in trouble does

    async def handle_DATA(self, server, session, envelope):
        if self.refuse:
            return "451 4.3.0 try again later"
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.received.append(Received(envelope.mail_from, tuple(envelope.rcpt_tos), message))
        return "250 OK"


class SmtpServer:
    """The running server: its port, what it received, and a switch to refuse mail."""

    def __init__(self):
        self.handler = _Handler()
        self.port = free_port()
        self._controller: Controller | None = None

    def start(self) -> None:
        """Listen (again) on the same port; a stopped Controller cannot be restarted, so each start makes one."""
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        """Stop listening, as a server that is down."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def refuse(self, on: bool = True) -> None:
        self.handler.refuse = on

    def to(self, address: str) -> list[Received]:
        """The messages whose envelope names `address`."""
        return [r for r in self.received if address in r.rcpt_tos]


@pytest.fixture
def smtp():
    """A started SMTP server, stopped after the test."""
    server = SmtpServer()
    server.start()
    yield server
    server.stop()
