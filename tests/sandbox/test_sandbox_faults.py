"""Fault injection: each kind of failure surfaces as the SDK exception a real outage would raise."""

from __future__ import annotations

import time

import pytest
import requests
import stripe

SESSIONS = "/v1/checkout/sessions"


@pytest.fixture
def arm(control):
    def arm_fault(kind: str, path: str = SESSIONS, method: str = "POST", **extra):
        response = control("/faults", {"kind": kind, "path": path, "method": method, **extra})
        assert response.status_code == 200, response.text
        return response.json()["faults"]

    return arm_fault


def _sessions(sandbox) -> int:
    return len(sandbox.state.all("checkout.session"))


def test_500_fault_raises_api_error_and_creates_nothing(arm, client, session_params, sandbox):
    arm("500")
    with pytest.raises(stripe.APIError) as raised:
        client.v1.checkout.sessions.create(params=session_params(), options={"idempotency_key": "k-500"})
    assert raised.value.http_status == 500
    assert raised.value.json_body["error"]["type"] == "api_error"
    assert _sessions(sandbox) == 0

    # The fault was used up; the same key now carries the request out.
    session = client.v1.checkout.sessions.create(params=session_params(), options={"idempotency_key": "k-500"})
    assert session.status == "open" and _sessions(sandbox) == 1


def test_429_fault_raises_rate_limit_error(arm, client, session_params, sandbox):
    arm("429")
    with pytest.raises(stripe.RateLimitError) as raised:
        client.v1.checkout.sessions.create(params=session_params())
    assert raised.value.http_status == 429
    assert raised.value.json_body["error"]["code"] == "rate_limit"
    assert _sessions(sandbox) == 0


def test_card_error_fault_raises_card_error(arm, client, session_params):
    arm("card_error")
    with pytest.raises(stripe.CardError) as raised:
        client.v1.checkout.sessions.create(params=session_params())
    assert raised.value.code == "card_declined" and raised.value.http_status == 402


def test_connection_fault_drops_the_connection(arm, sandbox, session_params, make_client):
    arm("connection")
    with pytest.raises(stripe.APIConnectionError):
        make_client(sandbox.url, timeout=1).v1.checkout.sessions.create(params=session_params())
    assert _sessions(sandbox) == 0


def test_timeout_fault_makes_a_short_client_time_out(arm, sandbox, session_params, make_client):
    arm("timeout", timeout_seconds=3)
    started = time.monotonic()
    with pytest.raises(stripe.APIConnectionError):
        make_client(sandbox.url, timeout=1).v1.checkout.sessions.create(params=session_params())
    assert time.monotonic() - started < 2.5
    assert _sessions(sandbox) == 0


def test_timeout_after_the_work_then_an_idempotent_retry_returns_the_same_object(arm, sandbox, session_params,
                                                                               make_client, client):
    arm("timeout", timeout_seconds=3, after=True)
    params = session_params()
    with pytest.raises(stripe.APIConnectionError):
        make_client(sandbox.url, timeout=1).v1.checkout.sessions.create(
            params=params, options={"idempotency_key": "purchase-99"})
    assert _sessions(sandbox) == 1  # Stripe did the work; only the answer was lost

    retried = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "purchase-99"})
    assert retried.id == sandbox.state.all("checkout.session")[0]["id"]
    assert retried.last_response.headers.get("Idempotent-Replayed") == "true"
    assert _sessions(sandbox) == 1


def test_sdk_network_retries_get_past_a_single_500(arm, sandbox, session_params, make_client):
    arm("500")
    session = make_client(sandbox.url, retries=1).v1.checkout.sessions.create(params=session_params())
    assert session.id.startswith("cs_test_") and _sessions(sandbox) == 1


def test_faults_match_method_path_pattern_and_count(arm, control, client, create_session):
    session = create_session()
    arm("500", path="/v1/checkout/sessions/*", method="GET", times=2)
    assert len(control("/faults", method="GET").json()["faults"]) == 1

    client.v1.customers.create(params={"email": "unaffected@example.com"})
    for _ in range(2):
        with pytest.raises(stripe.APIError):
            client.v1.checkout.sessions.retrieve(session.id)
    assert client.v1.checkout.sessions.retrieve(session.id).id == session.id
    assert control("/faults", method="GET").json()["faults"] == []


def test_clearing_faults(arm, control, client, create_session):
    arm("500", times=5)
    assert control("/faults", method="DELETE").json() == {"faults": []}
    assert create_session().status == "open"


def test_invalid_fault_kind_is_refused(control):
    response = control("/faults", {"kind": "meteor"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "kind"


def test_faults_do_not_touch_hosted_pages_or_control_endpoints(arm, create_session, control):
    session = create_session()
    arm("500", path="*", method="*", times=1)
    assert requests.get(session.url, timeout=10).status_code == 200
    assert control("/state", method="GET").status_code == 200
    assert len(control("/faults", method="GET").json()["faults"]) == 1
