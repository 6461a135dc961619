"""Stripe's events of payment requests (`sync.handlers`, `billing.paying`): a Pay click's Checkout Session, an
administrator's invoice and its payments. Each applies the object the event carries and reads nothing from
Stripe (`stripe_http` fails any call not registered): the one call is the attaching of a paid session's
payment to the invoice, made after the delivery commits. Events come late, twice and in any order: what was
paid never goes back, and a request is credited once per payment."""
from __future__ import annotations

import re
import threading

import pytest
import responses
from sqlalchemy import func, select

from lms_stripe_plugin.billing import paying
from lms_stripe_plugin.core.enums import AuditAction
from lms_stripe_plugin.core.models import (AuditEntry, Invoice, InvoicePayment, ObjectVersion, PaymentAttempt,
                                           PaymentRequest)
from lms_stripe_plugin.testing import post_webhook

from .conftest import KEYS, ON_POSTGRES, STRIPE, stripe_object
from .refund_support import idempotency_key, sent
from .request_stubs import (CREATED, STRIPE_INVOICE, admin_invoice, attempt_session, invoice_payment, open_attempt,
                            stub_attach)
from .request_support import open_invoice, open_request
from .stripe_stubs import event

SECRET = KEYS["webhook_secrets"][0]


@pytest.fixture
def owed(db, host, people, configured):
    return open_invoice(db, host)


@pytest.fixture
def attempt(db, owed):
    """A Pay click of 90 € on a request of 90 €, its Checkout Session open."""
    request_id, _token = open_request(db, owed)
    return open_attempt(db, request_id)


def _send(client, event_type: str, obj: dict, event_id: str, created: int = CREATED) -> str:
    body = event(event_type, obj, event_id)
    body["created"] = created
    response = post_webhook(client, body, SECRET)
    assert response.status_code == 200, response.get_json()
    return response.json["status"]


def _state(db, attempt_id: int, invoice_id: int):
    """(attempt status, request status and amount paid, invoice status, paid and remaining)."""
    db.session.expire_all()
    attempt = db.session.get(PaymentAttempt, attempt_id)
    request, invoice = attempt.request, db.session.get(Invoice, invoice_id)
    return (attempt.status, request.status, request.amount_paid, invoice.status, invoice.amount_paid,
            invoice.amount_remaining)


def _credited(db) -> list[tuple[int, str, int | None]]:
    db.session.expire_all()
    return [(p.amount, p.status, p.attempt_id) for p in db.session.scalars(select(InvoicePayment)
                                                                           .order_by(InvoicePayment.id))]


def _received(db) -> int:
    return db.session.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action == AuditAction.PAYMENT_RECEIVED))


def _attached_answer(owed, payments=True) -> dict:
    """Stripe's answer to the attaching: the invoice, 90 € paid, with its payments when expanded."""
    return admin_invoice(owed, paid=9000, payments=[invoice_payment()] if payments else None)


# -- a paid session -----------------------------------------------------------------------------------------

def test_a_paid_session_is_attached_to_the_invoice_and_credits_the_request(client, db, owed, attempt, stripe_http):
    attach = stub_attach(stripe_http, _attached_answer(owed))
    assert _send(client, "checkout.session.completed", attempt_session(attempt), "evt_1") == "handled"
    assert [call.request.url for call in stripe_http.calls] == [attach.url]  # the attaching, and nothing else
    assert sent(attach.calls[0]) == {"payment_intent": "pi_test_req_1", "expand[0]": "payments"}
    assert idempotency_key(attach.calls[0]) == f"lms-attach-{attempt.id}"
    assert _state(db, attempt.id, owed) == ("attached", "paid", 9000, "open", 9000, 21000)
    assert _credited(db) == [(9000, "paid", attempt.id)] and _received(db) == 1
    stored = db.session.get(PaymentAttempt, attempt.id)
    assert stored.stripe_payment_intent_id == "pi_test_req_1" and stored.attached_at is not None


