"""Administrators cancel a paid purchase (credit note + full refund + access revoked), refund part of it,
and retry a refund that failed. Stripe is stubbed at the HTTP boundary; the real SDK builds every request."""
import re

import pytest
import responses
from sqlalchemy import delete, select

from lms_stripe_plugin.core.models import AuditEntry, Invoice, Purchase, Refund

from .conftest import as_user
from .refund_support import (calls, credit_note, csrf, enrolled, idempotency_key, paid_purchase,
                             purchase_and_invoice, refund, refunds_of, replace_get_refund, rows, send_event, sent,
                             stub_create_refund, stub_credit_note, stub_get_refund, text, unenrolls)
from .stripe_stubs import checkout_session, stripe_error, stub_create_session, stub_tax_rate

UNREACHABLE = responses.ConnectionError("Stripe is unreachable")


@pytest.fixture
def paid(db, host, people, priced, configured):
    """Léa (u1) bought "Python basics" (c1) for 49.90 EUR: (purchase id, invoice id)."""
    return paid_purchase(db, host)


def cancel_url(invoice_id):
    return f"/payments/admin/invoices/{invoice_id}/cancel"


def refund_url(invoice_id):
    return f"/payments/admin/invoices/{invoice_id}/refund"


def cancel(client, invoice_id, reason="Asked by the learner", user="adm"):
    token = csrf(client, "/payments/admin/settings")  # the cancel page has no form once nothing is left
    return client.post(cancel_url(invoice_id), data={"csrf_token": token, "reason": reason}, headers=as_user(user))


def partial_refund(client, invoice_id, amount, *, revoke=False, reason=None):
    token = csrf(client, refund_url(invoice_id))
    data = {"csrf_token": token, "amount": amount}
    if revoke:
        data["revoke_access"] = "on"
    if reason:
        data["reason"] = reason
    return client.post(refund_url(invoice_id), data=data, headers=as_user("adm"))


def amount_error(response) -> str:
    """The message shown next to the amount of the refund form."""
    found = re.search(r'id="amount-error">([^<]+)<', response.get_data(as_text=True))
    assert found, "no error message next to the amount"
    return found.group(1)


def snapshot(obj) -> dict:
    return {column.key: getattr(obj, column.key) for column in type(obj).__table__.columns}


def count_signals(signals, name):
    return len(signals.get(name, []))


# -- the cancel page -------------------------------------------------------------------------------

def test_cancel_page_shows_the_learner_course_amount_consequences_and_a_reason_field(client, paid, stripe_http):
    _purchase_id, invoice_id = paid
    page = client.get(cancel_url(invoice_id), headers=as_user("adm"))
    assert page.status_code == 200
    body, shown = page.get_data(as_text=True), text(page)
    assert "Léa" in shown and "lea@example.com" in shown and "Python basics" in shown
    assert "€49.90" in shown and "ABC-0001" in shown
    assert "Stripe issues a credit note for invoice ABC-0001 and refunds €49.90" in shown
    assert "Léa loses access to “Python basics” now, and can buy it again later." in shown
    assert 'name="reason"' in body and 'name="csrf_token"' in body
    assert len(stripe_http.calls) == 0


def test_cancel_page_of_an_unknown_invoice_is_404(client, paid):
    assert client.get(cancel_url(999), headers=as_user("adm")).status_code == 404


# -- cancelling ------------------------------------------------------------------------------------

def test_cancel_issues_a_credit_note_refunds_and_revokes_access(client, db, host, paid, stripe_http, signals):
    purchase_id, invoice_id = paid
    stub_credit_note(stripe_http, credit_note(memo="Asked by the learner"))
    stub_get_refund(stripe_http, refund())

    response = cancel(client, invoice_id, reason="Asked by the learner")

    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/payments/admin/invoices/{invoice_id}")
    (row,) = refunds_of(db, purchase_id)
    (call,) = calls(stripe_http, "POST", "/v1/credit_notes")
    params = sent(call)
    assert params["invoice"] == "in_test_1"
    assert params["refund_amount"] == "4990" and params["amount"] == "4990"
    assert params["memo"] == "Asked by the learner"
    assert idempotency_key(call) == f"lms-refund-{row.id}"
    assert len(calls(stripe_http, "GET", "/v1/refunds/re_test_1")) == 1

    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert invoice.status == "cancelled" and invoice.amount_refunded == 4990
    assert (invoice.credit_note_id, invoice.credit_note_number, invoice.credit_note_pdf_url) == \
        ("cn_test_1", "ABC-0001-CN-01", "https://pay.stripe.com/credit_notes/cn_test_1/pdf")
    assert purchase.status == "cancelled" and purchase.amount_refunded == 4990 and purchase.cancelled_at
    assert (row.status, row.full, row.origin, row.actor_id, row.reason, row.amount) == \
        ("succeeded", True, "admin", "adm", "Asked by the learner", 4990)
    assert (row.stripe_refund_id, row.stripe_credit_note_id) == ("re_test_1", "cn_test_1")

    assert not enrolled(host) and unenrolls(host) == 1
    assert count_signals(signals, "purchase_cancelled") == 1 and count_signals(signals, "access_revoked") == 1
    cancelled = signals["purchase_cancelled"][0]
    assert cancelled["purchase"].id == purchase_id and cancelled["invoice"].id == invoice_id
    assert cancelled["actor_id"] == "adm"
    assert (signals["access_revoked"][0]["user_id"], signals["access_revoked"][0]["course_id"]) == ("u1", "c1")
    assert "refund_failed" not in signals

    page = client.get(response.headers["Location"], headers=as_user("adm"))
    shown = text(page)
    assert "The purchase is cancelled" in shown
    assert "Cancelled" in shown and "ABC-0001-CN-01" in shown and "Revoked" in shown
    assert 'href="https://pay.stripe.com/credit_notes/cn_test_1/pdf"' in page.get_data(as_text=True)
    assert "Cancel the purchase" not in shown


