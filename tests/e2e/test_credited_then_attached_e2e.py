"""A request's payment put on the learner's balance (its invoice paid meanwhile on Stripe's hosted page) is then
attached to another open invoice of the learner from Stripe's Dashboard. It is not the first request's payment
(that request is not credited with it), and the school is told it now counts on both the balance and that
invoice."""
from __future__ import annotations

from sqlalchemy import select

from lms_stripe_plugin.billing import balances
from lms_stripe_plugin.core.enums import AuditAction
from lms_stripe_plugin.core.models import AuditEntry, PaymentAttempt, PaymentRequest

from ..conftest import as_user
from .conftest import click_pay, pay
from .test_payment_requests_e2e import _invoice, _new_invoice, _request, billing_app  # noqa: F401 (a fixture)
from .test_unattachable_payments_e2e import _pay_hosted_invoice


def test_a_payment_on_the_balance_attached_elsewhere_in_the_dashboard_is_not_its_requests(billing_app, client, db,
                                                                                          sandbox):
    first = _new_invoice(client)
    link = _request(client, first, "90.00")
    session_id = click_pay(client, link)
    _pay_hosted_invoice(sandbox, _invoice(db, first).stripe_invoice_id)
    assert pay(sandbox, session_id).status_code == 200
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    attempt = db.session.scalar(select(PaymentAttempt))
    assert attempt.status == "credited" and balances.available(db.session, "u1", "EUR").amount == 9000

    second = _new_invoice(client)  # 300 € owed by the same learner (the same Stripe customer)
    state = billing_app.extensions["lms_stripe"]
    state.gateway.attach_payment(_invoice(db, second).stripe_invoice_id,
                                 {"payment_intent": attempt.stripe_payment_intent_id},
                                 api_key="sk_test_sandbox_e2e", idempotency_key="dashboard-attach")
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()

    request = db.session.scalar(select(PaymentRequest))
    assert request.amount_paid == 0  # its invoice was paid on the hosted page, not by this payment
    told = db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == AuditAction.CREDITED_PAYMENT_ATTACHED)).all()
    assert len(told) == 1
    page = client.get(f"/payments/admin/invoices/{second}", headers=as_user("adm")).get_data(as_text=True)
    assert "it counts on both" in page or "compte sur les deux" in page
