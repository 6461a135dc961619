"""Which events Stripe sends, and deliveries out of order and at once (``webhook_shuffle``, ``webhook_concurrency``)."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests
import stripe

from lms_stripe_plugin.sandbox import SandboxServer
from lms_stripe_plugin.sandbox.schema import EVENT_TYPES
from lms_stripe_plugin.sandbox.state import SandboxState

CHECKOUT_WITH_INVOICE = {
    "customer.created", "payment_intent.created", "payment_intent.succeeded", "charge.succeeded", "charge.updated",
    "checkout.session.completed", "invoice.created", "invoice.finalized", "invoice.paid",
    "invoice.payment_succeeded", "invoice_payment.paid",
}


class _Recorder:
    """A sink that records event types and how many deliveries were under way at once."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.types: list[str] = []
        self.in_flight = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def __call__(self, payload: bytes, headers: dict) -> int:
        with self._lock:
            self.in_flight += 1
            self.most_at_once = max(self.most_at_once, self.in_flight)
        time.sleep(self.delay)
        with self._lock:
            self.in_flight -= 1
            self.types.append(json.loads(payload)["type"])
        return 200


def test_a_checkout_payment_with_an_invoice_sends_stripes_full_set_of_events(paid_session, webhooks, sandbox):
    session = paid_session()
    assert set(webhooks.types()) >= CHECKOUT_WITH_INVOICE
    payment = next(e for e in webhooks.events if e["type"] == "invoice_payment.paid")["data"]["object"]
    assert payment["invoice"] == session.invoice.id and payment["status"] == "paid"
    updated = next(e for e in webhooks.events if e["type"] == "charge.updated")
    assert updated["data"]["previous_attributes"] == {"balance_transaction": None}
    assert updated["data"]["object"]["balance_transaction"].startswith("txn_")
    assert {e["type"] for e in sandbox.state.all("event")} <= EVENT_TYPES


def test_only_event_types_of_the_pinned_api_can_be_emitted():
    state = SandboxState()
    with pytest.raises(ValueError):
        state.emit("checkout.session.paid", {"id": "cs_test_1", "object": "checkout.session"})
    state.close()


def test_shuffled_deliveries_reach_the_endpoint_out_of_order(pay_on):
    recorder = _Recorder()
    with SandboxServer(deliver_async=False, webhook_sink=recorder, webhook_shuffle=True,
                       webhook_shuffle_seed=7) as server:
        pay_on(server)
        created = [e["type"] for e in reversed(server.state.all("event"))]
    assert sorted(recorder.types) == sorted(created)
    assert recorder.types != created


def test_concurrent_deliveries_overlap(pay_on):
    recorder = _Recorder(delay=0.05)
    with SandboxServer(deliver_async=False, webhook_sink=recorder, webhook_concurrency=4) as server:
        pay_on(server)
        assert server.state.wait_for_deliveries(10)
    assert recorder.most_at_once > 1
    assert set(recorder.types) >= CHECKOUT_WITH_INVOICE


def test_asynchronous_shuffled_concurrent_deliveries_all_arrive(pay_on):
    recorder = _Recorder(delay=0.01)
    with SandboxServer(webhook_sink=recorder, webhook_shuffle=True, webhook_concurrency=3) as server:
        pay_on(server)
        assert server.state.wait_for_deliveries(10)
        assert len(recorder.types) == len(server.state.all("event"))
    assert recorder.most_at_once > 1


def test_concurrency_below_one_is_refused():
    with pytest.raises(ValueError):
        SandboxServer(webhook_concurrency=0)


def test_dispute_lifecycle_sends_charge_dispute_updated(paid_session, client, webhooks):
    charge = paid_session(card="4000000000000259").payment_intent.latest_charge
    dispute = client.v1.disputes.list(params={"charge": charge.id}).data[0]

    drafted = client.v1.disputes.update(dispute.id, params={"evidence": {"uncategorized_text": "Course was taken"}})
    assert drafted.status == "needs_response" and drafted.evidence.uncategorized_text == "Course was taken"
    assert webhooks.types()[-1] == "charge.dispute.updated"
    assert webhooks.events[-1]["data"]["previous_attributes"]["evidence"]["uncategorized_text"] is None

    submitted = client.v1.disputes.update(dispute.id, params={"submit": True})
    assert submitted.status == "under_review" and submitted.evidence_details.submission_count == 1
    assert webhooks.events[-1]["data"]["previous_attributes"]["status"] == "needs_response"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.disputes.update(dispute.id, params={"evidence": {"uncategorized_text": "more"}})


def test_accepting_a_dispute_closes_it_as_lost(paid_session, client, webhooks):
    charge = paid_session(card="4000000000000259").payment_intent.latest_charge
    dispute = client.v1.disputes.list(params={"charge": charge.id}).data[0]
    closed = client.v1.disputes.close(dispute.id)
    assert closed.status == "lost" and webhooks.types()[-1] == "charge.dispute.closed"


def test_dispute_evidence_outside_the_api_is_refused(paid_session, client, sandbox):
    charge = paid_session(card="4000000000000259").payment_intent.latest_charge
    dispute = client.v1.disputes.list(params={"charge": charge.id}).data[0]
    response = requests.post(f"{sandbox.url}/v1/disputes/{dispute.id}", data={"evidence[mood]": "sad"},
                             headers={"Authorization": "Bearer sk_test_x"}, timeout=10)
    assert response.status_code == 400 and response.json()["error"]["param"] == "evidence[mood]"
