"""E-mail through a real SMTP server started by the tests (aiosmtpd), through the host's Flask-Mail, and
the development backends; headers that could be injected are refused."""
from __future__ import annotations

import datetime as dt
import email
import ipaddress
import logging
import mailbox
import socket
import ssl
from email.policy import default as default_policy

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask_mail import Mail

from lms_stripe_plugin import messages
from lms_stripe_plugin.core.enums import AuditAction, Channel, MessageStatus
from lms_stripe_plugin.core.models import AuditEntry, Message
from lms_stripe_plugin.messages.errors import InvalidMessage
from lms_stripe_plugin.messages.mail import build_email, mail_backend, FlaskMail, SmtpMail, ConsoleMail

SUBJECT = "Paiement demandé : 49,90 € — École Élan"
TEXT = "Bonjour Léa,\n\nÉcole Élan vous demande de régler 49,90 €.\n\nPayer en ligne : https://lms.test/pay/t\n"
HTML = '<p>Bonjour Léa,</p><p><a href="https://lms.test/pay/t">Payer en ligne</a></p>'
SENDER = "École Élan <noreply@ecole.test>"
USER, PASSWORD = "school", "s3cret-Pa55word"


class Inbox:
    """The SMTP server's handler: keeps what it accepts, or answers as told."""

    def __init__(self):
        self.received = []
        self.refuse_data: str | None = None
        self.unknown: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.unknown:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.refuse_data:
            return self.refuse_data
        self.received.append(envelope)
        return "250 Message accepted for delivery"

    def parsed(self, index=-1):
        return email.message_from_bytes(self.received[index].content, policy=default_policy)


def _lines(text: str) -> str:
    return text.replace("\r\n", "\n")  # SMTP's line ends


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False)  # not handled: the server answers 535 itself


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    inbox.port = controller.port
    yield inbox
    controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, trusted by the client through SSL_CERT_FILE."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder


