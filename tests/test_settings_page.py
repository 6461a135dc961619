import re

import pytest
from sqlalchemy import select

from lms_stripe_plugin.accounts import settings as payment_settings
from lms_stripe_plugin.core.models import AuditEntry, Settings

from .conftest import KEYS, as_user

URL = "/payments/admin/settings"


def _csrf(client, user="adm"):
    page = client.get(URL, headers=as_user(user)).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _post(client, token, **fields):
    data = {"csrf_token": token, "default_currency": "EUR", "default_vat_rate": "20", **fields}
    return client.post(URL, data=data, headers=as_user("adm"))


@pytest.fixture
def token(client, people):
    return _csrf(client)


def test_only_administrators_reach_the_page(client, people):
    assert client.get(URL).status_code == 401
    assert client.get(URL, headers=as_user("u1")).status_code == 403
    assert client.get(URL, headers=as_user("mgr")).status_code == 403
    assert client.get(URL, headers=as_user("adm")).status_code == 200


def test_post_without_csrf_token_is_refused_and_nothing_saved(client, people, db):
    response = client.post(URL, data={"default_currency": "USD", "default_vat_rate": "5"}, headers=as_user("adm"))
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)
    assert db.session.get(Settings, 1) is None


def test_saving_valid_settings_encrypts_secrets_and_logs_the_change(client, token, db):
    response = _post(client, token, enabled="on", publishable_key=KEYS["publishable_key"],
                     secret_key=KEYS["secret_key"], webhook_secrets="whsec_first123456\nwhsec_second12345",
                     vouchers_enabled="on", klarna_enabled="on", klarna_minimum="100", terms_url="https://school.test/cgv",
                     default_currency="usd", default_vat_rate="5.5")
    assert response.status_code == 302
    row = db.session.get(Settings, 1)
    assert row.enabled and row.default_currency == "USD" and row.default_vat_rate == 550
    assert row.klarna_minimum == 10000 and row.terms_url == "https://school.test/cgv"
    assert KEYS["secret_key"] not in row.secret_key_encrypted and "whsec_" not in row.webhook_secrets_encrypted
    payment_settings.forget_cached()
    loaded = payment_settings.load(db.session)
    assert loaded.secret_key == KEYS["secret_key"] and loaded.webhook_secrets == ["whsec_first123456", "whsec_second12345"]
    assert loaded.active
    audit = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "settings_changed")).all()
    assert audit and audit[-1].actor_id == "adm" and "secret_key" in audit[-1].details


def test_secrets_are_shown_masked_never_rendered_back(client, token, db):
    _post(client, token, publishable_key=KEYS["publishable_key"], secret_key=KEYS["secret_key"],
          webhook_secrets="whsec_testsecret123456")
    page = client.get(URL, headers=as_user("adm")).get_data(as_text=True)
    assert KEYS["secret_key"] not in page and "whsec_testsecret123456" not in page
    assert "sk_test_…ijkl" in page and "whsec_…3456" in page


def test_blank_secrets_keep_the_stored_ones(client, token, db):
    _post(client, token, publishable_key=KEYS["publishable_key"], secret_key=KEYS["secret_key"],
          webhook_secrets="whsec_testsecret123456")
    _post(client, token, publishable_key=KEYS["publishable_key"], secret_key="", webhook_secrets="  ", enabled="on")
    payment_settings.forget_cached()
    loaded = payment_settings.load(db.session)
    assert loaded.secret_key == KEYS["secret_key"] and loaded.enabled


