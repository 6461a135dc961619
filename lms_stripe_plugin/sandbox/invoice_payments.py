"""Payments credited to invoices, the default payment, and the invoice amounts and statuses they move.

From "Accept partial payments for invoices" (docs.stripe.com/invoicing/partial-payments) and the
``InvoicePayment`` object of the SDK:

- each PaymentIntent attached to an invoice is an ``invoice_payment`` (``open``, then ``paid`` or
  ``canceled``); it is credited (``amount_paid``) when its PaymentIntent succeeds, at once if it
  already has;
- finalizing an invoice creates its default payment (``is_default``), a PaymentIntent for the whole
  ``amount_remaining``, kept in step with it and canceled once nothing remains;
- the invoice is ``paid`` when ``amount_remaining`` reaches 0.

What Stripe does not document, and what the sandbox chose, is said where it is done.
"""

from __future__ import annotations

from typing import Any

from .customer_balance import change
from .ids import new_id
from .resources import payment_intent_object
from .state import SandboxState

# What the invoice carries about payments; previous values go into ``invoice.updated``.
_AMOUNT_KEYS = ("amount_due", "amount_overpaid", "amount_paid", "amount_remaining")


def payment_object(state: SandboxState, invoice: dict[str, Any], intent_id: str | None, amount_requested: int, *,
                   is_default: bool, record_id: str | None = None) -> dict[str, Any]:
    """An ``open`` invoice payment of a PaymentIntent, or of a Payment Record (``record_id``) (not stored)."""
    payment = ({"payment_record": record_id, "type": "payment_record"} if record_id is not None
               else {"payment_intent": intent_id, "type": "payment_intent"})
    return {
        "id": new_id("inpay"), "object": "invoice_payment", "amount_paid": None, "amount_requested": amount_requested,
        "created": state.now(), "currency": invoice["currency"], "invoice": invoice["id"], "is_default": is_default,
        "livemode": False, "payment": payment, "status": "open",
        "status_transitions": {"canceled_at": None, "paid_at": None},
    }


def payments_of_invoice(state: SandboxState, invoice_id: str) -> list[dict[str, Any]]:
    """Every payment of an invoice, the default one included, newest first."""
    return [p for p in state.all("invoice_payment") if p["invoice"] == invoice_id]


def payments_of_intent(state: SandboxState, intent_id: str) -> list[dict[str, Any]]:
    """The invoice payments made with a PaymentIntent (at most one that is not canceled)."""
    return [p for p in state.all("invoice_payment") if p["payment"].get("payment_intent") == intent_id]


def payments_of_record(state: SandboxState, record_id: str) -> list[dict[str, Any]]:
    """The invoice payments made with a Payment Record (at most one)."""
    return [p for p in state.all("invoice_payment") if p["payment"].get("payment_record") == record_id]


def attached_payments(state: SandboxState, invoice: dict[str, Any], *statuses: str) -> list[dict[str, Any]]:
    """The invoice's payments other than its default one, in these statuses."""
    return [p for p in payments_of_invoice(state, invoice["id"]) if not p["is_default"] and p["status"] in statuses]


def default_payment(state: SandboxState, invoice: dict[str, Any]) -> dict[str, Any] | None:
    """The invoice's default payment while it is open."""
    return next((p for p in payments_of_invoice(state, invoice["id"]) if p["is_default"] and p["status"] == "open"),
                None)


# -- the default payment ----------------------------------------------------------------------


def open_default_payment(state: SandboxState, invoice: dict[str, Any]) -> None:
    """The payment Stripe creates when it finalizes an invoice: a PaymentIntent for all that remains.

    Its PaymentIntent is announced by ``payment_intent.created`` and its ``client_secret`` is the
    invoice's ``confirmation_secret``. Its description, "Payment for Invoice", is what Stripe puts on
    the PaymentIntents of invoices. Customers pay invoices "with any of the payment methods that you've
    enabled in your Invoice template" (docs.stripe.com/invoicing/payment-methods): the sandbox's template
    has cards, and SEPA Direct Debit, which takes euros only, on invoices in euros.
    """
    methods = ["card", "sepa_debit"] if invoice["currency"] == "eur" else ["card"]
    intent = payment_intent_object(state, amount=invoice["amount_remaining"], currency=invoice["currency"],
                                   customer=invoice["customer"], payment_method_types=methods,
                                   description="Payment for Invoice")
    state.add(intent)
    state.add(payment_object(state, invoice, intent["id"], invoice["amount_remaining"], is_default=True))
    invoice["confirmation_secret"] = {"client_secret": intent["client_secret"], "type": "payment_intent"}
    state.emit("payment_intent.created", intent)


