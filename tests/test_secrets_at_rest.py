"""Stripe secrets at rest: what happens when the encryption key changes, and how a host rotates it.

The secrets are encrypted with the first of LMS_STRIPE_ENCRYPTION_KEYS (or LMS_STRIPE_ENCRYPTION_KEY, or a
key derived from SECRET_KEY); every configured key, and the keys derived from SECRET_KEY and Flask's
SECRET_KEY_FALLBACKS, decrypt. A secret no key decrypts never breaks a page that does not need it.
"""
import re

import pytest
from blinker import signal
from cryptography.fernet import Fernet
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import select

from lms_stripe_plugin import ConfigurationError, StripePayments
from lms_stripe_plugin.accounts import settings as payment_settings
from lms_stripe_plugin.core import crypto
from lms_stripe_plugin.billing import payment_links
from lms_stripe_plugin.core.models import PaymentLink, Purchase, Settings
from lms_stripe_plugin.testing import post_webhook

from .conftest import KEYS, as_user
from .link_support import make_link
from .minimal_host import MinimalHost

URL = "/payments/admin/settings"
NEW_SECRET = "sk_test_51Newsecretkey99"
NEW_WHSEC = "whsec_newsecret987654"
EVENT = {"id": "evt_rotation", "object": "event", "type": "customer.created", "livemode": False,
         "data": {"object": {"id": "cus_1", "object": "customer"}}}


def _answer(app, name, **kwargs):
    answers = [value for receiver, value in signal(name).send(app, **kwargs)
               if receiver.__module__.startswith("lms_stripe_plugin")]
    return answers[0]


def _reload(db):
    payment_settings.forget_cached()
    db.session.expire_all()
    return payment_settings.load(db.session)


def _tokens(db):
    db.session.expire_all()
    row = db.session.get(Settings, 1)
    return row.secret_key_encrypted, row.webhook_secrets_encrypted


def _csrf(client):
    page = client.get(URL, headers=as_user("adm")).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


@pytest.fixture
def rotated(app, db, people, priced, configured):
    """Payments configured from the page, then the host changed its SECRET_KEY."""
    app.config["SECRET_KEY"] = "a-brand-new-secret-key"
    payment_settings.forget_cached()
    crypto.forget_decrypted()
    return app


# -- after a SECRET_KEY rotation ---------------------------------------------------------------------------------

def test_catalog_and_course_page_answer_after_a_rotation(rotated, db, people, priced):
    with rotated.test_request_context(headers=as_user("u1")):
        catalog = _answer(rotated, "lms.catalog.rendering", courses=list(priced.values()), user=people["u1"])
        detail = _answer(rotated, "lms.course.detail_rendering", course=priced["c1"], user=people["u1"])
    assert "49.90" in catalog.labels["c1"]
    assert "not available" in detail


def test_keys_in_the_config_win_without_decrypting_the_stored_ones(rotated, db, people, priced, monkeypatch):
    rotated.config.update(LMS_STRIPE_SECRET_KEY=NEW_SECRET, LMS_STRIPE_WEBHOOK_SECRETS=NEW_WHSEC)

    def no_decrypt(token):
        raise AssertionError("a secret the config overrides was decrypted")

    monkeypatch.setattr(crypto, "decrypt", no_decrypt)
    settings = _reload(db)
    assert settings.secret_key == NEW_SECRET and settings.webhook_secrets == [NEW_WHSEC] and settings.active
    with rotated.test_request_context(headers=as_user("u1")):
        detail = _answer(rotated, "lms.course.detail_rendering", course=priced["c1"], user=people["u1"])
    assert "Buy" in detail


def test_the_settings_page_says_which_secret_cannot_be_read_and_takes_new_ones(rotated, client, db):
    page = client.get(URL, headers=as_user("adm"))
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Stored, but it cannot be read: enter it again." in text
    assert "Stored, but they cannot be read: enter them again" in text
    response = client.post(URL, headers=as_user("adm"), data={
        "csrf_token": _csrf(client), "enabled": "on", "publishable_key": KEYS["publishable_key"],
        "secret_key": NEW_SECRET, "webhook_secrets": NEW_WHSEC, "default_currency": "EUR", "default_vat_rate": "20"})
    assert response.status_code == 302, response.get_data(as_text=True)
    settings = _reload(db)
    assert settings.secret_key == NEW_SECRET and settings.webhook_secrets == [NEW_WHSEC] and settings.active
    assert "cannot be read" not in client.get(URL, headers=as_user("adm")).get_data(as_text=True)


