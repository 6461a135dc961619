"""Paying sessions: control endpoint, hosted page, declines, promotion codes, SEPA, Klarna, expiry."""

from __future__ import annotations

import html
import re
import time
from urllib.parse import parse_qs, urlparse

import pytest
import requests
import stripe

from lms_stripe_plugin.sandbox import SandboxServer

CARD_FORM = {"email": "learner@example.com", "method": "card", "card_number": "4242 4242 4242 4242",
             "card_expiry": "12 / 34", "card_cvc": "123", "billing_name": "Ada Lovelace", "terms": "accepted",
             "action": "pay"}

PAYMENT_EVENTS = ["customer.created", "payment_intent.created", "payment_intent.succeeded", "charge.succeeded",
                  "invoice.created", "invoice.finalized", "invoice_payment.paid", "invoice.paid",
                  "invoice.payment_succeeded", "checkout.session.completed", "charge.updated"]


def _types_since(webhooks, first_type="customer.created"):
    types = webhooks.types()
    return types[types.index(first_type):]


def test_paying_with_4242_completes_session_and_creates_customer_intent_charge(paid_session, client):
    session = paid_session()

    assert (session.status, session.payment_status) == ("complete", "paid")
    assert session.url is None
    customer = client.v1.customers.retrieve(session.customer)
    assert customer.email == "learner@example.com"
    assert session.customer_details.email == "learner@example.com"
    assert session.consent.terms_of_service == "accepted"

    intent = session.payment_intent
    assert intent.id.startswith("pi_") and intent.status == "succeeded"
    assert (intent.amount, intent.amount_received, intent.currency) == (11900, 11900, "eur")
    assert intent.metadata.to_dict() == {"order_id": "12"} and intent.customer == customer.id
    charge = intent.latest_charge
    assert charge.id.startswith("ch_") and charge.paid is True and charge.status == "succeeded"
    assert (charge.amount, charge.amount_refunded, charge.refunded) == (11900, 0, False)
    assert charge.payment_method_details.type == "card"
    assert charge.payment_method_details.card.last4 == "4242"
    assert client.v1.charges.retrieve(charge.id).payment_intent == intent.id


def test_invoice_of_a_paid_session(paid_session, client, vat, sandbox):
    session = paid_session()
    invoice = session.invoice

    assert invoice.id.startswith("in_") and invoice.number == "SBX-0001"
    assert invoice.status == "paid" and invoice.status_transitions.paid_at is not None
    assert (invoice.total, invoice.subtotal, invoice.amount_paid, invoice.currency) == (11900, 11900, 11900, "eur")
    assert invoice.total_excluding_tax == 10000
    tax = invoice.total_taxes[0]
    assert (tax.amount, tax.tax_behavior, tax.type, tax.taxable_amount) == (1900, "inclusive", "tax_rate_details", 10000)
    assert tax.tax_rate_details.tax_rate == vat.id
    assert invoice.customer == session.customer and invoice.customer_email == "learner@example.com"
    assert invoice.description == "Course purchase" and invoice.metadata.to_dict() == {"order_id": "12"}
    assert invoice.invoice_pdf == f"{sandbox.url}/files/invoices/{invoice.id}.pdf"
    assert invoice.hosted_invoice_url == f"{sandbox.url}/i/{invoice.id}"
    assert invoice.post_payment_credit_notes_amount == 0
    line = invoice.lines.data[0]
    assert (line.amount, line.description, line.taxes[0].amount) == (11900, "Python for Data Science", 1900)
    assert "payments" not in invoice  # includable: only there when expanded
    payments = client.v1.invoices.retrieve(invoice.id, params={"expand": ["payments"]}).payments
    payment = payments.data[0].payment
    assert (payment.type, payment.payment_intent) == ("payment_intent", session.payment_intent.id)
    assert payments.data[0].is_default is True and payments.data[0].amount_paid == 11900

    assert client.v1.invoices.retrieve(invoice.id).number == "SBX-0001"
    assert [i.id for i in client.v1.invoices.list(params={"customer": session.customer}).data] == [invoice.id]
    second = paid_session()
    assert second.invoice.number == "SBX-0002"


def test_events_fire_in_order_and_webhooks_verify(paid_session, webhooks, client, webhook_secret):
    session = paid_session()

    assert _types_since(webhooks) == PAYMENT_EVENTS
    for payload, headers in webhooks.calls:
        event = stripe.Webhook.construct_event(payload, headers["Stripe-Signature"], webhook_secret)
        assert event.livemode is False and event.api_version == "2026-10-28.endive"
    completed = next(e for e in webhooks.events if e["type"] == "checkout.session.completed")
    assert completed["id"].startswith("evt_") and completed["object"] == "event"
    body = completed["data"]["object"]
    assert body["id"] == session.id and body["invoice"] == session.invoice.id  # not expanded
    assert body["payment_intent"] == session.payment_intent.id
    assert body["status"] == "complete" and body["payment_status"] == "paid"
    api_events = client.v1.events.list(params={"limit": 100}).data
    assert [e.type for e in reversed(api_events)][-len(PAYMENT_EVENTS):] == PAYMENT_EVENTS


