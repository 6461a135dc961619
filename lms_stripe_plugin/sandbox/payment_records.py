"""Payment Records: payments reported to Stripe, which an invoice can count as paid.

From the API reference ("A Payment Record is a resource that allows you to represent payments that occur on-
or off-Stripe … to mark an Invoice as paid", docs.stripe.com/api/payment-record), the SDK's
``PaymentRecordReportPaymentParams`` and ``PaymentRecord``, and "Payment application"
(docs.stripe.com/invoicing/payment-application):

- ``POST /v1/payment_records/report_payment`` records a payment in a terminal state: ``outcome``
  ``guaranteed`` (with ``guaranteed[guaranteed_at]``), ``failed`` (``failed[failed_at]``) or ``canceled``
  (``canceled[canceled_at]``); without an outcome the payment is only initiated. ``amount_requested`` is a
  positive amount in minor units of a currency, ``initiated_at`` and ``payment_method_details`` are
  required; ``processor_details[type]=custom`` takes ``custom[payment_reference]``, the reference to
  reconcile by (a check number, another processor's id). A reported record is ``reported_by`` ``self``.
- Attached to an invoice (``/attach_payment`` with ``payment_record``), a guaranteed record is credited
  at once. "You can only apply an entire payment towards an invoice, which means you can't apply a
  payment across multiple invoices"; "you can apply any payment to an invoice if the payment amount is less
  than or equal to the unpaid balance on the invoice, and the invoice is for the same customer as the
  payment": the sandbox refuses the rest (its wording: Stripe does not document its errors).

No v1 event announces a report (the pinned API has no ``payment_record.*`` event types); the invoice's
events (``invoice_payment.paid``, ``invoice.updated``, ``invoice.paid``) say what attaching did.
Reporting attempts and refunds of a record afterwards (``/report_payment_attempt…``, ``/report_refund``)
is not modelled.
"""

from __future__ import annotations

from typing import Any

from .amounts import check_step
from .errors import StripeError, invalid_param, missing_param
from .ids import new_id
from .params import Params
from .state import SandboxState, locked

REPORT_PARAMS = {"amount_requested", "canceled", "customer_details", "customer_presence", "description", "failed",
                 "guaranteed", "initiated_at", "metadata", "outcome", "payment_method_details",
                 "processor_details"}
#: The outcomes that end a record, and the hash (with its moment) each one requires.
_OUTCOMES = {"guaranteed": "guaranteed_at", "failed": "failed_at", "canceled": "canceled_at"}


@locked
def report_payment(state: SandboxState, params: Params) -> dict[str, Any]:
    """``POST /v1/payment_records/report_payment``: a new record, in the state its ``outcome`` says."""
    params.reject_unimplemented(REPORT_PARAMS)
    currency, amount = _amount_requested(params.sub("amount_requested"))
    initiated = params.integer("initiated_at", required=True, minimum=1)
    outcome = params.string("outcome", choices=tuple(_OUTCOMES))
    moment = _outcome_moment(params, outcome)
    customer = _customer_details(state, params.sub("customer_details"))
    if not params.has("payment_method_details"):
        raise missing_param("payment_method_details")
    record = {
        "id": new_id("pr"), "object": "payment_record", "amount": _money(currency, 0),
        "amount_authorized": _money(currency, amount if outcome == "guaranteed" else 0),
        "amount_canceled": _money(currency, amount if outcome == "canceled" else 0),
        "amount_failed": _money(currency, amount if outcome == "failed" else 0),
        "amount_guaranteed": _money(currency, amount if outcome == "guaranteed" else 0),
        "amount_refunded": _money(currency, 0), "amount_requested": _money(currency, amount),
        "application": None, "created": state.now(), "customer_details": customer,
        "customer_presence": params.string("customer_presence", choices=("off_session", "on_session")),
        "description": params.string("description", max_length=5000),
        "latest_payment_attempt_record": new_id("par"), "livemode": False, "metadata": params.metadata(),
        "payment_method_details": _method_details(params.sub("payment_method_details")),
        "processor_details": _processor_details(params.sub("processor_details")),
        "reported_by": "self", "shipping_details": None,
    }
    if outcome == "guaranteed":
        record["amount"] = _money(currency, amount)
    state.add(record, {"initiated_at": initiated, "outcome": outcome, "outcome_at": moment})
    return record


