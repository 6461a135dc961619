"""`flask lms-stripe reconcile`: what lost webhooks and crashes between Stripe's answer and our commit
left behind is found from Stripe's lists and repaired; a dry run changes nothing."""
import re
from datetime import datetime, timezone

import requests
from sqlalchemy import func, select

from lms_stripe_plugin.accounts import settings as payment_settings
from lms_stripe_plugin.core.models import BalanceEntry, Dispute, Invoice, Purchase, Refund, TopUp
from lms_stripe_plugin.sync.reconcile import reconcile

from ..conftest import as_user
from .conftest import csrf, fault, pay, start_checkout

SINCE = "2000-01-01"


def _run(app, *args):
    result = app.test_cli_runner().invoke(args=["lms-stripe", "reconcile", "--since", SINCE, *args])
    return result


def _state(db):
    db.session.expire_all()
    return (db.session.scalar(select(Purchase.status)), db.session.scalar(select(func.count()).select_from(Invoice)))


def test_lost_webhooks_dry_run_then_repair_then_nothing_left(stripe_app, client, db, sandbox, sink, host):
    sink.drop = True
    _response, session_id = start_checkout(client, "u1", "c1")
    pay(sandbox, session_id)
    assert _state(db) == ("open", 0)
    dry = _run(stripe_app, "--dry-run")
    assert dry.exit_code == 0 and "paid at Stripe, open here" in dry.output and "would repair" in dry.output
    assert _state(db) == ("open", 0) and host.calls == []
    repaired = _run(stripe_app)
    assert repaired.exit_code == 0 and "repaired" in repaired.output, repaired.output
    assert _state(db) == ("paid", 1) and host.calls == [("enroll", "u1", "c1")]
    again = _run(stripe_app)
    assert "0 finding(s)" in again.output and host.calls == [("enroll", "u1", "c1")]


def test_session_created_but_never_recorded_is_linked(stripe_app, client, db, sandbox):
    fault(sandbox, "/v1/checkout/sessions", "timeout", timeout_seconds=4, after=True)
    start_checkout(client, "u1", "c1")
    assert db.session.scalar(select(Purchase.stripe_checkout_session_id)) is None
    report = reconcile(stripe_app.extensions["lms_stripe"], since=datetime(2000, 1, 1, tzinfo=timezone.utc))
    assert [f.problem for f in report.findings] == ["session not recorded on its purchase"]
    db.session.expire_all()
    assert db.session.scalar(select(Purchase.stripe_checkout_session_id)).startswith("cs_")


def test_cancel_whose_answer_and_webhooks_were_lost_is_completed(stripe_app, client, db, sandbox, sink, host):
    _response, session_id = start_checkout(client, "u1", "c1")
    pay(sandbox, session_id)
    invoice = db.session.scalar(select(Invoice))
    token = csrf(client, "adm", f"/payments/admin/invoices/{invoice.id}/cancel")
    sink.drop = True
    fault(sandbox, "/v1/credit_notes", "timeout", timeout_seconds=4, after=True)
    client.post(f"/payments/admin/invoices/{invoice.id}/cancel", data={"csrf_token": token}, headers=as_user("adm"))
    db.session.expire_all()
    assert db.session.get(Invoice, invoice.id).status == "paid"
    result = _run(stripe_app)
    assert "refund not recorded" in result.output and result.exit_code == 0, result.output
    db.session.expire_all()
    assert db.session.get(Invoice, invoice.id).status == "cancelled"
    assert db.session.scalar(select(func.count()).select_from(Refund)) == 1  # matched to the admin's request
    assert host.calls.count(("unenroll", "u1", "c1")) == 1


def test_dashboard_refund_and_dispute_with_lost_webhooks(stripe_app, client, db, sandbox, sink):
    _response, session_id = start_checkout(client, "u1", "c1")
    pay(sandbox, session_id)
    sink.drop = True
    charge = sandbox.state.all("charge")[0]["id"]
    requests.post(f"{sandbox.url}/_sandbox/charges/{charge}/refund", json={"amount": 990}, timeout=5)
    requests.post(f"{sandbox.url}/_sandbox/charges/{charge}/dispute", timeout=5)
    sandbox.state.wait_for_deliveries(10)
    result = _run(stripe_app)
    assert "refund not recorded" in result.output and "dispute not recorded" in result.output
    db.session.expire_all()
    assert db.session.scalar(select(Invoice.amount_refunded)) == 990
    assert db.session.scalar(select(func.count()).select_from(Dispute)) == 1
    assert db.session.scalar(select(Purchase.disputed)) is True
    assert "0 finding(s)" in _run(stripe_app).output


