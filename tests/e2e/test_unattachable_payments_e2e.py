"""A payment request's payment that its invoice no longer owes, end to end through the real SDK and the
sandbox: the learner pays the invoice on Stripe's hosted page while the request's Checkout is open, then pays
that Checkout too; or the invoice is voided while the request's SEPA debit is processing. Stripe will not
attach that payment to the invoice: it goes on the learner's balance (mirrored at Stripe, checked after every
test), the learner is told by e-mail, and reconcile has nothing left to do."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import requests
from sqlalchemy import select

from lms_stripe_plugin import messages
from lms_stripe_plugin.billing import balances
from lms_stripe_plugin.core.models import BalanceEntry, Message, PaymentAttempt, TopUp
from lms_stripe_plugin.sync.reconcile import reconcile

from ..conftest import as_user
from .conftest import click_pay, fault, nothing_to_reconcile, pay
from .test_payment_requests_e2e import _invoice, _new_invoice, _request, billing_app  # noqa: F401 (a fixture)


def _pay_hosted_invoice(sandbox, stripe_invoice_id: str) -> None:
    response = requests.post(f"{sandbox.url}/_sandbox/invoices/{stripe_invoice_id}/pay", json={"method": "card"},
                             timeout=10)
    assert response.status_code == 200, response.text
    sandbox.state.wait_for_deliveries(10)


def _learner_mail(db) -> tuple[str, str]:
    db.session.expire_all()
    message = db.session.scalars(select(Message).where(Message.idempotency_key.like("attempt-%-on-balance"))).one()
    body, _html = messages.content(message)
    return message.subject, body


def test_a_request_paid_after_its_invoice_was_paid_goes_on_the_balance(billing_app, client, db, sandbox):
    invoice_id = _new_invoice(client)
    link = _request(client, invoice_id, "90.00")
    session_id = click_pay(client, link)
    _pay_hosted_invoice(sandbox, _invoice(db, invoice_id).stripe_invoice_id)
    assert _invoice(db, invoice_id).status == "paid"

    assert pay(sandbox, session_id).status_code == 200
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    attempt = db.session.scalar(select(PaymentAttempt))
    assert (attempt.status, attempt.attached_at) == ("credited", None)
    invoice = _invoice(db, invoice_id)
    assert (invoice.status, invoice.amount_paid, invoice.amount_remaining) == ("paid", 30000, 0)
    assert balances.available(db.session, "u1", "EUR").amount == 9000
    topup = db.session.scalar(select(TopUp))
    assert (topup.amount, topup.status, topup.attempt_id) == (9000, "paid", attempt.id)
    entry = db.session.scalar(select(BalanceEntry))
    assert (entry.kind, entry.amount) == ("topup", 9000)
    assert invoice.number in entry.reason and "ne le devait plus" in entry.reason  # the request's language

    subject, body = _learner_mail(db)
    assert "90,00\xa0€" in subject and "solde" in subject
    assert invoice.number in body and "payée entre-temps" in body
    back = client.get(f"{link}?session_id={session_id}").get_data(as_text=True)
    assert 'id="on-balance"' in back and "solde prépayé" in back
    nothing_to_reconcile(billing_app, db)
    page = client.get("/payments/admin/audit", headers=as_user("adm")).get_data(as_text=True)
    assert "ne devait plus" in page or "no longer owed" in page


def test_a_sepa_debit_that_settles_after_its_invoice_was_voided_goes_on_the_balance(billing_app, client, db,
                                                                                    sandbox):
    invoice_id = _new_invoice(client)
    link = _request(client, invoice_id, "90.00")
    session_id = click_pay(client, link)
    assert pay(sandbox, session_id, method="sepa_debit").status_code == 200
    db.session.expire_all()
    assert db.session.scalar(select(PaymentAttempt)).status == "processing"
    state = billing_app.extensions["lms_stripe"]
    stripe_invoice_id = _invoice(db, invoice_id).stripe_invoice_id
    state.gateway.void_invoice(stripe_invoice_id, api_key="sk_test_sandbox_e2e", idempotency_key="dashboard-void")
    sandbox.state.wait_for_deliveries(10)
    assert _invoice(db, invoice_id).status == "void"

    settled = requests.post(f"{sandbox.url}/_sandbox/checkout/sessions/{session_id}/settle",
                            json={"outcome": "succeeded"}, timeout=10)
    assert settled.status_code == 200, settled.text
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    assert db.session.scalar(select(PaymentAttempt)).status == "credited"
    assert balances.available(db.session, "u1", "EUR").amount == 9000
    subject, body = _learner_mail(db)
    assert "annulée" in body
    nothing_to_reconcile(billing_app, db)


def test_a_payment_attached_whose_record_was_lost_is_not_put_on_the_balance(billing_app, client, db, sandbox):
    """Stripe attached the payment, but its answer never reached us (a 500 that the key keeps), and a day later
    the key is forgotten: attaching again is refused ("already attached"), and that is read as attached, not as
    a payment the invoice no longer owes."""
    invoice_id = _new_invoice(client)
    link = _request(client, invoice_id, "90.00")
    session_id = click_pay(client, link)
    fault(sandbox, f"/v1/invoices/{_invoice(db, invoice_id).stripe_invoice_id}/attach_payment", "500", after=True)
    assert pay(sandbox, session_id).status_code == 200
    assert _invoice(db, invoice_id).amount_paid == 9000  # attached at Stripe; its events told us
    db.session.expire_all()
    assert db.session.scalar(select(PaymentAttempt)).status == "paid"
    requests.post(f"{sandbox.url}/_sandbox/clock/advance", json={"seconds": 25 * 3600}, timeout=5)

    _nothing_to_reconcile_after_attaching(billing_app, db)
    db.session.expire_all()
    assert db.session.scalar(select(PaymentAttempt)).status == "attached"
    assert (_invoice(db, invoice_id).amount_paid, balances.available(db.session, "u1", "EUR").amount) == (9000, 0)
    assert db.session.scalar(select(TopUp)) is None


def _nothing_to_reconcile_after_attaching(billing_app, db) -> None:
    attempt = db.session.scalar(select(PaymentAttempt))
    attempt.paid_at = attempt.paid_at - timedelta(hours=1)
    db.session.commit()
    state = billing_app.extensions["lms_stripe"]
    since = datetime.now(timezone.utc) - timedelta(hours=2)
    assert [(f.kind, f.repaired) for f in reconcile(state, since=since).findings] == [("attempt", True)]
    assert reconcile(state, since=since).findings == []
