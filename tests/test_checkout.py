"""The Buy click: refusals, what the SDK sends to Stripe, reuse of the open session, Stripe's errors."""
import html
import json
import re
import time
from datetime import timedelta

import pytest
import responses
from sqlalchemy import func, select

from lms_stripe_plugin.accounts import settings as payment_settings
from lms_stripe_plugin.core.models import CourseOffer, Customer, Purchase, TaxRate, utcnow
from lms_stripe_plugin.gateway.client import API_VERSION
from lms_stripe_plugin.shop.offers import save_offer

from .conftest import STRIPE, as_user, form_body
from .stripe_stubs import checkout_session, stripe_error, stub_customers, stub_retrieve_session, stub_tax_rate

SESSIONS = f"{STRIPE}/v1/checkout/sessions"
TAX_RATES = f"{STRIPE}/v1/tax_rates"


def _token(client) -> str:
    """A CSRF token for this client, from the form of the payment page of c1."""
    page = client.get("/payments/courses/c1", headers=as_user("u1")).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _buy(client, token, course="c1", user="u1", **fields):
    data = {"csrf_token": token, **fields} if token else fields
    return client.post(f"/payments/checkout/{course}", data=data, headers=as_user(user) if user else {})


def _serve_sessions(mock, **changes):
    """Stripe's POST /v1/checkout/sessions: a session for the purchase named in the metadata sent.

    Like Stripe, it refuses an ``expires_at`` less than 30 minutes or more than 24 hours away.
    """
    def reply(request):
        sent = form_body(request)
        if not time.time() + 30 * 60 <= int(sent["expires_at"]) <= time.time() + 24 * 3600:
            error = {"type": "invalid_request_error", "param": "expires_at",
                     "message": "The `expires_at` timestamp must be between 30 minutes and 24 hours from now."}
            return 400, {}, json.dumps({"error": error})
        purchase_id = int(sent["metadata[lms_purchase_id]"])
        fields = {"user_id": sent["metadata[lms_user_id]"], "course_id": sent["metadata[lms_course_id]"], **changes}
        cs = checkout_session(purchase_id, **fields)
        return 200, {}, json.dumps(cs)

    stub_customers(mock)
    mock.add_callback(responses.POST, SESSIONS, callback=reply, content_type="application/json")


def _alert(response) -> str:
    """The message of a plugin page, for assertion messages."""
    found = re.search(r'role="alert">([^<]*)<', response.get_data(as_text=True))
    return f"{response.status_code}: {html.unescape(found.group(1)) if found else '(no message)'}"


def _session_calls(mock):
    """The calls that create a Checkout Session (not those that expire one)."""
    return [call for call in mock.calls if call.request.url.split("?")[0] == SESSIONS]


def _tax_calls(mock):
    return [call for call in mock.calls if call.request.url.startswith(TAX_RATES)]


def _purchases(db, **where):
    return db.session.scalars(select(Purchase).filter_by(**where).order_by(Purchase.id)).all()


def _methods(sent: dict) -> list[str]:
    return [sent[key] for key in sorted(k for k in sent if k.startswith("allowed_payment_method_types["))]


def _save_settings(db, **values):
    payment_settings.save(db.session, values, actor_id="adm")
    db.session.commit()


@pytest.fixture
def token(client, people, priced, configured):
    return _token(client)


@pytest.fixture
def stripe_ok(stripe_http):
    """Stripe answers: a tax rate and checkout sessions."""
    stub_tax_rate(stripe_http)
    _serve_sessions(stripe_http)
    return stripe_http


# -- refusals ------------------------------------------------------------------------------------------

def _turn_payments_off(db, host):
    _save_settings(db, enabled=False)


def _free_course(db, host):
    pass  # c3 has no offer


def _not_on_sale(db, host):
    db.session.scalar(select(CourseOffer).where(CourseOffer.course_id == "c1")).on_sale = False
    db.session.commit()


def _already_paid(db, host):
    db.session.add(Purchase(user_id="u1", course_id="c1", status="paid", amount=4990, currency="EUR"))
    db.session.commit()


