"""After paying, a receipt: the thank-you page shows what was paid, the discount, the invoice's number and its
PDF (or says it is on its way). Before buying: the Buy button shows the price, and "Sign in to buy" leads
to the host's sign-in page (the optional `Host.sign_in_url`, or LMS_STRIPE_SIGN_IN_URL), back to the
course after."""
import re

import pytest
from blinker import signal

from lms_stripe_plugin.host import OPTIONAL_METHODS, REQUIRED_METHODS

from .conftest import as_user
from .refund_support import text
from .stripe_stubs import invoice, open_purchase, paid_session
from .test_fulfillment import StripeSession, _success


@pytest.fixture
def purchase(db, people, priced, configured):
    return open_purchase(db)


# -- the receipt ------------------------------------------------------------------------------------------------

def test_the_thank_you_page_is_a_receipt_with_the_discount_and_the_invoice(client, db, purchase, stripe_http):
    paid = paid_session(purchase, amount_total=4491,
                        invoice=invoice(purchase.id, total=4491, tax=749, number="ABC-0042"))
    StripeSession(stripe_http, paid)

    page = _success(client, paid["id"])

    shown, body = text(page), page.get_data(as_text=True)
    assert "Thank you, your payment is confirmed" in shown
    assert "Price €49.90 Discount -€4.99 Amount paid €44.91 incl. VAT Invoice ABC-0042 · PDF" in shown
    [pdf_link] = re.findall(r'href="(/payments/invoices/\d+/pdf)"', body)
    assert client.get(pdf_link, headers=as_user("u1")).headers["Location"] == \
        "https://pay.stripe.com/invoice/in_test_1/pdf"
    db.session.refresh(purchase)
    assert (purchase.amount, purchase.amount_discount, purchase.amount_paid) == (4990, 499, 4491)


def test_without_a_discount_the_receipt_shows_what_was_paid(client, purchase, stripe_http):
    paid = paid_session(purchase)
    StripeSession(stripe_http, paid)
    shown = text(_success(client, paid["id"]))
    assert "Amount paid €49.90 incl. VAT Invoice ABC-0001 · PDF" in shown and "Discount" not in shown


def test_an_invoice_stripe_has_not_issued_yet_is_announced_in_my_invoices(client, purchase, stripe_http):
    paid = paid_session(purchase, invoice="in_test_1")  # not finalized: Stripe gives its id only
    StripeSession(stripe_http, paid)
    shown = text(_success(client, paid["id"]))
    assert "Invoice Stripe is issuing your invoice: it will appear in My invoices in a moment." in shown


def test_the_receipt_in_french(client, host, purchase, stripe_http):
    host.locale = "fr"
    paid = paid_session(purchase, amount_total=4491, invoice=invoice(purchase.id, total=4491, number="ABC-0042"))
    StripeSession(stripe_http, paid)
    shown = text(_success(client, paid["id"]))
    assert "Remise -4,99 € Montant payé 44,91 € TTC Facture ABC-0042 · PDF" in shown  # spaces collapsed


# -- Buy shows the price -----------------------------------------------------------------------------------------

def _detail(app, course, user):
    with app.test_request_context():
        [answer] = [value for _receiver, value in signal("lms.course.detail_rendering").send(app, course=course,
                                                                                            user=user) if value]
        return str(answer)


def test_the_buy_button_shows_the_price(app, host, people, priced, configured):
    assert ">Buy for €49.90</button>" in _detail(app, priced["c1"], people["u1"])
    host.locale = "fr"
    assert ">Acheter pour 49,90\xa0€</button>" in _detail(app, priced["c1"], people["u1"])


# -- Sign in to buy -------------------------------------------------------------------------------------------

def test_sign_in_url_is_an_optional_host_method():
    assert "sign_in_url" in OPTIONAL_METHODS and "sign_in_url" not in REQUIRED_METHODS


def test_without_a_sign_in_page_sign_in_to_buy_is_said_without_a_link(app, priced, configured):
    fragment = _detail(app, priced["c1"], None)
    assert "Sign in to buy this course." in fragment and "<a" not in fragment


def test_sign_in_to_buy_leads_to_the_configured_page_back_to_the_course(app, priced, configured):
    app.config["LMS_STRIPE_SIGN_IN_URL"] = "/login?source=lms"
    fragment = _detail(app, priced["c1"], None)
    assert 'href="/login?source=lms&amp;next=%2Flessons%2Fc1"' in fragment


def test_the_hosts_sign_in_url_wins(app, host, monkeypatch, priced, configured):
    app.config["LMS_STRIPE_SIGN_IN_URL"] = "/login"
    monkeypatch.setattr(host, "sign_in_url", lambda next_url: f"https://sso.example/auth?back={next_url}",
                        raising=False)
    assert 'href="https://sso.example/auth?back=/lessons/c1"' in _detail(app, priced["c1"], None)


@pytest.mark.parametrize("url", ["javascript:alert(1)", "//evil.example/login", "data:text/html,x", "", "  "])
def test_a_sign_in_address_that_is_not_a_web_page_gives_no_link(app, host, monkeypatch, priced, configured, url):
    app.config["LMS_STRIPE_SIGN_IN_URL"] = url
    assert "<a" not in _detail(app, priced["c1"], None)
    monkeypatch.setattr(host, "sign_in_url", lambda next_url: url, raising=False)
    assert "<a" not in _detail(app, priced["c1"], None)


def test_a_page_that_needs_a_signed_in_visitor_offers_to_sign_in_and_come_back(app, client, people):
    app.config["LMS_STRIPE_SIGN_IN_URL"] = "/login"
    page = client.get("/payments/invoices?page=2")
    assert page.status_code == 401
    assert 'id="sign-in" href="/login?next=%2Fpayments%2Finvoices%3Fpage%3D2"' in page.get_data(as_text=True)
    assert client.get("/payments/invoices", headers={"Accept": "application/json"}).json["error"]["status"] == 401
