"""Refunds and disputes Stripe tells us about through webhooks: made in the Stripe dashboard, or the later
fate of a refund an administrator asked for. Every event is delivered twice and in different orders; the
handlers apply the refund or dispute each event carries, reading nothing from Stripe once the payment is
recorded, and the outcome never depends on the order."""
import json
import re

import pytest
import responses
from sqlalchemy import select

from lms_stripe_plugin.core.models import AuditEntry, Dispute, Event, Purchase, Refund, utcnow

from .conftest import STRIPE, as_user, form_body, stripe_object
from .refund_support import (calls, charge, credit_note, csrf, dispute, enrolled, paid_purchase, paid_twice,
                             purchase_and_invoice, refund, refunds_of, rows, send_event,
                             stub_create_refund, stub_credit_note, stub_credit_notes, stub_empty_lists,
                             stub_get_refund, stub_list_refunds, text, unenrolls)


@pytest.fixture
def paid(db, host, people, priced, configured):
    """Léa (u1) bought "Python basics" (c1) for 49.90 EUR with payment intent pi_test_1."""
    return paid_purchase(db, host)


def deliver(client, deliveries):
    """Deliver (type, object, event id) triples in order; every delivery is acknowledged with a 2xx."""
    for event_type, obj, event_id in deliveries:
        response = send_event(client, event_type, obj, event_id)
        assert response.status_code == 200, (event_type, event_id, response.get_json())


def count(signals, name):
    return len(signals.get(name, []))


def audit_actions(db, action):
    return rows(db, AuditEntry, AuditEntry.action == action)


def admin_cancel(client, invoice_id):
    url = f"/payments/admin/invoices/{invoice_id}/cancel"
    token = csrf(client, url)
    response = client.post(url, data={"csrf_token": token, "reason": "Asked by the learner"}, headers=as_user("adm"))
    assert response.status_code == 302
    return response


# -- refunds made in the Stripe dashboard ----------------------------------------------------------

FULL = refund(refund_id="re_dash_1", amount=4990, reason="requested_by_customer")


def _orders(obj, charge_obj):
    created = ("refund.created", obj, "evt_refund_created")
    refunded = ("charge.refunded", charge_obj, "evt_charge_refunded")
    updated = ("refund.updated", obj, "evt_refund_updated")
    charge_refund_updated = ("charge.refund.updated", obj, "evt_charge_refund_updated")
    return {
        "refund.created first": [created, created, refunded, refunded, updated, charge_refund_updated],
        "charge.refunded first": [refunded, refunded, created, updated, created, charge_refund_updated],
        "updates before creation": [charge_refund_updated, updated, refunded, created, refunded, updated],
    }


@pytest.mark.parametrize("order", list(_orders(FULL, charge())))
def test_a_full_refund_from_the_dashboard_cancels_the_invoice_and_revokes_access_once(client, db, host, paid,
                                                                                       stripe_http, signals, order):
    purchase_id, invoice_id = paid
    issued = stub_credit_notes(stripe_http)

    deliver(client, _orders(FULL, charge())[order])

    (row,) = refunds_of(db, purchase_id)
    assert (row.origin, row.status, row.amount, row.stripe_refund_id, row.full) == \
        ("dashboard", "succeeded", 4990, "re_dash_1", True)
    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert (invoice.status, invoice.amount_refunded) == ("cancelled", 4990)
    assert (purchase.status, purchase.amount_refunded) == ("cancelled", 4990)
    assert not enrolled(host) and unenrolls(host) == 1
    assert count(signals, "purchase_cancelled") == 1 and count(signals, "access_revoked") == 1
    assert len(audit_actions(db, "refund_succeeded")) == 1 and len(audit_actions(db, "access_revoked")) == 1
    # charge.refunded is acknowledged and ignored: its charge no longer carries the refunds, each comes in its
    # own refund.* events. Nothing is read from Stripe.
    assert sorted((e.type, e.status) for e in rows(db, Event)) == [
        ("charge.refund.updated", "processed"), ("charge.refunded", "ignored"), ("refund.created", "processed"),
        ("refund.updated", "processed")]
    # Nothing is read from Stripe to apply them; once the refund is recorded, the invoice gets its credit note,
    # asked for at once (Stripe refuses it for a refund on a credit note already), once.
    assert [(c.request.method, c.request.url.split("?")[0].rsplit("/", 1)[1]) for c in stripe_http.calls] == [
        ("POST", "credit_notes")]
    assert issued == [{"invoice": "in_test_1", "amount": "4990", "refunds[0][type]": "refund",
                       "refunds[0][refund]": "re_dash_1", "refunds[0][amount_refunded]": "4990",
                       "reason": "order_change", "metadata[lms_refund_id]": str(row.id)}]
    assert stripe_http.calls[0].request.headers["Idempotency-Key"] == f"lms-credit-note-{row.id}"
    db.session.expire_all()
    assert db.session.get(Refund, row.id).stripe_credit_note_id == "cn_test_1"

    shown = text(client.get(f"/payments/admin/invoices/{invoice_id}", headers=as_user("adm")))
    assert "Cancelled" in shown and "Stripe dashboard" in shown and "Revoked" in shown
    assert "ABC-0001-CN-01" in shown


