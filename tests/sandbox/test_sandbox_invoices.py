"""The Invoices API: customers, drafts, lines with tax-inclusive VAT, finalizing, sending, voiding, due dates."""

from __future__ import annotations

import time

import pytest
import requests
import stripe

DAY = 24 * 3600


@pytest.fixture
def vat20(client):
    """French VAT, prices including it (TTC)."""
    return client.v1.tax_rates.create(params={"display_name": "TVA", "percentage": 20, "inclusive": True,
                                              "country": "FR", "tax_type": "vat"})


@pytest.fixture
def learner(client):
    return client.v1.customers.create(params={
        "email": "camille@example.fr", "name": "Camille Martin", "phone": "+33612345678",
        "preferred_locales": ["fr-FR", "fr"], "address": {"line1": "1 rue de la Paix", "city": "Paris",
                                                          "postal_code": "75002", "country": "fr"},
    })


@pytest.fixture
def draft(client, learner):
    def create(**overrides):
        params = {"customer": learner.id, "collection_method": "send_invoice", "days_until_due": 30, "currency": "eur",
                  "description": "Formation Python", "footer": "TVA acquittée sur les encaissements",
                  "custom_fields": [{"name": "Dossier", "value": "F-2026-7"}], "metadata": {"request": "7"},
                  "auto_advance": False, "pending_invoice_items_behavior": "exclude",
                  "rendering": {"amount_tax_display": "include_inclusive_tax"}}
        params.update(overrides)
        return client.v1.invoices.create(params={k: v for k, v in params.items() if v is not None})

    return create


def _course_line(vat, amount=30000, name="Python course"):
    return {"price_data": {"currency": "eur", "unit_amount": amount, "tax_behavior": "inclusive",
                           "product_data": {"name": name}}, "quantity": 1, "tax_rates": [vat.id]}


# -- customers ---------------------------------------------------------------------------------


def test_customers_keep_locales_and_address_and_are_updated_with_previous_attributes(client, learner, webhooks):
    assert learner.preferred_locales == ["fr-FR", "fr"]
    assert learner.address.country == "FR" and learner.address.city == "Paris" and learner.phone == "+33612345678"

    updated = client.v1.customers.update(learner.id, params={
        "name": "Camille Durand", "preferred_locales": ["en"], "metadata": {"user": "7"},
        "invoice_settings": {"footer": "Merci"},
    })
    assert (updated.name, updated.preferred_locales, updated.metadata.to_dict()) == ("Camille Durand", ["en"],
                                                                                      {"user": "7"})
    assert updated.invoice_settings.footer == "Merci"
    event = webhooks.events[-1]
    assert event["type"] == "customer.updated"
    previous = event["data"]["previous_attributes"]
    assert previous["name"] == "Camille Martin" and previous["preferred_locales"] == ["fr-FR", "fr"]
    assert previous["metadata"] == {}

    again = client.v1.customers.update(learner.id, params={"metadata": {"user": "", "team": "b"}, "address": ""})
    assert again.metadata.to_dict() == {"team": "b"} and again.address is None
    assert client.v1.customers.retrieve(learner.id).name == "Camille Durand"


@pytest.mark.parametrize("params, param", [
    ({"address": {"country": "France"}}, "address[country]"),
    ({"preferred_locales": ["fr_FR!"]}, "preferred_locales[0]"),
    ({"phone": "+33 6 12 34 56 78 90 12 34"}, "phone"),
    ({"email": "not-an-email"}, "email"),
    ({"invoice_prefix": "abc"}, "invoice_prefix"),
    ({"preferred_locale": ["fr"]}, "preferred_locale"),
])
def test_customer_parameters_are_checked(client, params, param):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.customers.create(params=params)
    assert raised.value.param == param


def test_updating_a_missing_customer_is_a_404(client):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.customers.update("cus_missing", params={"name": "x"})
    assert raised.value.http_status == 404 and raised.value.code == "resource_missing"


