"""Invoices created by Checkout and the credit notes issued against them."""

from __future__ import annotations

from collections import OrderedDict
from decimal import Decimal
from typing import Any

from .amounts import PricedLine, TaxShare, check_step, format_amount, line_taxes, round_half_up, step
from .checkout import discount_object, priced_lines
from .errors import invalid_param, missing_param
from .ids import new_id
from .listing import list_envelope
from .params import Params
from .refunds import check_refundable, create_refund
from .state import SandboxState, locked

CREDIT_NOTE_PARAMS = {
    "amount", "credit_amount", "effective_at", "email_type", "invoice", "lines", "memo", "metadata",
    "out_of_band_amount", "reason", "refund_amount",
}
CREDIT_NOTE_REASONS = ("duplicate", "fraudulent", "order_change", "product_unsatisfactory")


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


def _inclusive_part(shares: list[TaxShare]) -> int:
    return sum(s.amount for s in shares if s.rate.get("inclusive"))


# -- invoices ------------------------------------------------------------------------------


@locked
def create_session_invoice(state: SandboxState, session: dict[str, Any], intent: dict[str, Any] | None) -> dict[str, Any]:
    """Create, finalize and pay the invoice of a paid session, firing the invoice events."""
    private = state.private[session["id"]]
    invoice_id = new_id("in")
    priced = priced_lines(state, session)
    discount = discount_object(state, session)
    lines = [_invoice_line(state, invoice_id, line, p, discount) for line, p in zip(private["lines"], priced)]
    invoice = _invoice_object(state, session, invoice_id, lines, priced, discount)
    charge_id = intent["latest_charge"] if intent else None
    state.add(invoice, {"base_url": private["base_url"], "session": session["id"], "charge": charge_id,
                        "credit_notes": 0})
    session["invoice"] = invoice_id
    state.emit("invoice.created", invoice)
    _finalize(state, invoice, private["base_url"])
    _pay(state, invoice, intent)
    return invoice


def _invoice_line(state: SandboxState, invoice_id: str, line: dict[str, Any], priced: PricedLine,
                  discount: dict[str, Any] | None) -> dict[str, Any]:
    now = state.now()
    discount_id = discount["id"] if discount else None
    return {
        "id": new_id("il"), "object": "line_item", "amount": priced.subtotal, "currency": state.get(
            line["price_id"])["currency"], "description": line["name"],
        "discount_amounts": [{"amount": priced.discount, "discount": discount_id}] if priced.discount else [],
        "discountable": True, "discounts": [discount_id] if discount_id else [], "invoice": invoice_id,
        "livemode": False, "metadata": dict(line["metadata"]),
        "parent": {"invoice_item_details": {"invoice_item": new_id("ii"), "proration": False,
                                            "proration_details": {"credited_items": None}, "subscription": None},
                   "subscription_item_details": None, "type": "invoice_item_details"},
        "period": {"end": now, "start": now}, "pretax_credit_amounts": [],
        "pricing": {"price_details": {"price": line["price_id"], "product": line["product_id"]},
                    "type": "price_details", "unit_amount_decimal": str(line["unit_amount"])},
        "quantity": line["quantity"], "quantity_decimal": str(line["quantity"]), "subscription": None,
        "subtotal": priced.subtotal, "taxes": [tax_entry(share) for share in priced.taxes],
    }


def _invoice_object(state: SandboxState, session: dict[str, Any], invoice_id: str, lines: list[dict[str, Any]],
                    priced: list[PricedLine], discount: dict[str, Any] | None) -> dict[str, Any]:
    data = session["invoice_creation"]["invoice_data"]
    customer = state.get(session["customer"], "customer") or {}
    details = session["customer_details"] or {}
    now = state.now()
    return {
        "id": invoice_id, "object": "invoice", "account_country": "DE", "account_name": "Stripe Sandbox",
        "account_tax_ids": data["account_tax_ids"], "application": None, "attempt_count": 0, "attempted": False,
        "auto_advance": False, "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None,
                                                 "provider": None, "status": None},
        "automatically_finalizes_at": None, "billing_reason": "manual", "collection_method": "charge_automatically",
        "confirmation_secret": None, "created": now, "currency": session["currency"],
        "custom_fields": data["custom_fields"], "customer": session["customer"], "customer_account": None,
        "customer_address": customer.get("address"), "customer_email": details.get("email") or customer.get("email"),
        "customer_name": details.get("name") or customer.get("name"), "customer_phone": None,
        "customer_shipping": None, "customer_tax_exempt": "none", "customer_tax_ids": [],
        "default_payment_method": None, "default_source": None, "default_tax_rates": [],
        "description": data["description"], "due_date": None, "effective_at": None, "ending_balance": None,
        "footer": data["footer"], "from_invoice": None, "hosted_invoice_url": None, "invoice_pdf": None,
        "issuer": {"type": "self"}, "last_finalization_error": None, "latest_revision": None,
        "lines": {**list_envelope(lines, f"/v1/invoices/{invoice_id}/lines"), "total_count": len(lines)},
        "livemode": False, "metadata": dict(data["metadata"] or {}), "next_payment_attempt": None, "number": None,
        "on_behalf_of": None, "parent": None,
        "payment_settings": {"default_mandate": None, "payment_method_options": None, "payment_method_types": None},
        "payments": list_envelope([], f"/v1/invoice_payments?invoice={invoice_id}"),
        "period_end": now, "period_start": now, "receipt_number": None, "rendering": None, "shipping_cost": None,
        "shipping_details": None, "starting_balance": 0, "statement_descriptor": None, "status": "draft",
        "status_transitions": {"finalized_at": None, "marked_uncollectible_at": None, "paid_at": None,
                               "voided_at": None},
        "test_clock": None, "webhooks_delivered_at": None, **_invoice_amounts(priced, discount),
    }


