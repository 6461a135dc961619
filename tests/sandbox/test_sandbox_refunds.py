"""Credit notes, refunds (API and dashboard), failing refunds and disputes."""

from __future__ import annotations

import pytest
import stripe

from lms_stripe_plugin.sandbox import SandboxServer


def test_credit_note_with_refund_amount_refunds_the_invoice_payment(paid_session, client, sandbox, webhooks):
    session = paid_session()
    invoice = session.invoice
    note = client.v1.credit_notes.create(params={
        "invoice": invoice.id, "refund_amount": 5950, "reason": "order_change", "memo": "Half the course",
        "metadata": {"order_id": "12"},
    })

    assert note.id.startswith("cn_") and note.object == "credit_note"
    assert note.number == "SBX-0001-CN-01" and note.status == "issued" and note.type == "post_payment"
    assert (note.total, note.amount, note.invoice, note.customer) == (5950, 5950, invoice.id, session.customer)
    assert note.pdf == f"{sandbox.url}/files/credit_notes/{note.id}.pdf"
    assert note.total_taxes[0].amount == 950 and note.total_excluding_tax == 5000
    assert note.memo == "Half the course" and note.reason == "order_change"
    assert note.refunds[0].amount_refunded == 5950

    refund = client.v1.refunds.retrieve(note.refunds[0].refund)
    assert (refund.status, refund.amount, refund.charge) == ("succeeded", 5950, session.payment_intent.latest_charge.id)
    charge = client.v1.charges.retrieve(refund.charge)
    assert (charge.amount_refunded, charge.refunded) == (5950, False)
    assert client.v1.invoices.retrieve(invoice.id).post_payment_credit_notes_amount == 5950
    assert [n.id for n in client.v1.credit_notes.list(params={"invoice": invoice.id}).data] == [note.id]
    assert webhooks.types()[-5:] == ["refund.created", "charge.refunded", "charge.refund.updated",
                                     "credit_note.created", "invoice.updated"]

    second = client.v1.credit_notes.create(params={"invoice": invoice.id, "refund_amount": 5950})
    assert second.number == "SBX-0001-CN-02"
    assert client.v1.charges.retrieve(refund.charge).refunded is True


def test_credit_note_beyond_what_is_left_is_refused(paid_session, client):
    invoice = paid_session().invoice
    client.v1.credit_notes.create(params={"invoice": invoice.id, "refund_amount": 10000})

    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.credit_notes.create(params={"invoice": invoice.id, "refund_amount": 2000})
    assert raised.value.param == "refund_amount" and raised.value.http_status == 400
    assert len(client.v1.credit_notes.list(params={"invoice": invoice.id}).data) == 1
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.credit_notes.create(params={"refund_amount": 100})
    assert raised.value.param == "invoice"


def test_credit_note_by_invoice_line(paid_session, client):
    invoice = paid_session().invoice
    line = invoice.lines.data[0]
    note = client.v1.credit_notes.create(params={
        "invoice": invoice.id, "lines": [{"type": "invoice_line_item", "invoice_line_item": line.id, "amount": 2380}],
        "refund_amount": 2380,
    })
    assert note.total == 2380 and note.lines.data[0].invoice_line_item == line.id
    assert note.lines.data[0].taxes[0].amount == 380
    assert client.v1.credit_notes.line_items.list(note.id).data[0].amount == 2380


def test_partial_refunds_and_the_over_refund_error(paid_session, client):
    session = paid_session()
    intent = session.payment_intent
    first = client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 1000, "reason": "requested_by_customer"})
    second = client.v1.refunds.create(params={"charge": intent.latest_charge.id, "amount": 2000})

    assert first.status == "succeeded" and first.payment_intent == intent.id
    assert client.v1.charges.retrieve(intent.latest_charge.id).amount_refunded == 3000
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 9000})
    assert raised.value.code == "amount_too_large" and raised.value.param == "amount"

    rest = client.v1.refunds.create(params={"payment_intent": intent.id})
    assert rest.amount == 8900
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 1})
    assert raised.value.code == "charge_already_refunded"
    listed = client.v1.refunds.list(params={"payment_intent": intent.id})
    assert [r.id for r in listed.data] == [rest.id, second.id, first.id]


def test_refund_needs_a_target(client):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.refunds.create(params={"amount": 100})
    assert raised.value.code == "parameter_missing"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.refunds.create(params={"charge": "ch_missing"})
    assert raised.value.code == "resource_missing" and raised.value.param == "charge"


def test_refund_on_card_5126_succeeds_then_fails(paid_session, client, control, webhooks):
    intent = paid_session(card="4000000000005126").payment_intent
    refund = client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 5000})

    assert refund.status == "succeeded"  # docs.stripe.com/testing#refunds: starts succeeded, fails later
    assert client.v1.charges.retrieve(intent.latest_charge.id).amount_refunded == 5000
    control("/clock/advance", {"seconds": 3601})

    failed = client.v1.refunds.retrieve(refund.id)
    assert failed.status == "failed" and failed.failure_reason == "expired_or_canceled_card"
    assert client.v1.charges.retrieve(intent.latest_charge.id).amount_refunded == 0
    assert webhooks.types()[-3:] == ["refund.updated", "refund.failed", "charge.refund.updated"]
    assert webhooks.events[-3]["data"]["previous_attributes"]["status"] == "succeeded"