def test_cancel_with_a_pending_refund_is_refund_pending_until_stripe_confirms(client, db, host, paid, stripe_http,
                                                                              signals):
    purchase_id, invoice_id = paid
    stub_credit_note(stripe_http, credit_note())
    stub_get_refund(stripe_http, refund(status="pending"))

    assert cancel(client, invoice_id).status_code == 302

    purchase, invoice = purchase_and_invoice(db, purchase_id)
    (row,) = refunds_of(db, purchase_id)
    assert invoice.status == "refund_pending" and invoice.amount_refunded == 0
    assert invoice.credit_note_number == "ABC-0001-CN-01"
    assert row.status == "pending" and purchase.amount_refunded == 0
    assert purchase.status == "cancelled" and not enrolled(host)  # access is revoked at once
    assert count_signals(signals, "purchase_cancelled") == 1 and count_signals(signals, "access_revoked") == 1
    shown = text(client.get(f"/payments/admin/invoices/{invoice_id}", headers=as_user("adm")))
    assert "Refund pending" in shown and "Cancelled" not in shown

    confirmed = refund(status="succeeded")
    replace_get_refund(stripe_http, confirmed)
    for _delivery in range(2):
        assert send_event(client, "refund.updated", confirmed, "evt_refund_updated_1").status_code == 200

    purchase, invoice = purchase_and_invoice(db, purchase_id)
    (row,) = refunds_of(db, purchase_id)
    assert invoice.status == "cancelled" and invoice.amount_refunded == 4990
    assert row.status == "succeeded" and purchase.amount_refunded == 4990
    assert unenrolls(host) == 1
    assert count_signals(signals, "purchase_cancelled") == 1 and count_signals(signals, "access_revoked") == 1


@pytest.mark.parametrize("stripe_status", ["succeeded", "pending"])
def test_an_administrators_cancellation_is_announced_as_cancelled(client, db, paid, stripe_http, signals,
                                                                   stripe_status):
    """The signals and the audit log give the same reason whether Stripe confirms the refund at once or later."""
    purchase_id, invoice_id = paid
    stub_credit_note(stripe_http, credit_note())
    stub_get_refund(stripe_http, refund(status=stripe_status))

    assert cancel(client, invoice_id).status_code == 302

    assert [s["reason"] for s in signals["purchase_cancelled"]] == ["cancelled"]
    assert [s["reason"] for s in signals["access_revoked"]] == ["cancelled"]
    (entry,) = rows(db, AuditEntry, AuditEntry.action == "access_revoked")
    assert (entry.actor_id, entry.purchase_id) == ("adm", purchase_id) and '"reason": "cancelled"' in entry.details


def test_the_learner_can_buy_the_course_again_and_old_rows_are_kept(client, db, host, paid, stripe_http):
    purchase_id, invoice_id = paid
    stub_credit_note(stripe_http, credit_note())
    stub_get_refund(stripe_http, refund())
    assert cancel(client, invoice_id).status_code == 302
    old_purchase, old_invoice = (snapshot(row) for row in purchase_and_invoice(db, purchase_id))

    stub_tax_rate(stripe_http)
    stub_create_session(stripe_http, checkout_session(999, session_id="cs_test_again"))
    token = csrf(client, "/payments/courses/c1", user="u1")
    response = client.post("/payments/checkout/c1", data={"csrf_token": token}, headers=as_user("u1"))

    assert response.status_code == 303
    assert response.headers["Location"] == "https://checkout.stripe.com/c/pay/cs_test_again"
    purchases = rows(db, Purchase, Purchase.user_id == "u1", Purchase.course_id == "c1")
    old, new = purchases
    assert old.id == purchase_id and new.id != purchase_id
    assert (new.status, new.stripe_checkout_session_id, new.amount) == ("open", "cs_test_again", 4990)
    (session_call,) = calls(stripe_http, "POST", "/v1/checkout/sessions")
    assert sent(session_call)["metadata[lms_purchase_id]"] == str(new.id)
    assert idempotency_key(session_call) == f"lms-checkout-{new.id}"
    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert snapshot(purchase) == old_purchase and snapshot(invoice) == old_invoice
    assert len(rows(db, Invoice)) == 1


