"""The Invoices API: one-off invoices sent to a customer and paid in one or several goes.

``POST /v1/invoices`` (a draft), lines by ``/add_lines`` or ``POST /v1/invoiceitems``,
``/finalize``, ``/send``, ``/void``, ``/mark_uncollectible`` and ``/attach_payment``, following the
SDK's docstrings of ``InvoiceService`` and the pages "Accept partial payments for invoices"
(docs.stripe.com/invoicing/partial-payments) and "Customer credit balance"
(docs.stripe.com/billing/customer/balance). Where Stripe documents a rule but not the error it
answers, the message is the sandbox's own and says so in a comment.
"""

from __future__ import annotations

from typing import Any

from .amounts import check_step, format_amount, price_lines, step
from .customer_balance import credit_balance
from .errors import StripeError, invalid_param, missing_param, unsupported_param
from .ids import new_id
from .invoice_payments import (amounts_before, attached_payments, change_customer_balance, credit,
                               open_default_payment, payment_object, payments_of_intent, payments_of_record, settle,
                               sync_default_payment)
from . import payment_records
from .invoice_shapes import amount_fields, finalize, invoice_object, line_object, new_line_id, set_lines
from .params import Params
from .resources import custom_fields, price_object, product_object
from .state import SandboxState, locked

INVOICE_PARAMS = {
    "auto_advance", "collection_method", "currency", "custom_fields", "customer", "days_until_due",
    "default_tax_rates", "description", "due_date", "effective_at", "footer", "metadata",
    "pending_invoice_items_behavior", "rendering",
}
LINE_PARAMS = {"amount", "description", "discountable", "invoice_item", "metadata", "period", "price_data",
               "pricing", "quantity", "tax_rates"}
ITEM_PARAMS = {"amount", "currency", "customer", "description", "discountable", "invoice", "metadata", "period",
               "price_data", "pricing", "quantity", "tax_behavior", "tax_rates", "unit_amount_decimal"}
# "You can only add invoice items to draft invoices and there is a maximum of 250 items per invoice"
# (InvoiceItemCreateParams.invoice).
MAX_ITEMS = 250
# The currency of an invoice whose customer has none: the sandbox account is German (account_country DE).
ACCOUNT_CURRENCY = "eur"
_DAY = 24 * 3600


def _state_error(message: str, code: str | None = None) -> StripeError:
    """A request refused because of the object's state (no parameter is at fault)."""
    return StripeError(message, code=code)


# -- creation -----------------------------------------------------------------------------------


@locked
def create_invoice(state: SandboxState, params: Params, base_url: str) -> dict[str, Any]:
    """``POST /v1/invoices``: a draft (``invoice.created``), due ``days_until_due`` after creation or on ``due_date``."""
    params.reject_unimplemented(INVOICE_PARAMS)
    customer_id = params.string("customer")
    if not customer_id:
        raise missing_param("customer")
    customer = state.require(customer_id, "customer", param="customer", status=400)
    collection = params.string("collection_method", default="charge_automatically")
    if collection != "send_invoice":
        # Stripe charges the customer's saved payment method; the sandbox keeps none.
        raise invalid_param("collection_method", "The Stripe sandbox creates only invoices with "
                                                 f"collection_method=send_invoice (got `{collection}`).")
    now = state.now()
    invoice_id = new_id("in")
    settings = customer["invoice_settings"]
    rates = [_tax_rate(state, f"default_tax_rates[{i}]", r) for i, r in enumerate(params.strings("default_tax_rates"))]
    invoice = invoice_object(
        state, invoice_id, customer, _currency(params, customer), collection_method="send_invoice",
        due_date=_due_date(params, now), auto_advance=params.boolean("auto_advance", default=False),
        description=params.string("description", max_length=1500),
        footer=params.string("footer", max_length=5000) if "footer" in params.data else settings["footer"],
        custom_fields=(custom_fields(params, "custom_fields") or None) if "custom_fields" in params.data
        else settings["custom_fields"],
        metadata=params.metadata(), effective_at=params.integer("effective_at"),
        rendering=_rendering(params.sub("rendering"), settings), default_tax_rates=[dict(r) for r in rates],
    )
    state.add(invoice, {"base_url": base_url, "items": [], "credit_notes": 0, "overdue": False,
                        "default_tax_rate_ids": [r["id"] for r in rates]})
    behaviour = params.string("pending_invoice_items_behavior", default="exclude")
    if behaviour == "include":
        _take_pending_items(state, invoice)
    _refresh(state, invoice)
    state.emit("invoice.created", invoice)
    return invoice


