"""What can go wrong with a message: a recipient we refuse to write to, a delivery that failed."""
from __future__ import annotations

from ..errors import PaymentsError


class MessageError(PaymentsError):
    """Base class of the messages package's errors."""


class InvalidRecipient(MessageError):
    """An e-mail address or phone number we cannot write to; refused before anything is stored."""

    status_code = 400


class InvalidMessage(MessageError):
    """A subject or body that cannot go out as it is (a line break in a header, an empty body...)."""

    status_code = 400


class DeliveryFailed(MessageError):
    """The mail server or the SMS provider did not take the message. The message is safe to store and show:
    it never carries a password, a token or an API key."""

    status_code = 502
