"""Apple Pay and Google Pay: with wallets on, the Buy click's session names the plugin's Payment Method
Configuration (created once at Stripe, in its own call before the session's, then remembered); with them
off, the session lists its methods and no configuration is passed. Stripe stubbed with `responses`."""
import pytest
import responses
from sqlalchemy import select

from lms_stripe_plugin.accounts import wallets
from lms_stripe_plugin.core.models import PaymentMethodConfig, Purchase

from .conftest import STRIPE, form_body
from .stripe_stubs import stripe_error, stub_customers, stub_tax_rate
from .test_checkout import _buy, _save_settings, _serve_sessions, _token

CONFIGS = f"{STRIPE}/v1/payment_method_configurations"
SESSIONS = f"{STRIPE}/v1/checkout/sessions"


def _configuration(config_id="pmc_test_wallets") -> dict:
    entry = {"available": True, "display_preference": {"overridable": None, "preference": "on", "value": "on"}}
    return {"id": config_id, "object": "payment_method_configuration", "active": True, "application": None,
            "is_default": False, "livemode": False, "name": "LMS Checkout (Apple Pay, Google Pay)", "parent": None,
            "apple_pay": entry, "google_pay": entry, "card": entry}


@pytest.fixture
def token(client, people, priced, configured):
    return _token(client)


@pytest.fixture
def stripe_ok(stripe_http):
    stub_tax_rate(stripe_http)
    _serve_sessions(stripe_http)
    stripe_http.add(responses.POST, CONFIGS, json=_configuration())
    return stripe_http


def _calls(mock, url):
    return [call for call in mock.calls if call.request.url.split("?")[0] == url]


def _session_sent(mock) -> dict:
    return form_body(_calls(mock, SESSIONS)[-1].request)


def test_wallets_are_off_until_the_administrator_turns_them_on(client, db, token, stripe_ok):
    assert _buy(client, token).status_code == 303
    sent = _session_sent(stripe_ok)
    assert sent["allowed_payment_method_types[0]"] == "card" and "payment_method_configuration" not in sent
    assert _calls(stripe_ok, CONFIGS) == [] and db.session.scalar(select(PaymentMethodConfig)) is None


def test_with_wallets_on_the_configuration_is_created_once_then_named_by_every_session(client, db, token,
                                                                                        stripe_ok):
    _save_settings(db, wallets_enabled=True)
    assert _buy(client, token).status_code == 303
    [created] = _calls(stripe_ok, CONFIGS)
    assert created.request.headers["Idempotency-Key"] == "lms-payment-method-configuration-1-0"
    assert form_body(created.request) == {
        "name": "LMS Checkout (Apple Pay, Google Pay)",
        "card[display_preference][preference]": "on",
        "apple_pay[display_preference][preference]": "on", "google_pay[display_preference][preference]": "on",
        "klarna[display_preference][preference]": "on", "sepa_debit[display_preference][preference]": "on",
        "link[display_preference][preference]": "off"}
    sent = _session_sent(stripe_ok)
    assert sent["payment_method_configuration"] == "pmc_test_wallets"
    assert sent["managed_payments[enabled]"] == "false"
    # Neither Klarna nor SEPA is turned on in the settings: the session takes them off the configuration's.
    assert (sent["excluded_payment_method_types[0]"], sent["excluded_payment_method_types[1]"]) == (
        "klarna", "sepa_debit")
    assert not any(key.startswith("allowed_payment_method_types") for key in sent)
    row = db.session.scalar(select(PaymentMethodConfig))
    assert (row.stripe_configuration_id, row.livemode, row.wallets) == ("pmc_test_wallets", False, True)

    assert _buy(client, token, course="c1", user="emp").status_code == 303
    assert len(_calls(stripe_ok, CONFIGS)) == 1  # remembered: no second creation
    assert _session_sent(stripe_ok)["payment_method_configuration"] == "pmc_test_wallets"


