"""Handlers apply the object the event carries, and read from Stripe only what it lacks: no Stripe call for
the checkout, invoice, refund and dispute events of a purchase whose payment is recorded. Events are late,
doubled and unordered: a snapshot older than the one applied is skipped, and no state moves back."""
import re
import threading

import pytest
import responses
import sqlalchemy as sa
from sqlalchemy import func, select

from lms_stripe_plugin.core.models import Dispute, Event, Invoice, ObjectVersion, Purchase, Refund
from lms_stripe_plugin.sync import versions
from lms_stripe_plugin.sync.handlers import HANDLERS, Handling
from lms_stripe_plugin.testing import post_webhook

from .conftest import KEYS, ON_POSTGRES, STRIPE, stripe_object
from .refund_support import charge, dispute, paid_purchase, purchase_and_invoice, refund, stub_credit_notes
from .stripe_stubs import checkout_session, event, invoice, open_purchase, paid_session, payment_intent

SECRET = KEYS["webhook_secrets"][0]


@pytest.fixture
def purchase(db, people, priced, configured):
    return open_purchase(db)


@pytest.fixture
def paid(db, host, people, priced, configured):
    return paid_purchase(db, host)


def _send(client, event_type, obj, event_id, created=1767225600):
    body = event(event_type, obj, event_id)
    body["created"] = created
    response = post_webhook(client, body, SECRET)
    assert response.status_code == 200, response.get_json()
    return response.json["status"]


def _session(purchase, **changes):
    """The session as an event carries it: invoice and payment intent as ids."""
    fields = {"status": "complete", "payment_status": "paid", "invoice": "in_test_1", "payment_intent": "pi_test_1",
              "customer": "cus_test_lea", **changes}
    return checkout_session(purchase.id, **fields)


def _version(db, stripe_id):
    db.session.expire_all()
    row = db.session.get(ObjectVersion, stripe_id)
    return (row.event_created, row.event_id) if row else None


# -- Stripe calls per event ----------------------------------------------------------------------------------

def test_a_purchases_whole_life_costs_no_stripe_call(client, db, host, purchase, stripe_http, signals):
    """Every event of a purchase, from payment to a partial refund and a lost dispute: each applies what it
    carries. (Any call would reach `responses`, which knows no other Stripe URL here, and fail the delivery.)
    The one follow-up: the credit note of the refund made in the Dashboard, asked once its event is applied."""
    issued = stub_credit_notes(stripe_http)
    life = [
        ("checkout.session.completed", _session(purchase)),
        ("invoice.finalized", dict(invoice(purchase.id), status="open")),
        ("invoice.paid", invoice(purchase.id)),
        ("refund.created", refund(refund_id="re_1", amount=1000, status="pending")),
        ("charge.refunded", charge(amount_refunded=1000)),
        ("refund.updated", refund(refund_id="re_1", amount=1000)),
        ("charge.refund.updated", refund(refund_id="re_1", amount=1000)),
        ("charge.dispute.created", dispute(amount=3990)),
        ("charge.dispute.updated", dispute(amount=3990, status="under_review")),
        ("charge.dispute.closed", dispute(amount=3990, status="lost")),
    ]
    calls = {}
    for second, (event_type, obj) in enumerate(life):
        status = _send(client, event_type, obj, f"evt_{second}", created=1767225600 + second)
        calls[event_type] = len(stripe_http.calls)
        assert status == ("ignored" if event_type == "charge.refunded" else "handled"), event_type
    assert calls == {**{event_type: 0 for event_type, _obj in life[:3]},
                     **{event_type: 1 for event_type, _obj in life[3:]}}, calls
    assert [(c.request.method, c.request.url.split("?")[0].rsplit("/", 1)[1]) for c in stripe_http.calls] == [
        ("POST", "credit_notes")]
    assert [made["refunds[0][refund]"] for made in issued] == ["re_1"]
    purchase, invoice_row = purchase_and_invoice(db, purchase.id)
    assert (purchase.status, purchase.amount_refunded, purchase.dispute_status) == ("cancelled", 1000, "lost")
    assert (invoice_row.number, invoice_row.status, invoice_row.amount_refunded) == \
        ("ABC-0001", "partially_refunded", 1000)
    assert len(signals["purchase_completed"]) == 1 and len(signals["invoice_issued"]) == 1


