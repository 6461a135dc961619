"""Account rules: terms of service for consent, Stripe Tax by the customer's address, Klarna's limits."""

from __future__ import annotations

import pytest
import requests
import stripe

from lms_stripe_plugin.sandbox import SandboxServer


def _line(currency="eur", amount=11900, behavior="inclusive"):
    return [{"price_data": {"currency": currency, "unit_amount": amount, "tax_behavior": behavior,
                            "product_data": {"name": "Course"}}, "quantity": 1}]


def test_consent_to_terms_needs_terms_of_service_on_the_account(session_params, make_client):
    with SandboxServer(deliver_async=False) as server:
        client = make_client(server.url)
        params = session_params(line_items=_line())
        with pytest.raises(stripe.InvalidRequestError) as raised:
            client.v1.checkout.sessions.create(params=params)
        assert raised.value.param == "consent_collection[terms_of_service]"
        assert "terms of service URL" in raised.value.user_message
        set_url = requests.post(f"{server.url}/_sandbox/account",
                                json={"terms_of_service_url": "https://lms.example/terms"}, timeout=10)
        assert set_url.json()["terms_of_service_url"] == "https://lms.example/terms"
        assert client.v1.checkout.sessions.create(params=params).consent_collection.terms_of_service == "required"


def test_automatic_tax_uses_the_customers_country(client, create_session):
    customer = client.v1.customers.create(params={"email": "fr@example.com", "address": {"country": "FR"}})
    session = create_session(customer=customer.id, customer_email=None, customer_creation=None, line_items=_line(),
                             automatic_tax={"enabled": True})
    assert session.automatic_tax.status == "complete"
    assert session.total_details.amount_tax == 1983 and session.amount_total == 11900  # 20 % contained
    exclusive = create_session(customer=customer.id, customer_email=None, customer_creation=None,
                               line_items=_line(amount=10000, behavior="exclusive"), automatic_tax={"enabled": True})
    assert exclusive.amount_total == 12000


def test_no_tax_outside_the_table(client, create_session):
    customer = client.v1.customers.create(params={"email": "us@example.com", "address": {"country": "US"}})
    session = create_session(customer=customer.id, customer_email=None, customer_creation=None, line_items=_line(),
                             automatic_tax={"enabled": True})
    assert session.total_details.amount_tax == 0


def test_automatic_tax_refuses_a_customer_without_address(client, create_session):
    customer = client.v1.customers.create(params={"email": "nowhere@example.com"})
    with pytest.raises(stripe.InvalidRequestError) as raised:
        create_session(customer=customer.id, customer_email=None, customer_creation=None, line_items=_line(),
                       automatic_tax={"enabled": True})
    assert raised.value.code == "customer_tax_location_invalid"
    session = create_session(customer=customer.id, customer_email=None, customer_creation=None, line_items=_line(),
                             automatic_tax={"enabled": True}, customer_update={"address": "auto"})
    assert session.automatic_tax.status == "requires_location_inputs"
    assert 'id="billing-country"' in requests.get(session.url, timeout=10).text


def test_the_address_entered_on_the_page_decides_the_tax_and_is_saved(client, create_session, pay):
    customer = client.v1.customers.create(params={"email": "de@example.com"})
    session = create_session(customer=customer.id, customer_email=None, customer_creation=None, line_items=_line(),
                             automatic_tax={"enabled": True}, customer_update={"address": "auto"})
    assert pay(session.id).status_code == 400  # no country given
    body = pay(session.id, country="DE").json()["session"]
    assert body["total_details"]["amount_tax"] == 1900 and body["automatic_tax"]["status"] == "complete"
    assert client.v1.customers.retrieve(customer.id).address.country == "DE"


def test_customer_update_needs_a_customer(create_session):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        create_session(customer_update={"address": "auto"})
    assert raised.value.param == "customer_update"


def test_klarna_is_refused_below_its_minimum(create_session):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        create_session(line_items=_line(amount=90), allowed_payment_method_types=["card", "klarna"])
    assert raised.value.param == "allowed_payment_method_types[1]"


def test_klarna_needs_the_currency_of_the_customers_country(create_session, pay):
    session = create_session(allowed_payment_method_types=["card", "klarna"])
    refused = pay(session.id, method="klarna", country="GB")
    assert refused.status_code == 400 and "Klarna is not available" in refused.json()["error"]["message"]
    assert pay(session.id, method="klarna", country="FR").status_code == 200
