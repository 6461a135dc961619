"""Prepaid balances end to end, through the real SDK and the sandbox, webhooks delivered into the app: a top-up
through Checkout, a course paid from the balance with no Checkout, a balance that pays part of a course, an
administrator's credit and debit, a top-up refunded while unspent. After every sequence the ledger equals the
Stripe customer's credit balance."""
from __future__ import annotations

import re

import pytest
import requests
from sqlalchemy import func, select

from lms_stripe_plugin.accounts import settings as payment_settings
from lms_stripe_plugin.core.models import AuditEntry, Balance, BalanceEntry, Customer, Invoice, Purchase, TopUp

from ..conftest import as_user
from .conftest import assert_ledger_matches_stripe, csrf, pay


@pytest.fixture
def prepaid_app(stripe_app, db):
    payment_settings.save(db.session, {"prepaid_enabled": True, "topup_minimum": 1000, "topup_maximum": 50000},
                          actor_id="adm")
    db.session.commit()
    return stripe_app


def _top_up(client, sandbox, amount: str, user: str = "u1") -> TopUp:
    response = client.post("/payments/my-payments/top-up", headers=as_user(user),
                           data={"csrf_token": csrf(client, user, "/payments/my-payments"), "amount": amount})
    assert response.status_code == 303, response.get_data(as_text=True)
    session_id = response.headers["Location"].rstrip("/").split("/")[-1]
    assert pay(sandbox, session_id).status_code == 200
    sandbox.state.wait_for_deliveries(10)
    return session_id


def _pay_from_balance(client, course: str = "c1", user: str = "u1"):
    return client.post(f"/payments/checkout/{course}/balance", headers=as_user(user),
                       data={"csrf_token": csrf(client, user, f"/payments/courses/{course}")})


def test_a_top_up_of_50_pays_a_49_90_course_with_no_checkout_and_leaves_0_10(prepaid_app, client, db, sandbox, host):
    session_id = _top_up(client, sandbox, "50.00")
    checkout = sandbox.state.get(session_id)
    assert checkout["amount_total"] == 5000 and checkout["invoice_creation"]["enabled"] is False
    db.session.expire_all()
    topup = db.session.scalar(select(TopUp))
    assert (topup.status, topup.amount) == ("paid", 5000)
    assert db.session.scalar(select(Balance.amount)) == 5000
    assert_ledger_matches_stripe(db, sandbox)
    page = client.get("/payments/courses/c1", headers=as_user("u1")).get_data(as_text=True)
    assert "Pay with my balance (€50.00)" in page

    sessions_before = len(sandbox.state.all("checkout.session"))
    response = _pay_from_balance(client)
    assert response.status_code == 303
    assert len(sandbox.state.all("checkout.session")) == sessions_before  # no Checkout
    db.session.expire_all()
    purchase = db.session.scalar(select(Purchase).where(Purchase.course_id == "c1"))
    invoice = db.session.scalar(select(Invoice).where(Invoice.purchase_id == purchase.id))
    assert (purchase.status, invoice.source, invoice.status, invoice.gross) == ("paid", "balance", "paid", 4990)
    assert ("enroll", "u1", "c1") in host.calls
    stripe_invoice = sandbox.state.get(invoice.stripe_invoice_id)
    assert (stripe_invoice["starting_balance"], stripe_invoice["ending_balance"], stripe_invoice["amount_due"]) == \
        (-5000, -10, 0)
    assert db.session.scalar(select(Balance.amount)) == 10
    spent = db.session.scalar(select(BalanceEntry).where(BalanceEntry.kind == "spent"))
    assert (spent.amount, spent.invoice_id) == (-4990, invoice.id)
    assert_ledger_matches_stripe(db, sandbox)
    page = client.get("/payments/my-payments", headers=as_user("u1")).get_data(as_text=True)
    assert "€0.10" in page and invoice.number in page and "with your balance" in page

    # Replayed events write nothing twice.
    for event in sandbox.state.all("event"):
        sandbox.state.resend(event)
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(BalanceEntry)) == 2
    assert_ledger_matches_stripe(db, sandbox)