@pytest.mark.parametrize("fields, field, message", [
    ({"publishable_key": "sk_test_51Abcdefghijkl"}, "publishable_key", "pk_test_"),
    ({"publishable_key": "pk_51Abcdefghijkl"}, "publishable_key", "pk_test_"),
    ({"secret_key": "pk_test_51Abcdefghijkl"}, "secret_key", "sk_test_"),
    ({"secret_key": "sk_test_x"}, "secret_key", "sk_test_"),
    ({"webhook_secrets": "secret"}, "webhook_secrets", "whsec_"),
    ({"webhook_secrets": "\n".join(f"whsec_abcdefgh{i}" for i in range(6))}, "webhook_secrets", "At most 5"),
    ({"default_currency": "EURO"}, "default_currency", "three-letter"),
    ({"default_currency": ""}, "default_currency", "three-letter"),
    ({"default_vat_rate": "abc"}, "default_vat_rate", "between 0 and 100"),
    ({"default_vat_rate": "120"}, "default_vat_rate", "between 0 and 100"),
    ({"klarna_minimum": "beaucoup"}, "klarna_minimum", "49.90"),
    ({"klarna_minimum": "0.01"}, "klarna_minimum", "minimum"),
    ({"terms_url": "javascript:alert(1)"}, "terms_url", "https://"),
    ({"terms_url": "x" * 3000}, "terms_url", "At most"),
    ({"enabled": "maybe"}, "enabled", "Tick"),
    ({"enabled": "on"}, "enabled", "before enabling"),
    ({"publishable_key": "pk_live_51Abcdefghijkl", "secret_key": "sk_test_51Abcdefghijkl"}, "secret_key", "both be test"),
    # The seller's identity on invoices: SIREN/SIRET check digit (Luhn), French VAT number key and SIREN.
    ({"seller_legal_name": "X", "seller_siret": "732 829 320 00075"}, "seller_siret", "does not check out"),
    ({"seller_legal_name": "X", "seller_siret": "732829321"}, "seller_siret", "does not check out"),
    ({"seller_legal_name": "X", "seller_siret": "7328293200007"}, "seller_siret", "14 digits"),
    ({"seller_legal_name": "X", "seller_siret": "732829320OOO74"}, "seller_siret", "14 digits"),
    ({"seller_legal_name": "X", "seller_siret": "７３２８２９３２０"}, "seller_siret", "9 digits"),
    ({"seller_legal_name": "X", "seller_vat_number": "FR45732829320"}, "seller_vat_number", "does not check out"),
    ({"seller_legal_name": "X", "seller_vat_number": "FR44732829321"}, "seller_vat_number", "does not check out"),
    ({"seller_legal_name": "X", "seller_vat_number": "DE123456789"}, "seller_vat_number", "French VAT number"),
    ({"seller_legal_name": "X", "seller_vat_number": "FR4473282932"}, "seller_vat_number", "French VAT number"),
    ({"seller_legal_name": "X", "seller_siret": "404833048", "seller_vat_number": "FR44732829320"},
     "seller_vat_number", "SIREN 732829320"),
    ({"seller_siret": "732829320"}, "seller_legal_name", "Enter the legal name"),
    ({"seller_legal_name": "x" * 141}, "seller_legal_name", "At most 140"),
    ({"seller_legal_name": "X", "seller_legal_form": "x" * 141}, "seller_legal_form", "At most 140"),
    ({"seller_legal_name": "X", "seller_address": "1\n2\n3\n4\n5"}, "seller_address", "At most 4 lines"),
    ({"seller_legal_name": "X", "seller_address": "1 rue\x1b[31m"}, "seller_address", "control characters"),
    ({"seller_legal_name": "X", "late_payment_text": "x" * 1001}, "late_payment_text", "At most 1000"),
    ({"business_buyers": "perhaps"}, "business_buyers", "Tick"),
])
def test_bad_input_comes_back_per_field_and_nothing_is_saved(client, token, db, fields, field, message):
    response = _post(client, token, **fields)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    error = re.search(rf'id="{field}-error">([^<]*)<', page)
    assert error and message in error.group(1).replace("&#39;", "'")
    assert db.session.get(Settings, 1) is None


def test_mixing_a_live_secret_with_a_stored_test_key_is_refused(client, token, db):
    _post(client, token, publishable_key=KEYS["publishable_key"])
    response = _post(client, token, secret_key="sk_live_51Abcdefghijkl")
    assert response.status_code == 400 and "both be test" in response.get_data(as_text=True)


