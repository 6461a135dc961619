"""Several currencies: the currencies a school accepts, a course's price typed in each, the learner's currency
(switcher, host, locale), and the catalog, course page and Buy in it."""
import re

import pytest
from marshmallow import ValidationError
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from lms_stripe_plugin.accounts import settings as payment_settings
from lms_stripe_plugin.core.models import CurrencyChoice, Purchase
from lms_stripe_plugin.shop import currencies, offers
from lms_stripe_plugin.shop.offers import save_offer
from lms_stripe_plugin.web.forms import PRICING_PREFIX, SettingsSchema

from .conftest import as_user
from .minimal_host import Lesson
from .test_catalog import send, sql_statements

EUR_PRICE = {"is_paid": True, "amount": 4990, "currency": "EUR", "vat_rate": 2000, "audience": "public",
             "on_sale": True}


@pytest.fixture
def several(app, db, people, configured, priced):
    """The school accepts EUR (its default), CHF and USD; c1 costs 49.90 EUR, 47.00 CHF and 54.00 USD; c2 (for
    partners) 129.00 EUR and 125.00 CHF; c4 is sold in JPY only."""
    payment_settings.save(db.session, {"other_currencies": "CHF USD"}, actor_id="adm")
    save_offer(db.session, "c1", {**EUR_PRICE, "prices": {"CHF": 4700, "USD": 5400}}, actor_id="adm")
    save_offer(db.session, "c2", {**EUR_PRICE, "amount": 12900, "audience": "partner", "prices": {"CHF": 12500}},
               actor_id="adm")
    db.session.commit()
    return payment_settings.load(db.session)


def _courses(db):
    return db.session.scalars(select(Lesson).order_by(Lesson.id)).all()


def _form(**fields) -> MultiDict:
    values = {"paid": "on", "price": "49.90", "currency": "EUR", "vat_rate": "20", "audience": "public",
              "on_sale": "on", **fields}
    return MultiDict({PRICING_PREFIX + name: value for name, value in values.items()})


def _save(app, host, course_id, form):
    with app.test_request_context(headers=as_user("adm")):
        return send(app, "lms.course.settings_saved", course=host.get_course(course_id), form=form)


# -- the settings ------------------------------------------------------------------------------------------------

def test_the_settings_read_other_currencies_as_codes_without_the_default_or_repeats(app):
    schema = SettingsSchema()
    with app.test_request_context():
        data = schema.load_form(MultiDict({"default_currency": "EUR", "default_vat_rate": "20",
                                           "other_currencies": "chf, usd eur;CHF"}))
        assert data["other_currencies"] == "CHF USD"
        with pytest.raises(ValidationError) as refused:
            schema.load_form(MultiDict({"default_currency": "EUR", "default_vat_rate": "20",
                                        "other_currencies": "CHF, ZZZ, francs"}))
    message = refused.value.messages["other_currencies"][0]
    assert "ZZZ" in message and "francs" in message and "CHF" not in message.split(":")[0]


def test_accepted_currencies_put_the_default_first(app, db, several):
    assert several.currencies == ("EUR", "CHF", "USD") and several.several_currencies
    payment_settings.save(db.session, {"other_currencies": None}, actor_id="adm")
    db.session.commit()
    payment_settings.forget_cached()
    alone = payment_settings.load(db.session)
    assert alone.currencies == ("EUR",) and not alone.several_currencies


def test_the_settings_page_saves_and_shows_other_currencies(app, db, client, people, configured):
    page = client.get("/payments/admin/settings", headers=as_user("adm")).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = {"csrf_token": token, "enabled": "on", "default_currency": "EUR", "default_vat_rate": "20",
            "other_currencies": "usd, chf", "publishable_key": configured.publishable_key}
    response = client.post("/payments/admin/settings", data=form, headers=as_user("adm"))
    assert response.status_code == 302, response.get_data(as_text=True)
    payment_settings.forget_cached()
    assert payment_settings.load(db.session).currencies == ("EUR", "USD", "CHF")
    page = client.get("/payments/admin/settings", headers=as_user("adm")).get_data(as_text=True)
    assert 'value="USD, CHF"' in page


# -- the course form ---------------------------------------------------------------------------------------------

def test_the_course_form_saves_a_price_typed_in_each_currency(app, db, host, several):
    assert _save(app, host, "c3", _form(price_chf="47.50", price_usd="55")) is None
    db.session.commit()
    assert offers.prices_of(db.session, "c3") == {"CHF": 4750, "USD": 5500}
    assert _save(app, host, "c3", _form(price_chf="48", price_usd="")) is None  # USD emptied: not sold in USD
    db.session.commit()
    assert offers.prices_of(db.session, "c3") == {"CHF": 4800}
    assert _save(app, host, "c3", _form(paid="")) is None  # free: no price anywhere
    db.session.commit()
    assert offers.prices_of(db.session, "c3") == {}