def _currency(params: Params, customer: dict[str, Any]) -> str:
    """"Defaults to that of customer if not specified" (``InvoiceCreateParams.currency``)."""
    currency = params.string("currency")
    if currency is None:
        return customer.get("currency") or ACCOUNT_CURRENCY
    if len(currency) != 3 or not currency.isalpha():
        raise invalid_param("currency", f"Invalid currency: {currency}.")
    return currency.lower()


def _due_date(params: Params, now: int) -> int:
    days, due = params.integer("days_until_due", minimum=0), params.integer("due_date")
    if days is not None and due is not None:
        raise invalid_param("due_date", "You may only specify one of these parameters: days_until_due, due_date.")
    if days is None and due is None:
        # Stripe refuses a send_invoice invoice without a due date; its wording is not documented.
        raise StripeError("Invoices with collection_method=send_invoice need either `days_until_due` or `due_date`.",
                          code="parameter_missing", param="days_until_due")
    if due is not None:
        if due <= now:
            raise invalid_param("due_date", f"The due date ({due}) must be in the future.")
        return due
    assert days is not None
    # "The number of days from when the invoice is created until it is due."
    return now + days * _DAY


def _rendering(rendering: Params, settings: dict[str, Any]) -> dict[str, Any]:
    rendering.reject_unimplemented({"amount_tax_display", "pdf"})
    default = (settings.get("rendering_options") or {}).get("amount_tax_display")
    display = rendering.string("amount_tax_display", choices=("", "exclude_tax", "include_inclusive_tax"))
    pdf = rendering.sub("pdf")
    pdf.reject_unimplemented({"page_size"})
    page_size = pdf.string("page_size", default="auto", choices=("a4", "auto", "letter"))
    return {"amount_tax_display": display if "amount_tax_display" in rendering.data else default,
            "pdf": {"page_size": page_size}, "template": None, "template_version": None}


def _tax_rate(state: SandboxState, param: str, rate_id: str) -> dict[str, Any]:
    rate = state.require(rate_id, "tax_rate", param=param, status=400)
    if not rate["active"]:
        raise invalid_param(param, f"The tax rate {rate_id} is archived and cannot be used.")
    return rate


# -- lines and invoice items ------------------------------------------------------------------


def _editable(invoice: dict[str, Any]) -> None:
    if invoice["status"] != "draft":
        # InvoiceService.add_lines: "This is only possible when an invoice is still a draft."
        raise _state_error(f"This invoice is {invoice['status']}: only draft invoices can be edited.",
                           code="invoice_not_editable")


@locked
def add_lines(state: SandboxState, invoice_id: str, params: Params) -> dict[str, Any]:
    """``POST /v1/invoices/{id}/add_lines``: each line becomes an invoice item (``invoiceitem.created``)."""
    params.reject_unimplemented({"lines", "invoice_metadata"})
    invoice = state.require(invoice_id, "invoice")
    _editable(invoice)
    lines = params.objects("lines")
    if not lines:
        raise missing_param("lines")
    _check_room(state, invoice, len(lines), "lines")
    specs = [_line_spec(state, invoice, line) for line in lines]
    previous = _totals_before(invoice)
    if "invoice_metadata" in params.data:
        previous["metadata"] = dict(invoice["metadata"])
        invoice["metadata"] = _merged_metadata(invoice["metadata"], params, "invoice_metadata")
    for spec in specs:
        _store_item(state, invoice, spec)
    _refresh(state, invoice)
    state.emit("invoice.updated", invoice, _changed(previous, invoice))
    return invoice


