"""Hostile input: whatever a browser, a learner, an administrator or "Stripe" sends, the plugin answers
2xx/3xx/4xx with a message, never 5xx; it writes nothing when it refuses; it calls Stripe only for
accepted input; it never redirects off-site; and every plugin page carries its security headers.

Property-based (hypothesis). The database is reset per test, not per example: each example either leaves
the state as it found it (refused input) or is checked against invariants that hold across examples.
Every request or signal sent with hostile input counts in ``INPUTS``, printed at the end of the module
("inputs tried").
"""
from __future__ import annotations

import io
import itertools
import json
import re
import time
from contextlib import contextmanager
from datetime import timedelta
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import responses
from blinker import signal
from flask import got_request_exception, request as flask_request
from hypothesis import HealthCheck, Phase, assume, given, settings, strategies as st
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from lms_stripe_plugin.core.models import (AuditEntry, CourseOffer, Customer, Event, Invoice, PaymentAttempt,
                                           PaymentLink, Purchase, Refund, Settings, utcnow)
from lms_stripe_plugin.money import MoneyError, parse_money
from lms_stripe_plugin.testing import sign_payload

from .conftest import KEYS, STRIPE, as_user, form_body
from .link_support import make_link
from .minimal_host import Seat
from .refund_support import paid_purchase
from .stripe_stubs import checkout_session, stub_customers

SECRET = KEYS["webhook_secrets"][0]
HOST = "lms.test"  # SERVER_NAME of the minimal host
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"}
XSS = "<script>alert(1)</script>"
XSS_NO_SLASH = "<img src=x onerror=alert(1)>"  # fits in one path segment

#: Inputs tried in this module (requests and signals carrying hostile input), printed at the end.
INPUTS = {"count": 0}

# Derandomized, so that every run tries the same inputs (and reports the same count); no shrinking: a failure
# is reported as first found (shrinking slow HTTP examples costs minutes); no example database in the repo.
FUZZ = settings(max_examples=30, deadline=None, database=None, derandomize=True,
                phases=(Phase.explicit, Phase.generate),
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.filter_too_much, HealthCheck.data_too_large])


#: Exceptions the app raised while answering (a 500 names its cause in the failure message).
APP_ERRORS: list[BaseException] = []


@pytest.fixture(autouse=True)
def _record_app_exceptions():
    def record(sender, exception, **extra):
        APP_ERRORS.append(exception)

    got_request_exception.connect(record)
    yield
    got_request_exception.disconnect(record)
    APP_ERRORS.clear()


@pytest.fixture(scope="module", autouse=True)
def _report_inputs_tried(request):
    yield
    line = f"\ntests/test_hostile_input.py: {INPUTS['count']} inputs tried"
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            print(line)
    else:  # pragma: no cover
        print(line)


# -- strategies ------------------------------------------------------------------------------------

#: Known-bad strings, tried first and mixed into every random draw.
HOSTILE = [
    "", " ", "\x00", "a\x00b", "cs_\x00", "\r\n", "\t\x0b\x0c", "\x1b[31m", "\u202e\u200b\ufeff", "' OR '1'='1",
    "'; DROP TABLE lms_stripe_purchases; --", XSS, XSS_NO_SLASH, "{{7*7}}", "${7*7}", "%s%n%x", "../../etc/passwd",
    "http://[", "https://[::1", "https://evil.example/", "//evil.example", "javascript:alert(1)",
    "1" * 32, "9" * 40, "-1", "0", "-0", "1e999", "1E-999999", "NaN", "sNaN", "Infinity", "0x10",
    "١٢٣", "４９,９０", "49,90", "49.90", "1 234,50", "1.234.567,89", "²", "€", "\U0001F4B8" * 3,
    "None", "null", "true", "[]", "{}", "x" * 3000,
]
text = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(max_size=40),
    st.integers(-(10 ** 40), 10 ** 40).map(str),
    st.builds(lambda c, n: c * n, st.characters(exclude_categories=("Cs",)), st.sampled_from([64, 300, 2100])),
)
#: A field's value: a string, or the same field sent several times.
value = st.one_of(text, text, text, st.lists(text, min_size=2, max_size=3))
#: Names that collide with keyword arguments of Flask's url_for, or look like ours.
RESERVED_NAMES = ["endpoint", "_method", "_external", "_scheme", "_anchor", "values", "csrf_token", "after",
                  "next", "url"]


def fields(names, max_size=8):
    key = st.one_of(st.sampled_from(list(names) + RESERVED_NAMES), st.text(max_size=16))
    return st.dictionaries(key, value, max_size=max_size)


path_segment = st.one_of(
    st.sampled_from(["\x00", "a\x00b", "..", ".", "%", "c1 ", "C1", "c1\n", XSS_NO_SLASH, "x" * 65, "x" * 5000,
                     "' OR 1=1", "١", "\u202e"]),
    st.text(st.characters(exclude_characters="/", exclude_categories=("Cs",)), min_size=1, max_size=70),
)
big_int = st.one_of(st.integers(0, 50), st.integers(0, 2 ** 80), st.sampled_from([2 ** 31, 2 ** 63, 10 ** 30]))
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12)


# -- helpers ---------------------------------------------------------------------------------------

def _token(client) -> str:
    """A valid CSRF token for this client's session, taken from the settings page's form."""
    page = client.get("/payments/admin/settings", headers=as_user("adm")).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _alert(body: str) -> str | None:
    """The text of the page's first role=alert element (a message, or a summary of a form's errors)."""
    found = re.search(r'role="alert"[^>]*>(.*?)</(?:p|div)>', body, re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split()) or None if found else None


def refused(response) -> bool:
    return 400 <= response.status_code < 500


def check_answer(response, *, headers=True):
    """No 5xx; a 4xx carries a message; security headers; nothing reflected unescaped."""
    body = response.get_data(as_text=True)
    asked = f"{response.request.method} {response.request.url[:300]}"
    if response.status_code >= 500:
        cause = f"{type(APP_ERRORS[-1]).__name__}: {APP_ERRORS[-1]}" if APP_ERRORS else _alert(body) or body[-300:]
        pytest.fail(f"{asked} answered {response.status_code} ({str(cause)[:500]})", pytrace=False)
    if 400 <= response.status_code < 500:
        if response.is_json:
            message = (response.get_json(silent=True) or {}).get("error", {}).get("message")
            assert isinstance(message, str) and message.strip(), f"{asked}: {body[:300]}"
        else:
            assert _alert(body), f"{asked} answered {response.status_code} without a role=alert message: {body[:300]}"
    if headers:
        for name, expected in SECURITY_HEADERS.items():
            assert response.headers.get(name) == expected, f"{asked} ({response.status_code}) without {name}"
        assert response.headers.get("Referrer-Policy"), f"{asked} ({response.status_code}) without Referrer-Policy"
    if response.mimetype == "text/html":
        assert XSS not in body and XSS_NO_SLASH not in body, "user input reflected unescaped"
    location = response.headers.get("Location")
    if location:
        assert urlsplit(location).netloc in ("", HOST) or location.startswith(
            ("https://checkout.stripe.com/", "https://pay.stripe.com/")), location


