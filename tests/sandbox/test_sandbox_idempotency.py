"""Idempotency keys as Stripe keeps them: the first answer whatever its status, for 24 hours."""

from __future__ import annotations

import pytest
import requests
import stripe

AUTH = {"Authorization": "Bearer sk_test_idem"}


def _post(sandbox, path, data, key, **headers):
    return requests.post(f"{sandbox.url}{path}", data=data, headers={**AUTH, "Idempotency-Key": key, **headers},
                         timeout=10)


def test_an_error_raised_by_the_endpoint_is_kept_and_replayed(paid_session, client, control):
    charge = paid_session(card="4000000000000259").payment_intent.latest_charge  # disputed at once
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.refunds.create(params={"charge": charge.id}, options={"idempotency_key": "refund-1"})
    assert raised.value.code == "charge_disputed"

    dispute = client.v1.disputes.list(params={"charge": charge.id}).data[0]
    control(f"/disputes/{dispute.id}/close", {"outcome": "won"})
    with pytest.raises(stripe.InvalidRequestError) as replayed:
        client.v1.refunds.create(params={"charge": charge.id}, options={"idempotency_key": "refund-1"})
    assert replayed.value.code == "charge_disputed"
    assert replayed.value.headers["Idempotent-Replayed"] == "true"
    assert client.v1.refunds.create(params={"charge": charge.id}, options={"idempotency_key": "refund-2"}).status


def test_a_request_refused_by_validation_keeps_nothing(sandbox, client, session_params):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.checkout.sessions.create(params=session_params(payment_method_types=["card"]),
                                           options={"idempotency_key": "purchase-1"})
    assert raised.value.code == "parameter_unknown"
    session = client.v1.checkout.sessions.create(params=session_params(), options={"idempotency_key": "purchase-1"})
    assert session.last_response.headers.get("Idempotent-Replayed") is None


def test_authentication_failures_keep_nothing(sandbox):
    refused = _post(sandbox, "/v1/customers", {"email": "a@example.com"}, "cust-1", Authorization="Bearer sk_live_x")
    assert refused.status_code == 401
    created = _post(sandbox, "/v1/customers", {"email": "a@example.com"}, "cust-1")
    assert created.status_code == 200 and "Idempotent-Replayed" not in created.headers


def test_a_500_while_the_endpoint_ran_is_kept_and_replayed_without_retry(control, sandbox, session_params,
                                                                        make_client):
    control("/faults", {"kind": "500", "path": "/v1/checkout/sessions", "method": "POST", "after": True})
    retrying = make_client(sandbox.url, retries=2)
    with pytest.raises(stripe.APIError) as raised:
        retrying.v1.checkout.sessions.create(params=session_params(), options={"idempotency_key": "purchase-500"})
    assert raised.value.http_status == 500
    assert raised.value.headers["Stripe-Should-Retry"] == "false"
    assert len(sandbox.state.all("checkout.session")) == 1  # the work was done, the answer lost

    with pytest.raises(stripe.APIError) as replayed:
        retrying.v1.checkout.sessions.create(params=session_params(), options={"idempotency_key": "purchase-500"})
    assert replayed.value.headers["Idempotent-Replayed"] == "true"
    assert len(sandbox.state.all("checkout.session")) == 1


def test_a_500_before_the_endpoint_ran_keeps_nothing(control, sandbox, client, session_params):
    control("/faults", {"kind": "500", "path": "/v1/checkout/sessions", "method": "POST"})
    with pytest.raises(stripe.APIError):
        client.v1.checkout.sessions.create(params=session_params(), options={"idempotency_key": "purchase-2"})
    session = client.v1.checkout.sessions.create(params=session_params(), options={"idempotency_key": "purchase-2"})
    assert session.status == "open" and len(sandbox.state.all("checkout.session")) == 1


def test_keys_expire_after_24_hours_of_sandbox_time(client, control):
    first = client.v1.customers.create(params={"email": "a@example.com"}, options={"idempotency_key": "cust-2"})
    control("/clock/advance", {"seconds": 23 * 3600})
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create(params={"email": "b@example.com"}, options={"idempotency_key": "cust-2"})
    assert client.v1.customers.create(params={"email": "a@example.com"},
                                      options={"idempotency_key": "cust-2"}).id == first.id

    control("/clock/advance", {"seconds": 3600})
    second = client.v1.customers.create(params={"email": "b@example.com"}, options={"idempotency_key": "cust-2"})
    assert second.id != first.id and second.email == "b@example.com"
    assert second.last_response.headers.get("Idempotent-Replayed") is None


def test_same_key_with_other_params_is_an_idempotency_error_even_after_an_error(client):
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create(params={"charge": "ch_missing"}, options={"idempotency_key": "refund-3"})
    with pytest.raises(stripe.IdempotencyError) as raised:
        client.v1.refunds.create(params={"charge": "ch_other"}, options={"idempotency_key": "refund-3"})
    assert raised.value.http_status == 400


def test_keys_belong_to_the_account_not_to_one_api_key(sandbox, make_client):
    first = make_client(sandbox.url, api_key="sk_test_one").v1.customers.create(
        params={"email": "a@example.com"}, options={"idempotency_key": "cust-3"})
    again = make_client(sandbox.url, api_key="rk_test_two").v1.customers.create(
        params={"email": "a@example.com"}, options={"idempotency_key": "cust-3"})
    assert again.id == first.id and again.last_response.headers["Idempotent-Replayed"] == "true"