@locked
def create_invoice_item(state: SandboxState, params: Params) -> dict[str, Any]:
    """``POST /v1/invoiceitems``: on a draft ``invoice``, or pending for the customer's next invoice."""
    params.reject_unimplemented(ITEM_PARAMS)
    customer_id = params.string("customer")
    if not customer_id:
        raise missing_param("customer")
    customer = state.require(customer_id, "customer", param="customer", status=400)
    invoice = None
    if params.has("invoice"):
        invoice = state.require(params.string("invoice"), "invoice", param="invoice", status=400)
        _editable(invoice)
        if invoice["customer"] != customer["id"]:
            raise invalid_param("invoice", f"The invoice {invoice['id']} belongs to another customer "
                                           f"({invoice['customer']}), not to {customer['id']}.")
        _check_room(state, invoice, 1, "invoice")
    currency = (invoice or {}).get("currency") or customer.get("currency") or ACCOUNT_CURRENCY
    spec = _item_spec(state, params, currency, customer)
    if invoice is None:
        return _store_item(state, None, spec)
    previous = _totals_before(invoice)
    item = _store_item(state, invoice, spec)
    _refresh(state, invoice)
    state.emit("invoice.updated", invoice, _changed(previous, invoice))
    return item


def _check_room(state: SandboxState, invoice: dict[str, Any], adding: int, param: str) -> None:
    if len(state.private[invoice["id"]]["items"]) + adding > MAX_ITEMS:
        raise invalid_param(param, f"An invoice can have at most {MAX_ITEMS} invoice items.")


def _line_spec(state: SandboxState, invoice: dict[str, Any], line: Params) -> dict[str, Any]:
    """What one entry of ``lines[]`` asks for: an amount, an inline price, a price or a pending item."""
    line.reject_unimplemented(LINE_PARAMS)
    if line.has("invoice_item"):
        return _pending_item_spec(state, invoice, line)
    spec = _priced_spec(state, line, invoice["currency"], price_data_needs_product=False)
    spec["tax_rate_ids"] = _rate_ids(state, line)
    return spec


def _item_spec(state: SandboxState, params: Params, currency: str, customer: dict[str, Any]) -> dict[str, Any]:
    requested = params.string("currency")
    if requested and requested.lower() != currency:
        raise invalid_param("currency", f"The currency `{requested.lower()}` does not match the invoice's "
                                        f"currency `{currency}`.")
    behaviour = params.string("tax_behavior", choices=("exclusive", "inclusive", "unspecified"))
    spec = _priced_spec(state, params, currency, price_data_needs_product=True, tax_behavior=behaviour)
    spec.update(customer=customer["id"], tax_rate_ids=_rate_ids(state, params))
    return spec


def _priced_spec(state: SandboxState, line: Params, currency: str, *, price_data_needs_product: bool,
                 tax_behavior: str | None = None) -> dict[str, Any]:
    sources = [key for key in ("amount", "price_data", "pricing", "unit_amount_decimal") if key in line.data]
    if len(sources) > 1:
        raise invalid_param(line.name(sources[1]),
                            f"You may only specify one of these parameters: {', '.join(sources)}.")
    if not sources:
        raise StripeError("You must specify one of `amount`, `price_data` or `pricing`.", code="parameter_missing",
                          param=line.name("amount"))
    quantity = line.integer("quantity", default=1, minimum=0)
    spec: dict[str, Any] = {
        "description": line.string("description", max_length=5000), "metadata": line.metadata(),
        "quantity": quantity, "period": _period(line.sub("period")),
        "discountable": line.boolean("discountable", default=True), "price_id": None, "product_id": None,
        "tax_behavior": tax_behavior or "unspecified", "currency": currency,
    }
    source = sources[0]
    if source == "amount":
        amount = line.integer("amount")
        if amount is not None and amount < 0:
            raise unsupported_param(line.name("amount"))  # credits (negative amounts) are not modelled
        if quantity != 1:
            # Stripe's ``amount`` is the line's total; the sandbox refuses to guess a unit price from it.
            raise invalid_param(line.name("quantity"), "With `amount`, the quantity must be 1: `amount` is the "
                                                       "total of the line.")
        spec["unit_amount"] = amount
    elif source == "unit_amount_decimal":
        spec["unit_amount"] = _whole(line, "unit_amount_decimal")
    elif source == "pricing":
        _from_price(state, line.sub("pricing"), currency, spec)
    else:
        _from_price_data(state, line.sub("price_data"), currency, spec, needs_product=price_data_needs_product)
    check_step(spec["unit_amount"], currency, line.name(source))
    if spec["description"] is None and spec["product_id"] is None:
        # Stripe names the line after its product; an amount-only line without description has no name.
        raise missing_param(line.name("description"))
    return spec