def _payment_processing(db, host):
    db.session.add(Purchase(user_id="u1", course_id="c1", status="processing", amount=4990, currency="EUR"))
    db.session.commit()


def _enrolled(db, host):
    from .minimal_host import Lesson, Person

    host.enroll(db.session.get(Person, "u1"), db.session.get(Lesson, "c1"))
    db.session.commit()


@pytest.mark.parametrize("setup, course, user, message", [
    (_turn_payments_off, "c1", "u1", "Online payment is not available at the moment."),
    (_free_course, "c3", "u1", "This course is free: enroll from the course page."),
    (_not_on_sale, "c1", "u1", "This course is not on sale."),
    (None, "c2", "u1", "This course is not available for purchase with your account."),  # partner course
    (None, "c4", "par", "This course is not available for purchase with your account."),  # internal course
    (None, "c4", "u1", "This course is not available for purchase with your account."),
    (None, "c1", "blk", "This course is not available for purchase with your account."),  # host perimeter
    (_already_paid, "c1", "u1", "You have already bought this course."),
    (_payment_processing, "c1", "u1", "Your payment for this course is processing"),
    (_enrolled, "c1", "u1", "You are already enrolled in this course."),
])
def test_refusals_show_a_clear_page_and_call_no_stripe(client, db, host, token, stripe_http, setup, course, user,
                                                       message):
    if setup is not None:
        setup(db, host)
    before = db.session.scalar(select(func.count()).select_from(Purchase))
    response = _buy(client, token, course=course, user=user)
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "Purchase not possible" in page and message in page
    assert f'href="/lessons/{course}"' in page  # back to the course
    assert len(stripe_http.calls) == 0
    assert db.session.scalar(select(func.count()).select_from(Purchase)) == before
    assert not _purchases(db, status="open")


def test_signed_out_learner_gets_401(client, db, token, stripe_http):
    response = _buy(client, token, user=None)
    assert response.status_code == 401
    assert "Sign in to continue." in response.get_data(as_text=True)
    assert len(stripe_http.calls) == 0 and not _purchases(db)


@pytest.mark.parametrize("course", ["nope", "x" * 200])
def test_unknown_course_gets_404(client, db, token, stripe_http, course):
    assert _buy(client, token, course=course).status_code == 404
    assert len(stripe_http.calls) == 0 and not _purchases(db)


def test_post_without_csrf_token_is_refused(client, db, token, stripe_http):
    response = _buy(client, None)
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)
    assert _buy(client, "not-a-token").status_code == 400
    assert len(stripe_http.calls) == 0 and not _purchases(db)


def test_csrf_token_in_header_is_accepted(client, db, token, stripe_ok):
    response = client.post("/payments/checkout/c1", headers={**as_user("u1"), "X-CSRFToken": token})
    assert response.status_code == 303


@pytest.mark.parametrize("user, course", [("emp", "c2"), ("par", "c2"), ("emp", "c4"), ("emp", "c1")])
def test_audiences_that_may_buy(client, token, stripe_ok, user, course):
    assert _buy(client, token, course=course, user=user).status_code == 303


# -- the Checkout Session ----------------------------------------------------------------------------------

