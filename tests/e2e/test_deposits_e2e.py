"""Deposits end to end, through the real SDK and the sandbox, webhooks delivered into the app: a 30 % deposit
through Checkout, one invoice of the full price with the deposit attached, the balance asked for by a payment
request and paid from its link; a balance overdue past the grace period suspends access, and paying it
restores access."""
from __future__ import annotations

from datetime import timedelta

import requests
from sqlalchemy import delete, func, select

from lms_stripe_plugin import messages, tasks
from lms_stripe_plugin.accounts import settings as payment_settings
from lms_stripe_plugin.billing import balances
from lms_stripe_plugin.core.models import (AuditEntry, Balance, BalanceEntry, Invoice, InvoicePayment, Message,
                                           PaymentRequest, Purchase, Refund, Suspension, TopUp, utcnow)
from lms_stripe_plugin.shop import deposits, enrollment
from lms_stripe_plugin.sync.reconcile import reconcile
from lms_stripe_plugin.shop.offers import save_offer

from .conftest import csrf, fault, pay, refund_topup_from_balance_page, start_checkout
from .test_balance_e2e import _top_up
from .test_payment_requests_e2e import _last_link, _pay_from_link, billing_app  # noqa: F401 - the fixture


def _deposit_offer(db, *, access: str = "deposit", days: int = 30) -> None:
    save_offer(db.session, "c1", {"is_paid": True, "amount": 4990, "currency": "EUR", "vat_rate": 2000,
                                  "audience": "public", "on_sale": True, "payment_plan": "deposit",
                                  "deposit_percent": 3000, "balance_due": "after_enrollment",
                                  "balance_due_days": days, "deposit_access": access}, actor_id="adm")
    db.session.commit()


def _rows(db):
    db.session.expire_all()
    purchase = db.session.scalar(select(Purchase).where(Purchase.user_id == "u1", Purchase.course_id == "c1"))
    invoice = db.session.scalar(select(Invoice).where(Invoice.purchase_id == purchase.id))
    request = db.session.scalar(select(PaymentRequest).where(PaymentRequest.balance_of == purchase.id))
    return purchase, invoice, request


def _pay_deposit(client, sandbox):
    response, session_id = start_checkout(client, "u1", "c1")
    assert response.status_code == 303
    checkout = sandbox.state.get(session_id)
    assert checkout["amount_total"] == 1497 and checkout["invoice_creation"]["enabled"] is False
    assert pay(sandbox, session_id).status_code == 200
    sandbox.state.wait_for_deliveries(10)
    return session_id


def test_a_30_percent_deposit_then_the_balance_request_paid(billing_app, client, db, sandbox, host):
    _deposit_offer(db)
    _pay_deposit(client, sandbox)
    purchase, invoice, request = _rows(db)
    assert purchase.status == "paid" and purchase.deposit_amount == 1497 and purchase.amount_paid == 1497
    assert host.calls == [("enroll", "u1", "c1")]  # access on the deposit
    assert (invoice.source, invoice.status, invoice.gross, invoice.vat, invoice.net) == \
        ("deposit", "open", 4990, 832, 4158)
    assert (invoice.amount_paid, invoice.amount_remaining) == (1497, 3493) and invoice.number
    stripe_invoice = sandbox.state.get(invoice.stripe_invoice_id)
    assert stripe_invoice["collection_method"] == "send_invoice" and stripe_invoice["total"] == 4990
    assert [p["payment"]["payment_intent"] for p in sandbox.state.all("invoice_payment")
            if p["invoice"] == invoice.stripe_invoice_id and not p["is_default"]] == [purchase.stripe_payment_intent_id]
    assert (request.amount, request.status) == (3493, "open")
    assert request.due_at.date() == (utcnow() + timedelta(days=30)).date()
    page = client.get("/payments/courses/c1", headers={"X-User": "u1"}).get_data(as_text=True)
    assert "Deposit paid" in page and "34.93" in page

    _pay_from_link(client, sandbox, _last_link(billing_app))
    sandbox.state.wait_for_deliveries(10)
    purchase, invoice, request = _rows(db)
    assert (invoice.status, invoice.amount_paid, invoice.amount_remaining) == ("paid", 4990, 0)
    assert request.status == "paid" and purchase.balance_paid_at is not None
    assert db.session.scalar(select(func.count()).select_from(InvoicePayment)) == 2


