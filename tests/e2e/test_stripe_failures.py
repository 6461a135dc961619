"""Stripe failing (5xx, 429, timeouts, dropped connections, card errors) while the plugin talks to it:
a clear message, nothing half-written, and a retry that is safe because it sends the same idempotency key."""
import pytest
import requests
from sqlalchemy import func, select

from lms_stripe_plugin.core.models import Event, Invoice, Purchase, Refund

from ..conftest import as_user
from .conftest import csrf, fault, pay, start_checkout

MESSAGES = {
    "500": "Stripe could not be reached",
    "429": "Stripe is busy",
    "timeout": "Stripe could not be reached",
    "connection": "Stripe could not be reached",
    "card_error": "card",
}


def _sessions_for(sandbox, purchase_id):
    return [s for s in sandbox.state.all("checkout.session") if s["metadata"].get("lms_purchase_id") == str(purchase_id)]


@pytest.mark.parametrize("kind", ["500", "429", "timeout", "connection", "card_error"])
def test_checkout_failure_shows_a_message_and_the_retry_is_safe(stripe_app, client, db, sandbox, kind):
    fault(sandbox, "/v1/checkout/sessions", kind, timeout_seconds=4)
    response, _session = start_checkout(client, "u1", "c1")
    assert 400 <= response.status_code < 600 and response.status_code != 500
    assert MESSAGES[kind].lower() in response.get_data(as_text=True).lower()
    purchase = db.session.scalar(select(Purchase))
    assert purchase.stripe_checkout_session_id is None
    # No answer (timeout, dropped connection) or 429: the same purchase and key. An error Stripe answered
    # and keeps for that key (5xx, card error): that purchase fails and the next click starts afresh.
    assert purchase.status == ("failed" if kind in ("500", "card_error") else "open")
    retry, session_id = start_checkout(client, "u1", "c1")
    assert retry.status_code == 303
    db.session.expire_all()
    live = db.session.scalars(select(Purchase).where(Purchase.status == "open")).all()
    assert len(live) == 1 and [s["id"] for s in _sessions_for(sandbox, live[0].id)] == [session_id]
    assert len(sandbox.state.all("checkout.session")) == 1


def test_a_session_created_but_whose_answer_was_lost_is_not_created_twice(stripe_app, client, db, sandbox):
    fault(sandbox, "/v1/checkout/sessions", "timeout", timeout_seconds=4, after=True)
    response, _ = start_checkout(client, "u1", "c1")
    assert response.status_code == 502
    purchase = db.session.scalar(select(Purchase))
    assert len(_sessions_for(sandbox, purchase.id)) == 1  # Stripe did create it
    retry, session_id = start_checkout(client, "u1", "c1")
    assert retry.status_code == 303
    assert [s["id"] for s in _sessions_for(sandbox, purchase.id)] == [session_id]  # replayed, not a second one


def _paid_invoice(client, db, sandbox):
    _response, session_id = start_checkout(client, "u1", "c1")
    pay(sandbox, session_id)
    return db.session.scalar(select(Invoice))


@pytest.mark.parametrize("kind, after", [("500", False), ("connection", False), ("timeout", False), ("timeout", True)])
def test_cancel_while_stripe_fails_marks_nothing_and_the_retry_refunds_once(stripe_app, client, db, sandbox, host,
                                                                            signals, kind, after):
    invoice = _paid_invoice(client, db, sandbox)
    token = csrf(client, "adm", f"/payments/admin/invoices/{invoice.id}/cancel")
    fault(sandbox, "/v1/credit_notes", kind, timeout_seconds=4, after=after)
    response = client.post(f"/payments/admin/invoices/{invoice.id}/cancel", data={"csrf_token": token},
                           headers=as_user("adm"))
    assert response.status_code == 409
    assert "Stripe could not be reached: nothing was changed" in response.get_data(as_text=True)
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    if not after:
        assert db.session.get(Invoice, invoice.id).status == "paid"
        assert ("unenroll", "u1", "c1") not in host.calls and "purchase_cancelled" not in signals
    retry = client.post(f"/payments/admin/invoices/{invoice.id}/cancel", data={"csrf_token": token},
                        headers=as_user("adm"))
    assert retry.status_code in (302, 409)
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    assert len(sandbox.state.all("credit_note")) == 1 and len(sandbox.state.all("refund")) == 1
    invoice = db.session.get(Invoice, invoice.id)
    assert invoice.status == "cancelled" and invoice.amount_refunded == 4990
    assert db.session.scalar(select(func.count()).select_from(Refund).where(Refund.status == "succeeded")) == 1
    assert host.calls.count(("unenroll", "u1", "c1")) == 1


def test_webhook_whose_stripe_read_fails_is_handled_when_stripe_retries(stripe_app, client, db, sandbox, sink):
    """A delayed payment that failed is the one checkout event whose handler reads Stripe (the reason)."""
    _response, session_id = start_checkout(client, "u1", "c1")
    pay(sandbox, session_id, method="sepa_debit", iban="DE62370400440532013001")
    fault(sandbox, f"/v1/checkout/sessions/{session_id}", "500", method="GET", times=1)
    requests.post(f"{sandbox.url}/_sandbox/checkout/sessions/{session_id}/settle", json={"outcome": "failed"},
                  timeout=5)
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    assert 500 in sink.statuses  # the first delivery failed...
    failed = db.session.scalar(select(Event).where(Event.type == "checkout.session.async_payment_failed"))
    assert failed.status == "processed" and failed.attempts >= 2  # ...Stripe's retry was handled
    assert db.session.scalar(select(Purchase.status)) == "failed"


def test_success_page_while_stripe_is_down_says_processing(stripe_app, client, db, sandbox, sink):
    _response, session_id = start_checkout(client, "u1", "c1")
    sink.drop = True  # the webhook does not arrive either
    pay(sandbox, session_id)
    fault(sandbox, f"/v1/checkout/sessions/{session_id}", "connection", method="GET")
    page = client.get(f"/payments/checkout/success?session_id={session_id}", headers=as_user("u1"))
    assert page.status_code == 200 and "Payment processing" in page.get_data(as_text=True)
    page = client.get(f"/payments/checkout/success?session_id={session_id}", headers=as_user("u1"))
    assert "payment is confirmed" in page.get_data(as_text=True)  # Stripe is back: fulfilled from the page
