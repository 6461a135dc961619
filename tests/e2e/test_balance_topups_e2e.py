"""Topping up a learner's prepaid balance through a payment request or a payment link, end to end through the
real SDK and the sandbox, webhooks delivered into the app: the administrator asks for a top-up by e-mail, the
learner pays it from the message's link without signing in, the amount is on their balance (a payment on
account: no invoice) and at Stripe, and can be refunded while unspent; a top-up link for one learner is paid by
that learner only; bad input is refused with a message and nothing written."""
from __future__ import annotations

import html
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from lms_stripe_plugin import messages
from lms_stripe_plugin.accounts import settings as payment_settings
from lms_stripe_plugin.core.models import (Balance, BalanceEntry, Customer, Invoice, Message, PaymentAttempt,
                                           PaymentLink, PaymentRequest, TopUp)

from ..conftest import as_user
from .conftest import csrf, pay

DUE = (date.today() + timedelta(days=20)).isoformat()


@pytest.fixture
def prepaid_app(stripe_app, db, tmp_path):
    stripe_app.config.update(LMS_STRIPE_MAIL_BACKEND="file", LMS_STRIPE_MAIL_FILE=str(tmp_path / "mail.mbox"),
                             LMS_STRIPE_MAIL_SENDER="École <noreply@ecole.test>")
    payment_settings.save(db.session, {"prepaid_enabled": True, "topup_minimum": 1000, "topup_maximum": 50000},
                          actor_id="adm")
    db.session.commit()
    return stripe_app


def _ask(client, user: str = "u1", **fields):
    path = f"/payments/admin/balances/{user}/request"
    data = {"csrf_token": csrf(client, "adm", f"/payments/admin/balances/{user}"), "amount": "25.00", "due": DUE,
            "email": "on", "locale": "en",
            **fields}
    return client.post(path, headers=as_user("adm"), data=data)


def _last_message(db) -> tuple[str, str]:
    db.session.expire_all()
    message = db.session.scalars(select(Message).order_by(Message.id.desc())).first()
    body, _html = messages.content(message)
    return message.subject, body


def _balance(db, user: str = "u1") -> int:
    db.session.expire_all()
    return db.session.scalar(select(Balance.amount).where(Balance.user_id == user)) or 0


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def test_a_top_up_request_is_paid_from_its_link_onto_the_balance(prepaid_app, client, db, sandbox):
    page = _text(client.get("/payments/admin/balances/u1", headers=as_user("adm")))
    assert 'id="request-topup"' in page and 'id="new-topup-link"' in page
    response = _ask(client)
    assert response.status_code == 303, response.get_data(as_text=True)
    request = db.session.scalar(select(PaymentRequest))
    assert (request.topup, request.invoice_id, request.amount, request.currency) == (True, None, 2500, "EUR")
    subject, body = _last_message(db)
    assert "€25.00" in subject and "It tops up your prepaid balance" in body
    link = re.search(r"https?://lms\.test(/payments/pay/[A-Za-z0-9_-]+)", body).group(1)

    # The learner, not signed in, opens the link and pays.
    page = client.get(link)
    assert page.status_code == 200 and "Top up your prepaid balance" in _text(page)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    response = client.post(link, data={"csrf_token": token, "amount": "1.00"})  # the amount typed is ignored
    assert response.status_code == 303, response.get_data(as_text=True)
    session_id = response.headers["Location"].rstrip("/").split("/")[-1]
    checkout = sandbox.state.get(session_id)
    customer = db.session.scalar(select(Customer.stripe_customer_id).where(Customer.user_id == "u1"))
    assert (checkout["amount_total"], checkout["invoice_creation"]["enabled"], checkout["customer"]) == \
        (2500, False, customer)
    assert pay(sandbox, session_id).status_code == 200
    sandbox.state.wait_for_deliveries(10)

    db.session.expire_all()
    topup = db.session.scalar(select(TopUp))
    attempt = db.session.scalar(select(PaymentAttempt))
    assert (topup.status, topup.amount, topup.attempt_id, topup.stripe_payment_intent_id) == \
        ("paid", 2500, attempt.id, attempt.stripe_payment_intent_id)
    entry = db.session.scalar(select(BalanceEntry))
    assert (entry.kind, entry.amount, entry.topup_id) == ("topup", 2500, topup.id) and entry.stripe_transaction_id
    request = db.session.get(PaymentRequest, request.id)
    assert (request.status, request.amount_paid, _balance(db)) == ("paid", 2500, 2500)
    assert db.session.scalar(select(func.count()).select_from(Invoice)) == 0  # a payment on account
    assert "This top-up is paid" in _text(client.get(link))
    assert "Top-up of your balance" not in _text(client.get("/payments/my-payments", headers=as_user("u1")))
    # Events delivered again write nothing twice.
    for event in sandbox.state.all("event"):
        sandbox.state.resend(event)
    sandbox.state.wait_for_deliveries(10)
    assert db.session.scalar(select(func.count()).select_from(BalanceEntry)) == 1 and _balance(db) == 2500

    # Refunded while unspent, as a top-up from My payments is.
    response = client.post(f"/payments/admin/balances/top-ups/{topup.id}/refund", headers=as_user("adm"),
                           data={"csrf_token": csrf(client, "adm", "/payments/admin/balances/u1")})
    assert response.status_code == 303
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    assert (db.session.get(TopUp, topup.id).status, _balance(db)) == ("refunded", 0)
    assert [r["amount"] for r in sandbox.state.all("refund")] == [2500]


