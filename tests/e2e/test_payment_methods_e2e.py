"""How each invoice was paid, end to end through the sandbox: the charge's events (``charge.succeeded``, a bank
debit's ``charge.pending``) carry ``payment_method_details`` and name the purchase or the Pay click in their
metadata, and the administrators' exports say "Card", "Apple Pay", "Klarna" or "SEPA Direct Debit"."""
from __future__ import annotations

import csv
import io
import re

import openpyxl
import pytest
import requests
from sqlalchemy import select

from lms_stripe_plugin.accounts import settings as payment_settings
from lms_stripe_plugin.core.models import Invoice, InvoicePayment, PaymentAttempt, Purchase

from ..conftest import as_user, without_labels
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
    invoice = db.session.scalar(select(Invoice).where(Invoice.purchase_id == purchase.id))
    assert _exported(client) == {invoice.number: shown}
    assert _shown(client, invoice.id) == (shown, shown, "", shown)  # Checkout's invoice: its purchase's payment


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
    assert _shown(client, invoice_id) == ("Card",) * 4


# -- paid on Stripe's own page: the hosted invoice page ----------------------------------------------------------

def _shown(client, invoice_id: int) -> tuple[str, str, str, str]:
    """How the invoice was paid, as My invoices, the administrators' invoice page (its summary and its payments)
    and the Excel export say it."""
    mine = without_labels(client.get("/payments/invoices", headers=as_user("u1")).get_data(as_text=True))
    admin = without_labels(client.get(f"/payments/admin/invoices/{invoice_id}", headers=as_user("adm"))
                           .get_data(as_text=True))
    in_mine = re.search(r"<td>([^<]*)</td>\s*<td>\s*<span class=\"badge", mine)
    summary = re.search(r'<td id="paid-with">([^<]*)</td>', admin)
    payments = re.findall(r'<td class="num">[^<]*</td><td>([^<]*)</td>', admin.split('class="payments', 1)[-1])
    workbook = openpyxl.load_workbook(io.BytesIO(client.get("/payments/admin/invoices.xlsx",
                                                            headers=as_user("adm")).data))
    rows = list(workbook.active.iter_rows(values_only=True))
    header = next(row for row in rows if row and "Payment method" in row)
    column = header.index("Payment method")
    in_excel = [row[column] for row in rows[rows.index(header) + 1:] if row and row[0]]
    return (in_mine.group(1) if in_mine else "", summary.group(1) if summary else "", ", ".join(payments),
            ", ".join(str(cell) for cell in in_excel))


def test_an_invoice_paid_by_card_on_stripes_hosted_page_says_card_everywhere(stripe_app, client, db, sandbox):
    """The charge's events name no invoice and none of ours; the invoice's paid default payment names its
    PaymentIntent, whose charge is read once."""
    invoice_id = _new_invoice(client, amount="100.00")
    invoice = db.session.get(Invoice, invoice_id)
    assert invoice.hosted_url and invoice.status == "open"
    page = requests.get(invoice.hosted_url, timeout=10)
    assert 'id="invoice-pay-form"' in page.text
    paid = requests.post(invoice.hosted_url, data={"method": "card", "card_number": "4242 4242 4242 4242",
                                                   "card_expiry": "12 / 34", "card_cvc": "123",
                                                   "billing_name": "Léa Martin"}, allow_redirects=False, timeout=10)
    assert paid.status_code == 303
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    invoice = db.session.get(Invoice, invoice_id)
    assert (invoice.status, invoice.amount_paid, invoice.amount_remaining) == ("paid", 10000, 0)
    payment = db.session.scalar(select(InvoicePayment).where(InvoicePayment.invoice_id == invoice_id))
    assert (payment.status, payment.amount, payment.payment_method, payment.attempt_id) == ("paid", 10000, "card", None)
    assert _exported(client)[invoice.number] == "Card"
    assert _shown(client, invoice_id) == ("Card", "Card", "Card", "Card")


def test_a_sepa_debit_on_stripes_hosted_page_says_so_once_it_settles(stripe_app, client, db, sandbox):
    invoice_id = _new_invoice(client, amount="100.00")
    stripe_invoice = db.session.get(Invoice, invoice_id).stripe_invoice_id
    submitted = requests.post(f"{sandbox.url}/_sandbox/invoices/{stripe_invoice}/pay",
                              json={"method": "sepa_debit", "iban": "DE89370400440532013000"}, timeout=10)
    assert submitted.status_code == 200, submitted.text
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    assert db.session.get(Invoice, invoice_id).status == "open"  # the debit is being processed
    requests.post(f"{sandbox.url}/_sandbox/invoices/{stripe_invoice}/settle", json={"outcome": "succeeded"},
                  timeout=10)
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    invoice = db.session.get(Invoice, invoice_id)
    assert invoice.status == "paid"
    assert _exported(client)[invoice.number] == "SEPA Direct Debit"
    assert _shown(client, invoice_id) == ("SEPA Direct Debit",) * 4
