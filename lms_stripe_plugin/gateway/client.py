"""The only module that talks to Stripe: one `stripe.StripeClient` per app, errors translated once.

Every request names the API version the plugin is written for (`API_VERSION`), and every request's
parameters are the SDK's typed params (its ``*Params`` TypedDicts), so that mypy checks what is sent
against the pinned API. Every method returns plain dicts (Stripe's JSON), so that services never handle
SDK objects. Every call that creates something takes an idempotency key derived from one of our rows.

Connect: ``gateway.for_account("acct_...")`` is the same gateway making every call on a school's connected
account (the SDK's ``stripe_account`` option, the ``Stripe-Account`` header: direct charges, its customers,
invoices, refunds...); the plain gateway makes them on the account whose key it is given, as before. The
platform's own Connect calls (`create_connected_account`, `create_account_link`) refuse a bound gateway.
Connected accounts are Accounts v1 configured by their controller properties (`CONNECTED_ACCOUNT_CONTROLLER`).
"""
from __future__ import annotations

import json
import time
from typing import Any, Callable, Iterator

import stripe

from ..core.i18n import gettext as _
from ..core.logs import get_logger
from ..errors import CardDeclined, ConfigurationError, GatewayError, NotFound, WebhookSignatureError
from .types import (AccountCreateParams, AccountCreateParamsController, AccountLinkCreateParams,
                    CreditNoteCreateParams, CreditNoteListParams, CustomerBalanceTransactionCreateParams,
                    CustomerBalanceTransactionListParams, CustomerCreateParams, CustomerUpdateParams,
                    DisputeListParams, InvoiceAddLinesParams, InvoiceAttachPaymentParams, InvoiceCreateParams,
                    InvoiceListParams, InvoicePaymentListParams,
                    PaymentMethodConfigurationCreateParams, PaymentMethodConfigurationListParams,
                    PaymentMethodConfigurationUpdateParams, PaymentRecordReportPaymentParams, RefundCreateParams,
                    RefundListParams, SessionCreateParams,
                    SessionListParams, TaxRateCreateParams)

log = get_logger(__name__)

#: The Stripe API version the plugin is written for, sent with every request. The SDK's major version
#: (pinned in pyproject.toml) carries the typed params of this version.
API_VERSION = "2026-10-28.endive"

#: Placeholder key of the shared client; every request passes the key in force (settings page or config).
_UNSET_KEY = "sk_unset"

#: How the platform's connected accounts are configured: businesses with their own full Stripe Dashboard that
#: pay Stripe's fees themselves, Stripe liable for their negative balances and collecting their requirements
#: (the configuration of a "Standard" account, expressed with Accounts v1's controller properties, as Stripe
#: recommends instead of ``type``; docs.stripe.com/connect/migrate-to-controller-properties).
CONNECTED_ACCOUNT_CONTROLLER: AccountCreateParamsController = {
    "stripe_dashboard": {"type": "full"},
    "fees": {"payer": "account"},
    "losses": {"payments": "stripe"},
    "requirement_collection": "stripe",
}