def snapshot(db, *models) -> dict:
    """Every row of these tables, column by column, as the database has them now."""
    db.session.expire_all()
    out = {}
    for model in models:
        columns = [c.key for c in model.__table__.columns]
        out[model.__tablename__] = sorted(
            (tuple(repr(getattr(row, c)) for c in columns) for row in db.session.scalars(select(model))))
    out["host_seats"] = sorted((s.person_id, s.lesson_id) for s in db.session.scalars(select(Seat)))
    return out


STATE_MODELS = (Settings, CourseOffer, Purchase, Refund, Invoice, AuditEntry, Event)


@contextmanager
def one_input(db, count: int = 1):
    """One hypothesis example: counted, and the session left clean for the next one (a failed request on
    PostgreSQL would otherwise leave the shared test session in an aborted transaction)."""
    INPUTS["count"] += count
    try:
        yield
    finally:
        db.session.rollback()
        db.session.expire_all()


def first(v):
    return v[0] if isinstance(v, list) else v


def send_signal(app, name, **kwargs):
    answers = [v for r, v in signal(name).send(app, **kwargs) if r.__module__.startswith("lms_stripe_plugin")]
    assert len(answers) == 1, answers
    return answers[0]


@pytest.fixture
def token(client, people):
    return _token(client)


@pytest.fixture
def invoices(db, host, people, priced, configured):
    """Two paid purchases with invoices: u1's (c1) and u2's (c2)."""
    ids = {"u1": paid_purchase(db, host)}
    ids["u2"] = paid_purchase(db, host, user_id="u2", course_id="c2", amount=12900, vat=2150,
                              payment_intent="pi_test_2", invoice_id="in_test_2", number="ABC-0002")
    host.calls.clear()
    return ids  # {user: (purchase id, invoice id)}


def _no_stripe(stripe_http):
    assert [c.request.url for c in stripe_http.calls] == []


# == 1. Every form and JSON endpoint, any input ========================================================

@pytest.mark.parametrize("user", ["adm", "u1"])
@FUZZ
@given(form=fields(("enabled", "publishable_key", "secret_key", "webhook_secrets", "default_currency",
                    "default_vat_rate", "vouchers_enabled", "wallets_enabled", "klarna_enabled", "klarna_minimum",
                    "sepa_debit_enabled", "automatic_tax", "terms_url", "seller_legal_name", "seller_address",
                    "seller_siret", "seller_vat_number", "seller_legal_form", "late_payment_text", "business_buyers")),
       base=st.booleans(), as_json=st.booleans())
def test_settings_post_any_input(client, db, stripe_http, configured, token, user, form, base, as_json):
    data = {**({"default_currency": "EUR", "default_vat_rate": "20"} if base else {}), **form}
    with one_input(db):
        before = snapshot(db, Settings, AuditEntry)
        if as_json:
            response = client.post("/payments/admin/settings", json=data,
                                   headers={**as_user(user), "X-CSRFToken": token})
        else:
            response = client.post("/payments/admin/settings", data={**data, "csrf_token": token},
                                   headers=as_user(user))
        check_answer(response)
        if response.status_code == 302:
            assert user == "adm"
            client.get("/payments/admin/settings", headers=as_user("adm"))  # consume the flash
        else:
            assert refused(response), response.status_code
            assert snapshot(db, Settings, AuditEntry) == before, "refused settings POST changed the database"
    _no_stripe(stripe_http)


@pytest.mark.parametrize("user", ["adm", "u1"])
@FUZZ
@given(args=fields(("price", "currency", "vat_rate")), accept_json=st.booleans())
def test_pricing_preview_any_query(client, db, people, stripe_http, user, args, accept_json):
    headers = {**as_user(user), **({"Accept": "application/json"} if accept_json else {})}
    with one_input(db):
        response = client.get("/payments/admin/pricing-preview", query_string=args, headers=headers)
        check_answer(response)
        if user != "adm":
            assert refused(response)
        elif response.status_code == 200:
            result = response.get_json()
            assert result["net"] + result["vat"] == result["gross"] > 0
    _no_stripe(stripe_http)


def _pricing_form(draw_fields, base):
    form = MultiDict()
    if base:
        for name, v in {"paid": "on", "price": "49,90", "currency": "EUR", "vat_rate": "20", "audience": "public",
                        "on_sale": "on"}.items():
            form.setlist(f"lms_stripe-{name}", [v])
    for name, v in draw_fields.items():
        form.setlist(name, v if isinstance(v, list) else [v])
    return form


@FUZZ
@given(form=fields([f"lms_stripe-{n}" for n in ("paid", "price", "currency", "vat_rate", "audience", "on_sale",
                                                 "payment_plan", "deposit_kind", "deposit_value", "balance_due",
                                                 "balance_due_date", "balance_due_days", "deposit_access")]),
       base=st.booleans())
def test_course_pricing_signal_any_form(app, db, people, priced, stripe_http, form, base):
    """``lms.course.settings_saved``: errors (and nothing written) or the offer stored; never an exception."""
    with one_input(db):
        before = snapshot(db, CourseOffer, AuditEntry)
        with app.test_request_context(headers=as_user("adm")):
            answer = send_signal(app, "lms.course.settings_saved", course=priced["c1"],
                                 form=_pricing_form(form, base))
        if answer is not None:
            assert isinstance(answer, dict) and answer
            for key, message in answer.items():
                assert key.startswith("lms_stripe-") and isinstance(message, str) and message.strip()
            assert snapshot(db, CourseOffer, AuditEntry) == before, "refused pricing changed the database"
        else:
            offer = db.session.scalar(select(CourseOffer).where(CourseOffer.course_id == "c1"))
            assert not offer.is_paid or (offer.amount > 0 and offer.currency and
                                         offer.audience in ("internal", "partner", "public"))
            assert offer.payment_plan == "full" or 0 < (offer.deposit_amount or 0) < offer.amount or \
                0 < (offer.deposit_percent or 0) < 10000
    _no_stripe(stripe_http)


@FUZZ
@given(args=fields(("price", "price_max")))
def test_catalog_filter_signals_any_query(app, db, people, priced, stripe_http, args):
    """``lms.catalog.filtering`` (args) and ``lms.catalog.rendering`` (the request's query string)."""
    courses = list(priced.values())
    with one_input(db, 2):
        with app.test_request_context(query_string=args, headers=as_user("u1")):
            kept = send_signal(app, "lms.catalog.filtering", courses=courses, args=flask_request.args)
            deco = send_signal(app, "lms.catalog.rendering", courses=courses, user=people["u1"])
        assert [c for c in courses if c in kept] == list(kept)
        assert XSS not in str(deco.filter_widget)
    _no_stripe(stripe_http)


@pytest.mark.parametrize("user", ["adm", "u1"])
@FUZZ
@given(course_id=path_segment, form=fields(("course_id", "price", "amount", "currency", "unit_amount")),
       as_json=st.booleans())
