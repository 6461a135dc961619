"""A request's payment put on the learner's balance (its invoice paid meanwhile on Stripe's hosted page) is then
attached to another open invoice of the learner from Stripe's Dashboard. It is not the first request's payment
(that request is not credited with it); it now pays that invoice, so it is taken off the balance (what is left
of it: what the learner spent meanwhile is said to the school), once, mirrored at Stripe, and its top-up is no
longer refundable from the balance page."""
from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from lms_stripe_plugin.billing import balances
from lms_stripe_plugin.core.enums import AuditAction
from lms_stripe_plugin.core.models import AuditEntry, BalanceEntry, PaymentAttempt, PaymentRequest, TopUp
from lms_stripe_plugin.money import Money

from ..conftest import as_user
from .conftest import assert_ledger_matches_stripe, click_pay, pay, refund_topup_from_balance_page
from .test_payment_requests_e2e import _invoice, _new_invoice, _request, billing_app  # noqa: F401 (a fixture)
from .test_unattachable_payments_e2e import _pay_hosted_invoice


def _credited(client, db, sandbox) -> PaymentAttempt:
    """A request's payment of 90.00 on the learner's balance: its invoice was paid on the hosted page first."""
    first = _new_invoice(client)
    link = _request(client, first, "90.00")
    session_id = click_pay(client, link)
    _pay_hosted_invoice(sandbox, _invoice(db, first).stripe_invoice_id)
    assert pay(sandbox, session_id).status_code == 200
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    attempt = db.session.scalar(select(PaymentAttempt))
    assert attempt.status == "credited" and balances.available(db.session, "u1", "EUR").amount == 9000
    return attempt


def _attach_in_dashboard(app, db, sandbox, attempt: PaymentAttempt, second: int) -> None:
    """The payment attached to another open invoice of the same learner (the same Stripe customer)."""
    state = app.extensions["lms_stripe"]
    state.gateway.attach_payment(_invoice(db, second).stripe_invoice_id,
                                 {"payment_intent": attempt.stripe_payment_intent_id},
                                 api_key="sk_test_sandbox_e2e", idempotency_key="dashboard-attach")
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()


def test_a_payment_on_the_balance_attached_elsewhere_in_the_dashboard_is_taken_off_the_balance(
        billing_app, client, db, sandbox):
    second = _new_invoice(client)  # 300 € owed by the same learner, open before the credit (none applied)
    attempt = _credited(client, db, sandbox)
    _attach_in_dashboard(billing_app, db, sandbox, attempt, second)

    request = db.session.scalar(select(PaymentRequest))
    assert request.amount_paid == 0  # its invoice was paid on the hosted page, not by this payment
    assert _invoice(db, second).amount_remaining == 21000  # the payment pays the second invoice
    assert balances.available(db.session, "u1", "EUR").amount == 0  # and no longer the balance
    taken = db.session.scalar(select(BalanceEntry).where(BalanceEntry.kind == "attached"))
    assert taken.amount == -9000
    topup = db.session.scalar(select(TopUp))
    assert topup.status == "attached"
    assert_ledger_matches_stripe(db, sandbox)
    told = db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == AuditAction.CREDITED_PAYMENT_ATTACHED)).all()
    assert len(told) == 1
    page = client.get(f"/payments/admin/invoices/{second}", headers=as_user("adm")).get_data(as_text=True)
    assert "it was taken off their balance" in page
    mine = client.get("/payments/my-payments", headers=as_user("u1")).get_data(as_text=True)
    assert "Attached to an invoice in Stripe" in mine

    # Its top-up is no longer refundable from the balance page: its payment pays an invoice now.
    response = refund_topup_from_balance_page(client, topup.id, follow_redirects=True)
    assert "Only a paid top-up can be refunded." in response.get_data(as_text=True)
    assert [r for r in sandbox.state.all("refund")] == []

    # Every event delivered again: nothing is taken twice.
    for event in sandbox.state.all("event"):
        sandbox.state.resend(event)
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    assert len(db.session.scalars(select(BalanceEntry).where(BalanceEntry.kind == "attached")).all()) == 1
    assert len(db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == AuditAction.CREDITED_PAYMENT_ATTACHED)).all()) == 1
    assert_ledger_matches_stripe(db, sandbox)


@pytest.mark.parametrize("locale", ["en", "fr"])
def test_a_payment_on_the_balance_partly_spent_then_attached_takes_what_is_left_and_says_the_rest(
        billing_app, client, db, sandbox, host, locale):
    second = _new_invoice(client)
    attempt = _credited(client, db, sandbox)
    state = billing_app.extensions["lms_stripe"]
    balances.adjust(state, user_id="u1", amount=Money(6000, "EUR"), credit=False, reason="Frais de dossier",
                    actor_id="adm", token="spent-before-attach")
    db.session.commit()
    _attach_in_dashboard(billing_app, db, sandbox, attempt, second)
    assert balances.available(db.session, "u1", "EUR").amount == 0
    assert db.session.scalar(select(BalanceEntry.amount).where(BalanceEntry.kind == "attached")) == -3000
    assert_ledger_matches_stripe(db, sandbox)
    host.locale = locale
    page = client.get(f"/payments/admin/invoices/{second}", headers=as_user("adm")).get_data(as_text=True)
    page = page.replace("&#39;", "'").replace("\u00a0", " ")
    if locale == "en":
        assert "€30.00 of it was taken off their balance; €60.00 had been spent already" in page
    else:
        assert "30,00 € en ont été retirés de son solde ; 60,00 € avaient déjà été dépensés" in page


def test_a_payment_on_the_balance_partly_refunded_then_attached_is_not_taken_twice(billing_app, client, db, sandbox):
    second = _new_invoice(client)
    attempt = _credited(client, db, sandbox)
    balances.adjust(billing_app.extensions["lms_stripe"], user_id="u1", amount=Money(5000, "EUR"), credit=True,
                    reason="Geste commercial", actor_id="adm", token="other-money")
    db.session.commit()
    charge = next(c for c in sandbox.state.all("charge") if c["payment_intent"] == attempt.stripe_payment_intent_id)
    response = requests.post(f"{sandbox.url}/_sandbox/charges/{charge['id']}/refund", json={"amount": 3000},
                             timeout=5)
    assert response.status_code in (200, 201), response.text
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    assert balances.available(db.session, "u1", "EUR").amount == 11000  # 90 + 50 - the 30 refunded
    _attach_in_dashboard(billing_app, db, sandbox, attempt, second)
    # What the refund took is not taken again: 60 of the payment was left on the balance, the 50 stays.
    assert db.session.scalar(select(BalanceEntry.amount).where(BalanceEntry.kind == "attached")) == -6000
    assert balances.available(db.session, "u1", "EUR").amount == 5000
    assert_ledger_matches_stripe(db, sandbox)


def test_a_payment_refunded_from_the_balance_then_attached_is_said_to_the_school(billing_app, client, db, sandbox):
    second = _new_invoice(client)
    attempt = _credited(client, db, sandbox)
    topup = db.session.scalar(select(TopUp))
    assert refund_topup_from_balance_page(client, topup.id).status_code == 303
    sandbox.state.wait_for_deliveries(10)
    _attach_in_dashboard(billing_app, db, sandbox, attempt, second)
    assert db.session.get(TopUp, topup.id).status == "refunded"
    assert balances.available(db.session, "u1", "EUR").amount == 0
    page = client.get(f"/payments/admin/invoices/{second}", headers=as_user("adm")).get_data(as_text=True)
    assert "then refunded from the balance page, was attached to invoice" in page.replace("&#39;", "'")
