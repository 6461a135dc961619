"""A host that protects its own forms with Flask-WTF's ``CSRFProtect``: Stripe's webhook still gets through,
and the plugin's other POST views are still refused without a token."""
import pytest
from flask import Flask
from flask_wtf.csrf import CSRFProtect

from lms_stripe_plugin import StripePayments
from lms_stripe_plugin.core.models import Event
from lms_stripe_plugin.testing import post_webhook

from .conftest import as_user
from .minimal_host import MinimalHost, db as host_db

SECRET = "whsec_hostcsrf123456"
EVENT = {"id": "evt_host_csrf", "object": "event", "type": "customer.created", "livemode": False,
         "data": {"object": {"id": "cus_1", "object": "customer"}}}


def _host_app(database_url: str, csrf_first: bool) -> Flask:
    app = Flask("csrf_host")
    app.config.update(SECRET_KEY="host-secret", SERVER_NAME="lms.test", SQLALCHEMY_DATABASE_URI=database_url,
                      LMS_STRIPE_WEBHOOK_SECRETS=SECRET, LMS_STRIPE_MAX_NETWORK_RETRIES=0)
    host_db.init_app(app)
    if csrf_first:
        CSRFProtect(app)
    StripePayments(app, db=host_db, host=MinimalHost())
    if not csrf_first:
        CSRFProtect().init_app(app)

    @app.post("/host-form")
    def host_form():
        return "saved"

    return app


@pytest.fixture(params=[True, False], ids=["csrf-before-plugin", "csrf-after-plugin"])
def csrf_app(request, app, people):  # ``app``: a clean database; ``people``: an administrator
    host_app = _host_app(app.config["SQLALCHEMY_DATABASE_URI"], request.param)
    with host_app.app_context():
        yield host_app
        host_db.session.remove()


def test_a_signed_webhook_gets_through_the_hosts_csrf_protection(csrf_app):
    response = post_webhook(csrf_app.test_client(), EVENT, SECRET)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert host_db.session.get(Event, "evt_host_csrf") is not None


def test_the_plugins_forms_and_the_hosts_own_stay_protected(csrf_app):
    client = csrf_app.test_client()
    response = client.post("/payments/admin/settings", data={"default_currency": "USD", "default_vat_rate": "5"},
                           headers=as_user("adm"))
    assert response.status_code == 400
    assert client.post("/host-form").status_code == 400


def test_only_the_webhook_is_exempt(csrf_app):
    csrf = csrf_app.extensions["csrf"]
    post_webhook(csrf_app.test_client(), EVENT, SECRET)
    exempt = {name for name, view in csrf_app.view_functions.items()
              if f"{view.__module__}.{view.__name__}" in csrf._exempt_views}
    assert exempt == {"lms_stripe.webhook"}
