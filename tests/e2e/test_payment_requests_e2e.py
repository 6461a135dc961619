"""Payment requests end to end, through the real SDK and the sandbox, webhooks delivered into the app: an
administrator invoices 300 €, asks for 90 €, the learner pays from the e-mail's link without signing in,
210 € remain; a second request is paid and the invoice is paid; a learner pays part of a request; "My
payments" pays a request; a cancelled request's link says so."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from lms_stripe_plugin import messages
from lms_stripe_plugin.accounts import settings as payment_settings
from lms_stripe_plugin.core.models import Invoice, InvoicePayment, Message, PaymentAttempt, PaymentRequest
from lms_stripe_plugin.sync.reconcile import reconcile

from ..conftest import as_user
from .conftest import csrf, fault, pay

DUE = (date.today() + timedelta(days=20)).isoformat()


@pytest.fixture
def billing_app(stripe_app, db, tmp_path):
    stripe_app.config.update(LMS_STRIPE_MAIL_BACKEND="file", LMS_STRIPE_MAIL_FILE=str(tmp_path / "mail.mbox"),
                             LMS_STRIPE_MAIL_SENDER="École <noreply@ecole.test>")
    return stripe_app


def _new_invoice(client, amount="300.00", learner="u1") -> int:
    token = csrf(client, "adm", "/payments/admin/invoices/new")
    response = client.post("/payments/admin/invoices/new", headers=as_user("adm"), data={
        "csrf_token": token, "learner": learner, "currency": "EUR", "due": DUE,
        "line-1-description": "Accompagnement VAE", "line-1-amount": amount, "line-1-vat_rate": "20"})
    assert response.status_code == 302, response.get_data(as_text=True)
    return int(response.headers["Location"].rstrip("/").split("/")[-1])


def _request(client, invoice_id: int, amount: str) -> str:
    """Ask for ``amount`` by e-mail; the link of the e-mail written for it."""
    path = f"/payments/admin/invoices/{invoice_id}/request"
    response = client.post(path, headers=as_user("adm"), data={
        "csrf_token": csrf(client, "adm", path), "amount": amount, "due": DUE, "email": "on", "locale": "fr"})
    assert response.status_code == 302, response.get_data(as_text=True)
    return _last_link(client.application)


def _last_link(app) -> str:
    db = app.extensions["lms_stripe"].session
    db.expire_all()
    message = db.scalars(select(Message).order_by(Message.id.desc())).first()
    body, _html = messages.content(message)
    found = re.search(r"https?://lms\.test(/payments/pay/[A-Za-z0-9_-]+)", body)
    assert found, body
    return found.group(1)


def _pay_from_link(client, sandbox, link: str, amount: str | None = None):
    page = client.get(link)
    assert page.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    data = {"csrf_token": token, **({"amount": amount} if amount is not None else {})}
    response = client.post(link, data=data)
    assert response.status_code == 303, response.get_data(as_text=True)
    session_id = response.headers["Location"].rstrip("/").split("/")[-1]
    assert pay(sandbox, session_id).status_code == 200
    return session_id


def _invoice(db, invoice_id: int) -> Invoice:
    db.session.expire_all()
    return db.session.get(Invoice, invoice_id)


def test_a_300_invoice_paid_in_two_requests(billing_app, client, db, sandbox):
    invoice_id = _new_invoice(client)
    invoice = _invoice(db, invoice_id)
    assert (invoice.status, invoice.gross, invoice.vat, invoice.amount_remaining) == ("open", 30000, 5000, 30000)
    assert invoice.stripe_invoice_id.startswith("in_") and invoice.number

    link = _request(client, invoice_id, "90.00")
    sent = db.session.scalars(select(Message)).all()
    assert [(m.channel, m.recipient, m.status) for m in sent] == [("email", "lea@example.com", "sent")]
    page = client.get(link).get_data(as_text=True)  # anyone holding the link, not signed in
    assert "90,00" in page and "300,00" in page

    session_id = _pay_from_link(client, sandbox, link)
    invoice = _invoice(db, invoice_id)
    request = db.session.scalar(select(PaymentRequest))
    assert (request.status, request.amount_paid) == ("paid", 9000)
    assert (invoice.status, invoice.amount_paid, invoice.amount_remaining) == ("open", 9000, 21000)
    attempt = db.session.scalar(select(PaymentAttempt))
    assert attempt.status == "attached" and attempt.stripe_checkout_session_id == session_id
    assert [(p.amount, p.status) for p in db.session.scalars(select(InvoicePayment))] == [(9000, "paid")]
    back = client.get(f"{link}?session_id={session_id}").get_data(as_text=True)
    assert "Merci" in back and "210,00" in back

    second = _request(client, invoice_id, "210.00")
    _pay_from_link(client, sandbox, second)
    invoice = _invoice(db, invoice_id)
    assert (invoice.status, invoice.amount_paid, invoice.amount_remaining) == ("paid", 30000, 0)
    assert [r.status for r in db.session.scalars(select(PaymentRequest).order_by(PaymentRequest.id))] == ["paid", "paid"]
    final = client.get(second).get_data(as_text=True)
    assert 'id="download-pdf"' in final and invoice.pdf_url in final
    history = client.get(f"/payments/admin/invoices/{invoice_id}", headers=as_user("adm")).get_data(as_text=True)
    assert "€90.00 asked of Léa on invoice" in history and "Léa paid €90.00 on invoice" in history
    assert "Léa paid €210.00 on invoice" in history
    # Stripe's invoice agrees: two payments of 90 and 210 credited.
    stripe_invoice = billing_app.extensions["lms_stripe"].gateway.retrieve_invoice(
        invoice.stripe_invoice_id, api_key="sk_test_sandbox_e2e")
    assert (stripe_invoice["status"], stripe_invoice["amount_paid"]) == ("paid", 30000)


def test_a_learner_pays_part_of_a_request_then_the_rest(billing_app, client, db, sandbox):
    payment_settings.save(db.session, {"partial_payments_enabled": True, "partial_minimum": 2000}, actor_id="adm")
    db.session.commit()
    invoice_id = _new_invoice(client, "210.00")
    link = _request(client, invoice_id, "210.00")

    refused = client.post(link, data={"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', client.get(
        link).get_data(as_text=True)).group(1), "amount": "10,00"})
    assert refused.status_code == 400 and "au moins" in refused.get_data(as_text=True)
    _pay_from_link(client, sandbox, link, "50,00")
    request = db.session.scalar(select(PaymentRequest))
    invoice = _invoice(db, invoice_id)
    assert (request.status, request.amount_paid) == ("open", 5000)
    assert (invoice.amount_paid, invoice.amount_remaining) == (5000, 16000)
    assert "160,00" in client.get(link).get_data(as_text=True)

    _pay_from_link(client, sandbox, link)  # the rest, as proposed
    invoice = _invoice(db, invoice_id)
    assert (invoice.status, invoice.amount_remaining) == ("paid", 0)
    assert db.session.scalar(select(PaymentRequest)).status == "paid"


def test_my_payments_lists_what_is_owed_and_pays_it(billing_app, client, db, sandbox):
    invoice_id = _new_invoice(client)
    _request(client, invoice_id, "90.00")
    page = client.get("/payments/my-payments", headers=as_user("u1")).get_data(as_text=True)
    assert "90.00" in page or "€90.00" in page
    assert "You have nothing to pay." in client.get("/payments/my-payments", headers=as_user("u2")).get_data(
        as_text=True)
    request_id = db.session.scalar(select(PaymentRequest.id))
    token = csrf(client, "u1", "/payments/my-payments")
    response = client.post(f"/payments/my-payments/{request_id}/pay", data={"csrf_token": token},
                           headers=as_user("u1"))
    assert response.status_code == 303
    pay(sandbox, response.headers["Location"].rstrip("/").split("/")[-1])
    assert _invoice(db, invoice_id).amount_remaining == 21000
    # The request is paid; what remains of the invoice is listed with a Pay button of its own.
    page = client.get("/payments/my-payments", headers=as_user("u1")).get_data(as_text=True)
    assert "210.00" in page and f"/payments/my-payments/invoices/{invoice_id}/pay" in page
    response = client.post(f"/payments/my-payments/invoices/{invoice_id}/pay", data={"csrf_token": token},
                           headers=as_user("u1"))
    assert response.status_code == 303
    pay(sandbox, response.headers["Location"].rstrip("/").split("/")[-1])
    invoice = _invoice(db, invoice_id)
    assert (invoice.status, invoice.amount_remaining) == ("paid", 0)
    assert "You have nothing to pay." in client.get("/payments/my-payments", headers=as_user("u1")).get_data(
        as_text=True)


def test_a_cancelled_request_expires_its_checkout_and_its_link_says_so(billing_app, client, db, sandbox):
    invoice_id = _new_invoice(client)
    link = _request(client, invoice_id, "90.00")
    page = client.get(link).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    session_id = client.post(link, data={"csrf_token": token}).headers["Location"].rstrip("/").split("/")[-1]
    request_id = db.session.scalar(select(PaymentRequest.id))
    response = client.post(f"/payments/admin/requests/{request_id}/cancel", headers=as_user("adm"),
                           data={"csrf_token": csrf(client, "adm", f"/payments/admin/invoices/{invoice_id}")})
    assert response.status_code == 302
    sandbox.state.wait_for_deliveries(10)
    assert "annulée" in client.get(link).get_data(as_text=True)
    assert pay(sandbox, session_id).status_code >= 400  # its Checkout Session was expired at Stripe
    assert _invoice(db, invoice_id).amount_remaining == 30000


def test_reconcile_finds_a_request_paid_while_webhooks_were_lost(billing_app, client, db, sandbox, sink):
    """Webhooks down while the learner pays: reconciliation records the payment, attaches it to the
    invoice and brings the invoice's amounts in line; a second run finds nothing."""
    invoice_id = _new_invoice(client)
    link = _request(client, invoice_id, "90.00")
    sink.drop = True
    _pay_from_link(client, sandbox, link)
    assert _invoice(db, invoice_id).amount_paid == 0
    sink.drop = False
    since = datetime.now(timezone.utc) - timedelta(hours=1)
    state = billing_app.extensions["lms_stripe"]
    report = reconcile(state, since=since)
    assert [f.kind for f in report.findings] == ["checkout_session"] and report.findings[0].repaired
    sandbox.state.wait_for_deliveries(10)
    invoice = _invoice(db, invoice_id)
    assert (invoice.amount_paid, invoice.amount_remaining) == (9000, 21000)
    assert db.session.scalar(select(PaymentAttempt)).status == "attached"
    assert db.session.scalar(select(PaymentRequest)).status == "paid"
    assert reconcile(state, since=since).findings == []


