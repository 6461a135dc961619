import pytest
from blinker import signal
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from lms_stripe_plugin import ConfigurationError, HostContractError, StripePayments
from lms_stripe_plugin.host import HOST_SIGNALS, REQUIRED_METHODS

from .minimal_host import MinimalHost


def _app(**config):
    app = Flask(__name__)
    app.config.update(SECRET_KEY="x", SQLALCHEMY_DATABASE_URI="sqlite://", **config)
    return app


def test_registers_state_blueprint_and_cli():
    app = _app()
    db = SQLAlchemy(app)
    StripePayments(app, db=db, host=MinimalHost())
    state = app.extensions["lms_stripe"]
    assert state.db is db and isinstance(state.host, MinimalHost)
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert {"/payments/webhook", "/payments/admin/settings", "/payments/invoices"} <= rules
    assert "lms-stripe" in app.cli.commands


def test_url_prefix_is_configurable():
    app = _app(LMS_STRIPE_URL_PREFIX="/shop")
    StripePayments(app, db=SQLAlchemy(app), host=MinimalHost())
    assert "/shop/webhook" in {rule.rule for rule in app.url_map.iter_rules()}


def test_init_app_twice_says_how_to_fix_it():
    app = _app()
    ext = StripePayments(app, db=SQLAlchemy(app), host=MinimalHost())
    with pytest.raises(RuntimeError, match="call init_app once per app"):
        ext.init_app(app)


def test_one_extension_serves_two_apps_with_their_own_stripe_configuration():
    ext = StripePayments(host=MinimalHost())
    first, second = _app(LMS_STRIPE_API_BASE="http://127.0.0.1:1"), _app()
    ext.init_app(first, db=SQLAlchemy(first))
    ext.init_app(second, db=SQLAlchemy(second))
    one, two = first.extensions["lms_stripe"].gateway, second.extensions["lms_stripe"].gateway
    assert one is not two and one._client is not two._client
    assert one._client._requestor.base_addresses.get("api") == "http://127.0.0.1:1"
    assert two._client._requestor.base_addresses.get("api") in (None, "https://api.stripe.com")


@pytest.mark.parametrize("missing", ["enroll", "can_purchase", "get_locale", "user_audience"])
def test_a_host_missing_a_method_fails_at_init_app_naming_it(missing):
    class Incomplete(MinimalHost):
        pass

    setattr(Incomplete, missing, None)
    app = _app()
    with pytest.raises(HostContractError, match=missing):
        StripePayments(app, db=SQLAlchemy(app), host=Incomplete())
    assert "lms_stripe" not in app.extensions


def test_a_host_object_with_nothing_names_every_method():
    app = _app()
    with pytest.raises(HostContractError) as err:
        StripePayments(app, db=SQLAlchemy(app), host=object())
    for name in REQUIRED_METHODS:
        assert name in str(err.value)


def test_db_and_host_are_required():
    app = _app()
    with pytest.raises(ConfigurationError, match="db="):
        StripePayments(app, host=MinimalHost())
    with pytest.raises(HostContractError, match="host="):
        StripePayments(_app(), db=SQLAlchemy())


def test_every_documented_signal_has_a_receiver():
    for name in HOST_SIGNALS:
        assert signal(name).receivers, name


def test_signals_from_an_app_without_the_plugin_get_no_answer(app):
    other = _app()
    with other.test_request_context():
        answers = [value for _r, value in signal("lms.catalog.rendering").send(other, courses=[], user=None)]
    assert answers == [None]


def test_config_defaults_have_the_common_prefix(app):
    from lms_stripe_plugin.config import DEFAULTS

    assert all(key.startswith("LMS_STRIPE_") for key in DEFAULTS)
    assert app.config["LMS_STRIPE_URL_PREFIX"] == "/payments"


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "europe paris", 5])
def test_a_time_zone_that_is_none_fails_at_init_app(zone):
    app = _app(LMS_STRIPE_TIMEZONE=zone)
    with pytest.raises(ConfigurationError, match="LMS_STRIPE_TIMEZONE"):
        StripePayments(app, db=SQLAlchemy(app), host=MinimalHost())