@pytest.mark.parametrize("order", list(_orders(refund(refund_id="re_dash_1", amount=1000), charge())))
def test_a_partial_refund_from_the_dashboard_is_recorded_and_access_is_kept(client, db, host, paid, stripe_http,
                                                                             signals, order):
    purchase_id, invoice_id = paid
    partial = refund(refund_id="re_dash_1", amount=1000)

    deliver(client, _orders(partial, charge(amount_refunded=1000))[order])

    (row,) = refunds_of(db, purchase_id)
    assert (row.origin, row.status, row.amount, row.full) == ("dashboard", "succeeded", 1000, False)
    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert (invoice.status, invoice.amount_refunded) == ("partially_refunded", 1000)
    assert (purchase.status, purchase.amount_refunded) == ("paid", 1000)
    assert enrolled(host) and unenrolls(host) == 0 and signals == {}
    assert "Partially refunded (€10.00)" in text(client.get(f"/payments/admin/invoices/{invoice_id}",
                                                            headers=as_user("adm")))
    assert "Partially refunded (€10.00)" in text(client.get("/payments/invoices", headers=as_user("u1")))


def test_dashboard_refunds_adding_up_to_the_total_cancel_the_purchase(client, db, host, paid, stripe_http, signals):
    purchase_id, _invoice_id = paid
    issued = stub_credit_notes(stripe_http)
    first = refund(refund_id="re_dash_1", amount=1000)
    rest = refund(refund_id="re_dash_2", amount=3990)

    deliver(client, [("refund.created", first, "evt_1"), ("charge.refunded", charge(), "evt_2"),
                     ("refund.created", rest, "evt_3"), ("charge.refunded", charge(), "evt_2")])

    assert sorted(r.amount for r in refunds_of(db, purchase_id)) == [1000, 3990]
    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert (invoice.status, invoice.amount_refunded) == ("cancelled", 4990)
    assert purchase.status == "cancelled" and purchase.amount_refunded == 4990
    assert unenrolls(host) == 1 and count(signals, "access_revoked") == 1
    # A credit note for each refund, linking it.
    assert [(made["refunds[0][refund]"], made["amount"]) for made in issued] == [("re_dash_1", "1000"),
                                                                                  ("re_dash_2", "3990")]


def test_a_pending_dashboard_refund_is_refund_pending_until_it_succeeds(client, db, host, paid, stripe_http,
                                                                        signals):
    purchase_id, invoice_id = paid
    pending = refund(refund_id="re_dash_1", status="pending")

    deliver(client, [("refund.created", pending, "evt_1"), ("refund.created", pending, "evt_1")])

    (row,) = refunds_of(db, purchase_id)
    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert row.status == "pending"
    assert invoice.status == "refund_pending" and invoice.amount_refunded == 0 and purchase.amount_refunded == 0
    assert "Refund pending" in text(client.get(f"/payments/admin/invoices/{invoice_id}", headers=as_user("adm")))

    done = refund(refund_id="re_dash_1", status="succeeded")
    deliver(client, [("refund.updated", done, "evt_2"), ("refund.updated", done, "evt_3")])

    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert invoice.status == "cancelled" and invoice.amount_refunded == 4990
    assert not enrolled(host) and unenrolls(host) == 1 and count(signals, "purchase_cancelled") == 1