def test_the_same_event_twice_attaches_once(client, db, owed, attempt, stripe_http):
    attach = stub_attach(stripe_http, _attached_answer(owed))
    assert _send(client, "checkout.session.completed", attempt_session(attempt), "evt_1") == "handled"
    assert _send(client, "checkout.session.completed", attempt_session(attempt), "evt_1") == "already handled"
    assert _send(client, "checkout.session.async_payment_succeeded", attempt_session(attempt), "evt_2",
                 created=CREATED + 1) == "handled"
    assert attach.call_count == 1 and len(stripe_http.calls) == 1
    assert _state(db, attempt.id, owed) == ("attached", "paid", 9000, "open", 9000, 21000)
    assert _received(db) == 1


def test_the_payments_event_after_the_attaching_credits_nothing_more(client, db, owed, attempt, stripe_http):
    stub_attach(stripe_http, _attached_answer(owed))
    _send(client, "checkout.session.completed", attempt_session(attempt), "evt_1")
    for n in range(2):
        assert _send(client, "invoice_payment.paid", invoice_payment(), f"evt_pay_{n}",
                     created=CREATED + 1 + n) == "handled"
    assert _state(db, attempt.id, owed) == ("attached", "paid", 9000, "open", 9000, 21000)
    assert _credited(db) == [(9000, "paid", attempt.id)] and _received(db) == 1
    assert len(stripe_http.calls) == 1


def test_a_payment_stripe_did_not_expand_is_credited_by_its_own_event_once(client, db, owed, attempt,
                                                                           stripe_http):
    stub_attach(stripe_http, _attached_answer(owed, payments=False))
    _send(client, "checkout.session.completed", attempt_session(attempt), "evt_1")
    assert _state(db, attempt.id, owed) == ("attached", "open", 0, "open", 9000, 21000)
    assert _send(client, "invoice_payment.paid", invoice_payment(status="open"), "evt_open", CREATED + 1) == "handled"
    assert _credited(db) == [(9000, "open", attempt.id)] and _received(db) == 0
    assert _send(client, "invoice_payment.paid", invoice_payment(), "evt_paid", CREATED + 2) == "handled"
    assert _send(client, "invoice_payment.paid", invoice_payment(), "evt_paid_again", CREATED + 2) == "handled"
    assert _state(db, attempt.id, owed) == ("attached", "paid", 9000, "open", 9000, 21000)
    assert _credited(db) == [(9000, "paid", attempt.id)] and _received(db) == 1
    assert len(stripe_http.calls) == 1


def test_a_part_payment_leaves_the_request_open_for_the_rest(client, db, owed, stripe_http):
    request_id, _token = open_request(db, owed, partial_minimum=2000)
    attempt = open_attempt(db, request_id, amount=5000)
    stub_attach(stripe_http, admin_invoice(owed, paid=5000, payments=[invoice_payment(amount=5000)]))
    _send(client, "checkout.session.completed", attempt_session(attempt), "evt_1")
    assert _state(db, attempt.id, owed) == ("attached", "open", 5000, "open", 5000, 25000)
    assert paying.remaining(db.session.get(PaymentRequest, request_id)) == 4000


def _hosted_intent(stripe_http, intent: str, method: str = "sepa_debit") -> None:
    """Stripe's answer to reading a PaymentIntent paid on the hosted invoice page, its latest charge expanded:
    no metadata of ours, no invoice named (the API has no ``Charge.invoice``)."""
    details = {"type": method, method: {"last4": "3000"}}
    charge = stripe_object("charge", id=f"ch_{intent}", payment_intent=intent, metadata={},
                           payment_method_details=details)
    stripe_http.add(responses.GET, re.compile(rf"{STRIPE}/v1/payment_intents/{intent}(\?.*)?$"),
                    json=stripe_object("payment_intent", id=intent, metadata={}, latest_charge=charge))


def _methods(db) -> list[str | None]:
    db.session.expire_all()
    return list(db.session.scalars(select(InvoicePayment.payment_method).order_by(InvoicePayment.id)))


