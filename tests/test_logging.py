"""What reaches the logs: the Stripe SDK stays quiet unless the host asks (its DEBUG and INFO lines carry
request bodies, learners' e-mail addresses among them), and the plugin's own lines carry no secret and no
e-mail address."""
import logging
import re
from pathlib import Path

import pytest
import stripe
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from lms_stripe_plugin import ConfigurationError, StripePayments
from lms_stripe_plugin.core.logs import get_logger

from .conftest import KEYS, as_user
from .minimal_host import MinimalHost
from .stripe_stubs import checkout_session, stripe_error, stub_create_session, stub_customers, stub_tax_rate

EMAIL = "lea@example.com"
SOURCE = Path(__file__).resolve().parent.parent / "lms_stripe_plugin"


@pytest.fixture(autouse=True)
def sdk_logger():
    """The SDK's logger is the process's: each test leaves it as it found it."""
    logger = logging.getLogger("stripe")
    level = logger.level
    yield logger
    logger.setLevel(level)


def _app(**config) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="x", SQLALCHEMY_DATABASE_URI="sqlite://", **config)
    StripePayments(app, db=SQLAlchemy(app), host=MinimalHost())
    return app


def _buy(client):
    page = client.get("/payments/courses/c1", headers=as_user("u1")).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post("/payments/checkout/c1", data={"csrf_token": token}, headers=as_user("u1"))


def _leaks(text: str) -> bool:
    return EMAIL in text or EMAIL.replace("@", "%40") in text


@pytest.fixture
def buyable(people, priced, configured, stripe_http):
    stub_tax_rate(stripe_http)
    stub_customers(stripe_http)
    return stripe_http


# -- the SDK's logger ----------------------------------------------------------------------------------------------

def test_the_sdk_logs_no_request_body_by_default(client, buyable, caplog, sdk_logger):
    sdk_logger.setLevel(logging.NOTSET)  # as in a fresh process, before the host's init_app
    _app()
    session = checkout_session(1)
    session["customer_details"] = {"email": EMAIL}
    stub_create_session(buyable, session)
    caplog.set_level(logging.DEBUG)
    assert _buy(client).status_code == 303
    # The address was sent to Stripe (with the learner's customer, created before the session).
    assert any(EMAIL.replace("@", "%40") in (call.request.body or "") for call in buyable.calls)
    assert not _leaks(caplog.text)
    assert not [r for r in caplog.records if r.name.startswith("stripe") and r.levelno < logging.WARNING]


def test_init_app_sets_the_sdk_logger_only(sdk_logger):
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    sdk_logger.setLevel(logging.NOTSET)
    _app()
    assert sdk_logger.level == logging.WARNING
    assert (root.level, root.handlers) == (level, handlers)


def test_a_level_the_host_set_itself_is_kept(sdk_logger):
    sdk_logger.setLevel(logging.INFO)
    _app()
    assert sdk_logger.level == logging.INFO


@pytest.mark.parametrize("value", ["debug", "DEBUG", logging.DEBUG])
def test_the_host_asks_for_the_sdks_lines(client, buyable, caplog, sdk_logger, value, app):
    app.config["LMS_STRIPE_SDK_LOG_LEVEL"] = value
    _app(LMS_STRIPE_SDK_LOG_LEVEL=value)
    assert sdk_logger.level == logging.DEBUG
    stub_create_session(buyable, checkout_session(1))
    caplog.set_level(logging.DEBUG)
    _buy(client)
    assert any(r.name == "stripe" and r.levelno == logging.DEBUG for r in caplog.records)


def test_an_unknown_level_is_named():
    with pytest.raises(ConfigurationError, match="LMS_STRIPE_SDK_LOG_LEVEL"):
        _app(LMS_STRIPE_SDK_LOG_LEVEL="loud")


def test_stripe_log_printing_to_the_console_is_warned_about(monkeypatch, caplog):
    monkeypatch.setattr(stripe, "log", "debug")
    with caplog.at_level(logging.WARNING):
        _app()
    assert "STRIPE_LOG" in caplog.text and "e-mail" in caplog.text


# -- the plugin's own lines ------------------------------------------------------------------------------------

def test_a_stripe_error_that_echoes_the_email_is_logged_without_it(client, buyable, caplog):
    stripe_error(buyable, "POST", "/v1/checkout/sessions", 400, "invalid_request_error",
                 f"Invalid email address: {EMAIL} (key {KEYS['secret_key']}, whsec_abcdefgh12345678)")
    caplog.set_level(logging.DEBUG)
    assert _buy(client).status_code == 502
    line = next(r.getMessage() for r in caplog.records if r.name == "lms_stripe_plugin.gateway.client")
    assert "Invalid email address: [email]" in line
    assert KEYS["secret_key"] not in line and "sk_test_…ijkl" in line
    assert "whsec_abcdefgh12345678" not in line and "whsec_…5678" in line


def test_tracebacks_are_redacted_too(caplog):
    log = get_logger("lms_stripe_plugin.tests")
    try:
        raise ValueError(f"no customer for {EMAIL} with {KEYS['secret_key']}")
    except ValueError:
        with caplog.at_level(logging.ERROR):
            log.exception("Follow-up for %s failed", EMAIL)
    assert "ValueError" in caplog.text and not _leaks(caplog.text) and KEYS["secret_key"] not in caplog.text


def test_every_plugin_logger_redacts():
    """Module loggers come from `core.logs.get_logger`, which adds the redacting filter."""
    offenders = [path.relative_to(SOURCE).as_posix() for path in SOURCE.rglob("*.py")
                 if path.relative_to(SOURCE).parts[0] not in ("sandbox", "demo")
                 and "logging.getLogger(__name__)" in path.read_text()]
    assert offenders == []
