"""Platform mode in a real browser (Debian's Chromium): the demo LMS as a platform on the offline sandbox; the
school's administrator activates online payment, onboards on the sandbox's hosted onboarding (company,
activity, IBAN, verification) and comes back to a page that says payments are enabled; the page passes the same
checks as every other (no sideways scrolling at 375 and 1280 px, axe-core) in English and French."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from lms_stripe_plugin.demo import SANDBOX_KEYS

from .checks import axe_violations, sideways
from .conftest import serve_demo, shot
from .test_story import login

pytestmark = pytest.mark.browser

PAGE = "/payments/admin/online-payment"


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    secret = SANDBOX_KEYS["webhook_secret"]
    with serve_demo(tmp_path_factory.mktemp("platform"), LMS_STRIPE_PLATFORM=True, LMS_STRIPE_ENABLED=True,
                    LMS_STRIPE_PUBLISHABLE_KEY=SANDBOX_KEYS["publishable_key"],
                    LMS_STRIPE_SECRET_KEY=SANDBOX_KEYS["secret_key"], LMS_STRIPE_WEBHOOK_SECRETS=[secret],
                    sandbox_options={"connect_webhook_secret": secret,
                                     "connect_webhook_url": "{base}/payments/webhook"}) as served:
        yield served


def _check(page, width: int) -> None:
    assert sideways(page, width) is None, sideways(page, width)
    assert axe_violations(page) == []


def test_an_administrator_activates_online_payment_through_the_onboarding(platform, browser):
    base = platform["base"]
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(15000)
    page.goto(f"{base}/demo/lang/en")
    login(page, base, "admin", PAGE)
    expect(page.locator("h1")).to_have_text("Online payment")
    expect(page.locator("nav.admin a[aria-current='page']")).to_have_text("Online payment")
    _check(page, 1280)
    shot(page, "43-admin-online-payment")
    page.click("#activate")

    # Stripe's hosted onboarding (the sandbox's): the business, then the verification.
    expect(page.locator("#company-name")).to_be_visible()
    _check(page, 1280)
    page.fill("#company-name", "École Lumière")
    page.select_option("#activity", index=1)
    page.fill("#description", "Training courses in data science, online and in class.")
    page.fill("#iban", "FR14 2004 1010 0505 0001 3M02 606")
    shot(page, "44-sandbox-onboarding")
    page.click("#continue")
    page.check("#tos")
    page.click("#submit")

    # Back in the LMS: where the school stands.
    expect(page.locator("h1")).to_have_text("Online payment")
    expect(page.locator("#details-submitted")).to_contain_text("Yes")
    expect(page.locator("#charges-enabled")).to_contain_text("Enabled")
    expect(page.locator("#complete")).to_be_visible()
    _check(page, 1280)
    shot(page, "45-admin-online-payment-enabled")
    context.close()


@pytest.mark.parametrize("lang, width", [("fr", 375), ("en", 375), ("fr", 1280)])
def test_the_online_payment_page_fits_and_speaks_the_language(platform, browser, lang, width):
    base = platform["base"]
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(f"{base}/demo/lang/{lang}")
    login(page, base, "admin", PAGE)
    expect(page.locator("h1")).to_have_text("Paiement en ligne" if lang == "fr" else "Online payment")
    expect(page.locator("#activate, #connect-status").first).to_be_visible()
    _check(page, width)
    context.close()


def test_the_second_school_has_its_own_catalog_and_online_payment(platform, browser):
    """The demo as a platform has two schools: the second school's administrator has not connected a Stripe
    account yet, whatever the first did; its catalog is its own courses, not on sale until then."""
    base = platform["base"]
    context = browser.new_context(viewport={"width": 375, "height": 900}, locale="en-GB")
    page = context.new_page()
    page.goto(f"{base}/demo/lang/en")
    login(page, base, "nord-admin", PAGE)
    expect(page.locator("h1")).to_have_text("Online payment")
    expect(page.locator("#activate")).to_be_visible()
    _check(page, 375)
    login(page, base, "nord-learner", "/catalog")
    expect(page.locator("h1")).to_contain_text("Atelier Nord")
    expect(page.locator(".course")).to_have_count(2)
    expect(page.locator(".course").first).to_contain_text("Pottery for beginners")
    _check(page, 375)
    context.close()