def test_a_payment_made_otherwise_is_recorded_with_how_it_was_paid_and_credits_no_request(client, db, owed,
                                                                                           attempt, stripe_http):
    """Attached in the Dashboard, say: the invoice counts it, no request is credited; nothing of ours says how
    it was paid, so its PaymentIntent is read, once."""
    _hosted_intent(stripe_http, "pi_elsewhere")
    assert _send(client, "invoice_payment.paid", invoice_payment("inpay_other", intent="pi_elsewhere"), "evt_1") \
        == "handled"
    assert _credited(db) == [(9000, "paid", None)] and _received(db) == 0 and _methods(db) == ["sepa_debit"]
    assert _send(client, "invoice.updated", admin_invoice(owed, paid=9000), "evt_2") == "handled"
    assert _state(db, attempt.id, owed) == ("open", "open", 0, "open", 9000, 21000)
    assert [call.request.url.split("?")[0] for call in stripe_http.calls] == [f"{STRIPE}/v1/payment_intents/pi_elsewhere"]
    assert _send(client, "invoice_payment.paid", invoice_payment("inpay_other", intent="pi_elsewhere"), "evt_3",
                 CREATED + 1) == "handled"
    assert len(stripe_http.calls) == 1  # known now: not read again


def test_the_invoices_own_default_payment_is_a_payment_once_paid_on_the_hosted_page(client, db, owed, attempt,
                                                                                    stripe_http):
    """Until someone pays it, the default payment is only what remains; paid (on Stripe's hosted invoice page)
    it is a payment, made as its PaymentIntent's charge says."""
    waiting = invoice_payment("inpay_default", intent="pi_default", is_default=True, status="open", amount=30000)
    assert _send(client, "invoice_payment.paid", waiting, "evt_1") == "handled"
    assert _credited(db) == [] and len(stripe_http.calls) == 0
    _hosted_intent(stripe_http, "pi_default", "card")
    paid = invoice_payment("inpay_default", intent="pi_default", is_default=True, amount=30000)
    assert _send(client, "invoice_payment.paid", paid, "evt_2", CREATED + 1) == "handled"
    assert _credited(db) == [(30000, "paid", None)] and _methods(db) == ["card"] and _received(db) == 0
    assert len(stripe_http.calls) == 1


def test_a_pay_clicks_payment_is_not_read(client, db, owed, attempt, stripe_http):
    """Its charge's events say how it was paid (their metadata names the click)."""
    attempt.stripe_payment_intent_id = "pi_test_req_1"
    db.session.commit()
    assert _send(client, "invoice_payment.paid", invoice_payment(), "evt_1") == "handled"
    assert _credited(db) == [(9000, "paid", attempt.id)] and _methods(db) == [None] and len(stripe_http.calls) == 0


def test_a_payment_of_an_invoice_not_ours_is_ignored(client, db, owed, attempt, stripe_http):
    assert _send(client, "invoice_payment.paid", invoice_payment(invoice="in_someone_else"), "evt_1") == "handled"
    assert _credited(db) == [] and len(stripe_http.calls) == 0


# -- the invoice's events ------------------------------------------------------------------------------------

def test_the_invoices_events_cost_no_stripe_call(client, db, owed, attempt, stripe_http):
    for n, (event_type, obj) in enumerate([("invoice.finalized", admin_invoice(owed)),
                                           ("invoice.updated", admin_invoice(owed, paid=9000)),
                                           ("invoice.overdue", admin_invoice(owed, paid=9000)),
                                           ("invoice.paid", admin_invoice(owed, status="paid", paid=30000))]):
        assert _send(client, event_type, obj, f"evt_{n}", CREATED + n) == "handled"
    assert len(stripe_http.calls) == 0
    assert _state(db, attempt.id, owed)[3:] == ("paid", 30000, 0)


def test_an_older_snapshot_never_moves_the_amounts_back(client, db, owed, attempt):
    assert _send(client, "invoice.updated", admin_invoice(owed, paid=9000), "evt_new", CREATED + 5) == "handled"
    assert _send(client, "invoice.updated", admin_invoice(owed, paid=0), "evt_old", CREATED) == "outdated"
    assert _state(db, attempt.id, owed)[3:] == ("open", 9000, 21000)


