"""Holes an attacker, an integrator or Stripe itself would find, each closed and kept closed: the Host
header never reaches Stripe, spreadsheet formulas never run from an export, a withdrawn offer cannot be
paid at its old terms, money pages say what happened, and nobody enrolls himself for free."""
import csv
import io
import re

import pytest
from blinker import signal
from sqlalchemy import select

from lms_stripe_plugin.billing.listing import safe_cell
from lms_stripe_plugin.core.models import AuditEntry, Purchase
from lms_stripe_plugin.shop.offers import save_offer

from .conftest import STRIPE, as_user, form_body
from .refund_support import csrf, paid_purchase, text
from .stripe_stubs import checkout_session, stub_retrieve_session, stub_tax_rate
from .test_checkout import _buy, _serve_sessions, _session_calls, stripe_ok  # noqa: F401 (a fixture)


@pytest.fixture
def token(client, people, priced, configured):
    page = client.get("/payments/courses/c1", headers=as_user("u1")).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


# -- the public URL -------------------------------------------------------------------------------------

@pytest.mark.parametrize("host_header", ["evil.example", "lms.test", "lms.test:8443"])
def test_the_addresses_given_to_stripe_come_from_the_public_url_not_the_host_header(app, client, people, priced,
                                                                                   configured, stripe_http,
                                                                                   host_header):
    app.config.update(LMS_STRIPE_PUBLIC_URL="https://learn.example.org", SERVER_NAME=None)
    stub_tax_rate(stripe_http)
    _serve_sessions(stripe_http)
    base = f"http://{host_header}"
    page = client.get("/payments/courses/c1", base_url=base, headers=as_user("u1")).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/payments/checkout/c1", base_url=base, data={"csrf_token": token},
                           headers=as_user("u1"))
    assert response.status_code == 303
    sent = form_body(_session_calls(stripe_http)[0].request)
    assert sent["success_url"] == "https://learn.example.org/payments/checkout/success?session_id={CHECKOUT_SESSION_ID}"
    assert sent["cancel_url"].startswith("https://learn.example.org/payments/checkout/cancel/")


def test_a_public_url_with_a_path_names_where_the_lms_is_mounted(app, client, token, stripe_http):
    app.config["LMS_STRIPE_PUBLIC_URL"] = "https://school.example.org/lms/"
    stub_tax_rate(stripe_http)
    _serve_sessions(stripe_http)
    assert _buy(client, token).status_code == 303
    sent = form_body(_session_calls(stripe_http)[0].request)
    assert sent["success_url"].startswith("https://school.example.org/lms/payments/checkout/success?")


def test_without_a_public_url_or_server_name_no_address_is_built_from_the_request(app, client, people, priced,
                                                                                configured, stripe_http):
    app.config["SERVER_NAME"] = None
    page = client.get("/payments/courses/c1", base_url="http://evil.example", headers=as_user("u1"))
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    response = client.post("/payments/checkout/c1", base_url="http://evil.example", data={"csrf_token": token},
                           headers=as_user("u1"))
    assert response.status_code == 503 and "LMS_STRIPE_PUBLIC_URL" in text(response)
    assert not _session_calls(stripe_http)


# -- CSV formulas --------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["=HYPERLINK(\"http://x\")", " =HYPERLINK(1)", "\n=HYPERLINK(1)", "\t=1+1",
                                  "\r@SUM(A1)", "  +1", "\x00-2+3", "\u3000=1", "＝1+1", "-1+A1"])
def test_a_text_cell_that_a_spreadsheet_would_run_as_a_formula_is_neutralised(cell):
    assert safe_cell(cell).startswith("'")


@pytest.mark.parametrize("cell", ["49.90", "-5.00", "Léa Martin", "SBX-0001", "lea@example.com", ""])
def test_amounts_and_plain_text_are_left_as_they_are(cell):
    assert safe_cell(cell) == cell


def test_the_invoice_export_neutralises_a_learners_name_that_holds_a_formula(client, db, host, people, priced,
                                                                            configured):
    people["u1"].name = " =HYPERLINK(\"http://evil.example\",\"x\")"
    db.session.commit()
    paid_purchase(db, host)
    rows = list(csv.reader(io.StringIO(client.get("/payments/admin/invoices.csv", headers=as_user("adm"))
                                       .get_data(as_text=True))))
    name = rows[1][rows[0].index("Learner")]
    assert name.startswith("'") and "HYPERLINK" in name


# -- a withdrawn offer -------------------------------------------------------------------------------

@pytest.mark.parametrize("change", [{"on_sale": False}, {"amount": 5990}, {"amount": 3990},
                                    {"audience": "internal"}, {"is_paid": False}])
