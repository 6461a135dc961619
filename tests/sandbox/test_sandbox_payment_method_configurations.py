"""Payment Method Configurations, as strict as Stripe: the API, and the wallets they put on Checkout."""

from __future__ import annotations

import re

import pytest
import requests
import stripe

WALLETS_ON = {"apple_pay": {"display_preference": {"preference": "on"}},
              "google_pay": {"display_preference": {"preference": "on"}}}


@pytest.fixture
def wallets_config(client: stripe.StripeClient) -> stripe.PaymentMethodConfiguration:
    return client.v1.payment_method_configurations.create(params={"name": "LMS", **WALLETS_ON})


def _wallet_buttons(url: str, **headers: str) -> list[str]:
    page = requests.get(url, headers=headers, timeout=10).text
    return re.findall(r'id="wallet-([a-z_]+)"', page)


# -- the API -------------------------------------------------------------------------------------


def test_a_configuration_is_created_shaped_like_stripes(wallets_config):
    config = wallets_config.to_dict()
    assert config["id"].startswith("pmc_") and config["object"] == "payment_method_configuration"
    assert (config["active"], config["is_default"], config["livemode"], config["name"]) == (True, False, False, "LMS")
    assert config["parent"] is None and config["application"] is None
    assert config["apple_pay"] == {"available": True,
                                   "display_preference": {"overridable": None, "preference": "on", "value": "on"}}
    # Not sent: the account's Dashboard value (cards on, the rest off).
    assert config["card"]["display_preference"] == {"overridable": None, "preference": "none", "value": "on"}
    assert config["klarna"]["available"] is False and config["klarna"]["display_preference"]["value"] == "off"
    assert config["ideal"] is None  # a method the account cannot offer


def test_retrieve_update_and_list(client, wallets_config):
    assert client.v1.payment_method_configurations.retrieve(wallets_config.id).apple_pay.available is True
    updated = client.v1.payment_method_configurations.update(wallets_config.id, params={
        "google_pay": {"display_preference": {"preference": "off"}}, "name": "LMS (Apple Pay)"})
    assert (updated.google_pay.available, updated.google_pay.display_preference.value) == (False, "off")
    assert updated.apple_pay.available is True and updated.name == "LMS (Apple Pay)"

    listed = client.v1.payment_method_configurations.list()
    assert [c.id for c in listed.data] == [wallets_config.id, "pmc_sbxDefault"]
    default = listed.data[1]
    assert default.is_default is True and default.apple_pay.available is False  # the sandbox's Dashboard
    client.v1.payment_method_configurations.update(wallets_config.id, params={"active": False})
    assert [c.id for c in client.v1.payment_method_configurations.list(params={"active": True}).data] == [
        "pmc_sbxDefault"]
    assert len(client.v1.payment_method_configurations.list(params={"application": ""}).data) == 2
    assert client.v1.payment_method_configurations.list(params={"application": "ca_x"}).data == []
    assert len(client.v1.payment_method_configurations.list(params={"limit": 1}).data) == 1


def test_unknown_ids_are_resource_missing(client):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.payment_method_configurations.retrieve("pmc_nope")
    assert (raised.value.http_status, raised.value.code) == (404, "resource_missing")
    assert raised.value.user_message == "No such payment_method_configuration: 'pmc_nope'"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.payment_method_configurations.update("pmc_nope", params={"name": "x"})
    assert raised.value.http_status == 404


@pytest.mark.parametrize("params, code, param", [
    ({"colour": "blue"}, "parameter_unknown", "colour"),
    ({"apple_pay": {"display_preference": {"preference": "maybe"}}}, None,
     "apple_pay[display_preference][preference]"),
    ({"apple_pay": {"display": "on"}}, "parameter_unknown", "apple_pay[display]"),
    ({"ideal": {"display_preference": {"preference": "on"}}}, "parameter_unsupported", "ideal"),
    ({"parent": "pmc_parent"}, "parameter_unsupported", "parent"),
])
def test_parameters_are_checked_against_the_sdks_types(client, params, code, param):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.payment_method_configurations.create(params=params)
    assert (raised.value.code, raised.value.param) == (code, param)