def test_access_only_once_fully_paid(billing_app, client, db, sandbox, host):
    _deposit_offer(db, access="full")
    _pay_deposit(client, sandbox)
    purchase, invoice, request = _rows(db)
    assert purchase.status == "paid" and host.calls == [] and invoice.amount_remaining == 3493
    _pay_from_link(client, sandbox, _last_link(billing_app))
    sandbox.state.wait_for_deliveries(10)
    purchase, invoice, _request = _rows(db)
    assert invoice.status == "paid" and host.calls == [("enroll", "u1", "c1")]


def test_overdue_balance_suspends_access_and_paying_restores_it(billing_app, client, db, sandbox, host, signals):
    _deposit_offer(db, days=10)
    _pay_deposit(client, sandbox)
    purchase, _invoice, _request = _rows(db)
    # Within the grace period (7 days by default): nothing happens.
    report = tasks.send_due_reminders(billing_app, now=utcnow() + timedelta(days=15))
    assert report.suspended == 0 and host.calls == [("enroll", "u1", "c1")]
    report = tasks.send_due_reminders(billing_app, now=utcnow() + timedelta(days=18))
    again = tasks.send_due_reminders(billing_app, now=utcnow() + timedelta(days=19))
    assert (report.suspended, again.suspended) == (1, 0)
    assert host.calls == [("enroll", "u1", "c1"), ("unenroll", "u1", "c1")]
    assert [s["reason"] for s in signals["access_revoked"]] == ["balance_overdue"]
    purchase, invoice, request = _rows(db)
    assert purchase.status == "paid" and invoice.status == "open" and request.status == "open"  # nothing deleted
    assert not enrollment.has_paid(db.session, "u1", "c1")  # the enrollment gate refuses meanwhile

    _pay_from_link(client, sandbox, _last_link(billing_app))
    sandbox.state.wait_for_deliveries(10)
    purchase, invoice, _request = _rows(db)
    assert invoice.status == "paid" and host.calls[-1] == ("enroll", "u1", "c1")
    suspension = db.session.scalar(select(Suspension))
    assert suspension.restored_at is not None
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)
                             .where(AuditEntry.action == "access_restored")) == 1
    assert len(signals["access_restored"]) == 1


def _counts(db, sandbox, purchase):
    db.session.expire_all()
    ours = (db.session.scalar(select(func.count()).select_from(Invoice)),
            db.session.scalar(select(func.count()).select_from(PaymentRequest)),
            db.session.scalar(select(func.count()).select_from(Message)),
            db.session.scalar(select(func.count()).select_from(InvoicePayment)))
    theirs = (len(sandbox.state.all("invoice")),
              len([p for p in sandbox.state.all("invoice_payment") if not p["is_default"]]))
    return ours, theirs


def test_a_replayed_deposit_event_creates_nothing_twice(billing_app, client, db, sandbox, host):
    _deposit_offer(db)
    session_id = _pay_deposit(client, sandbox)
    purchase, _invoice, _request = _rows(db)
    before = _counts(db, sandbox, purchase)
    assert before == ((1, 1, 1, 1), (1, 1))
    completed = [e for e in sandbox.state.all("event") if e["type"] == "checkout.session.completed"]
    assert len(completed) == 1
    requests.post(f"{sandbox.url}/_sandbox/events/{completed[0]['id']}/resend", timeout=5)
    sandbox.state.wait_for_deliveries(10)
    client.get(f"/payments/checkout/success?session_id={session_id}", headers={"X-User": "u1"})  # the return too
    with billing_app.app_context():
        deposits.issue(billing_app.extensions["lms_stripe"], purchase.id)  # and the follow-up run again
    assert _counts(db, sandbox, purchase) == before
    assert host.calls == [("enroll", "u1", "c1")]


