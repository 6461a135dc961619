"""Stripe objects of the payment request tests, and a message backend that records what it is given.

Stubbed objects are Stripe's example objects (tests/fixtures/stripe) with only the fields a test is about:
an administrator's invoice (its metadata names our invoice, never a purchase), the Checkout Session of a
Pay click (its metadata and client reference name our attempt), and an invoice payment.
"""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import responses

from lms_stripe_plugin import messages
from lms_stripe_plugin.messages import outbox
from lms_stripe_plugin.core.models import PaymentAttempt, utcnow

from .conftest import STRIPE, stripe_object

STRIPE_INVOICE = "in_test_open_1"  # the Stripe id `request_support.open_invoice` gives its invoice
CREATED = 1767225600  # an event's `created`, in Stripe's clock (Unix seconds)


def admin_invoice(invoice_id: int, *, stripe_id: str = STRIPE_INVOICE, status: str = "open", paid: int = 0,
                  gross: int = 30000, number: str = "ABC-0100", payments: list[dict] | None = None) -> dict:
    """Stripe's invoice of one of our administrators' invoices, ``paid`` of ``gross`` paid."""
    remaining = 0 if status in ("paid", "void") else gross - paid
    invoice = stripe_object(
        "invoice", id=stripe_id, number=number, total=gross, amount_due=gross, amount_paid=paid,
        amount_remaining=remaining, currency="eur", status=status, collection_method="send_invoice",
        metadata={"lms_invoice_id": str(invoice_id), "lms_user_id": "u1"}, customer="cus_test_1",
        customer_email="lea@example.com", invoice_pdf=f"https://pay.stripe.com/invoice/{stripe_id}/pdf",
        hosted_invoice_url=f"https://invoice.stripe.com/i/{stripe_id}",
        status_transitions={"finalized_at": CREATED, "paid_at": CREATED if status == "paid" else None,
                            "marked_uncollectible_at": None, "voided_at": CREATED if status == "void" else None})
    if payments is not None:
        invoice["payments"] = {"object": "list", "data": payments, "has_more": False,
                               "url": f"/v1/invoices/{stripe_id}/payments"}
    return invoice


def invoice_payment(payment_id: str = "inpay_test_1", *, intent: str = "pi_test_req_1", status: str = "paid",
                    amount: int = 9000, invoice: str = STRIPE_INVOICE, is_default: bool = False) -> dict:
    """A payment credited to the invoice (``paid``), or waiting for its PaymentIntent (``open``)."""
    return stripe_object(
        "invoice_payment", id=payment_id, invoice=invoice, is_default=is_default, livemode=False, currency="eur",
        amount_requested=amount, amount_paid=amount if status == "paid" else None, status=status,
        payment={"type": "payment_intent", "payment_intent": intent}, created=CREATED,
        status_transitions={"canceled_at": None, "paid_at": CREATED if status == "paid" else None})


def attempt_session(attempt: PaymentAttempt, *, status: str = "complete", payment_status: str = "paid",
                    intent: str | dict | None = "pi_test_req_1", session_id: str | None = None) -> dict:
    """The Checkout Session of a Pay click, as an event carries it (its PaymentIntent by id)."""
    session_id = session_id or attempt.stripe_checkout_session_id or f"cs_test_attempt_{attempt.id}"
    request = attempt.request
    metadata = {"lms_attempt_id": str(attempt.id), "lms_request_id": str(request.id),
                "lms_invoice_id": str(request.invoice_id), "lms_user_id": request.user_id}
    return stripe_object(
        "checkout_session", id=session_id, url=f"https://checkout.stripe.com/c/pay/{session_id}",
        client_reference_id=f"lms-attempt-{attempt.id}", metadata=metadata, amount_subtotal=attempt.amount,
        amount_total=attempt.amount, currency=attempt.currency.lower(), status=status, payment_status=payment_status,
        payment_intent=intent, customer="cus_test_1", mode="payment", invoice=None, invoice_creation=None)


def open_attempt(db, request_id: int, *, amount: int = 9000, session_id: str | None = "cs_test_attempt_1",
                 status: str = "open") -> PaymentAttempt:
    """A Pay click recorded: the attempt and its Checkout Session, as `paying.open_session` leaves them."""
    attempt = PaymentAttempt(request_id=request_id, amount=amount, currency="EUR", status=status,
                             stripe_checkout_session_id=session_id,
                             checkout_url=f"https://checkout.stripe.com/c/pay/{session_id}" if session_id else None,
                             expires_at=utcnow().replace(microsecond=0) + timedelta(hours=1))
    db.session.add(attempt)
    db.session.commit()
    return attempt


def stub_attach(mock, answer: dict, stripe_id: str = STRIPE_INVOICE):
    """``POST /v1/invoices/{id}/attach_payment``, answering the invoice with its payments expanded."""
    return mock.add(responses.POST, f"{STRIPE}/v1/invoices/{stripe_id}/attach_payment", json=answer)


def stub_expire(mock, session_id: str):
    return mock.add(responses.POST, f"{STRIPE}/v1/checkout/sessions/{session_id}/expire",
                    json=stripe_object("checkout_session", id=session_id, status="expired"))


class Recorder:
    """A message backend that keeps what it was given (thread-safe: reminder runs may send at once)."""

    def __init__(self):
        self.sent: list[messages.Outgoing] = []
        self._lock = threading.Lock()

    def send(self, outgoing: messages.Outgoing) -> None:
        with self._lock:
            self.sent.append(outgoing)

    def to(self, recipient: str) -> list[messages.Outgoing]:
        return [m for m in self.sent if m.recipient == recipient]


#: Learners' numbers as the host gives them: a French mobile (SMS reach it) and a landline (they do not).
MOBILE, LANDLINE = "+33612345678", "+33123456789"


@pytest.fixture
def backend(monkeypatch):
    """Every message the plugin sends, kept in a `Recorder` instead of going out (import it into a test module)."""
    recorder = Recorder()
    monkeypatch.setattr(outbox, "_backend", lambda channel: recorder)
    return recorder