# -- drafts and lines --------------------------------------------------------------------------------


def test_a_draft_invoice_has_stripes_fields_and_no_number(draft, learner, webhooks):
    invoice = draft()

    assert invoice.id.startswith("in_") and invoice.object == "invoice"
    assert (invoice.status, invoice.number, invoice.hosted_invoice_url, invoice.invoice_pdf) == ("draft", None, None,
                                                                                                 None)
    assert invoice.collection_method == "send_invoice" and invoice.currency == "eur"
    assert invoice.due_date == invoice.created + 30 * DAY
    assert (invoice.customer, invoice.customer_email, invoice.customer_name) == (learner.id, "camille@example.fr",
                                                                                 "Camille Martin")
    assert invoice.customer_address.country == "FR"
    assert invoice.description == "Formation Python" and invoice.footer == "TVA acquittée sur les encaissements"
    assert invoice.custom_fields[0].to_dict() == {"name": "Dossier", "value": "F-2026-7"}
    assert invoice.metadata.to_dict() == {"request": "7"} and invoice.auto_advance is False
    assert invoice.rendering.amount_tax_display == "include_inclusive_tax"
    assert (invoice.total, invoice.amount_due, invoice.amount_remaining, invoice.lines.data) == (0, 0, 0, [])
    assert invoice.status_transitions.finalized_at is None and invoice.confirmation_secret is None
    assert webhooks.types()[-1] == "invoice.created"


@pytest.mark.parametrize("overrides, param", [
    ({"days_until_due": None}, "days_until_due"),
    ({"due_date": int(time.time()) + DAY}, "due_date"),
    ({"collection_method": None}, "collection_method"),
    ({"days_until_due": None, "due_date": int(time.time()) - 60}, "due_date"),
    ({"customer": "cus_missing"}, "customer"),
    ({"custom_fields": [{"name": f"f{i}", "value": "v"} for i in range(5)]}, "custom_fields"),
    ({"custom_fields": [{"name": "n" * 41, "value": "v"}]}, "custom_fields[0][name]"),
    ({"description": "d" * 1501}, "description"),
    ({"payment_method_types": ["card"]}, "payment_method_types"),
    ({"rendering": {"amount_tax_display": "gross"}}, "rendering[amount_tax_display]"),
])
def test_invoice_creation_is_refused_like_stripe(draft, overrides, param):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        draft(**overrides)
    assert raised.value.param == param and raised.value.http_status == 400


def test_tax_inclusive_lines_give_stripes_totals_line_by_line(client, draft, vat20, webhooks):
    invoice = draft()
    vat55 = client.v1.tax_rates.create(params={"display_name": "TVA", "percentage": 5.5, "inclusive": True})
    invoice = client.v1.invoices.add_lines(invoice.id, params={"lines": [
        _course_line(vat20, 30000),
        {"amount": 9999, "description": "Workbook", "tax_rates": [vat20.id]},
        {"price_data": {"currency": "eur", "unit_amount": 1055, "product_data": {"name": "E-book"}}, "quantity": 3,
         "tax_rates": [vat55.id]},
    ], "invoice_metadata": {"lines": "3"}})

    lines = invoice.lines.data
    assert [(line.amount, line.quantity, line.taxes[0].amount, line.taxes[0].taxable_amount) for line in lines] == [
        (30000, 1, 5000, 25000),   # 300.00 TTC: 250.00 HT + 50.00 TVA
        (9999, 1, 1666, 8333),     # 99.99 TTC: 83.325 rounded half up to 83.33 HT
        (3165, 3, 165, 3000),      # 3 x 10.55 TTC at 5.5 %
    ]
    assert all(line.taxes[0].tax_behavior == "inclusive" for line in lines)
    assert [line.description for line in lines] == ["Python course", "Workbook", "E-book"]
    assert lines[0].pricing.price_details.product.startswith("prod_")
    assert lines[0].parent.invoice_item_details.invoice_item.startswith("ii_")
    assert (invoice.subtotal, invoice.total, invoice.amount_due) == (43164, 43164, 43164)
    assert invoice.total_excluding_tax == invoice.subtotal_excluding_tax == 43164 - 6831
    assert {t.tax_rate_details.tax_rate: t.amount for t in invoice.total_taxes} == {vat20.id: 6666, vat55.id: 165}
    assert invoice.metadata.to_dict() == {"request": "7", "lines": "3"}
    assert webhooks.types()[-4:] == ["invoiceitem.created"] * 3 + ["invoice.updated"]
    assert webhooks.events[-1]["data"]["previous_attributes"]["total"] == 0
    assert [line.id for line in client.v1.invoices.line_items.list(invoice.id).data] == [line.id for line in lines]