def _whole(params: Params, key: str) -> int:
    value = params.decimal(key)
    if value is None:
        raise missing_param(params.name(key))
    if value != value.to_integral_value() or value < 0:
        raise invalid_param(params.name(key), "The Stripe sandbox supports only whole, non-negative minor units in "
                                              f"{key}.")
    return int(value)


def _from_price(state: SandboxState, pricing: Params, currency: str, spec: dict[str, Any]) -> None:
    pricing.reject_unimplemented({"price"})
    price = state.require(pricing.string("price"), "price", param=pricing.name("price"), status=400)
    if price["currency"] != currency:
        raise invalid_param(pricing.name("price"), f"The price's currency `{price['currency']}` does not match the "
                                                   f"invoice's currency `{currency}`.")
    spec.update(price_id=price["id"], product_id=price["product"], unit_amount=price["unit_amount"],
                tax_behavior=price["tax_behavior"])


def _from_price_data(state: SandboxState, data: Params, currency: str, spec: dict[str, Any], *,
                     needs_product: bool) -> None:
    data.reject_unimplemented({"currency", "product", "product_data", "tax_behavior", "unit_amount",
                               "unit_amount_decimal"})
    requested = data.string("currency", required=True).lower()
    if requested != currency:
        raise invalid_param(data.name("currency"), f"The currency `{requested}` does not match the invoice's "
                                                   f"currency `{currency}`.")
    if data.has("unit_amount") and data.has("unit_amount_decimal"):
        raise invalid_param(data.name("unit_amount_decimal"),
                            "You may only specify one of these parameters: unit_amount, unit_amount_decimal.")
    if data.has("unit_amount"):
        spec["unit_amount"] = data.integer("unit_amount", minimum=0, maximum=99999999)
    else:
        spec["unit_amount"] = _whole(data, "unit_amount_decimal")
    spec["tax_behavior"] = data.string("tax_behavior", default="unspecified",
                                       choices=("exclusive", "inclusive", "unspecified"))
    if data.has("product") == bool(data.sub("product_data").data):
        # "One of product or product_data is required."
        raise invalid_param(data.name("product"), "You must specify either `product` or `product_data`.")
    if data.has("product"):
        product = state.require(data.string("product"), "product", param=data.name("product"), status=400)
        spec["product_id"] = product["id"]
        return
    if needs_product:  # InvoiceItemCreateParamsPriceData has no product_data
        raise missing_param(data.name("product"))
    product_data = data.sub("product_data")
    product_data.reject_unimplemented({"name", "description", "metadata", "tax_code", "unit_label"})
    product = product_object(state, product_data.string("name", required=True, max_length=250),
                             product_data.string("description", max_length=40000), product_data.metadata())
    spec["product_id"] = state.add(product)["id"]


def _period(period: Params) -> dict[str, int] | None:
    if not period.data:
        return None
    period.reject_unimplemented({"start", "end"})
    start, end = period.integer("start", required=True), period.integer("end", required=True)
    if end < start:
        raise invalid_param(period.name("end"), "The end of the period must be greater than or equal to its start.")
    return {"end": end, "start": start}


def _rate_ids(state: SandboxState, params: Params) -> list[str] | None:
    """The line's own tax rates; None when it has none and the invoice's ``default_tax_rates`` apply."""
    if "tax_rates" not in params.data:
        return None
    return [_tax_rate(state, f"{params.name('tax_rates')}[{i}]", rate_id)["id"]
            for i, rate_id in enumerate(params.strings("tax_rates"))]