class StripeGateway:
    def __init__(self, client: stripe.StripeClient, *, stripe_account: str | None = None):
        self._client = client
        self._stripe_account = stripe_account

    def for_account(self, account_id: str) -> "StripeGateway":
        """This gateway, making every call on the connected account ``account_id`` (``Stripe-Account``)."""
        if not account_id or not account_id.startswith("acct_"):
            raise ConfigurationError(_("Not a Stripe connected account id: %(account)s.", account=repr(account_id)))
        return StripeGateway(self._client, stripe_account=account_id)

    @property
    def stripe_account(self) -> str | None:
        """The connected account every call is made on; None for the account whose key is used."""
        return self._stripe_account

    @classmethod
    def from_config(cls, config) -> "StripeGateway":
        base = config.get("LMS_STRIPE_API_BASE")
        client = stripe.StripeClient(
            config.get("LMS_STRIPE_SECRET_KEY") or _UNSET_KEY,
            stripe_version=API_VERSION,
            base_addresses={"api": base.rstrip("/")} if base else {},
            http_client=stripe.RequestsClient(timeout=config["LMS_STRIPE_TIMEOUT"]),
            max_network_retries=config["LMS_STRIPE_MAX_NETWORK_RETRIES"],
        )
        return cls(client)

    @property
    def v1(self):
        return self._client.v1

    # -- Connect: the platform's connected accounts and their onboarding --------------------------------

    def create_connected_account(self, params: AccountCreateParams, *, api_key: str | None,
                                 idempotency_key: str) -> dict:
        """A connected account of the platform, configured by `CONNECTED_ACCOUNT_CONTROLLER` (whatever
        ``params`` says of the controller); its onboarding is not started."""
        self._platform_only("create_connected_account")
        sent: AccountCreateParams = {**params, "controller": CONNECTED_ACCOUNT_CONTROLLER}
        return self._call(lambda o: self.v1.accounts.create(sent, o), api_key, idempotency_key)

    def retrieve_account(self, account_id: str, *, api_key: str | None) -> dict:
        """A connected account as Stripe has it now: ``details_submitted``, ``charges_enabled``,
        ``payouts_enabled``, ``requirements``..."""
        return self._call(lambda o: self.v1.accounts.retrieve(account_id, None, o), api_key)

    def create_account_link(self, params: AccountLinkCreateParams, *, api_key: str | None) -> dict:
        """A single-use URL (``url``, good until ``expires_at``) to Stripe's hosted onboarding of a connected
        account. No idempotency key: each call must give a new link, since a link opened once (or expired)
        only sends the browser to ``refresh_url``, where the platform asks for another."""
        self._platform_only("create_account_link")
        return self._call(lambda o: self.v1.account_links.create(params, o), api_key)

    def _platform_only(self, name: str) -> None:
        if self._stripe_account is not None:
            raise ConfigurationError(_("%(call)s is made by the platform for its connected accounts: call it on the "
                                       "platform's gateway, not on one made for a connected account.", call=name))

    # -- calls ---------------------------------------------------------------------------------------

    def create_tax_rate(self, params: TaxRateCreateParams, *, api_key: str | None, idempotency_key: str) -> dict:
        return self._call(lambda o: self.v1.tax_rates.create(params, o), api_key, idempotency_key)

    # -- the payment methods Checkout offers (Apple Pay and Google Pay among them) ------------------------

    def create_payment_method_configuration(self, params: PaymentMethodConfigurationCreateParams, *,
                                            api_key: str | None, idempotency_key: str) -> dict:
        return self._call(lambda o: self.v1.payment_method_configurations.create(params, o), api_key,
                          idempotency_key)

    def retrieve_payment_method_configuration(self, configuration_id: str, *, api_key: str | None) -> dict:
        return self._call(lambda o: self.v1.payment_method_configurations.retrieve(configuration_id, None, o),
                          api_key)

    def update_payment_method_configuration(self, configuration_id: str,
                                            params: PaymentMethodConfigurationUpdateParams, *,
                                            api_key: str | None, idempotency_key: str) -> dict:
        return self._call(lambda o: self.v1.payment_method_configurations.update(configuration_id, params, o),
                          api_key, idempotency_key)

    def list_payment_method_configurations(self, params: PaymentMethodConfigurationListParams, *,
                                           api_key: str | None) -> Iterator[dict]:
        return self._every(lambda o: self.v1.payment_method_configurations.list(params, o), api_key)

    def create_checkout_session(self, params: SessionCreateParams, *, api_key: str | None,
                                idempotency_key: str) -> dict:
        return self._call(lambda o: self.v1.checkout.sessions.create(params, o), api_key, idempotency_key)

    def retrieve_checkout_session(self, session_id: str, *, api_key: str | None, expand=()) -> dict:
        return self._call(lambda o: self.v1.checkout.sessions.retrieve(session_id, {"expand": list(expand)}, o),
                          api_key)

    def expire_checkout_session(self, session_id: str, *, api_key: str | None) -> dict:
        return self._call(lambda o: self.v1.checkout.sessions.expire(session_id, None, o), api_key)

    def retrieve_invoice(self, invoice_id: str, *, api_key: str | None, expand=()) -> dict:
        return self._call(lambda o: self.v1.invoices.retrieve(invoice_id, {"expand": list(expand)}, o), api_key)

    def retrieve_payment_intent(self, payment_intent_id: str, *, api_key: str | None) -> dict:
        return self._call(lambda o: self.v1.payment_intents.retrieve(payment_intent_id,
                                                                      {"expand": ["latest_charge"]}, o), api_key)

    def retrieve_refund(self, refund_id: str, *, api_key: str | None) -> dict:
        return self._call(lambda o: self.v1.refunds.retrieve(refund_id, None, o), api_key)

    def retrieve_dispute(self, dispute_id: str, *, api_key: str | None) -> dict:
        return self._call(lambda o: self.v1.disputes.retrieve(dispute_id, None, o), api_key)

    def create_credit_note(self, params: CreditNoteCreateParams, *, api_key: str | None,
                           idempotency_key: str) -> dict:
        return self._call(lambda o: self.v1.credit_notes.create(params, o), api_key, idempotency_key)

    def list_credit_notes(self, params: CreditNoteListParams, *, api_key: str | None) -> Iterator[dict]:
        return self._every(lambda o: self.v1.credit_notes.list(params, o), api_key)

    def create_refund(self, params: RefundCreateParams, *, api_key: str | None, idempotency_key: str) -> dict:
        return self._call(lambda o: self.v1.refunds.create(params, o), api_key, idempotency_key)

    # -- invoices an administrator creates, and the payments attached to them --------------------------

    def create_customer(self, params: CustomerCreateParams, *, api_key: str | None, idempotency_key: str) -> dict:
        return self._call(lambda o: self.v1.customers.create(params, o), api_key, idempotency_key)

    def update_customer(self, customer_id: str, params: CustomerUpdateParams, *, api_key: str | None) -> dict:
        """Change a customer (an update sent twice leaves it as once: no idempotency key is needed)."""
        return self._call(lambda o: self.v1.customers.update(customer_id, params, o), api_key)

    def create_invoice(self, params: InvoiceCreateParams, *, api_key: str | None, idempotency_key: str) -> dict:
        return self._call(lambda o: self.v1.invoices.create(params, o), api_key, idempotency_key)

    def add_invoice_lines(self, invoice_id: str, params: InvoiceAddLinesParams, *, api_key: str | None,
                          idempotency_key: str) -> dict:
        return self._call(lambda o: self.v1.invoices.add_lines(invoice_id, params, o), api_key, idempotency_key)

    def finalize_invoice(self, invoice_id: str, *, api_key: str | None, idempotency_key: str) -> dict:
        return self._call(lambda o: self.v1.invoices.finalize_invoice(invoice_id, {"auto_advance": False}, o),
                          api_key, idempotency_key)

    def void_invoice(self, invoice_id: str, *, api_key: str | None, idempotency_key: str) -> dict:
        return self._call(lambda o: self.v1.invoices.void_invoice(invoice_id, None, o), api_key, idempotency_key)

    # -- a learner's prepaid balance, mirrored to the customer's credit balance -------------------------------

    def create_balance_transaction(self, customer_id: str, params: CustomerBalanceTransactionCreateParams, *,
                                   api_key: str | None, idempotency_key: str) -> dict:
        return self._call(lambda o: self.v1.customers.balance_transactions.create(customer_id, params, o), api_key,
                          idempotency_key)

    def list_balance_transactions(self, customer_id: str, params: CustomerBalanceTransactionListParams, *,
                                  api_key: str | None) -> Iterator[dict]:
        return self._every(lambda o: self.v1.customers.balance_transactions.list(customer_id, params, o), api_key)

    def attach_payment(self, invoice_id: str, params: InvoiceAttachPaymentParams, *, api_key: str | None,
                       idempotency_key: str) -> dict:
        return self._call(lambda o: self.v1.invoices.attach_payment(invoice_id, params, o), api_key,
                          idempotency_key)

    def report_payment_record(self, params: PaymentRecordReportPaymentParams, *, api_key: str | None,
                              idempotency_key: str) -> dict:
        """Report a payment to Stripe as a Payment Record, which an invoice can then count as paid."""
        return self._call(lambda o: self.v1.payment_records.report_payment(params, o), api_key, idempotency_key)

    def list_invoice_payments(self, params: InvoicePaymentListParams, *, api_key: str | None) -> Iterator[dict]:
        return self._every(lambda o: self.v1.invoice_payments.list(params, o), api_key)

    def list_checkout_sessions(self, params: SessionListParams, *, api_key: str | None) -> Iterator[dict]:
        return self._every(lambda o: self.v1.checkout.sessions.list(params, o), api_key)

    def list_invoices(self, params: InvoiceListParams, *, api_key: str | None) -> Iterator[dict]:
        return self._every(lambda o: self.v1.invoices.list(params, o), api_key)

    def list_refunds(self, params: RefundListParams, *, api_key: str | None) -> Iterator[dict]:
        return self._every(lambda o: self.v1.refunds.list(params, o), api_key)

    def list_disputes(self, params: DisputeListParams, *, api_key: str | None) -> Iterator[dict]:
        return self._every(lambda o: self.v1.disputes.list(params, o), api_key)

    def _every(self, first_page: Callable[[Any], Any], api_key: str | None) -> Iterator[dict]:
        """Every object of a list, page after page (ask for ``limit`` 100 to make fewer calls)."""
        page = self._call(first_page, api_key, raw=True)
        try:
            for item in page.auto_paging_iter():
                yield item.to_dict()
        except stripe.StripeError as err:
            raise _translate(err) from err

    # -- webhooks ------------------------------------------------------------------------------------

    @staticmethod
    def verify_event(payload: bytes, signature: str | None, secrets: list[str], tolerance: int, *,
                     parsed: Any = None) -> dict:
        """The event in a webhook body, once its signature checks out against one of the secrets and its
        timestamp is within ``tolerance`` seconds of now, before or after (0: no time check, as the SDK).
        ``parsed``: the body as the caller parsed it already (not parsed again; its shape is checked all the
        same)."""
        if not signature:
            raise WebhookSignatureError("Missing Stripe-Signature header.")
        if not secrets:
            raise ConfigurationError("No webhook signing secret is configured.")
        if not signature.isascii():
            # Stripe's header is ASCII; the SDK's hmac.compare_digest raises TypeError on anything else.
            raise WebhookSignatureError("The webhook signature header is not ASCII.")
        for secret in secrets:
            try:
                stripe.WebhookSignature.verify_header(payload.decode("utf-8"), signature, secret, tolerance)
            except stripe.SignatureVerificationError:
                continue
            except UnicodeDecodeError as err:
                raise WebhookSignatureError("The webhook body is not UTF-8.") from err
            _check_not_future(signature, tolerance)
            return _load_json(payload) if parsed is None else _as_event(parsed)
        raise WebhookSignatureError("The webhook signature does not match, or its timestamp is too old.")

    # -- plumbing ------------------------------------------------------------------------------------

    def _call(self, request: Callable[[Any], Any], api_key: str | None, idempotency_key: str | None = None,
              raw: bool = False) -> Any:
        if not api_key:
            raise ConfigurationError(_("Stripe's secret key is not set: enter it on the payment settings page."))
        options: dict = {"api_key": api_key}
        if self._stripe_account:
            options["stripe_account"] = self._stripe_account
            # A key names what our row asks for, whichever school: on a connected account it also names the
            # account, so that two schools' requests (a learner of both, one VAT rate) never share a key.
            idempotency_key = f"{self._stripe_account}-{idempotency_key}" if idempotency_key else None
        if idempotency_key:
            options["idempotency_key"] = idempotency_key
        try:
            result = request(options)
        except stripe.StripeError as err:
            raise _translate(err) from err
        return result if raw else result.to_dict()