def test_default_tax_rates_apply_to_lines_without_their_own(client, draft, vat20):
    invoice = draft(default_tax_rates=[vat20.id])
    invoice = client.v1.invoices.add_lines(invoice.id, params={"lines": [
        {"amount": 12000, "description": "Coaching"}, {"amount": 1000, "description": "Exempt", "tax_rates": ""}]})
    assert [line.taxes[0].amount if line.taxes else 0 for line in invoice.lines.data] == [2000, 0]
    assert invoice.default_tax_rates[0].id == vat20.id and invoice.total == 13000


@pytest.mark.parametrize("line, param", [
    ({"description": "no amount"}, "lines[0][amount]"),
    ({"amount": 100, "description": "x", "price_data": {"currency": "eur", "unit_amount": 1,
                                                        "product_data": {"name": "y"}}}, "lines[0][price_data]"),
    ({"price_data": {"currency": "usd", "unit_amount": 100, "product_data": {"name": "y"}}},
     "lines[0][price_data][currency]"),
    ({"price_data": {"currency": "eur", "unit_amount": 100}}, "lines[0][price_data][product]"),
    ({"amount": 500}, "lines[0][description]"),
    ({"amount": 500, "description": "x", "quantity": 2}, "lines[0][quantity]"),
    ({"amount": 500, "description": "x", "tax_rates": ["txr_missing"]}, "lines[0][tax_rates][0]"),
    ({"amount": "5.00", "description": "x"}, "lines[0][amount]"),
])
def test_bad_lines_are_refused(client, draft, line, param):
    invoice = draft()
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.invoices.add_lines(invoice.id, params={"lines": [line]})
    assert raised.value.param == param
    assert client.v1.invoices.retrieve(invoice.id).lines.data == []


def test_invoice_items_go_on_a_draft_or_wait_for_the_next_invoice(client, draft, learner, vat20, webhooks):
    first = client.v1.invoices.add_lines(draft().id, params={"lines": [_course_line(vat20, 20000)]})
    product = first.lines.data[0].pricing.price_details.product
    invoice = draft()
    item = client.v1.invoice_items.create(params={
        "customer": learner.id, "invoice": invoice.id, "price_data": {"currency": "eur", "product": product,
                                                                      "unit_amount": 15000},
        "quantity": 2, "tax_rates": [vat20.id], "description": "Two sessions", "metadata": {"line": "1"}})
    assert item.object == "invoiceitem" and item.id.startswith("ii_") and item.invoice == invoice.id
    assert (item.amount, item.quantity, item.currency, item.tax_rates[0].id) == (30000, 2, "eur", vat20.id)
    assert webhooks.types()[-2:] == ["invoiceitem.created", "invoice.updated"]
    invoice = client.v1.invoices.retrieve(invoice.id)
    assert (invoice.total, invoice.total_excluding_tax, invoice.lines.data[0].description) == (30000, 25000,
                                                                                              "Two sessions")

    pending = client.v1.invoice_items.create(params={"customer": learner.id, "amount": 5000, "currency": "eur",
                                                     "description": "Exam fee"})
    assert pending.invoice is None
    with_pending = draft(pending_invoice_items_behavior="include")
    assert [line.description for line in with_pending.lines.data] == ["Exam fee"]
    assert client.v1.invoice_items.retrieve(pending.id).invoice == with_pending.id
    assert {i.id for i in client.v1.invoice_items.list(params={"invoice": invoice.id}).data} == {item.id}

    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.invoice_items.create(params={"customer": learner.id, "invoice": invoice.id, "amount": 100,
                                               "currency": "usd", "description": "x"})
    assert raised.value.param == "currency"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.invoice_items.create(params={"customer": learner.id, "invoice": invoice.id, "description": "x",
                                               "price_data": {"currency": "eur", "unit_amount": 1,
                                                              "product_data": {"name": "y"}}})
    assert raised.value.code == "parameter_unknown"  # no product_data on invoice items