def _money(currency: str, value: int) -> dict[str, Any]:
    return {"currency": currency, "value": value}


def _amount_requested(amount: Params) -> tuple[str, int]:
    if not amount.data:
        raise missing_param("amount_requested")
    currency = amount.string("currency", required=True)
    if len(currency or "") != 3 or not (currency or "").isalpha():
        raise invalid_param(amount.name("currency"), f"Invalid currency: {currency}.")
    value = amount.integer("value", required=True, minimum=1)
    assert currency is not None and value is not None
    check_step(value, currency.lower(), amount.name("value"))
    return currency.lower(), value


def _outcome_moment(params: Params, outcome: str | None) -> int | None:
    """The moment of the outcome, from the hash named after it; a hash of another outcome is refused."""
    for name, moment_key in _OUTCOMES.items():
        sub = params.sub(name)
        if sub.data and name != outcome:
            raise invalid_param(params.name(name), f"`{name}` can only be sent with outcome={name}.")
    if outcome is None:
        return None
    sub = params.sub(outcome)
    if not sub.data:
        raise missing_param(outcome)
    return sub.integer(_OUTCOMES[outcome], required=True, minimum=1)


def _customer_details(state: SandboxState, details: Params) -> dict[str, Any] | None:
    if not details.data:
        return None
    customer_id = details.string("customer")
    if customer_id:
        state.require(customer_id, "customer", param=details.name("customer"), status=400)
    return {"customer": customer_id, "email": details.string("email"), "name": details.string("name"),
            "phone": details.string("phone")}


def _method_details(details: Params) -> dict[str, Any]:
    custom = details.sub("custom")
    kind = details.string("type", choices=("custom",))
    return {"billing_details": None, "payment_method": details.string("payment_method"),
            "custom": {"display_name": custom.string("display_name"), "type": custom.string("type")}
            if custom.data or kind == "custom" else None,
            "type": kind or ("custom" if custom.data else None)}


def _processor_details(details: Params) -> dict[str, Any]:
    if not details.data:
        return {"type": "custom", "custom": {"payment_reference": None}}
    details.string("type", required=True, choices=("custom",))
    custom = details.sub("custom")
    if not custom.data:
        raise missing_param(details.name("custom"))
    return {"type": "custom",
            "custom": {"payment_reference": custom.string("payment_reference", required=True, max_length=5000)}}


# -- attaching a record to an invoice -------------------------------------------------------------------


def outcome(state: SandboxState, record: dict[str, Any]) -> str | None:
    """``guaranteed``, ``failed``, ``canceled``, or None while the record is only initiated."""
    return state.private[record["id"]]["outcome"]


def check_attachable(record: dict[str, Any], invoice: dict[str, Any], state: SandboxState,
                     attached_to: str | None) -> None:
    """The rules of "Payment application" for a record: once, whole, of the invoice's customer and currency,
    at most what the invoice still owes; a failed or canceled record is no payment to apply."""
    def refuse(message: str, code: str | None = None) -> StripeError:
        return StripeError(message, code=code, param="payment_record")

    if outcome(state, record) in ("failed", "canceled"):
        raise refuse(f"The payment record {record['id']} is {outcome(state, record)} and can't be attached to an "
                     "invoice.")
    if attached_to is not None:
        raise refuse(f"The payment record {record['id']} is already attached to invoice {attached_to}: a payment "
                     "can't be applied across several invoices.")
    customer = (record["customer_details"] or {}).get("customer")
    if customer != invoice["customer"]:
        raise refuse(f"The payment record's customer ({customer}) is not the invoice's customer "
                     f"({invoice['customer']}).")
    requested = record["amount_requested"]
    if requested["currency"] != invoice["currency"]:
        raise refuse(f"The payment record's currency ({requested['currency']}) is not the invoice's currency "
                     f"({invoice['currency']}).")
    if requested["value"] > invoice["amount_remaining"]:
        raise refuse("The payment record's amount is more than the amount remaining on the invoice: only an "
                     "entire payment can be applied, up to the unpaid balance.", code="amount_too_large")


def guaranteed_amount(record: dict[str, Any]) -> int | None:
    """What the record credits when attached: its guaranteed amount, or None while it is not guaranteed."""
    value = record["amount_guaranteed"]["value"]
    return value or None