def test_a_top_up_request_is_listed_and_paid_from_my_payments(prepaid_app, client, db, sandbox):
    assert _ask(client, amount="40.00").status_code == 303
    page = _text(client.get("/payments/my-payments", headers=as_user("u1")))
    assert "Top-up of your balance" in page and "€40.00" in page
    request = db.session.scalar(select(PaymentRequest))
    response = client.post(f"/payments/my-payments/{request.id}/pay", headers=as_user("u1"),
                           data={"csrf_token": csrf(client, "u1", "/payments/my-payments")})
    assert response.status_code == 303, response.get_data(as_text=True)
    assert pay(sandbox, response.headers["Location"].rstrip("/").split("/")[-1]).status_code == 200
    sandbox.state.wait_for_deliveries(10)
    assert _balance(db) == 4000
    listing = _text(client.get("/payments/admin/requests", headers=as_user("adm")))
    assert "Top-up of the balance" in listing and "Léa" in listing


@pytest.mark.parametrize("fields, message", [
    ({"amount": "600.00"}, "Enter an amount from €10.00 to €500.00."),
    ({"amount": "5"}, "Enter an amount from €10.00 to €500.00."),
    ({"amount": "12.345"}, "decimals"),
    ({"email": ""}, "Choose how to send the request"),
    ({"due": "2001-01-01"}, "The due date is in the past."),
])
def test_top_up_requests_refused_with_a_message(prepaid_app, client, db, fields, message):
    response = _ask(client, **fields)
    assert response.status_code == 400 and message in _text(response)
    assert db.session.scalar(select(func.count()).select_from(PaymentRequest)) == 0
    assert db.session.scalar(select(func.count()).select_from(Message)) == 0


def test_top_up_requests_need_prepaid_balances_and_a_known_learner(prepaid_app, client, db, host):
    assert client.get("/payments/admin/balances/nobody/request", headers=as_user("adm")).status_code == 404
    assert client.get("/payments/admin/balances/u1/request", headers=as_user("u2")).status_code in (401, 403)
    payment_settings.save(db.session, {"prepaid_enabled": False}, actor_id="adm")
    db.session.commit()
    response = _ask(client)
    assert response.status_code == 400 and "Topping up a balance is not available" in _text(response)
    host.locale = "fr"
    response = _ask(client)
    assert response.status_code == 400 and "La recharge du solde prépayé n'est pas disponible" in _text(response)
    assert db.session.scalar(select(func.count()).select_from(PaymentRequest)) == 0


def _new_link(client, **fields):
    path = "/payments/admin/links/new"
    data = {"csrf_token": csrf(client, "adm", path), "title": "Recharge", "purpose": "Votre solde prépayé",
            "kind": "free", "minimum": "10", "maximum": "100", "currency": "EUR", "vat_rate": "20",
            "learner": "u1", "topup": "on", **fields}
    return client.post(path, headers=as_user("adm"), data=data)