def test_every_handled_type_says_what_it_reads():
    assert all(handling.reads for handling in HANDLERS.values())
    reading = sorted(t for t, handling in HANDLERS.items() if handling.read is not None)
    assert reading == ["charge.dispute.closed", "charge.dispute.created", "charge.dispute.updated",
                       "charge.refund.updated", "checkout.session.async_payment_failed",
                       "refund.created", "refund.failed", "refund.updated"]


def test_a_refund_before_its_payment_is_recorded_reads_the_payment_then_records_both(client, db, host, purchase,
                                                                                    stripe_http, signals):
    """The refund does not name our purchase: its PaymentIntent's metadata does, and its Checkout Session
    (read with the invoice) records the payment first. Two reads, only in this order of events."""
    pi = stripe_object("payment_intent", id="pi_test_1", metadata={"lms_purchase_id": str(purchase.id)})
    stripe_http.add(responses.GET, re.compile(rf"{STRIPE}/v1/payment_intents/pi_test_1(\?.*)?$"), json=pi)
    stripe_http.add(responses.GET, re.compile(rf"{STRIPE}/v1/checkout/sessions/{purchase.stripe_checkout_session_id}"
                                              r"(\?.*)?$"), json=paid_session(purchase))
    stub_credit_notes(stripe_http)
    assert _send(client, "refund.created", refund(amount=4990), "evt_refund") == "handled"
    # Then, once recorded, the follow-up: the refund's credit note, issued.
    assert [c.request.url.split("?")[0].split("/v1/")[1].split("/")[0] for c in stripe_http.calls] == \
        ["payment_intents", "checkout", "credit_notes"]
    purchase_row, invoice_row = purchase_and_invoice(db, purchase.id)
    assert purchase_row.status == "cancelled" and invoice_row.status == "cancelled"
    assert host.calls == [("enroll", "u1", "c1"), ("unenroll", "u1", "c1")]
    assert _send(client, "checkout.session.completed", _session(purchase), "evt_completed") == "handled"
    assert len(stripe_http.calls) == 3 and len(signals["purchase_completed"]) == 1


def test_a_failed_delayed_payment_reads_its_reason_once_and_only_while_it_matters(client, db, purchase,
                                                                                  stripe_http):
    failed = paid_session(purchase, payment_status="unpaid", invoice=None, payment_intent=payment_intent(
        status="requires_payment_method", error={"message": "Insufficient funds.", "type": "card_error"}))
    stripe_http.add(responses.GET, re.compile(rf"{STRIPE}/v1/checkout/sessions/.*"), json=failed)
    obj = _session(purchase, payment_status="unpaid", invoice=None)
    assert _send(client, "checkout.session.async_payment_failed", obj, "evt_1") == "handled"
    assert len(stripe_http.calls) == 1
    assert db.session.get(Purchase, purchase.id).failure_reason == "Insufficient funds."
    assert _send(client, "checkout.session.async_payment_failed", obj, "evt_2") == "handled"
    assert len(stripe_http.calls) == 1  # the purchase has failed already: nothing left to read


# -- monotonic -------------------------------------------------------------------------------------------------

def test_an_older_session_snapshot_does_not_move_a_paid_purchase_back(client, db, host, purchase, stripe_http):
    assert _send(client, "checkout.session.async_payment_succeeded", _session(purchase), "evt_new", 200) == "handled"
    older = _session(purchase, payment_status="unpaid", invoice=None)
    assert _send(client, "checkout.session.completed", older, "evt_old", 100) == "outdated"
    assert db.session.get(Purchase, purchase.id).status == "paid" and host.calls == [("enroll", "u1", "c1")]
    assert _version(db, purchase.stripe_checkout_session_id) == (200, "evt_new")
    assert db.session.get(Event, "evt_old").status == "processed"


def test_an_older_refund_snapshot_is_skipped_and_a_later_failure_is_applied(client, db, paid, stripe_http, signals):
    purchase_id, _invoice_id = paid
    assert _send(client, "refund.updated", refund(amount=1000), "evt_succeeded", 200) == "handled"
    assert _send(client, "refund.created", refund(amount=1000, status="pending"), "evt_created", 100) == "outdated"
    (row,) = db.session.scalars(select(Refund)).all()
    assert row.status == "succeeded" and purchase_and_invoice(db, purchase_id)[0].amount_refunded == 1000
    # Stripe documents this one: a refund that succeeded fails later (test card 4000 0000 0000 5126).
    failed = refund(amount=1000, status="failed", failure_reason="expired_or_canceled_card")
    assert _send(client, "refund.failed", failed, "evt_failed", 300) == "handled"
    purchase, invoice_row = purchase_and_invoice(db, purchase_id)
    assert (purchase.amount_refunded, invoice_row.status) == (0, "refund_failed")
    assert _send(client, "refund.updated", refund(amount=1000), "evt_stale_success", 250) == "outdated"
    assert purchase_and_invoice(db, purchase_id)[0].amount_refunded == 0 and len(signals["refund_failed"]) == 1


