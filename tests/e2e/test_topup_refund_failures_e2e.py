"""A top-up's refund that fails, end to end through the real SDK and the sandbox: the money never reached the
learner, so what the refund took off their balance is given back, once whatever the number of the refund's
events (or by reconcile when they were lost), mirrored at Stripe (the ledger equals the customer's credit
balance), and the top-up can be refunded again. Stripe documents refunds that fail, even after they
succeeded: "a refund can fail if the customer's bank or card issuer has been unable to process it correctly"
(docs.stripe.com/refunds#failed-refunds); the sandbox fails one with ``/_sandbox/refunds/<id>/fail``."""
from __future__ import annotations

import pytest
import requests
from sqlalchemy import select, update

from lms_stripe_plugin.billing import balances
from lms_stripe_plugin.core.models import AuditEntry, BalanceEntry, TopUp

from ..conftest import as_user
from .conftest import assert_ledger_matches_stripe, refund_topup_from_balance_page, repaired_by_reconcile
from .test_balance_e2e import _pay_from_balance, _top_up, prepaid_app  # noqa: F401 (a fixture)
from .test_topup_dashboard_refunds_e2e import _refund_in_dashboard


def _refunds(sandbox, topup: TopUp) -> list[dict]:
    """The refunds of the top-up's payment at Stripe, in the order they were made."""
    return [r for r in reversed(sandbox.state.all("refund")) if r["payment_intent"] == topup.stripe_payment_intent_id]


def _fail(sandbox, refund_id: str) -> None:
    """The refund fails at Stripe: ``refund.updated``, ``refund.failed`` and ``charge.refund.updated``."""
    response = requests.post(f"{sandbox.url}/_sandbox/refunds/{refund_id}/fail",
                             json={"reason": "expired_or_canceled_card"}, timeout=5)
    assert response.status_code == 200, response.text
    sandbox.state.wait_for_deliveries(10)


def _movements(db) -> list[tuple[str, int]]:
    db.session.expire_all()
    return [(e.kind, e.amount) for e in db.session.scalars(select(BalanceEntry).order_by(BalanceEntry.id))]


def _refunded(client, sandbox, how: str, topup: TopUp) -> None:
    if how == "balance page":
        assert refund_topup_from_balance_page(client, topup.id).status_code == 303
        sandbox.state.wait_for_deliveries(10)
    else:
        _refund_in_dashboard(sandbox, topup)


@pytest.mark.parametrize("how", ["balance page", "dashboard"])
def test_a_failed_top_up_refund_is_given_back_once_and_the_top_up_can_be_refunded_again(prepaid_app, client, db,
                                                                                         sandbox, how):
    _top_up(client, sandbox, "30.00")
    topup = db.session.scalar(select(TopUp))
    _refunded(client, sandbox, how, topup)
    assert balances.available(db.session, "u1", "EUR").amount == 0
    [refund] = _refunds(sandbox, topup)

    _fail(sandbox, refund["id"])  # three events, one give-back
    assert _movements(db) == [("topup", 3000), ("topup_refund", -3000), ("refund_failed", 3000)]
    topup = db.session.get(TopUp, topup.id)
    assert (topup.status, topup.stripe_refund_id, topup.refunded_at) == ("paid", None, None)
    assert balances.available(db.session, "u1", "EUR").amount == 3000
    assert_ledger_matches_stripe(db, sandbox)
    said = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "topup_refund_failed")).all()
    assert len(said) == 1 and refund["id"] in said[0].details
    audit = client.get("/payments/admin/audit", headers=as_user("adm")).get_data(as_text=True)
    assert "The refund of €30.00 of a top-up of" in audit and "failed: it is back on their balance" in audit
    mine = client.get("/payments/my-payments", headers=as_user("u1")).get_data(as_text=True)
    assert "Refund failed, back on the balance" in mine

    # Refunded again from the balance page: a new refund at Stripe, the balance taken once more.
    response = refund_topup_from_balance_page(client, topup.id)
    assert response.status_code == 303, response.get_data(as_text=True)
    sandbox.state.wait_for_deliveries(10)
    assert [r["status"] for r in _refunds(sandbox, topup)] == ["failed", "succeeded"]
    assert _movements(db) == [("topup", 3000), ("topup_refund", -3000), ("refund_failed", 3000),
                              ("topup_refund", -3000)]
    topup = db.session.get(TopUp, topup.id)
    assert (topup.status, topup.stripe_refund_id) == ("refunded", _refunds(sandbox, topup)[1]["id"])
    assert_ledger_matches_stripe(db, sandbox)

    # Every event delivered again, in the order Stripe sent them: nothing is written twice or undone.
    for event in sandbox.state.all("event"):
        sandbox.state.resend(event)
    sandbox.state.wait_for_deliveries(10)
    assert len(_movements(db)) == 4
    assert db.session.get(TopUp, topup.id).status == "refunded"
    assert balances.available(db.session, "u1", "EUR").amount == 0
    assert_ledger_matches_stripe(db, sandbox)