def test_refund_on_card_7726_is_pending_then_succeeds(paid_session, client, control, webhooks):
    intent = paid_session(card="4000000000007726").payment_intent
    refund = client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 5000})

    assert (refund.status, refund.pending_reason) == ("pending", "processing")
    assert client.v1.charges.retrieve(intent.latest_charge.id).amount_refunded == 5000
    control("/clock/advance", {"seconds": 3601})

    done = client.v1.refunds.retrieve(refund.id)
    assert (done.status, done.pending_reason) == ("succeeded", None)
    assert webhooks.types()[-2:] == ["refund.updated", "charge.refund.updated"]
    assert webhooks.events[-2]["data"]["previous_attributes"] == {"status": "pending", "pending_reason": "processing"}


@pytest.mark.parametrize("outcome, final", [("succeeded", "succeeded"), ("failed", "canceled")])
def test_refund_of_an_unsettled_sepa_debit_waits_for_the_debit(create_session, pay, control, client, webhooks,
                                                               outcome, final):
    session = create_session()
    intent_id = pay(session.id, method="sepa_debit").json()["session"]["payment_intent"]
    charge = client.v1.payment_intents.retrieve(intent_id).latest_charge
    refund = client.v1.refunds.create(params={"charge": charge, "amount": 1000})
    assert (refund.status, refund.pending_reason) == ("pending", "charge_pending")

    control(f"/checkout/sessions/{session.id}/settle", {"outcome": outcome})
    settled = client.v1.refunds.retrieve(refund.id)
    assert (settled.status, settled.pending_reason) == (final, None)
    updated = [e for e in webhooks.events if e["type"] == "refund.updated"]
    assert updated[-1]["data"]["previous_attributes"]["pending_reason"] == "charge_pending"


def test_refund_on_card_5126_fails_by_itself_after_the_delay(pay_on, wait_until):
    with SandboxServer(deliver_async=False, refund_failure_seconds=0.2) as server:
        client, session_id = pay_on(server, card="4000000000005126")
        intent = client.v1.checkout.sessions.retrieve(session_id).payment_intent
        refund = client.v1.refunds.create(params={"payment_intent": intent})
        assert wait_until(lambda: client.v1.refunds.retrieve(refund.id).status == "failed", 10)


def test_dashboard_refund_control_endpoint(paid_session, control, client, webhooks):
    charge = paid_session().payment_intent.latest_charge
    response = control(f"/charges/{charge.id}/refund", {"amount": 1900})

    assert response.status_code == 200
    refund = response.json()
    assert refund["amount"] == 1900 and refund["status"] == "succeeded"
    assert client.v1.charges.retrieve(charge.id).amount_refunded == 1900
    assert webhooks.types()[-3:] == ["refund.created", "charge.refunded", "charge.refund.updated"]
    refunded_event = webhooks.events[-2]
    assert refunded_event["request"]["id"] is None
    assert refunded_event["data"]["previous_attributes"]["amount_refunded"] == 0
    assert control(f"/charges/{charge.id}/refund", {"amount": 99999}).json()["error"]["code"] == "amount_too_large"


def test_fail_refund_control_endpoint(paid_session, control, client, webhooks):
    intent = paid_session().payment_intent
    refund = client.v1.refunds.create(params={"payment_intent": intent.id})
    failed = control(f"/refunds/{refund.id}/fail", {"reason": "insufficient_funds"}).json()

    assert failed["status"] == "failed" and failed["failure_reason"] == "insufficient_funds"
    assert webhooks.types()[-3:] == ["refund.updated", "refund.failed", "charge.refund.updated"]
    assert client.v1.charges.retrieve(intent.latest_charge.id).refunded is False
    assert control(f"/refunds/{refund.id}/fail", {}).status_code == 400


def test_card_0259_is_disputed_after_paying(paid_session, client, control, webhooks):
    charge = paid_session(card="4000000000000259").payment_intent.latest_charge

    assert webhooks.types()[-4:] == ["checkout.session.completed", "charge.updated", "charge.dispute.created",
                                     "charge.dispute.funds_withdrawn"]
    dispute = webhooks.events[-2]["data"]["object"]
    assert dispute["charge"] == charge.id and dispute["status"] == "needs_response"
    assert client.v1.charges.retrieve(charge.id).disputed is True
    assert [d.id for d in client.v1.disputes.list(params={"charge": charge.id}).data] == [dispute["id"]]
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.refunds.create(params={"charge": charge.id})
    assert raised.value.code == "charge_disputed"

    closed = control(f"/disputes/{dispute['id']}/close", {"outcome": "lost"}).json()
    assert closed["status"] == "lost"
    assert webhooks.types()[-1] == "charge.dispute.closed"
    assert client.v1.disputes.retrieve(dispute["id"]).status == "lost"


def test_dispute_control_endpoint(paid_session, control, client, webhooks):
    charge = paid_session().payment_intent.latest_charge
    dispute = control(f"/charges/{charge.id}/dispute").json()

    assert dispute["id"].startswith("dp_") and dispute["amount"] == 11900
    assert webhooks.types()[-2:] == ["charge.dispute.created", "charge.dispute.funds_withdrawn"]
    assert control(f"/charges/{charge.id}/dispute").status_code == 400
    won = control(f"/disputes/{dispute['id']}/close", {"outcome": "won"}).json()
    assert won["status"] == "won" and webhooks.events[-2]["data"]["previous_attributes"]["status"] == "needs_response"
    assert webhooks.types()[-2:] == ["charge.dispute.closed", "charge.dispute.funds_reinstated"]
    created_after = client.v1.disputes.list(params={"created": {"gte": dispute["created"]}}).data
    assert [d.id for d in created_after] == [dispute["id"]]
