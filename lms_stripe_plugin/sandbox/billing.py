"""Invoices created by Checkout (``invoice_creation``): created, finalized and paid with the session."""

from __future__ import annotations

from typing import Any

from .checkout import discount_object, priced_lines
from .ids import new_id
from .invoice_payments import payment_object
from .invoice_shapes import amount_fields, finalize, invoice_object, line_object, new_line_id, set_lines
from .state import SandboxState, locked


@locked
def create_session_invoice(state: SandboxState, session: dict[str, Any], intent: dict[str, Any] | None) -> dict[str, Any]:
    """Create, finalize and pay the invoice of a paid session, firing the invoice events."""
    private = state.private[session["id"]]
    invoice_id = new_id("in")
    priced = priced_lines(state, session)
    discount = discount_object(state, session)
    discount_id = discount["id"] if discount else None
    lines = [line_object(state, invoice_id, p, line_id=new_line_id(), currency=session["currency"],
                         description=line["name"], quantity=line["quantity"], unit_amount=line["unit_amount"],
                         price_id=line["price_id"], product_id=line["product_id"], metadata=line["metadata"],
                         invoice_item_id=new_id("ii"), discount_id=discount_id)
             for line, p in zip(private["lines"], priced)]
    invoice = _invoice_object(state, session, invoice_id, discount_id)
    set_lines(invoice, lines)
    invoice.update(amount_fields(priced, discount_id))
    charge_id = intent["latest_charge"] if intent else None
    state.add(invoice, {"base_url": private["base_url"], "session": session["id"], "charge": charge_id,
                        "credit_notes": 0})
    session["invoice"] = invoice_id
    state.emit("invoice.created", invoice)
    finalize(state, invoice, private["base_url"])
    _pay(state, invoice, intent)
    return invoice


def _invoice_object(state: SandboxState, session: dict[str, Any], invoice_id: str,
                    discount_id: str | None) -> dict[str, Any]:
    data = session["invoice_creation"]["invoice_data"]
    customer = state.get(session["customer"], "customer") or {}
    details = session["customer_details"] or {}
    # "The credit balance doesn't apply to invoices created by Checkout Sessions with invoice_creation
    # enabled" (docs.stripe.com/billing/customer/balance): the customer's balance is left as it is.
    return invoice_object(
        state, invoice_id, customer, session["currency"], account_tax_ids=data["account_tax_ids"],
        custom_fields=data["custom_fields"], customer_email=details.get("email") or customer.get("email"),
        customer_name=details.get("name") or customer.get("name"), customer_phone=None,
        description=data["description"], footer=data["footer"], metadata=dict(data["metadata"] or {}),
        discounts=[discount_id] if discount_id else [], starting_balance=0, rendering=_rendering(data),
    )


def _rendering(data: dict[str, Any]) -> dict[str, Any] | None:
    """``invoice_data[rendering_options]`` as the invoice's ``rendering``."""
    options = data["rendering_options"]
    if not options:
        return None
    return {"amount_tax_display": options["amount_tax_display"], "pdf": {"page_size": "auto"}, "template": None,
            "template_version": None}


def _pay(state: SandboxState, invoice: dict[str, Any], intent: dict[str, Any] | None) -> None:
    now = state.now()
    if intent is not None:
        payment = payment_object(state, invoice, intent["id"], invoice["total"], is_default=True)
        payment.update(status="paid", amount_paid=invoice["total"])
        payment["status_transitions"]["paid_at"] = now
        state.add(payment)
        state.emit("invoice_payment.paid", payment)
    invoice.update(status="paid", amount_paid=invoice["total"], amount_remaining=0, attempted=True,
                   attempt_count=1 if intent else 0, ending_balance=0)
    invoice["status_transitions"]["paid_at"] = now
    previous = {"status": "open", "amount_paid": 0, "amount_remaining": invoice["total"]}
    state.emit("invoice.paid", invoice, previous)
    state.emit("invoice.payment_succeeded", invoice, previous)