def test_the_preference_enum_is_stripes(client):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.payment_method_configurations.create(
            params={"google_pay": {"display_preference": {"preference": "yes"}}})
    assert raised.value.user_message == ("Invalid google_pay[display_preference][preference]: must be one of none, "
                                         "off, or on")


def test_creation_is_idempotent_like_every_creation(client, sandbox):
    first = client.v1.payment_method_configurations.create(params=WALLETS_ON, options={"idempotency_key": "pmc-1"})
    again = client.v1.payment_method_configurations.create(params=WALLETS_ON, options={"idempotency_key": "pmc-1"})
    assert again.id == first.id and again.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(sandbox.state.all("payment_method_configuration")) == 2  # with the default one
    with pytest.raises(stripe.IdempotencyError):
        client.v1.payment_method_configurations.create(params={"name": "other"}, options={"idempotency_key": "pmc-1"})


def test_reset_brings_back_the_default_configuration_only(client, wallets_config, control):
    control("/reset")
    assert [c.id for c in client.v1.payment_method_configurations.list().data] == ["pmc_sbxDefault"]


# -- Checkout Sessions ----------------------------------------------------------------------------


def test_a_session_with_the_configuration_shows_the_wallet_buttons(create_session, wallets_config):
    session = create_session(allowed_payment_method_types=None, payment_method_configuration=wallets_config.id)
    assert session.payment_method_configuration_details.id == wallets_config.id
    assert session.payment_method_types == ["card"]
    assert _wallet_buttons(session.url) == ["apple_pay", "google_pay"]


def test_a_session_without_one_follows_the_accounts_default_configuration(client, create_session):
    assert _wallet_buttons(create_session(allowed_payment_method_types=None).url) == []
    assert _wallet_buttons(create_session().url) == []  # allowed_payment_method_types: wallets ride on cards
    # Stripe's own default turns Apple Pay on: an account that keeps it shows Apple Pay without a configuration.
    client.v1.payment_method_configurations.update("pmc_sbxDefault", params={
        "apple_pay": {"display_preference": {"preference": "on"}}})
    dynamic = create_session(allowed_payment_method_types=None)
    assert dynamic.payment_method_configuration_details.id == "pmc_sbxDefault"
    assert _wallet_buttons(dynamic.url) == ["apple_pay"]
    assert _wallet_buttons(create_session(allowed_payment_method_types=["card", "sepa_debit"]).url) == ["apple_pay"]
    assert _wallet_buttons(create_session(allowed_payment_method_types=["sepa_debit"]).url) == []


def test_the_configurations_methods_are_offered_less_the_excluded_ones(client, create_session):
    config = client.v1.payment_method_configurations.create(params={
        **WALLETS_ON, "klarna": {"display_preference": {"preference": "on"}},
        "sepa_debit": {"display_preference": {"preference": "on"}}})
    session = create_session(allowed_payment_method_types=None, payment_method_configuration=config.id)
    assert session.payment_method_types == ["card", "klarna", "sepa_debit"]
    fewer = create_session(allowed_payment_method_types=None, payment_method_configuration=config.id,
                           excluded_payment_method_types=["klarna", "sepa_debit"])
    assert fewer.payment_method_types == ["card"] and _wallet_buttons(fewer.url) == ["apple_pay", "google_pay"]
    without_cards = create_session(allowed_payment_method_types=None, payment_method_configuration=config.id,
                                   excluded_payment_method_types=["card"])
    assert without_cards.payment_method_types == ["klarna", "sepa_debit"] and _wallet_buttons(without_cards.url) == []


def test_ineligible_methods_of_a_configuration_are_left_out_silently(client, create_session, session_params):
    config = client.v1.payment_method_configurations.create(params={
        "klarna": {"display_preference": {"preference": "on"}}, "sepa_debit": {"display_preference": {"preference": "on"}}})
    params = session_params(allowed_payment_method_types=None, payment_method_configuration=config.id)
    params["line_items"][0]["price_data"].update(currency="jpy", unit_amount=5000)
    params["line_items"][0].pop("tax_rates")
    assert client.v1.checkout.sessions.create(params=params).payment_method_types == ["card"]
    cheap = session_params(allowed_payment_method_types=None, payment_method_configuration=config.id)
    cheap["line_items"][0]["price_data"]["unit_amount"] = 60  # Klarna's minimum is EUR 1.00
    assert client.v1.checkout.sessions.create(params=cheap).payment_method_types == ["card", "sepa_debit"]