def test_config_values_take_precedence_and_the_page_says_so(app, client, token, db):
    app.config["LMS_STRIPE_DEFAULT_CURRENCY"] = "chf"
    app.config["LMS_STRIPE_SECRET_KEY"] = "sk_test_fromconfig1234"
    page = client.get(URL, headers=as_user("adm")).get_data(as_text=True)
    assert page.count("takes precedence") == 2
    assert "sk_test_fromconfig1234" not in page
    _post(client, token, default_currency="USD", secret_key="sk_test_51Abcdefghijkl")
    payment_settings.forget_cached()
    loaded = payment_settings.load(db.session)
    assert loaded.default_currency == "CHF" and loaded.secret_key == "sk_test_fromconfig1234"
    assert {"default_currency", "secret_key"} <= loaded.overridden


def test_secrets_are_never_logged(client, token, caplog):
    caplog.set_level("DEBUG")
    _post(client, token, secret_key=KEYS["secret_key"], publishable_key=KEYS["publishable_key"],
          webhook_secrets="whsec_testsecret123456")
    assert KEYS["secret_key"] not in caplog.text and "whsec_testsecret123456" not in caplog.text


def test_security_headers_on_plugin_pages(client, people):
    response = client.get(URL, headers=as_user("adm"))
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_replaced_secrets_leave_the_decryption_cache(app, db):
    from lms_stripe_plugin.core import crypto

    with app.test_request_context():
        payment_settings.save(db.session, dict(KEYS), actor_id="adm")
        db.session.commit()
        assert payment_settings.load(db.session).secret_key == KEYS["secret_key"]
        assert crypto._decrypt.cache_info().currsize > 0
        payment_settings.save(db.session, {"secret_key": "sk_test_51Replacement"}, actor_id="adm")
        db.session.commit()
        assert crypto._decrypt.cache_info().currsize == 0
        assert payment_settings.load(db.session).secret_key == "sk_test_51Replacement"


# -- settings that cannot mislead ------------------------------------------------------------------------------

def _field_errors(response) -> dict[str, str]:
    page = response.get_data(as_text=True).replace("&#39;", "'")
    return dict(re.findall(r'id="(\w+)-error">([^<]*)<', page))


def test_every_error_shows_at_once(client, token, db):
    response = _post(client, token, publishable_key="pk_live_51Abcdefghijkl", secret_key="sk_test_51Abcdefghijkl",
                     webhook_secrets="secret", klarna_minimum="beaucoup", default_currency="EURO",
                     terms_url="javascript:alert(1)")
    assert response.status_code == 400
    errors = _field_errors(response)
    assert "three-letter" in errors["default_currency"] and "https://" in errors["terms_url"]
    assert "whsec_" in errors["webhook_secrets"] and "49.90" in errors["klarna_minimum"]
    assert "both be test" in errors["secret_key"]
    assert db.session.get(Settings, 1) is None


def test_turning_payments_on_names_each_missing_key(client, token, db):
    _post(client, token, publishable_key=KEYS["publishable_key"])
    errors = _field_errors(_post(client, token, enabled="on", publishable_key=KEYS["publishable_key"],
                                 default_vat_rate="abc"))
    assert "before enabling" in errors["enabled"] and "between 0 and 100" in errors["default_vat_rate"]
    assert errors["secret_key"] == errors["webhook_secrets"] == "Required to enable payments."
    assert "publishable_key" not in errors


def test_a_malformed_key_is_not_also_called_missing(client, token):
    errors = _field_errors(_post(client, token, enabled="on", publishable_key="pk_51Abcdefghijkl"))
    assert "pk_test_" in errors["publishable_key"] and "Required" not in errors["publishable_key"]


def test_clearing_a_key_while_payments_are_on_saves_and_says_they_are_now_off(client, token, db, configured):
    response = _post(client, token, enabled="on", publishable_key="")
    assert response.status_code == 302
    payment_settings.forget_cached()
    assert payment_settings.load(db.session).publishable_key is None
    page = client.get(URL, headers=as_user("adm")).get_data(as_text=True)
    assert "Payment settings saved. Payments are now off: the publishable key is missing." in page
    assert "Learners cannot buy paid courses now: the publishable key is missing." in page