def test_the_methods_the_purchase_may_use_are_not_excluded(client, db, token, stripe_ok):
    _save_settings(db, wallets_enabled=True, klarna_enabled=True, sepa_debit_enabled=True)
    assert _buy(client, token).status_code == 303
    sent = _session_sent(stripe_ok)
    assert sent["payment_method_configuration"] == "pmc_test_wallets"
    assert not any(key.startswith("excluded_payment_method_types") for key in sent)


def test_a_refused_creation_calls_no_session_and_remembers_nothing(client, db, token, stripe_http):
    _save_settings(db, wallets_enabled=True)
    stub_tax_rate(stripe_http)
    stripe_error(stripe_http, responses.POST, "/v1/payment_method_configurations", 400, "invalid_request_error",
                 "Invalid apple_pay", code="parameter_invalid")
    response = _buy(client, token)
    assert response.status_code == 502
    assert _calls(stripe_http, SESSIONS) == [] and db.session.scalar(select(PaymentMethodConfig)) is None


def test_the_configuration_is_remembered_even_when_the_session_fails(client, db, token, stripe_http):
    _save_settings(db, wallets_enabled=True)
    stub_tax_rate(stripe_http)
    stub_customers(stripe_http)
    stripe_http.add(responses.POST, CONFIGS, json=_configuration())
    stripe_error(stripe_http, responses.POST, "/v1/checkout/sessions", 400, "invalid_request_error", "No.")
    assert _buy(client, token).status_code == 502
    assert db.session.scalar(select(PaymentMethodConfig.stripe_configuration_id)) == "pmc_test_wallets"


def test_a_configuration_stripe_no_longer_knows_is_created_again(client, db, token, stripe_http):
    _save_settings(db, wallets_enabled=True)
    wallets.remember(db.session, wallets.ConfigurationWanted(), "pmc_other_account", livemode=False)
    db.session.commit()
    stub_tax_rate(stripe_http)
    stub_customers(stripe_http)
    stripe_error(stripe_http, responses.POST, "/v1/checkout/sessions", 400, "invalid_request_error",
                 "No such payment_method_configuration: 'pmc_other_account'", code="resource_missing")
    assert _buy(client, token).status_code == 404
    assert db.session.scalar(select(PaymentMethodConfig)) is None
    assert db.session.scalar(select(Purchase.status)) == "open"  # the next click goes on with it

    stripe_http.remove(responses.POST, SESSIONS)
    _serve_sessions(stripe_http)
    stripe_http.add(responses.POST, CONFIGS, json=_configuration("pmc_new"))
    assert _buy(client, token).status_code == 303
    assert _session_sent(stripe_http)["payment_method_configuration"] == "pmc_new"


@pytest.mark.parametrize("host_locale, sent", [("fr", "fr"), ("en", "en"), ("fr_CA", "fr"), ("de", "en")])
def test_the_session_is_in_the_learners_language(client, db, host, token, stripe_ok, host_locale, sent):
    host.locale = host_locale
    assert _buy(client, token).status_code == 303
    assert _session_sent(stripe_ok)["locale"] == sent


def test_method_params_list_or_configure():
    assert wallets.method_params(["card"], None) == {"allowed_payment_method_types": ["card"]}
    assert wallets.method_params(["card", "sepa_debit"], "pmc_1") == {
        "payment_method_configuration": "pmc_1", "managed_payments": {"enabled": False},
        "excluded_payment_method_types": ["klarna"]}
    moved = wallets.with_configuration({"mode": "payment", "allowed_payment_method_types": ["card", "klarna"]},
                                       "pmc_1")
    assert moved == {"mode": "payment", "payment_method_configuration": "pmc_1",
                     "managed_payments": {"enabled": False}, "excluded_payment_method_types": ["sepa_debit"]}


def test_a_stub_configuration_is_shaped_like_stripes():
    # The stub above keeps to the SDK's object: every field it sets is one of PaymentMethodConfiguration's.
    import stripe

    assert set(_configuration()) <= set(stripe.PaymentMethodConfiguration.__annotations__) | {"object", "id"}
