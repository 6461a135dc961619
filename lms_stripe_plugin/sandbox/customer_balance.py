"""A customer's credit balance and its balance transactions (``/v1/customers/{id}/balance_transactions``).

Stripe keeps one balance per currency (the customer's ``invoice_credit_balance``; ``balance`` is the one in
the customer's ``currency``): "If the customer's currency is not set, it will be updated to this value"
(``CustomerBalanceTransactionCreateParams.currency``). A negative amount is a credit the customer has; it
"automatically applies toward the next invoice finalized to a customer" in its currency, as a transaction of
type ``applied_to_invoice`` (docs.stripe.com/billing/customer/balance). A change of ``balance`` fires
``customer.updated``; no event names the transaction itself.
"""
from __future__ import annotations

from typing import Any

from .errors import invalid_param, resource_missing
from .ids import new_id
from .params import Params
from .state import SandboxState, locked

TRANSACTION_PARAMS = {"amount", "currency", "description", "metadata"}


def credit_balance(state: SandboxState, customer: dict[str, Any], currency: str) -> int:
    """The customer's balance in ``currency`` (negative: a credit); ``balance`` itself for its own currency,
    or for any while it has none (a balance set with the customer, before any currency)."""
    currency = currency.lower()
    credits = state.private.setdefault(customer["id"], {}).setdefault("credit", {})
    if currency in credits:
        return credits[currency]
    return customer["balance"] if customer.get("currency") in (None, currency) else 0


def change(state: SandboxState, customer: dict[str, Any], amount: int, currency: str, kind: str, *,
           description: str | None = None, metadata: dict[str, str] | None = None,
           invoice: str | None = None, credit_note: str | None = None) -> dict[str, Any]:
    """Add ``amount`` to the customer's balance in ``currency`` and record the transaction that did."""
    currency = currency.lower()
    ending = credit_balance(state, customer, currency) + amount
    state.private.setdefault(customer["id"], {}).setdefault("credit", {})[currency] = ending
    if customer.get("currency") is None:
        customer["currency"] = currency
    transaction = {
        "id": new_id("cbtxn"), "object": "customer_balance_transaction", "amount": amount,
        "checkout_session": None, "created": state.now(), "credit_note": credit_note, "currency": currency,
        "customer": customer["id"], "customer_account": None, "description": description,
        "ending_balance": ending, "invoice": invoice, "livemode": False, "metadata": metadata or {}, "type": kind,
    }
    state.add(transaction, {"customer": customer["id"]})
    if currency == customer["currency"] and customer["balance"] != ending:
        previous = {"balance": customer["balance"]}
        customer["balance"] = ending
        state.emit("customer.updated", customer, previous)
    return transaction


@locked
def create_transaction(state: SandboxState, customer_id: str, params: Params) -> dict[str, Any]:
    """``POST /v1/customers/{id}/balance_transactions``: an adjustment of the customer's credit balance."""
    params.reject_unimplemented(TRANSACTION_PARAMS)
    customer = state.require(customer_id, "customer")
    amount = params.integer("amount", required=True)
    currency = params.string("currency", required=True) or ""
    if len(currency) != 3 or not currency.isalpha():
        raise invalid_param("currency", f"Invalid currency: {currency}.")
    return change(state, customer, amount or 0, currency, "adjustment", description=params.string("description"),
                  metadata=params.metadata())


def transactions(state: SandboxState, customer_id: str) -> list[dict[str, Any]]:
    """The customer's balance transactions, newest first."""
    state.require(customer_id, "customer")
    return [t for t in state.all("customer_balance_transaction") if t["customer"] == customer_id]


def transaction(state: SandboxState, customer_id: str, transaction_id: str) -> dict[str, Any]:
    found = state.get(transaction_id, "customer_balance_transaction")
    if found is None or found["customer"] != customer_id:
        raise resource_missing("customer balance transaction", transaction_id)
    return found
