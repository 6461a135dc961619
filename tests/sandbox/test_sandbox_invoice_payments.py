"""Invoices paid in several goes: Checkout payments attached to an invoice, SEPA debits, credit notes."""

from __future__ import annotations

import pytest
import requests
import stripe


CARD_FORM = {"action": "pay", "method": "card", "card_number": "4242 4242 4242 4242", "card_expiry": "12 / 34",
             "card_cvc": "123", "billing_name": "Camille Martin", "terms": "accepted"}


@pytest.fixture
def vat20(client):
    return client.v1.tax_rates.create(params={"display_name": "TVA", "percentage": 20, "inclusive": True,
                                              "country": "FR"})


@pytest.fixture
def learner(client):
    return client.v1.customers.create(params={"email": "camille@example.fr", "name": "Camille Martin",
                                              "preferred_locales": ["fr-FR"], "address": {"country": "FR"}})


@pytest.fixture
def open_invoice(client, learner, vat20):
    """Finalize a send_invoice invoice of ``amount`` (tax included) for the learner."""

    def make(amount=30000, currency="eur", customer=None, rates=True):
        invoice = client.v1.invoices.create(params={
            "customer": (customer or learner).id, "collection_method": "send_invoice", "days_until_due": 30,
            "currency": currency, "description": "Formation Python"})
        line = {"price_data": {"currency": currency, "unit_amount": amount, "tax_behavior": "inclusive",
                               "product_data": {"name": "Python course"}}, "quantity": 1}
        if rates:
            line["tax_rates"] = [vat20.id]
        client.v1.invoices.add_lines(invoice.id, params={"lines": [line]})
        return client.v1.invoices.finalize_invoice(invoice.id)

    return make


@pytest.fixture
def checkout_for(client, session_params):
    """A Checkout Session as the plugin makes it to collect part of an invoice: the invoice's customer,
    one price_data line, no invoice_creation, the invoice named in the PaymentIntent's metadata."""

    def make(invoice, amount, methods=("card", "sepa_debit")):
        params = session_params(
            customer=invoice.customer, customer_email=None, customer_creation=None, invoice_creation=None,
            allow_promotion_codes=None, allowed_payment_method_types=list(methods),
            payment_intent_data={"metadata": {"invoice": invoice.id}}, metadata={"invoice": invoice.id},
            line_items=[{"price_data": {"currency": invoice.currency, "unit_amount": amount,
                                        "product_data": {"name": f"Payment towards {invoice.number}"}},
                         "quantity": 1}],
        )
        return client.v1.checkout.sessions.create(params=params)

    return make


def _intent_of(client, session):
    return client.v1.checkout.sessions.retrieve(session.id).payment_intent


def test_a_300_euro_invoice_paid_90_then_210_through_two_checkout_payments(
        client, open_invoice, checkout_for, pay, webhooks):
    invoice = open_invoice(30000)
    first = checkout_for(invoice, 9000)
    assert pay(first.id).status_code == 200
    intent = client.v1.payment_intents.retrieve(_intent_of(client, first))
    assert (intent.customer, intent.currency, intent.amount, intent.status) == (invoice.customer, "eur", 9000,
                                                                                "succeeded")
    assert intent.metadata.to_dict() == {"invoice": invoice.id}
    assert client.v1.checkout.sessions.retrieve(first.id).invoice is None

    mark = len(webhooks.events)
    after_first = client.v1.invoices.attach_payment(invoice.id, params={"payment_intent": intent.id,
                                                                        "expand": ["payments"]})
    assert (after_first.status, after_first.amount_paid, after_first.amount_remaining) == ("open", 9000, 21000)
    attached = [p for p in after_first.payments.data if not p.is_default]
    assert [(p.status, p.amount_requested, p.amount_paid, p.payment.payment_intent) for p in attached] == [
        ("paid", 9000, 9000, intent.id)]
    assert attached[0].status_transitions.paid_at is not None
    events = webhooks.events[mark:]
    assert [e["type"] for e in events] == ["invoice_payment.paid", "invoice.updated"]
    assert events[1]["data"]["previous_attributes"] == {"amount_paid": 0, "amount_remaining": 30000}
    default = next(p for p in after_first.payments.data if p.is_default)
    assert (default.status, default.amount_requested) == ("open", 21000)
    assert client.v1.payment_intents.retrieve(default.payment.payment_intent).amount == 21000

    second = checkout_for(invoice, 21000)
    submitted = requests.post(second.url, data=CARD_FORM, allow_redirects=False, timeout=10)  # the hosted page
    assert submitted.status_code == 303
    mark = len(webhooks.events)
    paid = client.v1.invoices.attach_payment(invoice.id, params={"payment_intent": _intent_of(client, second)})
    assert (paid.status, paid.amount_paid, paid.amount_remaining, paid.amount_overpaid) == ("paid", 30000, 0, 0)
    assert paid.status_transitions.paid_at is not None
    types = [e["type"] for e in webhooks.events[mark:]]
    assert types[0] == "invoice_payment.paid" and types[-3:] == ["invoice.updated", "invoice.paid",
                                                                 "invoice.payment_succeeded"]
    assert "payment_intent.canceled" in types  # nothing left for the default payment
    paid_event = next(e for e in webhooks.events[mark:] if e["type"] == "invoice.paid")
    assert paid_event["data"]["previous_attributes"]["status"] == "open"

    listed = client.v1.invoice_payments.list(params={"invoice": invoice.id, "status": "paid"}).data
    assert sorted(p.amount_paid for p in listed) == [9000, 21000]
    by_intent = client.v1.invoice_payments.list(params={"payment": {"type": "payment_intent",
                                                                    "payment_intent": intent.id}}).data
    assert [p.invoice for p in by_intent] == [invoice.id]
    assert client.v1.invoice_payments.retrieve(by_intent[0].id).amount_paid == 9000
    canceled = client.v1.invoice_payments.list(params={"invoice": invoice.id, "status": "canceled"}).data
    assert [p.is_default for p in canceled] == [True]