def _check_not_future(signature: str, tolerance: int) -> None:
    """Refuse a signature dated later than ``tolerance`` seconds from now: the SDK only refuses old ones
    (``verify_header`` checks ``timestamp < now - tolerance``), so a replayable signature dated ahead
    would otherwise stay valid until that date. Read as the SDK reads it: the first ``t=`` item."""
    if not tolerance:
        return
    stamps = [item.split("=", 2) for item in signature.split(",")]
    timestamp = int([item[1] for item in stamps if item[0] == "t"][0])  # the SDK has parsed it already
    if timestamp > time.time() + tolerance:
        raise WebhookSignatureError("The webhook signature is dated in the future, beyond the tolerance.")


def _load_json(payload: bytes) -> dict:
    try:
        event = json.loads(payload)
    except (ValueError, RecursionError) as err:  # RecursionError: nested deeper than Python parses
        raise WebhookSignatureError("The webhook body is not JSON.") from err
    return _as_event(event)


def _as_event(event: Any) -> dict:
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        raise WebhookSignatureError("The webhook body is not a Stripe event.")
    return event


def _error_code(err: stripe.StripeError) -> str | None:
    """The error's ``code``; the SDK leaves it off its PermissionError, the body still has it."""
    return getattr(err, "code", None) or getattr(getattr(err, "error", None), "code", None)


