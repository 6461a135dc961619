"""What Stripe tells us of refunds and disputes never makes the books wrong: the refunded total never passes
what was paid nor the invoice's gross, a refund or dispute in another currency is not applied, and a closed
dispute does not reopen. (The webhook rejects such events and shows them: tests/test_rejected_events.py.)"""
import pytest
from sqlalchemy import func, select

from lms_stripe_plugin.core.models import Dispute, Refund
from lms_stripe_plugin.refunds.disputes import sync_dispute
from lms_stripe_plugin.refunds.lifecycle import ExceedsPayment, OtherCurrency, sync_refund

from .refund_support import dispute, paid_purchase, purchase_and_invoice, refund


@pytest.fixture
def state(app):
    return app.extensions["lms_stripe"]


@pytest.fixture
def paid(db, host, people, priced, configured):
    return paid_purchase(db, host)


def _refunded(db, purchase_id):
    purchase, invoice = purchase_and_invoice(db, purchase_id)
    return purchase.amount_refunded, invoice.amount_refunded


def test_a_refund_of_more_than_was_paid_is_refused_and_nothing_is_written(state, db, paid):
    purchase_id, _invoice_id = paid
    with pytest.raises(ExceedsPayment, match="6000"):
        sync_refund(state, refund(amount=6000))
    db.session.rollback()
    assert _refunded(db, purchase_id) == (0, 0)
    assert db.session.scalar(select(func.count()).select_from(Refund)) == 0


def test_refunds_are_counted_up_to_the_gross_and_no_further(state, db, paid):
    purchase_id, _invoice_id = paid
    sync_refund(state, refund(refund_id="re_1", amount=3000))
    db.session.commit()
    with pytest.raises(ExceedsPayment, match="past what was paid"):
        sync_refund(state, refund(refund_id="re_2", amount=3000))
    db.session.rollback()
    assert _refunded(db, purchase_id) == (3000, 3000)
    sync_refund(state, refund(refund_id="re_3", amount=1990))  # exactly the rest
    db.session.commit()
    assert _refunded(db, purchase_id) == (4990, 4990)


def test_a_refund_that_would_pass_the_gross_stays_as_it_was(state, db, paid):
    """Its success is a savepoint: the refund row is not marked succeeded without being counted."""
    purchase_id, _invoice_id = paid
    sync_refund(state, refund(refund_id="re_1", amount=3000, status="pending"))
    sync_refund(state, refund(refund_id="re_2", amount=3000, status="pending"))
    sync_refund(state, refund(refund_id="re_1", amount=3000))
    with pytest.raises(ExceedsPayment):
        sync_refund(state, refund(refund_id="re_2", amount=3000))
    db.session.commit()  # what a view's step does with a PaymentsError: keep what was recorded before it
    db.session.expire_all()
    assert {r.stripe_refund_id: r.status for r in db.session.scalars(select(Refund))} == \
        {"re_1": "succeeded", "re_2": "pending"}
    assert _refunded(db, purchase_id) == (3000, 3000)


def test_a_refund_in_another_currency_is_refused(state, db, paid):
    with pytest.raises(OtherCurrency, match="USD"):
        sync_refund(state, dict(refund(amount=100), currency="usd"))


def test_a_dispute_of_more_than_was_paid_is_refused(state, db, paid):
    with pytest.raises(ExceedsPayment, match="4991"):
        sync_dispute(state, dispute(amount=4991))
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Dispute)) == 0


def test_a_closed_dispute_does_not_reopen_when_an_older_snapshot_comes(state, db, paid):
    purchase_id, _invoice_id = paid
    sync_dispute(state, dispute(status="won"))
    sync_dispute(state, dispute(status="needs_response"))
    sync_dispute(state, dispute(status="under_review"))
    db.session.commit()
    (row,) = db.session.scalars(select(Dispute)).all()
    assert row.status == "won" and purchase_and_invoice(db, purchase_id)[0].dispute_status == "won"