def _pending_item_spec(state: SandboxState, invoice: dict[str, Any], line: Params) -> dict[str, Any]:
    item = state.require(line.string("invoice_item"), "invoiceitem", param=line.name("invoice_item"), status=400)
    if item["invoice"] is not None or item["customer"] != invoice["customer"] or item["currency"] != invoice["currency"]:
        raise invalid_param(line.name("invoice_item"), f"The invoice item {item['id']} is not a pending item of this "
                                                       "invoice's customer in its currency.")
    return {"existing": item["id"]}


def _store_item(state: SandboxState, invoice: dict[str, Any] | None, spec: dict[str, Any]) -> dict[str, Any]:
    """Create the invoice item of a spec (``invoiceitem.created``), or assign an existing pending one."""
    if "existing" in spec:
        item = state.require(spec["existing"], "invoiceitem")
        assert invoice is not None
        item["invoice"] = invoice["id"]
        state.private[invoice["id"]]["items"].append(item["id"])
        return item
    currency = spec["currency"]
    if spec["product_id"] is None:
        spec["product_id"] = state.add(product_object(state, spec["description"], None, {}))["id"]
    if spec["price_id"] is None:
        price = price_object(state, spec["product_id"], currency, spec["unit_amount"], spec["tax_behavior"])
        spec["price_id"] = state.add(price)["id"]
    if spec["description"] is None:
        spec["description"] = state.require(spec["product_id"], "product")["name"]
    now = state.now()
    amount = spec["unit_amount"] * spec["quantity"]
    rate_ids = spec["tax_rate_ids"]
    item = {
        "id": new_id("ii"), "object": "invoiceitem", "amount": amount, "currency": currency,
        "customer": spec.get("customer") or (invoice or {}).get("customer"), "customer_account": None, "date": now,
        "description": spec["description"], "discountable": spec["discountable"], "discounts": [],
        "invoice": invoice["id"] if invoice else None, "livemode": False, "metadata": spec["metadata"],
        "net_amount": amount, "parent": None, "period": spec["period"] or {"end": now, "start": now},
        "pricing": {"price_details": {"price": spec["price_id"], "product": spec["product_id"]},
                    "type": "price_details", "unit_amount_decimal": str(spec["unit_amount"])},
        "proration": False, "proration_details": {"discount_amounts": []}, "quantity": spec["quantity"],
        "quantity_decimal": str(spec["quantity"]),
        "tax_rates": [state.render(state.require(r, "tax_rate")) for r in rate_ids or []], "test_clock": None,
    }
    state.add(item, {"line_id": new_line_id(), "unit_amount": spec["unit_amount"], "tax_rate_ids": rate_ids})
    if invoice is not None:
        state.private[invoice["id"]]["items"].append(item["id"])
    state.emit("invoiceitem.created", item)
    return item


def _take_pending_items(state: SandboxState, invoice: dict[str, Any]) -> None:
    """``pending_invoice_items_behavior=include``: the customer's pending items in the invoice's currency."""
    pending = [item for item in reversed(state.all("invoiceitem")) if item["invoice"] is None
               and item["customer"] == invoice["customer"] and item["currency"] == invoice["currency"]]
    for item in pending[:MAX_ITEMS]:
        item["invoice"] = invoice["id"]
        state.private[invoice["id"]]["items"].append(item["id"])


def _refresh(state: SandboxState, invoice: dict[str, Any]) -> None:
    """Recompute a draft's lines and amounts from its invoice items and tax rates."""
    private = state.private[invoice["id"]]
    items = [state.require(item_id, "invoiceitem") for item_id in private["items"]]
    specs = []
    for item in items:
        rate_ids = state.private[item["id"]]["tax_rate_ids"]
        rate_ids = private["default_tax_rate_ids"] if rate_ids is None else rate_ids
        specs.append({"unit_amount": state.private[item["id"]]["unit_amount"], "quantity": item["quantity"],
                      "rates": [state.require(r, "tax_rate") for r in rate_ids]})
    priced = price_lines(specs, None, step(invoice["currency"]))
    lines = [line_object(state, invoice["id"], p, line_id=state.private[item["id"]]["line_id"],
                         currency=invoice["currency"], description=item["description"], quantity=item["quantity"],
                         unit_amount=state.private[item["id"]]["unit_amount"],
                         price_id=item["pricing"]["price_details"]["price"],
                         product_id=item["pricing"]["price_details"]["product"], metadata=item["metadata"],
                         invoice_item_id=item["id"], period=item["period"], discountable=item["discountable"])
             for item, p in zip(items, priced)]
    set_lines(invoice, lines)
    invoice.update(amount_fields(priced))


