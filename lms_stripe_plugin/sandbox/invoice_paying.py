"""Paying an invoice on its hosted page: the customer pays the invoice's default payment.

From "Hosted Invoice Page" and "Payment methods" (docs.stripe.com/invoicing/hosted-invoice-page,
/invoicing/payment-methods) and the 2025-03-31 API's partial payments on invoices:

- the page pays what remains through the default payment's PaymentIntent (the invoice's
  ``confirmation_secret``), with one of that PaymentIntent's ``payment_method_types``;
- a card pays at once: ``payment_intent.succeeded``, ``charge.succeeded``, then the default payment is
  credited (``invoice_payment.paid`` with ``is_default``, ``invoice.updated``, ``invoice.paid``,
  ``invoice.payment_succeeded``) and ``charge.updated``; a declined card fires
  ``payment_intent.payment_failed`` and ``charge.failed`` and leaves the invoice to pay;
- a SEPA debit is submitted (``payment_intent.processing``, ``charge.pending``) and credited when it
  settles; a debit that fails at settlement leaves the invoice open, its PaymentIntent waiting for
  another payment method.

The charge names no invoice (the API removed ``Charge.invoice``) and its metadata is the PaymentIntent's:
Stripe puts none of the invoice's there. Only the ``invoice_payment`` links the invoice to the PaymentIntent.
"""

from __future__ import annotations

from typing import Any

from .errors import StripeError, card_error, invalid_param
from .ids import new_id
from .invoice_payments import default_payment
from .payments import (PaymentAttempt, debit_succeeds, mark_failed, mark_succeeded, new_charge, read_card,
                       read_iban, settle_balance, settle_debit)
from .refunds import open_dispute
from .state import SandboxState, locked


def payable_intent(state: SandboxState, invoice: dict[str, Any]) -> dict[str, Any] | None:
    """The PaymentIntent the hosted page pays the invoice with, while the invoice can be paid there: open,
    something remaining, its default payment open and no payment of it being processed."""
    payment = default_payment(state, invoice)
    if invoice["status"] != "open" or invoice["amount_remaining"] <= 0 or payment is None:
        return None
    intent = state.get(payment["payment"]["payment_intent"], "payment_intent")
    return intent if intent is not None and intent["status"] == "requires_payment_method" else None


def processing_intent(state: SandboxState, invoice: dict[str, Any]) -> dict[str, Any] | None:
    """The invoice's default PaymentIntent while a payment of it (a SEPA debit) is being processed."""
    payment = default_payment(state, invoice)
    intent = state.get(payment["payment"]["payment_intent"], "payment_intent") if payment else None
    return intent if intent is not None and intent["status"] == "processing" else None


@locked
def pay_invoice(state: SandboxState, invoice_id: str, attempt: PaymentAttempt) -> dict[str, Any]:
    """Pay what remains of an open invoice as its hosted page does; returns the invoice, or raises the error
    the page shows (a 402 card error for a declined card)."""
    invoice = state.require(invoice_id, "invoice")
    intent = payable_intent(state, invoice)
    if intent is None:
        raise StripeError("This invoice cannot be paid: it is not open, or a payment of it is being processed.",
                          code="invoice_not_payable")
    if attempt.method not in intent["payment_method_types"]:
        raise invalid_param("method", f"The payment method `{attempt.method}` is not offered for this invoice.")
    payment = read_iban(state, attempt.iban) if attempt.method == "sepa_debit" else read_card(state, attempt)
    intent["payment_method"] = new_id("pm")
    billing = (invoice["customer_email"], (attempt.name or "").strip() or invoice["customer_name"])
    charge = new_charge(state, intent, payment, billing, base_url=state.private[invoice["id"]]["base_url"],
                        origin={"invoice": invoice["id"]})
    if payment.card is not None and payment.card.decline:
        mark_failed(state, intent, charge, payment.card.decline, "card_error")
        code, decline_code, message = payment.card.decline
        raise card_error(message, code, decline_code, payment_intent=intent["id"])
    if payment.method == "sepa_debit":
        _submit_debit(state, invoice, intent, charge, fails=payment.extra["fails"])
        return invoice
    mark_succeeded(state, intent, charge)
    settle_balance(state, charge)
    if payment.card is not None and payment.card.dispute:
        open_dispute(state, charge)
    return invoice


def _submit_debit(state: SandboxState, invoice: dict[str, Any], intent: dict[str, Any], charge: dict[str, Any], *,
                  fails: bool) -> None:
    intent.update(status="processing", processing=None)
    state.private[invoice["id"]]["debit_fails"] = fails
    state.emit("payment_intent.processing", intent)
    state.emit("charge.pending", charge)
    delay = state.config.delayed_settle_seconds
    if delay is not None:
        state.schedule(delay, lambda: _settle_quietly(state, invoice["id"]))


@locked
def settle_invoice_debit(state: SandboxState, invoice_id: str, outcome: str | None = None) -> dict[str, Any]:
    """Settle the SEPA debit submitted on the invoice's page: ``succeeded``, ``failed``, or None for what the
    IBAN decides."""
    invoice = state.require(invoice_id, "invoice")
    intent = processing_intent(state, invoice)
    if intent is None:
        raise invalid_param(None, "This invoice has no debit waiting to settle.")
    succeeded = debit_succeeds(state, invoice_id, outcome)
    charge = settle_debit(state, intent, succeeded)
    if succeeded:
        settle_balance(state, charge)
    return invoice


def _settle_quietly(state: SandboxState, invoice_id: str) -> None:
    """Scheduled settlement: nothing to do if a test settled the debit already or reset the sandbox."""
    try:
        settle_invoice_debit(state, invoice_id)
    except StripeError:
        pass