def test_cancelling_an_invoice_twice_is_refused_without_calling_stripe(client, db, host, paid, stripe_http, signals):
    purchase_id, invoice_id = paid
    stub_credit_note(stripe_http, credit_note())
    stub_get_refund(stripe_http, refund())
    assert cancel(client, invoice_id).status_code == 302
    before = len(stripe_http.calls)

    again = cancel(client, invoice_id)

    assert again.status_code == 409 and "already cancelled" in text(again)
    assert len(stripe_http.calls) == before
    assert len(refunds_of(db, purchase_id)) == 1 and unenrolls(host) == 1
    assert count_signals(signals, "purchase_cancelled") == 1


def test_a_reason_longer_than_500_characters_is_refused_without_calling_stripe(client, db, host, paid, stripe_http):
    purchase_id, invoice_id = paid
    response = cancel(client, invoice_id, reason="x" * 501)
    assert 400 <= response.status_code < 500 and "At most 500 characters" in text(response)
    assert len(stripe_http.calls) == 0 and refunds_of(db, purchase_id) == []
    assert enrolled(host)


# -- Stripe unreachable, Stripe refusing -----------------------------------------------------------

def test_stripe_unreachable_marks_nothing_and_the_retry_sends_the_same_idempotency_key(client, db, host, paid,
                                                                                       stripe_http, signals):
    purchase_id, invoice_id = paid
    stub_credit_note(stripe_http, UNREACHABLE)

    first = cancel(client, invoice_id)

    assert first.status_code != 302 and "Stripe could not be reached" in text(first)
    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert (invoice.status, invoice.amount_refunded, invoice.credit_note_id) == ("paid", 0, None)
    assert (purchase.status, purchase.amount_refunded) == ("paid", 0)
    assert enrolled(host) and unenrolls(host) == 0 and signals == {}
    assert all(r.status not in ("pending", "succeeded", "failed") for r in refunds_of(db, purchase_id))

    stripe_http.replace(responses.POST, "https://api.stripe.com/v1/credit_notes", json=credit_note())
    stub_get_refund(stripe_http, refund())
    second = cancel(client, invoice_id)

    assert second.status_code == 302
    first_call, second_call = calls(stripe_http, "POST", "/v1/credit_notes")
    assert idempotency_key(first_call) == idempotency_key(second_call) is not None
    assert sent(first_call) == sent(second_call)
    (row,) = refunds_of(db, purchase_id)
    assert idempotency_key(second_call) == f"lms-refund-{row.id}" and row.status == "succeeded"
    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert invoice.status == "cancelled" and purchase.amount_refunded == 4990
    assert not enrolled(host) and unenrolls(host) == 1
    assert count_signals(signals, "purchase_cancelled") == 1


def test_after_stripe_was_unreachable_the_invoice_page_still_offers_the_cancellation(client, db, paid, stripe_http):
    """Nothing was changed: the invoice still shows its whole amount as refundable and the Cancel button."""
    _purchase_id, invoice_id = paid
    stub_credit_note(stripe_http, UNREACHABLE)
    assert "Stripe could not be reached" in text(cancel(client, invoice_id))

    shown = text(client.get(f"/payments/admin/invoices/{invoice_id}", headers=as_user("adm")))
    assert "Still refundable €49.90" in shown
    assert "Cancel the purchase" in shown


def test_a_lost_answer_then_stripes_refund_event_then_the_retry_refund_once(client, db, host, paid, stripe_http,
                                                                            signals):
    """Stripe made the credit note and its refund but its answer was lost; the refund's event arrives, then the
    administrator tries again (same idempotency key, Stripe replays its answer): one refund, counted once."""
    purchase_id, invoice_id = paid
    stub_credit_note(stripe_http, UNREACHABLE)
    assert "Stripe could not be reached" in text(cancel(client, invoice_id))

    stub_get_refund(stripe_http, refund())
    assert send_event(client, "refund.created", refund(), "evt_refund_created_lost").status_code == 200
    stripe_http.replace(responses.POST, "https://api.stripe.com/v1/credit_notes", json=credit_note())

    again = cancel(client, invoice_id)

    assert again.status_code < 500
    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert invoice.status == "cancelled"
    assert invoice.amount_refunded == 4990 and purchase.amount_refunded == 4990
    assert [r.stripe_refund_id for r in refunds_of(db, purchase_id) if r.stripe_refund_id] == ["re_test_1"]
    assert unenrolls(host) == 1 and count_signals(signals, "purchase_cancelled") == 1