def _totals_before(invoice: dict[str, Any]) -> dict[str, Any]:
    keys = ("amount_due", "amount_remaining", "subtotal", "subtotal_excluding_tax", "total", "total_excluding_tax",
            "total_taxes")
    return {key: invoice[key] for key in keys}


def _changed(previous: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in previous.items() if current.get(key) != value}


def _merged_metadata(current: dict[str, str], params: Params, key: str) -> dict[str, str]:
    if params.raw(key) == "":
        return {}
    sent = params.raw(key) or {}
    params.metadata(key)
    return {k: v for k, v in {**current, **sent}.items() if v != ""}


# -- finalizing, sending, voiding -------------------------------------------------------------------


@locked
def finalize_invoice(state: SandboxState, invoice_id: str, params: Params) -> dict[str, Any]:
    """``POST /v1/invoices/{id}/finalize``."""
    params.reject_unimplemented({"auto_advance"})
    invoice = state.require(invoice_id, "invoice")
    _finalize(state, invoice, params.boolean("auto_advance"))
    return invoice


def _finalize(state: SandboxState, invoice: dict[str, Any], auto_advance: bool | None = None) -> None:
    """Number it, apply the customer's balance, open its default payment; 0 to pay: ``paid`` at once."""
    if invoice["status"] != "draft":
        raise _state_error("This invoice is already finalized, you can't re-finalize a non-draft invoice.")
    if invoice["due_date"] is not None and invoice["due_date"] < state.now():
        # Stripe refuses a due date in the past; its wording for a draft left past its due date is not documented.
        raise invalid_param("due_date", "The invoice's due date has passed: set a due date in the future before "
                                        "finalizing it.")
    if auto_advance is not None:
        invoice["auto_advance"] = auto_advance
    _apply_balance(state, invoice)
    finalize(state, invoice, state.private[invoice["id"]]["base_url"])
    if invoice["amount_remaining"] == 0:
        # "If the amount due for the invoice is less than Stripe's minimum allowed charge per currency, the
        # invoice is automatically marked paid" (Invoice object); the sandbox does so only for 0.
        settle(state, invoice, amounts_before(invoice), paid_by_payment=True)
        return
    open_default_payment(state, invoice)
    if invoice["due_date"] is not None:
        state.schedule(max(0.0, invoice["due_date"] - state.now_float()),
                       lambda: mark_overdue(state, invoice["id"]))


def _apply_balance(state: SandboxState, invoice: dict[str, Any]) -> None:
    """"The credit balance automatically applies toward the next invoice finalized to a customer" (and a debit
    adds to it): ``starting_balance``, ``ending_balance`` and ``amount_due`` (docs.stripe.com/billing/customer/balance).
    """
    customer = state.get(invoice["customer"], "customer")
    balance = credit_balance(state, customer, invoice["currency"]) if customer else 0
    applied = max(balance, -invoice["total"]) if balance < 0 else balance
    invoice.update(starting_balance=balance, ending_balance=balance - applied, amount_due=invoice["total"] + applied)
    invoice["amount_remaining"] = invoice["amount_due"] - invoice["amount_paid"]
    change_customer_balance(state, invoice, -applied, "applied_to_invoice")


def mark_overdue(state: SandboxState, invoice_id: str) -> None:
    """``invoice.overdue``, once, for an invoice still open at its due date.

    Stripe sends it "X number of days after an invoice becomes due—where X is determined by
    Automations"; the sandbox's account sends it 0 days after.
    """
    with state.lock:
        invoice = state.get(invoice_id, "invoice")
        private = state.private.get(invoice_id) or {}
        if invoice is None or invoice["status"] != "open" or private.get("overdue"):
            return
        if invoice["due_date"] > state.now():  # the due date changed or the clock went slower than planned
            state.schedule(invoice["due_date"] - state.now_float(), lambda: mark_overdue(state, invoice_id))
            return
        private["overdue"] = True
        state.emit("invoice.overdue", invoice)