def test_a_bad_price_in_another_currency_names_its_field_and_saves_nothing(app, db, host, several):
    errors = _save(app, host, "c1", _form(price="45", price_chf="47.001", price_usd="0.10"))
    db.session.rollback()
    assert set(errors) == {PRICING_PREFIX + "price_chf", PRICING_PREFIX + "price_usd"}
    assert "decimal" in errors[PRICING_PREFIX + "price_chf"]
    assert "0.50" in errors[PRICING_PREFIX + "price_usd"]  # Stripe's minimum charge in USD
    assert offers.get_offer(db.session, "c1").amount == 4990
    assert offers.prices_of(db.session, "c1") == {"CHF": 4700, "USD": 5400}


def test_a_deposit_is_checked_in_every_currency(app, db, host, several):
    # A fixed 40.00 EUR deposit on 49.90 EUR is the same share (80 %) of 0.60 CHF: 0.48 CHF, below Stripe's minimum.
    errors = _save(app, host, "c3", _form(price_chf="0.60", payment_plan="deposit", deposit_kind="amount",
                                          deposit_value="40", balance_due="after_enrollment", balance_due_days="30",
                                          deposit_access="deposit"))
    db.session.rollback()
    assert set(errors) == {PRICING_PREFIX + "price_chf"}
    assert offers.get_offer(db.session, "c3") is None


def test_the_course_form_shows_the_stored_prices_and_the_typed_ones_after_a_refusal(app, host, several):
    with app.test_request_context(headers=as_user("adm")):
        html = send(app, "lms.course.settings_form", course=host.get_course("c1"))
        assert re.search(r'id="lms_stripe-price_chf" value="47.00"', html)
        assert re.search(r'id="lms_stripe-price_usd" value="54.00"', html)
        html = send(app, "lms.course.settings_form", course=host.get_course("c1"),
                    form=_form(price_chf="47.001"), errors={PRICING_PREFIX + "price_chf": "Too many decimals"})
    assert re.search(r'id="lms_stripe-price_chf" value="47.001"', html)
    assert 'href="#lms_stripe-price_chf">Price in CHF: Too many decimals' in html


def test_the_same_deposit_terms_in_another_currency(app, db, host, several):
    assert _save(app, host, "c3", _form(price_chf="100", payment_plan="deposit", deposit_kind="amount",
                                        deposit_value="15", balance_due="after_enrollment", balance_due_days="30",
                                        deposit_access="deposit")) is None
    db.session.commit()
    offer = offers.get_offer(db.session, "c3")
    in_chf = offers.in_currency(db.session, offer, "CHF")
    assert (in_chf.amount, in_chf.currency, in_chf.deposit_amount) == (10000, "CHF", 3006)  # 15/49.90 of 100
    assert in_chf.balance_due_days == 30 and in_chf.vat_rate == offer.vat_rate
    assert offers.in_currency(db.session, offer, "USD") is None
    assert offers.in_currency(db.session, offer, "EUR") is offer and offers.in_currency(db.session, offer, None) is offer


# -- the learner's currency --------------------------------------------------------------------------------------

def test_one_accepted_currency_shows_each_course_in_its_own(app, db, host, people, configured, priced):
    with app.test_request_context(headers=as_user("emp")):
        assert currencies.of_viewer(app.extensions["lms_stripe"], configured, host.get_user("emp")) is None
        decoration = send(app, "lms.catalog.rendering", courses=_courses(db), user=host.get_user("emp"))
    assert 'data-currency="JPY"' in decoration.labels["c4"] and 'data-currency="EUR"' in decoration.labels["c1"]
    assert "lms-stripe-currency" not in decoration.filter_widget


def test_the_default_comes_from_the_host_then_the_locale_then_the_school(app, db, host, several):
    state = app.extensions["lms_stripe"]
    with app.test_request_context():
        assert currencies.of_viewer(state, several, None) == "EUR"
    host.locale = "fr_CH"
    with app.test_request_context():
        assert currencies.of_viewer(state, several, None) == "CHF"
        assert currencies.of_viewer(state, several, host.get_user("u1")) == "CHF"
    host.preferred_currency = lambda user: "usd"
    with app.test_request_context():
        assert currencies.of_viewer(state, several, host.get_user("u1")) == "USD"
    host.preferred_currency = lambda user: "GBP"  # not accepted: passed over
    with app.test_request_context():
        assert currencies.of_viewer(state, several, host.get_user("u1")) == "CHF"


