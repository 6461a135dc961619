"""Every object belongs to one account, chosen by the ``Stripe-Account`` header; events of connected accounts
carry ``account`` and go to the Connect endpoint."""

from __future__ import annotations

import json

import pytest
import requests
import stripe


def _line(amount=5000):
    return [{"price_data": {"currency": "eur", "unit_amount": amount, "product_data": {"name": "Course"}},
             "quantity": 1}]


def _session_params(**overrides):
    return {"mode": "payment", "line_items": _line(), "success_url": "https://lms.example/done",
            "cancel_url": "https://lms.example/course", "invoice_creation": {"enabled": True},
            "customer_email": "learner@example.com", "customer_creation": "always", **overrides}


@pytest.fixture
def make_school(client, control):
    """A connected account; ``onboard=True`` (default) onboards it as the hosted page does (verified)."""

    def make(onboard: bool = True, name: str = "École Alpha") -> str:
        account = client.v1.accounts.create(params={"country": "FR", "business_profile": {"name": name}})
        if onboard:
            response = control(f"/accounts/{account.id}/onboarding", {"company_name": name})
            assert response.status_code == 200 and response.json()["charges_enabled"], response.text
        return account.id

    return make


def _on(account: str | None) -> dict:
    return {"stripe_account": account} if account else {}


def test_an_object_belongs_to_the_account_whose_header_created_it(client, make_school):
    alpha, beta = make_school(onboard=False), make_school(onboard=False, name="Beta")
    customer = client.v1.customers.create(params={"email": "ada@example.com"}, options=_on(alpha))
    assert client.v1.customers.retrieve(customer.id, options=_on(alpha)).email == "ada@example.com"
    for outsider in (None, beta):
        with pytest.raises(stripe.InvalidRequestError) as raised:
            client.v1.customers.retrieve(customer.id, options=_on(outsider))
        assert raised.value.http_status == 404 and raised.value.code == "resource_missing"
        assert customer.id not in [c.id for c in client.v1.customers.list(options=_on(outsider)).data]
    assert [c.id for c in client.v1.customers.list(options=_on(alpha)).data] == [customer.id]


def test_the_platforms_objects_are_invisible_to_a_connected_account(client, make_school, vat):
    alpha = make_school(onboard=False)
    platform_customer = client.v1.customers.create(params={"email": "own@example.com"})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.retrieve(platform_customer.id, options=_on(alpha))
    with pytest.raises(stripe.InvalidRequestError) as raised:  # an id sent as a parameter: 400, as Stripe answers
        client.v1.invoices.create(params={"customer": platform_customer.id}, options=_on(alpha))
    assert raised.value.http_status == 400 and raised.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.tax_rates.retrieve(vat.id, options=_on(alpha))


def test_an_update_with_another_accounts_header_cannot_reach_the_object(client, make_school):
    alpha, beta = make_school(onboard=False), make_school(onboard=False, name="Beta")
    customer = client.v1.customers.create(params={"email": "ada@example.com"}, options=_on(alpha))
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.update(customer.id, params={"name": "Hijacked"}, options=_on(beta))
    assert client.v1.customers.retrieve(customer.id, options=_on(alpha)).name is None


def test_a_header_naming_no_account_of_the_platform_is_a_403(client):
    with pytest.raises(stripe.PermissionError) as raised:
        client.v1.customers.list(options=_on("acct_1Unknown000000"))
    assert raised.value.json_body["error"]["code"] == "account_invalid"
    assert "does not have access to account 'acct_1Unknown000000'" in raised.value.user_message


def test_idempotency_keys_belong_to_an_account(client, make_school):
    alpha, beta = make_school(onboard=False), make_school(onboard=False, name="Beta")
    key = "customer-row-7"
    first = client.v1.customers.create(params={"email": "a@example.com"}, options={**_on(alpha), "idempotency_key": key})
    again = client.v1.customers.create(params={"email": "a@example.com"}, options={**_on(alpha), "idempotency_key": key})
    other = client.v1.customers.create(params={"email": "a@example.com"}, options={**_on(beta), "idempotency_key": key})
    assert first.id == again.id != other.id
    assert client.v1.customers.retrieve(other.id, options=_on(beta)).id == other.id


