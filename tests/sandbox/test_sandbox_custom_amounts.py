"""Checkout Sessions of an amount the payer chose (a payment link's): any amount Stripe can charge as
``price_data``, the VAT of an inclusive tax rate taken out of it, an invoice issued for the payment with the
metadata and custom fields asked for, and its events; a guest payer (no ``customer_creation=always``) gets no
Customer, as in Stripe's payment mode; what Stripe refuses is refused."""
from __future__ import annotations

from typing import Any, Callable

import pytest
import requests
import stripe


def _link_params(session_params: Callable[..., dict[str, Any]], amount: int, **overrides: Any) -> dict[str, Any]:
    params = session_params(consent_collection=None, custom_text=None, allow_promotion_codes=None,
                            allowed_payment_method_types=["card"],
                            metadata={"lms_attempt_id": "7", "lms_link_id": "3"}, client_reference_id="lms-attempt-7")
    params["line_items"][0]["price_data"]["unit_amount"] = amount
    params["invoice_creation"]["invoice_data"] = {"description": "Voyage", "metadata": {"lms_link_id": "3"},
                                                  "custom_fields": [{"name": "Payé par", "value": "Zoé Dupont"}]}
    params.update(overrides)
    return {key: value for key, value in params.items() if value is not None}


@pytest.mark.parametrize("amount", [4990, 50, 99_999_999, 12_345])
def test_a_payers_amount_is_charged_and_invoiced_with_its_vat_included(client, session_params, pay, vat, amount):
    session = client.v1.checkout.sessions.create(params=_link_params(session_params, amount))
    assert (session.amount_total, session.amount_subtotal) == (amount, amount)
    assert pay(session.id).status_code == 200
    paid = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["invoice"]})
    invoice = paid.invoice
    tax = amount - round(amount * 100 / 119)  # the "vat" fixture: 19 %, inclusive
    assert (invoice.status, invoice.total, invoice.amount_paid) == ("paid", amount, amount)
    assert sum(t.amount for t in invoice.total_taxes) == tax
    assert invoice.customer == paid.customer and invoice.customer_email == "learner@example.com"
    assert [(f.name, f.value) for f in invoice.custom_fields] == [("Payé par", "Zoé Dupont")]
    assert invoice.metadata.to_dict() == {"lms_link_id": "3"}


def test_its_invoice_events_come_before_the_sessions_and_carry_the_metadata(client, session_params, pay, webhooks):
    session = client.v1.checkout.sessions.create(params=_link_params(session_params, 4990))
    pay(session.id)
    types = webhooks.types()
    assert types.index("invoice.finalized") < types.index("invoice.paid") < types.index("checkout.session.completed")
    paid = next(e for e in webhooks.events if e["type"] == "invoice.paid")["data"]["object"]
    completed = next(e for e in webhooks.events if e["type"] == "checkout.session.completed")["data"]["object"]
    assert paid["metadata"] == {"lms_link_id": "3"} and completed["invoice"] == paid["id"]  # named by id
    assert completed["metadata"] == {"lms_attempt_id": "7", "lms_link_id": "3"}


def test_a_guest_payer_gets_no_customer_in_payment_mode(client, session_params, pay):
    params = _link_params(session_params, 4990)
    del params["customer_creation"]
    session = client.v1.checkout.sessions.create(params=params)
    assert pay(session.id).status_code == 200
    paid = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["invoice"]})
    assert paid.customer is None and paid.customer_details.email == "learner@example.com"
    assert paid.invoice.customer is None and paid.invoice.customer_email == "learner@example.com"
    assert client.v1.customers.list().data == []


@pytest.mark.parametrize("change, param", [
    ({"custom_fields": [{"name": f"F{i}", "value": "v"} for i in range(5)]},
     "invoice_creation[invoice_data][custom_fields]"),
    ({"custom_fields": [{"name": "N" * 41, "value": "v"}]}, "invoice_creation[invoice_data][custom_fields][0][name]"),
    ({"custom_fields": [{"name": "Payé par", "value": "V" * 141}]},
     "invoice_creation[invoice_data][custom_fields][0][value]"),
])
def test_what_stripe_refuses_in_the_invoice_data_is_refused(client, session_params, change, param):
    params = _link_params(session_params, 4990)
    params["invoice_creation"]["invoice_data"].update(change)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.checkout.sessions.create(params=params)
    assert refused.value.param == param


@pytest.mark.parametrize("amount, param", [(49, None), (100_000_000, "line_items[0][price_data][unit_amount]"),
                                           (-1, "line_items[0][price_data][unit_amount]")])
def test_an_amount_stripe_cannot_charge_is_refused(client, session_params, amount, param):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.checkout.sessions.create(params=_link_params(session_params, amount))
    assert refused.value.param == param or param is None


def test_a_click_sent_again_with_its_key_gets_the_same_session_and_another_amount_is_refused(sandbox, client,
                                                                                           session_params):
    key, params = "lms-link-3-7", _link_params(session_params, 4990)
    first = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": key})
    again = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": key})
    assert again.id == first.id
    params["line_items"][0]["price_data"]["unit_amount"] = 5990
    with pytest.raises(stripe.IdempotencyError):
        client.v1.checkout.sessions.create(params=params, options={"idempotency_key": key})
    assert requests.get(f"{sandbox.url}/_sandbox/state", timeout=5).json()["counts"]["checkout.session"] == 1