def test_checkout_any_course_id(client, db, priced, configured, stripe_http, token, user, course_id, form, as_json):
    assume(course_id not in priced)  # a known course would (rightly) reach Stripe
    url = "/payments/checkout/" + quote(course_id, safe="")
    with one_input(db):
        before = snapshot(db, Purchase, AuditEntry)
        if as_json:
            response = client.post(url, json=form, headers={**as_user(user), "X-CSRFToken": token})
        else:
            response = client.post(url, data={**form, "csrf_token": token}, headers=as_user(user))
        check_answer(response)
        assert refused(response), response.status_code
        assert snapshot(db, Purchase, AuditEntry) == before
    _no_stripe(stripe_http)


@pytest.mark.parametrize("user", ["adm", "u1"])
@FUZZ
@given(course_id=path_segment, args=fields(("next", "url")))
def test_course_payment_page_any_course_id(client, db, people, priced, configured, stripe_http, user, course_id, args):
    with one_input(db):
        response = client.get("/payments/courses/" + quote(course_id, safe=""), query_string=args,
                              headers=as_user(user))
        check_answer(response)
        assert response.status_code == 200 or refused(response)
    _no_stripe(stripe_http)


@pytest.mark.parametrize("user", ["adm", "u1"])
@FUZZ
@given(session_id=st.one_of(text, text.map(lambda s: "cs_" + s)), args=fields(("next", "url")))
def test_checkout_success_any_session_id(client, db, invoices, stripe_http, user, session_id, args):
    with one_input(db):
        before = snapshot(db, *STATE_MODELS)
        response = client.get("/payments/checkout/success", query_string={**args, "session_id": session_id},
                              headers=as_user(user))
        check_answer(response)
        assert refused(response) and "Location" not in response.headers
        assert snapshot(db, *STATE_MODELS) == before
    _no_stripe(stripe_http)


@pytest.mark.parametrize("user", ["adm", "u1"])
@FUZZ
@given(purchase_id=big_int, args=fields(("next", "url")))
def test_checkout_cancel_any_purchase_id(client, db, invoices, stripe_http, user, purchase_id, args):
    own = invoices["u1"][0] if user == "u1" else None
    with one_input(db):
        response = client.get(f"/payments/checkout/cancel/{purchase_id}", query_string=args, headers=as_user(user))
        check_answer(response)
        assert response.status_code == 200 or refused(response)
        if purchase_id != own:
            assert refused(response)
        assert "Location" not in response.headers
    _no_stripe(stripe_http)


@pytest.mark.parametrize("user", ["adm", "u1"])
@FUZZ
@given(invoice_id=big_int, args=fields(("next", "url")))
def test_invoice_pdf_any_id(client, db, invoices, stripe_http, user, invoice_id, args):
    own = {inv for _p, inv in invoices.values()} if user == "adm" else {invoices["u1"][1]}
    with one_input(db):
        response = client.get(f"/payments/invoices/{invoice_id}/pdf", query_string=args, headers=as_user(user))
        check_answer(response)
        if invoice_id in own and not refused(response):  # (refused only for hostile extra parameters)
            assert response.status_code == 302
            assert response.headers["Location"].startswith("https://pay.stripe.com/invoice/")
        else:
            assert refused(response)
    _no_stripe(stripe_http)


INVOICE_FILTERS = ("status", "course", "learner", "from", "to", "q", "after")
AUDIT_FILTERS = ("action", "learner", "actor", "course", "from", "to", "after")


@pytest.mark.parametrize("user", ["adm", "u1"])
@pytest.mark.parametrize("url, names", [("/payments/admin/invoices", INVOICE_FILTERS),
                                        ("/payments/admin/invoices.csv", INVOICE_FILTERS),
                                        ("/payments/admin/audit", AUDIT_FILTERS)])
@FUZZ
@given(args=fields(INVOICE_FILTERS + AUDIT_FILTERS),
       cursor=st.one_of(st.none(), text, st.builds(lambda d, i: f"{d}_{i}", st.sampled_from(
           ["2026-01-01T10:00:00+00:00", "2026-01-01", "9999-12-31T23:59:59", "0001-01-01", ""]), big_int)))
def test_admin_lists_any_filters(app, client, db, invoices, stripe_http, user, url, names, args, cursor):
    app.config["LMS_STRIPE_PAGE_SIZE"] = 1  # so that "next page" links are built from the filters too
    query = dict(args)
    if cursor is not None:
        query["after"] = cursor
    with one_input(db):
        response = client.get(url, query_string=query, headers=as_user(user))
        check_answer(response)
        assert refused(response) if user != "adm" else (response.status_code == 200 or refused(response))
    _no_stripe(stripe_http)


def _refund_reaches_stripe(form: dict, gross: int) -> bool:
    """Whether the view would accept this refund request (and so, rightly, call Stripe)."""
    if len((first(form.get("reason")) or "").strip()) > 500:
        return False
    try:
        amount = parse_money((first(form.get("amount")) or "").strip()[:32], "EUR", locale="en", minimum=False).amount
    except (MoneyError, ArithmeticError):
        return False
    return 0 < amount <= gross


@pytest.mark.parametrize("user", ["adm", "u1"])
@FUZZ
@given(which=st.one_of(st.just("own"), big_int), form=fields(("amount", "reason", "revoke_access")),
       base=st.booleans())
def test_refund_any_amount_and_reason(client, db, invoices, stripe_http, token, user, which, form, base):
    invoice_id = invoices["u1"][1] if which == "own" else which
    form = {**({"amount": "10", "reason": "x" * 501} if base else {}), **form}
    gross = {invoices["u1"][1]: 4990, invoices["u2"][1]: 12900}.get(invoice_id)
    if gross and user == "adm" and _refund_reaches_stripe(form, gross):
        form["reason"] = "r" * 501  # stays refused: a valid request would (rightly) call Stripe
    with one_input(db):
        before = snapshot(db, *STATE_MODELS)
        response = client.post(f"/payments/admin/invoices/{invoice_id}/refund", data={**form, "csrf_token": token},
                               headers=as_user(user))
        check_answer(response)
        assert refused(response)
        assert snapshot(db, *STATE_MODELS) == before
    _no_stripe(stripe_http)


@pytest.mark.parametrize("user", ["adm", "u1"])
@FUZZ
@given(route=st.sampled_from(["invoices/{}/cancel", "refunds/{}/retry"]), which=st.one_of(st.just("own"), big_int),
       reason=st.builds(lambda s: "x" * 501 + s, text), extra=fields(("reason", "amount")))
def test_cancel_and_retry_any_input(client, db, invoices, stripe_http, token, user, route, which, reason, extra):
    """A cancellation with a too-long reason, or any id that is not a failed refund: refused, nothing written."""
    ident = invoices["u1"][1] if which == "own" else which
    with one_input(db):
        before = snapshot(db, *STATE_MODELS)
        response = client.post("/payments/admin/" + route.format(ident),
                                data={**extra, "reason": reason, "csrf_token": token}, headers=as_user(user))
        check_answer(response)
        assert refused(response)
        assert snapshot(db, *STATE_MODELS) == before
    _no_stripe(stripe_http)


