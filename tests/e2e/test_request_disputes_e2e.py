"""A dispute of a payment request's payment, end to end through the real SDK and the sandbox: the learner pays
90 € of an invoice through its request, then their bank disputes the charge. The dispute is recorded on the Pay
click, shown on the invoice's page and written in its history, from the webhook or, when the webhooks were
lost, by reconcile (that its events read nothing from Stripe is tested in tests/test_request_events.py)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import requests
from sqlalchemy import func, select

from lms_stripe_plugin.core.models import Dispute, PaymentAttempt
from lms_stripe_plugin.sync.reconcile import reconcile

from ..conftest import as_user
from .conftest import click_pay, pay
from .test_payment_requests_e2e import _invoice, _new_invoice, _request, billing_app  # noqa: F401 (a fixture)


def _paid_request(client, db, sandbox) -> tuple[int, str]:
    invoice_id = _new_invoice(client)
    session_id = click_pay(client, _request(client, invoice_id, "90.00"))
    assert pay(sandbox, session_id).status_code == 200
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    attempt = db.session.scalar(select(PaymentAttempt))
    assert attempt.status == "attached" and _invoice(db, invoice_id).amount_paid == 9000
    charge = next(c for c in sandbox.state.all("charge") if c["payment_intent"] == attempt.stripe_payment_intent_id)
    return invoice_id, charge["id"]


def test_a_dispute_of_a_requests_payment_is_recorded_from_its_event(billing_app, client, db, sandbox):
    invoice_id, charge = _paid_request(client, db, sandbox)
    assert requests.post(f"{sandbox.url}/_sandbox/charges/{charge}/dispute", timeout=5).status_code in (200, 201)
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    dispute = db.session.scalar(select(Dispute))
    attempt = db.session.scalar(select(PaymentAttempt))
    assert (dispute.attempt_id, dispute.purchase_id, dispute.amount, dispute.currency) == (attempt.id, None, 9000,
                                                                                           "EUR")
    page = client.get(f"/payments/admin/invoices/{invoice_id}", headers=as_user("adm")).get_data(as_text=True)
    assert dispute.stripe_dispute_id in page and "disputed their payment" in page
    assert _invoice(db, invoice_id).amount_paid == 9000  # Stripe keeps the invoice paid; the page says so


def test_a_dispute_whose_events_were_lost_is_recorded_by_reconcile(billing_app, client, db, sandbox, sink):
    _invoice_id, charge = _paid_request(client, db, sandbox)
    sink.drop = True
    requests.post(f"{sandbox.url}/_sandbox/charges/{charge}/dispute", timeout=5)
    sandbox.state.wait_for_deliveries(10)
    assert db.session.scalar(select(func.count()).select_from(Dispute)) == 0
    state = billing_app.extensions["lms_stripe"]
    since = datetime.now(timezone.utc) - timedelta(hours=1)
    assert [(f.kind, f.problem) for f in reconcile(state, since=since).findings if f.kind == "dispute"] == \
        [("dispute", "dispute not recorded")]
    db.session.expire_all()
    assert db.session.scalar(select(Dispute.attempt_id)) == db.session.scalar(select(PaymentAttempt.id))
    assert [f for f in reconcile(state, since=since).findings if f.kind == "dispute"] == []