def sync_default_payment(state: SandboxState, invoice: dict[str, Any], reason: str = "automatic") -> None:
    """Keep the default payment "synchronized with the invoice's amount_remaining" (``InvoicePayment.is_default``).

    Once nothing remains to pay, or the invoice is void, the sandbox cancels its PaymentIntent
    (``payment_intent.canceled``, ``cancellation_reason`` ``void_invoice`` or ``automatic``) and the
    default payment becomes ``canceled``. Stripe does not document this step; it is how a
    PaymentIntent that can no longer be used ends on Stripe.
    """
    payment = default_payment(state, invoice)
    if payment is None:
        return
    intent = state.get(payment["payment"]["payment_intent"], "payment_intent")
    if invoice["status"] in ("open", "uncollectible") and invoice["amount_remaining"] > 0:
        payment["amount_requested"] = invoice["amount_remaining"]
        if intent is not None:
            intent["amount"] = invoice["amount_remaining"]
        return
    now = state.now()
    payment.update(status="canceled")
    payment["status_transitions"]["canceled_at"] = now
    invoice["confirmation_secret"] = None
    if intent is not None and intent["status"] not in ("succeeded", "canceled"):
        previous = {"status": intent["status"], "canceled_at": None, "cancellation_reason": None}
        intent.update(status="canceled", canceled_at=now, cancellation_reason=reason)
        state.emit("payment_intent.canceled", intent, previous)


# -- crediting payments ---------------------------------------------------------------------------


def intent_succeeded(state: SandboxState, intent: dict[str, Any]) -> None:
    """A PaymentIntent succeeded: its open invoice payment is credited with what it received."""
    for payment in payments_of_intent(state, intent["id"]):
        if payment["status"] == "open":
            credit(state, payment, intent["amount_received"])


def intent_ended_unpaid(state: SandboxState, intent: dict[str, Any]) -> None:
    """A PaymentIntent that will not be paid any more: its open invoice payment is ``canceled``.

    Stripe documents this for a canceled PaymentIntent. The sandbox does the same when a debit
    fails at settlement (the PaymentIntent of a completed Checkout Session can be neither paid
    again nor canceled). No v1 event announces it: ``invoice_payment.canceled`` exists only as a
    thin (v2) event.
    """
    for payment in payments_of_intent(state, intent["id"]):
        if payment["status"] == "open":
            payment["status"] = "canceled"
            payment["status_transitions"]["canceled_at"] = state.now()


def credit(state: SandboxState, payment: dict[str, Any], amount: int) -> None:
    """Mark an invoice payment ``paid`` (``invoice_payment.paid``) and credit its amount to the invoice."""
    invoice = state.require(payment["invoice"], "invoice")
    payment.update(status="paid", amount_paid=amount)
    payment["status_transitions"]["paid_at"] = state.now()
    state.emit("invoice_payment.paid", payment)
    previous = amounts_before(invoice)
    invoice["amount_paid"] += amount
    settle(state, invoice, previous, paid_by_payment=True)


def amounts_before(invoice: dict[str, Any]) -> dict[str, Any]:
    """The invoice's amounts, to report them in ``previous_attributes`` after a change."""
    return {key: invoice[key] for key in _AMOUNT_KEYS}


def settle(state: SandboxState, invoice: dict[str, Any], previous: dict[str, Any], *, paid_by_payment: bool) -> None:
    """After ``amount_paid`` or ``amount_due`` changed: recompute what remains, move to ``paid`` at 0.

    Fires ``invoice.updated`` (only the changed attributes in ``previous_attributes``) and, when
    the invoice becomes paid, ``invoice.paid`` and, if a payment paid it, ``invoice.payment_succeeded``.
    A payment beyond what remained is ``amount_overpaid``, "credited to the customer's credit
    balance" (``Invoice.amount_overpaid``), with ``invoice.overpaid`` when the invoice becomes paid.
    """
    invoice["amount_remaining"] = max(0, invoice["amount_due"] - invoice["amount_paid"])
    overpaid = max(0, invoice["amount_paid"] - invoice["amount_due"])
    newly_overpaid = overpaid - invoice["amount_overpaid"]
    invoice["amount_overpaid"] = overpaid
    becomes_paid = invoice["status"] in ("open", "uncollectible") and invoice["amount_remaining"] == 0
    if becomes_paid:
        previous.update(status=invoice["status"], status_transitions=dict(invoice["status_transitions"]))
        invoice["status"] = "paid"
        invoice["status_transitions"]["paid_at"] = state.now()
    sync_default_payment(state, invoice)
    changed = {key: value for key, value in previous.items() if invoice.get(key) != value}
    state.emit("invoice.updated", invoice, changed)
    if becomes_paid:
        state.emit("invoice.paid", invoice, changed)
        if paid_by_payment:
            state.emit("invoice.payment_succeeded", invoice, changed)
    if newly_overpaid > 0:
        change_customer_balance(state, invoice, -newly_overpaid, "invoice_overpaid")
        if becomes_paid:
            state.emit("invoice.overpaid", invoice, changed)


def change_customer_balance(state: SandboxState, invoice: dict[str, Any], delta: int, kind: str, *,
                            credit_note: str | None = None) -> dict[str, Any] | None:
    """Add ``delta`` to the balance of the invoice's customer in its currency (negative: a credit), as a
    balance transaction of ``kind`` naming the invoice: the transaction (None when nothing changed)."""
    customer = state.get(invoice["customer"], "customer")
    if customer is None or delta == 0:
        return None
    return change(state, customer, delta, invoice["currency"], kind, invoice=invoice["id"], credit_note=credit_note)


def credit_applied(invoice: dict[str, Any]) -> int:
    """The customer's credit balance that finalizing the invoice applied to it (0 for a debit, or a draft)."""
    start, end = invoice.get("starting_balance"), invoice.get("ending_balance")
    return max(0, end - start) if isinstance(start, int) and isinstance(end, int) else 0