def test_a_partial_refund_stripe_made_though_its_answer_was_lost_is_never_asked_again(client, db, host, paid,
                                                                                      stripe_http):
    """Stripe made the credit note and its 10.00 refund but its answer was lost; the refund's event records it.
    Asking for the same 10.00 again, as the page said to, asks Stripe nothing: the administrator is told the
    refund was made, and it is counted once."""
    purchase_id, invoice_id = paid
    stub_credit_note(stripe_http, UNREACHABLE)
    assert "Stripe could not be reached" in text(partial_refund(client, invoice_id, "10.00"))
    assert send_event(client, "refund.created", refund(amount=1000), "evt_refund_created_lost").status_code == 200
    stripe_http.replace(responses.POST, "https://api.stripe.com/v1/credit_notes",
                        json=credit_note(cn_id="cn_test_2", amount=1000, refund_id="re_test_2"))
    stub_get_refund(stripe_http, refund(refund_id="re_test_2", amount=1000))

    again = partial_refund(client, invoice_id, "10.00")

    assert again.status_code == 400
    assert "Stripe made the refund of €10.00 asked for earlier" in amount_error(again)
    (asked,) = calls(stripe_http, "POST", "/v1/credit_notes")
    (row,) = refunds_of(db, purchase_id)
    assert idempotency_key(asked) == f"lms-refund-{row.id}"
    assert (row.origin, row.status, row.stripe_refund_id, row.amount) == ("admin", "succeeded", "re_test_1", 1000)
    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert purchase.amount_refunded == invoice.amount_refunded == 1000
    assert (invoice.status, purchase.status) == ("partially_refunded", "paid") and enrolled(host)

    # Its credit note comes in its event, and links the refund; another amount is a request of its own.
    made = credit_note(amount=1000)
    assert send_event(client, "credit_note.created", made, "evt_credit_note_lost").status_code == 200
    assert refunds_of(db, purchase_id)[0].stripe_credit_note_id == "cn_test_1"
    assert partial_refund(client, invoice_id, "5.00").status_code == 302
    assert [sent(call)["amount"] for call in calls(stripe_http, "POST", "/v1/credit_notes")] == ["1000", "500"]


def test_after_an_unconfirmed_cancellation_a_partial_refund_never_refunds_the_whole_amount(client, db, host, paid,
                                                                                           stripe_http):
    """A cancellation Stripe never confirmed must not be replayed in place of the 10.00 refund now asked for."""
    purchase_id, invoice_id = paid
    stub_credit_note(stripe_http, UNREACHABLE)
    assert "Stripe could not be reached" in text(cancel(client, invoice_id))
    stripe_http.replace(responses.POST, "https://api.stripe.com/v1/credit_notes",
                        json=credit_note(amount=1000, refund_id="re_test_2"))
    stub_get_refund(stripe_http, refund(refund_id="re_test_2", amount=1000))

    partial_refund(client, invoice_id, "10.00")

    later = calls(stripe_http, "POST", "/v1/credit_notes")[1:]
    assert [sent(call)["amount"] for call in later] in ([], ["1000"])
    purchase, _invoice = purchase_and_invoice(db, purchase_id)
    assert purchase.amount_refunded in (0, 1000)
    assert purchase.status == "paid" and enrolled(host)


def test_a_stripe_refusal_marks_the_refund_failed_and_changes_nothing_else(client, db, host, paid, stripe_http,
                                                                           signals):
    purchase_id, invoice_id = paid
    stripe_error(stripe_http, responses.POST, "/v1/credit_notes", 400, "invalid_request_error",
                 "Charge ch_test_1 has already been refunded.", code="charge_already_refunded")

    response = cancel(client, invoice_id)

    assert response.status_code != 302
    assert "Charge ch_test_1 has already been refunded." in text(response)
    (row,) = refunds_of(db, purchase_id)
    assert row.status == "failed" and "Charge ch_test_1 has already been refunded." in row.failure_reason
    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert (invoice.status, invoice.amount_refunded, invoice.credit_note_id) == ("paid", 0, None)
    assert (purchase.status, purchase.amount_refunded) == ("paid", 0)
    assert enrolled(host) and unenrolls(host) == 0
    assert "purchase_cancelled" not in signals and "access_revoked" not in signals
    assert calls(stripe_http, "GET", "/v1/refunds/re_test_1") == []


# -- a refund that fails, and its retry ------------------------------------------------------------

def _cancel_with_a_failing_refund(client, stripe_http, invoice_id):
    stub_credit_note(stripe_http, credit_note())
    stub_get_refund(stripe_http, refund(status="failed", failure_reason="expired_or_canceled_card"))
    return cancel(client, invoice_id)


def test_a_refund_that_fails_is_never_shown_as_refunded_and_can_be_retried(client, db, host, paid, stripe_http,
                                                                            signals):
    purchase_id, invoice_id = paid

    response = _cancel_with_a_failing_refund(client, stripe_http, invoice_id)

    assert response.status_code == 302
    (row,) = refunds_of(db, purchase_id)
    assert row.status == "failed" and "expired" in row.failure_reason  # Stripe's code, or its text
    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert invoice.status == "refund_failed" and invoice.amount_refunded == 0
    assert purchase.amount_refunded == 0 and purchase.status == "paid" and enrolled(host)
    (failed_signal,) = signals["refund_failed"]
    assert failed_signal["refund"].id == row.id and failed_signal["reason"] == "The card has expired or was cancelled."
    assert "purchase_cancelled" not in signals
    (entry,) = rows(db, AuditEntry, AuditEntry.action == "refund_failed")
    assert entry.purchase_id == purchase_id

    page = client.get(f"/payments/admin/invoices/{invoice_id}", headers=as_user("adm"))
    body, shown = page.get_data(as_text=True), text(page)
    assert "The card has expired or was cancelled." in shown and "Refund failed" in shown
    assert "Retry the refund" in shown and f'action="/payments/admin/refunds/{row.id}/retry"' in body
    assert 'class="badge ok">Refunded' not in body and "Cancelled" not in shown


