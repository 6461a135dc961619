"""E-mail backends: the host's Flask-Mail, SMTP (the standard library's), and development ones.

The standard library's `email.message.EmailMessage` builds the message (multipart/alternative, UTF-8,
RFC 2047 headers) and `smtplib` sends it: both are maintained with Python itself, and need no dependency.
A host that already has Flask-Mail keeps its own mail settings: the plugin sends through it.
"""
from __future__ import annotations

import logging
import mailbox
import os
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, formataddr, make_msgid, parseaddr
from typing import Any, Callable

from flask import Flask

from ..core.models import utcnow
from ..errors import ConfigurationError
from .addresses import check_header
from .errors import DeliveryFailed
from .outgoing import Backend, Outgoing

log = logging.getLogger("lms_stripe_plugin.messages")

BACKENDS = ("auto", "flask_mail", "smtp", "console", "file")
#: CRLF line ends, and every part in 7 bits (quoted-printable): servers without 8BITMIME take it as it is.
_POLICY = SMTP_POLICY.clone(cte_type="7bit")
#: The sender of the development backends when none is configured.
_DEV_SENDER = "lms-stripe@localhost"


def build_email(outgoing: Outgoing, sender: str) -> EmailMessage:
    """The MIME message: text, and HTML as its alternative when there is one."""
    message = EmailMessage(policy=_POLICY)
    message["Subject"] = check_header(outgoing.subject)
    message["From"] = check_header(sender)
    message["To"] = check_header(outgoing.recipient)
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid("lms-stripe", domain=_domain(sender))
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office answers
    message.set_content(outgoing.body)
    if outgoing.html:
        message.add_alternative(outgoing.html, subtype="html")
    return message


def _domain(sender: str) -> str:
    # From the sender, so that make_msgid does not ask the system for its host name (slow, or "localhost").
    return parseaddr(sender)[1].rpartition("@")[2] or "localhost"


def sender(config: Any, *, required: bool = True) -> str:
    """``LMS_STRIPE_MAIL_SENDER``, else the host's ``MAIL_DEFAULT_SENDER``: an address or (name, address)."""
    value = config.get("LMS_STRIPE_MAIL_SENDER") or config.get("MAIL_DEFAULT_SENDER")
    if isinstance(value, (tuple, list)):
        value = formataddr((value[0], value[1]))
    if value:
        return check_header(str(value))
    if required:
        raise ConfigurationError("No sender for e-mails: set LMS_STRIPE_MAIL_SENDER (or MAIL_DEFAULT_SENDER).")
    return _DEV_SENDER


@dataclass
class SmtpMail:
    """Sends through an SMTP server, one connection per message, within a timeout."""

    server: str
    port: int
    sender: str
    use_tls: bool = False
    use_ssl: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30

    def send(self, outgoing: Outgoing) -> None:
        message = build_email(outgoing, self.sender)
        try:
            with self._connect() as smtp:
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(message)
        except smtplib.SMTPException as err:
            raise DeliveryFailed(self._scrub(describe_smtp_error(err))) from err
        except OSError as err:
            raise DeliveryFailed(f"The mail server {self.server}:{self.port} could not be reached "
                                 f"({type(err).__name__}: {err.strerror or err}).") from err

    def _connect(self) -> smtplib.SMTP:
        context = ssl.create_default_context()
        if self.use_ssl:
            return smtplib.SMTP_SSL(self.server, self.port, timeout=self.timeout, context=context)
        smtp = smtplib.SMTP(self.server, self.port, timeout=self.timeout)
        if self.use_tls:
            try:
                smtp.starttls(context=context)
            except BaseException:
                smtp.close()
                raise
        return smtp

    def _scrub(self, text: str) -> str:
        """A server's answer, with the password cut out should a server ever echo it."""
        return text.replace(self.password, "********") if self.password else text


def describe_smtp_error(err: smtplib.SMTPException) -> str:
    """The server's refusal in a line: its code and its words, never what we sent."""
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        answers = [f"{code} {_text(reply)}" for code, reply in err.recipients.values()]
        return "The mail server refused the recipient: " + "; ".join(answers)
    if isinstance(err, smtplib.SMTPAuthenticationError):
        return f"The mail server refused the user name or password ({err.smtp_code})."
    if isinstance(err, smtplib.SMTPResponseException):
        return f"The mail server refused the message: {err.smtp_code} {_text(err.smtp_error)}"
    return f"The mail server failed: {type(err).__name__}."


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())[:300]