def test_first_purchase_sends_our_price_and_everything_stripe_needs(client, db, token, stripe_ok):
    started = int(time.time())
    response = _buy(client, token, amount="1", currency="usd", price="0.50")  # posted amounts are ignored
    assert response.status_code == 303
    [purchase] = _purchases(db)
    assert response.headers["Location"] == f"https://checkout.stripe.com/c/pay/cs_test_{purchase.id:04d}"
    assert (purchase.status, purchase.amount, purchase.currency, purchase.vat_rate, purchase.user_id,
            purchase.course_id) == ("open", 4990, "EUR", 2000, "u1", "c1")
    assert purchase.stripe_checkout_session_id == f"cs_test_{purchase.id:04d}"
    assert purchase.checkout_url == response.headers["Location"]

    [tax_call] = _tax_calls(stripe_ok)
    tax = form_body(tax_call.request)
    assert tax == {"display_name": "TVA", "percentage": "20.0", "inclusive": "true", "country": "FR",
                   "description": "VAT 20.00 % (FR)", "tax_type": "vat"}
    assert tax_call.request.headers["Idempotency-Key"] == "lms-tax-rate-FR-2000-0"

    [call] = _session_calls(stripe_ok)
    assert call.request.method == "POST"
    assert call.request.headers["Idempotency-Key"] == f"lms-checkout-{purchase.id}"
    assert call.request.headers["Authorization"] == "Bearer sk_test_51Abcdefghijkl"
    sent = form_body(call.request)
    pid = str(purchase.id)
    assert sent["mode"] == "payment"
    assert sent["line_items[0][quantity]"] == "1"
    assert sent["line_items[0][price_data][currency]"] == "eur"
    assert sent["line_items[0][price_data][unit_amount]"] == "4990"
    assert sent["line_items[0][price_data][tax_behavior]"] == "inclusive"
    assert sent["line_items[0][price_data][product_data][name]"] == "Python basics"
    assert sent["line_items[0][tax_rates][0]"] == "txr_test_20"
    assert not any("amount" in key for key in sent if key not in (
        "line_items[0][price_data][unit_amount]", "invoice_creation[invoice_data][rendering_options][amount_tax_display]"))
    assert sent["invoice_creation[enabled]"] == "true"
    assert sent["invoice_creation[invoice_data][description]"] == "Python basics"
    for prefix in ("metadata", "invoice_creation[invoice_data][metadata]", "payment_intent_data[metadata]"):
        assert (sent[f"{prefix}[lms_purchase_id]"], sent[f"{prefix}[lms_user_id]"],
                sent[f"{prefix}[lms_course_id]"]) == (pid, "u1", "c1")
    assert sent["client_reference_id"] == f"lms-purchase-{pid}"
    assert _methods(sent) == ["card"]
    assert "allow_promotion_codes" not in sent
    assert sent["customer"] == "cus_test_u1" and "customer_creation" not in sent and "customer_email" not in sent
    assert sent["locale"] == "en"
    # The learner's customer, created first in their language: Stripe writes their invoices in it.
    [customer_call] = [call for call in stripe_ok.calls if call.request.url == f"{STRIPE}/v1/customers"]
    assert form_body(customer_call.request) == {"email": "lea@example.com", "name": "Léa", "preferred_locales[0]": "en",
                                                "metadata[lms_user_id]": "u1"}
    assert customer_call.request.headers["Idempotency-Key"] == "lms-customer-0-u1"
    assert db.session.execute(select(Customer.stripe_customer_id, Customer.locale)).one() == ("cus_test_u1", "en")
    # Lines excluding VAT, then VAT per rate, on the invoice's PDF; no legal mentions before the seller's
    # identity is entered.
    assert sent["invoice_creation[invoice_data][rendering_options][amount_tax_display]"] == "exclude_tax"
    assert not any(key.startswith(("invoice_creation[invoice_data][custom_fields]",
                                   "invoice_creation[invoice_data][footer]")) for key in sent)
    assert started + 3600 - 5 <= int(sent["expires_at"]) <= int(time.time()) + 3600 + 5
    assert sent["success_url"] == "http://lms.test/payments/checkout/success?session_id={CHECKOUT_SESSION_ID}"
    assert sent["cancel_url"] == f"http://lms.test/payments/checkout/cancel/{pid}"
    assert "consent_collection[terms_of_service]" not in sent and "automatic_tax[enabled]" not in sent
    assert db.session.scalar(select(TaxRate.stripe_tax_rate_id).where(TaxRate.rate == 2000)) == "txr_test_20"