HEADER_NAME = st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,24}\Z").filter(
    lambda n: n.lower() not in ("content-length", "host", "transfer-encoding", "cookie", "x-user", "content-type"))
LATIN1 = st.text(st.characters(codec="latin-1", exclude_characters="\r\n", exclude_categories=("Cc",)), max_size=120)
SIGNATURE = st.one_of(
    st.none(), LATIN1, st.sampled_from(["t=,v1=", "v1=abc", "t=1", ",,,,", "t=99999999999999999999999,v1=00",
                                        "t=" + "9" * 5000 + ",v1=ab", "t=-1,v1=", "t=1.5,v1=a,v0=b"]),
    st.builds(lambda t, h: f"t={t},v1={h}", st.integers(-(2 ** 70), 2 ** 70),
              st.text("0123456789abcdef", max_size=64)),
    st.builds(lambda other: sign_payload(other, SECRET), st.binary(max_size=50)),  # genuine, for another body
)
CONTENT_TYPE = st.sampled_from([None, "application/json", "application/xml", "text/plain",
                                "multipart/form-data; boundary=x", "application/x-www-form-urlencoded",
                                "application/json; charset=latin-1", "\x7f/\x7f"])
WEBHOOK_BODY = st.one_of(
    st.binary(max_size=2000),
    json_value.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"id": text, "type": st.sampled_from(["checkout.session.completed", "charge.refunded"]),
                           "data": json_value}).map(lambda v: json.dumps(v).encode()),
)


@FUZZ
@given(body=WEBHOOK_BODY, sig=SIGNATURE, content_type=CONTENT_TYPE,
       headers=st.dictionaries(HEADER_NAME, LATIN1, max_size=5))
def test_webhook_any_body_and_headers(client, db, people, priced, configured, stripe_http, body, sig, content_type,
                                      headers):
    if sig is not None:
        headers["Stripe-Signature"] = sig
    with one_input(db):
        response = client.post("/payments/webhook", data=body, headers=headers, content_type=content_type)
        check_answer(response)
        assert refused(response) and response.is_json
        assert db.session.scalar(select(func.count(Event.id))) == 0
    _no_stripe(stripe_http)


# == 2. Targeted cases ==================================================================================

def test_a_2mb_webhook_is_refused_with_413_even_when_signed(client, db, people, configured, stripe_http):
    INPUTS["count"] += 1
    payload = json.dumps({"id": "evt_big", "type": "customer.created", "data": {"object": {"pad": "x" * 2_000_000}}})
    response = client.post("/payments/webhook", data=payload, content_type="application/json",
                           headers={"Stripe-Signature": sign_payload(payload.encode(), SECRET)})
    check_answer(response)
    assert response.status_code == 413
    assert db.session.scalar(select(func.count(Event.id))) == 0
    _no_stripe(stripe_http)


@pytest.mark.parametrize("url", ["/payments/admin/settings", "/payments/checkout/c1",
                                 "/payments/admin/invoices/{}/refund", "/payments/admin/invoices/{}/cancel"])
@pytest.mark.parametrize("chunked", [False, True])
def test_a_2mb_form_is_refused_with_413(client, db, invoices, stripe_http, token, url, chunked):
    INPUTS["count"] += 1
    url = url.format(invoices["u1"][1])
    before = snapshot(db, *STATE_MODELS)
    body = f"csrf_token={token}&default_currency=EUR&default_vat_rate=20&amount=1&reason=".encode() + b"x" * 2_000_000
    if chunked:  # no Content-Length: the limit must still hold while the form is parsed
        response = client.post(url, input_stream=io.BytesIO(body), content_type="application/x-www-form-urlencoded",
                                headers=as_user("adm"), environ_overrides={"wsgi.input_terminated": True})
    else:
        response = client.post(url, data=body, content_type="application/x-www-form-urlencoded",
                               headers=as_user("adm"))
    check_answer(response)
    assert response.status_code == 413
    assert snapshot(db, *STATE_MODELS) == before
    _no_stripe(stripe_http)


@pytest.mark.parametrize("content_type", ["application/xml", "text/plain", "application/json",
                                          "multipart/form-data; boundary=nothing"])
@pytest.mark.parametrize("url", ["/payments/admin/settings", "/payments/checkout/c1",
                                 "/payments/admin/invoices/{}/refund", "/payments/admin/invoices/{}/cancel"])
def test_wrong_content_types_are_refused(client, db, invoices, stripe_http, token, content_type, url):
    """A token inside an XML, text, JSON or broken multipart body is not a form field: 400, nothing done."""
    INPUTS["count"] += 1
    url = url.format(invoices["u1"][1])
    before = snapshot(db, *STATE_MODELS)
    body = {"application/xml": f"<form><csrf_token>{token}</csrf_token><amount>1</amount></form>",
            "text/plain": f"csrf_token={token}\namount=1",
            "application/json": json.dumps({"csrf_token": token, "amount": "1", "default_currency": "EUR"}),
            }.get(content_type, f"csrf_token={token}&amount=1")
    response = client.post(url, data=body, content_type=content_type, headers=as_user("adm"))
    check_answer(response)
    assert response.status_code == 400
    assert snapshot(db, *STATE_MODELS) == before
    _no_stripe(stripe_http)


def test_multipart_with_files_in_place_of_fields_is_refused(client, db, people, configured, stripe_http, token):
    INPUTS["count"] += 1
    before = snapshot(db, Settings, AuditEntry)
    response = client.post("/payments/admin/settings", content_type="multipart/form-data", headers=as_user("adm"),
                           data={"csrf_token": token, "default_vat_rate": "20",
                                 "default_currency": (io.BytesIO(b"EUR"), "currency.txt"),
                                 "terms_url": (io.BytesIO(b"\x00" * 1000), "terms.bin")})
    check_answer(response)
    assert response.status_code == 400 and 'id="default_currency-error"' in response.get_data(as_text=True)
    assert snapshot(db, Settings, AuditEntry) == before


@pytest.mark.parametrize("content_type", ["application/xml", "text/plain", "multipart/form-data; boundary=x"])
def test_webhook_with_a_wrong_content_type_and_no_valid_signature_is_refused(client, db, people, configured,
                                                                               stripe_http, content_type):
    INPUTS["count"] += 1
    response = client.post("/payments/webhook", data="<event id='evt_1'/>", content_type=content_type,
                           headers={"Stripe-Signature": "t=1,v1=00"})
    check_answer(response)
    assert response.status_code == 400
    assert db.session.scalar(select(func.count(Event.id))) == 0