def test_events_of_another_integrations_payments_are_acknowledged_and_ignored(client, db, host, paid, stripe_http,
                                                                             signals):
    purchase_id, _invoice_id = paid
    foreign = refund(refund_id="re_other", payment_intent="pi_other")
    # Unknown here, the payment is looked up at Stripe: its metadata names no purchase of ours.
    stripe_http.add(responses.GET, re.compile(r"https://api\.stripe\.com/v1/payment_intents/pi_other(\?.*)?$"),
                    json=stripe_object("payment_intent", id="pi_other", metadata={"order": "shop-42"}))

    deliver(client, [("refund.created", foreign, "evt_1"),
                     ("charge.refunded", charge(payment_intent="pi_other"), "evt_2"),
                     ("charge.dispute.created", dispute(dispute_id="dp_other", payment_intent="pi_other"), "evt_3")])

    assert rows(db, Refund) == [] and rows(db, Dispute) == []
    # Only the payment intent is read (twice: the refund's event, the dispute's); charge.refunded is ignored.
    assert [c.request.url.split("?")[0] for c in stripe_http.calls] == \
        ["https://api.stripe.com/v1/payment_intents/pi_other"] * 2
    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert (invoice.status, purchase.status, purchase.disputed) == ("paid", "paid", False)
    assert enrolled(host) and signals == {}


# -- what happens after an administrator's cancellation --------------------------------------------

def test_events_of_an_administrators_cancellation_change_nothing_more(client, db, host, paid, stripe_http, signals):
    purchase_id, invoice_id = paid
    stub_credit_note(stripe_http, credit_note())
    stub_get_refund(stripe_http, refund())  # the cancellation reads its credit note's refund
    admin_cancel(client, invoice_id)
    calls_of_the_cancellation = len(stripe_http.calls)

    deliver(client, [("charge.refunded", charge(), "evt_1"), ("refund.created", refund(), "evt_2"),
                     ("refund.updated", refund(), "evt_3"), ("refund.created", refund(), "evt_2")])
    assert len(stripe_http.calls) == calls_of_the_cancellation

    (row,) = refunds_of(db, purchase_id)
    assert (row.origin, row.status, row.stripe_refund_id) == ("admin", "succeeded", "re_test_1")
    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert invoice.amount_refunded == 4990 and purchase.amount_refunded == 4990 and invoice.status == "cancelled"
    assert unenrolls(host) == 1 and count(signals, "purchase_cancelled") == 1 and count(signals, "access_revoked") == 1


@pytest.mark.parametrize("event_type", ["refund.failed", "refund.updated", "charge.refund.updated"])
def test_a_refund_that_fails_later_is_marked_failed_and_can_be_retried(client, db, host, paid, stripe_http, signals,
                                                                      event_type):
    purchase_id, invoice_id = paid
    stub_credit_note(stripe_http, credit_note())
    stub_get_refund(stripe_http, refund(status="pending"))
    admin_cancel(client, invoice_id)
    failed = refund(status="failed", failure_reason="expired_or_canceled_card")

    deliver(client, [(event_type, failed, "evt_failed_1"), (event_type, failed, "evt_failed_1"),
                     ("refund.updated", failed, "evt_failed_2")])

    (row,) = refunds_of(db, purchase_id)
    assert row.status == "failed" and "expired" in row.failure_reason  # Stripe's code, or its text
    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert invoice.status == "refund_failed" and invoice.amount_refunded == 0 and purchase.amount_refunded == 0
    (failed_signal,) = signals["refund_failed"]
    assert failed_signal["refund"].id == row.id and failed_signal["reason"] == "The card has expired or was cancelled."
    page = client.get(f"/payments/admin/invoices/{invoice_id}", headers=as_user("adm"))
    body, shown = page.get_data(as_text=True), text(page)
    assert "The card has expired or was cancelled." in shown and "Retry the refund" in shown
    assert 'class="badge ok">Refunded' not in body and "Cancelled" not in shown
    assert len(audit_actions(db, "refund_failed")) == 1

    stub_create_refund(stripe_http, refund(refund_id="re_test_2", status="succeeded"))
    token = csrf(client, f"/payments/admin/invoices/{invoice_id}")
    assert client.post(f"/payments/admin/refunds/{row.id}/retry", data={"csrf_token": token},
                       headers=as_user("adm")).status_code == 302

    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert invoice.status == "cancelled" and invoice.amount_refunded == 4990
    assert unenrolls(host) == 1 and count(signals, "purchase_cancelled") == 1 and count(signals, "refund_failed") == 1


