"""Whole purchases through the real SDK against the sandbox: nothing stubbed between the plugin and 'Stripe'."""
import requests
from sqlalchemy import func, select

from lms_stripe_plugin.core.models import Customer, Event, Invoice, Purchase, Refund, TaxRate

from ..conftest import as_user
from .conftest import csrf, pay, start_checkout


def _purchase(db, user="u1", course="c1"):
    db.session.expire_all()
    return db.session.scalar(select(Purchase).where(Purchase.user_id == user, Purchase.course_id == course)
                             .order_by(Purchase.id.desc()))


def test_buy_enroll_invoice_and_pdf(stripe_app, client, db, host, sandbox, signals):
    response, session_id = start_checkout(client, "u1", "c1")
    assert response.status_code == 303 and response.headers["Location"].startswith(sandbox.url)
    hosted = requests.get(response.headers["Location"], timeout=5)
    assert hosted.status_code == 200 and "4242" in hosted.text and "Python basics" in hosted.text
    assert pay(sandbox, session_id).status_code == 200
    purchase = _purchase(db)
    assert purchase.status == "paid" and purchase.amount_paid == 4990
    assert host.calls.count(("enroll", "u1", "c1")) == 1
    invoice = db.session.scalar(select(Invoice))
    assert (invoice.gross, invoice.vat, invoice.net) == (4990, 832, 4158) and invoice.number
    assert len(signals["purchase_completed"]) == 1 and len(signals["invoice_issued"]) == 1
    assert db.session.scalar(select(Customer.stripe_customer_id)).startswith("cus_")
    page = client.get(f"/payments/checkout/success?session_id={session_id}", headers=as_user("u1"))
    assert "payment is confirmed" in page.get_data(as_text=True)
    pdf_url = client.get(f"/payments/invoices/{invoice.id}/pdf", headers=as_user("u1")).headers["Location"]
    pdf = requests.get(pdf_url, timeout=5)
    assert pdf.content.startswith(b"%PDF-") and invoice.number.encode() in pdf.content
    assert db.session.scalar(select(func.count()).select_from(Event).where(Event.status == "failed")) == 0


def _count_stripe_calls(monkeypatch) -> list:
    import stripe

    calls = []
    original = stripe.RequestsClient.request

    def counting(self, method, url, headers, post_data=None):
        calls.append((method, url))
        return original(self, method, url, headers, post_data)

    monkeypatch.setattr(stripe.RequestsClient, "request", counting)
    return calls


def test_a_returning_learner_costs_one_stripe_call_per_click(stripe_app, client, db, sandbox, monkeypatch):
    calls = _count_stripe_calls(monkeypatch)
    _response, first = start_checkout(client, "emp", "c1")
    # The learner's customer (once), the tax rate (once ever), then the session.
    assert [(m, u.split("/v1/")[1]) for m, u in calls] == [("post", "customers"), ("post", "tax_rates"),
                                                           ("post", "checkout/sessions")]
    customer = sandbox.state.get(sandbox.state.get(first)["customer"])
    assert customer["preferred_locales"] == ["en"] and customer["email"] == "emp@example.com"
    pay(sandbox, first)
    calls.clear()
    response, second = start_checkout(client, "emp", "c2")
    assert response.status_code == 303
    assert len(calls) == 1 and calls[0][1].endswith("/v1/checkout/sessions")
    customer = db.session.scalar(select(Customer.stripe_customer_id).where(Customer.user_id == "emp"))
    assert sandbox.state.get(second)["customer"] == customer
    calls.clear()
    again, same = start_checkout(client, "emp", "c2")  # double click / back button
    assert same == second and calls == []
    assert db.session.scalar(select(func.count()).select_from(TaxRate)) == 1


def test_declined_card_then_success(stripe_app, client, db, sandbox, host):
    _response, session_id = start_checkout(client, "u1", "c1")
    declined = pay(sandbox, session_id, card="4000000000000002")
    assert declined.status_code == 402 and "Your card was declined." in declined.text
    assert _purchase(db).status == "open" and host.calls == []
    assert pay(sandbox, session_id).status_code == 200
    assert _purchase(db).status == "paid"


def test_promotion_code_lowers_what_is_paid_and_invoiced(stripe_app, client, db, sandbox):
    _response, session_id = start_checkout(client, "u1", "c1")
    assert sandbox.state.get(session_id)["allow_promotion_codes"] is True
    pay(sandbox, session_id, promotion_code="HALF")
    purchase = _purchase(db)
    assert purchase.status == "paid" and purchase.amount == 4990 and purchase.amount_paid == 2495
    assert db.session.scalar(select(Invoice.gross)) == 2495


def test_sepa_debit_is_processing_until_it_settles(stripe_app, client, db, sandbox, host):
    _response, session_id = start_checkout(client, "u1", "c1")
    assert "sepa_debit" in sandbox.state.get(session_id)["payment_method_types"]
    pay(sandbox, session_id, method="sepa_debit", iban="DE89370400440532013000")
    assert _purchase(db).status == "processing" and host.calls == []
    page = client.get(f"/payments/checkout/success?session_id={session_id}", headers=as_user("u1"))
    assert "Payment processing" in page.get_data(as_text=True)
    requests.post(f"{sandbox.url}/_sandbox/checkout/sessions/{session_id}/settle", json={"outcome": "succeeded"},
                  timeout=5)
    sandbox.state.wait_for_deliveries(10)
    assert _purchase(db).status == "paid" and host.calls == [("enroll", "u1", "c1")]
    assert db.session.scalar(select(func.count()).select_from(Invoice)) == 1