@pytest.mark.parametrize("age", [301, 3600, 30 * 86400])
def test_a_replayed_webhook_with_an_old_timestamp_is_refused_and_not_stored(client, db, people, priced, configured,
                                                                            stripe_http, age):
    INPUTS["count"] += 1
    payload = json.dumps({"id": "evt_replayed", "object": "event", "type": "checkout.session.completed",
                          "data": {"object": {"id": "cs_test_x", "object": "checkout.session"}}}).encode()
    signature = sign_payload(payload, SECRET, timestamp=int(time.time()) - age)
    response = client.post("/payments/webhook", data=payload, content_type="application/json",
                           headers={"Stripe-Signature": signature})
    check_answer(response)
    assert response.status_code == 400
    assert db.session.get(Event, "evt_replayed") is None
    _no_stripe(stripe_http)


# -- forged metadata: the Checkout Session Stripe returns points at another learner's purchase -----------

@pytest.fixture
def two_open_purchases(db, people, priced, configured):
    """u1 (the victim) and u2 (the attacker) each have an open purchase of c1, each with its own session."""
    made = {}
    for user, session_id in (("u1", "cs_test_victim"), ("u2", "cs_test_attacker")):
        purchase = Purchase(user_id=user, course_id="c1", status="open", amount=4990, currency="EUR", vat_rate=2000,
                            stripe_checkout_session_id=session_id, expires_at=utcnow() + timedelta(hours=1),
                            checkout_url=f"https://checkout.stripe.com/c/pay/{session_id}")
        db.session.add(purchase)
        db.session.commit()
        made[user] = (purchase.id, session_id)
    return made


def _forged_session(draw, purchases, session_ids):
    victim, attacker = purchases["u1"][0], purchases["u2"][0]
    claimed = draw(st.sampled_from([str(victim), str(attacker), "0", "999999", "-1", "²", "١", f"{victim} "]) | text)
    reference = draw(st.sampled_from([f"lms-purchase-{claimed}", f"lms-purchase-{victim}",
                                      f"lms-purchase-{attacker}", None]) | text)
    metadata = {"lms_purchase_id": claimed,
                "lms_user_id": draw(st.sampled_from(["u1", "u2", "adm", None]) | text),
                "lms_course_id": draw(st.sampled_from(["c1", "c2", None]) | text)}
    metadata.update(draw(st.dictionaries(st.text(max_size=12), text, max_size=2)))
    session_id = draw(st.sampled_from(session_ids))
    amount = draw(st.sampled_from([4990, 1, 0, None, 499000]) | st.integers())
    currency = draw(st.sampled_from(["eur", "EUR", "usd", None]) | text)
    cs = checkout_session(1, session_id=session_id, status="complete", payment_status="paid", amount=amount,
                          currency=currency, customer="cus_test_attacker", payment_intent="pi_test_attacker")
    cs.update(client_reference_id=reference, metadata=metadata, amount_total=1)
    return cs


def _legitimate(cs, purchases) -> bool:
    """Not forged: Stripe's session is the one we created for a purchase, and says so consistently
    (its claim, reference, learner, course, amount and currency all match that purchase)."""
    meta = cs["metadata"]
    raw = meta.get("lms_purchase_id")
    try:
        claimed = int(raw) if isinstance(raw, str) and raw.isdigit() else None
    except ValueError:
        claimed = None
    for user, (purchase_id, session_id) in purchases.items():
        if (claimed == purchase_id and cs["client_reference_id"] == f"lms-purchase-{raw}"
                and meta.get("lms_user_id") == user and meta.get("lms_course_id") == "c1"
                and cs["amount_subtotal"] == 4990 and str(cs["currency"]).lower() == "eur" and cs["id"] == session_id):
            return True
    return False


def _nothing_paid(db, host):
    db.session.expire_all()
    assert sorted(db.session.scalars(select(Purchase.status))) == ["open", "open"]
    assert db.session.scalar(select(func.count(Invoice.id))) == 0
    assert db.session.scalar(select(func.count(Customer.id))) == 0
    assert db.session.scalar(select(func.count(Seat.id))) == 0
    assert not [c for c in host.calls if c[0] == "enroll"]
    assert sorted(db.session.scalars(select(Purchase.stripe_checkout_session_id))) == ["cs_test_attacker",
                                                                                       "cs_test_victim"]


def _serve_session(stripe_http, cs: dict) -> None:
    """Stripe's GET /v1/checkout/sessions/<id> answers ``cs`` (registered once per test, updated per example)."""
    holder = getattr(stripe_http, "_hostile_session", None)
    if holder is None:
        holder = stripe_http._hostile_session = {}
        stripe_http.add_callback(responses.GET, re.compile(rf"{STRIPE}/v1/checkout/sessions/[^/?]+(\?.*)?$"),
                                 callback=lambda request: (200, {}, json.dumps(holder["cs"])),
                                 content_type="application/json")
    holder["cs"] = cs


EVENT_IDS = itertools.count(1)


@FUZZ
@given(data=st.data())
def test_a_signed_webhook_with_forged_metadata_pays_nothing(client, db, host, two_open_purchases, stripe_http, data):
    cs = _forged_session(data.draw, two_open_purchases, ["cs_test_attacker", "cs_test_victim", "cs_test_other"])
    assume(not _legitimate(cs, two_open_purchases))
    _serve_session(stripe_http, cs)
    event = {"id": f"evt_forged_{next(EVENT_IDS)}", "object": "event", "type": "checkout.session.completed",
             "api_version": "2026-10-28.endive", "livemode": False,
             "data": {"object": {"id": cs["id"], "object": "checkout.session", "metadata": cs["metadata"],
                                 "client_reference_id": cs["client_reference_id"]}}}
    payload = json.dumps(event).encode()
    with one_input(db):
        response = client.post("/payments/webhook", data=payload, content_type="application/json",
                               headers={"Stripe-Signature": sign_payload(payload, SECRET)})
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert db.session.get(Event, event["id"]).status in ("failed", "processed", "rejected")
        _nothing_paid(db, host)


@FUZZ
@given(data=st.data())
def test_the_success_page_with_a_forged_session_pays_nothing(client, db, host, two_open_purchases, stripe_http, data):
    cs = _forged_session(data.draw, two_open_purchases, ["cs_test_victim"])
    assume(not _legitimate(cs, two_open_purchases))
    _serve_session(stripe_http, cs)
    with one_input(db):
        response = client.get("/payments/checkout/success", query_string={"session_id": "cs_test_victim"},
                              headers=as_user("u1"))
        check_answer(response)
        assert response.status_code == 200 or refused(response)
        if response.status_code == 200:
            assert "Payment processing" in response.get_data(as_text=True)
        _nothing_paid(db, host)


# -- open redirects ------------------------------------------------------------------------------------

EVIL = st.sampled_from(["https://evil.example/", "//evil.example", "/\\evil.example", "https:evil.example",
                        "javascript:alert(1)", "\x00https://evil.example", " https://evil.example",
                        "https://lms.test@evil.example/", "https://evil.example/%2F..", "data:text/html,x"]) | text
REDIRECT_PARAMS = st.dictionaries(st.sampled_from(["next", "url", "redirect", "return_to", "continue", "success_url",
                                                   "cancel_url", "back"]), EVIL, min_size=1, max_size=4)


