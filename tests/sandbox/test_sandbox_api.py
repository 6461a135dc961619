"""The sandbox's Stripe API, driven through the real SDK."""

from __future__ import annotations

import time

import pytest
import requests
import stripe


def test_session_with_full_parameter_set_is_created_and_read_back(client, create_session, vat, sandbox):
    session = create_session()

    assert session.id.startswith("cs_test_")
    assert session.object == "checkout.session"
    assert (session.status, session.payment_status, session.mode) == ("open", "unpaid", "payment")
    assert session.url == f"{sandbox.url}/c/pay/{session.id}"
    assert (session.amount_subtotal, session.amount_total, session.currency) == (11900, 11900, "eur")
    assert session.total_details.amount_tax == 1900
    assert session.metadata.to_dict() == {"order_id": "12"}
    assert session.client_reference_id == "user-7"
    assert session.customer is None and session.customer_email == "learner@example.com"
    assert session.customer_creation == "always"
    assert session.invoice is None and session.payment_intent is None
    assert session.payment_method_types == ["card", "klarna", "sepa_debit"]
    assert session.consent_collection.terms_of_service == "required"
    assert session.custom_text.terms_of_service_acceptance.message == "I accept the course terms."
    assert session.invoice_creation.enabled is True
    assert session.invoice_creation.invoice_data.metadata.to_dict() == {"order_id": "12"}
    assert session.livemode is False and session.locale == "en"

    again = client.v1.checkout.sessions.retrieve(session.id)
    assert again.to_dict() == session.to_dict()


def test_line_items_carry_price_product_and_tax(client, create_session, vat):
    session = create_session()
    items = client.v1.checkout.sessions.line_items.list(session.id)

    assert len(items.data) == 1
    item = items.data[0]
    assert item.object == "item" and item.id.startswith("li_")
    assert (item.description, item.quantity, item.amount_total, item.amount_tax) == ("Python for Data Science", 1, 11900, 1900)
    assert item.price.unit_amount == 11900 and item.price.tax_behavior == "inclusive"
    assert item.taxes[0].rate.id == vat.id
    product = client.v1.products.retrieve(item.price.product)
    assert product.name == "Python for Data Science" and product.metadata.to_dict() == {"course_id": "42"}

    expanded = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["line_items"]})
    assert expanded.line_items.data[0].id == item.id


def test_same_idempotency_key_replays_the_same_session(client, session_params, sandbox):
    params = session_params()
    first = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "purchase-12"})
    second = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "purchase-12"})

    assert second.id == first.id
    assert second.last_response.headers.get("Idempotent-Replayed") == "true"
    assert first.last_response.headers.get("Idempotent-Replayed") is None
    assert len(sandbox.state.all("checkout.session")) == 1


def test_idempotency_key_reused_with_other_params_is_an_idempotency_error(client, session_params):
    client.v1.checkout.sessions.create(params=session_params(), options={"idempotency_key": "purchase-13"})

    with pytest.raises(stripe.IdempotencyError) as raised:
        client.v1.checkout.sessions.create(params=session_params(client_reference_id="someone-else"),
                                           options={"idempotency_key": "purchase-13"})
    assert raised.value.http_status == 400
    assert raised.value.json_body["error"]["type"] == "idempotency_error"


def test_idempotency_key_on_another_endpoint_is_refused(client, session_params):
    client.v1.customers.create(params={"email": "a@example.com"}, options={"idempotency_key": "shared"})
    with pytest.raises(stripe.IdempotencyError):
        client.v1.checkout.sessions.create(params=session_params(), options={"idempotency_key": "shared"})


def _line(vat_id, **changes):
    line = {"price_data": {"currency": "eur", "unit_amount": 1000, "product_data": {"name": "Course"}},
            "quantity": 1, "tax_rates": [vat_id]}
    line.update(changes)
    return line