@pytest.mark.parametrize("overrides, param, code", [
    ({"payment_method_configuration": "pmc_nope"}, "payment_method_configuration", "resource_missing"),
    ({"payment_method_configuration": "PMC", "allowed_payment_method_types": ["card"]},
     "payment_method_configuration", "parameter_invalid"),
    ({"payment_method_configuration": "PMC", "managed_payments": {"enabled": True}},
     "payment_method_configuration", "parameter_invalid"),
])
def test_the_configuration_parameter_is_checked(client, create_session, wallets_config, overrides, param, code):
    overrides = {"allowed_payment_method_types": None, **overrides}
    if overrides["payment_method_configuration"] == "PMC":
        overrides["payment_method_configuration"] = wallets_config.id
    with pytest.raises(stripe.InvalidRequestError) as raised:
        create_session(**overrides)
    assert (raised.value.http_status, raised.value.param, raised.value.code) == (400, param, code)


def test_managed_payments_turned_off_goes_with_a_configuration(create_session, wallets_config):
    session = create_session(allowed_payment_method_types=None, payment_method_configuration=wallets_config.id,
                             managed_payments={"enabled": False})
    assert session.payment_method_configuration_details.id == wallets_config.id


def test_an_inactive_configuration_cannot_be_used(client, create_session, wallets_config):
    client.v1.payment_method_configurations.update(wallets_config.id, params={"active": False})
    with pytest.raises(stripe.InvalidRequestError) as raised:
        create_session(allowed_payment_method_types=None, payment_method_configuration=wallets_config.id)
    assert raised.value.param == "payment_method_configuration"


def test_google_pay_is_hidden_with_automatic_tax_and_no_shipping_address(client, create_session, wallets_config,
                                                                        session_params):
    params = session_params(allowed_payment_method_types=None, payment_method_configuration=wallets_config.id,
                            automatic_tax={"enabled": True})
    params["line_items"][0].pop("tax_rates")
    session = client.v1.checkout.sessions.create(params=params)
    assert _wallet_buttons(session.url) == ["apple_pay"]
    params["shipping_address_collection"] = {"allowed_countries": ["FR"]}
    assert _wallet_buttons(client.v1.checkout.sessions.create(params=params).url) == ["apple_pay", "google_pay"]


# -- paying with a wallet ----------------------------------------------------------------------------


def test_a_wallet_pays_with_the_card_it_holds(client, create_session, wallets_config, pay):
    session = create_session(allowed_payment_method_types=None, payment_method_configuration=wallets_config.id)
    assert pay(session.id, wallet="apple_pay").status_code == 200
    paid = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent.latest_charge"]})
    card = paid.payment_intent.latest_charge.payment_method_details.card
    assert paid.payment_status == "paid" and card.wallet.type == "apple_pay" and card.wallet.dynamic_last4 == "4242"


def test_a_wallet_holding_a_declined_card_is_declined(create_session, wallets_config, pay):
    session = create_session(allowed_payment_method_types=None, payment_method_configuration=wallets_config.id)
    declined = pay(session.id, wallet="google_pay", card="4000000000000002")
    assert declined.status_code == 402 and declined.json()["error"]["decline_code"] == "generic_decline"


def test_a_wallet_the_session_does_not_show_cannot_pay(create_session, pay):
    session = create_session()
    refused = pay(session.id, wallet="apple_pay")
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "wallet"


def test_the_wallet_button_of_the_hosted_page_pays(client, create_session, wallets_config):
    session = create_session(allowed_payment_method_types=None, payment_method_configuration=wallets_config.id)
    response = requests.post(session.url, data={"wallet": "google_pay", "terms": "accepted"}, allow_redirects=False,
                             timeout=10)
    assert response.status_code == 303 and session.id in response.headers["Location"]
    assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"