def _links_stay_on_site(body: str):
    for href in re.findall(r'href="([^"]*)"', body):
        parts = urlsplit(href.replace("&amp;", "&"))
        off_site_ok = href.startswith(("https://pay.stripe.com/", "javascript:history.back()"))
        assert parts.netloc in ("", HOST) or off_site_ok, href


@FUZZ
@given(args=REDIRECT_PARAMS)
def test_success_and_cancel_pages_never_redirect_off_site(client, db, host, invoices, stripe_http, args):
    """Both render (200) whatever ``next``/``url`` say; no Location, no link off-site."""
    purchase_id = invoices["u1"][0]
    session_id = db.session.get(Purchase, purchase_id).stripe_checkout_session_id  # paid: no Stripe call
    with one_input(db, 2):
        for url, query in (("/payments/checkout/success", {**args, "session_id": session_id}),
                           (f"/payments/checkout/cancel/{purchase_id}", args)):
            response = client.get(url, query_string=query, headers=as_user("u1"))
            check_answer(response)
            assert (response.status_code == 200 or refused(response)) and "Location" not in response.headers
            _links_stay_on_site(response.get_data(as_text=True))
    _no_stripe(stripe_http)


def _serve_checkout(stripe_http) -> list:
    """Stripe's POST /v1/checkout/sessions (and tax rates); returns this example's list of sent bodies."""
    holder = getattr(stripe_http, "_hostile_checkout", None)
    if holder is None:
        holder = stripe_http._hostile_checkout = {"count": 0}

        def reply(request):
            body = form_body(request)
            holder["sent"].append(body)
            holder["count"] += 1
            cs = checkout_session(int(body["metadata[lms_purchase_id]"]), session_id=f"cs_test_{holder['count']:04d}_x")
            return 200, {}, json.dumps(cs)

        stripe_http.add_callback(responses.POST, f"{STRIPE}/v1/checkout/sessions", callback=reply,
                                 content_type="application/json")
        stripe_http.add(responses.POST, f"{STRIPE}/v1/tax_rates", json={"id": "txr_test_20", "object": "tax_rate"})
        stub_customers(stripe_http)  # the learner's customer, created before their first Checkout
    holder["sent"] = []
    return holder["sent"]


@FUZZ
@given(form=REDIRECT_PARAMS.flatmap(lambda d: st.builds(lambda extra: {**d, **extra},
                                                       fields(("amount", "price", "currency", "unit_amount"),
                                                              max_size=4))),
       forwarded=st.dictionaries(st.sampled_from(["X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded",
                                                  "X-Original-URL", "X-Rewrite-URL"]),
                                 st.sampled_from(["evil.example", "https", "host=evil.example", "/admin"]),
                                 max_size=3))
def test_checkout_sends_stripe_return_urls_on_our_own_host_and_our_own_price(client, db, people, priced, configured,
                                                                             stripe_http, token, form, forwarded):
    """Whatever the browser adds (return URLs, amounts, forwarding headers), Stripe gets our host and our price."""
    sent = _serve_checkout(stripe_http)
    with one_input(db):
        response = client.post("/payments/checkout/c1", data={**form, "csrf_token": token},
                               headers={**as_user("u1"), **forwarded})
        check_answer(response)
        if response.status_code in (400, 413):  # random extra fields too large, or holding a NUL byte
            assert not sent
            return
        assert response.status_code == 303
        assert response.headers["Location"].startswith("https://checkout.stripe.com/c/pay/")
        assert len(sent) == 1, sent
        body = sent[0]
        purchase_id = body["metadata[lms_purchase_id]"]
        success, cancel = urlsplit(body["success_url"]), urlsplit(body["cancel_url"])
        assert (success.scheme, success.netloc, success.path) == ("http", HOST, "/payments/checkout/success")
        assert parse_qs(success.query) == {"session_id": ["{CHECKOUT_SESSION_ID}"]}
        assert (cancel.scheme, cancel.netloc, cancel.path, cancel.query) == (
            "http", HOST, f"/payments/checkout/cancel/{purchase_id}", "")
        assert (body["line_items[0][price_data][unit_amount]"], body["line_items[0][price_data][currency]"]) == \
            ("4990", "eur")
        db.session.get(Purchase, int(purchase_id)).status = "expired"  # the next click starts afresh
        db.session.commit()


# -- another learner's invoice; CSRF; security headers ------------------------------------------------

def test_another_learners_invoice_pdf_is_not_found(client, db, invoices, stripe_http):
    INPUTS["count"] += 4
    u1_invoice, u2_invoice = invoices["u1"][1], invoices["u2"][1]
    response = client.get(f"/payments/invoices/{u2_invoice}/pdf", headers=as_user("u1"))
    check_answer(response)
    assert response.status_code == 404 and "Location" not in response.headers
    for user in ("mgr", "blk"):
        assert client.get(f"/payments/invoices/{u1_invoice}/pdf", headers=as_user(user)).status_code == 404
    assert client.get(f"/payments/invoices/{u1_invoice}/pdf").status_code == 401
    own = client.get(f"/payments/invoices/{u1_invoice}/pdf", headers=as_user("u1"))
    assert own.status_code == 302 and own.headers["Location"] == "https://pay.stripe.com/invoice/in_test_1/pdf"


@pytest.fixture
def failed_refund(db, invoices):
    refund = Refund(purchase_id=invoices["u1"][0], amount=1000, currency="EUR", status="failed", full=False,
                    revoke_access=False, origin="admin", actor_id="adm", idempotency_key="lms-refund-x")
    db.session.add(refund)
    db.session.commit()
    return refund.id


@pytest.mark.parametrize("user", ["adm", "u1"])
@pytest.mark.parametrize("bad_token", [None, "", "garbage", "other-session", "IjEi.xx.yy"])
@pytest.mark.parametrize("route", [
    "/payments/admin/settings", "/payments/checkout/c1", "/payments/admin/invoices/{invoice}/refund",
    "/payments/admin/invoices/{invoice}/cancel", "/payments/admin/refunds/{refund}/retry"])
def test_every_post_without_a_valid_csrf_token_is_refused_and_changes_nothing(app, client, db, host, invoices,
                                                                              failed_refund, stripe_http, user,
                                                                              bad_token, route):
    INPUTS["count"] += 1
    url = route.format(invoice=invoices["u1"][1], refund=failed_refund)
    if bad_token == "other-session":
        bad_token = _token(app.test_client())
    data = {"default_currency": "USD", "default_vat_rate": "5", "amount": "10", "reason": "csrf"}
    if bad_token is not None:
        data["csrf_token"] = bad_token
    before, calls = snapshot(db, *STATE_MODELS), list(host.calls)
    response = client.post(url, data=data, headers=as_user(user))
    check_answer(response)
    assert response.status_code == 400 and "expired" in response.get_data(as_text=True)
    assert snapshot(db, *STATE_MODELS) == before and host.calls == calls
    _no_stripe(stripe_http)


