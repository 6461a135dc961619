"""Payment Records: one Checkout payment settling several invoices, each invoice credited with its part by a
record reported for it; what Stripe allows and refuses ("Payment application": a payment is applied whole, to
one invoice, of its customer, up to what the invoice owes)."""

from __future__ import annotations

import time

import pytest
import stripe


@pytest.fixture
def learner(client):
    return client.v1.customers.create(params={"email": "camille@example.fr", "name": "Camille Martin"})


@pytest.fixture
def open_invoice(client, learner):
    def make(amount=30000, currency="eur", customer=None):
        invoice = client.v1.invoices.create(params={
            "customer": (customer or learner).id, "collection_method": "send_invoice", "days_until_due": 30,
            "currency": currency})
        client.v1.invoices.add_lines(invoice.id, params={"lines": [{"price_data": {
            "currency": currency, "unit_amount": amount, "product_data": {"name": "Course"}}, "quantity": 1}]})
        return client.v1.invoices.finalize_invoice(invoice.id)

    return make


@pytest.fixture
def report(client, learner):
    """Report a guaranteed payment of ``amount`` for the learner (or ``customer``), referencing ``reference``."""

    def make(amount, currency="eur", customer=None, reference="pi_settlement", **overrides):
        now = int(time.time())
        params = {"amount_requested": {"currency": currency, "value": amount}, "initiated_at": now,
                  "outcome": "guaranteed", "guaranteed": {"guaranteed_at": now},
                  "customer_details": {"customer": (customer or learner).id},
                  "payment_method_details": {"type": "custom", "custom": {"display_name": "Stripe Checkout"}},
                  "processor_details": {"type": "custom", "custom": {"payment_reference": reference}},
                  "metadata": {"lms_part_id": "1"}}
        params.update(overrides)
        return client.v1.payment_records.report_payment(params=params)

    return make


def _settlement_intent(client, learner, create_session, pay, amount):
    """One Checkout payment of ``amount`` by the learner, with no invoice of its own."""
    session = create_session(customer=learner.id, customer_email=None, customer_creation=None,
                             invoice_creation=None, allow_promotion_codes=None,
                             line_items=[{"price_data": {"currency": "eur", "unit_amount": amount,
                                                         "product_data": {"name": "Invoices A and B"}},
                                          "quantity": 1}])
    assert pay(session.id).status_code == 200
    return client.v1.checkout.sessions.retrieve(session.id).payment_intent


def test_one_payment_settles_two_invoices_through_a_record_each(client, learner, open_invoice, report,
                                                                create_session, pay, webhooks):
    first, second = open_invoice(30000), open_invoice(12000)
    intent = _settlement_intent(client, learner, create_session, pay, 42000)
    for target in (first, second):  # the whole PaymentIntent is more than either invoice owes
        with pytest.raises(stripe.InvalidRequestError) as raised:
            client.v1.invoices.attach_payment(target.id, params={"payment_intent": intent})
        assert raised.value.code == "amount_too_large"

    record = report(30000, reference=intent)
    assert (record.reported_by, record.amount_guaranteed.value, record.amount_requested.currency) == (
        "self", 30000, "eur")
    assert record.processor_details.custom.payment_reference == intent
    assert client.v1.payment_records.retrieve(record.id).id == record.id
    mark = len(webhooks.events)
    paid = client.v1.invoices.attach_payment(first.id, params={"payment_record": record.id, "expand": ["payments"]})
    assert (paid.status, paid.amount_paid, paid.amount_remaining) == ("paid", 30000, 0)
    attached = [p for p in paid.payments.data if not p.is_default]
    assert [(p.status, p.amount_paid, p.payment.type, p.payment.payment_record) for p in attached] == [
        ("paid", 30000, "payment_record", record.id)]
    types = [e["type"] for e in webhooks.events[mark:]]
    assert types[0] == "invoice_payment.paid" and types[-3:] == ["invoice.updated", "invoice.paid",
                                                                 "invoice.payment_succeeded"]
    paid_payment = webhooks.events[mark]["data"]["object"]
    assert paid_payment["payment"] == {"payment_record": record.id, "type": "payment_record"}

    other = report(12000, reference=intent)
    settled = client.v1.invoices.attach_payment(second.id, params={"payment_record": other.id})
    assert (settled.status, settled.amount_remaining) == ("paid", 0)
    listed = client.v1.invoice_payments.list(params={"payment": {"type": "payment_record",
                                                                 "payment_record": other.id}}).data
    assert [p.invoice for p in listed] == [second.id]


def test_a_record_is_applied_once_whole_to_an_invoice_of_its_customer(client, learner, open_invoice, report):
    invoice = open_invoice(30000)
    record = report(10000)
    client.v1.invoices.attach_payment(invoice.id, params={"payment_record": record.id})
    for target in (invoice, open_invoice(30000)):  # never across several invoices
        with pytest.raises(stripe.InvalidRequestError) as raised:
            client.v1.invoices.attach_payment(target.id, params={"payment_record": record.id})
        assert raised.value.param == "payment_record" and "already attached" in raised.value.user_message

    someone = client.v1.customers.create(params={"email": "other@example.com"})
    refused = {"more": report(20001), "customer": report(1000, customer=someone),
               "currency": report(1000, currency="usd"),
               "failed": report(1000, outcome="failed", guaranteed=None, failed={"failed_at": int(time.time())})}
    for case, bad in refused.items():
        with pytest.raises(stripe.InvalidRequestError) as raised:
            client.v1.invoices.attach_payment(invoice.id, params={"payment_record": bad.id})
        assert raised.value.param == "payment_record", case
        assert raised.value.code == ("amount_too_large" if case == "more" else None), case
    after = client.v1.invoices.retrieve(invoice.id)
    assert (after.amount_paid, after.amount_remaining) == (10000, 20000)

    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.invoices.attach_payment(invoice.id, params={"payment_record": record.id, "payment_intent": "pi_1"})
    assert raised.value.param == "payment_record"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.invoices.attach_payment(invoice.id, params={"payment_record": "pr_missing"})
    assert (raised.value.code, raised.value.param) == ("resource_missing", "payment_record")


def test_a_paid_invoice_takes_no_record(client, open_invoice, report):
    invoice = open_invoice(5000)
    client.v1.invoices.attach_payment(invoice.id, params={"payment_record": report(5000).id})
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.invoices.attach_payment(invoice.id, params={"payment_record": report(100).id})
    assert "paid" in raised.value.user_message


@pytest.mark.parametrize("changes, param", [
    ({"guaranteed": None}, "guaranteed"),
    ({"failed": {"failed_at": 1}}, "failed"),
    ({"amount_requested": {"currency": "eur", "value": 0}}, "amount_requested[value]"),
    ({"amount_requested": {"currency": "euro", "value": 100}}, "amount_requested[currency]"),
    ({"customer_details": {"customer": "cus_missing"}}, "customer_details[customer]"),
    ({"processor_details": {"type": "custom"}}, "processor_details[custom]"),
])
def test_reports_are_checked(report, changes, param):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        report(1000, **changes)
    assert raised.value.param == param


def test_a_credit_note_never_refunds_a_record(client, open_invoice, report):
    """Stripe refunds what it charged: an invoice paid by a record is credited out of band."""
    invoice = open_invoice(5000)
    client.v1.invoices.attach_payment(invoice.id, params={"payment_record": report(5000).id})
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 5000, "refund_amount": 5000})
    assert raised.value.param == "refund_amount"
    note = client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 5000, "out_of_band_amount": 5000})
    assert (note.out_of_band_amount, note.total) == (5000, 5000)