def _invoice_amounts(priced: list[PricedLine], discount: dict[str, Any] | None) -> dict[str, Any]:
    shares = [share for p in priced for share in p.taxes]
    total = sum(p.total for p in priced)
    discount_total = sum(p.discount for p in priced)
    # Inclusive tax contained in the undiscounted line amounts.
    contained = sum(_inclusive_part(line_taxes(p.subtotal, [s.rate for s in p.taxes])) for p in priced)
    return {
        "amount_due": total, "amount_overpaid": 0, "amount_paid": 0, "amount_paid_off_stripe": 0,
        "amount_remaining": total, "amount_shipping": 0, "discounts": [discount["id"]] if discount else [],
        "post_payment_credit_notes_amount": 0, "pre_payment_credit_notes_amount": 0,
        "subtotal": sum(p.subtotal for p in priced), "subtotal_excluding_tax": sum(p.subtotal for p in priced) - contained,
        "total": total,
        "total_discount_amounts": [{"amount": discount_total, "discount": discount["id"]}] if discount else [],
        "total_excluding_tax": total - sum(s.amount for s in shares), "total_pretax_credit_amounts": [],
        "total_taxes": total_taxes(shares),
    }


def _finalize(state: SandboxState, invoice: dict[str, Any], base_url: str) -> None:
    now = state.now()
    invoice.update(
        status="open", number=state.next_invoice_number(), effective_at=now, webhooks_delivered_at=now,
        invoice_pdf=f"{base_url}/files/invoices/{invoice['id']}.pdf",
        hosted_invoice_url=f"{base_url}/i/{invoice['id']}",
    )
    invoice["status_transitions"]["finalized_at"] = now
    state.emit("invoice.finalized", invoice, {"status": "draft", "number": None})


def _pay(state: SandboxState, invoice: dict[str, Any], intent: dict[str, Any] | None) -> None:
    now = state.now()
    if intent is not None:
        payment = {
            "id": new_id("inpay"), "object": "invoice_payment", "amount_paid": invoice["total"],
            "amount_requested": invoice["total"], "created": now, "currency": invoice["currency"],
            "invoice": invoice["id"], "is_default": True, "livemode": False,
            "payment": {"payment_intent": intent["id"], "type": "payment_intent"}, "status": "paid",
            "status_transitions": {"canceled_at": None, "paid_at": now},
        }
        state.add(payment)
        invoice["payments"]["data"] = [state.render(payment)]
        state.emit("invoice_payment.paid", payment)
    invoice.update(status="paid", amount_paid=invoice["total"], amount_remaining=0, attempted=True,
                   attempt_count=1 if intent else 0)
    invoice["status_transitions"]["paid_at"] = now
    previous = {"status": "open", "amount_paid": 0, "amount_remaining": invoice["total"]}
    state.emit("invoice.paid", invoice, previous)
    state.emit("invoice.payment_succeeded", invoice, previous)


# -- credit notes ----------------------------------------------------------------------------


@locked
def create_credit_note(state: SandboxState, params: Params) -> dict[str, Any]:
    """``POST /v1/credit_notes`` against a paid invoice; ``refund_amount`` refunds the invoice's payment."""
    params.reject_unimplemented(CREDIT_NOTE_PARAMS)
    invoice = state.require(params.string("invoice", required=True), "invoice", param="invoice", status=400)
    if invoice["status"] != "paid":
        raise invalid_param("invoice", "The Stripe sandbox issues credit notes only for paid invoices.")
    details = _note_details(state, params)
    lines, param = _credit_lines(state, invoice, params)
    total = sum(line["_total"] for line in lines)
    refund_amount, credit_amount, out_of_band = _allocation(params, total, invoice["currency"])
    _check_creditable(invoice, total, param)
    charge = _refund_charge(state, invoice, refund_amount)
    credit_note = _credit_note_object(state, invoice, details, lines, total, credit_amount, out_of_band)
    state.add(credit_note)
    if refund_amount:
        refund = create_refund(state, charge, refund_amount, _refund_reason(credit_note["reason"]), {},
                               param="refund_amount")
        credit_note["refunds"] = [{"amount_refunded": refund_amount, "payment_record_refund": None,
                                   "refund": refund["id"], "type": "refund"}]
    previous = {"post_payment_credit_notes_amount": invoice["post_payment_credit_notes_amount"]}
    invoice["post_payment_credit_notes_amount"] += total
    state.emit("credit_note.created", credit_note)
    state.emit("invoice.updated", invoice, previous)
    return credit_note