def test_snapshots_of_the_same_second_in_any_order_never_move_the_amounts_back(client, db, owed, attempt):
    """Stripe's `created` has a one-second precision: events of one second are all applied, in the order they
    come, and what was paid only grows."""
    for n, paid in enumerate([15000, 9000, 0, 21000, 9000]):
        assert _send(client, "invoice.updated", admin_invoice(owed, paid=paid), f"evt_{n}") == "handled"
    assert _state(db, attempt.id, owed)[3:] == ("open", 21000, 9000)


def test_a_paid_invoice_stays_paid_whatever_comes_after(client, db, owed, attempt):
    _send(client, "invoice.paid", admin_invoice(owed, status="paid", paid=30000), "evt_paid")
    _send(client, "invoice.updated", admin_invoice(owed, paid=9000), "evt_open")
    _send(client, "invoice.overdue", admin_invoice(owed, paid=0), "evt_overdue")
    assert _state(db, attempt.id, owed)[3:] == ("paid", 30000, 0)


def test_a_voided_invoice_owes_nothing_and_its_requests_cannot_be_paid(client, db, owed, attempt):
    _send(client, "invoice.updated", admin_invoice(owed, paid=9000), "evt_open")
    _send(client, "invoice.voided", admin_invoice(owed, status="void", paid=9000), "evt_void", CREATED + 1)
    _send(client, "invoice.updated", admin_invoice(owed, paid=9000), "evt_late", CREATED + 1)
    assert _state(db, attempt.id, owed)[3:] == ("void", 9000, 0)
    with pytest.raises(paying.NotPayable):
        paying.check_payable(db.session.get(PaymentAttempt, attempt.id).request, 9000)


def test_an_invoice_of_another_integration_is_ignored(client, db, owed, attempt, stripe_http):
    other = stripe_object("invoice", id="in_not_ours", status="open", metadata={}, amount_paid=100, total=1000,
                          amount_remaining=900)
    assert _send(client, "invoice.updated", other, "evt_1") == "handled"
    assert _state(db, attempt.id, owed)[3:] == ("open", 0, 30000) and len(stripe_http.calls) == 0


def test_an_invoice_named_by_its_metadata_only_gets_its_stripe_id(client, db, owed, stripe_http):
    """Our commit after Stripe created the invoice was lost: its first event names our invoice by its
    metadata. The invoice is then ours by its Stripe id too, so that its payments (which name the invoice by
    id) are recorded and payment can be asked on it."""
    invoice = db.session.get(Invoice, owed)
    invoice.status, invoice.stripe_invoice_id, invoice.number, invoice.stripe_customer_id = "issuing", None, None, None
    db.session.commit()
    assert _send(client, "invoice.finalized", admin_invoice(owed, number="ABC-0300"), "evt_1") == "handled"
    db.session.expire_all()
    invoice = db.session.get(Invoice, owed)
    assert (invoice.status, invoice.number, invoice.stripe_invoice_id, invoice.stripe_customer_id) == \
        ("open", "ABC-0300", STRIPE_INVOICE, "cus_test_1")
    _hosted_intent(stripe_http, "pi_x", "card")
    assert _send(client, "invoice_payment.paid", invoice_payment("inpay_other", intent="pi_x"), "evt_2") == "handled"
    assert _credited(db) == [(9000, "paid", None)] and _methods(db) == ["card"]


def test_an_invoice_whose_metadata_names_an_invoice_issued_as_another_is_ignored(client, db, owed, attempt):
    copy = admin_invoice(owed, stripe_id="in_a_copy", paid=30000, status="paid")
    assert _send(client, "invoice.paid", copy, "evt_1") == "handled"
    assert _state(db, attempt.id, owed)[3:] == ("open", 0, 30000)


# -- sessions that are not paid (yet) ---------------------------------------------------------------------------

