"""Credit notes on our invoices: a partial refund's is recorded with its number and PDF as a cancellation's is,
and shown to the administrator and the learner; credit notes come in their events too (made in the Stripe
Dashboard, voided there), in any order and twice; a refund made in the Dashboard without one gets its credit
note. Stripe is stubbed at the HTTP boundary; the real SDK builds every request."""
import pytest
import responses
from sqlalchemy import select

from lms_stripe_plugin.core.models import AuditEntry, CreditNote, Refund

from .conftest import STRIPE, as_user
from .refund_support import (calls, credit_note, csrf, paid_purchase, purchase_and_invoice, refund, refunds_of,
                             rows, send_event, sent, stub_credit_note, stub_credit_notes, stub_get_refund, text)


@pytest.fixture
def paid(db, host, people, priced, configured):
    """Léa (u1) bought "Python basics" (c1) for 49.90 EUR: invoice in_test_1, ABC-0001."""
    return paid_purchase(db, host)


def partial_refund(client, invoice_id, amount):
    url = f"/payments/admin/invoices/{invoice_id}/refund"
    return client.post(url, data={"csrf_token": csrf(client, url), "amount": amount, "reason": "Late start"},
                       headers=as_user("adm"))


def notes(db):
    db.session.expire_all()
    return db.session.scalars(select(CreditNote).order_by(CreditNote.id)).all()


def deliver(client, event_type, obj, event_id):
    response = send_event(client, event_type, obj, event_id)
    assert response.status_code == 200, response.get_json()


def test_a_partial_refund_issues_a_credit_note_for_the_part_recorded_with_its_number_and_pdf(client, db, paid,
                                                                                          stripe_http):
    purchase_id, invoice_id = paid
    stub_credit_note(stripe_http, credit_note(amount=1000))
    stub_get_refund(stripe_http, refund(amount=1000))

    assert partial_refund(client, invoice_id, "10.00").status_code == 302

    params = sent(calls(stripe_http, "POST", "/v1/credit_notes")[0])
    assert (params["invoice"], params["amount"], params["refund_amount"]) == ("in_test_1", "1000", "1000")
    (note,) = notes(db)
    assert (note.stripe_credit_note_id, note.number, note.pdf_url, note.amount, note.currency, note.status,
            note.stripe_invoice_id, note.stripe_refund_id) == (
        "cn_test_1", "ABC-0001-CN-01", "https://pay.stripe.com/credit_notes/cn_test_1/pdf", 1000, "EUR", "issued",
        "in_test_1", "re_test_1")
    (row,) = refunds_of(db, purchase_id)
    assert row.stripe_credit_note_id == "cn_test_1"
    (entry,) = rows(db, AuditEntry, AuditEntry.action == "credit_note_issued")
    assert entry.purchase_id == purchase_id

    page = client.get(f"/payments/admin/invoices/{invoice_id}", headers=as_user("adm"))
    shown, body = text(page), page.get_data(as_text=True)
    assert "Credit notes ABC-0001-CN-01 · €10.00 · PDF" in shown
    assert body.count('href="https://pay.stripe.com/credit_notes/cn_test_1/pdf"') == 2  # the summary, the refund
    assert "Credit note ABC-0001-CN-01 of €10.00 was issued on invoice ABC-0001." in shown
    mine = client.get("/payments/invoices", headers=as_user("u1")).get_data(as_text=True)
    assert '<a href="https://pay.stripe.com/credit_notes/cn_test_1/pdf">Credit note ABC-0001-CN-01</a>' in mine


def test_its_events_before_or_after_the_answer_record_it_once(client, db, paid, stripe_http):
    _purchase_id, invoice_id = paid
    note = credit_note(amount=1000)
    deliver(client, "credit_note.created", note, "evt_cn_1")  # the event overtakes Stripe's answer
    stub_credit_note(stripe_http, note)
    stub_get_refund(stripe_http, refund(amount=1000))
    assert partial_refund(client, invoice_id, "10.00").status_code == 302
    deliver(client, "credit_note.created", note, "evt_cn_1")
    deliver(client, "credit_note.updated", note, "evt_cn_2")

    assert [(n.stripe_credit_note_id, n.amount) for n in notes(db)] == [("cn_test_1", 1000)]
    assert len(rows(db, AuditEntry, AuditEntry.action == "credit_note_issued")) == 1


def test_a_credit_note_voided_in_the_dashboard_stays_void(client, db, paid):
    _purchase_id, invoice_id = paid
    issued = credit_note(amount=1000)
    void = {**issued, "status": "void", "voided_at": 1767300000}
    deliver(client, "credit_note.voided", void, "evt_cn_2")
    deliver(client, "credit_note.created", issued, "evt_cn_1")  # an older snapshot, delivered late

    (note,) = notes(db)
    assert note.status == "void"
    assert len(rows(db, AuditEntry, AuditEntry.action == "credit_note_voided")) == 1
    shown = text(client.get(f"/payments/admin/invoices/{invoice_id}", headers=as_user("adm")))
    assert "ABC-0001-CN-01 · €10.00 Void" in shown


