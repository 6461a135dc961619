"""Several currencies in a real browser (Debian's Chromium) against the demo LMS on the offline sandbox: the
administrator accepts CHF and USD besides euros and types a course's price in each; a learner in French switches
the catalog to Swiss francs and buys the course in francs on the sandbox; a learner in English, on a phone,
switches to US dollars and sees the courses not sold in dollars said so."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from lms_stripe_plugin.accounts import settings as payment_settings
from lms_stripe_plugin.demo import SANDBOX_KEYS
from lms_stripe_plugin.demo.models import db

from .checks import axe_violations, sideways
from .conftest import shot
from .test_story import login, pay_on_sandbox

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 812}
PYTHON = 1  # "Python for beginners": 49.90 EUR in the demo


@pytest.fixture(scope="module")
def school(live):
    with live["app"].app_context():
        payment_settings.save(db.session, {
            "enabled": True, "publishable_key": SANDBOX_KEYS["publishable_key"],
            "secret_key": SANDBOX_KEYS["secret_key"], "webhook_secrets": [SANDBOX_KEYS["webhook_secret"]],
            "school_name": "Demo School"}, actor_id=None)
        db.session.commit()
    return live


def _accept_and_price(page, base: str) -> None:
    """The administrator accepts CHF and USD, then types the course's price in each on its settings page."""
    login(page, base, "admin", "/payments/admin/settings")
    page.fill("#other_currencies", "chf, usd")
    page.click("button[type=submit]")
    expect(page.locator(".flash")).to_contain_text("Payment settings saved")
    expect(page.locator("#other_currencies")).to_have_value("CHF, USD")
    page.goto(f"{base}/courses/{PYTHON}/settings")
    expect(page.locator("#lms-stripe-other-prices")).to_be_visible()
    page.fill("#lms_stripe-price_chf", "47.001")
    page.fill("#lms_stripe-price_usd", "54")
    page.click("button[type=submit]")
    expect(page.locator("#lms-stripe-pricing-errors")).to_contain_text("Price in CHF")
    expect(page.locator("#lms_stripe-price_chf")).to_have_attribute("aria-invalid", "true")
    page.fill("#lms_stripe-price_chf", "47")
    shot(page, "40-admin-course-prices-in-currencies")
    page.click("button[type=submit]")
    page.goto(f"{base}/courses/{PYTHON}/settings")
    expect(page.locator("#lms_stripe-price_chf")).to_have_value("47.00")
    expect(page.locator("#lms_stripe-price_usd")).to_have_value("54.00")


def test_a_french_learner_switches_to_swiss_francs_and_pays_in_them(school, browser, page):
    base = school["base"]
    _accept_and_price(page, base)

    context = browser.new_context(viewport={"width": 1200, "height": 900}, locale="fr-FR")
    learner = context.new_page()
    learner.set_default_timeout(15000)
    learner.goto(f"{base}/demo/lang/fr")
    login(learner, base, "learner")
    price = learner.locator(f".course[data-course-id='{PYTHON}'] .lms-stripe-price")
    expect(price).to_contain_text("49,90")
    switcher = learner.locator("form.lms-stripe-currency")
    expect(switcher.locator("label")).to_have_text("Prix en")
    learner.select_option("#lms-stripe-currency", "CHF")
    learner.click("form.lms-stripe-currency button")
    expect(learner).to_have_url(re.compile(r"/catalog"))
    expect(price).to_contain_text("47,00")
    expect(price).to_have_attribute("data-currency", "CHF")
    expect(learner.locator(".lms-stripe-price[data-status='not_in_currency']").first).to_contain_text("Non vendu en CHF")
    expect(learner.locator("#lms-stripe-currency")).to_have_value("CHF")
    assert axe_violations(learner) == []
    shot(learner, "41-catalog-in-swiss-francs")

    learner.goto(f"{base}/courses/{PYTHON}")
    buy = learner.locator("button.lms-stripe-buy")
    expect(buy).to_contain_text("47,00")
    buy.click()
    expect(learner.locator("body")).to_contain_text("47,00")
    pay_on_sandbox(learner, "4242424242424242", "42-sandbox-checkout-in-francs")
    expect(learner.locator("body")).to_contain_text("47,00")
    context.close()

    page.goto(f"{base}/payments/admin/invoices")
    expect(page.locator("body")).to_contain_text("CHF")


def _priced_in_three(live) -> None:
    """What `_accept_and_price` does through the pages, for a test that runs alone."""
    from lms_stripe_plugin.shop import offers

    with live["app"].app_context():
        payment_settings.save(db.session, {"other_currencies": "CHF USD"}, actor_id=None)
        offer = offers.get_offer(db.session, str(PYTHON))
        offers.save_offer(db.session, str(PYTHON), {
            "is_paid": True, "amount": offer.amount, "currency": offer.currency, "vat_rate": offer.vat_rate,
            "audience": offer.audience, "on_sale": offer.on_sale, "prices": {"CHF": 4700, "USD": 5400}},
            actor_id=None)
        db.session.commit()


def test_an_english_learner_on_a_phone_switches_to_dollars(school, browser):
    base = school["base"]
    _priced_in_three(school)
    context = browser.new_context(viewport=PHONE, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(15000)
    page.goto(f"{base}/demo/lang/en")
    login(page, base, "partner")
    expect(page.locator("form.lms-stripe-currency label")).to_have_text("Prices in")
    page.select_option("#lms-stripe-currency", "USD")
    page.click("form.lms-stripe-currency button")
    expect(page.locator("#lms-stripe-currency")).to_have_value("USD")
    expect(page.locator(".lms-stripe-price[data-currency='USD'][data-price='5400']").first).to_contain_text("$54.00")
    expect(page.locator(".lms-stripe-price[data-status='not_in_currency']").first).to_contain_text("Not sold in USD")
    expect(page.locator("label[for='lms-stripe-price-max']")).to_contain_text("(USD)")
    assert sideways(page, PHONE["width"]) is None
    assert axe_violations(page) == []
    # The choice is remembered: another device of the same learner opens in dollars.
    other = browser.new_context(viewport=PHONE, locale="en-GB").new_page()
    other.goto(f"{base}/demo/lang/en")
    login(other, base, "partner")
    expect(other.locator("#lms-stripe-currency")).to_have_value("USD")
    other.context.close()
    context.close()
