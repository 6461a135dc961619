"""A settlement's part that its invoice no longer owes, end to end through the real SDK and the sandbox: the
learner opens Checkout for two invoices, pays one of them on Stripe's hosted invoice page meanwhile, then pays
the Checkout. Stripe will not attach that part's Payment Record to the invoice it no longer owes: the part's
share goes on the learner's balance (once, mirrored at Stripe: checked after every test), the learner is told
by e-mail, the other part is still credited to its invoice, and reconcile has nothing left to do. Such a
top-up, refunded while unspent, refunds its share of the Checkout payment, not the whole payment. A part
whose record Stripe attached, the answer lost, is read as attached, not put on the balance."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests
from sqlalchemy import func, select, update

from lms_stripe_plugin import messages
from lms_stripe_plugin.billing import balances, paying
from lms_stripe_plugin.core.models import (AuditEntry, BalanceEntry, Message, PaymentAttempt, PaymentRequest,
                                           RequestPart, TopUp)
from lms_stripe_plugin.sync.reconcile import reconcile

from ..conftest import as_user
from .conftest import assert_ledger_matches_stripe, fault, nothing_to_reconcile, pay, refund_topup_from_balance_page
from .test_credited_then_attached_e2e import _attach_in_dashboard
from .test_payment_requests_e2e import _invoice, _new_invoice, billing_app  # noqa: F401 (a fixture)
from .test_settlements_e2e import _choose, _session_of
from .test_unattachable_payments_e2e import _pay_hosted_invoice


def _settle_two(client, db, sandbox, paid_otherwise: str) -> tuple[int, int, str]:
    """Two invoices (€300 and €120) in one Checkout; ``paid_otherwise`` ("first", "second" or "both") of
    them paid on Stripe's hosted page while it is open; then the Checkout paid."""
    first, second = _new_invoice(client, "300.00"), _new_invoice(client, "120.00")
    session_id = _session_of(_choose(client, [first, second]))
    for invoice_id in {"first": [first], "second": [second], "both": [first, second]}[paid_otherwise]:
        _pay_hosted_invoice(sandbox, _invoice(db, invoice_id).stripe_invoice_id)
        assert _invoice(db, invoice_id).status == "paid"
    assert pay(sandbox, session_id).status_code == 200
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    return first, second, session_id


def _part(db, invoice_id: int) -> RequestPart:
    return db.session.scalar(select(RequestPart).where(RequestPart.invoice_id == invoice_id))


def _mails(db) -> list[tuple[str, str]]:
    db.session.expire_all()
    found = db.session.scalars(select(Message).where(Message.idempotency_key.like("request-part-%-on-balance"))
                               .order_by(Message.id)).all()
    return [(message.subject, messages.content(message)[0]) for message in found]