def test_the_confirmation_does_not_claim_a_cancellation_when_the_refund_failed(client, paid, stripe_http):
    _purchase_id, invoice_id = paid
    response = _cancel_with_a_failing_refund(client, stripe_http, invoice_id)
    shown = text(client.get(response.headers["Location"], headers=as_user("adm")))
    assert "The card has expired or was cancelled." in shown
    assert "The purchase is cancelled" not in shown and "the refund is on its way" not in shown


def test_retrying_a_failed_refund_refunds_through_the_payment_intent_with_a_new_key(client, db, host, paid,
                                                                                     stripe_http, signals):
    purchase_id, invoice_id = paid
    _cancel_with_a_failing_refund(client, stripe_http, invoice_id)
    (failed,) = refunds_of(db, purchase_id)
    stub_create_refund(stripe_http, refund(refund_id="re_test_2", status="succeeded"))
    token = csrf(client, f"/payments/admin/invoices/{invoice_id}")

    response = client.post(f"/payments/admin/refunds/{failed.id}/retry", data={"csrf_token": token},
                           headers=as_user("adm"))

    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/payments/admin/invoices/{invoice_id}")
    (call,) = calls(stripe_http, "POST", "/v1/refunds")
    params = sent(call)
    assert params["payment_intent"] == "pi_test_1" and params["amount"] == "4990"
    old, retry = refunds_of(db, purchase_id)
    assert idempotency_key(call) == f"lms-refund-retry-{retry.id}" != old.idempotency_key
    assert old.status == "replaced" and (retry.status, retry.stripe_refund_id) == ("succeeded", "re_test_2")
    assert (retry.replaces_id, old.replaces_id) == (old.id, None)  # the retry's row names the refund it replaces
    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert invoice.status == "cancelled" and invoice.amount_refunded == 4990 and purchase.amount_refunded == 4990
    assert purchase.status == "cancelled" and not enrolled(host) and unenrolls(host) == 1
    assert count_signals(signals, "purchase_cancelled") == 1 and count_signals(signals, "access_revoked") == 1
    page = client.get(response.headers["Location"], headers=as_user("adm"))
    assert "Retry the refund" not in text(page) and 'class="badge ok">Refunded' in page.get_data(as_text=True)


def test_a_retry_stripe_cannot_reach_can_be_retried_again_with_the_same_key(client, db, host, paid, stripe_http):
    """Nothing was changed: the page still offers "Retry the refund", and that second retry reuses the key."""
    purchase_id, invoice_id = paid
    _cancel_with_a_failing_refund(client, stripe_http, invoice_id)
    (failed,) = refunds_of(db, purchase_id)
    stub_create_refund(stripe_http, UNREACHABLE)
    token = csrf(client, f"/payments/admin/invoices/{invoice_id}")

    first = client.post(f"/payments/admin/refunds/{failed.id}/retry", data={"csrf_token": token},
                        headers=as_user("adm"))
    page = client.get(first.headers["Location"], headers=as_user("adm"))
    assert "Stripe could not be reached" in text(page)
    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert invoice.amount_refunded == 0 and invoice.status == "refund_failed" and enrolled(host)
    retry_form = re.search(r'action="(/payments/admin/refunds/\d+/retry)"', page.get_data(as_text=True))
    assert retry_form, "the invoice page no longer offers to retry the refund"

    stripe_http.replace(responses.POST, "https://api.stripe.com/v1/refunds",
                        json=refund(refund_id="re_test_2", status="succeeded"))
    assert client.post(retry_form.group(1), data={"csrf_token": token}, headers=as_user("adm")).status_code == 302

    first_call, second_call = calls(stripe_http, "POST", "/v1/refunds")
    assert idempotency_key(first_call) == idempotency_key(second_call)
    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert invoice.status == "cancelled" and invoice.amount_refunded == 4990


