"""Pages a school can use on a phone, and forms that say everything at once: the administrators' pages link
past their menu, mark the page they are on and say whether Stripe is in test or live mode (never the key);
tables of records name each value for the phone's stacked cards; every form answers with one summary of all
its errors, leading to each field, which is marked invalid and described by its message. The browser tests
(tests/browser/test_pages.py) check the same pages at 375 px and 1280 px with axe-core."""
from __future__ import annotations

import html
import re

import pytest
from blinker import signal
from werkzeug.datastructures import MultiDict

from lms_stripe_plugin.accounts import settings as payment_settings

from .conftest import KEYS, as_user
from .refund_support import csrf, paid_purchase

LIVE_KEYS = {"publishable_key": "pk_live_51Abcdefghijkl", "secret_key": "sk_live_51Abcdefghijkl",
             "webhook_secrets": ["whsec_testsecret123456"]}


def _page(client, url: str, user: str = "adm") -> str:
    response = client.get(url, headers=as_user(user))
    assert response.status_code == 200, url
    return response.get_data(as_text=True)


def _summary(page: str, summary: str = "error-summary") -> list[tuple[str, str]]:
    """(target, text) of each line of the errors' summary."""
    block = re.search(rf'<div class="alert error-summary" role="alert" id="{summary}" tabindex="-1" autofocus'
                      rf'.*?</div>', page, re.S)
    assert block, "no summary of the errors"
    return [(target, html.unescape(re.sub(r"<[^>]+>", "", text)).strip())
            for target, text in re.findall(r'<a href="#([\w-]+)">(.*?)</a>', block.group(0), re.S)]


def _marked(page: str, name: str) -> bool:
    """The field is marked invalid and described by its message, shown beside it."""
    field = re.search(rf'<(?:input|textarea|select)[^>]*\bid="{re.escape(name)}"[^>]*>', page)
    return bool(field and 'aria-invalid="true"' in field.group(0)
                and re.search(rf'aria-describedby="[^"]*\b{re.escape(name)}-error\b', field.group(0))
                and re.search(rf'<p class="error" id="{re.escape(name)}-error">[^<]+</p>', page))


# -- every administrators' page: a skip link, the menu with the current page, the Stripe mode ---------------

MENU_PAGES = ["/payments/admin/settings", "/payments/admin/invoices", "/payments/admin/invoices/new",
              "/payments/admin/requests", "/payments/admin/free-enrollments", "/payments/admin/audit",
              "/payments/admin/events"]
ADMIN_PAGES = [*MENU_PAGES, "/payments/admin/invoices/totals"]


@pytest.mark.parametrize("url", MENU_PAGES)
def test_admin_pages_link_past_the_menu_and_mark_the_page_they_are_on(client, people, configured, url):
    page = _page(client, url)
    assert page.index('<a class="skip-link" href="#lms-stripe-page">') < page.index('<nav class="admin"')
    assert page.index('<nav class="admin"') < page.index('<div id="lms-stripe-page" tabindex="-1">')
    current = re.findall(r'<a href="([^"]+)" aria-current="page">', page)
    assert current == [url]


def test_an_invoice_page_marks_the_invoices_as_the_section_it_is_in(client, db, host, people, priced, configured):
    _purchase_id, invoice_id = paid_purchase(db, host)
    for url in (f"/payments/admin/invoices/{invoice_id}", f"/payments/admin/invoices/{invoice_id}/refund",
                "/payments/admin/invoices/totals"):
        page = _page(client, url)
        assert re.findall(r'<a href="([^"]+)" aria-current="(\w+)">', page) == [("/payments/admin/invoices", "true")]


@pytest.mark.parametrize("keys, mode, words", [
    (KEYS, "test", "Test mode: no real money moves"),
    (LIVE_KEYS, "live", "Live mode: real payments"),
    ({"publishable_key": KEYS["publishable_key"]}, "none", "No Stripe secret key"),
])
def test_every_admin_page_says_the_mode_of_the_secret_key_and_never_the_key(client, db, people, keys, mode, words):
    payment_settings.save(db.session, dict(keys), actor_id="adm")
    db.session.commit()
    for url in ADMIN_PAGES:
        page = _page(client, url)
        badge = re.search(r'<span id="stripe-mode" class="mode (\w+)">([^<]*)</span>', page)
        assert badge and badge.groups() == (mode, words), url
        assert "51Abcdefghijkl" not in page.replace(KEYS["publishable_key"], "").replace(LIVE_KEYS["publishable_key"], "")


