"""What every invoice looks like, whoever made it (Checkout's ``invoice_creation`` or the Invoices API).

The object, its lines, its tax entries and its amounts, in the shapes of API 2026-10-28.endive
(``stripe.Invoice`` and ``stripe.InvoiceLineItem`` of the SDK), and the step every invoice goes
through when it is finalized.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from .amounts import PricedLine, TaxShare, line_taxes
from .connect import public_details
from .ids import new_id
from .listing import list_envelope
from .state import SandboxState


# -- taxes -----------------------------------------------------------------------------------


def tax_entry(share: TaxShare) -> dict[str, Any]:
    """One entry of ``taxes`` / ``total_taxes`` (API 2025+ shape)."""
    return {
        "amount": share.amount,
        "tax_behavior": "inclusive" if share.rate.get("inclusive") else "exclusive",
        "tax_rate_details": {"tax_rate": share.rate["id"]},
        "taxability_reason": "standard_rated",
        "taxable_amount": share.taxable_amount,
        "type": "tax_rate_details",
    }


def total_taxes(shares: list[TaxShare]) -> list[dict[str, Any]]:
    """Taxes summed per tax rate, as ``total_taxes`` lists them."""
    summed: OrderedDict[str, dict[str, Any]] = OrderedDict()
    for share in shares:
        entry = summed.setdefault(share.rate["id"], {**tax_entry(share), "amount": 0, "taxable_amount": 0})
        entry["amount"] += share.amount
        entry["taxable_amount"] += share.taxable_amount
    return list(summed.values())


def inclusive_part(shares: list[TaxShare]) -> int:
    """The tax contained in tax-inclusive amounts."""
    return sum(s.amount for s in shares if s.rate.get("inclusive"))


# -- lines and amounts -------------------------------------------------------------------------


def line_object(state: SandboxState, invoice_id: str, priced: PricedLine, *, line_id: str, currency: str,
                description: str | None, quantity: int, unit_amount: int, price_id: str | None,
                product_id: str | None, metadata: dict[str, str], invoice_item_id: str,
                period: dict[str, int] | None = None, discount_id: str | None = None,
                discountable: bool = True) -> dict[str, Any]:
    """An invoice line (``line_item``) made from an invoice item; ``amount`` includes inclusive tax."""
    now = state.now()
    return {
        "id": line_id, "object": "line_item", "amount": priced.subtotal, "currency": currency,
        "description": description,
        "discount_amounts": [{"amount": priced.discount, "discount": discount_id}] if priced.discount else [],
        "discountable": discountable, "discounts": [discount_id] if discount_id else [], "invoice": invoice_id,
        "livemode": False, "metadata": dict(metadata),
        "parent": {"invoice_item_details": {"invoice_item": invoice_item_id, "proration": False,
                                            "proration_details": {"credited_items": None}, "subscription": None},
                   "subscription_item_details": None, "type": "invoice_item_details"},
        "period": dict(period) if period else {"end": now, "start": now}, "pretax_credit_amounts": [],
        "pricing": {"price_details": {"price": price_id, "product": product_id}, "type": "price_details",
                    "unit_amount_decimal": str(unit_amount)},
        "quantity": quantity, "quantity_decimal": str(quantity), "subscription": None,
        "subtotal": priced.subtotal, "taxes": [tax_entry(share) for share in priced.taxes],
    }


def amount_fields(priced: list[PricedLine], discount_id: str | None = None) -> dict[str, Any]:
    """The invoice amounts of priced lines, before any payment, credit note or customer balance."""
    shares = [share for p in priced for share in p.taxes]
    total = sum(p.total for p in priced)
    subtotal = sum(p.subtotal for p in priced)
    discount_total = sum(p.discount for p in priced)
    # Inclusive tax contained in the undiscounted line amounts.
    contained = sum(inclusive_part(line_taxes(p.subtotal, [s.rate for s in p.taxes])) for p in priced)
    return {
        "amount_due": total, "amount_remaining": total, "subtotal": subtotal,
        "subtotal_excluding_tax": subtotal - contained, "total": total,
        "total_discount_amounts": [{"amount": discount_total, "discount": discount_id}] if discount_id else [],
        "total_excluding_tax": total - sum(s.amount for s in shares), "total_taxes": total_taxes(shares),
    }


# -- the invoice -------------------------------------------------------------------------------


def invoice_object(state: SandboxState, invoice_id: str, customer: dict[str, Any], currency: str,
                   **fields: Any) -> dict[str, Any]:
    """A draft invoice without lines; ``fields`` override the defaults."""
    now = state.now()
    seller = public_details(state)
    invoice = {
        "id": invoice_id, "object": "invoice", "account_country": seller.country, "account_name": seller.name,
        "account_tax_ids": None, "amount_due": 0, "amount_overpaid": 0, "amount_paid": 0,
        "amount_paid_off_stripe": 0, "amount_remaining": 0, "amount_shipping": 0, "application": None,
        "attempt_count": 0, "attempted": False, "auto_advance": False,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None, "provider": None,
                          "status": None},
        "automatically_finalizes_at": None, "billing_reason": "manual", "collection_method": "charge_automatically",
        "confirmation_secret": None, "created": now, "currency": currency, "custom_fields": None,
        "customer": customer.get("id"), "customer_account": None, "customer_address": customer.get("address"),
        "customer_email": customer.get("email"), "customer_name": customer.get("name"),
        "customer_phone": customer.get("phone"), "customer_shipping": None,
        "customer_tax_exempt": customer.get("tax_exempt", "none"), "customer_tax_ids": [],
        "default_payment_method": None, "default_source": None, "default_tax_rates": [], "description": None,
        "discounts": [], "due_date": None, "effective_at": None, "ending_balance": None, "footer": None,
        "from_invoice": None, "hosted_invoice_url": None, "invoice_pdf": None, "issuer": {"type": "self"},
        "last_finalization_error": None, "latest_revision": None,
        "lines": {**list_envelope([], f"/v1/invoices/{invoice_id}/lines"), "total_count": 0},
        "livemode": False, "metadata": {}, "next_payment_attempt": None, "number": None, "on_behalf_of": None,
        "parent": None,
        "payment_settings": {"default_mandate": None, "payment_method_options": None, "payment_method_types": None},
        "period_end": now, "period_start": now, "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0, "receipt_number": None, "rendering": None, "shipping_cost": None,
        "shipping_details": None, "starting_balance": customer.get("balance", 0), "statement_descriptor": None,
        "status": "draft", "status_details": None,
        "status_transitions": {"finalized_at": None, "marked_uncollectible_at": None, "paid_at": None,
                               "voided_at": None},
        "subtotal": 0, "subtotal_excluding_tax": 0, "test_clock": None, "total": 0,
        "total_discount_amounts": [], "total_excluding_tax": 0, "total_pretax_credit_amounts": [],
        "total_taxes": [], "webhooks_delivered_at": None,
    }
    invoice.update(fields)
    return invoice


def set_lines(invoice: dict[str, Any], lines: list[dict[str, Any]]) -> None:
    """Put lines on the invoice (all of them: the sandbox has no invoice of more than 250 lines)."""
    invoice["lines"] = {**list_envelope(lines, f"/v1/invoices/{invoice['id']}/lines"), "total_count": len(lines)}


def finalize(state: SandboxState, invoice: dict[str, Any], base_url: str) -> None:
    """Number the invoice from the account's sequence, give it its page and PDF, fire ``invoice.finalized``."""
    now = state.now()
    previous = {"status": invoice["status"], "number": None, "hosted_invoice_url": None, "invoice_pdf": None,
                "status_transitions": dict(invoice["status_transitions"])}
    invoice.update(
        status="open", number=state.next_invoice_number(), effective_at=invoice["effective_at"] or now,
        webhooks_delivered_at=now, invoice_pdf=f"{base_url}/files/invoices/{invoice['id']}.pdf",
        hosted_invoice_url=f"{base_url}/i/{invoice['id']}",
    )
    invoice["status_transitions"]["finalized_at"] = now
    state.emit("invoice.finalized", invoice, previous)


def new_line_id() -> str:
    """The id of an invoice line."""
    return new_id("il")