@pytest.mark.parametrize("case, code", [("more", "amount_too_large"), ("customer", None), ("currency", None),
                                        ("twice", None), ("invoice_creation", None)])
def test_payments_that_cannot_be_attached(client, open_invoice, checkout_for, create_session, pay, learner, case,
                                          code):
    invoice = open_invoice(30000)
    if case == "more":
        session = checkout_for(invoice, 30100)
    elif case == "customer":
        someone = client.v1.customers.create(params={"email": "other@example.com"})
        session = checkout_for(open_invoice(30000, customer=someone), 1000)
    elif case == "currency":
        session = checkout_for(open_invoice(30000, currency="usd", rates=False), 1000, methods=("card",))
    elif case == "twice":
        session = checkout_for(invoice, 1000)
    else:
        session = create_session(customer=learner.id, customer_email=None, customer_creation=None)
    assert pay(session.id).status_code == 200
    intent = _intent_of(client, session)
    if case == "twice":
        client.v1.invoices.attach_payment(invoice.id, params={"payment_intent": intent})
        for target in (invoice, open_invoice(30000)):
            with pytest.raises(stripe.InvalidRequestError) as raised:
                client.v1.invoices.attach_payment(target.id, params={"payment_intent": intent})
            assert "already attached" in raised.value.user_message
        return
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.invoices.attach_payment(invoice.id, params={"payment_intent": intent})
    assert raised.value.param == "payment_intent" and raised.value.code == code
    refreshed = client.v1.invoices.retrieve(invoice.id)
    assert (refreshed.amount_paid, refreshed.amount_remaining) == (0, 30000)


def test_payments_attach_only_to_open_invoices_and_need_a_payment_intent(client, learner, open_invoice):
    draft = client.v1.invoices.create(params={"customer": learner.id, "collection_method": "send_invoice",
                                              "days_until_due": 3})
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.invoices.attach_payment(draft.id, params={"payment_intent": "pi_missing"})
    assert raised.value.code == "resource_missing" and raised.value.param == "payment_intent"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.invoices.attach_payment(draft.id, params={"payment_record": "pr_missing"})
    assert (raised.value.code, raised.value.param) == ("resource_missing", "payment_record")
    invoice = open_invoice()
    default = client.v1.invoice_payments.list(params={"invoice": invoice.id}).data[0]
    with pytest.raises(stripe.InvalidRequestError) as raised:  # the default payment's PaymentIntent is taken
        client.v1.invoices.attach_payment(invoice.id, params={"payment_intent": default.payment.payment_intent})
    assert raised.value.param == "payment_intent"