def test_a_direct_charge_lives_on_the_connected_account(client, make_school, pay, connect_webhooks, webhooks,
                                                        connect_webhook_secret):
    alpha = make_school()
    connect_webhooks.calls.clear()
    session = client.v1.checkout.sessions.create(params=_session_params(), options=_on(alpha))
    assert pay(session.id).status_code == 200
    paid = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent.latest_charge"]},
                                                options=_on(alpha))
    assert paid.status == "complete" and paid.payment_intent.latest_charge.paid
    invoice = client.v1.invoices.retrieve(paid.invoice, options=_on(alpha))
    assert invoice.account_name == "École Alpha" and invoice.account_country == "FR" and invoice.status == "paid"
    for object_id, retrieve in ((session.id, client.v1.checkout.sessions.retrieve),
                                (paid.invoice, client.v1.invoices.retrieve),
                                (paid.payment_intent.id, client.v1.payment_intents.retrieve),
                                (invoice.customer, client.v1.customers.retrieve)):
        with pytest.raises(stripe.InvalidRequestError):
            retrieve(object_id)  # none of it is the platform's
    assert webhooks.calls == []
    types = connect_webhooks.types()
    assert {"checkout.session.completed", "invoice.paid", "charge.succeeded", "customer.created"} <= set(types)
    assert {event["account"] for event in connect_webhooks.events} == {alpha}
    payload, headers = connect_webhooks.calls[0]
    stripe.Webhook.construct_event(payload, headers["Stripe-Signature"], connect_webhook_secret)  # signed for Connect


def test_a_connected_accounts_events_are_listed_with_its_header_only(client, make_school, pay):
    alpha = make_school()
    session = client.v1.checkout.sessions.create(params=_session_params(), options=_on(alpha))
    pay(session.id)
    mine = client.v1.events.list(params={"limit": 100}, options=_on(alpha)).data
    assert mine and {event.account for event in mine} == {alpha}
    assert client.v1.events.list().data == []
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.events.retrieve(mine[0].id)


def test_the_platforms_own_events_have_no_account(client, create_session, pay, webhooks, connect_webhooks):
    session = create_session()
    pay(session.id)
    assert webhooks.events and all("account" not in event for event in webhooks.events)
    assert connect_webhooks.calls == []


def test_a_refund_from_the_dashboard_stays_on_the_account(client, make_school, pay, control, connect_webhooks):
    alpha = make_school()
    session = client.v1.checkout.sessions.create(params=_session_params(), options=_on(alpha))
    pay(session.id)
    intent = client.v1.payment_intents.retrieve(
        client.v1.checkout.sessions.retrieve(session.id, options=_on(alpha)).payment_intent, options=_on(alpha))
    refund = control(f"/charges/{intent.latest_charge}/refund", {"amount": 1000}).json()
    assert client.v1.refunds.retrieve(refund["id"], options=_on(alpha)).amount == 1000
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.retrieve(refund["id"])
    assert connect_webhooks.events[-1]["account"] == alpha


def test_invoice_numbers_are_counted_per_account(client, make_school, pay):
    alpha, beta = make_school(), make_school(name="Beta")
    numbers = []
    for school in (alpha, beta):
        session = client.v1.checkout.sessions.create(params=_session_params(), options=_on(school))
        pay(session.id)
        invoice = client.v1.checkout.sessions.retrieve(session.id, options=_on(school)).invoice
        numbers.append(client.v1.invoices.retrieve(invoice, options=_on(school)).number)
    assert numbers == ["SBX-0001", "SBX-0001"]


def test_the_hosted_invoice_shows_the_connected_accounts_name(client, make_school, pay):
    alpha = make_school(name="École Alpha")
    session = client.v1.checkout.sessions.create(params=_session_params(), options=_on(alpha))
    pay(session.id)
    invoice = client.v1.invoices.retrieve(client.v1.checkout.sessions.retrieve(session.id, options=_on(alpha)).invoice,
                                          options=_on(alpha))
    page = requests.get(invoice.hosted_invoice_url, timeout=10).text
    assert "École Alpha" in page and "Stripe Sandbox" not in page


