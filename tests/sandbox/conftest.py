"""Fixtures for the Stripe sandbox tests: a sandbox on 127.0.0.1 (port 0) driven by the real SDK."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import stripe

from lms_stripe_plugin.sandbox import SandboxServer

WEBHOOK_SECRET = "whsec_sandbox_tests"
CONNECT_WEBHOOK_SECRET = "whsec_sandbox_connect_tests"


class WebhookRecorder:
    """A webhook sink that records deliveries and answers the statuses queued in ``statuses``."""

    def __init__(self) -> None:
        self.calls: list[tuple[bytes, dict[str, str]]] = []
        self.statuses: list[int] = []

    def __call__(self, payload: bytes, headers: dict[str, str]) -> int:
        self.calls.append((payload, dict(headers)))
        return self.statuses.pop(0) if self.statuses else 200

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every delivered event body, in delivery order."""
        return [json.loads(payload) for payload, _ in self.calls]

    def types(self) -> list[str]:
        """Types of the delivered events, in delivery order."""
        return [event["type"] for event in self.events]


def _make_client(url: str, *, timeout: float = 20, retries: int = 0, api_key: str = "sk_test_sandbox") -> stripe.StripeClient:
    """A StripeClient pointed at the sandbox, as the plugin builds it."""
    return stripe.StripeClient(api_key, base_addresses={"api": url},
                               http_client=stripe.RequestsClient(timeout=timeout), max_network_retries=retries)


def _wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture
def make_client() -> Callable[..., stripe.StripeClient]:
    """Factory of StripeClients: ``make_client(url, timeout=1, retries=0, api_key=...)``."""
    return _make_client


@pytest.fixture
def wait_until() -> Callable[..., bool]:
    """``wait_until(condition, timeout=10)`` polls until the condition holds."""
    return _wait_until


@pytest.fixture
def webhook_secret() -> str:
    return WEBHOOK_SECRET


@pytest.fixture
def webhooks() -> WebhookRecorder:
    return WebhookRecorder()


@pytest.fixture
def connect_webhook_secret() -> str:
    return CONNECT_WEBHOOK_SECRET


@pytest.fixture
def connect_webhooks() -> WebhookRecorder:
    """What the sandbox delivers to the Connect endpoint (events of connected accounts)."""
    return WebhookRecorder()


@pytest.fixture
def sandbox(webhooks: WebhookRecorder, connect_webhooks: WebhookRecorder) -> Iterator[SandboxServer]:
    """Synchronous webhook delivery into ``webhooks`` (and ``connect_webhooks`` for connected accounts' events);
    5126 refunds fail only when the clock is advanced; the account has terms of service (the sessions of
    ``session_params`` ask for consent to them)."""
    server = SandboxServer(deliver_async=False, webhook_sink=webhooks, webhook_secret=WEBHOOK_SECRET,
                           connect_webhook_sink=connect_webhooks, connect_webhook_secret=CONNECT_WEBHOOK_SECRET,
                           webhook_retry_backoff=0.01, refund_failure_seconds=3600,
                           terms_of_service_url="https://lms.example/terms")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def client(sandbox: SandboxServer) -> stripe.StripeClient:
    return _make_client(sandbox.url)


@pytest.fixture
def control(sandbox: SandboxServer) -> Callable[..., requests.Response]:
    """Call a ``/_sandbox`` control endpoint: ``control("/clock/advance", {"seconds": 60})``."""

    def call(path: str, body: dict[str, Any] | None = None, method: str = "POST") -> requests.Response:
        return requests.request(method, f"{sandbox.url}/_sandbox{path}", json=body, timeout=20)

    return call


@pytest.fixture
def vat(client: stripe.StripeClient) -> stripe.TaxRate:
    return client.v1.tax_rates.create(params={
        "display_name": "VAT", "percentage": 19, "inclusive": True, "country": "DE", "description": "VAT Germany",
    })


@pytest.fixture
def session_params(vat: stripe.TaxRate) -> Callable[..., dict[str, Any]]:
    """The full parameter set the plugin sends, with ``overrides`` merged on top."""

    def build(**overrides: Any) -> dict[str, Any]:
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [{
                "price_data": {
                    "currency": "eur", "unit_amount": 11900, "tax_behavior": "inclusive",
                    "product_data": {"name": "Python for Data Science", "description": "12-week course",
                                     "metadata": {"course_id": "42"}},
                },
                "quantity": 1,
                "tax_rates": [vat.id],
            }],
            "invoice_creation": {"enabled": True, "invoice_data": {
                "description": "Course purchase", "metadata": {"order_id": "12"}, "footer": "Thank you!",
                "custom_fields": [{"name": "Order", "value": "12"}],
            }},
            "allow_promotion_codes": True,
            "allowed_payment_method_types": ["card", "klarna", "sepa_debit"],
            "customer_creation": "always",
            "customer_email": "learner@example.com",
            "locale": "en",
            "client_reference_id": "user-7",
            "metadata": {"order_id": "12"},
            "expires_at": int(time.time()) + 3600,
            "consent_collection": {"terms_of_service": "required"},
            "custom_text": {"terms_of_service_acceptance": {"message": "I accept the course terms."}},
            "success_url": "https://lms.example/checkout/success?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://lms.example/courses/42",
            "payment_intent_data": {"metadata": {"order_id": "12"}},
        }
        params.update(overrides)
        return params

    return build


@pytest.fixture
def create_session(client: stripe.StripeClient, session_params: Callable[..., dict[str, Any]]) -> Callable[..., Any]:
    def create(**overrides: Any) -> stripe.checkout.Session:
        return client.v1.checkout.sessions.create(params=session_params(**overrides))

    return create


@pytest.fixture
def pay(control: Callable[..., requests.Response]) -> Callable[..., requests.Response]:
    """Pay a session through the control endpoint (card 4242 unless told otherwise)."""

    def pay_session(session_id: str, **body: Any) -> requests.Response:
        return control(f"/checkout/sessions/{session_id}/pay", body)

    return pay_session


@pytest.fixture
def pay_on(make_client: Callable[..., stripe.StripeClient],
           session_params: Callable[..., dict[str, Any]]) -> Callable[..., tuple[stripe.StripeClient, str]]:
    """On a sandbox server of a test's own (its own options): create a session and pay it with ``body``
    (the control endpoint's JSON). Returns that server's client and the session id. The session has no
    tax rate (the ``vat`` fixture's rate lives on the default server) and asks for no consent to terms
    (that server may have none)."""

    def run(server: Any, **body: Any) -> tuple[stripe.StripeClient, str]:
        client = make_client(server.url)
        params = session_params(consent_collection=None, custom_text=None)
        params["line_items"][0].pop("tax_rates")
        session = client.v1.checkout.sessions.create(params=params)
        requests.post(f"{server.url}/_sandbox/checkout/sessions/{session.id}/pay", json=body, timeout=10)
        return client, session.id

    return run


@pytest.fixture
def paid_session(client: stripe.StripeClient, create_session: Callable[..., Any],
                 pay: Callable[..., requests.Response]) -> Callable[..., Any]:
    """Create and pay a session; returns it with invoice and payment intent (and charge) expanded."""

    def make(card: str = "4242424242424242", **overrides: Any) -> stripe.checkout.Session:
        session = create_session(**overrides)
        response = pay(session.id, card=card)
        assert response.status_code == 200, response.text
        return client.v1.checkout.sessions.retrieve(
            session.id, params={"expand": ["invoice", "payment_intent.latest_charge"]})

    return make