def test_default_period_and_bad_date(stripe_app):
    assert _run(stripe_app).exit_code == 0
    bad = stripe_app.test_cli_runner().invoke(args=["lms-stripe", "reconcile", "--since", "yesterday"])
    assert bad.exit_code == 2 and "since" in bad.output.lower()


def test_events_replay_handles_failed_events_again(stripe_app, client, db, sandbox, sink):
    """The one checkout event whose handler reads Stripe (a delayed payment that failed: its reason) fails
    while Stripe is down, through all of Stripe's retries; the replay handles it once Stripe is back."""
    _response, session_id = start_checkout(client, "u1", "c1")
    pay(sandbox, session_id, method="sepa_debit", iban="DE62370400440532013001")
    assert _state(db)[0] == "processing"
    fault(sandbox, f"/v1/checkout/sessions/{session_id}", "500", method="GET", times=20)
    requests.post(f"{sandbox.url}/_sandbox/checkout/sessions/{session_id}/settle", json={"outcome": "failed"},
                  timeout=5)
    sandbox.state.wait_for_deliveries(15)
    assert _state(db)[0] == "processing"
    requests.delete(f"{sandbox.url}/_sandbox/faults", timeout=5)
    result = stripe_app.test_cli_runner().invoke(args=["lms-stripe", "events", "replay"])
    assert "1 replayed, 0 still failing" in result.output, result.output
    assert _state(db) == ("failed", 0)


def test_balance_movements_not_at_stripe_and_top_up_refunds_half_done_are_finished(stripe_app, client, db, sandbox):
    """An administrator's credit whose copy to the Stripe customer's balance failed, and a top-up taken off the
    balance whose payment's refund failed: reconciliation reports them, then finishes each once."""
    payment_settings.save(db.session, {"prepaid_enabled": True, "topup_minimum": 1000, "topup_maximum": 50000},
                          actor_id="adm")
    db.session.commit()
    response = client.post("/payments/my-payments/top-up", headers=as_user("u1"),
                           data={"csrf_token": csrf(client, "u1", "/payments/my-payments"), "amount": "30.00"})
    pay(sandbox, response.headers["Location"].rstrip("/").split("/")[-1])
    topup = db.session.scalar(select(TopUp))
    fault(sandbox, "/v1/customers/*/balance_transactions", "500", times=20)
    page = client.get("/payments/admin/balances/u1", headers=as_user("adm")).get_data(as_text=True)
    form = {"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1),
            "token": re.search(r'name="token" value="([^"]+)"', page).group(1), "direction": "credit",
            "amount": "12.50", "currency": "EUR", "reason": "Geste commercial"}
    assert client.post("/payments/admin/balances/u1", headers=as_user("adm"), data=form).status_code == 303
    requests.delete(f"{sandbox.url}/_sandbox/faults", timeout=5)
    fault(sandbox, "/v1/refunds", "500", times=20)
    client.post(f"/payments/admin/balances/top-ups/{topup.id}/refund", headers=as_user("adm"),
                data={"csrf_token": form["csrf_token"]})
    requests.delete(f"{sandbox.url}/_sandbox/faults", timeout=5)
    db.session.expire_all()
    assert db.session.get(TopUp, topup.id).status == "refunding"
    assert db.session.scalar(select(func.count()).select_from(BalanceEntry).where(
        BalanceEntry.stripe_transaction_id.is_(None), BalanceEntry.kind == "credit")) == 1

    dry = _run(stripe_app, "--dry-run")
    assert "balance_entry entry " in dry.output and "on the learner's balance here, not at Stripe — would repair" \
        in dry.output, dry.output
    assert f"topup top-up {topup.id}: taken off the balance, its payment not refunded — would repair" in dry.output
    repaired = _run(stripe_app)
    assert repaired.exit_code == 0 and "NOT repaired" not in repaired.output, repaired.output
    db.session.expire_all()
    assert db.session.get(TopUp, topup.id).status == "refunded"
    assert [r["amount"] for r in sandbox.state.all("refund")] == [3000]
    assert db.session.scalar(select(func.count()).select_from(BalanceEntry).where(
        BalanceEntry.stripe_transaction_id.is_(None), BalanceEntry.kind != "spent")) == 0
    again = _run(stripe_app)
    assert "0 finding(s)" in again.output, again.output
    assert len(sandbox.state.all("customer_balance_transaction")) == 3  # top-up, credit, refund: each once
