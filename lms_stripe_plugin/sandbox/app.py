"""The sandbox's own Flask application."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from . import api, control, hosted, onboarding
from .checkout import sweep_expired_sessions
from .errors import StripeError, unrecognized_url
from .payment_method_configurations import seed_default_configuration
from .resources import seed_promotion_codes
from .state import SandboxConfig, SandboxState
from .webhooks import DeliveryOrder, WebhookSink

log = logging.getLogger(__name__)


def create_app(
    *,
    webhook_url: str | None = None,
    webhook_secret: str = "whsec_sandbox",
    webhook_sink: WebhookSink | None = None,
    public_url: str | None = None,
    delayed_settle_seconds: float | None = None,
    deliver_async: bool = True,
    webhook_retry_backoff: float = 0.5,
    webhook_max_attempts: int = 5,
    refund_failure_seconds: float = 1.0,
    webhook_shuffle: bool = False,
    webhook_concurrency: int = 1,
    webhook_shuffle_seed: int | None = None,
    terms_of_service_url: str | None = None,
    business_name: str | None = None,
    business_address: tuple[str, ...] | list[str] = (),
    connect_webhook_url: str | None = None,
    connect_webhook_secret: str = "whsec_sandbox_connect",
    connect_webhook_sink: WebhookSink | None = None,
    account_verification: str = "verified",
) -> Flask:
    """Build a sandbox app; its :class:`SandboxState` is ``app.extensions["stripe_sandbox"]``.

    ``webhook_sink(payload, headers) -> status`` replaces the HTTP POST to ``webhook_url``.
    ``public_url`` is the base of ``session.url`` and document links (default: the request's
    host URL). ``delayed_settle_seconds`` settles SEPA debits automatically after that delay.
    ``deliver_async=False`` delivers webhooks before each request answers (for tests).
    ``webhook_retry_backoff`` and ``webhook_max_attempts`` tune webhook retries;
    ``refund_failure_seconds`` is how long refunds on test cards 4000 0000 0000 5126 and 7726
    wait before they fail or succeed. ``webhook_shuffle`` delivers the events of each request in
    random order (``webhook_shuffle_seed`` to repeat an order) and ``webhook_concurrency``
    delivers that many at once: Stripe guarantees neither order nor one-at-a-time delivery.
    ``terms_of_service_url`` is the account's terms of service (Dashboard, public details):
    without it Checkout refuses ``consent_collection[terms_of_service]=required``. ``business_name`` and
    ``business_address`` (lines) are the account's public business details, at the top of its invoices
    (``account_name``) and credit notes.

    Connect: events of connected accounts (they carry ``account``) go to the Connect endpoint,
    ``connect_webhook_url`` or ``connect_webhook_sink``, signed with ``connect_webhook_secret``; the platform's
    own events go to ``webhook_url``/``webhook_sink``. ``account_verification`` is what verifying a connected
    account's submitted details gives unless ``/_sandbox/accounts/{id}/verification`` says otherwise:
    ``verified`` (test mode's immediate verification), ``documents_required`` or ``pending``.
    """
    if account_verification not in ("verified", "documents_required", "pending"):
        raise ValueError("account_verification must be verified, documents_required or pending.")
    app = Flask(__name__, template_folder="templates")
    config = SandboxConfig(
        webhook_url=webhook_url, webhook_secret=webhook_secret, webhook_sink=webhook_sink, public_url=public_url,
        delayed_settle_seconds=delayed_settle_seconds, deliver_async=deliver_async,
        webhook_retry_backoff=webhook_retry_backoff, webhook_max_attempts=webhook_max_attempts,
        refund_failure_seconds=refund_failure_seconds,
        delivery_order=DeliveryOrder(webhook_shuffle, webhook_concurrency, webhook_shuffle_seed),
        terms_of_service_url=terms_of_service_url, business_name=business_name or "Stripe Sandbox",
        business_address=tuple(business_address), connect_webhook_url=connect_webhook_url,
        connect_webhook_secret=connect_webhook_secret, connect_webhook_sink=connect_webhook_sink,
        account_verification=account_verification,
    )
    state = SandboxState(config, seed=_seed, on_clock=sweep_expired_sessions)
    app.extensions["stripe_sandbox"] = state
    app.register_blueprint(api.bp)
    app.register_blueprint(control.bp)
    app.register_blueprint(hosted.bp)
    app.register_blueprint(onboarding.bp)
    app.register_error_handler(StripeError, _stripe_error)
    app.register_error_handler(404, _not_found)
    app.register_error_handler(405, _not_found)
    app.register_error_handler(Exception, _unexpected)
    # Synchronous webhook delivery happens here, after every lock taken by the request is released.
    app.teardown_request(lambda _exc: state.flush_deliveries())
    return app


def _seed(state: SandboxState) -> None:
    """What every sandbox starts with: its promotion codes and its default payment method configuration."""
    seed_promotion_codes(state)
    seed_default_configuration(state)


def _stripe_error(error: StripeError) -> Response:
    response = jsonify(error.to_dict())
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def _unexpected(error: Exception) -> Response | HTTPException:
    if isinstance(error, HTTPException):
        return error
    # A bug in the sandbox still answers in Stripe's shape, so SDK clients raise APIError.
    log.exception("Stripe sandbox failed on %s %s", request.method, request.path)
    return _stripe_error(StripeError(f"The Stripe sandbox failed: {type(error).__name__}: {error}",
                                     status=500, type="api_error"))


def _not_found(_error: Exception) -> Response:
    return _stripe_error(unrecognized_url(request.method, request.path))