@pytest.mark.parametrize("overrides, param", [
    ({"line_items": None}, "line_items"),
    ({"mode": None}, "mode"),
    ("no-quantity", "line_items[0][quantity]"),
    ("no-name", "line_items[0][price_data][product_data][name]"),
    ("no-currency", "line_items[0][price_data][currency]"),
    ("unknown-tax-rate", "line_items[0][tax_rates][0]"),
    ({"expires_at": "soon"}, "expires_at"),
    ({"expires_at": "too-late"}, "expires_at"),
    ({"customer": "cus_doesnotexist", "customer_email": None, "customer_creation": None}, "customer"),
    ({"customer_email": "not-an-email"}, "customer_email"),
    ({"allowed_payment_method_types": ["ideal"]}, "allowed_payment_method_types[0]"),
    ({"payment_method_types": ["card"]}, "payment_method_types"),
    ({"success_url": "lms.example/no-scheme"}, "success_url"),
    ({"cancel_urll": "https://typo.example"}, "cancel_urll"),
])
def test_invalid_session_params_raise_invalid_request_error_with_param(client, session_params, vat, overrides, param):
    line = _line(vat.id)
    if overrides == "no-quantity":
        line.pop("quantity")
        overrides = {"line_items": [line]}
    elif overrides == "no-name":
        line["price_data"]["product_data"] = {"description": "no name"}
        overrides = {"line_items": [line]}
    elif overrides == "no-currency":
        line["price_data"].pop("currency")
        overrides = {"line_items": [line]}
    elif overrides == "unknown-tax-rate":
        overrides = {"line_items": [_line("txr_missing")]}
    elif overrides.get("expires_at") == "soon":
        overrides = {"expires_at": int(time.time()) + 600}
    elif overrides.get("expires_at") == "too-late":
        overrides = {"expires_at": int(time.time()) + 25 * 3600}

    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.checkout.sessions.create(params=session_params(**overrides))
    assert raised.value.param == param
    assert raised.value.http_status == 400
    assert raised.value.json_body["error"]["type"] == "invalid_request_error"


def test_missing_required_param_message_matches_stripe(client, session_params):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.checkout.sessions.create(params=session_params(line_items=None))
    assert raised.value.user_message == "Missing required param: line_items."
    assert raised.value.code == "parameter_missing"


def test_sepa_debit_needs_euro(client, session_params, vat):
    line = _line(vat.id)
    line["price_data"]["currency"] = "usd"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.checkout.sessions.create(params=session_params(line_items=[line]))
    assert raised.value.param == "allowed_payment_method_types[2]"


def test_allowed_payment_method_types_of_the_2026_api_are_accepted(client, session_params):
    session = client.v1.checkout.sessions.create(params=session_params(allowed_payment_method_types=["card", "sepa_debit"]))
    assert session.payment_method_types == ["card", "sepa_debit"]
    assert session.allowed_payment_method_types == ["card", "sepa_debit"]


def test_payment_method_types_is_not_a_parameter_of_the_pinned_api(client, session_params):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.checkout.sessions.create(params=session_params(payment_method_types=["card"]))
    assert raised.value.code == "parameter_unknown" and raised.value.param == "payment_method_types"
    assert raised.value.user_message == "Received unknown parameter: payment_method_types"


def test_missing_or_invalid_api_key_is_an_authentication_error(sandbox, make_client):
    for key in ("sk_live_realkey123456", "pk_test_publishable"):
        with pytest.raises(stripe.AuthenticationError) as raised:
            make_client(sandbox.url, api_key=key).v1.customers.create(params={"email": "a@example.com"})
        assert raised.value.http_status == 401

    raw = requests.post(f"{sandbox.url}/v1/customers", data={"email": "a@example.com"}, timeout=10)
    assert raw.status_code == 401
    error = raw.json()["error"]
    assert error["type"] == "invalid_request_error" and "did not provide an API key" in error["message"]
    assert set(error) >= {"type", "code", "message", "param"}


def test_restricted_test_keys_are_accepted(sandbox, make_client):
    customer = make_client(sandbox.url, api_key="rk_test_restricted").v1.customers.create(params={"name": "R"})
    assert customer.id.startswith("cus_")


def test_unknown_url_is_a_stripe_shaped_404(sandbox):
    response = requests.get(f"{sandbox.url}/v1/nothing_here", headers={"Authorization": "Bearer sk_test_x"}, timeout=10)
    assert response.status_code == 404
    assert response.json()["error"]["message"].startswith("Unrecognized request URL (GET: /v1/nothing_here)")
    outside = requests.get(f"{sandbox.url}/elsewhere", timeout=10)
    assert outside.status_code == 404 and "Unrecognized request URL" in outside.json()["error"]["message"]


def test_unknown_id_is_resource_missing(client):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.checkout.sessions.retrieve("cs_test_missing")
    assert raised.value.http_status == 404
    assert raised.value.code == "resource_missing"
    assert raised.value.user_message == "No such checkout.session: 'cs_test_missing'"