def test_a_crash_before_the_deposit_is_attached_is_finished_by_reconcile(billing_app, client, db, sandbox):
    _deposit_offer(db)
    fault(sandbox, "/v1/invoices/*/attach_payment", "500", times=5)
    _pay_deposit(client, sandbox)
    purchase, invoice, request = _rows(db)
    assert invoice.status == "open" and invoice.amount_paid == 0 and request is None  # cut short
    requests.delete(f"{sandbox.url}/_sandbox/faults", timeout=5)
    with billing_app.app_context():
        report = reconcile(billing_app.extensions["lms_stripe"], since=utcnow() - timedelta(hours=1))
    assert [f.kind for f in report.findings if f.kind == "deposit"] == ["deposit"]
    sandbox.state.wait_for_deliveries(10)
    purchase, invoice, request = _rows(db)
    assert (invoice.amount_paid, invoice.amount_remaining, request.amount) == (1497, 3493, 3493)
    assert _counts(db, sandbox, purchase) == ((1, 1, 1, 1), (1, 1))


def test_cancelling_a_deposit_refunds_what_was_paid_with_a_credit_note(billing_app, client, db, sandbox, host):
    _deposit_offer(db)
    _pay_deposit(client, sandbox)
    _purchase, invoice, _request = _rows(db)
    path = f"/payments/admin/invoices/{invoice.id}/cancel"
    response = client.post(path, data={"csrf_token": csrf(client, "adm", path), "reason": "Changed plans"},
                           headers={"X-User": "adm"})
    assert response.status_code == 302, response.get_data(as_text=True)
    sandbox.state.wait_for_deliveries(10)
    purchase, invoice, request = _rows(db)
    note = sandbox.state.get(invoice.credit_note_id)
    assert (note["amount"], note["pre_payment_amount"], note["post_payment_amount"]) == (4990, 3493, 1497)
    assert invoice.status == "cancelled" and invoice.amount_refunded == 1497 and invoice.credit_note_number
    assert purchase.status == "cancelled" and purchase.balance_paid_at is None and request.status == "cancelled"
    assert host.calls == [("enroll", "u1", "c1"), ("unenroll", "u1", "c1")]


def test_a_balance_paid_in_part_by_the_learners_credit_counts_as_paid(billing_app, client, db, sandbox, host):
    """The learner's prepaid credit is applied by Stripe when the deposit's invoice is finalized: what the card
    and the credit paid together settles the invoice, and the balance counts as paid (no suspension due)."""
    payment_settings.save(db.session, {"prepaid_enabled": True, "topup_minimum": 1000}, actor_id="adm")
    db.session.commit()
    _top_up(client, sandbox, "10.00")
    _deposit_offer(db, access="full", days=10)
    _pay_deposit(client, sandbox)
    purchase, invoice, request = _rows(db)
    assert (invoice.gross, invoice.amount_paid, invoice.amount_remaining) == (4990, 1497, 2493)
    assert request.amount == 2493 and host.calls == []
    _pay_from_link(client, sandbox, _last_link(billing_app))
    sandbox.state.wait_for_deliveries(10)
    purchase, invoice, request = _rows(db)
    assert (invoice.status, invoice.amount_remaining, request.status) == ("paid", 0, "paid")
    assert purchase.balance_paid_at is not None and host.calls == [("enroll", "u1", "c1")]
    assert deposits.overdue(db.session, now=utcnow() + timedelta(days=30), grace_days=7) == []
    assert db.session.scalar(select(Balance.amount)) == 0


def _reconcile_deposits(billing_app) -> list[str]:
    with billing_app.app_context():
        report = reconcile(billing_app.extensions["lms_stripe"], since=utcnow() - timedelta(hours=1))
    return [f.kind for f in report.findings if f.kind == "deposit"]


def _deposit_unattached(db, sandbox, client):
    """A deposit paid, its attaching cut short (Stripe unreachable): the invoice is open, owing the full price."""
    _deposit_offer(db)
    fault(sandbox, "/v1/invoices/*/attach_payment", "500", times=5)
    _pay_deposit(client, sandbox)
    requests.delete(f"{sandbox.url}/_sandbox/faults", timeout=5)
    purchase, invoice, request = _rows(db)
    assert (invoice.status, invoice.amount_paid, invoice.amount_remaining, request) == ("open", 0, 4990, None)
    return purchase, invoice


def _deposit_mail(db) -> tuple[str, str]:
    db.session.expire_all()
    message = db.session.scalars(select(Message).where(
        Message.idempotency_key.like("purchase-%-deposit-on-balance"))).one()
    body, _html = messages.content(message)
    return message.subject, body