def test_a_sepa_debit_is_credited_when_it_settles(client, open_invoice, checkout_for, pay, control, webhooks):
    invoice = open_invoice(30000)
    session = checkout_for(invoice, 9000)
    assert pay(session.id, method="sepa_debit").status_code == 200
    intent = _intent_of(client, session)
    attached = client.v1.invoices.attach_payment(invoice.id, params={"payment_intent": intent, "expand": ["payments"]})
    assert (attached.amount_paid, attached.amount_remaining) == (0, 30000)
    payment = next(p for p in attached.payments.data if not p.is_default)
    assert (payment.status, payment.amount_paid, payment.amount_requested) == ("open", None, 9000)

    for call in (client.v1.invoices.void_invoice, client.v1.invoices.mark_uncollectible):
        with pytest.raises(stripe.InvalidRequestError) as raised:  # an open payment blocks both
            call(invoice.id)
        assert payment.id in raised.value.user_message

    mark = len(webhooks.events)
    control(f"/checkout/sessions/{session.id}/settle", {"outcome": "succeeded"})
    types = [e["type"] for e in webhooks.events[mark:]]
    assert types.index("payment_intent.succeeded") < types.index("invoice_payment.paid") < types.index(
        "invoice.updated")
    settled = client.v1.invoices.retrieve(invoice.id)
    assert (settled.amount_paid, settled.amount_remaining, settled.status) == (9000, 21000, "open")
    assert client.v1.invoice_payments.retrieve(payment.id).status == "paid"
    with pytest.raises(stripe.InvalidRequestError) as raised:  # a paid payment: no void, a credit note instead
        client.v1.invoices.void_invoice(invoice.id)
    assert "credit note" in raised.value.user_message


def test_a_failed_sepa_debit_cancels_its_invoice_payment(client, open_invoice, checkout_for, pay, control):
    invoice = open_invoice(30000)
    session = checkout_for(invoice, 9000)
    pay(session.id, method="sepa_debit", iban="DE62370400440532013001")
    intent = _intent_of(client, session)
    client.v1.invoices.attach_payment(invoice.id, params={"payment_intent": intent})
    control(f"/checkout/sessions/{session.id}/settle", {})

    payment = client.v1.invoice_payments.list(params={"payment": {"type": "payment_intent",
                                                                  "payment_intent": intent}}).data[0]
    assert payment.status == "canceled" and payment.status_transitions.canceled_at is not None
    invoice = client.v1.invoices.retrieve(invoice.id)
    assert (invoice.amount_paid, invoice.amount_remaining) == (0, 30000)
    assert client.v1.invoices.mark_uncollectible(invoice.id).status == "uncollectible"


def test_a_payment_attached_before_an_abandoned_session_expires_is_canceled(client, open_invoice, checkout_for,
                                                                           pay, control):
    invoice = open_invoice(30000)
    session = checkout_for(invoice, 5000)
    assert pay(session.id, card="4000000000000002").status_code == 402  # declined: the PaymentIntent exists
    intent = _intent_of(client, session)
    client.v1.invoices.attach_payment(invoice.id, params={"payment_intent": intent})
    client.v1.checkout.sessions.expire(session.id)
    payment = client.v1.invoice_payments.list(params={"invoice": invoice.id, "status": "canceled"}).data
    assert [p.payment.payment_intent for p in payment if not p.is_default] == [intent]


def test_a_declined_then_paid_session_is_credited_when_it_succeeds(client, open_invoice, checkout_for, pay):
    invoice = open_invoice(30000)
    session = checkout_for(invoice, 5000)
    pay(session.id, card="4000000000000002")
    client.v1.invoices.attach_payment(invoice.id, params={"payment_intent": _intent_of(client, session)})
    assert pay(session.id).status_code == 200
    assert client.v1.invoices.retrieve(invoice.id).amount_paid == 5000


def test_attaching_is_idempotent(client, open_invoice, checkout_for, pay, webhooks):
    invoice = open_invoice(30000)
    session = checkout_for(invoice, 9000)
    pay(session.id)
    params = {"payment_intent": _intent_of(client, session)}
    client.v1.invoices.attach_payment(invoice.id, params=params, options={"idempotency_key": "attach-1"})
    again = client.v1.invoices.attach_payment(invoice.id, params=params, options={"idempotency_key": "attach-1"})
    assert again.amount_paid == 9000 and again.last_response.headers["Idempotent-Replayed"] == "true"
    assert webhooks.types().count("invoice_payment.paid") == 1