def test_the_tax_rate_is_created_once(client, db, token, stripe_ok):
    assert _buy(client, token, user="u1").status_code == 303
    assert len(stripe_ok.calls) == 3  # the customer, the tax rate, the session
    assert _buy(client, token, user="u2").status_code == 303
    assert len(stripe_ok.calls) == 5  # the customer and the session: no second tax rate
    assert len(_tax_calls(stripe_ok)) == 1
    second = form_body(_session_calls(stripe_ok)[-1].request)
    assert second["line_items[0][tax_rates][0]"] == "txr_test_20"
    assert db.session.scalar(select(func.count()).select_from(TaxRate)) == 1


def test_zero_decimal_currency_is_sent_as_is(client, token, stripe_http):
    stub_tax_rate(stripe_http, tax_rate_id="txr_test_10", percentage=10)
    _serve_sessions(stripe_http, amount=8000, currency="jpy")
    assert _buy(client, token, course="c4", user="emp").status_code == 303
    assert form_body(_tax_calls(stripe_http)[0].request)["percentage"] == "10.0"
    sent = form_body(_session_calls(stripe_http)[0].request)
    assert (sent["line_items[0][price_data][unit_amount]"], sent["line_items[0][price_data][currency]"]) == \
        ("8000", "jpy")
    assert sent["line_items[0][tax_rates][0]"] == "txr_test_10"


def test_automatic_tax_replaces_our_tax_rate(client, db, token, stripe_http):
    _save_settings(db, automatic_tax=True)
    _serve_sessions(stripe_http)
    assert _buy(client, token).status_code == 303
    assert not _tax_calls(stripe_http)
    sent = form_body(_session_calls(stripe_http)[0].request)
    assert sent["automatic_tax[enabled]"] == "true" and "line_items[0][tax_rates][0]" not in sent


def test_automatic_tax_collects_the_address_of_a_returning_learner(client, db, token, stripe_http):
    """Stripe refuses a session for a known customer without an address unless Checkout may save the one it
    collects (customer_tax_location_invalid)."""
    _save_settings(db, automatic_tax=True)
    db.session.add(Customer(user_id="u1", stripe_customer_id="cus_test_lea"))
    db.session.commit()
    _serve_sessions(stripe_http)
    assert _buy(client, token, user="u1").status_code == 303
    sent = form_body(_session_calls(stripe_http)[0].request)
    assert sent["customer"] == "cus_test_lea" and sent["customer_update[address]"] == "auto"
    assert sent["billing_address_collection"] == "required"


def test_every_request_names_the_pinned_api_version_and_no_parameter_it_lacks(client, token, stripe_ok):
    assert _buy(client, token).status_code == 303
    for call in stripe_ok.calls:
        assert call.request.headers["Stripe-Version"] == API_VERSION == "2026-10-28.endive"
    sent = form_body(_session_calls(stripe_ok)[0].request)
    assert not any(key.startswith("payment_method_types") for key in sent)


def test_promotion_codes_only_when_vouchers_are_on(client, db, token, stripe_ok):
    _buy(client, token, user="u1")
    assert "allow_promotion_codes" not in form_body(_session_calls(stripe_ok)[-1].request)
    _save_settings(db, vouchers_enabled=True)
    _buy(client, token, user="u2")
    assert form_body(_session_calls(stripe_ok)[-1].request)["allow_promotion_codes"] == "true"


@pytest.mark.parametrize("values, user, course, expected", [
    ({}, "u1", "c1", ["card"]),
    ({"klarna_enabled": True}, "u1", "c1", ["card", "klarna"]),
    ({"klarna_enabled": True, "klarna_minimum": 4990}, "u1", "c1", ["card", "klarna"]),  # at the minimum
    ({"klarna_enabled": True, "klarna_minimum": 5000}, "u1", "c1", ["card"]),  # below it
    ({"klarna_enabled": True, "klarna_minimum": 1000, "default_currency": "USD"}, "u1", "c1", ["card"]),
    ({"klarna_enabled": False, "klarna_minimum": 1000}, "u1", "c1", ["card"]),
    ({"sepa_debit_enabled": True}, "u1", "c1", ["card", "sepa_debit"]),
    ({"sepa_debit_enabled": True, "klarna_enabled": True, "klarna_minimum": 100}, "u1", "c1",
     ["card", "klarna", "sepa_debit"]),
    ({"sepa_debit_enabled": True, "klarna_enabled": True}, "emp", "c4", ["card"]),  # JPY: neither
])
def test_payment_methods_follow_the_settings(client, db, token, stripe_http, values, user, course, expected):
    if values:
        _save_settings(db, **values)
    stub_tax_rate(stripe_http)
    _serve_sessions(stripe_http)
    assert _buy(client, token, course=course, user=user).status_code == 303
    assert _methods(form_body(_session_calls(stripe_http)[0].request)) == expected