def test_the_switcher_remembers_a_learners_choice_and_goes_back(app, db, client, host, several):
    page = client.get("/payments/courses/c1", headers=as_user("u1")).get_data(as_text=True)
    assert "49.90" in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/payments/currency", data={"csrf_token": token, "currency": "USD", "next": "/catalog?page=2"},
                           headers=as_user("u1"))
    assert response.status_code == 303 and response.headers["Location"] == "/catalog?page=2"
    assert db.session.scalar(select(CurrencyChoice.currency).where(CurrencyChoice.user_id == "u1")) == "USD"
    page = client.get("/payments/courses/c1", headers=as_user("u1")).get_data(as_text=True)
    assert "$54.00" in page and 'name="currency" value="USD"' in page
    # A course with no price in the learner's currency says so, and cannot be bought in it.
    page = client.get("/payments/courses/c2", headers=as_user("par"))
    assert page.status_code == 200 and "€129.00" in page.get_data(as_text=True)  # par has not chosen: EUR
    client.post("/payments/currency", data={"csrf_token": token, "currency": "USD"}, headers=as_user("par"))
    page = client.get("/payments/courses/c2", headers=as_user("par")).get_data(as_text=True)
    assert "This course is not sold in USD." in page and "lms-stripe-buy" not in page
    refused = client.post("/payments/checkout/c2", data={"csrf_token": token}, headers=as_user("par"))
    assert refused.status_code == 409 and "not sold in USD" in refused.get_data(as_text=True)
    assert db.session.scalar(select(Purchase)) is None
    # Another browser (no cookie): the choice is read from the table.
    other = app.test_client()
    assert "$54.00" in other.get("/payments/courses/c1", headers=as_user("u1")).get_data(as_text=True)
    # Never another site, nor a currency the school does not accept.
    response = client.post("/payments/currency", data={"csrf_token": token, "currency": "CHF",
                                                        "next": "//evil.example/x"}, headers=as_user("u1"))
    assert response.status_code == 303 and response.headers["Location"] == "/"
    refused = client.post("/payments/currency", data={"csrf_token": token, "currency": "GBP"}, headers=as_user("u1"))
    assert refused.status_code == 400 and "EUR, CHF, USD" in refused.get_data(as_text=True)
    assert db.session.scalar(select(CurrencyChoice.currency).where(CurrencyChoice.user_id == "u1")) == "CHF"
    assert client.post("/payments/currency", data={"currency": "USD"}, headers=as_user("u1")).status_code == 400


def test_a_visitors_choice_lives_in_their_session_only(app, db, host, several):
    state = app.extensions["lms_stripe"]
    with app.test_request_context():
        assert currencies.choose(state, several, None, "CHF")
        assert currencies.of_viewer(state, several, None) == "CHF"
        assert not currencies.choose(state, several, None, "GBP")
    assert db.session.scalar(select(CurrencyChoice)) is None


def test_the_catalog_shows_prices_in_the_readers_currency_or_says_it_is_not_sold_in_it(app, db, host, several):
    host.locale = "fr_CH"
    with app.test_request_context(headers=as_user("par")):
        decoration = send(app, "lms.catalog.rendering", courses=_courses(db), user=host.get_user("par"))
    labels = decoration.labels
    assert 'data-price="4700" data-currency="CHF"' in labels["c1"] and "47,00" in labels["c1"]
    assert 'data-price="12500" data-currency="CHF"' in labels["c2"]
    assert 'data-status="not_in_currency"' in labels["c4"] and "CHF" in labels["c4"]
    widget = decoration.filter_widget
    assert 'name="currency"' in widget and '<option value="CHF" selected>' in widget
    assert "Prix maximum (CHF)" in widget and "franc suisse" in widget
    assert re.search(r"name=\"csrf_token\" value=\"[^\"]{20,}\"", widget) and "csrf-token-here" not in widget


def test_the_price_filter_reads_the_maximum_in_the_readers_currency(app, db, host, several):
    state = app.extensions["lms_stripe"]
    with app.test_request_context(headers=as_user("par")):
        currencies.choose(state, several, host.get_user("par"), "CHF")
        kept = send(app, "lms.catalog.filtering", courses=_courses(db), args=MultiDict({"price_max": "50"}))
    assert {course.id for course in kept} == {"c1", "c3"}  # 47.00 CHF and the free course; c4 has no CHF price
    with app.test_request_context(headers=as_user("par")):
        currencies.choose(state, several, host.get_user("par"), "USD")
        kept = send(app, "lms.catalog.filtering", courses=_courses(db), args=MultiDict({"price_max": "50"}))
    assert {course.id for course in kept} == {"c3"}  # 54.00 USD is above 50


def test_the_catalog_costs_two_queries_whatever_the_currencies(app, db, host, several):
    for index in range(30):
        db.session.add(Lesson(id=f"x{index}", title=f"Extra {index}"))
        save_offer(db.session, f"x{index}", {**EUR_PRICE, "prices": {"CHF": 4000 + index, "USD": 5000 + index}},
                   actor_id="adm")
    db.session.commit()
    client = app.test_client()
    client.post("/payments/currency", data={"currency": "CHF"}, headers=as_user("u1"))  # refused: no token
    user, courses = host.get_user("u1"), _courses(db)
    with app.test_request_context(headers=as_user("u1")):
        currencies.choose(app.extensions["lms_stripe"], several, user, "CHF")
        db.session.commit()
        with sql_statements(db) as statements:
            decoration = send(app, "lms.catalog.rendering", courses=courses, user=user)
    own = [sql for sql in statements if "lms_stripe" in sql]  # the host reloads its expired courses: its own
    assert len(own) == 2, own  # the settings, then the offers with their prices and the learner's purchases
    assert 'data-price="4029" data-currency="CHF"' in decoration.labels["x29"]