@pytest.mark.parametrize("audit_entry", ["kept", "deleted"])
def test_a_retry_stripe_made_though_its_answer_was_lost_is_never_asked_again(client, db, host, paid, stripe_http,
                                                                             audit_entry):
    """A retry whose answer was lost, recorded by its refund's event (which names our row in its metadata):
    retrying the failed refund again asks Stripe nothing, and the failed refund is marked replaced. The retry's
    row names the refund it replaces: the audit log, which people read, is not needed for it."""
    purchase_id, invoice_id = paid
    stub_credit_note(stripe_http, credit_note(amount=1000))
    stub_get_refund(stripe_http, refund(amount=1000, status="failed", failure_reason="expired_or_canceled_card"))
    partial_refund(client, invoice_id, "10.00")
    (failed,) = refunds_of(db, purchase_id)
    assert failed.status == "failed"
    stub_create_refund(stripe_http, UNREACHABLE)
    token = csrf(client, f"/payments/admin/invoices/{invoice_id}")
    retry_url = f"/payments/admin/refunds/{failed.id}/retry"
    first = client.post(retry_url, data={"csrf_token": token}, headers=as_user("adm"))
    assert "Stripe could not be reached" in text(client.get(first.headers["Location"], headers=as_user("adm")))
    (retry,) = [row for row in refunds_of(db, purchase_id) if row.id != failed.id]
    assert retry.replaces_id == failed.id
    if audit_entry == "deleted":
        db.session.execute(delete(AuditEntry).where(AuditEntry.action == "refund_retried"))
        db.session.commit()
    made = refund(refund_id="re_test_2", amount=1000)
    made["metadata"] = {"lms_refund_id": str(retry.id)}
    assert send_event(client, "refund.created", made, "evt_retry_created").status_code == 200
    stripe_http.replace(responses.POST, "https://api.stripe.com/v1/refunds", json=refund(refund_id="re_test_3",
                                                                                         amount=1000))

    again = client.post(retry_url, data={"csrf_token": token}, headers=as_user("adm"))

    assert again.status_code == 302
    page = client.get(again.headers["Location"], headers=as_user("adm"))
    assert "Stripe made the retry of this refund asked for earlier" in text(page)
    assert f'action="{retry_url}"' not in page.get_data(as_text=True)
    (asked,) = calls(stripe_http, "POST", "/v1/refunds")
    assert idempotency_key(asked) == f"lms-refund-retry-{retry.id}"
    old, done = refunds_of(db, purchase_id)
    assert (old.status, done.status, done.stripe_refund_id) == ("replaced", "succeeded", "re_test_2")
    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert purchase.amount_refunded == invoice.amount_refunded == 1000 and invoice.status == "partially_refunded"


def _partial_refund_that_fails(client, db, stripe_http, purchase_id, invoice_id) -> Refund:
    stub_credit_note(stripe_http, credit_note(amount=1000))
    stub_get_refund(stripe_http, refund(amount=1000, status="failed", failure_reason="expired_or_canceled_card"))
    partial_refund(client, invoice_id, "10.00")
    (failed,) = refunds_of(db, purchase_id)
    assert failed.status == "failed"
    return failed


def test_a_retry_stripe_refused_is_the_refund_retried_next_and_the_money_goes_back_once(client, db, host, paid,
                                                                                      stripe_http):
    """Stripe refuses a retry (its answer is an error): the retry, failed, stands for the refund it replaces,
    which no longer offers a retry of its own; retrying the refused retry refunds the learner, once."""
    purchase_id, invoice_id = paid
    failed = _partial_refund_that_fails(client, db, stripe_http, purchase_id, invoice_id)
    stripe_error(stripe_http, responses.POST, "/v1/refunds", 400, "invalid_request_error",
                 "You have insufficient available funds in your Stripe account.", code="balance_insufficient")
    token = csrf(client, f"/payments/admin/invoices/{invoice_id}")
    first = client.post(f"/payments/admin/refunds/{failed.id}/retry", data={"csrf_token": token},
                        headers=as_user("adm"))
    assert "insufficient available funds" in text(client.get(first.headers["Location"], headers=as_user("adm")))

    old, refused = refunds_of(db, purchase_id)
    assert (old.status, refused.status, refused.replaces_id) == ("replaced", "failed", old.id)
    page = client.get(f"/payments/admin/invoices/{invoice_id}", headers=as_user("adm")).get_data(as_text=True)
    assert re.findall(r'action="/payments/admin/refunds/(\d+)/retry"', page) == [str(refused.id)]

    stripe_http.replace(responses.POST, "https://api.stripe.com/v1/refunds",
                        json=refund(refund_id="re_test_2", amount=1000))
    assert client.post(f"/payments/admin/refunds/{refused.id}/retry", data={"csrf_token": token},
                       headers=as_user("adm")).status_code == 302
    again = client.post(f"/payments/admin/refunds/{old.id}/retry", data={"csrf_token": token},
                        headers=as_user("adm"))

    assert "Only a failed refund can be retried." in text(client.get(again.headers["Location"],
                                                                     headers=as_user("adm")))
    _first, second = calls(stripe_http, "POST", "/v1/refunds")
    old, refused, done = refunds_of(db, purchase_id)
    assert idempotency_key(second) == f"lms-refund-retry-{done.id}"
    assert (refused.status, done.status, done.replaces_id) == ("replaced", "succeeded", refused.id)
    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert purchase.amount_refunded == invoice.amount_refunded == 1000 and invoice.status == "partially_refunded"


def test_a_failed_refund_whose_retry_stripe_refused_earlier_retries_that_retry(client, db, host, paid, stripe_http):
    """A failed refund still failed beside the retry Stripe refused (so recorded before the retry stood for it):
    retrying it marks it replaced and retries the refused retry, which it names; it is never named twice."""
    purchase_id, invoice_id = paid
    failed = _partial_refund_that_fails(client, db, stripe_http, purchase_id, invoice_id)
    refused = Refund(purchase_id=purchase_id, amount=1000, currency="EUR", status="failed", full=False,
                     revoke_access=False, origin="admin", actor_id="adm", idempotency_key="lms-refund-retry-refused",
                     failure_reason="You have insufficient available funds in your Stripe account.",
                     replaces_id=failed.id)
    db.session.add(refused)
    db.session.commit()
    stub_create_refund(stripe_http, refund(refund_id="re_test_2", amount=1000))
    token = csrf(client, f"/payments/admin/invoices/{invoice_id}")

    assert client.post(f"/payments/admin/refunds/{failed.id}/retry", data={"csrf_token": token},
                       headers=as_user("adm")).status_code == 302

    old, refused, done = refunds_of(db, purchase_id)
    (asked,) = calls(stripe_http, "POST", "/v1/refunds")
    assert idempotency_key(asked) == f"lms-refund-retry-{done.id}" and sent(asked)["amount"] == "1000"
    assert (old.status, refused.status, refused.replaces_id) == ("replaced", "replaced", old.id)
    assert (done.status, done.replaces_id) == ("succeeded", refused.id)
    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert purchase.amount_refunded == invoice.amount_refunded == 1000


