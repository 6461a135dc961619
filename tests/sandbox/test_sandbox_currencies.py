"""Stripe's currency rules: minimum charge amounts, three-decimal and zero-decimal currencies."""

from __future__ import annotations

import pytest
import requests
import stripe

from lms_stripe_plugin.sandbox.amounts import format_amount, price_lines


def _session(create_session, currency: str, unit_amount: int, **overrides):
    line = {"price_data": {"currency": currency, "unit_amount": unit_amount, "product_data": {"name": "Course"}},
            "quantity": 1}
    return create_session(line_items=[line], allowed_payment_method_types=["card"], **overrides)


def test_a_total_below_stripes_minimum_charge_is_refused(create_session):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        _session(create_session, "eur", 49)
    assert raised.value.http_status == 400 and raised.value.code == "amount_too_small"
    assert raised.value.user_message == "The Checkout Session's total amount due must add up to at least €0.50 eur"
    assert _session(create_session, "eur", 50).amount_total == 50
    assert _session(create_session, "gbp", 30).amount_total == 30
    with pytest.raises(stripe.InvalidRequestError):
        _session(create_session, "jpy", 49)


def test_the_minimum_counts_the_discount_given_at_creation(create_session):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        _session(create_session, "eur", 90, allow_promotion_codes=None, discounts=[{"promotion_code": "promo_sbxHALF"}])
    assert raised.value.code == "amount_too_small"


def test_three_decimal_amounts_must_end_in_zero(create_session):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        _session(create_session, "kwd", 12345)
    assert raised.value.param == "line_items[0][price_data][unit_amount]"
    assert raised.value.code == "invalid_charge_amount"
    assert _session(create_session, "kwd", 12340).amount_total == 12340


def test_three_decimal_discounts_round_to_tens(create_session, pay):
    session = _session(create_session, "kwd", 12340)
    body = pay(session.id, promotion_code="WELCOME10").json()["session"]
    assert body["total_details"]["amount_discount"] == 1230  # 1234 rounded to a multiple of 10
    assert body["amount_total"] == 11110
    priced = price_lines([{"unit_amount": 3330, "quantity": 1, "rates": []}], {"amount_off": 1005}, unit=10)
    assert priced[0].discount % 10 == 0


def test_three_decimal_refunds_and_credit_notes_must_end_in_zero(create_session, pay, client):
    session = _session(create_session, "kwd", 12340)
    pay(session.id)
    paid = client.v1.checkout.sessions.retrieve(session.id)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.refunds.create(params={"payment_intent": paid.payment_intent, "amount": 1005})
    assert raised.value.param == "amount" and raised.value.code == "invalid_charge_amount"
    assert client.v1.refunds.create(params={"payment_intent": paid.payment_intent, "amount": 1000}).amount == 1000
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.credit_notes.create(params={"invoice": paid.invoice, "refund_amount": 2005})
    assert raised.value.param == "refund_amount"
    note = client.v1.credit_notes.create(params={"invoice": paid.invoice, "refund_amount": 2000})
    assert note.total == 2000


def test_three_decimal_amounts_show_three_decimals_on_the_page_and_the_pdfs(create_session, pay, client):
    session = _session(create_session, "kwd", 12340)
    page = requests.get(session.url, timeout=10).text
    assert "12.340 KWD" in page and "123.40 KWD" not in page
    pay(session.id)
    invoice = client.v1.invoices.retrieve(client.v1.checkout.sessions.retrieve(session.id).invoice)
    pdf = requests.get(invoice.invoice_pdf, timeout=10).content
    assert b"12.340 KWD" in pdf and b"123.40 KWD" not in pdf
    note = client.v1.credit_notes.create(params={"invoice": invoice.id, "refund_amount": 1230})
    assert b"1.230 KWD" in requests.get(note.pdf, timeout=10).content


def test_zero_decimal_amounts_show_no_decimals(create_session):
    session = _session(create_session, "jpy", 5000)
    page = requests.get(session.url, timeout=10).text
    assert "¥5,000" in page and "¥50.00" not in page


@pytest.mark.parametrize("amount, currency, text", [
    (12340, "kwd", "12.340 KWD"), (5, "bhd", "0.005 BHD"), (500, "jpy", "¥500"), (1000, "xof", "1,000 XOF"),
    (1234, "eur", "€12.34"),
])
def test_format_amount_uses_the_currencys_exponent(amount, currency, text):
    assert format_amount(amount, currency) == text