def test_the_page_takes_one_new_secret_and_still_flags_the_other(rotated, client, db):
    response = client.post(URL, headers=as_user("adm"), data={
        "csrf_token": _csrf(client), "secret_key": NEW_SECRET, "default_currency": "EUR", "default_vat_rate": "20"})
    assert response.status_code == 302
    assert _reload(db).secret_key == NEW_SECRET
    text = client.get(URL, headers=as_user("adm")).get_data(as_text=True)
    assert "it cannot be read" not in text and "they cannot be read: enter them again" in text


def test_saving_with_payments_on_says_they_are_off_and_why(rotated, client, db):
    response = client.post(URL, headers=as_user("adm"), follow_redirects=True, data={
        "csrf_token": _csrf(client), "enabled": "on", "publishable_key": KEYS["publishable_key"],
        "default_currency": "USD", "default_vat_rate": "20"})
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and _reload(db).default_currency == "USD"
    assert ("Payment settings saved, but payments are off: the stored secret key cannot be read (enter it again); "
            "the stored webhook signing secrets cannot be read (enter them again).") in text


def test_turning_payments_on_with_a_secret_that_cannot_be_read_says_so(rotated, client, db):
    payment_settings.save(db.session, {"enabled": False}, actor_id="adm")
    db.session.commit()
    response = client.post(URL, headers=as_user("adm"), data={
        "csrf_token": _csrf(client), "enabled": "on", "publishable_key": KEYS["publishable_key"],
        "default_currency": "EUR", "default_vat_rate": "20"})
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "cannot be read" in re.search(r'id="secret_key-error" role="alert">([^<]*)<', text).group(1)
    assert "cannot be read" in re.search(r'id="webhook_secrets-error" role="alert">([^<]*)<', text).group(1)


def test_a_purchase_is_refused_with_a_message_not_a_500(rotated, client, db):
    page = client.get("/payments/courses/c1", headers=as_user("u1"))
    assert page.status_code == 200 and "not available" in page.get_data(as_text=True)
    response = client.post("/payments/checkout/c1", data={"csrf_token": _csrf(client)}, headers=as_user("u1"))
    assert response.status_code == 409 and "not available" in response.get_data(as_text=True)
    assert db.session.scalars(select(Purchase)).all() == []


@pytest.mark.parametrize("url", ["/payments/admin/invoices", "/payments/admin/invoices.csv", "/payments/admin/audit",
                                 "/payments/admin/free-enrollments", "/payments/invoices"])
def test_pages_that_need_no_secret_answer(rotated, client, url):
    assert client.get(url, headers=as_user("adm")).status_code == 200


def test_code_that_needs_the_secret_gets_a_message_that_says_what_to_do(rotated, db):
    settings = _reload(db)
    assert not settings.active and settings.unreadable == {"secret_key", "webhook_secrets"}
    with pytest.raises(ConfigurationError, match="cannot be read.*payment settings page"):
        settings.secret_key


def test_a_webhook_is_answered_503_until_the_secret_is_entered_again(rotated, client, db):
    response = post_webhook(client, EVENT, KEYS["webhook_secrets"][0])
    assert response.status_code == 503 and "cannot be read" in response.get_json()["error"]["message"]


def test_the_settings_repr_holds_no_secret(app, db, configured):
    settings = _reload(db)
    assert settings.secret_key == KEYS["secret_key"]
    assert KEYS["secret_key"] not in repr(settings) and KEYS["webhook_secrets"][0] not in repr(settings)


# -- rotating the encryption key ---------------------------------------------------------------------------------

def _save(db, data):
    payment_settings.save(db.session, data, actor_id="adm")
    db.session.commit()
    crypto.forget_decrypted()


def test_a_list_of_keys_rotates_without_entering_anything_again(app, db):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    app.config["LMS_STRIPE_ENCRYPTION_KEYS"] = [old]
    _save(db, {"enabled": True, **KEYS})
    app.config["LMS_STRIPE_ENCRYPTION_KEYS"] = [new, old]
    assert _reload(db).secret_key == KEYS["secret_key"]
    before = _tokens(db)
    _save(db, {"default_currency": "USD"})  # any save re-encrypts with the first key
    after = _tokens(db)
    assert all(a != b for a, b in zip(after, before))
    assert Fernet(new.encode()).decrypt(after[0].encode()).decode() == KEYS["secret_key"]
    app.config["LMS_STRIPE_ENCRYPTION_KEYS"] = [new]
    settings = _reload(db)
    assert settings.secret_key == KEYS["secret_key"] and settings.webhook_secrets == KEYS["webhook_secrets"]


def test_a_save_leaves_secrets_already_under_the_first_key_alone(app, db):
    _save(db, {"enabled": True, **KEYS})
    before = _tokens(db)
    _save(db, {"default_currency": "USD"})
    assert _tokens(db) == before