def test_a_deposit_whose_invoice_was_voided_before_it_was_attached_goes_on_the_balance(billing_app, client, db,
                                                                                       sandbox, host):
    """The sale is undone: the purchase is closed, the access the deposit gave removed, and the deposit goes on the
    learner's balance, from the invoice's event."""
    purchase, invoice = _deposit_unattached(db, sandbox, client)
    state = billing_app.extensions["lms_stripe"]
    state.gateway.void_invoice(invoice.stripe_invoice_id, api_key="sk_test_sandbox_e2e", idempotency_key="dashboard")
    sandbox.state.wait_for_deliveries(10)

    purchase, invoice, request = _rows(db)
    assert (invoice.status, purchase.status, request, invoice.amount_paid) == ("void", "cancelled", None, 0)
    assert host.calls == [("enroll", "u1", "c1"), ("unenroll", "u1", "c1")]
    topup = db.session.scalar(select(TopUp))
    assert (topup.amount, topup.status, topup.purchase_id, topup.stripe_payment_intent_id) == \
        (1497, "paid", purchase.id, purchase.stripe_payment_intent_id)
    assert balances.available(db.session, "u1", "EUR").amount == 1497
    assert invoice.number in db.session.scalar(select(BalanceEntry.reason))
    subject, body = _deposit_mail(db)
    assert "14.97" in subject and invoice.number in body and "cancelled" in body
    assert _reconcile_deposits(billing_app) == []  # explained: nothing left to do
    page = client.get("/payments/admin/audit", headers={"X-User": "adm"}).get_data(as_text=True)
    assert "The deposit of €14.97 paid by" in page and f"its invoice {invoice.number} no longer owed it" in page
    assert f"was closed: its invoice {invoice.number} was voided" in page


def test_a_deposit_whose_invoice_was_voided_while_its_events_were_lost_is_finished_by_reconcile(
        billing_app, client, db, sandbox, host, sink):
    _purchase, invoice = _deposit_unattached(db, sandbox, client)
    sink.drop = True
    state = billing_app.extensions["lms_stripe"]
    state.gateway.void_invoice(invoice.stripe_invoice_id, api_key="sk_test_sandbox_e2e", idempotency_key="dashboard")
    sandbox.state.wait_for_deliveries(10)
    assert _rows(db)[0].status == "paid"
    sink.drop = False
    _reconcile_deposits(billing_app)  # the invoice voided, then (once that commits) the deposit on the balance
    sandbox.state.wait_for_deliveries(10)
    purchase, invoice, _request = _rows(db)
    assert (invoice.status, purchase.status) == ("void", "cancelled")
    assert balances.available(db.session, "u1", "EUR").amount == 1497
    assert _reconcile_deposits(billing_app) == []


def test_a_deposit_whose_invoice_was_paid_otherwise_before_it_was_attached_goes_on_the_balance(billing_app, client,
                                                                                               db, sandbox, host):
    purchase, invoice = _deposit_unattached(db, sandbox, client)
    response = requests.post(f"{sandbox.url}/_sandbox/invoices/{invoice.stripe_invoice_id}/pay",
                             json={"method": "card"}, timeout=10)
    assert response.status_code == 200, response.text
    sandbox.state.wait_for_deliveries(10)
    purchase, invoice, _request = _rows(db)
    assert (invoice.status, invoice.amount_paid, purchase.balance_paid_at is not None) == ("paid", 4990, True)

    assert _reconcile_deposits(billing_app) == ["deposit"]
    sandbox.state.wait_for_deliveries(10)
    purchase, invoice, request = _rows(db)
    assert request is None and (invoice.status, invoice.amount_paid) == ("paid", 4990)
    assert balances.available(db.session, "u1", "EUR").amount == 1497
    assert db.session.scalar(select(TopUp.purchase_id)) == purchase.id
    _subject, body = _deposit_mail(db)
    assert "paid in the meantime" in body
    assert _reconcile_deposits(billing_app) == []
    with billing_app.app_context():  # run again, it credits nothing twice
        deposits.issue(billing_app.extensions["lms_stripe"], purchase.id)
    assert db.session.scalar(select(func.count()).select_from(TopUp)) == 1
    assert balances.available(db.session, "u1", "EUR").amount == 1497