def test_payments_enabled_in_the_config_and_a_key_cleared_says_they_are_off(app, client, token, db, configured):
    app.config["LMS_STRIPE_ENABLED"] = True
    assert _post(client, token, publishable_key="").status_code == 302
    page = client.get(URL, headers=as_user("adm")).get_data(as_text=True)
    assert "Payments are now off: the publishable key is missing." in page


def test_turning_payments_off_says_so_on_the_page(client, token, db, configured):
    assert _post(client, token, publishable_key=KEYS["publishable_key"]).status_code == 302
    page = client.get(URL, headers=as_user("adm")).get_data(as_text=True)
    assert "Payments are now off: online payment is turned off." in page
    assert "Learners cannot buy paid courses now: online payment is turned off." in page
    assert "Payments are now off" not in client.get(URL, headers=as_user("adm")).get_data(as_text=True)


def test_a_save_that_leaves_payments_on_says_nothing_more(client, token, db, configured):
    _post(client, token, enabled="on", publishable_key=KEYS["publishable_key"], default_currency="USD")
    page = client.get(URL, headers=as_user("adm")).get_data(as_text=True)
    assert "Payment settings saved." in page and "payments are off" not in page.lower()
    assert "Learners can buy paid courses." in page


def test_the_sellers_identity_is_saved_checked_and_shown_as_typed(client, token, db):
    response = _post(client, token, seller_legal_name="  École du Code SAS ", seller_siret="732 829 320 00074",
                     seller_vat_number="fr 44 732 829 320", seller_legal_form="SAS au capital de 10 000 €",
                     seller_address="12 rue des Écoles\r\n\r\n 75005 Paris ", business_buyers="on")
    assert response.status_code == 302
    stored = payment_settings.load(db.session)
    assert (stored.seller_legal_name, stored.seller_siret, stored.seller_vat_number, stored.seller_legal_form,
            stored.seller_address, stored.business_buyers, stored.late_payment_text) == (
        "École du Code SAS", "73282932000074", "FR44732829320", "SAS au capital de 10 000 €",
        "12 rue des Écoles\n75005 Paris", True, None)
    page = client.get(URL, headers=as_user("adm")).get_data(as_text=True)
    assert 'value="732 829 320 00074"' in page and 'value="FR44732829320"' in page
    assert "12 rue des Écoles\n75005 Paris</textarea>" in page
    # The default wording of the penalties, in the administrator's language, shown where it can be replaced.
    assert 'placeholder="Late payment: penalties at three times the French legal interest rate' in page


@pytest.mark.parametrize("siret", ["356 000 000 00048", "35600000049238"])
def test_la_poste_sirets_follow_their_own_check(client, token, db, siret):
    """INSEE: La Poste's establishments (SIREN 356 000 000) have SIRETs whose digits add up to a multiple of 5."""
    assert _post(client, token, seller_legal_name="La Poste", seller_siret=siret).status_code == 302
    assert payment_settings.load(db.session).seller_siret == siret.replace(" ", "")


def test_a_vat_number_with_a_letter_key_is_taken_without_a_key_check(client, token, db):
    assert _post(client, token, seller_legal_name="X", seller_vat_number="FRXY732829320").status_code == 302
    assert payment_settings.load(db.session).seller_vat_number == "FRXY732829320"


@pytest.mark.parametrize("field", ["seller_legal_name", "seller_address", "seller_legal_form", "late_payment_text"])
def test_markup_in_the_sellers_details_is_kept_as_text(client, token, db, field):
    markup = "<script>alert(1)</script>"
    assert _post(client, token, **{"seller_legal_name": "X", field: markup}).status_code == 302
    assert getattr(payment_settings.load(db.session), field) == markup
    page = client.get(URL, headers=as_user("adm")).get_data(as_text=True)
    assert markup not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
