"""A French learner buys a course in a real browser (Debian's Chromium) from the demo LMS on the offline sandbox:
the Buy button says the price, the thank-you page is a receipt, and the invoice PDF, which Chromium shows,
names the seller as French law asks, in French; then a partial refund's credit note, in French too."""
from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import expect

from lms_stripe_plugin.accounts import settings as payment_settings
from lms_stripe_plugin.demo import SANDBOX_KEYS
from lms_stripe_plugin.demo.models import Course, db
from lms_stripe_plugin.demo.seed import SANDBOX_ACCOUNT, SELLER

from .conftest import shot
from .test_story import login

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def school(live):
    """Payments on with the sandbox's keys, the school's legal identity entered, its Stripe account's public
    business details set (as the demo starts)."""
    with live["app"].app_context():
        payment_settings.save(db.session, {
            "enabled": True, "publishable_key": SANDBOX_KEYS["publishable_key"],
            "secret_key": SANDBOX_KEYS["secret_key"], "webhook_secrets": [SANDBOX_KEYS["webhook_secret"]],
            "vouchers_enabled": True, "business_buyers": True, **SELLER}, actor_id=None)
        db.session.commit()
        course_id = db.session.query(Course.id).filter_by(title="Python for beginners").scalar()
    requests.post(f"{live['sandbox'].url}/_sandbox/account", timeout=5,
                  json={**SANDBOX_ACCOUNT, "business_address": list(SANDBOX_ACCOUNT["business_address"])})
    return {**live, "course_id": course_id}


@pytest.fixture
def french_page(browser):
    context = browser.new_context(viewport={"width": 1000, "height": 1300}, locale="fr-FR")
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


def _pay(page) -> None:
    page.fill("#card-number", "4242 4242 4242 4242")
    page.fill("#card-expiry", "12 / 34")
    page.fill("#card-cvc", "123")
    if page.locator("#billing-name").count():
        page.fill("#billing-name", "Léa Learner")
    page.click("#pay")


def test_a_french_learner_gets_a_receipt_and_a_french_invoice_then_a_credit_note(school, french_page):
    page, base = french_page, school["base"]
    page.goto(f"{base}/demo/lang/fr")
    login(page, base, "learner", f"/courses/{school['course_id']}")
    expect(page.locator("button.lms-stripe-buy")).to_have_text(re.compile(r"Acheter pour 49,90\s€"))
    page.click("button.lms-stripe-buy")
    page.fill("#promo-code", "WELCOME10")  # 10 % off, as the sandbox's seeded promotion codes go
    page.click("#apply-promo")
    expect(page.locator("#promo-applied")).to_be_visible()
    _pay(page)
    expect(page.locator("#receipt")).to_contain_text("Montant payé")
    expect(page.locator("#receipt-discount")).to_have_text(re.compile(r"-4,99\s€"))
    for _ in range(20):  # the invoice's number comes with Stripe's events, a moment after the redirect
        if "Facture" in page.locator("#receipt-invoice").inner_text() and \
                page.locator("#receipt-invoice a").count():
            break
        page.wait_for_timeout(250)
        page.reload()
    expect(page.locator("#receipt-invoice a")).to_have_text("PDF")
    shot(page, "33-recu-apres-paiement")
    invoice_id = re.search(r"/payments/invoices/(\d+)/pdf", page.locator("#receipt-invoice a").get_attribute("href"))[1]

    page.click("#receipt-invoice a")  # our link, which leads to Stripe's PDF: Chromium shows it
    page.wait_for_timeout(3000)  # Chromium's viewer draws the page, then its thumbnail
    shot(page, "34-facture-pdf")
    pdf = requests.get(page.url, timeout=10).content
    for text in (b"Facture", b"Demo School", b"Vendeur : Demo School SAS", b"SIRET : 123 456 782 00010",
                 b"N\xb0 TVA intracommunautaire : FR11123456782", b"Montant HT", b"-4,15\xa0\x80", b"TVA \\(20 %\\) incluse",
                 b"Total HT", b"37,43\xa0\x80", b"Total TTC", b"44,91\xa0\x80", b"Retard de paiement", b"indemnit\xe9 forfaitaire de 40,00\xa0\x80"):
        assert text in pdf, text

    # The administrator refunds 10 € of it: a credit note for that part, in the learner's language.
    login(page, base, "admin", f"/payments/admin/invoices/{invoice_id}/refund")
    page.fill("#amount", "10,00")
    page.click("form button[type=submit]")
    expect(page.locator(".credit-notes")).to_contain_text("10,00")
    note_pdf = page.locator(".credit-notes a").first.get_attribute("href")
    body = requests.get(note_pdf, timeout=10).content
    assert b"Avoir" in body and b"10,00\xa0\x80" in body and b"Demo School" in body
