"""SMTP with implicit TLS (SMTPS, port 465; RFC 8314 §3.3) against a real aiosmtpd server speaking TLS from the
first byte, with a self-signed certificate made here; and STARTTLS next to it."""

import dataclasses
import datetime
import ipaddress
import ssl

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from connectors import mail
from service.config import load_settings
from service.errors import ConfigError
from tests.support.net import free_port
from tests.support.smtpserver import _Handler


def _certificate(tmp_path, name: str) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and localhost: (cert PEM path, key PEM path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.fixture
def smtps(tmp_path):
    """aiosmtpd over implicit TLS, requiring a login (ada / secret): (port, handler, CA file, logins)."""
    cert, key = _certificate(tmp_path, "smtp-server")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler, logins = _Handler(), []

    def authenticate(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, server.transport.get_extra_info("ssl_object") is not None))
        return AuthResult(success=auth_data.login == b"ada" and auth_data.password == b"secret")

    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ssl_context=context,
                            authenticator=authenticate, auth_require_tls=False)  # it counts STARTTLS only
    controller.start()
    yield port, handler, cert, logins
    controller.stop()


def _config(port, ca, **changes) -> mail.SmtpConfig:
    return dataclasses.replace(mail.SmtpConfig(host="127.0.0.1", port=port, sender="gatehouse@example.com",
                                               tls=True, ca_file=ca, user="ada", password="secret"), **changes)


def test_mail_goes_over_implicit_tls_and_logs_in_inside_it(smtps):
    port, handler, ca, logins = smtps
    with mail.session(_config(port, ca)) as session:
        session.send(mail.Mail(to=("mona@example.com",), subject="Access review", body="please review",
                               html="<p>please review</p>"))
    got, = handler.received
    assert got.rcpt_tos == ("mona@example.com",) and got.message["Subject"] == "Access review"
    assert logins == [(b"ada", True)]  # the password crossed inside TLS


def test_a_server_certificate_from_another_ca_is_refused_and_nothing_is_sent(smtps, tmp_path):
    port, handler, _, logins = smtps
    other, _ = _certificate(tmp_path, "someone-else")
    with pytest.raises(mail.MailUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        with mail.session(_config(port, other)):
            pass
    with pytest.raises(mail.MailUnavailable):  # no TLS at all against a TLS port: no greeting, no session
        with mail.session(_config(port, None, tls=False, user="", timeout=2)):
            pass
    assert handler.received == [] and logins == []


def test_a_wrong_password_over_tls_is_a_refused_session(smtps):
    port, _, ca, _ = smtps
    with pytest.raises(mail.MailUnavailable, match="refused"):
        with mail.session(_config(port, ca, password="wrong")):
            pass


def test_credentials_without_any_tls_are_never_sent():
    with pytest.raises(mail.MailUnavailable, match="without TLS"):
        with mail.session(mail.SmtpConfig(host="127.0.0.1", port=free_port(), user="ada", password="secret")):
            pass


def test_the_settings_take_implicit_tls_and_a_ca_file_and_refuse_both_tls_modes(tmp_path):
    cert, _ = _certificate(tmp_path, "ca")
    settings = load_settings({"GATEHOUSE_SMTP_TLS": "true", "GATEHOUSE_SMTP_PORT": "465",
                              "GATEHOUSE_SMTP_CA_FILE": cert})
    assert (settings.smtp_tls, settings.smtp_port, str(settings.smtp_ca_file)) == (True, 465, cert)
    with pytest.raises(ConfigError, match="not both"):
        load_settings({"GATEHOUSE_SMTP_TLS": "true", "GATEHOUSE_SMTP_STARTTLS": "true"})


def test_the_outbox_sends_review_mail_over_implicit_tls(smtps, settings, database, smtp, tmp_path):
    """The worker's delivery job, configured by the settings, hands the campaign's mail over TLS."""
    from tests.support.reviews import world_for

    port, handler, ca, logins = smtps
    world = world_for(settings, database, smtp, tmp_path)
    try:
        world.services.settings = dataclasses.replace(world.services.settings, smtp_port=port, smtp_tls=True,
                                                      smtp_ca_file=ca, smtp_user="ada", smtp_password="secret")
        world.start()
        assert world.deliver() == {"mail_sent": 2, "mail_failed": 0}
        assert sorted(r.rcpt_tos[0] for r in handler.received) == ["mona@example.com", "olivia@example.com"]
        assert logins == [(b"ada", True)] and smtp.received == []
    finally:
        world.services.close()