# -- credit notes on invoices paid in parts -------------------------------------------------------------


def _paid_in_two(client, open_invoice, checkout_for, pay):
    invoice = open_invoice(30000)
    intents = []
    for amount in (9000, 21000):
        session = checkout_for(invoice, amount)
        pay(session.id)
        intents.append(_intent_of(client, session))
        client.v1.invoices.attach_payment(invoice.id, params={"payment_intent": intents[-1]})
    return client.v1.invoices.retrieve(invoice.id), intents


def test_a_credit_note_on_a_partly_paid_invoice_is_mixed(client, open_invoice, checkout_for, pay, webhooks):
    invoice = open_invoice(30000)
    session = checkout_for(invoice, 9000)
    pay(session.id)
    intent = _intent_of(client, session)
    client.v1.invoices.attach_payment(invoice.id, params={"payment_intent": intent})

    mark = len(webhooks.events)
    note = client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 24000, "refund_amount": 3000},
                                         options={"idempotency_key": "note-1"})
    assert (note.type, note.pre_payment_amount, note.post_payment_amount, note.total) == ("mixed", 21000, 3000, 24000)
    refund = client.v1.refunds.retrieve(note.refunds[0].refund)
    assert (refund.amount, refund.payment_intent) == (3000, intent)
    invoice = client.v1.invoices.retrieve(invoice.id)
    assert (invoice.status, invoice.amount_due, invoice.amount_remaining, invoice.amount_paid) == ("paid", 9000, 0,
                                                                                                   9000)
    assert (invoice.pre_payment_credit_notes_amount, invoice.post_payment_credit_notes_amount) == (21000, 3000)
    types = [e["type"] for e in webhooks.events[mark:]]
    assert "invoice.paid" in types and "invoice.payment_succeeded" not in types  # credited, not paid
    replay = client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 24000, "refund_amount": 3000},
                                           options={"idempotency_key": "note-1"})
    assert replay.id == note.id and len(client.v1.credit_notes.list(params={"invoice": invoice.id}).data) == 1


def test_a_credit_note_on_an_open_invoice_lowers_what_remains(client, open_invoice, webhooks):
    invoice = open_invoice(30000)
    note = client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 6000, "reason": "order_change"})
    assert (note.type, note.pre_payment_amount, note.post_payment_amount) == ("pre_payment", 6000, 0)
    assert note.total_taxes[0].amount == 1000  # 60.00 TTC at 20 %
    invoice = client.v1.invoices.retrieve(invoice.id)
    assert (invoice.status, invoice.amount_due, invoice.amount_remaining) == ("open", 24000, 24000)
    default = client.v1.invoice_payments.list(params={"invoice": invoice.id}).data[0]
    assert default.amount_requested == 24000
    with pytest.raises(stripe.InvalidRequestError):  # nothing was paid: nothing to refund
        client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 25000, "refund_amount": 1000})


def test_refunding_part_of_several_payments(client, open_invoice, checkout_for, pay):
    invoice, (first, second) = _paid_in_two(client, open_invoice, checkout_for, pay)
    note = client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 25000, "refund_amount": 25000})
    refunds = [client.v1.refunds.retrieve(r.refund) for r in note.refunds]
    # Stripe does not say which payment refund_amount refunds; the sandbox starts with the latest.
    assert [(r.payment_intent, r.amount) for r in refunds] == [(second, 21000), (first, 4000)]
    assert (note.type, note.post_payment_amount) == ("post_payment", 25000)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 6000, "refund_amount": 6000})
    assert raised.value.param == "amount"


def test_linking_refunds_made_through_the_refund_api(client, open_invoice, checkout_for, pay):
    invoice, (first, _second) = _paid_in_two(client, open_invoice, checkout_for, pay)
    refund = client.v1.refunds.create(params={"payment_intent": first, "amount": 9000})
    # The refund is not on a credit note yet: it is taken off what can still be credited.
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 22000, "credit_amount": 22000})

    note = client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 9000,
                                                 "refunds": [{"refund": refund.id}]})
    assert [(r.refund, r.amount_refunded) for r in note.refunds] == [(refund.id, 9000)]
    assert client.v1.invoices.retrieve(invoice.id).post_payment_credit_notes_amount == 9000
    with pytest.raises(stripe.InvalidRequestError) as raised:  # already on a credit note
        client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 1000,
                                              "refunds": [{"refund": refund.id, "amount_refunded": 1000}]})
    assert raised.value.code == "amount_too_large"