def test_a_stale_pending_answer_never_undoes_a_refund_already_counted(client, db, paid, stripe_http):
    """A late, stale "pending" answer does not move a succeeded refund back."""
    purchase_id, invoice_id = paid
    stub_credit_note(stripe_http, credit_note())
    stub_get_refund(stripe_http, refund())
    admin_cancel(client, invoice_id)

    deliver(client, [("refund.updated", refund(status="pending"), "evt_stale")])

    (row,) = refunds_of(db, purchase_id)
    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert row.status == "succeeded" and invoice.status == "cancelled" and invoice.amount_refunded == 4990


# -- a refund the plugin asked for, told of before its answer is applied ----------------------------

def test_a_duplicate_payments_refund_told_of_before_its_answer_is_recorded_once(app, client, db, host, people,
                                                                                priced, configured, stripe_http):
    """The automatic refund of a payment for a course already paid: Stripe sends refund.created as it answers,
    and the event is handled first. Its metadata names our row: it is that row's refund, not a Dashboard one."""
    old, session = paid_twice(db)
    issued = stub_credit_notes(stripe_http)
    events = app.test_client()

    def create(request):
        asked = form_body(request)
        made = refund(refund_id="re_dup", amount=int(asked["amount"]), payment_intent=asked["payment_intent"],
                      reason=asked.get("reason"))
        made["metadata"] = {"lms_refund_id": asked["metadata[lms_refund_id]"]}
        deliver(events, [("refund.created", made, "evt_re_dup_created")])
        return 200, {}, json.dumps(made)

    stripe_http.add_callback(responses.POST, f"{STRIPE}/v1/refunds", callback=create, content_type="application/json")
    deliver(client, [("checkout.session.completed", session, "evt_cs_old")])

    (row,) = rows(db, Refund)
    assert (row.purchase_id, row.origin, row.status, row.stripe_refund_id, row.amount) == \
        (old.id, "system", "succeeded", "re_dup", 4990)
    assert issued == [] and len(audit_actions(db, "refund_requested")) == 0
    assert len(audit_actions(db, "refund_succeeded")) == 1


def test_a_duplicate_payments_refund_stripe_could_not_be_asked_for_is_made_by_reconcile(
        app, client, db, host, people, priced, configured, stripe_http):
    """Stripe unreachable when the duplicate payment's refund is asked for: nothing else would ask again (no
    event comes for a refund that was never made). The reconciliation asks again, with the key it had, once;
    a second run finds nothing."""
    from datetime import datetime, timedelta, timezone

    import requests as http

    from lms_stripe_plugin.sync.reconcile import ATTACH_GRACE, reconcile

    _old, session = paid_twice(db)
    stripe_http.add(responses.POST, f"{STRIPE}/v1/refunds", body=http.ConnectionError("Stripe unreachable"))
    deliver(client, [("checkout.session.completed", session, "evt_cs_old")])
    (row,) = rows(db, Refund)
    assert (row.origin, row.status, row.stripe_refund_id) == ("system", "requested", None)
    row.created_at = utcnow() - ATTACH_GRACE - timedelta(minutes=1)  # the follow-up had its chance
    db.session.commit()

    stub_empty_lists(stripe_http, "checkout/sessions", "invoices", "disputes")
    stub_list_refunds(stripe_http, [])
    made = refund(refund_id="re_dup", amount=4990, payment_intent=session["payment_intent"], reason="duplicate")
    stripe_http.replace(responses.POST, f"{STRIPE}/v1/refunds", json=made)
    report = reconcile(app.extensions["lms_stripe"], since=datetime(2000, 1, 1, tzinfo=timezone.utc))
    assert [(f.problem, f.repaired) for f in report.findings] == [("a duplicate payment's refund, not made at Stripe",
                                                                   True)]
    (first, again) = calls(stripe_http, "POST", "/v1/refunds")
    assert again.request.headers["Idempotency-Key"] == first.request.headers["Idempotency-Key"]
    (row,) = rows(db, Refund)
    assert (row.status, row.stripe_refund_id) == ("succeeded", "re_dup")
    assert reconcile(app.extensions["lms_stripe"], since=datetime(2000, 1, 1, tzinfo=timezone.utc)).findings == []
    assert len(calls(stripe_http, "POST", "/v1/refunds")) == 2