@locked
def send_invoice(state: SandboxState, invoice_id: str) -> dict[str, Any]:
    """``POST /v1/invoices/{id}/send``: ``invoice.sent``; "Requests made in test-mode result in no emails being
    sent, despite sending an invoice.sent event" (``InvoiceService.send_invoice``). A draft is finalized first.
    """
    invoice = state.require(invoice_id, "invoice")
    if invoice["status"] == "void":
        raise _state_error("This invoice is void and can't be sent.")
    customer = state.get(invoice["customer"], "customer") or {}
    if not (customer.get("email") or invoice["customer_email"]):
        # Stripe e-mails the invoice to the customer; the wording of its refusal is the sandbox's.
        raise _state_error(f"The customer {invoice['customer']} has no email address to send the invoice to.")
    if invoice["status"] == "draft":
        _finalize(state, invoice)
    state.emit("invoice.sent", invoice)
    return invoice


@locked
def void_invoice(state: SandboxState, invoice_id: str) -> dict[str, Any]:
    """``POST /v1/invoices/{id}/void``: refused while an attached payment is ``open`` or ``paid``; the customer's
    balance applied at finalization is given back.

    "When an invoice has open or paid payments, you can't void or edit the invoice"
    (docs.stripe.com/invoicing/partial-payments); the default payment does not count.
    """
    invoice = state.require(invoice_id, "invoice")
    if invoice["status"] not in ("open", "uncollectible"):
        raise _state_error(f"This invoice is {invoice['status']}: only a finalized, unpaid invoice can be voided.")
    blocking = attached_payments(state, invoice, "open", "paid")
    if blocking:
        raise _state_error(f"This invoice has {len(blocking)} open or paid payment(s) ({blocking[0]['id']}) and can't "
                           "be voided. Issue a credit note for what remains instead.")
    previous = {"status": invoice["status"], "status_transitions": dict(invoice["status_transitions"])}
    invoice["status"] = "void"
    invoice["status_transitions"]["voided_at"] = state.now()
    sync_default_payment(state, invoice, reason="void_invoice")
    state.emit("invoice.voided", invoice, previous)
    # "Customer balances applied to all invoices are now debited or credited back to the customer when voided"
    # (changelog 2019-12-03, customer-balances-returned-voided-invoices): an ``unapplied_from_invoice``
    # transaction. The invoice keeps its starting and ending balances, as they were at finalization.
    change_customer_balance(state, invoice, invoice["starting_balance"] - invoice["ending_balance"],
                            "unapplied_from_invoice")
    return invoice


@locked
def mark_uncollectible(state: SandboxState, invoice_id: str) -> dict[str, Any]:
    """``POST /v1/invoices/{id}/mark_uncollectible``: refused while an attached payment is ``open``.

    The invoice can still be paid afterwards; its default payment stays open.
    """
    invoice = state.require(invoice_id, "invoice")
    if invoice["status"] != "open":
        raise _state_error(f"This invoice is {invoice['status']}: only an open invoice can be marked uncollectible.")
    blocking = attached_payments(state, invoice, "open")
    if blocking:
        # "When an invoice has open payments, you can't mark it uncollectible." (partial-payments doc)
        raise _state_error(f"This invoice has an open payment ({blocking[0]['id']}) and can't be marked "
                           "uncollectible.")
    previous = {"status": "open", "status_transitions": dict(invoice["status_transitions"])}
    invoice["status"] = "uncollectible"
    invoice["status_transitions"]["marked_uncollectible_at"] = state.now()
    state.emit("invoice.marked_uncollectible", invoice, previous)
    return invoice


# -- attaching payments ---------------------------------------------------------------------------