# -- finalizing, sending, voiding ----------------------------------------------------------------------


def test_finalizing_numbers_the_invoice_and_opens_its_default_payment(client, draft, vat20, sandbox, webhooks):
    invoice = client.v1.invoices.add_lines(draft().id, params={"lines": [_course_line(vat20)]})
    finalized = client.v1.invoices.finalize_invoice(invoice.id, params={"auto_advance": False})

    assert (finalized.status, finalized.number) == ("open", "SBX-0001")
    assert finalized.hosted_invoice_url == f"{sandbox.url}/i/{invoice.id}"
    assert finalized.invoice_pdf == f"{sandbox.url}/files/invoices/{invoice.id}.pdf"
    assert (finalized.amount_due, finalized.amount_paid, finalized.amount_remaining) == (30000, 0, 30000)
    assert finalized.status_transitions.finalized_at is not None and finalized.effective_at is not None
    assert (finalized.starting_balance, finalized.ending_balance) == (0, 0)
    assert finalized.confirmation_secret.type == "payment_intent"

    payments = client.v1.invoice_payments.list(params={"invoice": invoice.id}).data
    assert len(payments) == 1
    default = payments[0]
    assert (default.is_default, default.status, default.amount_requested, default.amount_paid) == (True, "open",
                                                                                                   30000, None)
    intent = client.v1.payment_intents.retrieve(default.payment.payment_intent)
    assert (intent.amount, intent.currency, intent.customer, intent.status) == (30000, "eur", invoice.customer,
                                                                                "requires_payment_method")
    assert finalized.confirmation_secret.client_secret == intent.client_secret
    assert "invoice" not in intent  # API 2026: a PaymentIntent does not name its invoice
    assert set(webhooks.types()[-2:]) == {"invoice.finalized", "payment_intent.created"}
    finalized_event = next(e for e in webhooks.events if e["type"] == "invoice.finalized")
    assert finalized_event["data"]["previous_attributes"]["status"] == "draft"

    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.invoices.finalize_invoice(invoice.id)
    assert "already finalized" in raised.value.user_message
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.invoices.add_lines(invoice.id, params={"lines": [_course_line(vat20)]})
    assert raised.value.code == "invoice_not_editable"
    assert client.v1.invoices.finalize_invoice(draft().id).number == "SBX-0002"


def test_the_customer_balance_is_applied_when_the_invoice_is_finalized(client, draft, learner, vat20, webhooks):
    client.v1.customers.update(learner.id, params={"balance": -5000})
    invoice = client.v1.invoices.add_lines(draft().id, params={"lines": [_course_line(vat20)]})
    assert invoice.starting_balance == -5000 and invoice.ending_balance is None

    finalized = client.v1.invoices.finalize_invoice(invoice.id)
    assert (finalized.total, finalized.amount_due, finalized.amount_remaining) == (30000, 25000, 25000)
    assert (finalized.starting_balance, finalized.ending_balance) == (-5000, 0)
    assert client.v1.customers.retrieve(learner.id).balance == 0
    balance_event = next(e for e in reversed(webhooks.events) if e["type"] == "customer.updated")
    assert balance_event["data"]["previous_attributes"] == {"balance": -5000}


