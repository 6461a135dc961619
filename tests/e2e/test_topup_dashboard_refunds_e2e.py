"""A top-up's payment refunded in the Stripe Dashboard, end to end through the real SDK and the sandbox: the
money went back to the learner, so the credit is taken off their balance (mirrored at Stripe, checked after
every test), once whatever the number of the refund's events; what they spent of it meanwhile is said to the
school in the audit log. A refund the plugin made itself (from the balance page) is not taken twice."""
from __future__ import annotations

import requests
from sqlalchemy import select

from lms_stripe_plugin.billing import balances
from lms_stripe_plugin.core.models import AuditEntry, BalanceEntry, TopUp

from ..conftest import as_user
from .conftest import refund_topup_from_balance_page, repaired_by_reconcile
from .test_balance_e2e import _pay_from_balance, _top_up, prepaid_app  # noqa: F401 (a fixture)


def _refund_in_dashboard(sandbox, topup: TopUp, amount: int | None = None) -> None:
    charge = next(c for c in sandbox.state.all("charge") if c["payment_intent"] == topup.stripe_payment_intent_id)
    body = {"amount": amount} if amount is not None else {}
    response = requests.post(f"{sandbox.url}/_sandbox/charges/{charge['id']}/refund", json=body, timeout=5)
    assert response.status_code in (200, 201), response.text
    sandbox.state.wait_for_deliveries(10)


def test_a_top_up_refunded_in_the_dashboard_is_taken_off_the_balance(prepaid_app, client, db, sandbox):
    _top_up(client, sandbox, "30.00")
    topup = db.session.scalar(select(TopUp))
    _refund_in_dashboard(sandbox, topup)
    db.session.expire_all()
    topup = db.session.get(TopUp, topup.id)
    assert (topup.status, topup.stripe_refund_id is not None) == ("refunded", True)
    assert balances.available(db.session, "u1", "EUR").amount == 0
    entry = db.session.scalar(select(BalanceEntry).where(BalanceEntry.kind == "topup_refund"))
    assert (entry.amount, entry.topup_id) == (-3000, topup.id)
    page = client.get("/payments/admin/audit", headers=as_user("adm")).get_data(as_text=True)
    assert "was refunded in the Stripe Dashboard" in page


def test_a_top_up_partly_spent_then_refunded_in_the_dashboard_takes_what_is_left(prepaid_app, client, db,
                                                                                   sandbox):
    _top_up(client, sandbox, "60.00")
    assert _pay_from_balance(client).status_code == 303  # 49.90 of it spent on the course
    topup = db.session.scalar(select(TopUp))
    _refund_in_dashboard(sandbox, topup)
    db.session.expire_all()
    assert balances.available(db.session, "u1", "EUR").amount == 0
    assert db.session.get(TopUp, topup.id).status == "refunded"
    shortfall = [e for e in db.session.scalars(select(AuditEntry).where(AuditEntry.action == "topup_refunded"))]
    assert len(shortfall) == 1 and '"spent": 4990' in shortfall[0].details
    page = client.get("/payments/admin/audit", headers=as_user("adm")).get_data(as_text=True)
    assert "€49.90 of it was spent" in page


def test_a_partial_refund_in_the_dashboard_takes_that_part_and_the_rest_stays(prepaid_app, client, db, sandbox):
    _top_up(client, sandbox, "30.00")
    topup = db.session.scalar(select(TopUp))
    _refund_in_dashboard(sandbox, topup, amount=1000)
    db.session.expire_all()
    assert balances.available(db.session, "u1", "EUR").amount == 2000
    assert db.session.get(TopUp, topup.id).status == "paid"  # the rest stays on the balance, spendable
    response = refund_topup_from_balance_page(client, topup.id, follow_redirects=True)
    assert "refund the rest there" in response.get_data(as_text=True)  # not the whole top-up again from here
    db.session.expire_all()
    assert balances.available(db.session, "u1", "EUR").amount == 2000
    assert len([r for r in sandbox.state.all("refund") if r["payment_intent"] == topup.stripe_payment_intent_id]) == 1


def test_a_top_up_refunded_from_the_balance_page_is_taken_once(prepaid_app, client, db, sandbox):
    _top_up(client, sandbox, "30.00")
    topup = db.session.scalar(select(TopUp))
    response = refund_topup_from_balance_page(client, topup.id)
    assert response.status_code == 303
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    assert balances.available(db.session, "u1", "EUR").amount == 0
    assert [e.amount for e in db.session.scalars(select(BalanceEntry).order_by(BalanceEntry.id))] == [3000, -3000]


def test_a_dispute_of_a_top_ups_payment_is_recorded_and_said_to_the_school(prepaid_app, client, db, sandbox):
    from lms_stripe_plugin.core.models import Dispute

    _top_up(client, sandbox, "30.00")
    topup = db.session.scalar(select(TopUp))
    charge = next(c for c in sandbox.state.all("charge") if c["payment_intent"] == topup.stripe_payment_intent_id)
    assert requests.post(f"{sandbox.url}/_sandbox/charges/{charge['id']}/dispute", timeout=5).status_code in (200, 201)
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    dispute = db.session.scalar(select(Dispute))
    assert (dispute.topup_id, dispute.attempt_id, dispute.purchase_id, dispute.amount) == (topup.id, None, None, 3000)
    page = client.get("/payments/admin/audit", headers=as_user("adm")).get_data(as_text=True)
    assert "disputed their top-up of €30.00, which is still on their balance" in page


def test_a_dashboard_refund_whose_events_were_lost_is_taken_by_reconcile(prepaid_app, client, db, sandbox, sink):
    _top_up(client, sandbox, "30.00")
    topup = db.session.scalar(select(TopUp))
    sink.drop = True
    _refund_in_dashboard(sandbox, topup)
    assert balances.available(db.session, "u1", "EUR").amount == 3000
    repaired_by_reconcile(prepaid_app, db, "refund not taken off the balance")
    assert balances.available(db.session, "u1", "EUR").amount == 0


def test_a_top_up_all_spent_then_refunded_in_the_dashboard_is_said_once(prepaid_app, client, db, sandbox):
    from datetime import datetime, timedelta, timezone

    from lms_stripe_plugin.sync.reconcile import reconcile

    _top_up(client, sandbox, "49.90")
    assert _pay_from_balance(client).status_code == 303  # all of it spent on the course
    topup = db.session.scalar(select(TopUp))
    _refund_in_dashboard(sandbox, topup)
    db.session.expire_all()
    assert balances.available(db.session, "u1", "EUR").amount == 0
    said = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "topup_refunded")).all()
    assert len(said) == 1 and '"spent": 4990' in said[0].details
    state = prepaid_app.extensions["lms_stripe"]
    assert [f for f in reconcile(state, since=datetime.now(timezone.utc) - timedelta(hours=1)).findings
            if f.kind == "refund"] == []
