"""A pre-payment credit note voided in Stripe's Dashboard, end to end through the real SDK and the sandbox: an
administrator invoices 300 €, a credit note of 60 € is issued on it (240 € remain), then voided (300 € remain
again, ``POST /v1/credit_notes/{id}/void``). Its four events (``credit_note.created``, ``invoice.updated``,
``credit_note.voided``, ``invoice.updated``) reach the app in several orders: the invoice asks 300 € again, and
a payment request for all of it is accepted."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
import requests
import stripe
from sqlalchemy import select

from lms_stripe_plugin.core.models import CreditNote, Invoice

from ..conftest import as_user
from .conftest import csrf

SECRET_KEY = "sk_test_sandbox_e2e"
DUE = (date.today() + timedelta(days=20)).isoformat()
#: The events of the credit note's issuing (0, 1) and of its void (2, 3), as Stripe sends them.
KINDS = ("credit_note.created", "invoice.updated", "credit_note.voided", "invoice.updated")


def _dashboard(sandbox) -> stripe.StripeClient:
    """What an administrator does in Stripe's Dashboard: calls of the account's own, not the plugin's."""
    return stripe.StripeClient(SECRET_KEY, base_addresses={"api": sandbox.url},
                               http_client=stripe.RequestsClient(timeout=10), max_network_retries=0)


def _new_invoice(client, amount: str = "300.00") -> int:
    token = csrf(client, "adm", "/payments/admin/invoices/new")
    response = client.post("/payments/admin/invoices/new", headers=as_user("adm"), data={
        "csrf_token": token, "learner": "u1", "currency": "EUR", "due": DUE,
        "line-1-description": "Accompagnement VAE", "line-1-amount": amount, "line-1-vat_rate": "20"})
    assert response.status_code == 302, response.get_data(as_text=True)
    return int(response.headers["Location"].rstrip("/").split("/")[-1])


def _invoice(db, invoice_id: int) -> Invoice:
    db.session.expire_all()
    return db.session.get(Invoice, invoice_id)


def _held(sandbox, sink, action) -> list[dict]:
    """Run ``action`` with the webhook endpoint down: the events it made (oldest first), none delivered."""
    mark = len(sandbox.state.all("event"))
    sink.drop = True
    try:
        action()
        assert sandbox.state.wait_for_deliveries(10)
    finally:
        sink.drop = False
    return list(reversed(sandbox.state.all("event")))[mark:]


def _deliver(sandbox, events: list[dict]) -> None:
    """Deliver the events again, one after the other, in this order."""
    for stripe_event in events:
        sandbox.state.resend(stripe_event)
        assert sandbox.state.wait_for_deliveries(10)


def _advance(sandbox, seconds: int) -> None:
    response = requests.post(f"{sandbox.url}/_sandbox/clock/advance", json={"seconds": seconds}, timeout=5)
    assert response.status_code == 200, response.text


#: Orders of the four events (tests/test_credit_note_void.py delivers every one, in one second or seconds
#: apart): as Stripe sends them; the void's snapshot before its credit note's event; the snapshot of the issuing
#: after the void's event, before or after the issuing's own; the void's events first, the issuing's last; all
#: reversed.
ORDERS = [(0, 1, 2, 3), (0, 1, 3, 2), (0, 2, 1, 3), (2, 1, 0, 3), (1, 3, 2, 0), (2, 3, 0, 1), (3, 2, 1, 0)]


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(map(str, order)) for order in ORDERS])
def test_a_voided_pre_payment_credit_note_gives_its_amount_back_to_what_remains(
        stripe_app, client, db, sandbox, sink, order):
    invoice_id = _new_invoice(client)
    stripe_id = _invoice(db, invoice_id).stripe_invoice_id
    dashboard = _dashboard(sandbox)

    notes: list = []
    issued = _held(sandbox, sink, lambda: notes.append(
        dashboard.v1.credit_notes.create(params={"invoice": stripe_id, "amount": 6000, "reason": "order_change"})))
    (note,) = notes
    assert (note.pre_payment_amount, dashboard.v1.invoices.retrieve(stripe_id).amount_remaining) == (6000, 24000)
    _advance(sandbox, 5)  # voided a few seconds later, as a person in the Dashboard would
    voided = _held(sandbox, sink, lambda: dashboard.v1.credit_notes.void_credit_note(note.id))
    at_stripe = dashboard.v1.invoices.retrieve(stripe_id)
    assert (at_stripe.status, at_stripe.amount_remaining, at_stripe.pre_payment_credit_notes_amount) == \
        ("open", 30000, 0)
    events = issued + voided
    assert [e["type"] for e in events] == list(KINDS)

    _deliver(sandbox, [events[i] for i in order])

    invoice = _invoice(db, invoice_id)
    assert (invoice.status, invoice.amount_paid, invoice.amount_remaining) == ("open", 0, 30000)
    assert [(n.stripe_credit_note_id, n.status) for n in db.session.scalars(select(CreditNote))] == \
        [(note.id, "void")]
    # What is asked of the learner is what Stripe says is owed: all of it again.
    path = f"/payments/admin/invoices/{invoice_id}/request"
    response = client.post(path, headers=as_user("adm"), data={
        "csrf_token": csrf(client, "adm", path), "amount": "300.00", "due": DUE, "email": "on", "locale": "fr"})
    assert response.status_code == 302, response.get_data(as_text=True)