def test_a_sepa_debit_waits_then_fails_without_reading_stripe(client, db, owed, attempt, stripe_http):
    processing = attempt_session(attempt, payment_status="unpaid")
    assert _send(client, "checkout.session.completed", processing, "evt_1") == "handled"
    assert _state(db, attempt.id, owed)[:3] == ("processing", "open", 0)
    assert db.session.get(PaymentAttempt, attempt.id).stripe_payment_intent_id == "pi_test_req_1"
    with pytest.raises(paying.NotPayable, match="processing"):
        paying.reserve(client.application.extensions["lms_stripe"], db.session.get(PaymentAttempt, attempt.id)
                       .request, 9000, return_url="https://lms.test/payments/pay/x")
    db.session.rollback()
    assert _send(client, "checkout.session.async_payment_failed", processing, "evt_2", CREATED + 1) == "handled"
    stored = db.session.get(PaymentAttempt, attempt.id)
    assert (stored.status, stored.failure_reason) == ("failed", "The bank debit failed.")
    assert paying.live_attempt(db.session, stored.request_id) is None  # the learner may pay again
    assert len(stripe_http.calls) == 0


def test_a_sepa_debit_that_succeeds_is_attached(client, db, owed, attempt, stripe_http):
    attach = stub_attach(stripe_http, _attached_answer(owed))
    _send(client, "checkout.session.completed", attempt_session(attempt, payment_status="unpaid"), "evt_1")
    assert attach.call_count == 0  # Stripe attaches only a succeeded payment
    _send(client, "checkout.session.async_payment_succeeded", attempt_session(attempt), "evt_2", CREATED + 1)
    assert attach.call_count == 1
    assert _state(db, attempt.id, owed) == ("attached", "paid", 9000, "open", 9000, 21000)


def test_a_failed_debits_reason_is_the_one_the_event_carries(client, db, owed, attempt, stripe_http):
    intent = stripe_object("payment_intent", id="pi_test_req_1", status="requires_payment_method",
                           last_payment_error={"message": "The account is closed.", "type": "invalid_request_error"})
    _send(client, "checkout.session.completed", attempt_session(attempt, payment_status="unpaid"), "evt_1")
    _send(client, "checkout.session.async_payment_failed", attempt_session(attempt, payment_status="unpaid",
                                                                           intent=intent), "evt_2", CREATED + 1)
    assert db.session.get(PaymentAttempt, attempt.id).failure_reason == "The account is closed."
    assert len(stripe_http.calls) == 0


def test_an_expired_session_closes_its_attempt_and_a_late_payment_is_still_credited(client, db, owed, attempt,
                                                                                    stripe_http):
    assert _send(client, "checkout.session.expired", attempt_session(attempt, status="expired",
                                                                     payment_status="unpaid", intent=None),
                 "evt_1") == "handled"
    assert _state(db, attempt.id, owed)[0] == "expired" and len(stripe_http.calls) == 0
    stub_attach(stripe_http, _attached_answer(owed))
    assert _send(client, "checkout.session.completed", attempt_session(attempt), "evt_2", CREATED) == "handled"
    assert _state(db, attempt.id, owed) == ("attached", "paid", 9000, "open", 9000, 21000)


def test_a_paid_session_is_never_moved_back_by_an_older_one(client, db, owed, attempt, stripe_http):
    stub_attach(stripe_http, _attached_answer(owed))
    _send(client, "checkout.session.completed", attempt_session(attempt), "evt_paid", CREATED + 1)
    assert _send(client, "checkout.session.expired", attempt_session(attempt, status="expired",
                                                                     payment_status="unpaid", intent=None),
                 "evt_expired", CREATED + 1) == "handled"  # the same second: applied, and changes nothing
    assert _send(client, "checkout.session.completed", attempt_session(attempt, payment_status="unpaid"),
                 "evt_old", CREATED) == "outdated"
    assert _state(db, attempt.id, owed)[0] == "attached"


@pytest.mark.parametrize("changes", [{"client_reference_id": "lms-attempt-999"},
                                     {"client_reference_id": None},
                                     {"id": "cs_test_another_session"}])
def test_a_session_that_only_claims_one_of_our_attempts_is_ignored(client, db, owed, attempt, stripe_http, changes):
    forged = dict(attempt_session(attempt), **changes)
    assert _send(client, "checkout.session.completed", forged, "evt_1") == "handled"
    assert _state(db, attempt.id, owed) == ("open", "open", 0, "open", 0, 30000)
    assert len(stripe_http.calls) == 0


