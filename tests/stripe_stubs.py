"""Stubs of Stripe's HTTP API for `responses`, with payloads shaped like Stripe's example objects.

The real SDK builds every request (the gateway is never mocked); tests read what it sent with `form_body`.
"""
from __future__ import annotations

import json
import re

import responses

from .conftest import STRIPE, form_body, stripe_object


def checkout_session(purchase_id: int, *, user_id="u1", course_id="c1", amount=4990, currency="eur",
                     status="open", payment_status="unpaid", session_id=None, invoice=None, payment_intent=None,
                     customer=None, amount_total=None) -> dict:
    """A Checkout Session as Stripe returns it for one of our purchases."""
    session_id = session_id or f"cs_test_{purchase_id:04d}"
    metadata = {"lms_purchase_id": str(purchase_id), "lms_user_id": user_id, "lms_course_id": course_id}
    total = amount if amount_total is None else amount_total
    return stripe_object(
        "checkout_session", id=session_id, url=f"https://checkout.stripe.com/c/pay/{session_id}",
        client_reference_id=f"lms-purchase-{purchase_id}", metadata=metadata, amount_subtotal=amount,
        amount_total=total, currency=currency, status=status, payment_status=payment_status, invoice=invoice,
        payment_intent=payment_intent, customer=customer, mode="payment",
        total_details={"amount_discount": amount - total if isinstance(amount, int) and isinstance(total, int) else 0,
                       "amount_shipping": 0, "amount_tax": 0})


def invoice(purchase_id: int, *, invoice_id="in_test_1", number="ABC-0001", total=4990, tax=832, currency="eur",
            customer_email="lea@example.com") -> dict:
    metadata = {"lms_purchase_id": str(purchase_id)}
    return stripe_object(
        "invoice", id=invoice_id, number=number, total=total, amount_paid=total, currency=currency, status="paid",
        metadata=metadata, customer_email=customer_email, invoice_pdf=f"https://pay.stripe.com/invoice/{invoice_id}/pdf",
        hosted_invoice_url=f"https://invoice.stripe.com/i/{invoice_id}",
        total_taxes=[{"amount": tax, "tax_behavior": "inclusive", "taxability_reason": "standard_rated",
                      "taxable_amount": total - tax, "type": "tax_rate_details",
                      "tax_rate_details": {"tax_rate": "txr_test_20"}}],
        status_transitions={"finalized_at": 1767225600, "paid_at": 1767225600, "marked_uncollectible_at": None,
                            "voided_at": None})


def payment_intent(pi_id="pi_test_1", status="succeeded", error=None) -> dict:
    return stripe_object("payment_intent", id=pi_id, status=status, last_payment_error=error)


def event(event_type: str, obj: dict, event_id: str = "evt_test_1") -> dict:
    return stripe_object("event", id=event_id, type=event_type, data={"object": obj}, api_version="2026-10-28.endive")


def open_purchase(db, user_id="u1", course_id="c1", amount=4990, currency="EUR"):
    """An open purchase with its Checkout Session, as a Buy click leaves it."""
    from datetime import timedelta

    from lms_stripe_plugin.core.models import Purchase, utcnow

    purchase = Purchase(user_id=user_id, course_id=course_id, status="open", amount=amount, currency=currency,
                        vat_rate=2000, expires_at=utcnow() + timedelta(hours=1))
    db.session.add(purchase)
    db.session.flush()
    purchase.stripe_checkout_session_id = f"cs_test_{purchase.id:04d}"
    purchase.checkout_url = f"https://checkout.stripe.com/c/pay/cs_test_{purchase.id:04d}"
    db.session.commit()
    return purchase


def paid_session(purchase, **changes) -> dict:
    """The purchase's Checkout Session, paid unless told otherwise, with invoice and payment intent expanded."""
    fields = {"status": "complete", "payment_status": "paid", "invoice": invoice(purchase.id),
              "payment_intent": payment_intent(), "customer": "cus_test_lea", **changes}
    return checkout_session(purchase.id, **fields)


def stub_customers(mock):
    """Stripe's POST /v1/customers (the learner's customer, created before a first Checkout) and
    POST /v1/customers/{id} (its invoices' language changed): the customer, as sent, ``cus_test_<user>``."""
    def create(request):
        sent = form_body(request)
        customer = stripe_object("customer", id=f"cus_test_{sent['metadata[lms_user_id]']}", email=sent.get("email"),
                                 preferred_locales=[sent["preferred_locales[0]"]])
        customer["name"] = sent.get("name")
        return 200, {}, json.dumps(customer)

    def change(request):
        customer_id = request.url.split("?")[0].rsplit("/", 1)[1]
        return 200, {}, json.dumps(stripe_object("customer", id=customer_id,
                                                 preferred_locales=[form_body(request)["preferred_locales[0]"]]))

    mock.add_callback(responses.POST, f"{STRIPE}/v1/customers", callback=create, content_type="application/json")
    mock.add_callback(responses.POST, re.compile(rf"{STRIPE}/v1/customers/cus_[A-Za-z0-9_]+$"), callback=change,
                      content_type="application/json")


def stub_create_session(mock, session: dict, status=200):
    """Stripe's POST /v1/checkout/sessions answering ``session``, and the learner's customer created first."""
    stub_customers(mock)
    return mock.add(responses.POST, f"{STRIPE}/v1/checkout/sessions", json=session, status=status)


def stub_retrieve_session(mock, session: dict):
    return mock.add(responses.GET, re.compile(rf"{STRIPE}/v1/checkout/sessions/{session['id']}(\?.*)?$"), json=session)


def stub_tax_rate(mock, tax_rate_id="txr_test_20", percentage=20):
    return mock.add(responses.POST, f"{STRIPE}/v1/tax_rates",
                    json=stripe_object("tax_rate", id=tax_rate_id, percentage=percentage, inclusive=True))


def stripe_error(mock, method, url, status, error_type, message, code=None):
    body = {"error": {"type": error_type, "message": message, "code": code}}
    return mock.add(method, url if isinstance(url, re.Pattern) else f"{STRIPE}{url}", json=body, status=status)


def sent(call) -> dict:
    """The form fields of one recorded call."""
    return form_body(call.request)


__all__ = ["open_purchase", "paid_session", "checkout_session", "invoice", "payment_intent", "event", "stub_create_session", "stub_customers",
           "stub_retrieve_session",
           "stub_tax_rate", "stripe_error", "sent", "json"]
