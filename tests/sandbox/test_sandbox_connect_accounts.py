"""Connected accounts: created by the platform with controller properties, retrieved, updated; refused as Stripe
refuses them."""

from __future__ import annotations

import pytest
import stripe

from lms_stripe_plugin.sandbox.connect import ONBOARDING_FIELDS

CONTROLLER = {"stripe_dashboard": {"type": "full"}, "fees": {"payer": "account"}, "losses": {"payments": "stripe"},
              "requirement_collection": "stripe"}


def _create(client, **params):
    return client.v1.accounts.create(params={"country": "FR", "email": "school@example.com",
                                             "controller": CONTROLLER, **params})


def test_a_new_account_has_every_onboarding_field_past_due(client, connect_webhooks, webhooks):
    account = _create(client)
    assert account.id.startswith("acct_") and account.object == "account" and account.country == "FR"
    assert account.default_currency == "eur" and account.email == "school@example.com"
    assert account.controller.to_dict() == {**CONTROLLER, "is_controller": True, "type": "application"}
    assert (account.details_submitted, account.charges_enabled, account.payouts_enabled) == (False, False, False)
    requirements = account.requirements
    assert requirements.currently_due == requirements.past_due == requirements.eventually_due == list(ONBOARDING_FIELDS)
    assert requirements.disabled_reason == "requirements.past_due" and requirements.current_deadline is None
    assert account.capabilities.to_dict() == {"card_payments": "inactive", "transfers": "inactive"}
    assert account.tos_acceptance.date is None and account.external_accounts.data == []
    assert connect_webhooks.calls == [] and webhooks.calls == []  # Stripe sends no event for a created account


def test_the_controller_defaults_to_an_account_with_its_own_dashboard(client):
    account = client.v1.accounts.create(params={"country": "DE"})
    assert account.controller.stripe_dashboard.type == "full" and account.controller.fees.payer == "account"
    assert account.controller.losses.payments == "stripe" and account.controller.requirement_collection == "stripe"


def test_details_given_at_creation_are_not_asked_again(client):
    account = _create(client, business_type="company", company={"name": "École Alpha"},
                      business_profile={"mcc": "8299", "product_description": "Data science courses",
                                        "name": "Alpha"})
    assert account.requirements.currently_due == ["external_account", "tos_acceptance.date", "tos_acceptance.ip"]
    assert account.business_profile.name == "Alpha" and account.company.name == "École Alpha"
    assert account.settings.dashboard.display_name == "Alpha"


@pytest.mark.parametrize("params, param, code", [
    ({"colour": "blue"}, "colour", "parameter_unknown"),
    ({"type": "standard"}, "type", "parameter_unsupported"),
    ({"controller": {**CONTROLLER, "stripe_dashboard": {"type": "express"}}},
     "controller[stripe_dashboard][type]", "parameter_unsupported"),
    ({"controller": {**CONTROLLER, "requirement_collection": "application"}},
     "controller[requirement_collection]", "parameter_unsupported"),
    ({"controller": {**CONTROLLER, "losses": {"payments": "application"}}},
     "controller[losses][payments]", "parameter_invalid"),
    ({"controller": {**CONTROLLER, "fees": {"payer": "nobody"}}}, "controller[fees][payer]", None),
    ({"country": "ZZ"}, "country", "parameter_unsupported"),
    ({"country": "France"}, "country", "parameter_invalid"),
    ({"default_currency": "usd"}, "default_currency", "parameter_invalid"),
    ({"email": "not-an-email"}, "email", "parameter_invalid"),
    ({"business_profile": {"mcc": "82"}}, "business_profile[mcc]", "parameter_invalid"),
    ({"external_account": "btok_123"}, "external_account", "parameter_unsupported"),
    ({"tos_acceptance": {"date": 1}}, "tos_acceptance", "parameter_unsupported"),
])
def test_refused_accounts_are_not_created(client, sandbox, params, param, code):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        _create(client, **params)
    assert raised.value.param == param and raised.value.code == code
    assert sandbox.state.all("account") == []


def test_a_connected_account_cannot_create_accounts(client):
    school = _create(client)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.accounts.create(params={"country": "FR"}, options={"stripe_account": school.id})
    assert "Only Stripe Connect platforms" in raised.value.user_message


def test_the_platform_and_the_account_itself_see_it_another_account_does_not(client):
    school, other = _create(client), _create(client)
    assert client.v1.accounts.retrieve(school.id).id == school.id
    assert client.v1.accounts.retrieve(school.id, options={"stripe_account": school.id}).id == school.id
    with pytest.raises(stripe.PermissionError) as raised:
        client.v1.accounts.retrieve(school.id, options={"stripe_account": other.id})
    assert raised.value.http_status == 403 and raised.value.json_body["error"]["code"] == "account_invalid"
    assert [a.id for a in client.v1.accounts.list().data] == [other.id, school.id]


def test_an_unknown_account_is_a_403(client):
    with pytest.raises(stripe.PermissionError) as raised:
        client.v1.accounts.retrieve("acct_1NotARealOne00")
    assert "does not have access to account 'acct_1NotARealOne00'" in raised.value.user_message


def test_an_update_fires_account_updated_on_the_connect_endpoint(client, connect_webhooks, webhooks):
    school = _create(client)
    updated = client.v1.accounts.update(school.id, params={"business_profile": {"name": "École Alpha",
                                                                              "support_email": "help@alpha.example"},
                                                           "metadata": {"school": "alpha"}})
    assert updated.business_profile.name == "École Alpha" and updated.metadata.to_dict() == {"school": "alpha"}
    [event] = connect_webhooks.events
    assert event["type"] == "account.updated" and event["account"] == school.id
    assert event["data"]["object"]["business_profile"]["name"] == "École Alpha"
    assert event["data"]["previous_attributes"]["business_profile"] == {"name": None, "support_email": None}
    assert event["data"]["previous_attributes"]["metadata"] == {}
    assert webhooks.calls == []  # the platform's own endpoint hears nothing of its connected accounts


def test_onboarding_details_are_locked_once_a_link_exists(client):
    school = _create(client)
    client.v1.accounts.update(school.id, params={"company": {"name": "Before"}})
    client.v1.account_links.create(params={"account": school.id, "type": "account_onboarding",
                                           "refresh_url": "https://lms.example/r", "return_url": "https://lms.example/b"})
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.accounts.update(school.id, params={"company": {"name": "After"}})
    assert raised.value.param == "company"
    assert client.v1.accounts.retrieve(school.id).company.name == "Before"
    assert client.v1.accounts.update(school.id, params={"email": "new@alpha.example"}).email == "new@alpha.example"


def test_a_refused_update_changes_nothing(client, connect_webhooks):
    school = _create(client)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.accounts.update(school.id, params={"business_profile": {"name": "Kept?", "mcc": "x"}})
    assert client.v1.accounts.retrieve(school.id).business_profile.name is None
    assert connect_webhooks.calls == []


def test_each_account_has_its_own_default_payment_method_configuration(client):
    school = _create(client)
    mine = client.v1.payment_method_configurations.list(options={"stripe_account": school.id}).data
    platform = client.v1.payment_method_configurations.list().data
    assert [c.is_default for c in mine] == [True] and mine[0].id not in {c.id for c in platform}