def test_sepa_debit_that_fails_tells_the_learner(stripe_app, client, db, sandbox, host, signals):
    _response, session_id = start_checkout(client, "u1", "c1")
    pay(sandbox, session_id, method="sepa_debit", iban="DE62370400440532013001")
    requests.post(f"{sandbox.url}/_sandbox/checkout/sessions/{session_id}/settle", json={"outcome": "failed"},
                  timeout=5)
    sandbox.state.wait_for_deliveries(10)
    assert _purchase(db).status == "failed" and host.calls == []
    assert len(signals["payment_failed"]) == 1
    page = client.get(f"/payments/checkout/success?session_id={session_id}", headers=as_user("u1"))
    assert "The payment failed" in page.get_data(as_text=True)
    response, new_session = start_checkout(client, "u1", "c1")  # the learner can try again
    assert response.status_code == 303 and new_session != session_id


def test_expired_session_frees_the_learner_to_start_again(stripe_app, client, db, sandbox):
    _response, session_id = start_checkout(client, "u1", "c1")
    requests.post(f"{sandbox.url}/_sandbox/clock/advance", json={"seconds": 7200}, timeout=5)
    sandbox.state.wait_for_deliveries(10)
    assert _purchase(db).status == "expired"


def _paid(client, db, sandbox, user="u1", course="c1", card="4242424242424242"):
    _response, session_id = start_checkout(client, user, course)
    assert pay(sandbox, session_id, card=card).status_code == 200
    invoice = db.session.scalar(select(Invoice).where(Invoice.user_id == user, Invoice.course_id == course)
                                .order_by(Invoice.id.desc()))
    return invoice


def test_cancel_refunds_revokes_and_the_learner_buys_again(stripe_app, client, db, sandbox, host, signals):
    invoice = _paid(client, db, sandbox)
    token = csrf(client, "adm", f"/payments/admin/invoices/{invoice.id}/cancel")
    response = client.post(f"/payments/admin/invoices/{invoice.id}/cancel", data={"csrf_token": token,
                           "reason": "Bought by mistake"}, headers=as_user("adm"))
    assert response.status_code == 302
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    invoice = db.session.get(Invoice, invoice.id)
    assert invoice.status == "cancelled" and invoice.credit_note_number and invoice.amount_refunded == 4990
    assert len(sandbox.state.all("credit_note")) == 1 and len(sandbox.state.all("refund")) == 1
    assert host.calls.count(("unenroll", "u1", "c1")) == 1
    assert len(signals["purchase_cancelled"]) == 1 and len(signals["access_revoked"]) == 1
    second = _paid(client, db, sandbox)
    assert second.id != invoice.id and second.status == "paid"
    assert db.session.get(Invoice, invoice.id).status == "cancelled"


def test_a_refund_that_fails_is_shown_and_can_be_retried(stripe_app, client, db, sandbox, signals):
    invoice = _paid(client, db, sandbox, card="4000000000005126")
    token = csrf(client, "adm", f"/payments/admin/invoices/{invoice.id}/cancel")
    client.post(f"/payments/admin/invoices/{invoice.id}/cancel", data={"csrf_token": token}, headers=as_user("adm"))
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        sandbox.state.wait_for_deliveries(5)
        db.session.expire_all()
        if db.session.scalar(select(Refund.status)) == "failed":
            break
        time.sleep(0.2)
    refund = db.session.scalar(select(Refund))
    assert refund.status == "failed" and db.session.get(Invoice, invoice.id).status == "refund_failed"
    page = client.get(f"/payments/admin/invoices/{invoice.id}", headers=as_user("adm")).get_data(as_text=True)
    assert "Refund failed" in page and "Retry the refund" in page and "expired or was cancelled" in page
    assert len(signals["refund_failed"]) == 1


def test_dispute_revokes_access_and_is_flagged(stripe_app, client, db, sandbox, host):
    invoice = _paid(client, db, sandbox, card="4000000000000259")
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    purchase = db.session.get(Purchase, invoice.purchase_id)
    assert purchase.disputed and purchase.status == "cancelled"
    assert ("unenroll", "u1", "c1") in host.calls
    page = client.get(f"/payments/admin/invoices/{invoice.id}", headers=as_user("adm")).get_data(as_text=True)
    assert "Disputes" in page


def test_dashboard_refunds_partial_then_full(stripe_app, client, db, sandbox, host):
    invoice = _paid(client, db, sandbox)
    charge = sandbox.state.all("charge")[0]["id"]
    requests.post(f"{sandbox.url}/_sandbox/charges/{charge}/refund", json={"amount": 1000}, timeout=5)
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    invoice = db.session.get(Invoice, invoice.id)
    assert invoice.status == "partially_refunded" and invoice.amount_refunded == 1000
    assert ("unenroll", "u1", "c1") not in host.calls
    requests.post(f"{sandbox.url}/_sandbox/charges/{charge}/refund", json={"amount": 3990}, timeout=5)
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    invoice = db.session.get(Invoice, invoice.id)
    assert invoice.status == "cancelled" and invoice.amount_refunded == 4990
    assert host.calls.count(("unenroll", "u1", "c1")) == 1
