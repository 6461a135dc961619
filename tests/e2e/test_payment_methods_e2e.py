"""How each invoice was paid, end to end through the sandbox: the charge's events (``charge.succeeded``, a bank
debit's ``charge.pending``) carry ``payment_method_details`` and name the purchase or the Pay click in their
metadata, and the administrators' exports say "Card", "Apple Pay", "Klarna" or "SEPA Direct Debit"."""
from __future__ import annotations

import csv
import io

import pytest
import requests
from sqlalchemy import select

from lms_stripe_plugin.accounts import settings as payment_settings
from lms_stripe_plugin.core.models import Invoice, PaymentAttempt, Purchase

from ..conftest import as_user
from .conftest import pay, start_checkout
from .test_payment_requests_e2e import _new_invoice, _pay_from_link, _request


def _exported(client) -> dict[str, str]:
    """Invoice number → the CSV export's payment method."""
    body = client.get("/payments/admin/invoices.csv", headers=as_user("adm")).get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    column = rows[0].index("Payment method")
    return {row[0]: row[column] for row in rows[1:]}


def _purchase(db, session_id: str) -> Purchase:
    db.session.expire_all()
    return db.session.scalar(select(Purchase).where(Purchase.stripe_checkout_session_id == session_id))


@pytest.mark.parametrize("settings, paid_with, stored, shown", [
    pytest.param({}, {}, "card", "Card", id="card"),
    pytest.param({"wallets_enabled": True}, {"wallet": "apple_pay"}, "apple_pay", "Apple Pay", id="apple pay"),
    pytest.param({"klarna_enabled": True}, {"method": "klarna"}, "klarna", "Klarna", id="klarna"),
])
def test_a_purchase_is_exported_with_how_it_was_paid(stripe_app, client, db, sandbox, settings, paid_with, stored,
                                                     shown):
    if settings:
        payment_settings.save(db.session, settings, actor_id="adm")
        db.session.commit()
    _response, session_id = start_checkout(client, "u1", "c1")
    assert pay(sandbox, session_id, **paid_with).status_code == 200
    purchase = _purchase(db, session_id)
    assert (purchase.status, purchase.payment_method) == ("paid", stored)
    number = db.session.scalar(select(Invoice.number).where(Invoice.purchase_id == purchase.id))
    assert _exported(client) == {number: shown}


def test_a_bank_debit_is_known_while_it_is_processed_and_exported_once_paid(stripe_app, client, db, sandbox):
    _response, session_id = start_checkout(client, "u1", "c1")
    pay(sandbox, session_id, method="sepa_debit", iban="DE89370400440532013000")
    purchase = _purchase(db, session_id)
    assert (purchase.status, purchase.payment_method) == ("processing", "sepa_debit")  # from charge.pending
    requests.post(f"{sandbox.url}/_sandbox/checkout/sessions/{session_id}/settle", json={"outcome": "succeeded"},
                  timeout=5)
    sandbox.state.wait_for_deliveries(10)
    assert list(_exported(client).values()) == ["SEPA Direct Debit"]


def test_an_invoice_paid_through_a_payment_request_is_exported_with_the_pay_clicks_method(stripe_app, client, db,
                                                                                          sandbox):
    invoice_id = _new_invoice(client, amount="100.00")
    _pay_from_link(client, sandbox, _request(client, invoice_id, "100.00"))
    db.session.expire_all()
    assert db.session.scalar(select(PaymentAttempt.payment_method)) == "card"
    number = db.session.get(Invoice, invoice_id).number
    assert _exported(client)[number] == "Card"