def _pages(invoices, token, failed_refund):
    inv = invoices["u1"][1]
    return [
        ("GET", "/payments/admin/settings", "adm", None, 200),
        ("GET", "/payments/admin/settings", "u1", None, 403),
        ("GET", "/payments/admin/settings", None, None, 401),
        ("GET", "/payments/admin/", "adm", None, 302),
        ("GET", "/payments/admin/pricing-preview?price=49.90&currency=EUR&vat_rate=20", "adm", None, 200),
        ("GET", "/payments/admin/pricing-preview?price=x&currency=EUR&vat_rate=20", "adm", None, 400),
        ("GET", "/payments/admin/invoices", "adm", None, 200),
        ("GET", "/payments/admin/invoices?from=yesterday", "adm", None, 400),
        ("GET", "/payments/admin/invoices?after=nonsense", "adm", None, 400),
        ("GET", "/payments/admin/invoices.csv", "adm", None, 200),
        ("GET", "/payments/admin/invoices.csv?status=x", "adm", None, 400),
        ("GET", f"/payments/admin/invoices/{inv}", "adm", None, 200),
        ("GET", "/payments/admin/invoices/999999", "adm", None, 404),
        ("GET", f"/payments/admin/invoices/{inv}/refund", "adm", None, 200),
        ("POST", f"/payments/admin/invoices/{inv}/refund", "adm", {"csrf_token": token, "amount": "x"}, 400),
        ("GET", f"/payments/admin/invoices/{inv}/cancel", "adm", None, 200),
        ("POST", f"/payments/admin/invoices/{inv}/cancel", "adm", {"csrf_token": token, "reason": "x" * 501}, 409),
        ("POST", "/payments/admin/refunds/999999/retry", "adm", {"csrf_token": token}, 404),
        ("GET", "/payments/admin/audit", "adm", None, 200),
        ("GET", "/payments/admin/free-enrollments", "adm", None, 200),
        ("GET", "/payments/courses/c1", "u1", None, 200),
        ("GET", "/payments/courses/nope", "u1", None, 404),
        ("POST", "/payments/checkout/c3", "u1", {"csrf_token": token}, 409),
        ("POST", "/payments/checkout/c1", "u1", {}, 400),
        ("POST", "/payments/admin/settings", "adm", {"csrf_token": token, "x": "y" * 70_000}, 413),
        ("GET", "/payments/checkout/success?session_id=cs_nope", "u1", None, 404),
        ("GET", "/payments/checkout/cancel/999999", "u1", None, 404),
        ("GET", "/payments/invoices", "u1", None, 200),
        ("GET", f"/payments/invoices/{inv}/pdf", "u1", None, 302),
        ("GET", f"/payments/invoices/{invoices['u2'][1]}/pdf", "u1", None, 404),
        ("POST", "/payments/webhook", None, b"{}", 400),
    ]


def test_security_headers_on_every_plugin_page_including_error_pages(client, db, invoices, token, failed_refund,
                                                                     stripe_http):
    for method, url, user, data, status in _pages(invoices, token, failed_refund):
        INPUTS["count"] += 1
        response = client.open(url, method=method, data=data, headers=as_user(user) if user else {})
        assert response.status_code == status, (method, url, response.status_code)
        check_answer(response)
    _no_stripe(stripe_http)


@pytest.mark.parametrize("method, url", [
    ("GET", "/payments/webhook"),          # a plugin route, wrong method: 405
    ("GET", "/payments/checkout/c1"),      # idem
    ("DELETE", "/payments/admin/settings"),
    ("GET", "/payments/courses/a%2Fb"),    # a course id with a slash: no route matches
    ("GET", "/payments/checkout/cancel/-1"),
    ("GET", "/payments/no-such-page"),
])
def test_routing_errors_under_the_plugin_prefix_are_plugin_error_pages(client, people, method, url):
    """Errors raised by routing itself (404/405 under /payments) never reach the blueprint's handlers."""
    INPUTS["count"] += 1
    response = client.open(url, method=method, headers=as_user("u1"))
    assert response.status_code in (404, 405)
    check_answer(response)


# == Known hostile inputs, one per finding (each also reachable by the properties above) ===============

@pytest.mark.parametrize("url", [
    "/payments/admin/pricing-preview?currency=EUR&vat_rate=20&price=" + "1" * 40,
    "/payments/admin/pricing-preview?currency=EUR&vat_rate=20&price=" + "1" * 29,
])
def test_known_a_price_with_too_many_digits_is_a_400(client, db, people, url):
    INPUTS["count"] += 1
    response = client.get(url, headers=as_user("adm"))
    check_answer(response)
    assert response.status_code == 400


def test_known_too_many_digits_in_the_refund_amount_is_a_400(client, db, invoices, token, stripe_http):
    INPUTS["count"] += 1
    response = client.post(f"/payments/admin/invoices/{invoices['u1'][1]}/refund",
                           data={"csrf_token": token, "amount": "1" * 32}, headers=as_user("adm"))
    check_answer(response)
    assert response.status_code == 400
    _no_stripe(stripe_http)


@pytest.mark.parametrize("fields_, field", [
    ({"klarna_enabled": "on", "klarna_minimum": "1" * 32}, "klarna_minimum"),
    ({"terms_url": "http://["}, "terms_url"),
    ({"terms_url": "https://[::1"}, "terms_url"),
])
def test_known_settings_inputs_are_field_errors(client, db, people, token, fields_, field):
    INPUTS["count"] += 1
    before = snapshot(db, Settings, AuditEntry)
    response = client.post("/payments/admin/settings", headers=as_user("adm"),
                           data={"csrf_token": token, "default_currency": "EUR", "default_vat_rate": "20", **fields_})
    check_answer(response)
    assert response.status_code == 400 and f'id="{field}-error"' in response.get_data(as_text=True)
    assert snapshot(db, Settings, AuditEntry) == before


def test_known_course_price_with_too_many_digits_is_a_field_error(app, db, people, priced):
    INPUTS["count"] += 1
    form = _pricing_form({"lms_stripe-price": "1" * 32}, base=True)
    with app.test_request_context(headers=as_user("adm")):
        errors = send_signal(app, "lms.course.settings_saved", course=priced["c1"], form=form)
    assert errors and "lms_stripe-price" in errors


def test_known_catalog_price_filter_with_too_many_digits_is_ignored(app, db, priced):
    INPUTS["count"] += 1
    with app.test_request_context():
        kept = send_signal(app, "lms.catalog.filtering", courses=list(priced.values()),
                           args=MultiDict({"price_max": "9" * 40}))
    assert len(kept) == 4


@pytest.mark.parametrize("url", ["/payments/admin/invoices", "/payments/admin/audit"])
@pytest.mark.parametrize("name", ["endpoint", "_method", "_scheme", "_anchor", "_external"])
def test_known_url_for_keyword_names_in_the_query_string(app, client, db, invoices, url, name):
    """Filters are echoed into url_for(**args) for the CSV and "next page" links."""
    INPUTS["count"] += 1
    app.config["LMS_STRIPE_PAGE_SIZE"] = 1
    response = client.get(url, query_string={name: "x"}, headers=as_user("adm"))
    check_answer(response)
    assert response.status_code in (200, 400)