def test_a_credit_to_the_customer_balance_lowers_their_next_invoice(client, open_invoice, checkout_for, pay,
                                                                    learner):
    invoice, _ = _paid_in_two(client, open_invoice, checkout_for, pay)
    note = client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 5000, "credit_amount": 5000})
    assert note.customer_balance_transaction.startswith("cbtxn_")
    assert client.v1.customers.retrieve(learner.id).balance == -5000
    nxt = open_invoice(12000)
    assert (nxt.amount_due, nxt.starting_balance, nxt.ending_balance) == (7000, -5000, 0)


def test_the_credit_note_names_the_balance_transaction_it_made(client, open_invoice, checkout_for, pay, learner):
    invoice, _ = _paid_in_two(client, open_invoice, checkout_for, pay)
    note = client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 4000, "credit_amount": 4000})
    transaction = client.v1.customers.balance_transactions.retrieve(learner.id, note.customer_balance_transaction)
    assert (transaction.type, transaction.amount, transaction.credit_note, transaction.invoice) == \
        ("credit_note", -4000, note.id, invoice.id)


def test_an_invoice_the_credit_balance_paid_is_credited_back_to_the_balance_not_refunded(client, open_invoice,
                                                                                         learner):
    client.v1.customers.balance_transactions.create(learner.id, params={"amount": -50000, "currency": "eur"})
    invoice = open_invoice(30000)
    assert (invoice.status, invoice.amount_paid, invoice.starting_balance, invoice.ending_balance) == \
        ("paid", 0, -50000, -20000)
    with pytest.raises(stripe.InvalidRequestError) as raised:  # nothing was charged: nothing to refund
        client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 30000, "refund_amount": 30000})
    assert raised.value.param == "refund_amount"
    with pytest.raises(stripe.InvalidRequestError):  # more than the balance paid
        client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 30001, "credit_amount": 30001})
    note = client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 30000, "credit_amount": 30000})
    assert (note.post_payment_amount, note.refunds) == (30000, [])
    assert client.v1.customers.retrieve(learner.id).balance == -50000


def test_voiding_an_invoice_gives_back_the_credit_balance_it_applied(client, open_invoice, learner, webhooks):
    client.v1.customers.balance_transactions.create(learner.id, params={"amount": -10000, "currency": "eur"})
    invoice = open_invoice(30000)
    assert (invoice.status, invoice.amount_remaining, client.v1.customers.retrieve(learner.id).balance) == \
        ("open", 20000, 0)
    voided = client.v1.invoices.void_invoice(invoice.id)
    assert (voided.starting_balance, voided.ending_balance) == (-10000, 0)
    assert client.v1.customers.retrieve(learner.id).balance == -10000
    given_back = client.v1.customers.balance_transactions.list(learner.id).data[0]
    assert (given_back.type, given_back.amount, given_back.invoice) == ("unapplied_from_invoice", -10000, invoice.id)
    assert webhooks.types()[-1] == "customer.updated"
    # An invoice that applied no credit gives nothing back.
    other = client.v1.customers.create(params={"email": "lea@example.fr"})
    client.v1.invoices.void_invoice(open_invoice(5000, customer=other).id)
    assert client.v1.customers.balance_transactions.list(other.id).data == []


def _void_note(client, note_id):
    """``POST /v1/credit_notes/{id}/void`` through the SDK: the voided credit note."""
    return client.v1.credit_notes.void_credit_note(note_id)


def _events_since(sandbox, mark):
    """The events made after the first ``mark``, oldest first, as (type, id of their object)."""
    return [(e["type"], e["data"]["object"]["id"]) for e in list(reversed(sandbox.state.all("event")))[mark:]]