def test_a_session_recorded_before_our_commit_gets_its_id(client, db, owed, stripe_http):
    """Stripe created the session but our commit of its id was lost: the event names our attempt."""
    request_id, _token = open_request(db, owed)
    attempt = open_attempt(db, request_id, session_id=None)
    stub_attach(stripe_http, _attached_answer(owed))
    _send(client, "checkout.session.completed", attempt_session(attempt, session_id="cs_test_lost"), "evt_1")
    db.session.expire_all()
    stored = db.session.get(PaymentAttempt, attempt.id)
    assert (stored.status, stored.stripe_checkout_session_id) == ("attached", "cs_test_lost")


def test_a_failed_attaching_leaves_the_payment_recorded_for_reconciliation(client, db, owed, attempt, stripe_http):
    stripe_http.add(responses.POST, f"{STRIPE}/v1/invoices/{STRIPE_INVOICE}/attach_payment", status=500,
                    json={"error": {"type": "api_error", "message": "Something went wrong."}})
    assert _send(client, "checkout.session.completed", attempt_session(attempt), "evt_1") == "handled"
    assert _state(db, attempt.id, owed) == ("paid", "open", 0, "open", 0, 30000)
    assert db.session.get(ObjectVersion, attempt.stripe_checkout_session_id) is not None


# -- two deliveries at once (PostgreSQL) ----------------------------------------------------------------------

@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="two deliveries racing on one payment need PostgreSQL")
def test_two_events_of_one_payment_at_once_credit_the_request_once(app, db, owed, attempt, stripe_http):
    """`invoice_payment.paid` delivered twice at once (two event ids, two workers): one records the
    payment and credits the request, the other waits for it and finds it paid."""
    stub_attach(stripe_http, _attached_answer(owed, payments=False))
    _send(app.test_client(), "checkout.session.completed", attempt_session(attempt), "evt_1")
    statuses, failures = [], []
    ready = threading.Barrier(2, timeout=30)

    def deliver(event_id):
        try:
            body = event("invoice_payment.paid", invoice_payment(), event_id)
            body["created"] = CREATED + 1
            with app.app_context():
                client = app.test_client()
                ready.wait()
                statuses.append(post_webhook(client, body, SECRET).status_code)
        except Exception as err:  # noqa: BLE001 - reported below
            failures.append(err)

    db.session.commit()
    threads = [threading.Thread(target=deliver, args=(f"evt_pay_{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == [] and statuses == [200, 200]
    assert _state(db, attempt.id, owed) == ("attached", "paid", 9000, "open", 9000, 21000)
    assert _credited(db) == [(9000, "paid", attempt.id)] and _received(db) == 1



# -- refunds and disputes of a Pay click's payment ----------------------------------------------------------


@pytest.mark.parametrize("event_type", ["refund.created", "charge.dispute.created"])
def test_a_refund_or_dispute_of_a_pay_clicks_payment_reads_nothing_from_stripe(client, db, owed, attempt,
                                                                               stripe_http, event_type):
    """The payment is a Pay click's, known by its PaymentIntent: not a purchase's, whose payment might not be
    recorded yet. Nothing is read from Stripe to find that out (`stripe_http` fails any call)."""
    from .refund_support import refund

    attempt.status, attempt.stripe_payment_intent_id = "attached", "pi_test_attempt_1"
    db.session.commit()
    if event_type.startswith("refund"):
        obj = refund(refund_id="re_req_1", amount=9000, payment_intent="pi_test_attempt_1")
    else:
        obj = stripe_object("dispute", id="dp_req_1", amount=9000, currency="eur", payment_intent="pi_test_attempt_1",
                            charge="ch_test_attempt_1", status="needs_response")
    assert _send(client, event_type, obj, "evt_refund_of_click") == "handled"
    assert [call.request.url for call in stripe_http.calls] == []


def test_a_dispute_of_a_pay_clicks_payment_is_recorded_and_shown_on_its_invoice(client, db, owed, attempt,
                                                                                stripe_http):
    from lms_stripe_plugin.core.models import Dispute, Event

    from .conftest import as_user

    attempt.status, attempt.stripe_payment_intent_id = "attached", "pi_test_attempt_1"
    db.session.commit()

    def dispute(status: str, amount: int = 9000, currency: str = "eur") -> dict:
        return stripe_object("dispute", id="dp_req_1", amount=amount, currency=currency,
                             payment_intent="pi_test_attempt_1", charge="ch_test_attempt_1", status=status,
                             reason="fraudulent")

    assert _send(client, "charge.dispute.created", dispute("needs_response"), "evt_dp_1") == "handled"
    assert _send(client, "charge.dispute.closed", dispute("lost"), "evt_dp_2", created=CREATED + 20) == "handled"
    assert _send(client, "charge.dispute.updated", dispute("under_review"), "evt_dp_old",
                 created=CREATED + 10) == "outdated"  # an older snapshot arriving late changes nothing
    db.session.expire_all()
    row = db.session.scalar(select(Dispute))
    assert (row.attempt_id, row.purchase_id, row.amount, row.currency, row.status) == \
        (attempt.id, None, 9000, "EUR", "lost")
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action.in_(
        [AuditAction.DISPUTE_OPENED, AuditAction.DISPUTE_UPDATED])).order_by(AuditEntry.id)).all()
    assert [(e.action, e.user_id) for e in entries] == [("dispute_opened", "u1"), ("dispute_updated", "u1")]

    page = client.get(f"/payments/admin/invoices/{owed}", headers=as_user("adm")).get_data(as_text=True)
    assert "dp_req_1" in page and "bank disputed a payment of this invoice" in page
    assert "disputed their payment of €90.00 for invoice ABC-0100" in page
    assert "is now: lost" in page

    # In another currency: rejected. Of more than the Pay click paid: not applied, kept for another delivery (as
    # a purchase's dispute is). Neither is recorded.
    other = dict(dispute("needs_response", currency="usd"), id="dp_bad_0")
    assert _send(client, "charge.dispute.created", other, "evt_bad_0") == "rejected"
    more = event("charge.dispute.created", dict(dispute("needs_response", amount=9001), id="dp_bad_1"), "evt_bad_1")
    assert post_webhook(client, dict(more, created=CREATED), SECRET).status_code == 500
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Dispute)) == 1
    assert (db.session.get(Event, "evt_bad_0").reason, db.session.get(Event, "evt_bad_1").status) == \
        ("mismatch", "failed")
    assert [call.request.url for call in stripe_http.calls] == []