def test_no_charge_on_an_account_whose_charges_are_disabled(client, make_school, pay, control):
    pending = make_school(onboard=False)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.checkout.sessions.create(params=_session_params(), options=_on(pending))
    assert "cannot currently take charges" in raised.value.user_message
    alpha = make_school()
    session = client.v1.checkout.sessions.create(params=_session_params(), options=_on(alpha))
    assert control(f"/accounts/{alpha}/disable", {"reason": "rejected.fraud"}).status_code == 200
    refused = pay(session.id)
    assert refused.status_code == 400 and "cannot currently take charges" in refused.json()["error"]["message"]
    page = requests.post(session.url, data={"method": "card", "card_number": "4242424242424242",
                                            "card_expiry": "12 / 34", "card_cvc": "123", "email": "a@example.com"},
                         timeout=10)
    assert page.status_code == 400 and "cannot currently take charges" in page.text
    assert client.v1.checkout.sessions.retrieve(session.id, options=_on(alpha)).status == "open"


def test_consent_to_terms_needs_the_connected_accounts_own_terms(client, make_school, control):
    alpha = make_school()
    params = _session_params(consent_collection={"terms_of_service": "required"})
    with pytest.raises(stripe.InvalidRequestError) as raised:  # the platform's terms are not the school's
        client.v1.checkout.sessions.create(params=params, options=_on(alpha))
    assert raised.value.param == "consent_collection[terms_of_service]"
    details = control("/account", {"account": alpha, "terms_of_service_url": "https://alpha.example/terms"}).json()
    assert details["terms_of_service_url"] == "https://alpha.example/terms" and details["business_name"] == "École Alpha"
    assert client.v1.checkout.sessions.create(params=params, options=_on(alpha)).consent_collection.terms_of_service == "required"


def test_the_deliveries_say_which_endpoint(client, make_school, sandbox, create_session, pay):
    alpha = make_school()
    session = client.v1.checkout.sessions.create(params=_session_params(), options=_on(alpha))
    pay(session.id)
    pay(create_session().id)
    endpoints = {(json.loads(json.dumps(a.endpoint)), a.event_type) for a in sandbox.state.deliveries}
    assert ("connect", "account.updated") in endpoints and ("account", "checkout.session.completed") in endpoints
    assert ("connect", "checkout.session.completed") in endpoints


def test_an_application_fee_on_a_direct_charge_is_the_platforms(client, make_school, pay, webhooks, connect_webhooks):
    alpha = make_school()
    webhooks.calls.clear()
    session = client.v1.checkout.sessions.create(
        params=_session_params(payment_intent_data={"application_fee_amount": 500}), options=_on(alpha))
    pay(session.id)
    intent = client.v1.payment_intents.retrieve(
        client.v1.checkout.sessions.retrieve(session.id, options=_on(alpha)).payment_intent,
        params={"expand": ["latest_charge"]}, options=_on(alpha))
    charge = intent.latest_charge
    assert intent.application_fee_amount == charge.application_fee_amount == 500
    assert charge.application == intent.application and charge.application.startswith("ca_")
    fee = client.v1.application_fees.retrieve(charge.application_fee)
    assert (fee.amount, fee.account, fee.charge, fee.currency) == (500, alpha, charge.id, "eur")
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.application_fees.retrieve(fee.id, options=_on(alpha))
    assert webhooks.types() == ["application_fee.created"] and "account" not in webhooks.events[0]
    assert "application_fee.created" not in connect_webhooks.types()


def test_an_application_fee_needs_a_direct_charge_within_its_amount(client, make_school):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.checkout.sessions.create(params=_session_params(payment_intent_data={"application_fee_amount": 500}))
    assert raised.value.param == "payment_intent_data[application_fee_amount]"
    assert "Stripe-Account header" in raised.value.user_message
    alpha = make_school()
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.checkout.sessions.create(
            params=_session_params(payment_intent_data={"application_fee_amount": 5001}), options=_on(alpha))
    assert raised.value.param == "payment_intent_data[application_fee_amount]"
    plain = client.v1.checkout.sessions.create(params=_session_params(), options=_on(alpha))
    assert plain.status == "open"