def test_voiding_a_credit_note_of_an_open_invoice_takes_its_credit_off_the_invoice(client, sandbox, open_invoice,
                                                                                    learner):
    client.v1.customers.balance_transactions.create(learner.id, params={"amount": -10000, "currency": "eur"})
    invoice = open_invoice(30000)  # 100.00 of credit balance applied: 200.00 remain
    note = client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 6000})
    assert client.v1.invoices.retrieve(invoice.id).amount_remaining == 14000
    mark = len(sandbox.state.all("event"))

    voided = _void_note(client, note.id)

    assert (voided.status, voided.voided_at is not None, voided.customer_balance_transaction) == \
        ("void", True, None)
    invoice = client.v1.invoices.retrieve(invoice.id)
    assert (invoice.status, invoice.amount_due, invoice.amount_remaining, invoice.pre_payment_credit_notes_amount) \
        == ("open", 20000, 20000, 0)
    assert client.v1.invoice_payments.list(params={"invoice": invoice.id}).data[0].amount_requested == 20000
    assert client.v1.credit_notes.retrieve(note.id).status == "void"
    assert sorted(_events_since(sandbox, mark)) == [("credit_note.voided", note.id), ("invoice.updated", invoice.id)]
    # What the balance paid at finalization is the invoice's, not the credit note's: it stays applied.
    assert client.v1.customers.retrieve(learner.id).balance == 0
    with pytest.raises(stripe.InvalidRequestError):  # once void, always void
        _void_note(client, note.id)


def test_a_credit_note_that_credited_the_balance_cannot_be_voided(client, sandbox, open_invoice, learner):
    # Stripe voids the credit notes of open invoices only; one that credits the customer's balance is post-payment,
    # which comes once nothing remains: its invoice is paid, and the credit stays on the balance.
    client.v1.customers.balance_transactions.create(learner.id, params={"amount": -10000, "currency": "eur"})
    invoice = open_invoice(30000)
    note = client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 25000, "credit_amount": 5000})
    assert (note.pre_payment_amount, note.post_payment_amount, client.v1.invoices.retrieve(invoice.id).status) == \
        (20000, 5000, "paid")
    assert client.v1.customers.retrieve(learner.id).balance == -5000
    mark = len(sandbox.state.all("event"))

    with pytest.raises(stripe.InvalidRequestError) as raised:
        _void_note(client, note.id)

    assert raised.value.user_message == "You can only void a credit note if the associated invoice is open."
    assert client.v1.credit_notes.retrieve(note.id).status == "issued"
    assert client.v1.customers.retrieve(learner.id).balance == -5000
    assert _events_since(sandbox, mark) == []


def test_refunds_of_another_invoice_cannot_be_linked(client, open_invoice, checkout_for, pay):
    invoice, _ = _paid_in_two(client, open_invoice, checkout_for, pay)
    other, (other_first, _) = _paid_in_two(client, open_invoice, checkout_for, pay)
    refund = client.v1.refunds.create(params={"payment_intent": other_first, "amount": 1000})
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 1000,
                                              "refunds": [{"refund": refund.id}]})
    assert raised.value.param == "refunds[0][refund]"
    assert other.status == "paid"


# -- the hosted invoice page and the PDF ----------------------------------------------------------------


def test_the_hosted_page_and_the_pdf_show_lines_vat_paid_remaining_and_payments(client, open_invoice, checkout_for,
                                                                                pay):
    invoice = open_invoice(30000)
    session = checkout_for(invoice, 9000)
    pay(session.id)
    client.v1.invoices.attach_payment(invoice.id, params={"payment_intent": _intent_of(client, session)})

    page = requests.get(invoice.hosted_invoice_url, timeout=10)
    assert page.status_code == 200
    markup = page.text
    # In the customer's language (its preferred_locales: fr-FR), amounts written the French way.
    assert 'id="invoice-number">SBX-0001<' in markup and 'id="invoice-status">à payer<' in markup
    assert 'class="invoice-line"><td>Python course</td><td>1</td><td class="amount">300,00\xa0€<' in markup
    assert "TVA 20 % (incluse)</td><td class=\"amount\">50,00\xa0€<" in markup
    assert 'id="net-amount">250,00\xa0€<' in markup
    assert 'id="amount-paid">90,00\xa0€<' in markup and 'id="amount-remaining">210,00\xa0€<' in markup
    assert markup.count('class="invoice-payment" data-status="paid"') == 1
    assert '<html lang="fr">' in markup and 'lang="fr"' in markup and 'id="due-date"' in markup

    body = requests.get(invoice.invoice_pdf, timeout=10).content
    assert body.startswith(b"%PDF-1.")
    for text in (b"SBX-0001", b"Python course", b"300,00\xa0\x80", b"TVA \\(20 %\\) incluse", b"50,00\xa0\x80",
                 b"250,00\xa0\x80", b"Montant pay\xe9", b"90,00\xa0\x80", b"Reste \xe0 payer", b"210,00\xa0\x80",
                 b"Paiements", b"Date d\x92\xe9ch\xe9ance"):
        assert text in body, text