def test_a_retry_recorded_without_its_link_is_taken_up_by_the_failed_refund_retried(client, db, host, paid,
                                                                                    stripe_http):
    """A retry Stripe never confirmed, recorded before retries named the refund they replace (its audit entry
    did not name it either): retrying the failed refund asks for it again with its key, and links the two."""
    purchase_id, invoice_id = paid
    failed = _partial_refund_that_fails(client, db, stripe_http, purchase_id, invoice_id)
    unlinked = Refund(purchase_id=purchase_id, amount=1000, currency="EUR", status="requested", full=False,
                      revoke_access=False, origin="admin", actor_id="adm", idempotency_key="pending")
    db.session.add(unlinked)
    db.session.flush()
    unlinked.idempotency_key = f"lms-refund-retry-{unlinked.id}"
    db.session.commit()
    stub_create_refund(stripe_http, refund(refund_id="re_test_2", amount=1000))
    token = csrf(client, f"/payments/admin/invoices/{invoice_id}")

    assert client.post(f"/payments/admin/refunds/{failed.id}/retry", data={"csrf_token": token},
                       headers=as_user("adm")).status_code == 302

    (asked,) = calls(stripe_http, "POST", "/v1/refunds")
    old, retry = refunds_of(db, purchase_id)
    assert idempotency_key(asked) == f"lms-refund-retry-{retry.id}"
    assert (old.status, retry.status, retry.replaces_id) == ("replaced", "succeeded", old.id)


def test_only_a_failed_refund_can_be_retried(client, db, paid, stripe_http):
    purchase_id, invoice_id = paid
    stub_credit_note(stripe_http, credit_note())
    stub_get_refund(stripe_http, refund())
    cancel(client, invoice_id)
    (done,) = refunds_of(db, purchase_id)
    before = len(stripe_http.calls)
    token = csrf(client, refund_url(invoice_id))

    response = client.post(f"/payments/admin/refunds/{done.id}/retry", data={"csrf_token": token},
                           headers=as_user("adm"))

    assert response.status_code == 302 and len(stripe_http.calls) == before
    assert "Only a failed refund can be retried." in text(client.get(response.headers["Location"],
                                                                     headers=as_user("adm")))
    assert client.post("/payments/admin/refunds/999/retry", data={"csrf_token": token},
                       headers=as_user("adm")).status_code == 404


# -- partial refunds -------------------------------------------------------------------------------

def test_the_refund_page_shows_what_remains_refundable_and_keeps_access_by_default(client, paid, stripe_http):
    _purchase_id, invoice_id = paid
    page = client.get(refund_url(invoice_id), headers=as_user("adm"))
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "at most €49.90" in text(page)
    assert 'name="amount"' in body and '<input type="checkbox" name="revoke_access">' in body
    assert len(stripe_http.calls) == 0


def test_a_partial_refund_is_recorded_and_access_is_kept(client, db, host, paid, stripe_http, signals):
    purchase_id, invoice_id = paid
    stub_credit_note(stripe_http, credit_note(amount=1000))
    stub_get_refund(stripe_http, refund(amount=1000))

    response = partial_refund(client, invoice_id, "10.00", reason="Late start")

    assert response.status_code == 302
    (call,) = calls(stripe_http, "POST", "/v1/credit_notes")
    params = sent(call)
    assert (params["invoice"], params["amount"], params["refund_amount"], params["memo"]) == \
        ("in_test_1", "1000", "1000", "Late start")
    (row,) = refunds_of(db, purchase_id)
    assert idempotency_key(call) == f"lms-refund-{row.id}"
    assert (row.status, row.amount, row.full, row.revoke_access) == ("succeeded", 1000, False, False)
    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert (invoice.status, invoice.amount_refunded, invoice.credit_note_id) == ("partially_refunded", 1000, None)
    assert (purchase.status, purchase.amount_refunded) == ("paid", 1000)
    assert enrolled(host) and unenrolls(host) == 0 and signals == {}

    detail = text(client.get(f"/payments/admin/invoices/{invoice_id}", headers=as_user("adm")))
    assert "Partially refunded (€10.00)" in detail and "Still refundable €39.90" in detail
    assert "Partially refunded (€10.00)" in text(client.get("/payments/admin/invoices", headers=as_user("adm")))
    assert "Partially refunded (€10.00)" in text(client.get("/payments/invoices", headers=as_user("u1")))