def test_a_balance_that_covers_part_leaves_the_rest_to_pay_by_card(prepaid_app, client, db, sandbox, host):
    _top_up(client, sandbox, "20.00")
    response = _pay_from_balance(client)
    assert response.status_code == 303 and response.headers["Location"].endswith("/payments/my-payments")
    db.session.expire_all()
    purchase = db.session.scalar(select(Purchase).where(Purchase.course_id == "c1"))
    invoice = db.session.scalar(select(Invoice).where(Invoice.purchase_id == purchase.id))
    assert (purchase.status, invoice.status, invoice.amount_remaining) == ("open", "open", 2990)
    assert ("enroll", "u1", "c1") not in host.calls
    assert db.session.scalar(select(Balance.amount)) == 0
    assert_ledger_matches_stripe(db, sandbox)
    # The course page sends the learner to pay the rest; Buy is not offered again.
    page = client.get("/payments/courses/c1", headers=as_user("u1")).get_data(as_text=True)
    assert "pay the rest of its invoice in My payments" in page

    # The rest, by card, from My payments.
    response = client.post(f"/payments/my-payments/invoices/{invoice.id}/pay", headers=as_user("u1"),
                           data={"csrf_token": csrf(client, "u1", "/payments/my-payments")})
    assert response.status_code == 303
    session_id = response.headers["Location"].rstrip("/").split("/")[-1]
    assert sandbox.state.get(session_id)["amount_total"] == 2990
    assert pay(sandbox, session_id).status_code == 200
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    purchase = db.session.get(Purchase, purchase.id)
    invoice = db.session.get(Invoice, invoice.id)
    assert (invoice.status, purchase.status) == ("paid", "paid")
    assert host.calls.count(("enroll", "u1", "c1")) == 1
    assert_ledger_matches_stripe(db, sandbox)


def _admin_form(client, user_id: str = "u1") -> dict:
    page = client.get(f"/payments/admin/balances/{user_id}", headers=as_user("adm")).get_data(as_text=True)
    return {"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1),
            "token": re.search(r'name="token" value="([^"]+)"', page).group(1)}


def test_an_administrator_credits_and_debits_with_a_reason_never_below_zero(prepaid_app, client, db, sandbox,
                                                                           host):
    host.locale = "fr"  # the amount typed the French way
    form = {**_admin_form(client), "direction": "credit", "amount": "12,50", "currency": "EUR",
            "reason": "Geste commercial"}
    response = client.post("/payments/admin/balances/u1", headers=as_user("adm"), data=form)
    assert response.status_code == 303, response.get_data(as_text=True)
    # The same form sent twice moves the balance once.
    assert client.post("/payments/admin/balances/u1", headers=as_user("adm"), data=form).status_code == 303
    host.locale = "en"
    db.session.expire_all()
    assert db.session.scalar(select(Balance.amount)) == 1250
    assert_ledger_matches_stripe(db, sandbox)
    entry = db.session.scalar(select(BalanceEntry))
    assert (entry.kind, entry.reason, entry.actor_id) == ("credit", "Geste commercial", "adm")
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "balance_credited")) == 1

    too_much = {**_admin_form(client), "direction": "debit", "amount": "20.00", "currency": "EUR", "reason": "x"}
    response = client.post("/payments/admin/balances/u1", headers=as_user("adm"), data=too_much)
    assert response.status_code == 400 and "cannot be debited" in response.get_data(as_text=True)
    no_reason = {**_admin_form(client), "direction": "debit", "amount": "2.50", "currency": "EUR", "reason": " "}
    response = client.post("/payments/admin/balances/u1", headers=as_user("adm"), data=no_reason)
    assert response.status_code == 400 and "Say why" in response.get_data(as_text=True)
    bad_amount = {**_admin_form(client), "direction": "debit", "amount": "2.505", "currency": "EUR", "reason": "x"}
    assert client.post("/payments/admin/balances/u1", headers=as_user("adm"), data=bad_amount).status_code == 400
    fine = {**_admin_form(client), "direction": "debit", "amount": "2.50", "currency": "EUR", "reason": "Erreur"}
    assert client.post("/payments/admin/balances/u1", headers=as_user("adm"), data=fine).status_code == 303
    db.session.expire_all()
    assert db.session.scalar(select(Balance.amount)) == 1000
    assert_ledger_matches_stripe(db, sandbox)
    listing = client.get("/payments/admin/balances", headers=as_user("adm")).get_data(as_text=True)
    assert "Léa" in listing and "€10.00" in listing
    # Learners never reach the administrators' pages.
    assert client.get("/payments/admin/balances/u1", headers=as_user("u2")).status_code in (401, 403)