def test_reconcile_attaches_a_payment_whose_attaching_failed(billing_app, client, db, sandbox):
    """Stripe took the payment but attaching it failed: the attempt stays paid, and reconciliation attaches
    it (same idempotency key) once it is older than the grace period."""
    invoice_id = _new_invoice(client)
    link = _request(client, invoice_id, "90.00")
    invoice = _invoice(db, invoice_id)
    fault(sandbox, f"/v1/invoices/{invoice.stripe_invoice_id}/attach_payment", "500")
    _pay_from_link(client, sandbox, link)
    attempt = db.session.scalar(select(PaymentAttempt))
    assert attempt.status == "paid" and _invoice(db, invoice_id).amount_paid == 0
    state = billing_app.extensions["lms_stripe"]
    since = datetime.now(timezone.utc) - timedelta(hours=1)
    assert [f.kind for f in reconcile(state, since=since, dry_run=True).findings] == []  # within the grace period
    attempt.paid_at = attempt.paid_at - timedelta(minutes=15)
    db.session.commit()
    report = reconcile(state, since=since)
    assert [(f.kind, f.repaired) for f in report.findings] == [("attempt", True)]
    sandbox.state.wait_for_deliveries(10)
    assert _invoice(db, invoice_id).amount_paid == 9000
    db.session.expire_all()
    assert db.session.scalar(select(PaymentAttempt)).status == "attached"