def test_a_failed_dashboard_refund_of_a_partly_spent_top_up_gives_back_what_it_took(prepaid_app, client, db,
                                                                                     sandbox, host):
    _top_up(client, sandbox, "60.00")
    assert _pay_from_balance(client).status_code == 303  # 49.90 of it spent on the course, 10.10 left
    topup = db.session.scalar(select(TopUp))
    _refund_in_dashboard(sandbox, topup)  # 60.00 refunded: the 10.10 left taken
    assert balances.available(db.session, "u1", "EUR").amount == 0
    [refund] = _refunds(sandbox, topup)
    _fail(sandbox, refund["id"])
    assert _movements(db)[-2:] == [("topup_refund", -1010), ("refund_failed", 1010)]
    assert balances.available(db.session, "u1", "EUR").amount == 1010
    assert db.session.get(TopUp, topup.id).status == "paid"
    assert_ledger_matches_stripe(db, sandbox)
    audit = client.get("/payments/admin/audit", headers=as_user("adm")).get_data(as_text=True)
    assert "failed: the €10.10 it took off their balance is back on it (the rest had been spent)" in audit
    assert "The card has expired or was cancelled." in audit
    host.locale = "fr"
    audit = client.get("/payments/admin/audit", headers=as_user("adm")).get_data(as_text=True)
    assert "a échoué : les 10,10\u00a0€ qu'il avait retirés de son solde y sont revenus" in audit.replace("&#39;", "'")
    mine = client.get("/payments/my-payments", headers=as_user("u1")).get_data(as_text=True)
    assert "Remboursement échoué, revenu sur le solde" in mine


def test_a_failed_partial_dashboard_refund_gives_back_its_part_and_the_top_up_is_refundable_again(
        prepaid_app, client, db, sandbox):
    _top_up(client, sandbox, "30.00")
    topup = db.session.scalar(select(TopUp))
    _refund_in_dashboard(sandbox, topup, amount=1000)
    [refund] = _refunds(sandbox, topup)
    _fail(sandbox, refund["id"])
    assert balances.available(db.session, "u1", "EUR").amount == 3000
    # Nothing of it went back to the learner: the whole top-up is refundable from the balance page again.
    assert refund_topup_from_balance_page(client, topup.id).status_code == 303
    sandbox.state.wait_for_deliveries(10)
    assert [(r["amount"], r["status"]) for r in _refunds(sandbox, topup)] == [(1000, "failed"), (3000, "succeeded")]
    assert balances.available(db.session, "u1", "EUR").amount == 0
    assert_ledger_matches_stripe(db, sandbox)


@pytest.mark.parametrize("how", ["balance page", "dashboard"])
def test_a_failed_top_up_refund_whose_events_were_lost_is_given_back_by_reconcile(prepaid_app, client, db, sandbox,
                                                                                   sink, how):
    _top_up(client, sandbox, "30.00")
    topup = db.session.scalar(select(TopUp))
    _refunded(client, sandbox, how, topup)
    [refund] = _refunds(sandbox, topup)
    sink.drop = True
    _fail(sandbox, refund["id"])
    assert balances.available(db.session, "u1", "EUR").amount == 0
    repaired_by_reconcile(prepaid_app, db, "refund failed, not given back to the balance")
    assert balances.available(db.session, "u1", "EUR").amount == 3000
    assert db.session.get(TopUp, topup.id).status == "paid"
    sink.drop = False
    assert_ledger_matches_stripe(db, sandbox)


def test_a_top_up_moved_while_its_refund_waited_for_the_balance_is_not_refunded(prepaid_app, client, db, sandbox):
    """The refund reads the top-up again once the balance is locked: one moved meanwhile (its payment attached to
    an invoice, refunded in the Dashboard) is refused, and nothing is taken off the balance."""
    _top_up(client, sandbox, "30.00")
    topup = db.session.scalar(select(TopUp))
    assert topup.status == "paid"  # as the click read it
    db.session.execute(update(TopUp).where(TopUp.id == topup.id).values(status="attached")
                       .execution_options(synchronize_session=False))  # another transaction's doing
    state = prepaid_app.extensions["lms_stripe"]
    with pytest.raises(balances.BalanceRefused):
        balances.refund_topup(state, topup.id, actor_id="adm")
    db.session.rollback()
    assert _movements(db) == [("topup", 3000)]
    assert _refunds(sandbox, topup) == []


def test_an_earlier_refunds_job_run_late_makes_no_refund_and_leaves_the_next_one_to_its_own(prepaid_app, client,
                                                                                             db, sandbox,
                                                                                             monkeypatch):
    _top_up(client, sandbox, "30.00")
    topup = db.session.scalar(select(TopUp))
    assert refund_topup_from_balance_page(client, topup.id).status_code == 303
    sandbox.state.wait_for_deliveries(10)
    [first] = _refunds(sandbox, topup)
    _fail(sandbox, first["id"])
    first_entry = db.session.scalar(select(BalanceEntry.id).where(BalanceEntry.key == f"refund-{topup.id}"))

    # Refunded again, its job not run yet (a queue's worker down).
    finish = balances.finish_refund
    monkeypatch.setattr(balances, "finish_refund", lambda *args: None)
    assert refund_topup_from_balance_page(client, topup.id).status_code == 303
    monkeypatch.undo()
    db.session.expire_all()
    assert db.session.get(TopUp, topup.id).status == "refunding"
    second_entry = db.session.scalar(select(BalanceEntry.id).where(BalanceEntry.key == f"refund-{topup.id}-2"))

    state = prepaid_app.extensions["lms_stripe"]
    finish(state, topup.id, first_entry)  # the first refund's job, run again late: nothing
    db.session.commit()
    assert [r["id"] for r in _refunds(sandbox, topup)] == [first["id"]]
    assert db.session.get(TopUp, topup.id).status == "refunding"
    finish(state, topup.id, second_entry)  # the second's: its own refund
    db.session.commit()
    sandbox.state.wait_for_deliveries(10)
    refunds = _refunds(sandbox, topup)
    assert [r["status"] for r in refunds] == ["failed", "succeeded"]
    db.session.expire_all()
    assert (db.session.get(TopUp, topup.id).status, db.session.get(TopUp, topup.id).stripe_refund_id) == \
        ("refunded", refunds[1]["id"])
    assert balances.available(db.session, "u1", "EUR").amount == 0
    assert_ledger_matches_stripe(db, sandbox)