# -- disputes --------------------------------------------------------------------------------------

OPENED = dispute(status="needs_response")


@pytest.mark.parametrize("deliveries", [
    [("charge.dispute.created", OPENED, "evt_d1"), ("charge.dispute.created", OPENED, "evt_d1"),
     ("charge.dispute.updated", OPENED, "evt_d2")],
    [("charge.dispute.updated", OPENED, "evt_d2"), ("charge.dispute.created", OPENED, "evt_d1"),
     ("charge.dispute.updated", OPENED, "evt_d2")],
], ids=["created first", "updated first"])
def test_a_dispute_revokes_access_and_flags_the_purchase(client, db, host, paid, stripe_http, signals, deliveries):
    purchase_id, invoice_id = paid

    deliver(client, deliveries)
    assert len(stripe_http.calls) == 0

    (row,) = rows(db, Dispute)
    assert (row.stripe_dispute_id, row.purchase_id, row.amount, row.currency, row.status, row.reason) == \
        ("dp_test_1", purchase_id, 4990, "EUR", "needs_response", "fraudulent")
    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert purchase.disputed and purchase.dispute_status == "needs_response"
    assert purchase.status == "cancelled" and not enrolled(host) and unenrolls(host) == 1
    assert [s["reason"] for s in signals["access_revoked"]] == ["dispute"]
    assert count(signals, "purchase_cancelled") == 1
    assert len(audit_actions(db, "dispute_opened")) == 1
    assert invoice.status == "paid" and invoice.amount_refunded == 0  # a dispute is not a refund
    listing = text(client.get("/payments/admin/invoices", headers=as_user("adm")))
    assert "Disputed" in listing
    shown = text(client.get(f"/payments/admin/invoices/{invoice_id}", headers=as_user("adm")))
    assert "dp_test_1" in shown and "needs_response" in shown and "fraudulent" in shown and "Revoked" in shown


def test_the_admin_invoice_page_flags_a_disputed_purchase(client, db, paid, stripe_http):
    _purchase_id, invoice_id = paid
    deliver(client, [("charge.dispute.created", OPENED, "evt_d1")])

    shown = text(client.get(f"/payments/admin/invoices/{invoice_id}", headers=as_user("adm")))

    assert "Disputed" in shown


def test_a_dispute_keeps_access_when_revocation_on_dispute_is_off(app, client, db, host, paid, stripe_http, signals):
    app.config["LMS_STRIPE_REVOKE_ON_DISPUTE"] = False
    purchase_id, _invoice_id = paid

    deliver(client, [("charge.dispute.created", OPENED, "evt_d1"), ("charge.dispute.updated", OPENED, "evt_d2")])

    purchase, _invoice = purchase_and_invoice(db, purchase_id)
    assert purchase.disputed and purchase.status == "paid"
    assert enrolled(host) and unenrolls(host) == 0 and signals == {}
    assert len(rows(db, Dispute)) == 1


@pytest.mark.parametrize("outcome, label", [("won", "Won"), ("lost", "Lost")])
def test_a_closed_dispute_restores_nothing_and_shows_its_outcome(client, db, host, paid, stripe_http, signals,
                                                                outcome, label):
    purchase_id, invoice_id = paid
    deliver(client, [("charge.dispute.created", OPENED, "evt_d1")])
    closed = dispute(status=outcome)

    deliver(client, [("charge.dispute.closed", closed, "evt_d3"), ("charge.dispute.closed", closed, "evt_d3"),
                     ("charge.dispute.updated", closed, "evt_d4")])

    (row,) = rows(db, Dispute)
    purchase, _invoice = purchase_and_invoice(db, purchase_id)
    assert row.status == outcome and purchase.dispute_status == outcome and purchase.disputed
    assert purchase.status == "cancelled" and not enrolled(host)
    assert host.calls.count(("enroll", "u1", "c1")) == 1 and unenrolls(host) == 1
    assert count(signals, "access_revoked") == 1
    page = client.get(f"/payments/admin/invoices/{invoice_id}", headers=as_user("adm"))
    assert f'class="badge {"ok" if outcome == "won" else "bad"}">{label}</span>' in page.get_data(as_text=True)