@pytest.mark.parametrize("paid_otherwise", ["first", "second"])
def test_a_part_paid_otherwise_goes_on_the_balance_and_the_other_is_credited(billing_app, client, db, sandbox,
                                                                              paid_otherwise):
    first, second, _session = _settle_two(client, db, sandbox, paid_otherwise)
    credited, attached = (first, second) if paid_otherwise == "first" else (second, first)
    amounts = {first: 30000, second: 12000}
    attempt = db.session.scalar(select(PaymentAttempt))
    # One part was credited to its invoice: the payment is (in part) on an invoice, so the attempt is attached.
    assert (attempt.status, attempt.attached_at is not None) == ("attached", True)
    for invoice_id in (first, second):
        invoice = _invoice(db, invoice_id)
        assert (invoice.status, invoice.amount_paid, invoice.amount_remaining) == ("paid", amounts[invoice_id], 0)
    assert _part(db, attached).attached_at is not None and _part(db, attached).paid_at is not None
    assert (_part(db, credited).attached_at, _part(db, credited).paid_at) == (None, None)

    topup = db.session.scalar(select(TopUp))
    assert (topup.amount, topup.status, topup.request_part_id, topup.attempt_id, topup.stripe_checkout_session_id,
            topup.stripe_payment_intent_id) == (amounts[credited], "paid", _part(db, credited).id, None, None,
                                                attempt.stripe_payment_intent_id)
    assert balances.available(db.session, "u1", "EUR").amount == amounts[credited]
    entry = db.session.scalar(select(BalanceEntry))
    number = _invoice(db, credited).number
    assert (entry.kind, entry.amount, entry.topup_id) == ("topup", amounts[credited], topup.id)
    assert number in entry.reason and "no longer owed it" in entry.reason
    # The learner paid all that was asked: the request is done, and asks nothing more (no reminder, no Pay).
    request = db.session.scalar(select(PaymentRequest))
    assert (request.status, request.amount_paid) == ("paid", 42000)
    [(subject, body)] = _mails(db)
    money = "€300.00" if credited == first else "€120.00"
    assert money in subject and "balance" in subject
    assert number in body and "paid in the meantime" in body
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "balance_topped_up")) == 1
    page = client.get("/payments/admin/audit", headers=as_user("adm")).get_data(as_text=True)
    assert "no longer owed it" in page
    nothing_to_reconcile(billing_app, db)
    # Events delivered again, and the attaching run again, write nothing twice.
    for event in sandbox.state.all("event"):
        sandbox.state.resend(event)
    sandbox.state.wait_for_deliveries(10)
    _attach_again(billing_app, db, attempt.id)
    assert db.session.scalar(select(func.count()).select_from(TopUp)) == 1
    assert db.session.scalar(select(func.count()).select_from(BalanceEntry)) == 1
    assert len(_mails(db)) == 1 and len(sandbox.state.all("payment_record")) == 2


def _attach_again(billing_app, db, attempt_id: int) -> None:
    state = billing_app.extensions["lms_stripe"]
    attempt = db.session.get(PaymentAttempt, attempt_id)
    paying.attach(state, paying.attach_plan(attempt, attempt.request))
    db.session.commit()
    db.session.expire_all()


def test_two_runs_that_both_find_the_part_refused_credit_it_once(billing_app, client, db, sandbox, monkeypatch):
    """A second run of the attaching that had not seen the part's top-up (two at once) is refused by Stripe
    too, and reads the invoice as no longer owing it: the top-up's unique part writes nothing twice."""
    _first, _second, _session = _settle_two(client, db, sandbox, "first")
    attempt = db.session.scalar(select(PaymentAttempt))
    db.session.execute(update(PaymentAttempt).values(status="paid", attached_at=None))  # as the second run found it
    db.session.commit()
    seen, on_balance = [], paying._part_on_balance

    def not_seen_yet(session, part_id: int) -> bool:  # the second run read the part before the first wrote it
        seen.append(part_id)
        return False if len(seen) == 1 else on_balance(session, part_id)

    monkeypatch.setattr(paying, "_part_on_balance", not_seen_yet)
    _attach_again(billing_app, db, attempt.id)
    assert db.session.scalar(select(func.count()).select_from(TopUp)) == 1
    assert db.session.scalar(select(func.count()).select_from(BalanceEntry)) == 1
    assert balances.available(db.session, "u1", "EUR").amount == 30000
    request = db.session.scalar(select(PaymentRequest))
    assert (request.status, request.amount_paid) == ("paid", 42000)
    assert len(_mails(db)) == 1 and db.session.get(PaymentAttempt, attempt.id).status == "attached"