def _translate(err: stripe.StripeError) -> Exception:
    """Stripe's error as one of ours; the message says what to do next."""
    message = err.user_message or str(err)
    code = getattr(err, "code", None)
    log.warning("Stripe error %s (%s): %s", type(err).__name__, code, err)
    if isinstance(err, stripe.CardError):
        return CardDeclined(message or _("The card was declined."), code=code)
    if isinstance(err, stripe.PermissionError) and _error_code(err) == "account_invalid":
        return ConfigurationError(
            _("Stripe no longer gives access to this school's Stripe account: it may have been disconnected. "
              "Connect the school's account again."), code="account_invalid")
    if isinstance(err, stripe.AuthenticationError | stripe.PermissionError):
        return ConfigurationError(
            _("Stripe refused the API key: check the secret key on the payment settings page."), code=code)
    if isinstance(err, stripe.InvalidRequestError) and code == "resource_missing":
        return NotFound(message or _("Stripe does not know this object."), code=code)
    if isinstance(err, stripe.InvalidRequestError | stripe.IdempotencyError):
        return GatewayError(_("Stripe refused the request: %(message)s", message=message), code=code, retryable=False)
    if isinstance(err, stripe.APIError) and err.http_status == 409:
        # The same idempotency key is in use by a request still running (a double click): Stripe keeps no
        # answer for it, so it is retried with the same key ("idempotency_key_in_use"; the SDK reads the error
        # type of a 400 or 404 only, and makes any other status an APIError).
        return GatewayError(_("Stripe is still handling the same request: try again in a minute."), code=code)
    if isinstance(err, stripe.RateLimitError):
        return GatewayError(_("Stripe is busy right now: try again in a minute."), code=code)
    if isinstance(err, stripe.APIError) and not isinstance(err, stripe.APIConnectionError):
        return GatewayError(_("Stripe could not be reached: nothing was changed, try again in a moment."),
                            code=code, answered=True)
    return GatewayError(_("Stripe could not be reached: nothing was changed, try again in a moment."), code=code)
