"""Settling debts end to end, through the real SDK and the sandbox, webhooks delivered into the app: a learner
chooses two open invoices on "My payments" and pays them in one Checkout payment, which Stripe credits to each
invoice for its part (a Payment Record each, referencing the one PaymentIntent); a choice of three of which one
was paid meanwhile is refused, nothing charged; two clicks open one Checkout; an administrator asks for several
invoices in one request, paid from its link; a deposit's balance settled with another invoice gives access; a
part whose attaching failed is attached by reconciliation."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
import stripe
from sqlalchemy import func, select

from lms_stripe_plugin.core.models import (AuditEntry, Invoice, InvoicePayment, PaymentAttempt, PaymentRequest,
                                           Purchase, RequestPart)
from lms_stripe_plugin.sync.reconcile import reconcile

from ..conftest import as_user
from .conftest import csrf, fault, pay
from .test_deposits_e2e import _deposit_offer, _pay_deposit
from .test_payment_requests_e2e import _invoice, _last_link, _new_invoice, _pay_from_link, billing_app  # noqa: F401

MY_PAYMENTS = "/payments/my-payments"


def _choose(client, invoice_ids, user="u1"):
    """Tick ``invoice_ids`` on My payments and press "Pay the chosen invoices"."""
    return client.post(f"{MY_PAYMENTS}/settle", headers=as_user(user),
                       data={"csrf_token": csrf(client, user, MY_PAYMENTS), "invoice": [str(i) for i in invoice_ids]})


def _session_of(response) -> str:
    assert response.status_code == 303, response.get_data(as_text=True)
    return response.headers["Location"].rstrip("/").split("/")[-1]


def _stripe_invoice(app, invoice):
    return app.extensions["lms_stripe"].gateway.retrieve_invoice(invoice.stripe_invoice_id,
                                                                 api_key="sk_test_sandbox_e2e")


def test_two_invoices_settled_in_one_payment(billing_app, client, db, sandbox):
    first, second = _new_invoice(client, "300.00"), _new_invoice(client, "120.00")
    page = client.get(MY_PAYMENTS, headers=as_user("u1")).get_data(as_text=True)
    assert 'id="pay-chosen"' in page and page.count('name="invoice"') == 2

    session_id = _session_of(_choose(client, [first, second]))
    checkout = sandbox.state.get(session_id)
    assert checkout["amount_total"] == 42000 and checkout["invoice_creation"]["enabled"] is False
    stripe_client = stripe.StripeClient("sk_test_sandbox_e2e", base_addresses={"api": sandbox.url})
    lines = stripe_client.v1.checkout.sessions.line_items.list(session_id).data
    numbers = [_invoice(db, i).number for i in (first, second)]
    assert sorted((line.description, line.amount_total) for line in lines) == sorted(
        [(f"Payment of invoice {numbers[0]}", 30000), (f"Payment of invoice {numbers[1]}", 12000)])
    assert pay(sandbox, session_id).status_code == 200
    sandbox.state.wait_for_deliveries(10)

    for invoice_id, gross in ((first, 30000), (second, 12000)):
        invoice = _invoice(db, invoice_id)
        assert (invoice.status, invoice.amount_paid, invoice.amount_remaining) == ("paid", gross, 0)
        stripe_invoice = _stripe_invoice(billing_app, invoice)
        assert (stripe_invoice["status"], stripe_invoice["amount_paid"]) == ("paid", gross)
    request = db.session.scalar(select(PaymentRequest))
    attempt = db.session.scalar(select(PaymentAttempt))
    assert (request.status, request.amount, request.amount_paid, request.selection_key is not None) == (
        "paid", 42000, 42000, True)
    assert (attempt.status, attempt.amount, attempt.stripe_checkout_session_id) == ("attached", 42000, session_id)
    parts = db.session.scalars(select(RequestPart).order_by(RequestPart.invoice_id)).all()
    assert [(p.invoice_id, p.amount, p.paid_at is not None, p.attached_at is not None) for p in parts] == [
        (first, 30000, True, True), (second, 12000, True, True)]
    # One PaymentIntent carries the money; each invoice is credited by a record of its part, naming it.
    intents = [i for i in sandbox.state.all("payment_intent") if i["status"] == "succeeded"]
    assert [i["amount"] for i in intents] == [42000] and intents[0]["id"] == attempt.stripe_payment_intent_id
    records = sandbox.state.all("payment_record")
    assert sorted(r["amount_requested"]["value"] for r in records) == [12000, 30000]
    assert {r["processor_details"]["custom"]["payment_reference"] for r in records} == {intents[0]["id"]}
    assert {p.stripe_payment_record_id for p in parts} == {r["id"] for r in records}
    rows = db.session.scalars(select(InvoicePayment).order_by(InvoicePayment.invoice_id)).all()
    assert [(r.invoice_id, r.amount, r.status, r.attempt_id, r.stripe_payment_intent_id) for r in rows] == [
        (first, 30000, "paid", attempt.id, intents[0]["id"]), (second, 12000, "paid", attempt.id, intents[0]["id"])]
    received = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "payment_received")).all()
    assert len(received) == 2  # once per invoice, whatever the events' order and repeats
    page = client.get(MY_PAYMENTS, headers=as_user("u1")).get_data(as_text=True)
    assert "You have nothing to pay." in page
    history = client.get(f"/payments/admin/invoices/{first}", headers=as_user("adm")).get_data(as_text=True)
    assert "Léa paid €300.00 on invoice" in history and "in one payment with invoices" in history


def test_a_choice_of_three_where_one_was_paid_meanwhile_is_refused(billing_app, client, db, sandbox):
    ids = [_new_invoice(client, amount) for amount in ("50.00", "60.00", "70.00")]
    stale_token = csrf(client, "u1", MY_PAYMENTS)  # the page the learner ticked, before paying one elsewhere
    token = csrf(client, "u1", MY_PAYMENTS)
    paid_alone = client.post(f"{MY_PAYMENTS}/invoices/{ids[1]}/pay", data={"csrf_token": token},
                             headers=as_user("u1"))
    pay(sandbox, _session_of(paid_alone))
    assert _invoice(db, ids[1]).status == "paid"
    sessions_before = len(sandbox.state.all("checkout.session"))

    refused = client.post(f"{MY_PAYMENTS}/settle", headers=as_user("u1"),
                          data={"csrf_token": stale_token, "invoice": [str(i) for i in ids]})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 409
    number = _invoice(db, ids[1]).number
    assert f"Invoice {number} is already paid." in text and "nothing was charged" in text
    assert 'id="error-summary"' in text and f'value="{ids[1]}"' not in text  # the paid one is no longer offered
    assert text.count(" checked") == 2  # the others stay ticked
    assert len(sandbox.state.all("checkout.session")) == sessions_before
    assert db.session.scalar(select(func.count()).select_from(RequestPart)) == 0
    for invoice_id in (ids[0], ids[2]):
        assert _invoice(db, invoice_id).amount_remaining > 0

    billing_app.config["TEST_HOST"].locale = "fr"
    french = client.post(f"{MY_PAYMENTS}/settle", headers=as_user("u1"),
                         data={"csrf_token": stale_token, "invoice": [str(i) for i in ids]})
    assert f"La facture {number} est déjà payée." in french.get_data(as_text=True)


def test_a_choice_paid_meanwhile_in_part_is_refused_at_pay_time(billing_app, client, db, sandbox):
    """The learner opened Checkout for two invoices, then one was paid in part through the school's request:
    paying the two together is refused (the session is not reused), nothing charged."""
    first, second = _new_invoice(client, "100.00"), _new_invoice(client, "80.00")
    _session_of(_choose(client, [first, second]))
    path = f"/payments/admin/invoices/{second}/request"
    client.post(path, headers=as_user("adm"), data={"csrf_token": csrf(client, "adm", path), "amount": "30.00",
                                                    "due": (datetime.now() + timedelta(days=9)).date().isoformat(),
                                                    "email": "on", "locale": "en"})
    _pay_from_link(client, sandbox, _last_link(billing_app))
    assert _invoice(db, second).amount_remaining == 5000
    settlement = db.session.scalar(select(PaymentRequest).where(PaymentRequest.selection_key.is_not(None)))
    refused = client.post(f"{MY_PAYMENTS}/{settlement.id}/pay", headers=as_user("u1"),
                          data={"csrf_token": csrf(client, "u1", MY_PAYMENTS)})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "part of it was paid meanwhile" in text
    # Choosing again asks for what each owes now.
    again = _choose(client, [first, second])
    assert sandbox.state.get(_session_of(again))["amount_total"] == 15000


def test_two_clicks_open_one_checkout(billing_app, client, db, sandbox):
    first, second = _new_invoice(client, "40.00"), _new_invoice(client, "20.00")
    one, two = _session_of(_choose(client, [first, second])), _session_of(_choose(client, [second, first]))
    assert one == two
    assert db.session.scalar(select(func.count()).select_from(PaymentAttempt)) == 1
    assert db.session.scalar(select(func.count()).select_from(PaymentRequest)) == 1
    # Another learner's invoice in the choice: not found, nothing written.
    other = _new_invoice(client, "10.00", learner="u2")
    refused = _choose(client, [first, other])
    assert refused.status_code == 404 and "not yours" in refused.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(PaymentRequest)) == 1


def test_a_single_invoice_pay_button_expires_the_open_settlement(billing_app, client, db, sandbox):
    """Paying one invoice alone while a Checkout of it with another is open expires that Checkout: the invoice
    can never be paid twice."""
    first, second = _new_invoice(client, "40.00"), _new_invoice(client, "20.00")
    together = _session_of(_choose(client, [first, second]))
    alone = client.post(f"{MY_PAYMENTS}/invoices/{first}/pay", headers=as_user("u1"),
                        data={"csrf_token": csrf(client, "u1", MY_PAYMENTS)})
    pay(sandbox, _session_of(alone))
    sandbox.state.wait_for_deliveries(10)
    assert sandbox.state.get(together)["status"] == "expired"
    assert pay(sandbox, together).status_code >= 400
    assert (_invoice(db, first).status, _invoice(db, second).amount_remaining) == ("paid", 2000)


def test_an_administrator_asks_for_several_invoices_in_one_request(billing_app, client, db, sandbox):
    first, second = _new_invoice(client, "300.00"), _new_invoice(client, "120.00")
    path = "/payments/admin/requests/new"
    form = client.get(f"{path}?learner=u1", headers=as_user("adm")).get_data(as_text=True)
    assert form.count('name="invoice"') == 2
    response = client.post(path, headers=as_user("adm"), data={
        "csrf_token": csrf(client, "adm", f"{path}?learner=u1"), "learner": "u1",
        "invoice": [str(first), str(second)], "due": (datetime.now() + timedelta(days=10)).date().isoformat(),
        "email": "on", "locale": "fr", "message": "Merci de régler les deux factures."})
    assert response.status_code == 302, response.get_data(as_text=True)
    link = _last_link(billing_app)
    page = client.get(link).get_data(as_text=True)  # the link's holder, not signed in
    assert "420,00" in page and "300,00" in page and "120,00" in page and "Factures à payer" in page
    my = client.get(MY_PAYMENTS, headers=as_user("u1")).get_data(as_text=True)
    assert "En un seul paiement" not in my and "In one payment" in my and 'name="invoice"' not in my

    _pay_from_link(client, sandbox, link)
    sandbox.state.wait_for_deliveries(10)
    request = db.session.scalar(select(PaymentRequest))
    assert (request.status, request.amount_paid, request.selection_key) == ("paid", 42000, None)
    assert [_invoice(db, i).status for i in (first, second)] == ["paid", "paid"]
    done = client.get(link).get_data(as_text=True)
    assert "Ces factures sont payées" in done and _invoice(db, first).pdf_url in done
    requests_page = client.get("/payments/admin/requests?learner=u1", headers=as_user("adm")).get_data(as_text=True)
    assert _invoice(db, first).number in requests_page and _invoice(db, second).number in requests_page


def test_a_deposits_balance_settled_with_another_invoice_gives_access(billing_app, client, db, sandbox, host):
    _deposit_offer(db, access="full")
    _pay_deposit(client, sandbox)
    assert host.calls == []  # access once fully paid
    deposit_invoice = db.session.scalar(select(Invoice).where(Invoice.source == "deposit"))
    other = _new_invoice(client, "120.00")
    session_id = _session_of(_choose(client, [deposit_invoice.id, other]))
    assert sandbox.state.get(session_id)["amount_total"] == 3493 + 12000
    pay(sandbox, session_id)
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    purchase = db.session.scalar(select(Purchase))
    assert _invoice(db, deposit_invoice.id).status == "paid" and purchase.balance_paid_at is not None
    assert host.calls == [("enroll", "u1", "c1")]
    # Its cancellation here would refund only what Stripe can: refused, said why, nothing sent to Stripe.
    path = f"/payments/admin/invoices/{deposit_invoice.id}/cancel"
    refused = client.post(path, data={"csrf_token": csrf(client, "adm", path), "reason": "Changed plans"},
                          headers=as_user("adm"))
    assert refused.status_code == 409 and "paid together with other invoices" in refused.get_data(as_text=True)
    assert sandbox.state.all("credit_note") == [] and sandbox.state.all("refund") == []


def test_a_part_whose_attaching_failed_is_attached_by_reconcile(billing_app, client, db, sandbox, monkeypatch):
    first, second = _new_invoice(client, "30.00"), _new_invoice(client, "20.00")
    session_id = _session_of(_choose(client, [first, second]))
    fault(sandbox, f"/v1/invoices/{_invoice(db, second).stripe_invoice_id}/attach_payment", "500")
    pay(sandbox, session_id)
    sandbox.state.wait_for_deliveries(10)
    attempt = db.session.scalar(select(PaymentAttempt))
    assert attempt.status == "paid"
    # The first part was attached before the second failed: Stripe's invoice, and ours, say it is paid.
    assert (_invoice(db, first).status, _invoice(db, second).status) == ("paid", "open")
    sessions = len(sandbox.state.all("checkout.session"))
    refused = client.post(f"{MY_PAYMENTS}/{attempt.request_id}/pay", headers=as_user("u1"),
                          data={"csrf_token": csrf(client, "u1", MY_PAYMENTS)})  # a payment is taken: no second
    assert refused.status_code == 400 and "Your payment is received" in refused.get_data(as_text=True)
    alone = client.post(f"{MY_PAYMENTS}/invoices/{second}/pay", headers=as_user("u1"),
                        data={"csrf_token": csrf(client, "u1", MY_PAYMENTS)})
    assert alone.status_code == 400 and "under way" in alone.get_data(as_text=True)
    assert len(sandbox.state.all("checkout.session")) == sessions

    # Past the grace period (the attempt's paid_at stays what it was: the records' retry sends the same request).
    monkeypatch.setattr("lms_stripe_plugin.sync.reconcile.ATTACH_GRACE", timedelta(0))
    state = billing_app.extensions["lms_stripe"]
    report = reconcile(state, since=datetime.now(timezone.utc) - timedelta(hours=1))
    assert [(f.kind, f.repaired, f.error) for f in report.findings] == [("attempt", True, None)]
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    assert [_invoice(db, i).status for i in (first, second)] == ["paid", "paid"]
    assert db.session.scalar(select(PaymentAttempt)).status == "attached"
    assert len(sandbox.state.all("payment_record")) == 2  # the retry reported nothing twice
    request = db.session.get(PaymentRequest, attempt.request_id)
    assert (request.status, request.amount_paid) == ("paid", 5000)


@pytest.mark.parametrize("choice, message", [
    ("void", "is void"), ("currency", "different currencies"), ("one", None)])
def test_choices_that_cannot_be_settled(billing_app, client, db, sandbox, choice, message):
    first = _new_invoice(client, "30.00")
    if choice == "one":  # a single invoice chosen: its own Pay button's path
        session_id = _session_of(_choose(client, [first]))
        assert sandbox.state.get(session_id)["amount_total"] == 3000
        assert db.session.scalar(select(func.count()).select_from(RequestPart)) == 0
        assert db.session.scalar(select(PaymentRequest)).invoice_id == first
        return
    if choice == "void":
        second = _new_invoice(client, "20.00")
        invoice = _invoice(db, second)
        billing_app.extensions["lms_stripe"].gateway.void_invoice(invoice.stripe_invoice_id,
                                                                  api_key="sk_test_sandbox_e2e",
                                                                  idempotency_key="void-test")
        sandbox.state.wait_for_deliveries(10)
        assert _invoice(db, second).status == "void"
    else:
        token = csrf(client, "adm", "/payments/admin/invoices/new")
        response = client.post("/payments/admin/invoices/new", headers=as_user("adm"), data={
            "csrf_token": token, "learner": "u1", "currency": "USD",
            "due": (datetime.now() + timedelta(days=9)).date().isoformat(),
            "line-1-description": "Exam", "line-1-amount": "20.00", "line-1-vat_rate": "0"})
        second = int(response.headers["Location"].rstrip("/").split("/")[-1])
    refused = _choose(client, [first, second])
    assert refused.status_code == 409 and message in refused.get_data(as_text=True)
    assert not re.search(r"cs_test_\w+", refused.headers.get("Location", ""))
    assert db.session.scalar(select(func.count()).select_from(PaymentAttempt)) == 0