@pytest.mark.parametrize("big", [2 ** 31, 2 ** 63])  # beyond PostgreSQL's INTEGER ids, beyond SQLite's
@pytest.mark.parametrize("url", [
    "/payments/checkout/cancel/{big}", "/payments/invoices/{big}/pdf", "/payments/admin/invoices/{big}",
    "/payments/admin/invoices/{big}/refund", "/payments/admin/invoices/{big}/cancel",
    "/payments/admin/audit?after={big}", "/payments/admin/invoices?after=2026-01-01T10:00:00%2B00:00_{big}",
])
def test_known_ids_beyond_the_integer_column_range_are_not_found(client, db, invoices, url, big):
    INPUTS["count"] += 1
    response = client.get(url.format(big=big), headers=as_user("adm" if "admin" in url else "u1"))
    check_answer(response)
    assert response.status_code in (200, 400, 404)


@pytest.mark.parametrize("url, user", [
    ("/payments/courses/c1%00", "u1"),
    ("/payments/checkout/success?session_id=cs_%00", "u1"),
    ("/payments/admin/invoices?q=%00", "adm"),
    ("/payments/admin/invoices?learner=u1%00", "adm"),
    ("/payments/admin/invoices.csv?course=c1%00", "adm"),
    ("/payments/admin/audit?learner=%00", "adm"),
])
def test_known_nul_bytes_in_ids_and_filters(client, db, invoices, url, user):
    """A NUL byte cannot be sent to PostgreSQL in a text parameter: it must be refused before the query."""
    INPUTS["count"] += 1
    response = client.get(url, headers=as_user(user))
    check_answer(response)
    assert response.status_code in (200, 400, 404)


@pytest.mark.parametrize("claimed", ["\u00b2", "99999999999999999999"])
def test_known_forged_purchase_ids_that_int_cannot_take_are_refused(client, db, host, two_open_purchases, stripe_http,
                                                                    claimed):
    """Stripe's copy of the session names purchase "²" (str.isdigit() says yes, int() says no) or an id beyond
    64 bits: the success page refuses it like any other mismatch."""
    INPUTS["count"] += 1
    cs = checkout_session(1, session_id="cs_test_victim", status="complete", payment_status="paid")
    cs.update(client_reference_id=f"lms-purchase-{claimed}",
              metadata={"lms_purchase_id": claimed, "lms_user_id": "u1", "lms_course_id": "c1"})
    _serve_session(stripe_http, cs)
    response = client.get("/payments/checkout/success", query_string={"session_id": "cs_test_victim"},
                          headers=as_user("u1"))
    check_answer(response)
    assert refused(response)
    _nothing_paid(db, host)


# == Payment links ===================================================================================

LINK_FIELDS = ("amount", "name", "email", "kind", "minimum", "maximum")


@pytest.fixture
def free_link(db, people, configured):
    """A free-amount link, 10 € to 500 €, VAT 20 %: (its id, its token)."""
    return make_link(db)


@pytest.mark.parametrize("user", [None, "u1"])
@FUZZ
@given(form=fields(LINK_FIELDS), base=st.booleans())
def test_pay_link_any_form(client, db, free_link, stripe_http, token, user, form, base):
    """Whatever a payer types, the page answers with a message; what it accepts is an amount within the
    link's limits, and exactly that amount is sent to Stripe."""
    link_id, link_token = free_link
    stripe_http.add(responses.POST, f"{STRIPE}/v1/tax_rates", json={"id": "txr_test_20", "object": "tax_rate"})
    stripe_http.add_callback(responses.POST, f"{STRIPE}/v1/checkout/sessions", callback=_new_session,
                             content_type="application/json")
    form = {**({"amount": "49.90", "name": "Zoé", "email": "zoe@example.org"} if base else {}), **form}
    with one_input(db):
        calls = len(stripe_http.calls)
        before = snapshot(db, PaymentAttempt, PaymentLink)
        response = client.post(f"/payments/link/{link_token}", data={**form, "csrf_token": token},
                               headers=as_user(user) if user else {})
        check_answer(response)
        if refused(response):
            assert snapshot(db, PaymentAttempt, PaymentLink) == before and len(stripe_http.calls) == calls
        else:
            assert response.status_code == 303
            sessions = [c for c in stripe_http.calls if c.request.url.endswith("/v1/checkout/sessions")]
            sent = int(form_body(sessions[-1].request)["line_items[0][price_data][unit_amount]"]) if \
                len(stripe_http.calls) > calls else None
            attempt = db.session.scalars(select(PaymentAttempt).order_by(PaymentAttempt.id.desc())).first()
            assert 1000 <= attempt.amount <= 50000 and sent in (None, attempt.amount)
            assert parse_money(first(form["amount"]).strip()[:32], "EUR", locale="en").amount == attempt.amount
    link = db.session.get(PaymentLink, link_id)
    assert link.held == db.session.scalar(select(func.count()).select_from(PaymentAttempt).where(
        PaymentAttempt.status == "open"))


@FUZZ
@given(form=fields(("title", "purpose", "kind", "amount", "minimum", "maximum", "currency", "vat_rate", "learner",
                    "max_uses", "expires_on")), base=st.booleans())
def test_new_link_any_form(client, db, people, configured, stripe_http, token, form, base):
    """An administrator's new link: refused with messages and nothing written, or written within every rule."""
    form = {**({"title": "Cotisation", "purpose": "Cotisation annuelle", "kind": "free", "minimum": "10",
                "maximum": "500", "currency": "EUR", "vat_rate": "20"} if base else {}), **form}
    with one_input(db):
        before = snapshot(db, PaymentLink, AuditEntry)
        response = client.post("/payments/admin/links/new", data={**form, "csrf_token": token},
                               headers=as_user("adm"))
        check_answer(response)
        if refused(response):
            assert snapshot(db, PaymentLink, AuditEntry) == before
        else:
            assert response.status_code == 302
            link = db.session.scalars(select(PaymentLink).order_by(PaymentLink.id.desc())).first()
            for amount in filter(None, (link.amount, link.minimum, link.maximum)):
                assert MINIMUM_EUR <= amount <= 99_999_999 if link.currency == "EUR" else amount > 0
    _no_stripe(stripe_http)


MINIMUM_EUR = 50


def _new_session(request):
    session_id = f"cs_test_fuzz_{next(_SESSION_NUMBERS)}"
    return 200, {}, json.dumps({"id": session_id, "object": "checkout.session",
                                "url": f"https://checkout.stripe.com/c/pay/{session_id}"})


_SESSION_NUMBERS = itertools.count(1)


@pytest.mark.parametrize("user", [None, "u1"])
@FUZZ
@given(segment=path_segment, script=st.booleans())
def test_link_page_any_token(client, db, free_link, stripe_http, user, segment, script):
    with one_input(db):
        response = client.get("/payments/link/" + quote(segment, safe="") + ("/button.js" if script else ""),
                              headers=as_user(user) if user else {})
        check_answer(response)
        assert refused(response)
    _no_stripe(stripe_http)
