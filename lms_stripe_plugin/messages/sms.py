"""SMS backends: Twilio (the optional ``twilio`` extra), and the console and a file for development."""
from __future__ import annotations

import json
import logging
import os
from importlib.util import find_spec
from dataclasses import dataclass, field
from typing import Callable

import requests
from flask import Flask

from ..core.models import utcnow
from ..errors import ConfigurationError
from .errors import DeliveryFailed
from .outgoing import Backend, Outgoing
from .segments import segments

log = logging.getLogger("lms_stripe_plugin.messages")

BACKENDS = ("auto", "twilio", "console", "file")


@dataclass
class TwilioSms:
    """Sends through Twilio's Messages API. ``sender`` is a Twilio number (E.164) or a Messaging Service
    (``MG…``). Twilio accepting the message is "sent"; what the carrier does next is Twilio's to report."""

    account_sid: str
    auth_token: str = field(repr=False)
    sender: str
    timeout: float = 30

    def send(self, outgoing: Outgoing) -> None:
        from twilio.base.exceptions import TwilioException, TwilioRestException  # optional dependency: twilio
        from twilio.http.http_client import TwilioHttpClient  # optional dependency: twilio
        from twilio.rest import Client  # optional dependency: twilio, imported only when this backend is chosen

        client = Client(self.account_sid, self.auth_token, http_client=TwilioHttpClient(timeout=self.timeout))
        origin = ({"messaging_service_sid": self.sender} if self.sender.startswith("MG")
                  else {"from_": self.sender})
        try:
            client.messages.create(to=outgoing.recipient, body=outgoing.body, **origin)
        except TwilioRestException as err:
            raise DeliveryFailed(f"Twilio refused the SMS (HTTP {err.status}, error {err.code}): "
                                 f"{' '.join(str(err.msg).split())[:300]}") from err
        except (TwilioException, requests.RequestException) as err:
            raise DeliveryFailed(f"Twilio could not be reached ({type(err).__name__}).") from err


@dataclass
class ConsoleSms:
    """Development: writes the SMS to the log (``lms_stripe_plugin.messages``, INFO) instead of sending it."""

    def send(self, outgoing: Outgoing) -> None:
        parts = segments(outgoing.body)
        log.info("SMS #%s to %s (not sent: console backend; %s, %d part(s))\n%s", outgoing.message_id,
                 outgoing.recipient, parts.encoding, parts.count, outgoing.body)


@dataclass
class FileSms:
    """Development: appends the SMS to a file, one JSON object a line (the demo's outbox)."""

    path: str

    def send(self, outgoing: Outgoing) -> None:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        line = json.dumps({"id": outgoing.message_id, "to": outgoing.recipient, "body": outgoing.body,
                           "parts": segments(outgoing.body).count, "at": utcnow().isoformat()},
                          ensure_ascii=False)
        with open(self.path, "a", encoding="utf-8") as fp:
            fp.write(line + "\n")


def sms_backend(app: Flask) -> Backend:
    """The backend ``LMS_STRIPE_SMS_BACKEND`` names; ``auto``: Twilio when its account is configured, else
    the console."""
    choice = str(app.config.get("LMS_STRIPE_SMS_BACKEND") or "auto").lower()
    if choice == "auto":
        choice = "twilio" if app.config.get("LMS_STRIPE_TWILIO_ACCOUNT_SID") else "console"
    factory = _FACTORIES.get(choice)
    if factory is None:
        raise ConfigurationError(f"LMS_STRIPE_SMS_BACKEND is {choice!r}: choose one of {', '.join(BACKENDS)}.")
    return factory(app)


def _twilio(app: Flask) -> Backend:
    config = app.config
    missing = [key for key in ("LMS_STRIPE_TWILIO_ACCOUNT_SID", "LMS_STRIPE_TWILIO_AUTH_TOKEN",
                               "LMS_STRIPE_TWILIO_FROM") if not config.get(key)]
    if missing:
        raise ConfigurationError(f"SMS by Twilio needs {', '.join(missing)}.")
    if find_spec("twilio") is None:
        raise ConfigurationError("SMS by Twilio needs its SDK: pip install 'lms-stripe-plugin[twilio]'.")
    return TwilioSms(account_sid=str(config["LMS_STRIPE_TWILIO_ACCOUNT_SID"]),
                     auth_token=str(config["LMS_STRIPE_TWILIO_AUTH_TOKEN"]), sender=str(config["LMS_STRIPE_TWILIO_FROM"]),
                     timeout=float(config.get("LMS_STRIPE_MESSAGE_TIMEOUT") or 30))


def _file(app: Flask) -> Backend:
    return FileSms(str(app.config.get("LMS_STRIPE_SMS_FILE") or os.path.join(app.instance_path, "lms_stripe_sms.jsonl")))


_FACTORIES: dict[str, Callable[[Flask], Backend]] = {
    "twilio": _twilio, "console": lambda app: ConsoleSms(), "file": _file,
}