@locked
def attach_payment(state: SandboxState, invoice_id: str, params: Params) -> dict[str, Any]:
    """``POST /v1/invoices/{id}/attach_payment`` with ``payment_intent`` or ``payment_record``; returns the invoice.

    A succeeded PaymentIntent, or a guaranteed Payment Record, is credited at once; a PaymentIntent not yet
    succeeded when it succeeds (``InvoiceService.attach_payment``). Attachments are permanent: detaching
    exists only in a preview API version.
    """
    params.reject_unimplemented({"payment_intent", "payment_record"})
    invoice = state.require(invoice_id, "invoice")
    intent_id, record_id = params.string("payment_intent"), params.string("payment_record")
    if intent_id and record_id:
        raise invalid_param("payment_record", "You may only specify one of these parameters: payment_intent, "
                                              "payment_record.")
    if record_id:
        return _attach_record(state, invoice, record_id)
    if not intent_id:
        raise missing_param("payment_intent")
    intent = state.require(intent_id, "payment_intent", param="payment_intent", status=400)
    _check_attachable(state, invoice, intent)
    payment = state.add(payment_object(state, invoice, intent["id"], intent["amount"], is_default=False))
    if intent["status"] == "succeeded":
        credit(state, payment, intent["amount_received"])
    return invoice


def _attach_record(state: SandboxState, invoice: dict[str, Any], record_id: str) -> dict[str, Any]:
    """A Payment Record attached to the invoice: credited at once when it is guaranteed (see `payment_records`)."""
    record = state.require(record_id, "payment_record", param="payment_record", status=400)
    if invoice["status"] not in ("open", "uncollectible"):
        raise _state_error(f"This invoice is {invoice['status']}: payments can be attached only to an open invoice.")
    attached = next(iter(payments_of_record(state, record_id)), None)
    payment_records.check_attachable(record, invoice, state, attached["invoice"] if attached else None)
    amount = record["amount_requested"]["value"]
    payment = state.add(payment_object(state, invoice, None, amount, is_default=False, record_id=record_id))
    credited = payment_records.guaranteed_amount(record)
    if credited is not None:
        credit(state, payment, credited)
    return invoice


def _check_attachable(state: SandboxState, invoice: dict[str, Any], intent: dict[str, Any]) -> None:
    """The rules of the partial-payments doc; Stripe documents them but not its errors, so the wording is ours."""
    def refuse(message: str, code: str | None = None) -> StripeError:
        return StripeError(message, code=code, param="payment_intent")

    if invoice["status"] not in ("open", "uncollectible"):
        raise _state_error(f"This invoice is {invoice['status']}: payments can be attached only to an open invoice.")
    if intent["status"] == "canceled":
        raise refuse(f"The PaymentIntent {intent['id']} is canceled and can't be attached to an invoice.")
    attached = next((p for p in payments_of_intent(state, intent["id"]) if p["status"] != "canceled"), None)
    if attached is not None:
        # "You can only apply an entire payment towards an invoice, which means you can't apply a payment
        # across multiple invoices" (docs.stripe.com/invoicing/payment-application).
        raise refuse(f"The PaymentIntent {intent['id']} is already attached to invoice {attached['invoice']}.")
    if any(s["payment_intent"] == intent["id"] and s["invoice_creation"]["enabled"]
           for s in state.all("checkout.session")):
        raise refuse(f"The PaymentIntent {intent['id']} belongs to a Checkout Session with invoice_creation, which "
                     "pays the invoice it creates.")
    if intent["customer"] != invoice["customer"]:
        # "The PaymentIntent must have the same currency and customer as the invoice."
        raise refuse(f"The PaymentIntent's customer ({intent['customer']}) is not the invoice's customer "
                     f"({invoice['customer']}).")
    if intent["currency"] != invoice["currency"]:
        raise refuse(f"The PaymentIntent's currency ({intent['currency']}) is not the invoice's currency "
                     f"({invoice['currency']}).")
    if intent["amount"] > invoice["amount_remaining"]:
        # "...you can specify any amount up to the amount remaining on the invoice." Stripe's answer to more is
        # not documented: amount_too_large is the error code Stripe gives an amount above what is allowed.
        raise refuse(
            f"The PaymentIntent's amount ({format_amount(intent['amount'], intent['currency'])}) is more than the "
            f"amount remaining on the invoice ({format_amount(invoice['amount_remaining'], invoice['currency'])}).",
            code="amount_too_large")