def test_both_parts_paid_otherwise_put_the_whole_payment_on_the_balance(billing_app, client, db, sandbox):
    first, second, _session = _settle_two(client, db, sandbox, "both")
    attempt = db.session.scalar(select(PaymentAttempt))
    assert (attempt.status, attempt.attached_at) == ("credited", None)  # on no invoice at all
    topups = db.session.scalars(select(TopUp).order_by(TopUp.amount)).all()
    assert [(t.amount, t.request_part_id) for t in topups] == [(12000, _part(db, second).id),
                                                               (30000, _part(db, first).id)]
    assert balances.available(db.session, "u1", "EUR").amount == 42000
    assert len(_mails(db)) == 2
    assert db.session.scalar(select(PaymentRequest)).status == "paid"
    nothing_to_reconcile(billing_app, db)


def test_a_parts_top_up_refunded_refunds_its_share_of_the_payment(billing_app, client, db, sandbox):
    _first, _second, _session = _settle_two(client, db, sandbox, "first")
    topup = db.session.scalar(select(TopUp))
    response = refund_topup_from_balance_page(client, topup.id)
    assert response.status_code == 303
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    assert (db.session.get(TopUp, topup.id).status, balances.available(db.session, "u1", "EUR").amount) == (
        "refunded", 0)
    intent = db.session.scalar(select(PaymentAttempt)).stripe_payment_intent_id
    assert [(r["amount"], r["payment_intent"]) for r in sandbox.state.all("refund")] == [(30000, intent)]


def test_a_part_attached_whose_answer_was_lost_is_not_put_on_the_balance(billing_app, client, db, sandbox,
                                                                         monkeypatch):
    """Stripe attached the second part's record, but its answer never reached us (a 500 that the key keeps), and
    a day later the key is forgotten: attaching again is refused (the invoice is paid), and the record found
    attached is read as attached."""
    first, second = _new_invoice(client, "30.00"), _new_invoice(client, "20.00")
    session_id = _session_of(_choose(client, [first, second]))
    fault(sandbox, f"/v1/invoices/{_invoice(db, second).stripe_invoice_id}/attach_payment", "500", after=True)
    pay(sandbox, session_id)
    sandbox.state.wait_for_deliveries(10)
    assert [_invoice(db, i).status for i in (first, second)] == ["paid", "paid"]
    db.session.expire_all()
    assert db.session.scalar(select(PaymentAttempt)).status == "paid"
    requests.post(f"{sandbox.url}/_sandbox/clock/advance", json={"seconds": 25 * 3600}, timeout=5)

    monkeypatch.setattr("lms_stripe_plugin.sync.reconcile.ATTACH_GRACE", timedelta(0))
    state = billing_app.extensions["lms_stripe"]
    report = reconcile(state, since=datetime.now(timezone.utc) - timedelta(hours=1))
    assert [(f.kind, f.repaired, f.error) for f in report.findings] == [("attempt", True, None)]
    db.session.expire_all()
    assert db.session.scalar(select(PaymentAttempt)).status == "attached"
    assert _part(db, second).attached_at is not None
    assert db.session.scalar(select(TopUp)) is None and balances.available(db.session, "u1", "EUR").amount == 0
    assert db.session.scalar(select(PaymentRequest)).amount_paid == 5000


def test_a_settlement_all_on_the_balance_then_attached_in_the_dashboard_is_taken_off_it(billing_app, client, db,
                                                                                       sandbox):
    third = _new_invoice(client, "500.00")  # open before the credit: none of it applied
    _first, _second, _session = _settle_two(client, db, sandbox, "both")
    attempt = db.session.scalar(select(PaymentAttempt))
    assert balances.available(db.session, "u1", "EUR").amount == 42000
    _attach_in_dashboard(billing_app, db, sandbox, attempt, third)
    assert _invoice(db, third).amount_remaining == 8000
    assert balances.available(db.session, "u1", "EUR").amount == 0  # both parts' top-ups taken, in one entry
    assert [t.status for t in db.session.scalars(select(TopUp))] == ["attached", "attached"]
    assert db.session.scalars(select(BalanceEntry.amount).where(BalanceEntry.kind == "attached")).all() == [-42000]
    assert_ledger_matches_stripe(db, sandbox)