def test_changing_how_a_course_is_sold_expires_its_open_checkouts_at_stripe(app, client, db, token, stripe_http,
                                                                           change):
    stub_tax_rate(stripe_http)
    _serve_sessions(stripe_http)
    assert _buy(client, token).status_code == 303
    (purchase,) = db.session.scalars(select(Purchase)).all()
    expire_url = f"{STRIPE}/v1/checkout/sessions/{purchase.stripe_checkout_session_id}/expire"
    stripe_http.post(expire_url, json=checkout_session(purchase.id, status="expired"))
    terms = {"is_paid": True, "amount": 4990, "currency": "EUR", "vat_rate": 2000, "audience": "public",
             "on_sale": True, **change}

    with app.test_request_context():
        save_offer(db.session, "c1", terms, actor_id="adm")
        assert not [c for c in stripe_http.calls if c.request.url == expire_url]  # not before the commit
        db.session.commit()

    assert [c.request.method for c in stripe_http.calls if c.request.url == expire_url] == ["POST"]
    db.session.expire_all()
    assert db.session.get(Purchase, purchase.id).status == "expired"
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "checkout_withdrawn")) is not None


def test_saving_the_same_terms_withdraws_nothing(app, client, db, token, stripe_ok):
    assert _buy(client, token).status_code == 303
    with app.test_request_context():
        save_offer(db.session, "c1", {"is_paid": True, "amount": 4990, "currency": "EUR", "vat_rate": 2000,
                                      "audience": "public", "on_sale": True}, actor_id="adm")
        db.session.commit()
    assert db.session.scalar(select(Purchase.status)) == "open"


def test_a_withdrawn_checkout_paid_anyway_is_honoured_at_its_price_and_shown(app, client, db, host, token,
                                                                             stripe_http):
    stub_tax_rate(stripe_http)
    _serve_sessions(stripe_http)
    assert _buy(client, token).status_code == 303
    (purchase,) = db.session.scalars(select(Purchase)).all()
    session_id = purchase.stripe_checkout_session_id
    stripe_http.post(f"{STRIPE}/v1/checkout/sessions/{session_id}/expire", status=400,
                     json={"error": {"type": "invalid_request_error", "message": "Only open sessions expire."}})
    with app.test_request_context():
        save_offer(db.session, "c1", {"is_paid": True, "amount": 5990, "currency": "EUR", "vat_rate": 2000,
                                      "audience": "public", "on_sale": True}, actor_id="adm")
        db.session.commit()
    paid = checkout_session(purchase.id, user_id="u1", course_id="c1", status="complete", payment_status="paid")
    stub_retrieve_session(stripe_http, paid)

    page = client.get(f"/payments/checkout/success?session_id={session_id}", headers=as_user("u1"))

    assert page.status_code == 200
    db.session.expire_all()
    purchase = db.session.get(Purchase, purchase.id)
    assert (purchase.status, purchase.amount) == ("paid", 4990)
    actions = [e.action for e in db.session.scalars(select(AuditEntry).where(AuditEntry.purchase_id == purchase.id))]
    assert "paid_after_withdrawal" in actions


# -- the words on money pages ----------------------------------------------------------------------------

def test_the_checkout_cancel_page_of_a_paid_purchase_does_not_say_nothing_was_charged(client, db, host, people,
                                                                                     priced, configured):
    purchase_id, _invoice_id = paid_purchase(db, host)
    page = text(client.get(f"/payments/checkout/cancel/{purchase_id}", headers=as_user("u1")))
    assert "not been charged" not in page and "You have paid" in page


def test_the_cancel_page_of_an_invoice_already_cancelled_offers_nothing_to_confirm(client, db, host, people,
                                                                                  priced, configured):
    _purchase_id, invoice_id = paid_purchase(db, host)
    db.session.execute(__import__("sqlalchemy").text(
        "UPDATE lms_stripe_invoices SET status = 'cancelled', amount_refunded = gross"))
    db.session.commit()
    page = text(client.get(f"/payments/admin/invoices/{invoice_id}/cancel", headers=as_user("adm")))
    assert "already cancelled" in page and "Confirm the cancellation" not in page


# -- free enrollment of oneself ----------------------------------------------------------------------------

@pytest.mark.parametrize("actor, allowed", [("mgr", False), ("adm", True)])
def test_only_a_payments_administrator_enrolls_himself_for_free(app, db, priced, people, actor, allowed):
    with app.test_request_context(headers=as_user(actor)):
        (decision,) = [value for receiver, value in signal("lms.enrollment.requested").send(
            app, course=priced["c1"], user=people[actor], actor=people[actor], source="backoffice")
            if receiver.__module__.startswith("lms_stripe_plugin")]
    assert decision.allowed is allowed
    if not allowed:
        assert decision.reason == "not_allowed" and "yourself" in decision.message


# -- escaping ------------------------------------------------------------------------------------------

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.mark.parametrize("url, user", [("/payments/invoices", "u1"), ("/payments/admin/invoices", "adm"),
                                       ("/payments/admin/invoices/{invoice}", "adm"),
                                       ("/payments/admin/invoices/{invoice}/cancel", "adm"),
                                       ("/payments/checkout/cancel/{purchase}", "u1")])
def test_names_and_titles_are_escaped_on_every_page(client, db, host, people, priced, configured, url, user):
    people["u1"].name = HOSTILE
    priced["c1"].title = HOSTILE
    db.session.commit()
    purchase_id, invoice_id = paid_purchase(db, host)
    page = client.get(url.format(invoice=invoice_id, purchase=purchase_id), headers=as_user(user))
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<script>alert" not in body and "<img src=x" not in body
    assert "&lt;script&gt;" in body
