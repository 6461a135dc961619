"""Helpers of the payment link tests: a link written directly (the tests of creating one go through the
administrators' page), the Checkout Session of a Pay click on it and the invoice Checkout issues, shaped like
Stripe's example objects."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from lms_stripe_plugin.billing import links
from lms_stripe_plugin.core import crypto
from lms_stripe_plugin.core.models import PaymentAttempt, PaymentLink

from .conftest import stripe_object
from .request_stubs import CREATED


def make_link(db, *, amount=None, minimum=1000, maximum=50000, currency="EUR", vat_rate=2000, user_id=None,
              max_uses=None, uses=0, expires_at: datetime | None = None, status="active",
              title="Voyage d'étude à Lyon") -> tuple[int, str]:
    """A payment link (a free amount from 10 € to 500 € unless ``amount`` is given): (its id, its token)."""
    token = links.new_token()
    link = PaymentLink(token_hash=links.token_hash(token), token_encrypted=crypto.encrypt(token), title=title,
                       purpose="Participation aux frais du voyage", currency=currency, amount=amount,
                       minimum=None if amount else minimum, maximum=None if amount else maximum, vat_rate=vat_rate,
                       user_id=user_id, max_uses=max_uses, uses=uses, held=0, expires_at=expires_at, status=status,
                       created_by="adm")
    db.session.add(link)
    db.session.commit()
    return link.id, token


def yesterday() -> datetime:
    return datetime.now(timezone.utc) - timedelta(days=1)


def link_session(attempt: PaymentAttempt, *, status="complete", payment_status="paid", invoice=None,
                 intent="pi_test_link_1", customer="cus_test_payer", session_id=None) -> dict:
    """The Checkout Session of a Pay click on a link, as an event carries it (its invoice by id)."""
    session_id = session_id or attempt.stripe_checkout_session_id or f"cs_test_link_{attempt.id}"
    metadata = {"lms_attempt_id": str(attempt.id), "lms_link_id": str(attempt.link_id)}
    return stripe_object(
        "checkout_session", id=session_id, url=None if status != "open" else f"https://checkout.stripe.com/c/pay/{session_id}",
        client_reference_id=f"lms-attempt-{attempt.id}", metadata=metadata, amount_subtotal=attempt.amount,
        amount_total=attempt.amount, currency=attempt.currency.lower(), status=status, payment_status=payment_status,
        payment_intent=intent, customer=customer, customer_email=attempt.payer_email, mode="payment",
        invoice=invoice, invoice_creation={"enabled": True, "invoice_data": {"metadata": metadata}})


def link_invoice(attempt: PaymentAttempt, *, invoice_id="in_test_link_1", number="ABC-0200", vat_rate=2000) -> dict:
    """The invoice Checkout issued for the attempt's payment: paid, its VAT included in its total."""
    total = attempt.amount
    tax = total - round(total * 10000 / (10000 + vat_rate))
    metadata = {"lms_attempt_id": str(attempt.id), "lms_link_id": str(attempt.link_id)}
    return stripe_object(
        "invoice", id=invoice_id, number=number, total=total, amount_due=total, amount_paid=total, amount_remaining=0,
        currency=attempt.currency.lower(), status="paid", metadata=metadata, customer="cus_test_payer",
        customer_email=attempt.payer_email, customer_name=attempt.payer_name,
        invoice_pdf=f"https://pay.stripe.com/invoice/{invoice_id}/pdf",
        hosted_invoice_url=f"https://invoice.stripe.com/i/{invoice_id}",
        total_taxes=[{"amount": tax, "tax_behavior": "inclusive", "taxability_reason": "standard_rated",
                      "taxable_amount": total - tax, "type": "tax_rate_details",
                      "tax_rate_details": {"tax_rate": "txr_test_20"}}],
        status_transitions={"finalized_at": CREATED, "paid_at": CREATED, "marked_uncollectible_at": None,
                            "voided_at": None})