def test_a_dispute_first_seen_closed_is_recorded_once(client, db, host, paid, stripe_http):
    """The closing event arrives before the opening one: whatever the order, one dispute, its latest status."""
    purchase_id, _invoice_id = paid
    won = dispute(status="won")

    deliver(client, [("charge.dispute.closed", won, "evt_d3"), ("charge.dispute.created", OPENED, "evt_d1")])

    (row,) = rows(db, Dispute)
    assert row.status == "won"
    assert db.session.scalar(select(AuditEntry.id).where(AuditEntry.action == "dispute_opened")) is not None
    assert unenrolls(host) == 1


# -- a refund that succeeds, then fails (Stripe's test card 4000 0000 0000 5126) --------------------------

def _cancelled_then_failed(client, db, paid, stripe_http):
    purchase_id, invoice_id = paid
    stub_credit_note(stripe_http, credit_note())
    stub_get_refund(stripe_http, refund(status="succeeded"))
    admin_cancel(client, invoice_id)
    failed = refund(status="failed", failure_reason="expired_or_canceled_card")
    deliver(client, [("refund.failed", failed, "evt_refund_failed"), ("refund.updated", failed, "evt_refund_updated")])
    return purchase_id, invoice_id


def test_a_refund_that_fails_after_succeeding_is_no_longer_counted(client, db, host, paid, stripe_http, signals):
    purchase_id, invoice_id = _cancelled_then_failed(client, db, paid, stripe_http)

    (row,) = refunds_of(db, purchase_id)
    assert (row.status, row.failure_reason) == ("failed", "expired_or_canceled_card")
    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert (invoice.status, invoice.amount_refunded, purchase.amount_refunded) == ("refund_failed", 0, 0)
    assert count(signals, "refund_failed") == 1
    page = text(client.get(f"/payments/admin/invoices/{invoice_id}", headers=as_user("adm")))
    assert "Refund failed" in page and "Retry the refund" in page and "Restore the learner" in page
    listed = text(client.get("/payments/admin/invoices?status=refund_failed", headers=as_user("adm")))
    assert invoice.number in listed


def test_a_late_refund_success_never_brings_a_failed_refund_back(client, db, paid, stripe_http):
    purchase_id, _invoice_id = _cancelled_then_failed(client, db, paid, stripe_http)
    deliver(client, [("refund.updated", refund(status="succeeded"), "evt_refund_updated_late")])
    (row,) = refunds_of(db, purchase_id)
    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert row.status == "failed" and (invoice.amount_refunded, purchase.amount_refunded) == (0, 0)


def test_the_administrator_can_restore_the_access_of_a_learner_whose_refund_failed(client, db, host, paid,
                                                                                  stripe_http):
    purchase_id, invoice_id = _cancelled_then_failed(client, db, paid, stripe_http)
    assert not enrolled(host)
    url = f"/payments/admin/invoices/{invoice_id}/restore-access"
    token = csrf(client, f"/payments/admin/invoices/{invoice_id}")

    assert client.post(url, data={"csrf_token": token}, headers=as_user("u1")).status_code == 403
    response = client.post(url, data={"csrf_token": token}, headers=as_user("adm"))

    assert response.status_code == 302 and enrolled(host)
    purchase, _invoice = purchase_and_invoice(db, purchase_id)
    assert purchase.status == "paid"
    assert [e.actor_id for e in audit_actions(db, "access_restored")] == ["adm"]
    again = client.post(url, data={"csrf_token": token}, headers=as_user("adm"), follow_redirects=True)
    assert "not revoked" in text(again) and len(audit_actions(db, "access_restored")) == 1