def test_an_invoice_with_nothing_to_pay_is_paid_when_finalized(client, draft, webhooks):
    invoice = client.v1.invoices.finalize_invoice(draft().id)
    assert (invoice.status, invoice.amount_due) == ("paid", 0)
    assert invoice.status_transitions.paid_at is not None
    assert {"invoice.finalized", "invoice.paid"} <= set(webhooks.types())
    assert client.v1.invoice_payments.list(params={"invoice": invoice.id}).data == []


def test_sending_emits_invoice_sent_and_finalizes_a_draft(client, draft, vat20, webhooks):
    invoice = client.v1.invoices.add_lines(draft().id, params={"lines": [_course_line(vat20)]})
    sent = client.v1.invoices.send_invoice(invoice.id)
    assert sent.status == "open" and sent.number == "SBX-0001"
    assert webhooks.types()[-1] == "invoice.sent" and "invoice.finalized" in webhooks.types()
    client.v1.invoices.send_invoice(invoice.id)  # a reminder
    assert webhooks.types().count("invoice.sent") == 2


def test_void_and_mark_uncollectible(client, draft, vat20, webhooks):
    invoice = client.v1.invoices.finalize_invoice(
        client.v1.invoices.add_lines(draft().id, params={"lines": [_course_line(vat20)]}).id)
    default = client.v1.invoice_payments.list(params={"invoice": invoice.id}).data[0]

    voided = client.v1.invoices.void_invoice(invoice.id)
    assert voided.status == "void" and voided.status_transitions.voided_at is not None
    assert webhooks.types()[-1] == "invoice.voided"
    assert webhooks.events[-1]["data"]["previous_attributes"]["status"] == "open"
    intent = client.v1.payment_intents.retrieve(default.payment.payment_intent)
    assert (intent.status, intent.cancellation_reason) == ("canceled", "void_invoice")
    assert client.v1.invoice_payments.retrieve(default.id).status == "canceled"
    for call in (client.v1.invoices.void_invoice, client.v1.invoices.mark_uncollectible,
                 client.v1.invoices.send_invoice):
        with pytest.raises(stripe.InvalidRequestError):
            call(invoice.id)

    other = client.v1.invoices.finalize_invoice(
        client.v1.invoices.add_lines(draft().id, params={"lines": [_course_line(vat20)]}).id)
    marked = client.v1.invoices.mark_uncollectible(other.id)
    assert marked.status == "uncollectible" and marked.status_transitions.marked_uncollectible_at is not None
    assert webhooks.types()[-1] == "invoice.marked_uncollectible"
    assert client.v1.invoices.void_invoice(other.id).status == "void"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.void_invoice(draft().id)  # a draft is deleted, not voided


def test_listing_invoices_by_status_collection_method_and_due_date(client, draft, vat20):
    soon = draft(days_until_due=1)
    later = client.v1.invoices.finalize_invoice(draft(days_until_due=60).id)
    by_status = client.v1.invoices.list(params={"status": "draft"}).data
    assert [i.id for i in by_status] == [soon.id]
    assert {i.id for i in client.v1.invoices.list(params={"collection_method": "send_invoice"}).data} == {soon.id,
                                                                                                        later.id}
    due_within_a_week = client.v1.invoices.list(params={"due_date": {"lte": int(time.time()) + 7 * DAY}}).data
    assert [i.id for i in due_within_a_week] == [soon.id]


# -- due dates ------------------------------------------------------------------------------------------