def test_api_request_events_carry_the_request_and_idempotency_key(client, webhooks):
    customer = client.v1.customers.create(params={"email": "x@example.com"}, options={"idempotency_key": "cust-1"})
    event = webhooks.events[-1]
    assert event["type"] == "customer.created" and event["data"]["object"]["id"] == customer.id
    assert event["request"]["idempotency_key"] == "cust-1"
    assert event["request"]["id"] == customer.last_response.request_id


def test_hosted_page_shows_a_usable_checkout(create_session, sandbox):
    session = create_session()
    page = requests.get(session.url, timeout=10)

    assert page.status_code == 200
    markup = page.text
    for element_id in ("checkout-form", "email", "card-number", "card-expiry", "card-cvc", "iban", "billing-name",
                       "promo-code", "apply-promo", "terms", "pay", "back", "total-amount", "payment-error"):
        assert f'id="{element_id}"' in markup, element_id
    for method in ("card", "klarna", "sepa_debit"):
        assert f'name="method" value="{method}"' in markup
    for field_id in ("email", "card-number", "card-expiry", "card-cvc", "iban", "promo-code", "terms", "billing-name"):
        assert f'for="{field_id}"' in markup, field_id
    assert "Python for Data Science" in markup and "€119.00" in markup and "learner@example.com" in markup
    assert "I accept the course terms." in markup and "Pay in instalments" in markup
    assert 'href="https://lms.example/courses/42"' in markup and "← Back" in markup


def test_hosted_page_only_offers_the_sessions_methods(create_session):
    session = create_session(allowed_payment_method_types=["card"], allow_promotion_codes=None, consent_collection=None)
    markup = requests.get(session.url, timeout=10).text
    assert 'value="klarna"' not in markup and 'id="iban"' not in markup
    assert 'id="promo-code"' not in markup and 'id="terms"' not in markup


def test_paying_through_the_hosted_form_redirects_to_success_url(create_session, client):
    session = create_session()
    response = requests.post(session.url, data=CARD_FORM, allow_redirects=False, timeout=10)

    assert response.status_code == 303
    location = response.headers["Location"]
    assert location == f"https://lms.example/checkout/success?session_id={session.id}"
    assert parse_qs(urlparse(location).query)["session_id"] == [session.id]
    done = client.v1.checkout.sessions.retrieve(session.id)
    assert (done.status, done.payment_status) == ("complete", "paid")
    assert done.customer_details.name == "Ada Lovelace"
    assert "already complete" in requests.get(session.url, timeout=10).text


def test_declined_card_shows_stripes_message_and_keeps_session_open(create_session, client, webhooks):
    session = create_session()
    form = {**CARD_FORM, "card_number": "4000 0000 0000 0002"}
    response = requests.post(session.url, data=form, allow_redirects=False, timeout=10)

    assert response.status_code == 402
    assert "Your card was declined." in response.text
    after = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert after.status == "open" and after.payment_status == "unpaid"
    assert after.payment_intent.status == "requires_payment_method"
    assert after.payment_intent.last_payment_error.decline_code == "generic_decline"
    assert webhooks.types()[-2:] == ["payment_intent.payment_failed", "charge.failed"]

    retry = requests.post(session.url, data=CARD_FORM, allow_redirects=False, timeout=10)
    assert retry.status_code == 303
    paid = client.v1.checkout.sessions.retrieve(session.id)
    assert paid.payment_status == "paid" and paid.payment_intent == after.payment_intent.id


def test_insufficient_funds_through_the_control_endpoint(create_session, pay):
    session = create_session()
    response = pay(session.id, card="4000000000009995")

    assert response.status_code == 402
    error = response.json()["error"]
    assert error["type"] == "card_error" and error["code"] == "card_declined"
    assert error["decline_code"] == "insufficient_funds"
    assert error["message"] == "Your card has insufficient funds."


@pytest.mark.parametrize("field, value, message", [
    ("card_number", "4242 4242 4242 4241", "Your card number is invalid."),
    ("card_number", "", "Your card number is incomplete."),
    ("card_expiry", "01 / 20", "Your card's expiration year is in the past."),
    ("card_cvc", "1", "Your card's security code is incomplete."),
    ("email", "", "Your email is incomplete."),
    ("terms", "", "You must accept the terms of service to continue."),
])
def test_form_validation_messages(create_session, client, field, value, message):
    session = create_session(customer_email=None)
    response = requests.post(session.url, data={**CARD_FORM, field: value}, allow_redirects=False, timeout=10)
    assert response.status_code in (400, 402)
    assert message in html.unescape(response.text)
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"


