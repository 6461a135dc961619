"""Payment requests in a real browser (Debian's Chromium) against the demo LMS on the offline sandbox: the
administrator invoices 300 € and asks for 90 €, the learner follows the e-mail's link from the demo's inbox,
pays on the sandbox, sees what remains, then pays the rest from "My payments"; in English and in French."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from lms_stripe_plugin.accounts import settings as payment_settings
from lms_stripe_plugin.demo import SANDBOX_KEYS
from lms_stripe_plugin.demo.models import User, db

from .conftest import shot
from .test_story import login, pay_on_sandbox

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def school(live):
    """Payments on with the sandbox's keys, as the story's administrator enters them."""
    with live["app"].app_context():
        payment_settings.save(db.session, {
            "enabled": True, "publishable_key": SANDBOX_KEYS["publishable_key"],
            "secret_key": SANDBOX_KEYS["secret_key"], "webhook_secrets": [SANDBOX_KEYS["webhook_secret"]],
            "school_name": "Demo School", "partial_payments_enabled": True, "partial_minimum": 1000,
            "sepa_debit_enabled": True}, actor_id=None)
        db.session.commit()
        learner = db.session.query(User).filter_by(username="learner").one()
        return {**live, "learner_id": str(learner.id)}


def _wait_until(page, url: str, text: str, tries: int = 20) -> None:
    """Reload ``url`` until it shows ``text`` (the webhook may land a moment after the redirect)."""
    for _ in range(tries):
        page.goto(url)
        if text in page.locator("body").inner_text():
            return
        page.wait_for_timeout(250)
    expect(page.locator("body")).to_contain_text(text)


def test_invoice_request_pay_part_then_the_rest_from_my_payments(school, page):
    base = school["base"]
    login(page, base, "admin", "/payments/admin/invoices/new")
    page.fill("#learner", school["learner_id"])
    page.fill("#line-1-description", "Accompagnement VAE")
    page.fill("#line-1-amount", "300.00")
    shot(page, "19-admin-new-invoice")
    page.click("#create-invoice")
    expect(page.locator(".flash")).to_contain_text("The invoice is issued.")
    invoice_url = page.url

    page.click("#request-payment")
    page.fill("#amount", "90.00")
    page.check("input[name=sms]")
    page.select_option("#locale", "en")
    shot(page, "20-admin-request-payment")
    page.click("button[type=submit]")
    expect(page.locator(".flash")).to_contain_text("The payment request is sent.")

    # The learner opens the e-mail from the demo's inbox and pays the 90 € asked.
    login(page, base, "learner", "/inbox")
    expect(page.locator(".inbox-item")).to_have_count(2)  # the e-mail and the SMS
    page.locator(".inbox-item").first.locator("a").first.click()
    expect(page.locator("#remaining")).to_contain_text("300.00")
    shot(page, "21-pay-page")
    page.click("#pay")
    pay_on_sandbox(page, "4242 4242 4242 4242", "22-sandbox-pay-request")
    expect(page.locator("body")).to_contain_text("Thank you: your payment is received.")
    pay_url = page.url.split("?")[0]
    _wait_until(page, pay_url, "210.00")
    expect(page.locator("#paid-so-far")).to_contain_text("90.00")

    # The administrator sees what was paid and what remains.
    login(page, base, "admin", invoice_url.removeprefix(base))
    expect(page.locator("body")).to_contain_text("210.00")

    # A second request for the rest, paid from "My payments", in French.
    page.goto(invoice_url)
    page.click("#request-payment")
    page.fill("#amount", "210.00")
    page.click("button[type=submit]")
    login(page, base, "learner", "/payments/my-payments")
    page.goto(f"{base}/demo/lang/fr")
    page.goto(f"{base}/payments/my-payments")
    expect(page.locator("h1")).to_have_text("Mes paiements")
    expect(page.locator("table.owed")).to_contain_text("210,00")
    shot(page, "23-mes-paiements")
    page.locator("table.owed button").first.click()
    pay_on_sandbox(page, "4242 4242 4242 4242", "24-sandbox-pay-rest")
    _wait_until(page, f"{base}/payments/my-payments", "Vous n’avez rien à payer.")
    expect(page.locator("table.paid")).to_contain_text("300,00")
    page.goto(pay_url)
    expect(page.locator("#download-pdf")).to_be_visible()
    shot(page, "25-facture-payee")


def test_the_pay_page_speaks_french_to_a_visitor_without_an_account(school, browser):
    """The link of a request sent in French opens a French page for someone not signed in, on a phone."""
    base = school["base"]
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-GB", is_mobile=True)
    admin = context.new_page()
    login(admin, base, "admin", "/payments/admin/invoices/new")
    admin.fill("#learner", school["learner_id"])
    admin.fill("#line-1-description", "Frais de dossier")
    admin.fill("#line-1-amount", "45.00")
    admin.click("#create-invoice")
    admin.click("#request-payment")
    admin.select_option("#locale", "fr")
    admin.click("button[type=submit]")
    login(admin, base, "learner", "/inbox")
    link = admin.locator(".inbox-item").first.locator("a").first.get_attribute("href")
    context.close()

    stranger = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-GB", is_mobile=True)
    page = stranger.new_page()
    page.goto(link)
    expect(page.locator("#pay")).to_have_text("Payer")
    expect(page.locator("#amount")).to_have_value("45,00")  # partial payments are on: the learner may pay less
    expect(page.locator("#amount-help")).to_contain_text("10,00")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the pay page scrolls sideways on a phone ({width}px)"
    shot(page, "26-page-de-paiement-mobile")
    stranger.close()
