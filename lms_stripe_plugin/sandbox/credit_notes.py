"""Credit notes: ``POST /v1/credit_notes`` on open, paid and partially paid invoices.

From ``CreditNoteService.create`` and the 2025-05-28.basil changelog ("partial payments"): a credit note
"will first reduce the invoice's amount_remaining (and amount_due), but not below zero" (its
``pre_payment_amount``); the rest (``post_payment_amount``) is refunded (``refund_amount`` or linked
``refunds[]``), credited to the customer's balance (``credit_amount``) or credited outside Stripe
(``out_of_band_amount``), and these must add up to it. Refunds made through the Refund API and not
linked to a credit note are taken off what can still be credited.

``POST /v1/credit_notes/{id}/void`` (`void_credit_note`) voids the credit note of an open invoice only.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .amounts import check_step, format_amount, line_taxes, round_half_up, step
from .errors import StripeError, invalid_param, missing_param
from .ids import new_id
from .invoice_payments import (amounts_before, attached_payments, change_customer_balance, credit_applied,
                               payments_of_invoice, settle)
from .invoice_shapes import inclusive_part, tax_entry, total_taxes
from .listing import list_envelope
from .params import Params
from .refunds import check_refundable, create_refund
from .state import SandboxState, locked

CREDIT_NOTE_PARAMS = {
    "amount", "credit_amount", "effective_at", "email_type", "invoice", "lines", "memo", "metadata",
    "out_of_band_amount", "reason", "refund_amount", "refunds",
}
CREDIT_NOTE_REASONS = ("duplicate", "fraudulent", "order_change", "product_unsatisfactory")
_LIVE_REFUNDS = ("pending", "requires_action", "succeeded")


@locked
def create_credit_note(state: SandboxState, params: Params) -> dict[str, Any]:
    """``POST /v1/credit_notes`` on an ``open`` or ``paid`` invoice.

    Stripe documents credit notes for open and paid invoices ("To adjust the balance of an open or
    paid invoice, generate a credit note", docs.stripe.com/invoicing/integration/programmatic-credit-notes).
    """
    params.reject_unimplemented(CREDIT_NOTE_PARAMS)
    invoice = state.require(params.string("invoice", required=True), "invoice", param="invoice", status=400)
    if invoice["status"] not in ("open", "paid"):
        raise invalid_param("invoice", f"Credit notes can be issued only for open or paid invoices; invoice "
                                       f"{invoice['id']} is {invoice['status']}.")
    details = _note_details(state, params)
    linked = _linked_refunds(state, invoice, params)
    lines, param = _credit_lines(state, invoice, params, sum(amount for _, amount in linked))
    total = sum(line["_total"] for line in lines)
    pre_payment = min(total, invoice["amount_remaining"]) if invoice["status"] == "open" else 0
    post_payment = total - pre_payment
    _check_creditable(state, invoice, total, pre_payment, param, linked)
    refund_amount, credit_amount, out_of_band = _allocation(params, post_payment, linked, invoice["currency"])
    to_refund = _refund_plan(state, invoice, refund_amount)
    credit_note = _credit_note_object(state, invoice, details, lines, total, credit_amount, out_of_band)
    credit_note.update(pre_payment_amount=pre_payment, post_payment_amount=post_payment,
                       type=_note_type(pre_payment, post_payment))
    state.add(credit_note)
    for charge, amount in to_refund:
        refund = create_refund(state, charge, amount, _refund_reason(credit_note["reason"]), {}, param="refund_amount")
        linked.append((refund, amount))
    for refund, amount in linked:
        state.private[refund["id"]]["credited"] = state.private[refund["id"]].get("credited", 0) + amount
    credit_note["refunds"] = [{"amount_refunded": amount, "payment_record_refund": None, "refund": refund["id"],
                               "type": "refund"} for refund, amount in linked]
    if credit_amount:
        # ``customer_balance_transaction``: "Customer balance transaction related to this credit note" (its id).
        transaction = change_customer_balance(state, invoice, -credit_amount, "credit_note",
                                              credit_note=credit_note["id"])
        credit_note["customer_balance_transaction"] = transaction["id"] if transaction else None
    state.emit("credit_note.created", credit_note)
    _apply_to_invoice(state, invoice, pre_payment, post_payment)
    return credit_note


@locked
def void_credit_note(state: SandboxState, note_id: str) -> dict[str, Any]:
    """``POST /v1/credit_notes/{id}/void``: "You can only void a credit note if the associated invoice is open"
    (Stripe's description of the endpoint in its API spec, as generated SDKs carry it; the API reference,
    docs.stripe.com/api/credit_notes/void, now links it to "voiding credit notes").

    A credit note of an open invoice is all pre-payment: a post-payment part (refunded, credited to the
    customer's balance or out of band) comes only once it took what remained to zero, which made the invoice
    paid. So a void gives back to the invoice what the credit note took off its ``amount_due`` and
    ``amount_remaining``, and never touches a refund or the customer's balance. A void credit note stays void
    (the wording of that refusal is the sandbox's).
    """
    note = state.require(note_id, "credit_note")
    if note["status"] == "void":
        raise StripeError(f"The credit note {note['id']} is already void.")
    invoice = state.require(note["invoice"], "invoice")
    if invoice["status"] != "open":
        raise StripeError("You can only void a credit note if the associated invoice is open.")
    previous = {**amounts_before(invoice),
                "pre_payment_credit_notes_amount": invoice["pre_payment_credit_notes_amount"]}
    note.update(status="void", voided_at=state.now())
    state.emit("credit_note.voided", note)
    invoice["pre_payment_credit_notes_amount"] -= note["pre_payment_amount"]
    invoice["amount_due"] += note["pre_payment_amount"]
    settle(state, invoice, previous, paid_by_payment=False)
    return note


def _note_type(pre_payment: int, post_payment: int) -> str:
    if pre_payment and post_payment:
        return "mixed"
    return "pre_payment" if pre_payment else "post_payment"


def _apply_to_invoice(state: SandboxState, invoice: dict[str, Any], pre_payment: int, post_payment: int) -> None:
    """Pre-payment credit lowers ``amount_due`` and ``amount_remaining``; at 0 an open invoice is ``paid``.

    That an open invoice credited down to 0 becomes ``paid`` (``invoice.paid``, no
    ``invoice.payment_succeeded``: nothing was paid) is the sandbox's reading of "reduce the invoice's
    amount_remaining"; Stripe's page does not say it in so many words.
    """
    previous = {**amounts_before(invoice),
                "post_payment_credit_notes_amount": invoice["post_payment_credit_notes_amount"],
                "pre_payment_credit_notes_amount": invoice["pre_payment_credit_notes_amount"]}
    invoice["pre_payment_credit_notes_amount"] += pre_payment
    invoice["post_payment_credit_notes_amount"] += post_payment
    if pre_payment:
        invoice["amount_due"] -= pre_payment
        settle(state, invoice, previous, paid_by_payment=False)
        return
    state.emit("invoice.updated", invoice, {k: v for k, v in previous.items() if invoice[k] != v})


# -- refunds linked to the credit note ----------------------------------------------------------


def _paid_charges(state: SandboxState, invoice: dict[str, Any]) -> list[dict[str, Any]]:
    """The charges of the invoice's paid payments, the most recently paid first. A Payment Record's payment has
    none: Stripe refunds only what it charged ("You can't initiate refunds from Stripe for payments processed
    through your third-party processor", docs.stripe.com/billing/subscriptions/third-party-payment-processing)."""
    paid = [p for p in payments_of_invoice(state, invoice["id"]) if p["status"] == "paid"]
    paid.sort(key=lambda p: p["status_transitions"]["paid_at"] or 0, reverse=True)
    charges = []
    for payment in paid:
        intent = state.get(payment["payment"].get("payment_intent"), "payment_intent")
        charge = state.get((intent or {}).get("latest_charge"), "charge")
        if charge is not None:
            charges.append(charge)
    return charges


def _linked_refunds(state: SandboxState, invoice: dict[str, Any], params: Params) -> list[tuple[dict[str, Any], int]]:
    """``refunds[]``: refunds of the invoice's payments, each linked for ``amount_refunded`` (default: all of it)."""
    charge_ids = {c["id"] for c in _paid_charges(state, invoice)}
    linked: list[tuple[dict[str, Any], int]] = []
    for entry in params.objects("refunds"):
        entry.reject_unimplemented({"refund", "amount_refunded", "type"})
        entry.string("type", default="refund", choices=("refund",))
        refund = state.require(entry.string("refund", required=True), "refund", param=entry.name("refund"), status=400)
        if refund["charge"] not in charge_ids:
            raise invalid_param(entry.name("refund"), f"The refund {refund['id']} is not a refund of a payment of "
                                                      f"invoice {invoice['id']}.")
        if refund["status"] not in _LIVE_REFUNDS:
            raise invalid_param(entry.name("refund"), f"The refund {refund['id']} is {refund['status']}.")
        taken = state.private[refund["id"]].get("credited", 0) + sum(a for r, a in linked if r["id"] == refund["id"])
        left = refund["amount"] - taken
        amount = entry.integer("amount_refunded", minimum=1, default=left)
        if amount > left:
            raise invalid_param(entry.name("amount_refunded"), (
                f"The amount ({format_amount(amount, refund['currency'])}) is more than what of refund {refund['id']} "
                f"is not yet on a credit note ({format_amount(left, refund['currency'])})."), code="amount_too_large")
        linked.append((refund, amount))
    return linked


def _unlinked_refunds(state: SandboxState, invoice: dict[str, Any], linking: list[tuple[dict[str, Any], int]]) -> int:
    """Refunds of the invoice's payments made through the Refund API and on no credit note.

    "For invoices that also have refunds created through the Refund API, the credit note API subtracts
    those refund amounts from the maximum creditable amount" (``CreditNoteService.create``). A refund
    being linked by this very credit note is not subtracted twice (Stripe does not say; see the notes).
    """
    charge_ids = {c["id"] for c in _paid_charges(state, invoice)}
    now_linked = {refund["id"]: 0 for refund, _ in linking}
    for refund, amount in linking:
        now_linked[refund["id"]] += amount
    total = 0
    for refund in state.all("refund"):
        if refund["charge"] in charge_ids and refund["status"] in _LIVE_REFUNDS:
            credited = state.private[refund["id"]].get("credited", 0) + now_linked.get(refund["id"], 0)
            total += max(0, refund["amount"] - credited)
    return total


def _refund_plan(state: SandboxState, invoice: dict[str, Any], amount: int) -> list[tuple[dict[str, Any], int]]:
    """``refund_amount``: "a refund will be created for the charge associated with the invoice".

    With several payments Stripe does not say which charge; the sandbox refunds the most recently
    paid first and goes on to the next while some is left.
    """
    plan: list[tuple[dict[str, Any], int]] = []
    if not amount:
        return plan
    charges = _paid_charges(state, invoice)
    if not charges:
        raise invalid_param("refund_amount", "This invoice has no payment that can be refunded.")
    left = amount
    for charge in charges:
        available = charge["amount"] - charge["amount_refunded"]
        if available <= 0 or not left:
            continue
        part = min(available, left)
        check_refundable(state, charge, part, param="refund_amount")
        plan.append((charge, part))
        left -= part
    if left:
        check_refundable(state, charges[0], amount, param="refund_amount")  # raises Stripe's amount_too_large
    return plan


def _credit_lines(state: SandboxState, invoice: dict[str, Any], params: Params,
                  linked_total: int) -> tuple[list[dict[str, Any]], str]:
    if params.objects("lines"):
        return [_explicit_line(state, invoice, line) for line in params.objects("lines")], "lines"
    if params.has("amount"):
        amount = params.integer("amount", minimum=1)
        check_step(amount, invoice["currency"], "amount")
        return _spread(state, invoice, amount), "amount"
    allocated = linked_total + sum(params.integer(key, minimum=0, default=0) or 0
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


def _allocation(params: Params, post_payment: int, linked: list[tuple[dict[str, Any], int]],
                currency: str) -> tuple[int, int, int]:
    """"The sum of refunds, customer balance credits, and outside of Stripe credits must equal the
    post_payment_amount"; nothing said at all credits the customer's balance."""
    refund = params.integer("refund_amount", minimum=0, default=0) or 0
    credit = params.integer("credit_amount", minimum=0, default=0) or 0
    out_of_band = params.integer("out_of_band_amount", minimum=0, default=0) or 0
    for key, amount in (("refund_amount", refund), ("credit_amount", credit), ("out_of_band_amount", out_of_band)):
        check_step(amount, currency, key)
    linked_total = sum(amount for _, amount in linked)
    allocated = refund + linked_total + credit + out_of_band
    if allocated == 0:
        return 0, post_payment, 0
    if allocated != post_payment:
        raise invalid_param("refund_amount", (
            f"The sum of refunds, credit amount and out of band amount ({format_amount(allocated, currency)}) "
            f"must equal the credit note's post-payment amount ({format_amount(post_payment, currency)})."))
    return refund, credit, out_of_band


def _check_creditable(state: SandboxState, invoice: dict[str, Any], total: int, pre_payment: int, param: str,
                      linked: list[tuple[dict[str, Any], int]]) -> None:
    """What was paid, by payments or by the customer's credit balance applied at finalization, can be credited
    once: an invoice the credit balance paid has an ``amount_paid`` of 0 and is still credited (to the balance,
    with ``credit_amount``: its refunds are limited to its charges, `_refund_plan`). Stripe documents the
    creditable total only through its refusals; the sandbox counts the applied balance as paid."""
    paid_left = (invoice["amount_paid"] + credit_applied(invoice) - invoice["post_payment_credit_notes_amount"]
                 - _unlinked_refunds(state, invoice, linked))
    creditable = pre_payment + max(0, paid_left)
    if total > creditable:
        raise invalid_param(param, (
            f"The credit note amount ({format_amount(total, invoice['currency'])}) exceeds the amount that can "
            f"still be credited on invoice {invoice['number']} ({format_amount(creditable, invoice['currency'])})."),
            code="credit_note_amount_too_large" if param != "refund_amount" else "amount_too_large")


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
        "customer_balance_transaction": None, "discount_amount": 0,
        "discount_amounts": [], "effective_at": details["effective_at"],
        "invoice": invoice["id"],
        "lines": {**list_envelope(lines, f"/v1/credit_notes/{note_id}/lines"), "total_count": len(lines)},
        "livemode": False, "memo": details["memo"], "metadata": details["metadata"],
        "number": f"{invoice['number']}-CN-{private['credit_notes']:02d}", "out_of_band_amount": out_of_band or None,
        "pdf": f"{private['base_url']}/files/credit_notes/{note_id}.pdf", "post_payment_amount": total,
        "pre_payment_amount": 0, "pretax_credit_amounts": [],
        "reason": details["reason"], "refunds": [], "shipping_cost": None,
        "status": "issued", "subtotal": subtotal, "subtotal_excluding_tax": subtotal - inclusive_part(shares),
        "total": total, "total_excluding_tax": total - sum(s.amount for s in shares),
        "total_taxes": total_taxes(shares), "type": "post_payment", "voided_at": None,
    }


def _refund_reason(credit_note_reason: str | None) -> str | None:
    return credit_note_reason if credit_note_reason in ("duplicate", "fraudulent") else "requested_by_customer"