def test_a_new_refund_told_of_before_the_failure_of_the_one_it_replaces_applies_once_that_is_handled(
        client, db, paid, stripe_http):
    """Refund A of the whole payment succeeds, then fails (Stripe documents it); the school refunds again (B).
    B's event comes before A's failure: it does not fit yet (A still counts), fails, and applies when Stripe
    delivers it again after A's failure: what is refunded is what Stripe refunded."""
    purchase_id, _invoice_id = paid
    stub_credit_notes(stripe_http)
    assert _send(client, "refund.updated", refund(refund_id="re_a", amount=4990), "evt_a_ok", 100) == "handled"
    b = dict(event("refund.created", refund(refund_id="re_b", amount=4990), "evt_b"), created=300)
    assert post_webhook(client, b, SECRET).status_code == 500  # not applicable yet: delivered again
    failed = refund(refund_id="re_a", amount=4990, status="failed", failure_reason="expired_or_canceled_card")
    assert _send(client, "refund.failed", failed, "evt_a_failed", 200) == "handled"
    assert post_webhook(client, b, SECRET).json == {"status": "handled"}  # Stripe's next delivery
    purchase, invoice_row = purchase_and_invoice(db, purchase_id)
    assert (purchase.amount_refunded, invoice_row.amount_refunded) == (4990, 4990)
    db.session.expire_all()
    assert {r.stripe_refund_id: r.status for r in db.session.scalars(select(Refund))} == {
        "re_a": "failed", "re_b": "succeeded"}
    assert db.session.get(Event, "evt_b").status == "processed"


def test_a_dashboard_refund_covering_the_rest_is_partial_once_an_earlier_one_failed(client, db, host, paid,
                                                                                    stripe_http):
    """Refund A (10 €) succeeds; B (39,90 €, pending) covers what was left when it is told of; A fails; B
    succeeds: 39,90 € of 49,90 € are refunded, a partial refund, the course kept."""
    purchase_id, _invoice_id = paid
    stub_credit_notes(stripe_http)
    assert _send(client, "refund.created", refund(refund_id="re_a", amount=1000), "evt_a", 100) == "handled"
    pending = refund(refund_id="re_b", amount=3990, status="pending")
    assert _send(client, "refund.created", pending, "evt_b", 200) == "handled"
    failed = refund(refund_id="re_a", amount=1000, status="failed", failure_reason="expired_or_canceled_card")
    assert _send(client, "refund.failed", failed, "evt_a_failed", 300) == "handled"
    assert _send(client, "refund.updated", refund(refund_id="re_b", amount=3990), "evt_b_ok", 400) == "handled"
    purchase, invoice_row = purchase_and_invoice(db, purchase_id)
    assert (purchase.amount_refunded, purchase.status) == (3990, "paid")
    assert invoice_row.status == "partially_refunded" and ("unenroll", "u1", "c1") not in host.calls


def test_an_older_dispute_snapshot_does_not_reopen_it(client, db, host, paid, stripe_http):
    assert _send(client, "charge.dispute.closed", dispute(status="won"), "evt_closed", 300) == "handled"
    assert _send(client, "charge.dispute.updated", dispute(status="under_review"), "evt_updated", 200) == "outdated"
    assert _send(client, "charge.dispute.created", dispute(), "evt_created", 100) == "outdated"
    db.session.expire_all()
    (row,) = db.session.scalars(select(Dispute)).all()
    assert row.status == "won" and _version(db, "dp_test_1") == (300, "evt_closed")


@pytest.mark.parametrize("earlier, later", [("needs_response", "under_review"),
                                            ("warning_needs_response", "warning_under_review"),
                                            ("warning_under_review", "needs_response")])