def _credit_lines(state: SandboxState, invoice: dict[str, Any], params: Params) -> tuple[list[dict[str, Any]], str]:
    if params.objects("lines"):
        return [_explicit_line(state, invoice, line) for line in params.objects("lines")], "lines"
    if params.has("amount"):
        amount = params.integer("amount", minimum=1)
        check_step(amount, invoice["currency"], "amount")
        return _spread(state, invoice, amount), "amount"
    allocated = sum(params.integer(key, minimum=0, default=0) or 0
                    for key in ("refund_amount", "credit_amount", "out_of_band_amount"))
    if allocated <= 0:
        raise missing_param("amount")
    return _spread(state, invoice, allocated), "refund_amount"


def _invoice_rates(state: SandboxState, invoice_line: dict[str, Any]) -> list[dict[str, Any]]:
    return [state.get(t["tax_rate_details"]["tax_rate"]) for t in invoice_line["taxes"]]


def _spread(state: SandboxState, invoice: dict[str, Any], gross: int) -> list[dict[str, Any]]:
    """Split a gross amount over the invoice lines in proportion to what each line cost."""
    invoice_lines = invoice["lines"]["data"]
    weights = [line["amount"] - sum(d["amount"] for d in line["discount_amounts"]) for line in invoice_lines]
    total_weight = sum(weights) or 1
    unit = step(invoice["currency"])
    shares = [gross * w // total_weight // unit * unit for w in weights]
    shares[-1] += gross - sum(shares)
    return [_line_from_gross(state, line, share) for line, share in zip(invoice_lines, shares)]


def _line_from_gross(state: SandboxState, invoice_line: dict[str, Any], gross: int) -> dict[str, Any]:
    rates = _invoice_rates(state, invoice_line)
    exclusive_pct = sum(Decimal(str(r["percentage"])) for r in rates if not r["inclusive"])
    # A gross credit contains exclusive tax too: take it out so that amount + exclusive tax == gross.
    amount = round_half_up(Decimal(gross) / (1 + exclusive_pct / 100)) if exclusive_pct else gross
    return _credit_line(invoice_line["description"], amount, invoice_line["quantity"], rates,
                        invoice_line["id"], gross=gross)


def _explicit_line(state: SandboxState, invoice: dict[str, Any], line: Params) -> dict[str, Any]:
    line.reject_unimplemented({"type", "invoice_line_item", "amount", "quantity", "description", "unit_amount",
                               "metadata"})
    kind = line.string("type", required=True, choices=("invoice_line_item", "custom_line_item"))
    if kind == "custom_line_item":
        quantity = line.integer("quantity", default=1, minimum=1)
        unit_amount = line.integer("unit_amount", required=True, minimum=0)
        check_step(unit_amount, invoice["currency"], line.name("unit_amount"))
        return _credit_line(line.string("description", required=True), unit_amount * quantity, quantity, [], None,
                            unit_amount=unit_amount)
    item_id = line.string("invoice_line_item", required=True)
    invoice_line = next((il for il in invoice["lines"]["data"] if il["id"] == item_id), None)
    if invoice_line is None:
        raise invalid_param(line.name("invoice_line_item"), f"No such invoice line item: '{item_id}'")
    quantity = line.integer("quantity", minimum=1, maximum=invoice_line["quantity"])
    amount = line.integer("amount", minimum=0)
    check_step(amount, invoice["currency"], line.name("amount"))
    if amount is None:
        amount = invoice_line["amount"] * (quantity or invoice_line["quantity"]) // invoice_line["quantity"]
    return _credit_line(invoice_line["description"], amount, quantity or invoice_line["quantity"],
                        _invoice_rates(state, invoice_line), item_id)


def _credit_line(description: str, amount: int, quantity: int, rates: list[dict[str, Any]],
                 invoice_line_id: str | None, gross: int | None = None, unit_amount: int | None = None) -> dict[str, Any]:
    shares = line_taxes(amount, rates)
    total = gross if gross is not None else amount + sum(s.amount for s in shares if not s.rate["inclusive"])
    return {
        "id": new_id("cnli"), "object": "credit_note_line_item", "amount": amount, "description": description,
        "discount_amount": 0, "discount_amounts": [], "invoice_line_item": invoice_line_id, "livemode": False,
        "metadata": {}, "pretax_credit_amounts": [], "quantity": quantity, "tax_rates": [dict(r) for r in rates],
        "taxes": [tax_entry(s) for s in shares],
        "type": "invoice_line_item" if invoice_line_id else "custom_line_item",
        "unit_amount": unit_amount, "unit_amount_decimal": str(unit_amount) if unit_amount is not None else None,
        "_total": total, "_shares": shares,
    }


def _allocation(params: Params, total: int, currency: str) -> tuple[int, int, int]:
    refund = params.integer("refund_amount", minimum=0, default=0)
    credit = params.integer("credit_amount", minimum=0, default=0)
    out_of_band = params.integer("out_of_band_amount", minimum=0, default=0)
    for key, amount in (("refund_amount", refund), ("credit_amount", credit), ("out_of_band_amount", out_of_band)):
        check_step(amount, currency, key)
    if refund + credit + out_of_band == 0:
        return 0, total, 0  # nothing said: credit the customer's balance, like Stripe
    if refund + credit + out_of_band != total:
        raise invalid_param("refund_amount", (
            f"The sum of credit amount, refund amount and out of band amount "
            f"({format_amount(refund + credit + out_of_band, currency)}) must equal the credit note amount "
            f"({format_amount(total, currency)})."))
    return refund, credit, out_of_band


def _check_creditable(invoice: dict[str, Any], total: int, param: str) -> None:
    remaining = invoice["total"] - invoice["post_payment_credit_notes_amount"]
    if total > remaining:
        raise invalid_param(param, (
            f"The credit note amount ({format_amount(total, invoice['currency'])}) exceeds the amount that can "
            f"still be credited on invoice {invoice['number']} ({format_amount(remaining, invoice['currency'])})."),
            code="credit_note_amount_too_large" if param != "refund_amount" else "amount_too_large")


def _refund_charge(state: SandboxState, invoice: dict[str, Any], refund_amount: int) -> dict[str, Any] | None:
    if not refund_amount:
        return None
    charge = state.get(state.private[invoice["id"]].get("charge"), "charge")
    if charge is None:
        raise invalid_param("refund_amount", "This invoice has no payment that can be refunded.")
    check_refundable(state, charge, refund_amount, param="refund_amount")
    return charge


def _note_details(state: SandboxState, params: Params) -> dict[str, Any]:
    return {
        "memo": params.string("memo", max_length=5000), "metadata": params.metadata(),
        "reason": params.string("reason", choices=CREDIT_NOTE_REASONS),
        "effective_at": params.integer("effective_at") or state.now(),
    }


def _credit_note_object(state: SandboxState, invoice: dict[str, Any], details: dict[str, Any], lines: list[dict[str, Any]],
                        total: int, credit_amount: int, out_of_band: int) -> dict[str, Any]:
    shares = [s for line in lines for s in line.pop("_shares")]
    for line in lines:
        line.pop("_total")
    private = state.private[invoice["id"]]
    private["credit_notes"] += 1
    note_id = new_id("cn")
    subtotal = sum(line["amount"] for line in lines)
    return {
        "id": note_id, "object": "credit_note", "amount": total, "amount_shipping": 0, "created": state.now(),
        "currency": invoice["currency"], "customer": invoice["customer"], "customer_account": None,
        "customer_balance_transaction": new_id("cbtxn") if credit_amount else None, "discount_amount": 0,
        "discount_amounts": [], "effective_at": details["effective_at"],
        "invoice": invoice["id"],
        "lines": {**list_envelope(lines, f"/v1/credit_notes/{note_id}/lines"), "total_count": len(lines)},
        "livemode": False, "memo": details["memo"], "metadata": details["metadata"],
        "number": f"{invoice['number']}-CN-{private['credit_notes']:02d}", "out_of_band_amount": out_of_band or None,
        "pdf": f"{private['base_url']}/files/credit_notes/{note_id}.pdf", "post_payment_amount": total,
        "pre_payment_amount": 0, "pretax_credit_amounts": [],
        "reason": details["reason"], "refunds": [], "shipping_cost": None,
        "status": "issued", "subtotal": subtotal, "subtotal_excluding_tax": subtotal - _inclusive_part(shares),
        "total": total, "total_excluding_tax": total - sum(s.amount for s in shares),
        "total_taxes": total_taxes(shares), "type": "post_payment", "voided_at": None,
    }


def _refund_reason(credit_note_reason: str | None) -> str | None:
    return credit_note_reason if credit_note_reason in ("duplicate", "fraudulent") else "requested_by_customer"