def test_a_partial_refund_can_also_revoke_access(client, db, host, paid, stripe_http, signals):
    purchase_id, invoice_id = paid
    stub_credit_note(stripe_http, credit_note(amount=1000))
    stub_get_refund(stripe_http, refund(amount=1000))

    assert partial_refund(client, invoice_id, "10.00", revoke=True).status_code == 302

    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert (invoice.status, invoice.amount_refunded) == ("partially_refunded", 1000)
    assert purchase.status == "cancelled" and not enrolled(host) and unenrolls(host) == 1
    assert count_signals(signals, "purchase_cancelled") == 1 and count_signals(signals, "access_revoked") == 1


def test_partial_refunds_up_to_the_total(client, db, host, paid, stripe_http):
    purchase_id, invoice_id = paid
    stub_credit_note(stripe_http, credit_note(amount=1000))
    stub_get_refund(stripe_http, refund(amount=1000))
    assert partial_refund(client, invoice_id, "10.00").status_code == 302

    over = partial_refund(client, invoice_id, "39.91")
    assert over.status_code == 400 and "€39.90" in amount_error(over)
    assert len(calls(stripe_http, "POST", "/v1/credit_notes")) == 1

    stripe_http.replace(responses.POST, "https://api.stripe.com/v1/credit_notes",
                        json=credit_note(cn_id="cn_test_2", amount=3990, refund_id="re_test_2",
                                         number="ABC-0001-CN-02"))
    stub_get_refund(stripe_http, refund(refund_id="re_test_2", amount=3990))
    assert partial_refund(client, invoice_id, "39.90").status_code == 302

    keys = [idempotency_key(call) for call in calls(stripe_http, "POST", "/v1/credit_notes")]
    assert len(set(keys)) == 2
    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert invoice.amount_refunded == 4990 and invoice.status == "cancelled"
    assert purchase.amount_refunded == 4990
    assert "Still refundable €0.00" in text(client.get(f"/payments/admin/invoices/{invoice_id}",
                                                       headers=as_user("adm")))


@pytest.mark.parametrize("amount", ["49.91", "100", "abc", "", "0", "-5", "10,001", "1e3"])
def test_a_bad_or_excessive_amount_is_refused_without_calling_stripe(client, db, host, paid, stripe_http, amount):
    purchase_id, invoice_id = paid
    response = partial_refund(client, invoice_id, amount)
    assert response.status_code == 400 and amount_error(response)
    assert len(stripe_http.calls) == 0 and refunds_of(db, purchase_id) == []
    purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert (invoice.status, invoice.amount_refunded, purchase.status) == ("paid", 0, "paid") and enrolled(host)


def test_a_small_partial_refund_below_the_minimum_charge_is_accepted(client, db, paid, stripe_http):
    """Stripe's minimum applies to charges, not refunds: 0.30 EUR can be refunded."""
    purchase_id, invoice_id = paid
    stub_credit_note(stripe_http, credit_note(amount=30))
    stub_get_refund(stripe_http, refund(amount=30))

    response = partial_refund(client, invoice_id, "0.30")

    assert response.status_code == 302, text(response)
    assert sent(calls(stripe_http, "POST", "/v1/credit_notes")[0])["refund_amount"] == "30"
    _purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert invoice.amount_refunded == 30


def test_a_partial_refund_while_another_is_pending_is_refused(client, db, paid, stripe_http):
    purchase_id, invoice_id = paid
    stub_credit_note(stripe_http, credit_note(amount=1000))
    stub_get_refund(stripe_http, refund(amount=1000, status="pending"))
    assert partial_refund(client, invoice_id, "10.00").status_code == 302
    before = len(stripe_http.calls)

    second = partial_refund(client, invoice_id, "5.00")

    assert second.status_code == 400 and len(stripe_http.calls) == before
    assert [r.status for r in refunds_of(db, purchase_id)] == ["pending"]
    assert db.session.scalar(select(Refund.amount).where(Refund.purchase_id == purchase_id)) == 1000


def test_a_partial_refund_in_a_zero_decimal_currency(client, db, host, people, priced, configured, stripe_http):
    purchase_id, invoice_id = paid_purchase(db, host, user_id="emp", course_id="c4", amount=8000, vat=727,
                                            currency="JPY", payment_intent="pi_test_jpy", invoice_id="in_test_jpy",
                                            number="JPY-0001")
    bad = partial_refund(client, invoice_id, "1000,50")
    assert bad.status_code == 400 and len(stripe_http.calls) == 0
    stub_credit_note(stripe_http, credit_note(invoice_id="in_test_jpy", amount=1000))
    stub_get_refund(stripe_http, refund(amount=1000, payment_intent="pi_test_jpy"))

    assert partial_refund(client, invoice_id, "1000").status_code == 302

    params = sent(calls(stripe_http, "POST", "/v1/credit_notes")[0])
    assert (params["invoice"], params["amount"], params["refund_amount"]) == ("in_test_jpy", "1000", "1000")
    _purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert (invoice.status, invoice.amount_refunded) == ("partially_refunded", 1000)
    shown = text(client.get(f"/payments/admin/invoices/{invoice_id}", headers=as_user("adm")))
    assert "Partially refunded (¥1,000)" in shown and "Still refundable ¥7,000" in shown
    assert enrolled(host, "emp", "c4")
