"""Send plain-text e-mail over SMTP (RFC 5321) with the standard library.

Plain values in (SmtpConfig, Mail), typed errors out (MailError). One session
carries many messages; a refused message does not end the session.
"""

import smtplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid


class MailError(Exception):
    """A message could not be handed to the SMTP server."""


class MailUnavailable(MailError):
    """The SMTP server could not be reached, or refused the session (TLS, login)."""


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to send."""

    host: str
    port: int = 25
    sender: str = "gatehouse@localhost"
    starttls: bool = False
    tls: bool = False  # implicit TLS (SMTPS, port 465; RFC 8314 §3.3): TLS before the greeting
    ca_file: str | None = None  # trust this CA (PEM) instead of the system's
    user: str = ""
    password: str = field(default="", repr=False)
    timeout: float = 10.0


@dataclass(frozen=True)
class Mail:
    """One message: plain text, with an HTML alternative when given.

    `message_id` (without brackets) makes a re-sent message the same message to the reader's mail client.
    """

    to: tuple[str, ...]
    subject: str
    body: str
    cc: tuple[str, ...] = ()
    html: str | None = None
    message_id: str | None = None


class Session:
    """An open SMTP session: send() one message at a time."""

    def __init__(self, smtp: smtplib.SMTP, sender: str):
        self._smtp, self._sender = smtp, sender

    def send(self, mail: Mail) -> None:
        """Hand one message to the server; MailError if it is refused."""
        message = _message(mail, self._sender)
        try:
            refused = self._smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as e:
            raise MailError(f"every recipient was refused: {_first(e.recipients)}") from None
        except smtplib.SMTPServerDisconnected as e:
            raise MailUnavailable(f"the SMTP server went away: {e}") from None
        except smtplib.SMTPException as e:  # before OSError: SMTPException is one, and a refusal is no outage
            raise MailError(f"the SMTP server refused the message: {e}") from None
        except OSError as e:
            raise MailUnavailable(f"the SMTP server went away: {e}") from None
        if refused:
            raise MailError(f"some recipients were refused: {_first(refused)}")


@contextmanager
def session(config: SmtpConfig) -> Iterator[Session]:
    """Connect (implicit TLS or STARTTLS, and login, when configured) for the block; MailUnavailable if that fails."""
    if config.user and not (config.starttls or config.tls):
        raise MailUnavailable("refusing to send SMTP credentials without TLS (STARTTLS or implicit TLS)")
    try:
        if config.tls:
            smtp = smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout, context=_context(config))
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
    except (OSError, smtplib.SMTPException) as e:  # ssl.SSLError (a bad certificate) is an OSError
        raise MailUnavailable(f"cannot connect to {config.host}:{config.port}: {e}") from None
    try:
        _open(smtp, config)
        yield Session(smtp, config.sender)
    finally:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


def _open(smtp: smtplib.SMTP, config: SmtpConfig) -> None:
    try:
        if config.starttls:
            smtp.starttls(context=_context(config))
        if config.user:
            smtp.login(config.user, config.password)
    except (OSError, smtplib.SMTPException) as e:
        raise MailUnavailable(f"the SMTP session was refused: {e}") from None


def _context(config: SmtpConfig) -> ssl.SSLContext:
    """Certificate and host name verified, against the configured CA or the system's."""
    return ssl.create_default_context(cafile=config.ca_file)


def _message(mail: Mail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(mail.to)
    if mail.cc:
        message["Cc"] = ", ".join(mail.cc)
    message["Subject"] = mail.subject
    message["Date"] = formatdate(usegmt=True)
    domain = sender.rpartition("@")[2] or "localhost"
    message["Message-ID"] = f"<{mail.message_id}@{domain}>" if mail.message_id else make_msgid(domain=domain)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
    message.set_content(mail.body)
    if mail.html:
        message.add_alternative(mail.html, subtype="html")  # multipart/alternative, RFC 2046 §5.1.4
    return message


def _first(refused: dict) -> str:
    address, (code, text) = next(iter(refused.items()))
    return f"{address} ({code} {text.decode(errors='replace') if isinstance(text, bytes) else text})"