def test_dispute_snapshots_of_the_same_second_in_reverse_order_keep_the_later_status(
        client, db, host, paid, stripe_http, earlier, later):
    """Both snapshots apply (same second), but a dispute's status only goes forward: an inquiry is answered,
    may turn into a chargeback; a chargeback is answered, then decided."""
    assert _send(client, "charge.dispute.updated", dispute(status=later), "evt_later", 500) == "handled"
    assert _send(client, "charge.dispute.created", dispute(status=earlier), "evt_earlier", 500) == "handled"
    db.session.expire_all()
    (row,) = db.session.scalars(select(Dispute)).all()
    purchase = purchase_and_invoice(db, paid[0])[0]
    assert (row.status, purchase.dispute_status) == (later, later)
    assert _send(client, "charge.dispute.closed", dispute(status="lost"), "evt_closed", 500) == "handled"
    db.session.expire_all()
    assert db.session.scalars(select(Dispute.status)).all() == ["lost"]


def test_an_older_invoice_snapshot_does_not_overwrite_a_newer_one(client, db, purchase, stripe_http):
    _send(client, "checkout.session.completed", _session(purchase), "evt_completed", 100)
    newer = dict(invoice(purchase.id), hosted_invoice_url="https://invoice.stripe.com/i/new")
    assert _send(client, "invoice.paid", newer, "evt_paid", 200) == "handled"
    older = dict(invoice(purchase.id), hosted_invoice_url="https://invoice.stripe.com/i/old", status="open")
    assert _send(client, "invoice.finalized", older, "evt_finalized", 150) == "outdated"
    db.session.expire_all()
    assert db.session.scalar(select(Invoice.hosted_url)) == "https://invoice.stripe.com/i/new"


@pytest.mark.parametrize("newer_type", ["invoice.updated", "invoice.overdue"])
def test_a_newer_change_of_a_purchases_invoice_records_it_when_the_older_paid_event_comes_late(
        client, db, purchase, stripe_http, signals, newer_type):
    """The change takes the invoice's version, so the late ``invoice.paid`` is outdated: the invoice is recorded
    from the change's snapshot, not lost."""
    _send(client, "checkout.session.completed", _session(purchase), "evt_completed", 100)
    newer = dict(invoice(purchase.id), hosted_invoice_url="https://invoice.stripe.com/i/new")
    assert _send(client, newer_type, newer, "evt_changed", 300) == "handled"
    assert _send(client, "invoice.paid", invoice(purchase.id), "evt_paid", 200) == "outdated"
    db.session.expire_all()
    (row,) = db.session.scalars(select(Invoice)).all()
    assert (row.stripe_invoice_id, row.number, row.purchase_id, row.hosted_url) == (
        "in_test_1", "ABC-0001", purchase.id, "https://invoice.stripe.com/i/new")
    assert len(signals["invoice_issued"]) == 1 and len(stripe_http.calls) == 0


def test_snapshots_of_the_same_second_are_all_applied_and_states_only_go_forward(client, db, paid, stripe_http):
    """Stripe's created has one-second precision: both apply, in either order, and the refund's own
    transitions keep it succeeded."""
    assert _send(client, "refund.updated", refund(amount=1000), "evt_a", 500) == "handled"
    assert _send(client, "refund.created", refund(amount=1000, status="pending"), "evt_b", 500) == "handled"
    (row,) = db.session.scalars(select(Refund)).all()
    assert row.status == "succeeded" and _version(db, "re_test_1") == (500, "evt_b")


def test_a_failed_event_replayed_after_newer_ones_is_outdated(app, client, db, paid, stripe_http, monkeypatch):
    handling = HANDLERS["charge.dispute.created"]
    monkeypatch.setitem(HANDLERS, "charge.dispute.created", Handling(handling.kind, _raise, handling.read, handling.reads))
    body = event("charge.dispute.created", dispute(), "evt_created")
    body["created"] = 100
    assert post_webhook(client, body, SECRET).status_code == 500
    monkeypatch.setitem(HANDLERS, "charge.dispute.created", handling)
    assert _send(client, "charge.dispute.closed", dispute(status="lost"), "evt_closed", 300) == "handled"
    result = app.test_cli_runner().invoke(args=["lms-stripe", "events", "replay"])
    assert "evt_created: outdated" in result.output and result.exit_code == 0
    db.session.expire_all()
    assert db.session.scalar(select(Dispute.status)) == "lost"


