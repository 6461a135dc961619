"""The whole story in a real browser (Debian's Chromium) against the demo LMS on the offline sandbox."""
from __future__ import annotations

import re

import pytest

from playwright.sync_api import expect

from .conftest import shot

pytestmark = pytest.mark.browser

CARD_OK, CARD_DECLINED = "4242 4242 4242 4242", "4000 0000 0000 0002"


def login(page, base, username, path="/catalog"):
    page.goto(f"{base}/demo/login/{username}?next={path}")


def pay_on_sandbox(page, card: str, name: str) -> None:
    expect(page.locator("#card-number")).to_be_visible()
    page.fill("#card-number", card)
    page.fill("#card-expiry", "12 / 34")
    page.fill("#card-cvc", "123")
    if page.locator("#billing-name").count():
        page.fill("#billing-name", "Léa Learner")
    if page.locator("#terms").count():
        page.check("#terms")
    shot(page, name)
    page.click("#pay")


def buy(page, base, course_id: int, card: str, shot_name: str) -> None:
    page.goto(f"{base}/courses/{course_id}")
    page.click("button.lms-stripe-buy")
    pay_on_sandbox(page, card, shot_name)


def test_enable_price_buy_decline_cancel_buy_again_and_free_enrollment(live, page):
    base, sandbox = live["base"], live["sandbox"]

    # The administrator enables payments with the sandbox's test keys.
    login(page, base, "admin", "/payments/admin/settings")
    expect(page.locator("h1")).to_have_text("Payment settings")
    page.fill("#publishable_key", "pk_test_sandbox_demo")
    page.fill("#secret_key", "sk_test_sandbox_demo")
    page.fill("#webhook_secrets", "whsec_sandbox_demo")
    page.check("#enabled")
    page.fill("#terms_url", f"{base}/terms")
    shot(page, "01-admin-payment-settings")
    page.click("button[type=submit]")
    expect(page.locator(".flash")).to_contain_text("Payment settings saved.")
    expect(page.locator("body")).not_to_contain_text("sk_test_sandbox_demo")

    # ... and prices a free course at 19,90 € for the public.
    page.goto(f"{base}/courses/3/settings")
    page.check("#lms_stripe-paid")
    page.fill("#lms_stripe-price", "19.90")
    page.select_option("#lms_stripe-audience", "public")
    expect(page.locator("#lms-stripe-breakdown")).to_contain_text("€16.58")  # net, updated as the admin types
    shot(page, "02-admin-course-pricing")
    page.click("text=Save")
    expect(page.locator(".flash")).to_contain_text("Course saved.")

    # A learner filters the catalog by price and buys the course with 4242.
    login(page, base, "learner")
    page.fill("#lms-stripe-price-max", "20")
    page.click(".lms-stripe-filter button[type=submit]")
    cards = page.locator(".course")
    expect(cards.filter(has_text="Workplace safety")).to_contain_text("€19.90")
    expect(cards.filter(has_text="Advanced Flask")).to_have_count(0)
    shot(page, "03-catalog-filtered")
    page.click("text=Workplace safety")
    expect(page.locator(".lms-stripe-detail")).to_contain_text("€19.90")
    shot(page, "04-course-page")
    page.click("button.lms-stripe-buy")
    pay_on_sandbox(page, CARD_OK, "05-sandbox-checkout")
    expect(page.locator("h1")).to_have_text("Thank you, your payment is confirmed")
    shot(page, "06-payment-confirmed")
    page.goto(f"{base}/courses/3")
    expect(page.locator(".lms-stripe-detail")).to_contain_text("Enrolled")

    # The invoice is under "My invoices", and its PDF downloads.
    page.goto(f"{base}/payments/invoices")
    row = page.locator("tbody tr").first
    expect(row).to_contain_text("Workplace safety")
    number = row.locator("td").first.inner_text()
    assert re.match(r"^[A-Z]+-\d+", number)
    shot(page, "07-my-invoices")
    pdf = page.context.request.get(base + row.locator("a", has_text="PDF").get_attribute("href"))
    assert pdf.ok and pdf.headers["content-type"].startswith("application/pdf")
    assert pdf.body().startswith(b"%PDF-") and number.encode() in pdf.body()

    # A declined card shows Stripe's message and charges nothing.
    buy(page, base, 2, CARD_DECLINED, "08-sandbox-before-decline")
    expect(page.locator("#payment-error")).to_contain_text("Your card was declined.")
    shot(page, "09-card-declined")

    # The administrator cancels the purchase: refund, invoice cancelled, access revoked.
    login(page, base, "admin", "/payments/admin/invoices")
    expect(page.locator("table.invoices")).to_contain_text(number)
    shot(page, "10-admin-invoices")
    page.click("table.invoices a:text-is('Manage')")
    page.click("text=Cancel the purchase")
    page.fill("#reason", "Bought by mistake")
    shot(page, "11-admin-cancel-confirmation")
    page.click("text=Confirm the cancellation")
    expect(page.locator(".flash")).to_contain_text("The purchase is cancelled")
    page.reload()
    expect(page.locator(".lms-stripe-invoice-summary")).to_contain_text("Cancelled")
    expect(page.locator(".lms-stripe-invoice-summary")).to_contain_text("Revoked")
    shot(page, "12-admin-invoice-cancelled")

    # The learner lost access, and buys the course again.
    login(page, base, "learner", "/courses/3")
    expect(page.locator("button.lms-stripe-buy")).to_be_visible()
    buy(page, base, 3, CARD_OK, "13-sandbox-buy-again")
    expect(page.locator("h1")).to_have_text("Thank you, your payment is confirmed")
    page.goto(f"{base}/payments/invoices")
    expect(page.locator("tbody tr")).to_have_count(2)
    expect(page.locator("tbody")).to_contain_text("Cancelled")
    shot(page, "14-my-invoices-after-rebuy")

    # A manager enrolls a member into a paid course for free.
    login(page, base, "manager", "/backoffice/enroll")
    page.select_option("#course_id", label="Partner onboarding")
    page.select_option("#user_ids", label="Paula Partner (partner@demo.test)")
    shot(page, "15-backoffice-enroll")
    page.click("button[type=submit]")
    expect(page.locator(".flash")).to_contain_text("1 member(s) enrolled")
    login(page, base, "admin", "/payments/admin/free-enrollments")
    expect(page.locator("tbody")).to_contain_text("Paula Partner")
    shot(page, "16-admin-free-enrollments")
    page.goto(f"{base}/payments/admin/audit")
    expect(page.locator("table.audit")).to_contain_text("no longer has access to")
    shot(page, "17-admin-audit-log")
    assert sandbox.state.wait_for_deliveries(10)


def test_french_pages(live, page):
    base = live["base"]
    login(page, base, "learner")
    page.goto(f"{base}/demo/lang/fr")
    page.goto(f"{base}/catalog")
    expect(page.locator(".lms-stripe-filter")).to_contain_text("Cours gratuits")
    expect(page.locator(".course").filter(has_text="Python for beginners")).to_contain_text("49,90\u00a0€")
    shot(page, "18-catalogue-fr")