def test_promotion_code_on_the_hosted_page_changes_the_total(create_session, client):
    session = create_session()
    applied = requests.post(session.url, data={"promotion_code": "WELCOME10", "action": "apply_promo"}, timeout=10)

    assert applied.status_code == 200
    assert 'id="promo-applied"' in applied.text and "€107.10" in applied.text
    assert client.v1.checkout.sessions.retrieve(session.id).amount_total == 10710

    paid = requests.post(session.url, data={**CARD_FORM, "promotion_code": "WELCOME10"}, allow_redirects=False,
                         timeout=10)
    assert paid.status_code == 303
    done = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent", "invoice"]})
    assert done.amount_total == 10710 and done.total_details.amount_discount == 1190
    assert done.discounts[0].promotion_code == "promo_sbxWELCOME10"
    assert done.payment_intent.amount == 10710
    assert done.invoice.total == 10710 and done.invoice.total_taxes[0].amount == 1710
    assert done.invoice.total_discount_amounts[0].amount == 1190


def test_invalid_promotion_code_is_refused(create_session, client):
    session = create_session()
    response = requests.post(session.url, data={"promotion_code": "NOPE", "action": "apply_promo"}, timeout=10)
    assert response.status_code == 400
    assert re.search(r'id="promo-error"[^>]*>This code is invalid\.<', response.text)
    paying = requests.post(session.url, data={**CARD_FORM, "promotion_code": "NOPE"}, allow_redirects=False, timeout=10)
    assert paying.status_code == 400 and "This code is invalid." in paying.text
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"


def test_half_promotion_code_through_the_control_endpoint(create_session, pay):
    session = create_session()
    body = pay(session.id, promotion_code="HALF").json()["session"]
    assert body["amount_total"] == 5950 and body["total_details"]["amount_discount"] == 5950


def test_klarna_pays_at_once(create_session, pay, client):
    session = create_session()
    response = pay(session.id, method="klarna")
    assert response.status_code == 200
    done = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent.latest_charge"]})
    assert done.payment_status == "paid"
    assert done.payment_intent.latest_charge.payment_method_details.type == "klarna"


def test_sepa_debit_settles_later(create_session, pay, control, client, webhooks):
    session = create_session()
    submitted = pay(session.id, method="sepa_debit", iban="DE89 3704 0044 0532 0130 00").json()["session"]

    assert (submitted["status"], submitted["payment_status"]) == ("complete", "unpaid")
    assert client.v1.payment_intents.retrieve(submitted["payment_intent"]).status == "processing"
    assert submitted["invoice"] is None
    assert webhooks.types()[-1] == "checkout.session.completed"

    settled = control(f"/checkout/sessions/{session.id}/settle", {"outcome": "succeeded"}).json()
    assert settled["payment_status"] == "paid" and settled["invoice"].startswith("in_")
    assert client.v1.payment_intents.retrieve(submitted["payment_intent"]).status == "succeeded"
    assert webhooks.types()[-9:] == ["payment_intent.succeeded", "charge.succeeded", "invoice.created",
                                     "invoice.finalized", "invoice_payment.paid", "invoice.paid",
                                     "invoice.payment_succeeded", "checkout.session.async_payment_succeeded",
                                     "charge.updated"]
    again = control(f"/checkout/sessions/{session.id}/settle", {"outcome": "succeeded"})
    assert again.status_code == 400


@pytest.mark.parametrize("iban", ["DE62370400440532013001", "FR8420041010050500013M02607"])
def test_sepa_debit_with_failing_iban_fails_at_settlement(create_session, pay, control, client, webhooks, iban):
    session = create_session()
    pay(session.id, method="sepa_debit", iban=iban)
    settled = control(f"/checkout/sessions/{session.id}/settle", {}).json()

    assert (settled["status"], settled["payment_status"], settled["invoice"]) == ("complete", "unpaid", None)
    intent = client.v1.payment_intents.retrieve(settled["payment_intent"])
    assert intent.status == "requires_payment_method"
    assert webhooks.types()[-1] == "checkout.session.async_payment_failed"


def test_invalid_iban_is_refused(create_session, pay):
    response = pay(create_session().id, method="sepa_debit", iban="DE00123")
    assert response.status_code == 400 and response.json()["error"]["message"] == "Your IBAN is invalid."


def test_sepa_debit_settles_automatically_after_delay(pay_on, wait_until):
    with SandboxServer(deliver_async=False, delayed_settle_seconds=0.2) as server:
        client, session_id = pay_on(server, method="sepa_debit")
        assert wait_until(lambda: client.v1.checkout.sessions.retrieve(session_id).payment_status == "paid", 10)


