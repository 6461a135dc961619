"""Money Stripe gives back to a learner's prepaid balance, end to end through the real SDK and the sandbox,
webhooks delivered into the app: a course paid from the balance, wholly or in part, is cancelled (the
balance's part is credited back by the credit note, the card's refunded); an invoice the balance paid in part
is voided (its credit comes back); an invoice paid twice over (what was paid beyond it goes to the balance).
After each test the ledger equals the Stripe customer's balance (tests/e2e/conftest.py)."""
from __future__ import annotations

import html
import re
from datetime import date, timedelta

import pytest
import requests
from sqlalchemy import func, select

from lms_stripe_plugin.accounts import settings as payment_settings
from lms_stripe_plugin.core.models import AuditEntry, Balance, BalanceEntry, Invoice, Purchase, Refund

from ..conftest import as_user
from .conftest import csrf, pay

SECRET_KEY = "sk_test_sandbox_e2e"


@pytest.fixture
def prepaid_app(stripe_app, db):
    payment_settings.save(db.session, {"prepaid_enabled": True, "topup_minimum": 1000, "topup_maximum": 50000},
                          actor_id="adm")
    db.session.commit()
    return stripe_app


def _top_up(client, sandbox, amount: str, user: str = "u1") -> None:
    response = client.post("/payments/my-payments/top-up", headers=as_user(user),
                           data={"csrf_token": csrf(client, user, "/payments/my-payments"), "amount": amount})
    assert response.status_code == 303, response.get_data(as_text=True)
    assert pay(sandbox, response.headers["Location"].rstrip("/").split("/")[-1]).status_code == 200


def _buy_with_balance(client, db, course: str = "c1", user: str = "u1") -> Invoice:
    response = client.post(f"/payments/checkout/{course}/balance", headers=as_user(user),
                           data={"csrf_token": csrf(client, user, f"/payments/courses/{course}")})
    assert response.status_code == 303, response.get_data(as_text=True)
    db.session.expire_all()
    return db.session.scalars(select(Invoice).where(Invoice.course_id == course).order_by(Invoice.id.desc())).first()


def _pay_rest_by_card(client, sandbox, invoice_id: int, user: str = "u1") -> None:
    response = client.post(f"/payments/my-payments/invoices/{invoice_id}/pay", headers=as_user(user),
                           data={"csrf_token": csrf(client, user, "/payments/my-payments")})
    assert response.status_code == 303, response.get_data(as_text=True)
    assert pay(sandbox, response.headers["Location"].rstrip("/").split("/")[-1]).status_code == 200


def _cancel(client, invoice_id: int, **data):
    path = f"/payments/admin/invoices/{invoice_id}/cancel"
    return client.post(path, headers=as_user("adm"), data={"csrf_token": csrf(client, "adm", path), **data})


def _page(client, path: str, user: str = "adm") -> str:
    return html.unescape(client.get(path, headers=as_user(user)).get_data(as_text=True))


def _balance(db, user: str = "u1") -> int:
    db.session.expire_all()
    return db.session.scalar(select(Balance.amount).where(Balance.user_id == user)) or 0


def _entries(db, kind: str) -> list[BalanceEntry]:
    return list(db.session.scalars(select(BalanceEntry).where(BalanceEntry.kind == kind).order_by(BalanceEntry.id)))