def test_an_open_invoice_past_its_due_date_is_overdue_once(client, draft, vat20, control, webhooks):
    invoice = client.v1.invoices.finalize_invoice(
        client.v1.invoices.add_lines(draft(days_until_due=2).id, params={"lines": [_course_line(vat20)]}).id)
    paid_early = client.v1.invoices.finalize_invoice(draft(days_until_due=2).id)  # nothing to pay: paid
    control("/clock/advance", {"seconds": DAY})
    assert "invoice.overdue" not in webhooks.types()

    control("/clock/advance", {"seconds": DAY + 5})
    overdue = [e for e in webhooks.events if e["type"] == "invoice.overdue"]
    assert [e["data"]["object"]["id"] for e in overdue] == [invoice.id]
    assert overdue[0]["data"]["object"]["status"] == "open"
    control("/clock/advance", {"seconds": 3 * DAY})
    assert webhooks.types().count("invoice.overdue") == 1
    assert paid_early.status == "paid"


def test_a_voided_invoice_is_never_overdue(client, draft, vat20, control, webhooks):
    invoice = client.v1.invoices.finalize_invoice(
        client.v1.invoices.add_lines(draft(days_until_due=1).id, params={"lines": [_course_line(vat20)]}).id)
    client.v1.invoices.void_invoice(invoice.id)
    control("/clock/advance", {"seconds": 2 * DAY})
    assert "invoice.overdue" not in webhooks.types()


# -- idempotency -------------------------------------------------------------------------------------------


def test_each_creating_call_keeps_its_first_answer(client, draft, learner, vat20, sandbox, webhooks):
    key = {"idempotency_key": "invoice-7"}
    params = {"customer": learner.id, "collection_method": "send_invoice", "days_until_due": 30}
    first = client.v1.invoices.create(params=params, options=key)
    again = client.v1.invoices.create(params=params, options=key)
    assert again.id == first.id and again.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(sandbox.state.all("invoice")) == 1

    lines = {"lines": [_course_line(vat20)]}
    client.v1.invoices.add_lines(first.id, params=lines, options={"idempotency_key": "lines-7"})
    replayed = client.v1.invoices.add_lines(first.id, params=lines, options={"idempotency_key": "lines-7"})
    assert len(replayed.lines.data) == 1 and len(client.v1.invoices.retrieve(first.id).lines.data) == 1

    item = {"customer": learner.id, "invoice": first.id, "amount": 1000, "currency": "eur", "description": "Fee"}
    made = client.v1.invoice_items.create(params=item, options={"idempotency_key": "item-7"})
    assert client.v1.invoice_items.create(params=item, options={"idempotency_key": "item-7"}).id == made.id
    assert len(client.v1.invoices.retrieve(first.id).lines.data) == 2

    client.v1.invoices.finalize_invoice(first.id, options={"idempotency_key": "finalize-7"})
    assert client.v1.invoices.finalize_invoice(first.id, options={"idempotency_key": "finalize-7"}).number == "SBX-0001"
    client.v1.invoices.send_invoice(first.id, options={"idempotency_key": "send-7"})
    client.v1.invoices.send_invoice(first.id, options={"idempotency_key": "send-7"})
    assert webhooks.types().count("invoice.sent") == 1

    update = {"name": "Camille D."}
    client.v1.customers.update(learner.id, params=update, options={"idempotency_key": "cust-7"})
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.update(learner.id, params={"name": "Other"}, options={"idempotency_key": "cust-7"})

    client.v1.invoices.void_invoice(first.id, options={"idempotency_key": "void-7"})
    assert client.v1.invoices.void_invoice(first.id, options={"idempotency_key": "void-7"}).status == "void"
    assert webhooks.types().count("invoice.voided") == 1


def test_invoice_endpoints_answer_like_the_api(sandbox, draft):
    invoice = draft()
    auth = {"Authorization": "Bearer sk_test_x"}
    response = requests.post(f"{sandbox.url}/v1/invoices/{invoice.id}/send", data={"to": "x@example.com"},
                             headers=auth, timeout=10)
    assert response.status_code == 400 and response.json()["error"]["code"] == "parameter_unknown"
    missing = requests.post(f"{sandbox.url}/v1/invoices/in_missing/finalize", headers=auth, timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "resource_missing"