@pytest.fixture
def tls_server(certificate, monkeypatch):
    """An SMTP server that offers STARTTLS and, only over TLS, AUTH."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate / "cert.pem", certificate / "key.pem")
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate / "cert.pem"))
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port(), tls_context=context,
                            require_starttls=True, authenticator=_authenticator, auth_required=True)
    controller.start()
    inbox.port = controller.port
    yield inbox
    controller.stop()


@pytest.fixture
def smtp_app(app, smtp_server):
    app.config.update(LMS_STRIPE_MAIL_BACKEND="auto", LMS_STRIPE_MAIL_SERVER="127.0.0.1",
                      LMS_STRIPE_MAIL_PORT=smtp_server.port, LMS_STRIPE_MAIL_SENDER=SENDER, LMS_STRIPE_MESSAGE_TIMEOUT=5)
    return app


def _send(db, key="k1", **changes):
    values = dict(channel=Channel.EMAIL, recipient="lea@example.com", subject=SUBJECT, body=TEXT, html=HTML,
                  idempotency_key=key)
    values.update(changes)
    message = messages.queue(db.session, **values)
    db.session.commit()
    return message.id


def _stored(db, message_id) -> Message:
    db.session.expire_all()
    return db.session.get(Message, message_id)


# -- SMTP --------------------------------------------------------------------------------------------------

def test_smtp_sends_text_and_html_as_alternatives_with_utf8_headers(smtp_app, db, smtp_server):
    message_id = _send(db)
    assert _stored(db, message_id).status == MessageStatus.SENT
    envelope = smtp_server.received[0]
    assert envelope.mail_from == "noreply@ecole.test" and envelope.rcpt_tos == ["lea@example.com"]
    raw = envelope.content.decode("ascii")  # every header and part encoded for 7-bit transport
    assert "=?utf-8?" in raw.split("\r\n\r\n")[0]
    parsed = smtp_server.parsed()
    assert parsed["Subject"] == SUBJECT and parsed["From"] == SENDER and parsed["To"] == "lea@example.com"
    assert parsed["Date"] and parsed["Message-ID"].endswith("@ecole.test>") and parsed["Auto-Submitted"] == "auto-generated"
    assert parsed.get_content_type() == "multipart/alternative"
    text, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert _lines(text.get_content()) == TEXT and text.get_content_charset() == "utf-8"
    assert html.get_content().strip() == HTML


def test_a_text_only_message_is_not_multipart(smtp_app, db, smtp_server):
    _send(db, html=None)
    parsed = smtp_server.parsed()
    assert parsed.get_content_type() == "text/plain" and _lines(parsed.get_content()) == TEXT


def test_the_sender_defaults_to_the_hosts_mail_default_sender(smtp_app, db, smtp_server):
    smtp_app.config.update(LMS_STRIPE_MAIL_SENDER=None, MAIL_DEFAULT_SENDER=("École Élan", "contact@ecole.test"))
    _send(db)
    assert smtp_server.parsed()["From"] == "École Élan <contact@ecole.test>"


def test_without_any_sender_smtp_fails_with_what_to_set(smtp_app, db, smtp_server):
    smtp_app.config.update(LMS_STRIPE_MAIL_SENDER=None)
    message = _stored(db, _send(db))
    assert message.status == MessageStatus.FAILED and "LMS_STRIPE_MAIL_SENDER" in message.last_error
    assert smtp_server.received == []


def test_a_refusing_server_keeps_the_message_failed_and_a_retry_sends_it(smtp_app, db, smtp_server):
    smtp_server.refuse_data = "451 4.3.0 Mailbox busy, try again later"
    message_id = _send(db)
    failed = _stored(db, message_id)
    assert (failed.status, failed.attempts) == (MessageStatus.FAILED, 1)
    assert failed.last_error == "The mail server refused the message: 451 4.3.0 Mailbox busy, try again later"
    assert db.session.scalar(sa.select(sa.func.count(AuditEntry.id))
                             .where(AuditEntry.action == AuditAction.MESSAGE_FAILED)) == 1
    smtp_server.refuse_data = None
    later = failed.created_at.replace(tzinfo=dt.timezone.utc) + dt.timedelta(minutes=10)
    assert messages.retry_failed(smtp_app.extensions["lms_stripe"], now=later) == 1
    db.session.commit()
    sent = _stored(db, message_id)
    assert (sent.status, sent.attempts, len(smtp_server.received)) == (MessageStatus.SENT, 2, 1)
    assert smtp_server.parsed()["Subject"] == SUBJECT


def test_a_refused_recipient_is_recorded_with_the_servers_answer(smtp_app, db, smtp_server):
    smtp_server.unknown.add("lea@example.com")
    message = _stored(db, _send(db))
    assert message.status == MessageStatus.FAILED
    assert message.last_error == "The mail server refused the recipient: 550 5.1.1 No such user here"


def test_a_server_that_cannot_be_reached_fails_the_message(smtp_app, db):
    smtp_app.config["LMS_STRIPE_MAIL_PORT"] = _free_port()  # nobody listens there
    message = _stored(db, _send(db))
    assert message.status == MessageStatus.FAILED and "could not be reached" in message.last_error


def test_starttls_and_login(app, db, tls_server):
    app.config.update(LMS_STRIPE_MAIL_SERVER="127.0.0.1", LMS_STRIPE_MAIL_PORT=tls_server.port,
                      LMS_STRIPE_MAIL_USE_TLS=True, LMS_STRIPE_MAIL_USERNAME=USER, LMS_STRIPE_MAIL_PASSWORD=PASSWORD,
                      LMS_STRIPE_MAIL_SENDER=SENDER, LMS_STRIPE_MESSAGE_TIMEOUT=5)
    assert _stored(db, _send(db)).status == MessageStatus.SENT
    assert tls_server.parsed()["Subject"] == SUBJECT


def test_a_wrong_password_is_never_stored_logged_or_audited(app, db, tls_server, caplog):
    wrong = "Wr0ng-but-still-s3cret"
    app.config.update(LMS_STRIPE_MAIL_SERVER="127.0.0.1", LMS_STRIPE_MAIL_PORT=tls_server.port,
                      LMS_STRIPE_MAIL_USE_TLS=True, LMS_STRIPE_MAIL_USERNAME=USER, LMS_STRIPE_MAIL_PASSWORD=wrong,
                      LMS_STRIPE_MAIL_SENDER=SENDER, LMS_STRIPE_MESSAGE_TIMEOUT=5)
    with caplog.at_level(logging.DEBUG, logger="lms_stripe_plugin"):
        message = _stored(db, _send(db))
    assert message.status == MessageStatus.FAILED and "user name or password" in message.last_error
    details = db.session.scalar(sa.select(AuditEntry.details).where(AuditEntry.action == AuditAction.MESSAGE_FAILED))
    assert wrong not in message.last_error and wrong not in details and wrong not in caplog.text
    assert wrong not in repr(mail_backend(app))


def test_tls_and_ssl_together_are_refused(app, db):
    app.config.update(LMS_STRIPE_MAIL_SERVER="127.0.0.1", LMS_STRIPE_MAIL_USE_TLS=True, LMS_STRIPE_MAIL_USE_SSL=True,
                      LMS_STRIPE_MAIL_SENDER=SENDER)
    message = _stored(db, _send(db))
    assert message.status == MessageStatus.FAILED and "not both" in message.last_error


@pytest.mark.parametrize("use_tls, use_ssl, port", [(False, False, 25), (True, False, 587), (False, True, 465)])
def test_smtp_ports_default_by_security(app, use_tls, use_ssl, port):
    app.config.update(LMS_STRIPE_MAIL_BACKEND="smtp", LMS_STRIPE_MAIL_SERVER="mail.test", LMS_STRIPE_MAIL_SENDER=SENDER,
                      LMS_STRIPE_MAIL_USE_TLS=use_tls, LMS_STRIPE_MAIL_USE_SSL=use_ssl)
    backend = mail_backend(app)
    assert isinstance(backend, SmtpMail) and backend.port == port


# -- the host's Flask-Mail ---------------------------------------------------------------------------------

@pytest.fixture
def flask_mail_app(app, smtp_server):
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.port, MAIL_DEFAULT_SENDER=("École Élan", "hello@ecole.test"),
                      LMS_STRIPE_MAIL_BACKEND="auto", LMS_STRIPE_MAIL_SERVER="ignored.invalid")
    Mail(app)
    return app


def test_the_hosts_flask_mail_is_used_when_there_is_one(flask_mail_app, db, smtp_server):
    assert isinstance(mail_backend(flask_mail_app), FlaskMail)
    mail = flask_mail_app.extensions["mail"]
    with mail.record_messages() as outbox:
        message_id = _send(db)
    assert _stored(db, message_id).status == MessageStatus.SENT
    assert [m.subject for m in outbox] == [SUBJECT]
    parsed = smtp_server.parsed()
    assert parsed["Subject"] == SUBJECT and parsed["From"] == "École Élan <hello@ecole.test>"
    assert parsed["To"] == "lea@example.com" and parsed["Auto-Submitted"] == "auto-generated"
    # Flask-Mail wraps the alternatives in a multipart/mixed (for attachments)
    assert "multipart/alternative" in [part.get_content_type() for part in parsed.walk()]
    assert _lines(parsed.get_body(("plain",)).get_content()) == TEXT
    assert parsed.get_body(("html",)).get_content().strip() == HTML


def test_flask_mail_with_the_plugins_own_sender(flask_mail_app, db, smtp_server):
    flask_mail_app.config["LMS_STRIPE_MAIL_SENDER"] = SENDER
    _send(db)
    assert smtp_server.parsed()["From"] == SENDER


def test_flask_mail_failures_are_recorded(flask_mail_app, db, smtp_server):
    smtp_server.refuse_data = "554 5.7.1 Rejected"
    message = _stored(db, _send(db))
    assert message.status == MessageStatus.FAILED and message.last_error.endswith("554 5.7.1 Rejected")


def test_flask_mail_can_be_asked_for_and_must_then_exist(app, db):
    app.config.update(LMS_STRIPE_MAIL_BACKEND="flask_mail")
    message = _stored(db, _send(db))
    assert message.status == MessageStatus.FAILED and "no Flask-Mail" in message.last_error


# -- development backends ----------------------------------------------------------------------------------

def test_without_a_server_the_console_backend_logs_the_message(app, db, caplog):
    app.config.update(LMS_STRIPE_MAIL_SERVER=None)
    assert isinstance(mail_backend(app), ConsoleMail)
    with caplog.at_level(logging.INFO, logger="lms_stripe_plugin.messages"):
        message = _stored(db, _send(db))
    assert message.status == MessageStatus.SENT
    assert SUBJECT in caplog.text and "lea@example.com" in caplog.text and "régler 49,90 €" in caplog.text


def test_the_file_backend_appends_to_an_mbox(app, db, tmp_path):
    path = tmp_path / "outbox" / "mail.mbox"
    app.config.update(LMS_STRIPE_MAIL_BACKEND="file", LMS_STRIPE_MAIL_FILE=str(path), LMS_STRIPE_MAIL_SENDER=SENDER)
    _send(db, key="a")
    _send(db, key="b", subject="Second")
    box = mailbox.mbox(str(path))
    subjects = [email.message_from_bytes(m.as_bytes(), policy=default_policy)["Subject"] for m in box]
    assert subjects == [SUBJECT, "Second"]


def test_an_unknown_backend_fails_the_message_with_the_choices(app, db):
    app.config.update(LMS_STRIPE_MAIL_BACKEND="pigeon")
    message = _stored(db, _send(db))
    assert message.status == MessageStatus.FAILED and "flask_mail, smtp, console, file" in message.last_error


# -- header injection ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("field, value", [
    ("subject", "Hello\r\nBcc: everyone@example.com"), ("subject", "Hello\nX-Evil: 1"), ("subject", "Hello\u2028there"),
    ("recipient", "lea@example.com\r\nBcc: everyone@example.com"),
])
def test_line_breaks_never_reach_a_header(field, value):
    outgoing = messages.Outgoing(1, Channel.EMAIL, "lea@example.com", "Subject", "Body")
    with pytest.raises(InvalidMessage):
        build_email(messages.Outgoing(**{**outgoing.__dict__, field: value}), SENDER)


def test_a_sender_with_a_line_break_fails_the_message(smtp_app, db, smtp_server):
    smtp_app.config["LMS_STRIPE_MAIL_SENDER"] = "School <a@ecole.test>\r\nBcc: everyone@example.com"
    message = _stored(db, _send(db))
    assert message.status == MessageStatus.FAILED and smtp_server.received == []