def test_sepa_debit_settles_when_the_clock_passes_the_delay(pay_on):
    with SandboxServer(deliver_async=False, delayed_settle_seconds=3 * 24 * 3600) as server:
        client, session_id = pay_on(server, method="sepa_debit")
        assert client.v1.checkout.sessions.retrieve(session_id).payment_status == "unpaid"
        requests.post(f"{server.url}/_sandbox/clock/advance", json={"seconds": 3 * 24 * 3600}, timeout=10)
        assert client.v1.checkout.sessions.retrieve(session_id).payment_status == "paid"


def test_expire_through_the_api(create_session, client, webhooks, pay):
    session = create_session()
    expired = client.v1.checkout.sessions.expire(session.id)

    assert expired.status == "expired" and expired.url is None
    assert webhooks.types()[-1] == "checkout.session.expired"
    assert webhooks.events[-1]["data"]["previous_attributes"]["status"] == "open"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(session.id)
    page = requests.get(session.url, timeout=10)
    assert "This checkout session has expired." in page.text
    assert pay(session.id).status_code == 400
    posted = requests.post(session.url, data=CARD_FORM, allow_redirects=False, timeout=10)
    assert "This checkout session has expired." in posted.text


def test_sessions_expire_when_the_clock_passes_expires_at(create_session, control, client, webhooks):
    session = create_session(expires_at=int(time.time()) + 1800)
    other = create_session()
    now = control("/clock/advance", {"seconds": 1900}).json()["now"]

    assert now >= session.expires_at
    assert client.v1.checkout.sessions.retrieve(session.id).status == "expired"
    assert client.v1.checkout.sessions.retrieve(other.id).status == "open"
    expired_events = [e for e in webhooks.events if e["type"] == "checkout.session.expired"]
    assert [e["data"]["object"]["id"] for e in expired_events] == [session.id]


def test_state_and_reset_control_endpoints(paid_session, control):
    paid_session()
    counts = control("/state", method="GET").json()["counts"]
    assert counts["checkout.session"] == 1 and counts["invoice"] == 1 and counts["charge"] == 1
    control("/reset")
    after = control("/state", method="GET").json()["counts"]
    assert "checkout.session" not in after and after["promotion_code"] == 2


def test_webhook_sink_can_be_a_flask_test_client(session_params):
    """Deliveries can go straight into another Flask app's test client."""
    from flask import Flask, request

    receiver = Flask("receiver")
    received = []

    @receiver.post("/webhooks/stripe")
    def hook():
        event = stripe.Webhook.construct_event(request.get_data(), request.headers["Stripe-Signature"], "whsec_x")
        received.append(event.type)
        return "", 200

    test_client = receiver.test_client()
    server = SandboxServer(deliver_async=False, webhook_secret="whsec_x",
                           webhook_sink=lambda body, headers: test_client.post(
                               "/webhooks/stripe", data=body, headers=headers).status_code)
    with server:
        customer = requests.post(f"{server.url}/v1/customers", data={"email": "a@example.com"},
                                 headers={"Authorization": "Bearer sk_test_x"}, timeout=10).json()
        assert customer["object"] == "customer"
    assert received == ["customer.created"]
    assert server.state.deliveries[0].status_code == 200


def test_discount_given_at_creation(create_session, pay):
    session = create_session(allow_promotion_codes=None, discounts=[{"promotion_code": "promo_sbxHALF"}])
    assert session.amount_total == 5950 and session.discounts[0].promotion_code == "promo_sbxHALF"
    assert pay(session.id).json()["session"]["amount_total"] == 5950


def test_free_order_needs_no_payment(client, create_session, pay):
    coupon = client.v1.coupons.create(params={"percent_off": 100})
    client.v1.promotion_codes.create(params={"promotion": {"type": "coupon", "coupon": coupon.id}, "code": "FREE"})
    body = pay(create_session().id, promotion_code="free").json()["session"]

    assert (body["payment_status"], body["amount_total"], body["payment_intent"]) == ("no_payment_required", 0, None)
    invoice = client.v1.invoices.retrieve(body["invoice"])
    assert invoice.status == "paid" and invoice.total == 0


def test_terms_text_renders_markdown_links_safely(create_session):
    text = "I accept the [terms of sale](https://lms.example/terms?a=1&b=2) <b>now</b>."
    session = create_session(custom_text={"terms_of_service_acceptance": {"message": text}})
    markup = requests.get(session.url, timeout=10).text
    assert '<a href="https://lms.example/terms?a=1&amp;b=2" target="_blank" rel="noopener">terms of sale</a>' in markup
    assert "&lt;b&gt;now&lt;/b&gt;" in markup