def test_a_credit_note_made_with_its_refund_in_the_dashboard_is_linked_and_not_issued_again(client, db, paid,
                                                                                          stripe_http):
    purchase_id, _invoice_id = paid
    made_there = credit_note(cn_id="cn_dash_1", amount=1500, refund_id="re_dash_1", number="ABC-0001-CN-01")
    issued = stub_credit_notes(stripe_http, existing=[made_there])

    deliver(client, "refund.created", refund(refund_id="re_dash_1", amount=1500), "evt_re_1")
    deliver(client, "credit_note.created", made_there, "evt_cn_1")

    assert issued == []  # the plugin found the Dashboard's credit note linking the refund
    (row,) = refunds_of(db, purchase_id)
    assert (row.origin, row.stripe_refund_id, row.stripe_credit_note_id) == ("dashboard", "re_dash_1", "cn_dash_1")
    assert [(n.stripe_credit_note_id, n.stripe_refund_id) for n in notes(db)] == [("cn_dash_1", "re_dash_1")]


def test_a_dashboard_refund_whose_credit_note_cannot_be_issued_is_still_recorded(client, db, paid, stripe_http,
                                                                               caplog):
    purchase_id, _invoice_id = paid
    stripe_http.add(responses.POST, f"{STRIPE}/v1/credit_notes", body=responses.ConnectionError("down"))

    deliver(client, "refund.created", refund(refund_id="re_dash_1", amount=1000), "evt_re_1")

    (row,) = refunds_of(db, purchase_id)
    assert (row.status, row.stripe_credit_note_id) == ("succeeded", None)
    _purchase, invoice = purchase_and_invoice(db, purchase_id)
    assert invoice.amount_refunded == 1000 and notes(db) == []
    assert "issue_for_refund" in caplog.text


def test_reconcile_issues_the_credit_note_a_dashboard_refund_could_not_get(app, client, db, paid, stripe_http):
    """The follow-up failed (Stripe unreachable): the reconciliation issues it, with the follow-up's key; a
    second run finds nothing."""
    from datetime import datetime, timedelta, timezone

    from lms_stripe_plugin.core.models import utcnow
    from lms_stripe_plugin.sync.reconcile import ATTACH_GRACE, reconcile

    from .refund_support import stub_empty_lists, stub_list_refunds

    purchase_id, _invoice_id = paid
    stripe_http.add(responses.POST, f"{STRIPE}/v1/credit_notes", body=responses.ConnectionError("down"))
    made = refund(refund_id="re_dash_1", amount=1000)
    deliver(client, "refund.created", made, "evt_re_1")
    (row,) = refunds_of(db, purchase_id)
    row.created_at = utcnow() - ATTACH_GRACE - timedelta(minutes=1)  # the follow-up had its chance
    db.session.commit()

    stripe_http.remove(responses.POST, f"{STRIPE}/v1/credit_notes")
    issued = stub_credit_notes(stripe_http)
    stub_empty_lists(stripe_http, "checkout/sessions", "invoices", "disputes")
    stub_list_refunds(stripe_http, [made])
    since = datetime(2000, 1, 1, tzinfo=timezone.utc)
    report = reconcile(app.extensions["lms_stripe"], since=since)
    assert [(f.stripe_id, f.problem, f.repaired) for f in report.findings] == [
        ("re_dash_1", "refunded in the Dashboard, no credit note", True)]
    (first, again) = calls(stripe_http, "POST", "/v1/credit_notes")
    assert again.request.headers["Idempotency-Key"] == first.request.headers["Idempotency-Key"]
    assert len(issued) == 1 and [(n.stripe_refund_id, n.amount) for n in notes(db)] == [("re_dash_1", 1000)]
    (row,) = refunds_of(db, purchase_id)
    assert row.stripe_credit_note_id == "cn_test_1"
    assert reconcile(app.extensions["lms_stripe"], since=since).findings == []


def test_a_credit_note_of_another_integrations_invoice_is_ignored(client, db, paid):
    deliver(client, "credit_note.created", credit_note(cn_id="cn_other", invoice_id="in_not_ours"), "evt_cn_1")
    assert notes(db) == []


def test_a_malformed_credit_note_event_is_rejected(client, db, paid):
    response = send_event(client, "credit_note.created", {**credit_note(), "total": "lots"}, "evt_cn_bad")
    assert response.status_code == 200
    assert notes(db) == [] and db.session.scalar(select(Refund)) is None
