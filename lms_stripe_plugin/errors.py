"""The plugin's exception hierarchy. Stripe's own errors are translated into these at the gateway."""
from __future__ import annotations


class PaymentsError(Exception):
    """Base class of every error the plugin raises on purpose."""

    #: HTTP status a view answers with when this error reaches it.
    status_code = 400

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code


class ConfigurationError(PaymentsError):
    """The plugin or the host is set up wrongly; the message says what to change."""

    status_code = 503


class UnreadableSecret(ConfigurationError):
    """A stored secret that none of the encryption keys decrypts (the keys changed without the old one kept):
    it must be entered again, or the old key added back to the keys that decrypt."""


class HostContractError(ConfigurationError, RuntimeError):
    """The host adapter does not implement the `Host` protocol."""


class ValidationFailed(PaymentsError):
    """Input did not pass a schema; ``errors`` maps field names to messages."""

    status_code = 400

    def __init__(self, errors: dict, message: str = "Invalid input."):
        super().__init__(message, code="invalid")
        self.errors = errors


class NotPurchasable(PaymentsError):
    """The learner cannot buy this course now (free, off sale, outside audience, already bought...)."""

    status_code = 409


class NotFound(PaymentsError):
    status_code = 404


class Forbidden(PaymentsError):
    status_code = 403


class GatewayError(PaymentsError):
    """Stripe could not be reached or refused the request for a reason other than the card."""

    status_code = 502

    def __init__(self, message: str, *, code: str | None = None, retryable: bool = True,
                 answered: bool = False):
        super().__init__(message, code=code)
        self.retryable = retryable
        #: Stripe answered with a server error: it keeps that answer for the idempotency key, so a retry
        #: needs a new key (no answer at all, or 429, is retried with the same key).
        self.answered = answered


class CardDeclined(GatewayError):
    """The card was declined; the message is Stripe's, safe to show the learner."""

    status_code = 402

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message, code=code, retryable=False)


class WebhookSignatureError(PaymentsError):
    """A webhook's signature is missing, wrong or stale."""

    status_code = 400