def test_a_top_up_is_refunded_while_unspent_and_not_once_spent(prepaid_app, client, db, sandbox):
    _top_up(client, sandbox, "30.00")
    _top_up(client, sandbox, "40.00")
    db.session.expire_all()
    first, second = db.session.scalars(select(TopUp).order_by(TopUp.id)).all()
    token = _admin_form(client)["csrf_token"]
    response = client.post(f"/payments/admin/balances/top-ups/{first.id}/refund", headers=as_user("adm"),
                           data={"csrf_token": token})
    assert response.status_code == 303
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    first = db.session.get(TopUp, first.id)
    assert first.status == "refunded" and first.stripe_refund_id
    refund = sandbox.state.get(first.stripe_refund_id)
    assert (refund["amount"], refund["payment_intent"]) == (3000, first.stripe_payment_intent_id)
    assert db.session.scalar(select(Balance.amount)) == 4000
    assert_ledger_matches_stripe(db, sandbox)
    # Refunded twice: refused, nothing moves.
    client.post(f"/payments/admin/balances/top-ups/{first.id}/refund", headers=as_user("adm"),
                data={"csrf_token": token})
    # Part of the second spent: it can no longer be refunded.
    assert _pay_from_balance(client).status_code == 303
    response = client.post(f"/payments/admin/balances/top-ups/{second.id}/refund", headers=as_user("adm"),
                           data={"csrf_token": token}, follow_redirects=True)
    assert "can no longer be refunded" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(TopUp, second.id).status == "paid"
    assert db.session.scalar(select(Balance.amount)) == 0  # the 40.00 left paid part of the 49.90 course
    assert len([r for r in sandbox.state.all("refund")]) == 1
    assert_ledger_matches_stripe(db, sandbox)


def test_top_up_limits_and_a_learner_without_prepaid(prepaid_app, client, db, sandbox):
    token = csrf(client, "u1", "/payments/my-payments")
    for amount, message in (("5.00", "Enter an amount from €10.00 to €500.00."),
                            ("600", "Enter an amount from €10.00 to €500.00."),
                            ("abc", None), ("10.001", "decimals")):
        response = client.post("/payments/my-payments/top-up", headers=as_user("u1"),
                               data={"csrf_token": token, "amount": amount}, follow_redirects=True)
        assert response.status_code == 200
        if message:
            assert message in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(TopUp)) == 0
    assert not sandbox.state.all("checkout.session")
    # Without a balance the course page offers no balance payment, and the route refuses.
    page = client.get("/payments/courses/c1", headers=as_user("u1")).get_data(as_text=True)
    assert "Pay with my balance" not in page
    response = _pay_from_balance(client)
    assert response.status_code == 409 and "Your balance cannot pay for this course." in response.get_data(as_text=True)
    # Turned off, the top-up is refused with a message.
    payment_settings.save(db.session, {"prepaid_enabled": False}, actor_id="adm")
    db.session.commit()
    response = client.post("/payments/my-payments/top-up", headers=as_user("u1"),
                           data={"csrf_token": token, "amount": "20"}, follow_redirects=True)
    assert "not available" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(TopUp)) == 0
