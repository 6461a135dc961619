"""The only module that talks to Stripe: one `stripe.StripeClient` per app, errors translated once.

Every method returns plain dicts (Stripe's JSON), so that services never handle SDK objects. Every call
that creates something takes an idempotency key derived from one of our rows.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Iterator

import stripe

from ..errors import CardDeclined, ConfigurationError, GatewayError, NotFound, WebhookSignatureError
from ..core.i18n import gettext as _

log = logging.getLogger(__name__)

#: Placeholder key of the shared client; every request passes the key in force (settings page or config).
_UNSET_KEY = "sk_unset"


class StripeGateway:
    def __init__(self, client: stripe.StripeClient):
        self._client = client

    @classmethod
    def from_config(cls, config) -> "StripeGateway":
        base = config.get("LMS_STRIPE_API_BASE")
        client = stripe.StripeClient(
            config.get("LMS_STRIPE_SECRET_KEY") or _UNSET_KEY,
            base_addresses={"api": base.rstrip("/")} if base else None,
            http_client=stripe.RequestsClient(timeout=config["LMS_STRIPE_TIMEOUT"]),
            max_network_retries=config["LMS_STRIPE_MAX_NETWORK_RETRIES"],
        )
        return cls(client)

    @property
    def v1(self):
        return self._client.v1

    # -- calls ---------------------------------------------------------------------------------------

    def create_tax_rate(self, params: dict, *, api_key: str, idempotency_key: str) -> dict:
        return self._call(self.v1.tax_rates.create, params, api_key=api_key, idempotency_key=idempotency_key)

    def create_checkout_session(self, params: dict, *, api_key: str, idempotency_key: str) -> dict:
        return self._call(self.v1.checkout.sessions.create, params, api_key=api_key,
                          idempotency_key=idempotency_key)

    def retrieve_checkout_session(self, session_id: str, *, api_key: str, expand=()) -> dict:
        return self._call(self.v1.checkout.sessions.retrieve, session_id, {"expand": list(expand)} if expand else None,
                          api_key=api_key)

    def expire_checkout_session(self, session_id: str, *, api_key: str) -> dict:
        return self._call(self.v1.checkout.sessions.expire, session_id, api_key=api_key)

    def retrieve_invoice(self, invoice_id: str, *, api_key: str) -> dict:
        return self._call(self.v1.invoices.retrieve, invoice_id, api_key=api_key)

    def retrieve_payment_intent(self, payment_intent_id: str, *, api_key: str) -> dict:
        return self._call(self.v1.payment_intents.retrieve, payment_intent_id, {"expand": ["latest_charge"]},
                          api_key=api_key)

    def retrieve_refund(self, refund_id: str, *, api_key: str) -> dict:
        return self._call(self.v1.refunds.retrieve, refund_id, api_key=api_key)

    def retrieve_dispute(self, dispute_id: str, *, api_key: str) -> dict:
        return self._call(self.v1.disputes.retrieve, dispute_id, api_key=api_key)

    def create_credit_note(self, params: dict, *, api_key: str, idempotency_key: str) -> dict:
        return self._call(self.v1.credit_notes.create, params, api_key=api_key, idempotency_key=idempotency_key)

    def create_refund(self, params: dict, *, api_key: str, idempotency_key: str) -> dict:
        return self._call(self.v1.refunds.create, params, api_key=api_key, idempotency_key=idempotency_key)

    def list_all(self, resource: str, params: dict, *, api_key: str) -> Iterator[dict]:
        """Every object of a list endpoint (``checkout.sessions``, ``invoices``, ``refunds``, ``disputes``)."""
        service = self.v1
        for part in resource.split("."):
            service = getattr(service, part)
        page = self._call(service.list, {"limit": 100, **params}, api_key=api_key, raw=True)
        try:
            for item in page.auto_paging_iter():
                yield item.to_dict()
        except stripe.StripeError as err:
            raise _translate(err) from err

    # -- webhooks ------------------------------------------------------------------------------------

    @staticmethod
    def verify_event(payload: bytes, signature: str | None, secrets: list[str], tolerance: int) -> dict:
        """The event in a webhook body, once its signature checks out against one of the secrets."""
        if not signature:
            raise WebhookSignatureError("Missing Stripe-Signature header.")
        if not secrets:
            raise ConfigurationError("No webhook signing secret is configured.")
        for secret in secrets:
            try:
                stripe.WebhookSignature.verify_header(payload.decode("utf-8"), signature, secret, tolerance)
            except stripe.SignatureVerificationError:
                continue
            except UnicodeDecodeError as err:
                raise WebhookSignatureError("The webhook body is not UTF-8.") from err
            return _load_json(payload)
        raise WebhookSignatureError("The webhook signature does not match, or its timestamp is too old.")

    # -- plumbing ------------------------------------------------------------------------------------

    def _call(self, method, *args, api_key: str, idempotency_key: str | None = None, raw: bool = False) -> Any:
        if not api_key:
            raise ConfigurationError(_("Stripe's secret key is not set: enter it on the payment settings page."))
        options: dict = {"api_key": api_key}
        if idempotency_key:
            options["idempotency_key"] = idempotency_key
        args = tuple(a for a in args if a is not None)
        try:
            result = method(*args, options=options)
        except stripe.StripeError as err:
            raise _translate(err) from err
        return result if raw else result.to_dict()


def _load_json(payload: bytes) -> dict:
    try:
        event = json.loads(payload)
    except ValueError as err:
        raise WebhookSignatureError("The webhook body is not JSON.") from err
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        raise WebhookSignatureError("The webhook body is not a Stripe event.")
    return event


def _translate(err: stripe.StripeError) -> Exception:
    """Stripe's error as one of ours; the message says what to do next."""
    message = err.user_message or str(err)
    code = getattr(err, "code", None)
    log.warning("Stripe error %s (%s): %s", type(err).__name__, code, err)
    if isinstance(err, stripe.CardError):
        return CardDeclined(message or _("The card was declined."), code=code)
    if isinstance(err, stripe.AuthenticationError | stripe.PermissionError):
        return ConfigurationError(
            _("Stripe refused the API key: check the secret key on the payment settings page."), code=code)
    if isinstance(err, stripe.InvalidRequestError) and code == "resource_missing":
        return NotFound(message or _("Stripe does not know this object."), code=code)
    if isinstance(err, stripe.InvalidRequestError | stripe.IdempotencyError):
        return GatewayError(_("Stripe refused the request: %(message)s", message=message), code=code, retryable=False)
    if isinstance(err, stripe.RateLimitError):
        return GatewayError(_("Stripe is busy right now: try again in a minute."), code=code)
    if isinstance(err, stripe.APIError) and not isinstance(err, stripe.APIConnectionError):
        return GatewayError(_("Stripe could not be reached: nothing was changed, try again in a moment."),
                            code=code, answered=True)
    return GatewayError(_("Stripe could not be reached: nothing was changed, try again in a moment."), code=code)