def test_the_mode_speaks_french(client, host, people, configured):
    host.locale = "fr"
    assert "Mode test\u00a0: aucun argent réel ne circule" in html.unescape(_page(client, "/payments/admin/invoices"))


# -- tables on phones -----------------------------------------------------------------------------------

def test_each_value_of_a_record_table_is_named_for_the_phone(client, db, host, people, priced, configured):
    paid_purchase(db, host)
    for url, user, table in (("/payments/invoices", "u1", "stack"), ("/payments/admin/invoices", "adm", "invoices stack")):
        page = _page(client, url, user)
        body = re.search(rf'<table class="{table}">.*?<tbody>(.*?)</tbody>', page, re.S).group(1)
        cells = re.findall(r"<td([^>]*)>", body)
        named = [re.search(r'data-label="([^"]+)"', cell) for cell in cells]
        assert len(cells) >= 5 and all(named[:-1]), url  # the last cell holds the row's links
        assert "Status" in {found.group(1) for found in named if found}
        header = re.search(r"<thead>.*?</thead>", page, re.S).group(0)
        assert "<th></th>" not in header  # a column of links is named too (for screen readers)


# -- the settings form ----------------------------------------------------------------------------------

def test_the_settings_form_shows_every_error_in_a_summary_leading_to_each_field(client, people, configured):
    token = csrf(client, "/payments/admin/settings")
    response = client.post("/payments/admin/settings", headers=as_user("adm"), data={
        "csrf_token": token, "enabled": "on", "publishable_key": "pk_live_51Abcdefghijkl", "default_currency": "EURO",
        "default_vat_rate": "abc", "klarna_minimum": "beaucoup", "terms_url": "javascript:alert(1)",
        "reminder_days": "-3, 1, 700", "reminder_max": "99"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    summary = dict(_summary(page))
    fields = ["secret_key", "default_currency", "default_vat_rate", "klarna_minimum", "terms_url", "reminder_days",
              "reminder_max"]
    assert set(summary) == set(fields)
    assert summary["default_currency"].startswith("Default currency: Choose a currency")
    assert summary["secret_key"].startswith("Secret or restricted key: The publishable key and the secret key")
    assert list(summary) == fields  # in the form's order
    assert all(_marked(page, name) for name in fields)
    assert 'value="EURO"' in page and 'value="beaucoup"' in page  # what was typed, to correct it


def test_a_form_without_errors_has_no_summary_and_no_field_marked(client, people, configured):
    body = _page(client, "/payments/admin/settings").split("</style>", 1)[1]
    assert "error-summary" not in body and "aria-invalid" not in body


# -- the course form's pricing (the host's form) and its preview -------------------------------------------

def _pricing(**fields) -> MultiDict:
    base = {"paid": "on", "price": "49.90", "currency": "EUR", "vat_rate": "20", "audience": "public", "on_sale": "on"}
    base.update(fields)
    return MultiDict({f"lms_stripe-{key}": value for key, value in base.items()})


def _send(app, name, **kwargs):
    (answer,) = [value for receiver, value in signal(name).send(app, **kwargs)
                 if receiver.__module__.startswith("lms_stripe_plugin")]
    return answer


def test_a_refused_price_shows_every_error_and_what_was_typed(app, db, people, lessons, configured):
    form = _pricing(price="abc", vat_rate="150", audience="everyone")
    with app.test_request_context(headers=as_user("adm")):
        errors = _send(app, "lms.course.settings_saved", course=lessons["c1"], form=form)
        fragment = str(_send(app, "lms.course.settings_form", course=lessons["c1"], form=form,
                             errors={"title": "The host's own error", **errors}))
    assert list(errors) == ["lms_stripe-price", "lms_stripe-vat_rate", "lms_stripe-audience"]  # the form's order
    assert [target for target, _text in _summary(fragment, "lms-stripe-pricing-errors")] == list(errors)
    summary = dict(_summary(fragment, "lms-stripe-pricing-errors"))
    assert summary["lms_stripe-vat_rate"].startswith("VAT rate (%): Enter a VAT rate between 0 and 100")
    assert summary["lms_stripe-price"].startswith("Price incl. VAT: Write the amount like")
    assert all(_marked(fragment, name) for name in errors)
    assert 'value="abc"' in fragment and 'value="150"' in fragment


def test_after_a_refused_save_the_breakdown_is_of_the_typed_price_not_the_stored_one(app, db, people, priced,
                                                                                      configured):
    form = _pricing(price="100.00", on_sale="perhaps")  # stored: 49.90; the box is refused
    with app.test_request_context(headers=as_user("adm")):
        errors = _send(app, "lms.course.settings_saved", course=priced["c1"], form=form)
        fragment = re.sub(r"\s+", " ", str(_send(app, "lms.course.settings_form", course=priced["c1"], form=form,
                                                 errors=errors)))
    assert list(errors) == ["lms_stripe-on_sale"]
    assert "€100.00" in fragment and "€83.33" in fragment  # gross and net of what was typed
    assert "€49.90" not in fragment


@pytest.mark.parametrize("query, fields, named", [
    ({"price": "49.90", "currency": "EUR", "vat_rate": "150"}, ["vat_rate"],
     ["VAT rate (%): Enter a VAT rate between 0 and 100"]),
    ({"price": "49.90", "currency": "EURO", "vat_rate": "20"}, ["currency"],
     ["Currency: Choose a currency Stripe supports"]),
    ({"price": "", "currency": "EUR", "vat_rate": "abc"}, ["price", "vat_rate"],
     ["Price incl. VAT: Required for a paid course.", "VAT rate (%): Enter a VAT rate"]),
])
def test_the_preview_names_each_field_at_fault(client, people, query, fields, named):
    """A bad VAT rate or currency is named as such, not as a price to enter; the page marks those fields."""
    response = client.get("/payments/admin/pricing-preview", query_string=query, headers=as_user("adm"))
    assert response.status_code == 400
    error = response.json["error"]
    assert list(error["fields"]) == fields and error["field"] == fields[0]
    assert len(error["named"]) == len(named)
    assert all(shown.startswith(start) for shown, start in zip(error["named"], named))


def test_the_preview_names_fields_in_french(client, host, people):
    host.locale = "fr"
    response = client.get("/payments/admin/pricing-preview", query_string={"price": "49,90", "currency": "EUR",
                                                                           "vat_rate": "150"}, headers=as_user("adm"))
    assert response.json["error"]["named"][0].startswith("Taux de TVA (%)\u00a0: ")


# -- refunds and cancellations --------------------------------------------------------------------------

def test_a_refused_refund_shows_every_error_at_once_and_keeps_what_was_typed(client, db, host, people, priced,
                                                                            configured, stripe_http):
    _purchase_id, invoice_id = paid_purchase(db, host)
    url = f"/payments/admin/invoices/{invoice_id}/refund"
    response = client.post(url, headers=as_user("adm"), data={
        "csrf_token": csrf(client, url), "amount": "beaucoup", "reason": "x" * 501, "revoke_access": "on"})
    assert response.status_code == 400 and len(stripe_http.calls) == 0
    page = response.get_data(as_text=True)
    assert [target for target, _text in _summary(page)] == ["amount", "reason"]  # in the form's order
    assert _marked(page, "amount") and _marked(page, "reason")
    assert 'value="beaucoup"' in page and "x" * 501 in page
    assert '<input type="checkbox" name="revoke_access" checked>' in page


def test_a_refused_cancellation_leads_to_its_reason(client, db, host, people, priced, configured, stripe_http):
    _purchase_id, invoice_id = paid_purchase(db, host)
    url = f"/payments/admin/invoices/{invoice_id}/cancel"
    response = client.post(url, headers=as_user("adm"), data={"csrf_token": csrf(client, url), "reason": "y" * 501})
    assert response.status_code == 409 and len(stripe_http.calls) == 0
    page = response.get_data(as_text=True)
    assert _summary(page) == [("reason", "Reason (kept in the history and on the credit note): At most 500 characters.")]
    assert _marked(page, "reason") and "y" * 501 in page