def test_the_keys_may_come_as_one_string(app, db):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    app.config["LMS_STRIPE_ENCRYPTION_KEYS"] = old
    _save(db, {"enabled": True, **KEYS})
    assert Fernet(old.encode()).decrypt(_tokens(db)[0].encode()).decode() == KEYS["secret_key"]
    app.config["LMS_STRIPE_ENCRYPTION_KEYS"] = f"{new}, {old}"
    assert _reload(db).secret_key == KEYS["secret_key"]


def test_secret_key_fallbacks_decrypt_after_a_secret_key_rotation(app, db):
    _save(db, {"enabled": True, **KEYS})
    app.config.update(SECRET_KEY="the-new-secret-key", SECRET_KEY_FALLBACKS=["test-secret"])
    assert _reload(db).secret_key == KEYS["secret_key"]
    _save(db, {"default_currency": "USD"})
    app.config["SECRET_KEY_FALLBACKS"] = []
    assert _reload(db).secret_key == KEYS["secret_key"]


def test_moving_from_secret_key_to_own_keys_needs_nothing_entered_again(app, db):
    single = Fernet.generate_key().decode()
    _save(db, {"enabled": True, **KEYS})  # under the key derived from SECRET_KEY
    app.config["LMS_STRIPE_ENCRYPTION_KEY"] = single
    assert _reload(db).secret_key == KEYS["secret_key"]
    _save(db, {"default_currency": "USD"})
    assert Fernet(single.encode()).decrypt(_tokens(db)[0].encode()).decode() == KEYS["secret_key"]
    newer = Fernet.generate_key().decode()
    app.config["LMS_STRIPE_ENCRYPTION_KEYS"] = [newer]  # the single key still decrypts, after the list
    assert _reload(db).secret_key == KEYS["secret_key"]


@pytest.mark.parametrize("name, value", [("LMS_STRIPE_ENCRYPTION_KEYS", ["not-a-fernet-key"]),
                                         ("LMS_STRIPE_ENCRYPTION_KEY", "short")])
def test_a_malformed_key_is_named(app, db, name, value):
    app.config[name] = value
    with app.test_request_context(), pytest.raises(ConfigurationError, match=name):
        crypto.encrypt("x")


def test_cli_re_encrypts_the_stored_secrets_in_place(app, db):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    app.config["LMS_STRIPE_ENCRYPTION_KEYS"] = [old]
    _save(db, {"enabled": True, **KEYS})
    link_id, token = make_link(db)
    app.config["LMS_STRIPE_ENCRYPTION_KEYS"] = [new, old]
    result = app.test_cli_runner().invoke(args=["lms-stripe", "secrets", "rotate"])
    assert result.exit_code == 0, result.output
    assert "secret_key: re-encrypted" in result.output and "webhook_secrets: re-encrypted" in result.output
    assert f"payment link {link_id}: re-encrypted" in result.output and token not in result.output
    app.config["LMS_STRIPE_ENCRYPTION_KEYS"] = [new]
    assert _reload(db).webhook_secrets == KEYS["webhook_secrets"]
    assert payment_links.token_of(db.session.get(PaymentLink, link_id)) == token
    again = app.test_cli_runner().invoke(args=["lms-stripe", "secrets", "rotate"])
    assert again.exit_code == 0 and "secret_key: already under the first key" in again.output


def test_a_links_address_that_no_key_decrypts_is_said_on_its_page_not_a_500(app, client, db, people, configured):
    link_id, token = make_link(db)
    app.config["SECRET_KEY"] = "another-secret-key"
    crypto.forget_decrypted()
    page = client.get(f"/payments/admin/links/{link_id}", headers=as_user("adm"))
    assert page.status_code == 200 and "cannot be decrypted" in page.get_data(as_text=True)
    assert token not in page.get_data(as_text=True)
    assert client.get(f"/payments/link/{token}").status_code == 200  # found by its hash: it still takes payments


def test_cli_says_which_secret_no_key_decrypts(app, db):
    _save(db, {"enabled": True, **KEYS})
    app.config["SECRET_KEY"] = "another-secret-key"
    result = app.test_cli_runner().invoke(args=["lms-stripe", "secrets", "rotate"])
    assert result.exit_code == 1
    assert "secret_key: cannot be read" in result.output and KEYS["secret_key"] not in result.output


def test_a_malformed_key_fails_at_init_app_without_showing_it():
    app = Flask(__name__)
    app.config.update(SECRET_KEY="x", SQLALCHEMY_DATABASE_URI="sqlite://",
                      LMS_STRIPE_ENCRYPTION_KEYS=[Fernet.generate_key().decode(), "my-typo-key"])
    with pytest.raises(ConfigurationError, match="LMS_STRIPE_ENCRYPTION_KEYS: key 2 is not a Fernet key") as err:
        StripePayments(app, db=SQLAlchemy(app), host=MinimalHost())
    assert "my-typo-key" not in str(err.value) and "lms_stripe" not in app.extensions