def test_a_course_the_balance_paid_is_cancelled_back_onto_the_balance(prepaid_app, client, db, sandbox, host):
    _top_up(client, sandbox, "50.00")
    invoice = _buy_with_balance(client, db)
    assert (invoice.status, _balance(db)) == ("paid", 10)
    page = _page(client, f"/payments/admin/invoices/{invoice.id}/cancel")
    assert "credits €49.90 back to the learner's prepaid balance" in page

    response = _cancel(client, invoice.id, reason="Course moved")
    assert response.status_code == 302, response.get_data(as_text=True)
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    refund = db.session.scalar(select(Refund))
    assert (refund.status, refund.amount, refund.balance_amount, refund.stripe_refund_id) == \
        ("succeeded", 4990, 4990, None)
    note = sandbox.state.get(refund.stripe_credit_note_id)
    assert (note["total"], note["refunds"], note["post_payment_amount"]) == (4990, [], 4990)
    assert sandbox.state.all("refund") == []  # nothing was charged: nothing is refunded
    [returned] = _entries(db, "credit_note")
    assert (returned.amount, returned.invoice_id, returned.stripe_transaction_id) == \
        (4990, invoice.id, note["customer_balance_transaction"])
    assert _balance(db) == 5000
    invoice = db.session.get(Invoice, invoice.id)
    purchase = db.session.get(Purchase, invoice.purchase_id)
    assert (invoice.status, invoice.amount_refunded, purchase.status) == ("cancelled", 4990, "cancelled")
    assert ("unenroll", "u1", "c1") in host.calls
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "balance_returned")) == 1
    history = _page(client, f"/payments/admin/invoices/{invoice.id}")
    assert "credited €49.90 back to the balance of Léa" in history
    # The credit note's events, delivered again, write nothing twice; the learner may buy the course again.
    for event in sandbox.state.all("event"):
        sandbox.state.resend(event)
    sandbox.state.wait_for_deliveries(10)
    assert len(_entries(db, "credit_note")) == 1 and _balance(db) == 5000
    assert _buy_with_balance(client, db).status == "paid" and _balance(db) == 10


def test_a_course_paid_by_balance_and_card_is_refunded_to_the_card_first_then_to_the_balance(
        prepaid_app, client, db, sandbox, host):
    _top_up(client, sandbox, "20.00")
    invoice = _buy_with_balance(client, db)
    assert (invoice.status, invoice.amount_remaining) == ("open", 2990)
    _pay_rest_by_card(client, sandbox, invoice.id)
    db.session.expire_all()
    assert (db.session.get(Invoice, invoice.id).status, _balance(db)) == ("paid", 0)

    path = f"/payments/admin/invoices/{invoice.id}/refund"
    page = _page(client, path)
    assert "balance paid €20.00 of this invoice: up to €29.90 is refunded to their payment method" in page
    response = client.post(path, headers=as_user("adm"), data={"csrf_token": csrf(client, "adm", path),
                                                               "amount": "10.00", "reason": "Late start"})
    assert response.status_code == 302, response.get_data(as_text=True)
    sandbox.state.wait_for_deliveries(10)
    [first] = sandbox.state.all("refund")
    assert first["amount"] == 1000 and _balance(db) == 0  # the card first

    page = _page(client, f"/payments/admin/invoices/{invoice.id}/cancel")
    assert "refunds €19.90 to the learner's payment method and credits €20.00 back to their prepaid balance" in page
    assert _cancel(client, invoice.id).status_code == 302
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    refunds = db.session.scalars(select(Refund).order_by(Refund.id)).all()
    assert [(r.amount, r.balance_amount, r.status) for r in refunds] == [(1000, 0, "succeeded"),
                                                                         (3990, 2000, "succeeded")]
    note = sandbox.state.get(refunds[1].stripe_credit_note_id)
    assert [entry["amount_refunded"] for entry in note["refunds"]] == [1990]
    assert sorted(r["amount"] for r in sandbox.state.all("refund")) == [1000, 1990]
    assert _balance(db) == 2000 and [e.amount for e in _entries(db, "credit_note")] == [2000]
    invoice = db.session.get(Invoice, invoice.id)
    assert (invoice.status, invoice.amount_refunded) == ("cancelled", 4990)


def test_a_course_the_balance_paid_in_part_is_cancelled_before_the_rest_is_paid(prepaid_app, client, db, sandbox,
                                                                              host):
    _top_up(client, sandbox, "20.00")
    invoice = _buy_with_balance(client, db)
    assert _cancel(client, invoice.id).status_code == 302
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    refund = db.session.scalar(select(Refund))
    note = sandbox.state.get(refund.stripe_credit_note_id)
    assert (note["pre_payment_amount"], note["post_payment_amount"], note["refunds"]) == (2990, 2000, [])
    assert _balance(db) == 2000
    purchase = db.session.scalar(select(Purchase))
    assert (purchase.status, db.session.get(Invoice, invoice.id).status) == ("cancelled", "cancelled")
    assert not [call for call in host.calls if call[0] == "enroll"]
    # Nothing is asked of the learner any more, and a partial refund of an unpaid invoice is refused.
    page = _page(client, "/payments/my-payments", "u1")
    assert "You have nothing to pay." in page


