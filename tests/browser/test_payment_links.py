"""Payment links in a real browser (Debian's Chromium) against the demo LMS on the offline sandbox: the
administrator creates a free-amount link and copies its button; a plain static HTML page, served by this test
on an origin of its own like a school's website, embeds the button; a visitor who is not signed in, on a phone
and in French, clicks it, types an amount, pays on the sandbox and is thanked; the administrator sees the
payment and its invoice on the link. Without JavaScript, the button alone still opens the page."""
from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import expect

from lms_stripe_plugin.accounts import settings as payment_settings
from lms_stripe_plugin.demo import SANDBOX_KEYS
from lms_stripe_plugin.demo.models import db

from .conftest import shot
from .test_story import login, pay_on_sandbox

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 812}


@pytest.fixture(scope="module")
def school(live):
    with live["app"].app_context():
        payment_settings.save(db.session, {
            "enabled": True, "publishable_key": SANDBOX_KEYS["publishable_key"],
            "secret_key": SANDBOX_KEYS["secret_key"], "webhook_secrets": [SANDBOX_KEYS["webhook_secret"]],
            "school_name": "Demo School"}, actor_id=None)
        db.session.commit()
    return live


@pytest.fixture(scope="module")
def website(tmp_path_factory):
    """A school's website: plain files served on a port of their own (another origin than the LMS's)."""
    root = tmp_path_factory.mktemp("website")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"root": root, "base": f"http://127.0.0.1:{server.server_port}"}
    server.shutdown()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def _create_link(page, base: str) -> tuple[str, str, str]:
    """The administrator's new link, through the pages: (its page, the button's HTML, the script's tag)."""
    login(page, base, "admin", "/payments/admin/links/new")
    page.fill("#title", "Voyage d'étude à Lyon")
    page.fill("#purpose", "Participation aux frais du voyage (transport et visites).")
    page.check("#kind-free")
    page.fill("#minimum", "10")
    page.fill("#maximum", "500")
    page.fill("#vat_rate", "20")
    page.fill("#max_uses", "40")
    shot(page, "27-admin-new-payment-link")
    page.click("#create-link")
    expect(page.locator(".flash")).to_contain_text("The payment link is created")
    shot(page, "28-admin-payment-link")
    return (page.url, page.locator("#button-snippet").input_value(), page.locator("#button-script").input_value())


def _publish(website, name: str, body: str) -> str:
    (website["root"] / name).write_text(
        "<!doctype html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>École</title></head>"
        f"<body><h1>Voyage d'étude</h1><p>Participez aux frais du voyage :</p>\n{body}\n</body></html>\n",
        encoding="utf-8")
    return f"{website['base']}/{name}"


def test_a_button_on_a_static_page_opens_the_link_and_pays_it(school, website, browser, page):
    base = school["base"]
    admin_url, button, script = _create_link(page, base)
    assert button.startswith(f'<a href="{base}/payments/link/') and 'style="' in button
    site = _publish(website, "voyage.html", f"{button}\n{script}")

    visitor = browser.new_context(viewport=PHONE, locale="fr-FR", is_mobile=True, has_touch=True)
    home = visitor.new_page()
    home.set_default_timeout(15000)
    home.goto(site)
    expect(home.locator("a", has_text="Voyage d'étude à Lyon")).to_be_visible()
    shot(home, "29-site-de-l-ecole-bouton")
    with visitor.expect_page() as opened:
        home.locator("a", has_text="Voyage d'étude à Lyon").click()
    pay_page = opened.value
    pay_page.set_default_timeout(15000)
    pay_page.wait_for_load_state()
    assert pay_page.url.startswith(f"{base}/payments/link/")
    expect(pay_page.locator("h1")).to_have_text("Voyage d'étude à Lyon")
    expect(pay_page.locator("#amount-help")).to_contain_text("500,00")
    assert pay_page.evaluate("window.opener") is None  # the school's page cannot reach into ours
    pay_page.set_viewport_size(PHONE)  # a phone opens the window as a full-screen tab
    width = pay_page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the link's page scrolls sideways on a phone ({width}px)"

    pay_page.fill("#amount", "49,999")
    pay_page.fill("#name", "Zoé Dupont")
    pay_page.fill("#email", "zoe@example.org")
    pay_page.click("#pay")
    expect(pay_page.locator("#amount-error")).to_contain_text("2 décimales")
    pay_page.fill("#amount", "49,90")
    shot(pay_page, "30-lien-de-paiement-mobile")
    pay_page.click("#pay")
    pay_on_sandbox(pay_page, "4242 4242 4242 4242", "31-sandbox-lien-de-paiement")
    expect(pay_page.locator("#link-notice")).to_contain_text("Merci : votre paiement est reçu.")
    visitor.close()

    for _ in range(20):  # the webhook may land a moment after the redirect
        page.goto(admin_url)
        if page.locator("#link-payments").count():
            break
        page.wait_for_timeout(250)
    expect(page.locator("#link-payments")).to_contain_text("Zoé Dupont")
    expect(page.locator("#link-payments")).to_contain_text("49.90")
    expect(page.locator("#uses")).to_contain_text("1 of 40")
    invoice_link = page.locator("#link-payments a").first
    expect(invoice_link).not_to_have_text("")
    shot(page, "32-admin-payment-link-paid")


def test_without_javascript_the_button_alone_opens_the_page(school, website, browser, page):
    _admin_url, button, _script = _create_link(page, school["base"])
    site = _publish(website, "sans-script.html", button)
    visitor = browser.new_context(viewport=PHONE, locale="en-GB", java_script_enabled=False)
    home = visitor.new_page()
    home.goto(site)
    with visitor.expect_page() as opened:
        home.locator("a", has_text="Pay: Voyage d'étude à Lyon").click()
    link_page = opened.value
    link_page.wait_for_load_state()
    expect(link_page.locator("#pay")).to_have_text("Pay")
    expect(link_page.locator("#email")).to_be_visible()
    visitor.close()