def test_the_customer_stored_by_a_completed_session_is_reused_its_language_set_once(client, db, token, stripe_ok):
    """A customer Checkout created (before the plugin created customers itself) has no language of ours:
    the next click sets it, once."""
    db.session.add(Customer(user_id="emp", stripe_customer_id="cus_test_emma"))
    db.session.commit()
    assert _buy(client, token, course="c1", user="emp").status_code == 303
    [change] = [call for call in stripe_ok.calls if call.request.url == f"{STRIPE}/v1/customers/cus_test_emma"]
    assert form_body(change.request) == {"preferred_locales[0]": "en"}
    sent = form_body(_session_calls(stripe_ok)[-1].request)
    assert sent["customer"] == "cus_test_emma"
    assert "customer_creation" not in sent and "customer_email" not in sent
    assert db.session.scalar(select(Customer.locale).where(Customer.user_id == "emp")) == "en"

    calls = len(stripe_ok.calls)
    assert _buy(client, token, course="c2", user="emp").status_code == 303
    assert len(stripe_ok.calls) == calls + 1  # the session only
    assert form_body(_session_calls(stripe_ok)[-1].request)["customer"] == "cus_test_emma"


def test_a_learner_buying_in_another_language_gets_invoices_in_it(client, db, host, token, stripe_ok):
    assert _buy(client, token, course="c1", user="emp").status_code == 303
    host.locale = "fr"
    assert _buy(client, token, course="c2", user="emp").status_code == 303
    [change] = [call for call in stripe_ok.calls if call.request.url == f"{STRIPE}/v1/customers/cus_test_emp"]
    assert form_body(change.request) == {"preferred_locales[0]": "fr"}
    db.session.expire_all()
    assert db.session.execute(select(Customer.stripe_customer_id, Customer.locale)).one() == ("cus_test_emp", "fr")
    assert form_body(_session_calls(stripe_ok)[-1].request)["locale"] == "fr"


def test_locale_comes_from_the_host(client, host, token, stripe_ok):
    host.locale = "fr"
    assert _buy(client, token).status_code == 303
    assert form_body(_session_calls(stripe_ok)[0].request)["locale"] == "fr"


def test_terms_of_sale_ask_for_consent(client, db, token, stripe_ok):
    _save_settings(db, terms_url="https://school.test/cgv")
    assert _buy(client, token).status_code == 303
    sent = form_body(_session_calls(stripe_ok)[0].request)
    assert sent["consent_collection[terms_of_service]"] == "required"
    assert "https://school.test/cgv" in sent["custom_text[terms_of_service_acceptance][message]"]


# -- reuse and replacement of the open purchase -------------------------------------------------------

def test_double_click_reuses_the_open_session_without_calling_stripe(client, db, token, stripe_ok):
    first = _buy(client, token)
    calls = len(stripe_ok.calls)
    second = _buy(client, token)
    assert second.status_code == 303 and second.headers["Location"] == first.headers["Location"]
    assert len(stripe_ok.calls) == calls
    assert len(_purchases(db)) == 1


def _first_purchase_then(client, db, token, stripe_ok, change):
    assert _buy(client, token).status_code == 303
    [old] = _purchases(db)
    change(old)
    db.session.commit()
    assert _buy(client, token).status_code == 303
    keys = [call.request.headers["Idempotency-Key"] for call in _session_calls(stripe_ok)]
    db.session.expire_all()
    return old, _purchases(db), keys