def test_a_deposit_attached_whose_record_was_lost_is_not_put_on_the_balance(billing_app, client, db, sandbox, host):
    """Stripe attached the deposit but its answer never reached us, and a day later the key is forgotten: the
    attaching again is refused ("already attached"), which is read as attached, not as a deposit the invoice no
    longer owes."""
    _deposit_offer(db)
    fault(sandbox, "/v1/invoices/*/attach_payment", "500", after=True)
    _pay_deposit(client, sandbox)
    purchase, invoice, request = _rows(db)
    assert request is None
    db.session.execute(delete(InvoicePayment))  # our record of the attaching lost
    db.session.commit()
    requests.post(f"{sandbox.url}/_sandbox/clock/advance", json={"seconds": 25 * 3600}, timeout=5)

    assert _reconcile_deposits(billing_app) == ["deposit"]
    sandbox.state.wait_for_deliveries(10)
    purchase, invoice, request = _rows(db)
    assert (invoice.amount_paid, invoice.amount_remaining, request.amount) == (1497, 3493, 3493)
    assert db.session.scalar(select(TopUp)) is None and balances.available(db.session, "u1", "EUR").amount == 0
    assert _reconcile_deposits(billing_app) == []


def test_a_deposit_not_credited_to_its_invoice_yet_cannot_be_cancelled_until_it_is(billing_app, client, db, sandbox,
                                                                                    host):
    """Its credit note would refund nothing of the deposit (Stripe refunds what is attached to the invoice): the
    cancellation is refused with a reason, and once reconcile has attached the deposit it refunds it."""
    _purchase, invoice = _deposit_unattached(db, sandbox, client)
    path = f"/payments/admin/invoices/{invoice.id}/cancel"
    assert 'name="reason"' not in client.get(path, headers={"X-User": "adm"}).get_data(as_text=True)  # no form
    response = client.post(path, data={"csrf_token": csrf(client, "adm", "/payments/admin/balances/u1"),
                                       "reason": "Changed plans"},
                           headers={"X-User": "adm"})
    assert response.status_code == 409
    assert "The deposit is not credited to this invoice yet" in response.get_data(as_text=True)
    assert sandbox.state.all("credit_note") == []

    assert _reconcile_deposits(billing_app) == ["deposit"]
    sandbox.state.wait_for_deliveries(10)
    assert _rows(db)[1].amount_paid == 1497
    response = client.post(path, data={"csrf_token": csrf(client, "adm", path), "reason": "Changed plans"},
                           headers={"X-User": "adm"})
    assert response.status_code == 302, response.get_data(as_text=True)
    sandbox.state.wait_for_deliveries(10)
    purchase, invoice, _request = _rows(db)
    assert (invoice.status, invoice.amount_refunded, purchase.status) == ("cancelled", 1497, "cancelled")


def test_a_deposit_on_the_balance_refunded_from_it_is_not_a_refund_of_the_course(billing_app, client, db, sandbox,
                                                                                 host):
    """The top-up's refund is of the deposit's payment, which is also the purchase's: its events are the
    balance's (the top-up's metadata), not a refund of the course made in the Dashboard (no credit note, access
    kept, nothing counted refunded on the purchase)."""
    _purchase, invoice = _deposit_unattached(db, sandbox, client)
    state = billing_app.extensions["lms_stripe"]
    state.gateway.void_invoice(invoice.stripe_invoice_id, api_key="sk_test_sandbox_e2e", idempotency_key="dashboard")
    sandbox.state.wait_for_deliveries(10)
    topup = db.session.scalar(select(TopUp))

    response = refund_topup_from_balance_page(client, topup.id)
    assert response.status_code == 303
    sandbox.state.wait_for_deliveries(10)
    purchase, invoice, _request = _rows(db)
    topup = db.session.get(TopUp, topup.id)
    assert topup.status == "refunded" and balances.available(db.session, "u1", "EUR").amount == 0
    assert sandbox.state.get(topup.stripe_refund_id)["amount"] == 1497
    assert db.session.scalar(select(func.count()).select_from(Refund)) == 0
    assert (purchase.status, purchase.amount_refunded, invoice.status) == ("cancelled", 0, "void")
    assert sandbox.state.all("credit_note") == [] and host.calls.count(("unenroll", "u1", "c1")) == 1  # the void's
    with billing_app.app_context():
        assert reconcile(state, since=utcnow() - timedelta(hours=1)).findings == []

    # The refund fails: the deposit is back on the balance, still not a refund of the course.
    failed = requests.post(f"{sandbox.url}/_sandbox/refunds/{topup.stripe_refund_id}/fail", json={}, timeout=5)
    assert failed.status_code == 200, failed.text
    sandbox.state.wait_for_deliveries(10)
    purchase, invoice, _request = _rows(db)
    assert db.session.get(TopUp, topup.id).status == "paid"
    assert balances.available(db.session, "u1", "EUR").amount == 1497
    assert db.session.scalar(select(func.count()).select_from(Refund)) == 0
    assert (purchase.status, purchase.amount_refunded, invoice.status) == ("cancelled", 0, "void")