def test_a_refund_of_a_pay_clicks_payment_made_in_the_dashboard_is_written_in_the_invoices_history(
        client, db, owed, attempt, stripe_http):
    """Once, whatever the number of its events; the plugin's own refunds (a top-up's) are not noted."""
    from .conftest import as_user
    from .refund_support import refund

    attempt.status, attempt.stripe_payment_intent_id = "attached", "pi_test_attempt_1"
    db.session.commit()
    made = refund(refund_id="re_dash_1", amount=4000, payment_intent="pi_test_attempt_1")
    assert _send(client, "refund.created", dict(made, status="pending"), "evt_re_1") == "handled"
    assert _send(client, "refund.created", made, "evt_re_2", created=CREATED + 1) == "handled"
    assert _send(client, "refund.updated", made, "evt_re_3", created=CREATED + 2) == "handled"
    ours = dict(refund(refund_id="re_topup_1", amount=1000, payment_intent="pi_test_attempt_1"),
                metadata={"lms_topup_id": "7"})
    assert _send(client, "refund.created", ours, "evt_re_4") == "handled"
    db.session.expire_all()
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == AuditAction.REFUND_SUCCEEDED)).all()
    assert [(e.user_id, '"re_dash_1"' in e.details) for e in entries] == [("u1", True)]
    page = client.get(f"/payments/admin/invoices/{owed}", headers=as_user("adm")).get_data(as_text=True)
    assert "€40.00 of the payment of" in page and "for invoice ABC-0100 was refunded outside this site" in page
    assert _state(db, attempt.id, owed)[3:] == ("open", 0, 30000)  # the invoice is left as Stripe keeps it
    assert [call.request.url for call in stripe_http.calls] == []