def _raise(*_args):
    raise RuntimeError("the host's database went away")


# -- an invoice whose event comes before the payment's ---------------------------------------------------------

def test_an_invoice_handled_before_the_payment_is_recorded_when_the_payment_is(client, db, host, purchase,
                                                                              stripe_http, signals):
    assert _send(client, "invoice.finalized", dict(invoice(purchase.id), status="open"), "evt_fin", 100) == "handled"
    assert _send(client, "invoice.paid", invoice(purchase.id), "evt_paid", 101) == "handled"
    assert db.session.scalar(select(func.count()).select_from(Invoice)) == 0
    assert _version(db, "in_test_1") == (101, "evt_paid")
    assert _send(client, "checkout.session.completed", _session(purchase), "evt_completed", 100) == "handled"
    db.session.expire_all()
    (row,) = db.session.scalars(select(Invoice)).all()
    assert (row.stripe_invoice_id, row.number, row.gross, row.purchase_id) == ("in_test_1", "ABC-0001", 4990,
                                                                                purchase.id)
    assert len(signals["invoice_issued"]) == 1 and len(stripe_http.calls) == 0


# -- the version row ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("claim", [versions.claim, versions._claim_portably], ids=["upsert", "portable"])
def test_a_version_moves_forward_only(db, app, claim):
    assert claim(db.session, "re_1", 100, "evt_1") is True
    assert claim(db.session, "re_1", 99, "evt_0") is False
    assert claim(db.session, "re_1", 100, "evt_1b") is True
    assert claim(db.session, "re_1", 101, "evt_2") is True
    db.session.commit()
    assert _version(db, "re_1") == (101, "evt_2")


@pytest.mark.parametrize("amount, status", [(4990, "cancelled"), (1000, "partially_refunded")])
def test_an_invoice_recorded_after_a_refund_of_its_payment_shows_the_refund(client, db, purchase, stripe_http,
                                                                            amount, status):
    """The payment is recorded, a refund made in the dashboard is handled, and only then the invoice's own
    event: the invoice is born with what was refunded already."""
    assert _send(client, "checkout.session.completed", _session(purchase), "evt_completed", 100) == "handled"
    assert _send(client, "refund.created", refund(amount=amount), "evt_refund", 101) == "handled"
    assert _send(client, "invoice.paid", invoice(purchase.id), "evt_paid", 100) == "handled"
    purchase_row, invoice_row = purchase_and_invoice(db, purchase.id)
    assert (invoice_row.status, invoice_row.amount_refunded) == (status, amount) == \
        (invoice_row.status, purchase_row.amount_refunded)
    assert (invoice_row.cancelled_at is not None) == (status == "cancelled") and len(stripe_http.calls) == 0


# -- a refund and the invoice at the same moment (PostgreSQL) ------------------------------------------------

@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="a refund racing with its invoice needs PostgreSQL")
def test_an_invoice_recorded_while_a_refund_commits_waits_for_it_and_shows_it(app, client, db, purchase, stripe_http):
    """The refund's transaction has counted its amount on the purchase but not committed when the invoice's
    event arrives: the invoice waits for it and is born with the refund, never « paid » beside a refund."""
    assert _send(client, "checkout.session.completed", _session(purchase), "evt_completed", 100) == "handled"
    db.session.commit()
    refunding = db.engine.connect()
    transaction = refunding.begin()
    refunding.execute(sa.update(Purchase).where(Purchase.id == purchase.id)
                      .values(amount_refunded=Purchase.amount_refunded + 1000))
    refunding.execute(sa.insert(Refund).values(
        purchase_id=purchase.id, stripe_refund_id="re_racing", amount=1000, currency="EUR", status="succeeded",
        origin="dashboard", full=False, revoke_access=False, idempotency_key="stripe-re_racing"))
    outcome: list = []

    def deliver():
        with app.app_context():
            outcome.append(_send(app.test_client(), "invoice.paid", invoice(purchase.id), "evt_paid", 100))

    thread = threading.Thread(target=deliver)
    thread.start()
    thread.join(1.5)
    waited = thread.is_alive()
    transaction.commit()
    refunding.close()
    thread.join(60)
    assert waited and outcome == ["handled"]
    purchase_row, invoice_row = purchase_and_invoice(db, purchase.id)
    assert (invoice_row.status, invoice_row.amount_refunded) == ("partially_refunded", 1000)