def test_a_top_up_link_is_paid_by_its_learner_onto_the_balance(prepaid_app, client, db, sandbox):
    response = _new_link(client)
    assert response.status_code == 302, response.get_data(as_text=True)
    link = db.session.scalar(select(PaymentLink))
    assert (link.topup, link.vat_rate, link.user_id) == (True, 0, "u1")  # no VAT on a payment on account
    admin_page = _text(client.get(f"/payments/admin/links/{link.id}", headers=as_user("adm")))
    path = re.sub(r"^https?://lms\.test", "", re.search(r'id="link-url" readonly value="([^"]+)"', admin_page).group(1))

    # Another learner, or someone not signed in, is refused; nothing is written.
    token = csrf(client, "adm", "/payments/admin/links/new")
    assert client.post(path, headers=as_user("u2"), data={"csrf_token": token, "amount": "30"}).status_code == 403
    assert client.post(path, data={"csrf_token": token, "amount": "30", "name": "X",
                                   "email": "x@example.org"}).status_code == 401
    # Its learner, out of the link's limits, then within.
    token = csrf(client, "u1", path)
    refused = client.post(path, headers=as_user("u1"), data={"csrf_token": token, "amount": "150"})
    assert refused.status_code == 400 and "at most €100.00" in _text(refused)
    assert db.session.scalar(select(func.count()).select_from(PaymentAttempt)) == 0
    page = _text(client.get(path, headers=as_user("u1")))
    assert "tops up your prepaid balance" in page
    assert "VAT included" not in page
    response = client.post(path, headers=as_user("u1"), data={"csrf_token": token, "amount": "30.00"})
    assert response.status_code == 303, response.get_data(as_text=True)
    session_id = response.headers["Location"].rstrip("/").split("/")[-1]
    assert sandbox.state.get(session_id)["invoice_creation"]["enabled"] is False
    assert pay(sandbox, session_id).status_code == 200
    sandbox.state.wait_for_deliveries(10)

    db.session.expire_all()
    assert _balance(db) == 3000
    topup = db.session.scalar(select(TopUp))
    assert (topup.status, topup.attempt_id) == ("paid", db.session.scalar(select(PaymentAttempt.id)))
    assert (db.session.get(PaymentLink, link.id).uses, db.session.scalar(select(func.count()).select_from(Invoice))) \
        == (1, 0)
    admin_page = _text(client.get(f"/payments/admin/links/{link.id}", headers=as_user("adm")))
    assert "On the balance (no invoice)" in admin_page
    for event in sandbox.state.all("event"):
        sandbox.state.resend(event)
    sandbox.state.wait_for_deliveries(10)
    assert db.session.scalar(select(func.count()).select_from(BalanceEntry)) == 1


@pytest.mark.parametrize("fields, field, message", [
    ({"learner": ""}, "learner", "A top-up link is for one learner"),
    ({"maximum": "900"}, "maximum", "Enter an amount from €10.00 to €500.00."),
    ({"kind": "fixed", "amount": "5"}, "amount", "Enter an amount from €10.00 to €500.00."),
])
def test_top_up_links_refused_with_a_message(prepaid_app, client, db, fields, field, message):
    response = _new_link(client, **fields)
    assert response.status_code == 400 and message in _text(response), _text(response)
    assert db.session.scalar(select(func.count()).select_from(PaymentLink)) == 0


def test_top_up_links_refused_in_french(prepaid_app, client, db, host):
    host.locale = "fr"
    response = _new_link(client, learner="", minimum="10,00", maximum="900,00")
    page = _text(response)
    assert response.status_code == 400 and "Un lien de recharge est réservé à un apprenant" in page
    assert "Saisissez un montant de 10,00" in page
    payment_settings.save(db.session, {"prepaid_enabled": False}, actor_id="adm")
    db.session.commit()
    assert "Les soldes prépayés sont désactivés" in _text(_new_link(client, minimum="10,00", maximum="90,00"))
    assert db.session.scalar(select(func.count()).select_from(PaymentLink)) == 0