def test_an_open_purchase_about_to_expire_is_replaced(client, db, token, stripe_ok):
    def almost_expired(purchase):
        purchase.expires_at = utcnow() + timedelta(minutes=2)

    old, purchases, keys = _first_purchase_then(client, db, token, stripe_ok, almost_expired)
    assert [p.status for p in purchases] == ["expired", "open"]
    new = purchases[1]
    assert keys == [f"lms-checkout-{old.id}", f"lms-checkout-{new.id}"]
    assert new.stripe_checkout_session_id == f"cs_test_{new.id:04d}"


def test_an_open_purchase_at_an_old_price_is_replaced(client, db, token, stripe_ok):
    def new_price(_purchase):
        save_offer(db.session, "c1", {"is_paid": True, "amount": 5990, "currency": "EUR", "vat_rate": 2000,
                                      "audience": "public", "on_sale": True}, actor_id="adm")
        db.session.commit()

    old, purchases, keys = _first_purchase_then(client, db, token, stripe_ok, new_price)
    assert [(p.status, p.amount) for p in purchases] == [("expired", 4990), ("open", 5990)]
    assert keys == [f"lms-checkout-{old.id}", f"lms-checkout-{purchases[1].id}"]
    assert form_body(_session_calls(stripe_ok)[-1].request)["line_items[0][price_data][unit_amount]"] == "5990"


def test_a_new_checkout_is_possible_after_the_session_expired(client, db, token, stripe_ok):
    assert _buy(client, token).status_code == 303
    [old] = _purchases(db)
    old.status = "expired"
    db.session.commit()
    assert _buy(client, token).status_code == 303
    assert [p.status for p in _purchases(db)] == ["expired", "open"]


# -- Stripe's errors ------------------------------------------------------------------------------------

def _server_error(mock):
    stripe_error(mock, responses.POST, "/v1/checkout/sessions", 500, "api_error", "An unknown error occurred")


def _card_error(mock):
    stripe_error(mock, responses.POST, "/v1/checkout/sessions", 402, "card_error", "Your card was declined.",
                 code="card_declined")


def _unreachable(mock):
    pass  # nothing registered: the request fails with a connection error


def _invalid_request(mock):
    stripe_error(mock, responses.POST, "/v1/checkout/sessions", 400, "invalid_request_error",
                 "Invalid currency: eur is not supported for this account.", code="parameter_invalid_empty")


def _idempotency_error(mock):
    stripe_error(mock, responses.POST, "/v1/checkout/sessions", 400, "idempotency_error",
                 "Keys for idempotent requests can only be used with the same parameters they were first used with.")


def test_stripe_unreachable_shows_a_message_and_the_retry_uses_the_same_key(client, db, token, stripe_http):
    stub_tax_rate(stripe_http)  # the session call is not registered: it fails with a connection error
    stub_customers(stripe_http)
    response = _buy(client, token)
    assert response.status_code == 502
    page = response.get_data(as_text=True)
    assert "Stripe could not be reached: nothing was changed, try again in a moment." in page
    assert "Traceback" not in page
    [purchase] = _purchases(db)
    assert purchase.status == "open" and purchase.checkout_url is None
    failed_key = _session_calls(stripe_http)[-1].request.headers["Idempotency-Key"]

    stripe_http.reset()
    _serve_sessions(stripe_http)
    retry = _buy(client, token)
    assert retry.status_code == 303
    [call] = _session_calls(stripe_http)  # the tax rate was remembered
    assert call.request.headers["Idempotency-Key"] == failed_key == f"lms-checkout-{purchase.id}"
    db.session.expire_all()
    assert len(_purchases(db)) == 1 and _purchases(db)[0].checkout_url == retry.headers["Location"]