def test_a_deposit_on_the_balance_refunded_in_the_dashboard_is_taken_off_the_balance(billing_app, client, db,
                                                                                     sandbox, host):
    """Its payment is the purchase's, but the deposit is the balance's now: the refund takes it off the balance,
    and is no refund of the course (no credit note on the invoice, which would refund it a second time)."""
    _purchase, invoice = _deposit_unattached(db, sandbox, client)
    response = requests.post(f"{sandbox.url}/_sandbox/invoices/{invoice.stripe_invoice_id}/pay",
                             json={"method": "card"}, timeout=10)
    assert response.status_code == 200, response.text
    sandbox.state.wait_for_deliveries(10)
    assert _reconcile_deposits(billing_app) == ["deposit"]
    sandbox.state.wait_for_deliveries(10)
    purchase, invoice, _request = _rows(db)
    assert balances.available(db.session, "u1", "EUR").amount == 1497

    charge = next(c for c in sandbox.state.all("charge") if c["payment_intent"] == purchase.stripe_payment_intent_id)
    response = requests.post(f"{sandbox.url}/_sandbox/charges/{charge['id']}/refund", json={}, timeout=5)
    assert response.status_code in (200, 201), response.text
    sandbox.state.wait_for_deliveries(10)
    purchase, invoice, _request = _rows(db)
    assert balances.available(db.session, "u1", "EUR").amount == 0
    assert db.session.scalar(select(TopUp.status)) == "refunded"
    assert db.session.scalar(select(func.count()).select_from(Refund)) == 0
    assert (invoice.status, invoice.amount_refunded, purchase.status) == ("paid", 0, "paid")
    assert sandbox.state.all("credit_note") == []
    with billing_app.app_context():
        assert reconcile(billing_app.extensions["lms_stripe"], since=utcnow() - timedelta(hours=1)).findings == []


def test_a_dispute_of_a_deposit_on_the_balance_is_the_top_ups_and_keeps_the_course_paid_otherwise(
        billing_app, client, db, sandbox, host):
    from lms_stripe_plugin.core.models import Dispute

    _purchase, invoice = _deposit_unattached(db, sandbox, client)
    response = requests.post(f"{sandbox.url}/_sandbox/invoices/{invoice.stripe_invoice_id}/pay",
                             json={"method": "card"}, timeout=10)
    assert response.status_code == 200, response.text
    sandbox.state.wait_for_deliveries(10)
    _reconcile_deposits(billing_app)
    sandbox.state.wait_for_deliveries(10)
    purchase, _invoice, _request = _rows(db)
    charge = next(c for c in sandbox.state.all("charge") if c["payment_intent"] == purchase.stripe_payment_intent_id)
    assert requests.post(f"{sandbox.url}/_sandbox/charges/{charge['id']}/dispute", timeout=5).status_code in (200, 201)
    sandbox.state.wait_for_deliveries(10)
    purchase, _invoice, _request = _rows(db)
    dispute = db.session.scalar(select(Dispute))
    assert (dispute.topup_id, dispute.purchase_id) == (db.session.scalar(select(TopUp.id)), None)
    assert (purchase.status, purchase.disputed) == ("paid", False)  # the invoice was paid in full otherwise
    assert ("unenroll", "u1", "c1") not in host.calls