def test_a_voided_invoice_gives_its_credit_back_to_the_balance(prepaid_app, client, db, sandbox, host):
    _top_up(client, sandbox, "20.00")
    invoice = _buy_with_balance(client, db)
    assert _balance(db) == 0
    prepaid_app.extensions["lms_stripe"].gateway.void_invoice(invoice.stripe_invoice_id, api_key=SECRET_KEY,
                                                              idempotency_key="void-test")
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    [given_back] = _entries(db, "unapplied")
    assert (given_back.amount, given_back.invoice_id, _balance(db)) == (2000, invoice.id, 2000)
    assert db.session.get(Invoice, invoice.id).status == "void"
    assert db.session.scalar(select(Purchase)).status == "cancelled"  # the course can be bought again
    for event in sandbox.state.all("event"):
        sandbox.state.resend(event)
    sandbox.state.wait_for_deliveries(10)
    assert len(_entries(db, "unapplied")) == 1 and _balance(db) == 2000
    page = _page(client, "/payments/my-payments", "u1")
    assert "Given back: the invoice was voided" in page


def test_what_an_invoice_is_overpaid_goes_to_the_balance(prepaid_app, client, db, sandbox):
    path = "/payments/admin/invoices/new"
    response = client.post(path, headers=as_user("adm"), data={
        "csrf_token": csrf(client, "adm", path), "learner": "u1", "currency": "EUR",
        "due": (date.today() + timedelta(days=20)).isoformat(), "line-1-description": "Coaching",
        "line-1-amount": "30.00", "line-1-vat_rate": "20"})
    invoice_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    db.session.expire_all()
    invoice = db.session.get(Invoice, invoice_id)
    # A bank debit of 10.00 attached to the invoice at Stripe (the Dashboard), still processing...
    gateway = prepaid_app.extensions["lms_stripe"].gateway
    debit = gateway.create_checkout_session({
        "mode": "payment", "customer": invoice.stripe_customer_id, "allowed_payment_method_types": ["sepa_debit"],
        "success_url": "https://lms.test/done", "line_items": [{"quantity": 1, "price_data": {
            "currency": "eur", "unit_amount": 1000, "product_data": {"name": "Part of the coaching"}}}]},
        api_key=SECRET_KEY, idempotency_key="debit-test")
    pay(sandbox, debit["id"], method="sepa_debit", iban="DE89370400440532013000")
    intent = sandbox.state.get(debit["id"])["payment_intent"]
    gateway.attach_payment(invoice.stripe_invoice_id, {"payment_intent": intent}, api_key=SECRET_KEY,
                           idempotency_key="attach-test")
    # ...while the learner pays the whole invoice by card; then the debit settles: 10.00 paid beyond it.
    _pay_rest_by_card(client, sandbox, invoice_id)
    assert _balance(db) == 0
    settled = requests.post(f"{sandbox.url}/_sandbox/checkout/sessions/{debit['id']}/settle",
                            json={"outcome": "succeeded"}, timeout=10)
    assert settled.status_code == 200, settled.text
    sandbox.state.wait_for_deliveries(10)
    assert sandbox.state.get(invoice.stripe_invoice_id)["amount_overpaid"] == 1000
    [overpaid] = _entries(db, "overpaid")
    assert (overpaid.amount, overpaid.invoice_id, _balance(db)) == (1000, invoice_id, 1000)
    for event in sandbox.state.all("event"):
        sandbox.state.resend(event)
    sandbox.state.wait_for_deliveries(10)
    assert len(_entries(db, "overpaid")) == 1 and _balance(db) == 1000
    history = _page(client, f"/payments/admin/invoices/{invoice_id}")
    assert re.search(r"€10.00 paid beyond invoice \S+ went to the balance of Léa", history)