@pytest.mark.parametrize("fail, status, message", [
    (_server_error, 502, "Stripe could not be reached: nothing was changed, try again in a moment."),
    (_card_error, 402, "Your card was declined."),
])
def test_an_answer_stripe_keeps_for_its_key_makes_the_retry_start_afresh(client, db, token, stripe_http, fail,
                                                                       status, message):
    """Stripe replays a saved error for the same idempotency key: the next click needs a new purchase."""
    stub_tax_rate(stripe_http)
    stub_customers(stripe_http)
    fail(stripe_http)
    response = _buy(client, token)
    assert response.status_code == status
    page = response.get_data(as_text=True)
    assert message in page and "Traceback" not in page
    [purchase] = _purchases(db)
    assert purchase.status == "failed" and purchase.checkout_url is None

    stripe_http.reset()
    _serve_sessions(stripe_http)
    retry = _buy(client, token)
    assert retry.status_code == 303
    [call] = _session_calls(stripe_http)
    db.session.expire_all()
    first, second = _purchases(db)
    assert (first.status, second.status) == ("failed", "open")
    assert call.request.headers["Idempotency-Key"] == f"lms-checkout-{second.id}" != f"lms-checkout-{first.id}"


@pytest.mark.parametrize("fail, message", [
    (_invalid_request, "Stripe refused the request: Invalid currency: eur is not supported for this account."),
    (_idempotency_error, "Stripe refused the request: Keys for idempotent requests can only be used"),
])
def test_stripe_refusing_the_request_shows_its_reason(client, db, token, stripe_http, fail, message):
    stub_tax_rate(stripe_http)
    stub_customers(stripe_http)
    fail(stripe_http)
    response = _buy(client, token)
    assert response.status_code == 502, _alert(response)
    assert message in html.unescape(response.get_data(as_text=True))
    assert _purchases(db)[0].checkout_url is None


def test_stripe_refusing_the_key_is_a_configuration_message(client, db, token, stripe_http):
    stub_tax_rate(stripe_http)
    stub_customers(stripe_http)
    stripe_error(stripe_http, responses.POST, "/v1/checkout/sessions", 401, "invalid_request_error",
                 "Invalid API Key provided: sk_test_****ijkl")
    response = _buy(client, token)
    assert response.status_code == 503
    assert "check the secret key" in response.get_data(as_text=True)


def test_a_retry_long_after_a_failed_attempt_still_gets_a_session(client, db, token, stripe_http):
    """Stripe accepts an expiry 30 minutes to 24 hours away: a purchase kept for a retry must still allow it."""
    stub_tax_rate(stripe_http)
    stub_customers(stripe_http)
    assert _buy(client, token).status_code == 502  # Stripe unreachable
    [purchase] = _purchases(db)
    purchase.expires_at = utcnow() + timedelta(minutes=20)  # the learner comes back 40 minutes later
    db.session.commit()
    _serve_sessions(stripe_http)
    retry = _buy(client, token)
    assert retry.status_code == 303, _alert(retry)
    sent = form_body(_session_calls(stripe_http)[-1].request)
    assert int(sent["expires_at"]) >= time.time() + 30 * 60


def test_json_clients_get_the_error_as_json(client, token, stripe_http):
    stub_tax_rate(stripe_http)
    stub_customers(stripe_http)
    _server_error(stripe_http)
    response = client.post("/payments/checkout/c1", data={"csrf_token": token},
                           headers={**as_user("u1"), "Accept": "application/json"})
    assert response.status_code == 502
    assert response.json["error"]["message"].startswith("Stripe could not be reached")


# -- the cancel page ---------------------------------------------------------------------------------------

def test_cancel_page_is_for_the_purchase_owner_only(client, db, token, stripe_ok):
    _buy(client, token)
    [purchase] = _purchases(db)
    own = client.get(f"/payments/checkout/cancel/{purchase.id}", headers=as_user("u1"))
    assert own.status_code == 200 and "You have not been charged" in own.get_data(as_text=True)
    assert client.get(f"/payments/checkout/cancel/{purchase.id}", headers=as_user("u2")).status_code == 404
    assert client.get(f"/payments/checkout/cancel/{purchase.id}").status_code == 401