@pytest.mark.parametrize("currency, amount, paid, shown, in_pdf", [
    # The customer's language is French: amounts written the French way, with Stripe's decimals.
    ("jpy", 50000, 12000, ("50\u202f000\xa0JPY", "12\u202f000\xa0JPY", "38\u202f000\xa0JPY"),
     (b"50\xa0000\xa0JPY", b"12\xa0000\xa0JPY", b"38\xa0000\xa0JPY")),
    ("kwd", 100000, 25000, ("100,000\xa0KWD", "25,000\xa0KWD", "75,000\xa0KWD"),
     (b"100,000\xa0KWD", b"25,000\xa0KWD", b"75,000\xa0KWD")),
])
def test_zero_and_three_decimal_currencies_are_shown_with_their_decimals(client, open_invoice, checkout_for, pay,
                                                                        currency, amount, paid, shown, in_pdf):
    invoice = open_invoice(amount, currency=currency, rates=False)
    session = checkout_for(invoice, paid, methods=("card",))
    assert pay(session.id).status_code == 200
    client.v1.invoices.attach_payment(invoice.id, params={"payment_intent": _intent_of(client, session)})
    markup = requests.get(invoice.hosted_invoice_url, timeout=10).text
    total, paid_text, remaining = shown
    assert f'id="invoice-total">{total}<' in markup
    assert f'id="amount-paid">{paid_text}<' in markup and f'id="amount-remaining">{remaining}<' in markup
    body = requests.get(invoice.invoice_pdf, timeout=10).content
    for text in in_pdf:
        assert text in body, text


def test_three_decimal_invoice_lines_must_end_in_zero(client, learner):
    invoice = client.v1.invoices.create(params={"customer": learner.id, "collection_method": "send_invoice",
                                                "days_until_due": 10, "currency": "kwd"})
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.invoices.add_lines(invoice.id, params={"lines": [{"amount": 12345, "description": "Course"}]})
    assert raised.value.code == "invalid_charge_amount" and raised.value.param == "lines[0][amount]"


# -- paying on the hosted invoice page ------------------------------------------------------------------


PAGE_CARD = {"method": "card", "card_number": "4242 4242 4242 4242", "card_expiry": "12 / 34", "card_cvc": "123",
             "billing_name": "Camille Martin"}


def test_a_card_on_the_hosted_page_pays_the_default_payment_with_stripes_events(client, open_invoice, webhooks):
    invoice = open_invoice(30000)
    page = requests.get(invoice.hosted_invoice_url, timeout=10).text
    # In the customer's language; cards, and SEPA Direct Debit on an invoice in euros (the invoice template).
    assert 'id="invoice-pay-form"' in page and "Payer cette facture" in page and "Payer 300,00\xa0€" in page
    assert 'id="method-card"' in page and 'id="method-sepa_debit"' in page and "Prélèvement SEPA" in page
    mark = len(webhooks.events)
    paid = requests.post(invoice.hosted_invoice_url, data=PAGE_CARD, allow_redirects=False, timeout=10)
    assert paid.status_code == 303 and paid.headers["Location"].endswith(f"/i/{invoice.id}")

    after = client.v1.invoices.retrieve(invoice.id, params={"expand": ["payments"]})
    assert (after.status, after.amount_paid, after.amount_remaining) == ("paid", 30000, 0)
    default = next(p for p in after.payments.data if p.is_default)
    assert (default.status, default.amount_paid) == ("paid", 30000)
    events = webhooks.events[mark:]
    assert [e["type"] for e in events] == ["payment_intent.succeeded", "charge.succeeded", "invoice_payment.paid",
                                           "invoice.updated", "invoice.paid", "invoice.payment_succeeded",
                                           "charge.updated"]
    charge = events[1]["data"]["object"]
    # The charge says how it was paid, but names no invoice (the API has no Charge.invoice) and carries the
    # PaymentIntent's metadata, in which Stripe puts nothing of the invoice's.
    assert charge["payment_method_details"]["type"] == "card" and charge["metadata"] == {}
    assert "invoice" not in charge and charge["payment_intent"] == default.payment.payment_intent
    assert charge["billing_details"]["name"] == "Camille Martin"
    assert events[2]["data"]["object"]["is_default"] is True
    assert events[2]["data"]["object"]["payment"] == {"payment_intent": charge["payment_intent"],
                                                      "type": "payment_intent"}
    shown = requests.get(invoice.hosted_invoice_url, timeout=10).text
    assert 'id="invoice-status">payée<' in shown and 'id="invoice-pay-form"' not in shown


