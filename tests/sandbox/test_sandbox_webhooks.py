"""Webhook signing and delivery: sinks, HTTP endpoints, retries, ordering, resends."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import requests
import stripe
from flask import Flask, request
from werkzeug.serving import make_server

from lms_stripe_plugin.sandbox import SandboxServer, create_app, sign_payload

AUTH = {"Authorization": "Bearer sk_test_sandbox"}


def _create_customer(url: str, email: str = "a@example.com") -> dict:
    response = requests.post(f"{url}/v1/customers", data={"email": email}, headers=AUTH, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_sign_payload_verifies_with_the_sdk():
    payload = json.dumps({"id": "evt_1", "object": "event", "type": "ping", "data": {"object": {}}}).encode()
    header = sign_payload(payload, "whsec_abc")

    assert header.startswith("t=") and ",v1=" in header
    assert stripe.Webhook.construct_event(payload, header, "whsec_abc").id == "evt_1"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, header, "whsec_other")
    old = sign_payload(payload, "whsec_abc", timestamp=int(time.time()) - 3600)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, old, "whsec_abc")


def test_async_delivery_retries_until_the_endpoint_answers_2xx():
    answers = [500, 500, 200]
    calls = []

    def sink(payload, headers):
        calls.append(json.loads(payload)["type"])
        return answers.pop(0) if answers else 200

    with SandboxServer(webhook_sink=sink, webhook_retry_backoff=0.05) as server:
        customer = _create_customer(server.url)
        assert server.state.wait_for_deliveries(10)
        attempts = [a for a in server.state.deliveries if a.event_type == "customer.created"]

    assert [(a.attempt, a.status_code) for a in attempts] == [(1, 500), (2, 500), (3, 200)]
    assert attempts[-1].succeeded and calls == ["customer.created"] * 3
    assert customer["id"].startswith("cus_")


def test_delivery_gives_up_after_the_last_attempt():
    with SandboxServer(webhook_sink=lambda p, h: 503, webhook_retry_backoff=0.01, webhook_max_attempts=4) as server:
        _create_customer(server.url)
        assert server.state.wait_for_deliveries(10)
        assert [a.attempt for a in server.state.deliveries] == [1, 2, 3, 4]
        assert not any(a.succeeded for a in server.state.deliveries)


def test_backoff_starts_around_half_a_second():
    moments = []

    def sink(payload, headers):
        moments.append(time.monotonic())
        return 500 if len(moments) == 1 else 200

    with SandboxServer(webhook_sink=sink) as server:
        _create_customer(server.url)
        assert server.state.wait_for_deliveries(10)
    assert 0.4 <= moments[1] - moments[0] < 2.0


def test_async_deliveries_keep_the_order_of_creation():
    received = []

    def slow_sink(payload, headers):
        time.sleep(0.01)
        received.append(json.loads(payload)["data"]["object"]["email"])
        return 200

    with SandboxServer(webhook_sink=slow_sink) as server:
        emails = [f"user{n}@example.com" for n in range(8)]
        for email in emails:
            _create_customer(server.url, email)
        assert server.state.wait_for_deliveries(10)
    assert received == emails


def test_wait_for_deliveries_times_out_while_an_endpoint_is_slow():
    release = threading.Event()

    def blocking_sink(payload, headers):
        release.wait(5)
        return 200

    with SandboxServer(webhook_sink=blocking_sink) as server:
        _create_customer(server.url)
        assert server.state.wait_for_deliveries(0.1) is False
        release.set()
        assert server.state.wait_for_deliveries(5) is True


def test_http_delivery_to_webhook_url_is_signed_json():
    received = []
    receiver = Flask("webhook-receiver")

    @receiver.post("/hooks")
    def hook():
        received.append((request.get_data(), request.headers.get("Stripe-Signature"), request.content_type))
        return {"ok": True}

    http = make_server("127.0.0.1", 0, receiver, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{http.server_port}/hooks"
        with SandboxServer(webhook_url=url, webhook_secret="whsec_http") as server:
            customer = _create_customer(server.url)
            assert server.state.wait_for_deliveries(10)
    finally:
        http.shutdown()
        http.server_close()
        thread.join(5)

    body, signature, content_type = received[0]
    event = stripe.Webhook.construct_event(body, signature, "whsec_http")
    assert event.type == "customer.created" and event.data.object.id == customer["id"]
    assert content_type.startswith("application/json")


def test_connection_errors_are_retried_and_recorded():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]  # closed again when the block ends: nothing listens there
    with SandboxServer(webhook_url=f"http://127.0.0.1:{dead_port}/hooks", webhook_retry_backoff=0.01,
                       webhook_max_attempts=2) as server:
        _create_customer(server.url)
        assert server.state.wait_for_deliveries(10)
        attempts = server.state.deliveries
    assert [(a.attempt, a.status_code) for a in attempts] == [(1, None), (2, None)]
    assert all(a.error for a in attempts)


def test_resend_delivers_an_event_again(sandbox, webhooks, control):
    customer = _create_customer(sandbox.url)
    event_id = webhooks.events[-1]["id"]
    response = control(f"/events/{event_id}/resend")

    assert response.json() == {"event": event_id, "queued": True}
    assert [e["id"] for e in webhooks.events[-2:]] == [event_id, event_id]
    assert webhooks.events[-1]["data"]["object"]["id"] == customer["id"]
    assert control("/events/evt_missing/resend").status_code == 404


def test_delivery_log_is_exposed_by_the_control_endpoint(sandbox, webhooks, control):
    webhooks.statuses = [500]
    _create_customer(sandbox.url)
    log = control("/deliveries", method="GET").json()
    assert [(d["attempt"], d["status_code"]) for d in log] == [(1, 500), (2, 200)]
    assert log[0]["event_type"] == "customer.created"


def test_events_delivered_match_events_listed(sandbox, webhooks, client):
    _create_customer(sandbox.url)
    listed = client.v1.events.retrieve(webhooks.events[-1]["id"])
    assert json.loads(json.dumps(listed.to_dict())) == webhooks.events[-1]
    assert webhooks.events[-1]["pending_webhooks"] == 1


def test_without_webhook_target_events_are_only_stored():
    app = create_app()
    state = app.extensions["stripe_sandbox"]
    response = app.test_client().post("/v1/customers", data={"email": "a@example.com"}, headers=AUTH)
    assert response.status_code == 200
    assert [e["type"] for e in state.all("event")] == ["customer.created"]
    assert state.all("event")[0]["pending_webhooks"] == 0
    assert state.deliveries == [] and state.wait_for_deliveries(0.1)
    state.close()