@dataclass
class FlaskMail:
    """Sends through the host's Flask-Mail, with the host's own MAIL_* settings."""

    mail: Any  # app.extensions["mail"]
    sender: str | None

    def send(self, outgoing: Outgoing) -> None:
        import flask_mail  # optional dependency: the host's Flask-Mail, present when it registered one

        message = flask_mail.Message(
            subject=check_header(outgoing.subject), recipients=[check_header(outgoing.recipient)],
            body=outgoing.body, html=outgoing.html, sender=self.sender,
            extra_headers={"Auto-Submitted": "auto-generated"},
        )
        try:
            self.mail.send(message)
        except smtplib.SMTPException as err:
            raise DeliveryFailed(describe_smtp_error(err)) from err
        except OSError as err:
            raise DeliveryFailed(f"The mail server could not be reached ({type(err).__name__}).") from err


@dataclass
class ConsoleMail:
    """Development: writes the message to the log (``lms_stripe_plugin.messages``, level INFO) instead of
    sending it. The log then holds payment links: never in production."""

    sender: str

    def send(self, outgoing: Outgoing) -> None:
        log.info("E-mail #%s (not sent: console backend)\nFrom: %s\nTo: %s\nSubject: %s\n\n%s",
                 outgoing.message_id, self.sender, outgoing.recipient, outgoing.subject, outgoing.body)


@dataclass
class FileMail:
    """Development: appends the message to an mbox file (the demo's outbox), which any mail reader opens."""

    path: str
    sender: str

    def send(self, outgoing: Outgoing) -> None:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        box = mailbox.mbox(self.path)
        box.lock()
        try:
            box.add(build_email(outgoing, self.sender))
            box.flush()
        finally:
            box.unlock()
            box.close()


def mail_backend(app: Flask) -> Backend:
    """The backend ``LMS_STRIPE_MAIL_BACKEND`` names; ``auto``: the host's Flask-Mail if it has one, else
    SMTP if ``LMS_STRIPE_MAIL_SERVER`` is set, else the console."""
    config = app.config
    choice = str(config.get("LMS_STRIPE_MAIL_BACKEND") or "auto").lower()
    if choice == "auto":
        choice = ("flask_mail" if "mail" in app.extensions
                  else "smtp" if config.get("LMS_STRIPE_MAIL_SERVER") else "console")
    factory = _FACTORIES.get(choice)
    if factory is None:
        raise ConfigurationError(f"LMS_STRIPE_MAIL_BACKEND is {choice!r}: choose one of {', '.join(BACKENDS)}.")
    return factory(app)


def _flask_mail(app: Flask) -> Backend:
    if "mail" not in app.extensions:
        raise ConfigurationError("LMS_STRIPE_MAIL_BACKEND is 'flask_mail' but the app has no Flask-Mail: "
                                 "call Mail(app) first, or choose 'smtp'.")
    configured = app.config.get("LMS_STRIPE_MAIL_SENDER")
    return FlaskMail(app.extensions["mail"], sender(app.config) if configured else None)


def _smtp(app: Flask) -> Backend:
    config = app.config
    server = config.get("LMS_STRIPE_MAIL_SERVER")
    if not server:
        raise ConfigurationError("LMS_STRIPE_MAIL_BACKEND is 'smtp': set LMS_STRIPE_MAIL_SERVER.")
    use_tls, use_ssl = bool(config.get("LMS_STRIPE_MAIL_USE_TLS")), bool(config.get("LMS_STRIPE_MAIL_USE_SSL"))
    if use_tls and use_ssl:
        raise ConfigurationError("Set LMS_STRIPE_MAIL_USE_SSL (port 465) or LMS_STRIPE_MAIL_USE_TLS "
                                 "(STARTTLS, port 587), not both.")
    port = config.get("LMS_STRIPE_MAIL_PORT") or (465 if use_ssl else 587 if use_tls else 25)
    return SmtpMail(server=str(server), port=int(port), sender=sender(config), use_tls=use_tls, use_ssl=use_ssl,
                    username=config.get("LMS_STRIPE_MAIL_USERNAME"), password=config.get("LMS_STRIPE_MAIL_PASSWORD"),
                    timeout=float(config.get("LMS_STRIPE_MESSAGE_TIMEOUT") or 30))


def _console(app: Flask) -> Backend:
    return ConsoleMail(sender(app.config, required=False))


def _file(app: Flask) -> Backend:
    path = app.config.get("LMS_STRIPE_MAIL_FILE") or os.path.join(app.instance_path, "lms_stripe_mail.mbox")
    return FileMail(str(path), sender(app.config, required=False))


_FACTORIES: dict[str, Callable[[Flask], Backend]] = {
    "flask_mail": _flask_mail, "smtp": _smtp, "console": _console, "file": _file,
}