def test_an_invoice_in_another_currency_is_paid_by_card_only(client, open_invoice, control):
    invoice = open_invoice(5000, currency="usd", rates=False)
    page = requests.get(invoice.hosted_invoice_url, timeout=10).text
    assert 'id="method-card"' in page and 'id="method-sepa_debit"' not in page and 'id="iban"' not in page
    refused = control(f"/invoices/{invoice.id}/pay", {"method": "sepa_debit"})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "method"
    assert client.v1.invoices.retrieve(invoice.id).status == "open"


def test_a_declined_card_on_the_hosted_page_leaves_the_invoice_to_pay(client, open_invoice, webhooks):
    invoice = open_invoice(30000)
    mark = len(webhooks.events)
    declined = requests.post(invoice.hosted_invoice_url, data={**PAGE_CARD, "card_number": "4000 0000 0000 0002"},
                             timeout=10)
    assert declined.status_code == 402
    assert 'id="payment-error" class="error" role="alert">Votre carte a été refusée.<' in declined.text
    assert [e["type"] for e in webhooks.events[mark:]] == ["payment_intent.payment_failed", "charge.failed"]
    assert client.v1.invoices.retrieve(invoice.id).status == "open"
    paid = requests.post(invoice.hosted_invoice_url, data=PAGE_CARD, allow_redirects=False, timeout=10)
    assert paid.status_code == 303 and client.v1.invoices.retrieve(invoice.id).status == "paid"


@pytest.mark.parametrize("outcome, status", [("succeeded", "paid"), ("failed", "open")])
def test_a_sepa_debit_on_the_hosted_page_is_credited_when_it_settles(client, open_invoice, control, webhooks,
                                                                    outcome, status):
    invoice = open_invoice(30000)
    mark = len(webhooks.events)
    submitted = control(f"/invoices/{invoice.id}/pay", {"method": "sepa_debit", "iban": "DE89370400440532013000"})
    assert submitted.status_code == 200, submitted.text
    events = webhooks.events[mark:]
    assert [e["type"] for e in events] == ["payment_intent.processing", "charge.pending"]
    assert events[1]["data"]["object"]["payment_method_details"]["type"] == "sepa_debit"
    assert client.v1.invoices.retrieve(invoice.id).status == "open"
    page = requests.get(invoice.hosted_invoice_url, timeout=10).text
    assert 'id="payment-processing"' in page and 'id="invoice-pay-form"' not in page
    again = control(f"/invoices/{invoice.id}/pay", {})
    assert again.status_code == 400 and again.json()["error"]["code"] == "invoice_not_payable"

    mark = len(webhooks.events)
    assert control(f"/invoices/{invoice.id}/settle", {"outcome": outcome}).status_code == 200
    types = [e["type"] for e in webhooks.events[mark:]]
    after = client.v1.invoices.retrieve(invoice.id)
    assert after.status == status
    if outcome == "succeeded":
        assert types[:3] == ["payment_intent.succeeded", "charge.succeeded", "invoice_payment.paid"]
        assert after.amount_remaining == 0
    else:
        assert types == ["payment_intent.payment_failed", "charge.failed"]
        assert after.amount_remaining == 30000  # still to pay, on the page again
        assert 'id="invoice-pay-form"' in requests.get(invoice.hosted_invoice_url, timeout=10).text


def test_an_invoice_that_is_not_open_cannot_be_paid_on_its_page(client, open_invoice, control, learner):
    paid = open_invoice(30000)
    assert control(f"/invoices/{paid.id}/pay", {}).status_code == 200
    void = open_invoice(30000)
    client.v1.invoices.void_invoice(void.id)
    draft = client.v1.invoices.create(params={"customer": learner.id, "collection_method": "send_invoice",
                                              "days_until_due": 30})
    for invoice_id in (paid.id, void.id, draft.id):
        refused = control(f"/invoices/{invoice_id}/pay", {})
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "invoice_not_payable"
    assert control("/invoices/in_nope/pay", {}).status_code == 404
    page = requests.post(paid.hosted_invoice_url, data=PAGE_CARD, timeout=10)
    assert page.status_code == 400 and "ne peut pas être payée" in page.text