def test_customers_and_tax_rates_round_trip(client, vat):
    customer = client.v1.customers.create(params={"email": "ada@example.com", "name": "Ada", "metadata": {"lms_user": "7"}})
    assert customer.id.startswith("cus_") and customer.email == "ada@example.com"
    assert client.v1.customers.retrieve(customer.id).metadata.to_dict() == {"lms_user": "7"}

    rate = client.v1.tax_rates.retrieve(vat.id)
    assert (rate.percentage, rate.inclusive, rate.display_name, rate.country) == (19.0, True, "VAT", "DE")
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.tax_rates.create(params={"display_name": "VAT", "inclusive": True})
    assert raised.value.param == "percentage"


def test_session_for_existing_customer(client, create_session):
    customer = client.v1.customers.create(params={"email": "known@example.com"})
    session = create_session(customer=customer.id, customer_email=None, customer_creation=None)
    assert session.customer == customer.id
    with pytest.raises(stripe.InvalidRequestError) as raised:
        create_session(customer=customer.id)
    assert raised.value.param == "customer_email"


def test_list_sessions_with_filters_and_pagination(client, create_session):
    created = [create_session(client_reference_id=f"user-{n}") for n in range(3)]
    newest_first = [s.id for s in reversed(created)]

    page = client.v1.checkout.sessions.list(params={"limit": 2})
    assert page.object == "list" and page.url == "/v1/checkout/sessions"
    assert [s.id for s in page.data] == newest_first[:2] and page.has_more is True
    rest = client.v1.checkout.sessions.list(params={"limit": 2, "starting_after": page.data[-1].id})
    assert [s.id for s in rest.data] == newest_first[2:] and rest.has_more is False

    now = created[0].created
    assert len(client.v1.checkout.sessions.list(params={"created": {"gte": now}}).data) == 3
    assert client.v1.checkout.sessions.list(params={"created": {"lt": now}}).data == []
    assert len(client.v1.checkout.sessions.list(params={"status": "open"}).data) == 3
    assert client.v1.checkout.sessions.list(params={"status": "complete"}).data == []

    all_ids = [s.id for s in client.v1.checkout.sessions.list(params={"limit": 1}).auto_paging_iter()]
    assert all_ids == newest_first


def test_list_refuses_unknown_and_unimplemented_filters(client):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.checkout.sessions.list(params={"colour": "red"})
    assert raised.value.code == "parameter_unknown"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.checkout.sessions.list(params={"payment_link": "plink_1"})
    assert raised.value.code == "parameter_unsupported"


def test_expanding_a_plain_field_is_refused(client, create_session):
    session = create_session()
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["currency"]})
    assert raised.value.param == "expand"


def test_coupon_and_promotion_code_creation(client, create_session, pay):
    coupon = client.v1.coupons.create(params={"percent_off": 20, "duration": "once", "name": "Spring"})
    promo = client.v1.promotion_codes.create(params={"promotion": {"type": "coupon", "coupon": coupon.id},
                                                     "code": "SPRING20"})
    assert promo.code == "SPRING20" and promo.promotion.coupon == coupon.id and promo.active is True

    session = create_session()
    response = pay(session.id, promotion_code="spring20")
    assert response.json()["session"]["amount_total"] == 9520
    assert client.v1.promotion_codes.retrieve(promo.id).times_redeemed == 1


def test_seeded_promotion_codes_exist(client):
    codes = {p.code: p for p in client.v1.promotion_codes.list().data}
    assert {"WELCOME10", "HALF"} <= set(codes)
    assert client.v1.coupons.retrieve(codes["HALF"].promotion.coupon).percent_off == 50


def test_events_can_be_listed_by_type_and_retrieved(client, create_session, pay):
    session = create_session()
    pay(session.id)
    events = client.v1.events.list(params={"type": "checkout.session.completed"})
    assert [e.type for e in events.data] == ["checkout.session.completed"]
    event = client.v1.events.retrieve(events.data[0].id)
    assert event.data.object.id == session.id and event.api_version == "2026-10-28.endive"
    wildcard = client.v1.events.list(params={"type": "invoice.*", "limit": 100})
    assert {e.type for e in wildcard.data} == {"invoice.created", "invoice.finalized", "invoice.paid",
                                               "invoice.payment_succeeded"}
