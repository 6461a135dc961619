"""Pure pieces of the sandbox: bracket-notation parsing and money arithmetic."""

from __future__ import annotations

from decimal import Decimal

import pytest

from lms_stripe_plugin.sandbox.amounts import format_amount, inclusive_tax, price_lines
from lms_stripe_plugin.sandbox.errors import StripeError
from lms_stripe_plugin.sandbox.params import Params, parse_pairs


def test_bracket_notation_becomes_nested_dicts_and_lists():
    parsed = parse_pairs([
        ("line_items[0][price_data][currency]", "eur"),
        ("line_items[0][tax_rates][0]", "txr_1"),
        ("line_items[1][quantity]", "2"),
        ("expand[]", "invoice"),
        ("expand[]", "payment_intent"),
        ("metadata[0]", "numeric keys stay a hash"),
        ("plain", "x"),
    ])
    assert parsed == {
        "line_items": [{"price_data": {"currency": "eur"}, "tax_rates": ["txr_1"]}, {"quantity": "2"}],
        "expand": ["invoice", "payment_intent"],
        "metadata": {"0": "numeric keys stay a hash"},
        "plain": "x",
    }


def test_params_name_nested_errors_in_bracket_notation():
    params = Params(parse_pairs([("line_items[0][quantity]", "many")]))
    with pytest.raises(StripeError) as raised:
        params.objects("line_items")[0].integer("quantity")
    assert raised.value.param == "line_items[0][quantity]"
    assert raised.value.message == "Invalid integer: many"


def test_metadata_limits():
    with pytest.raises(StripeError) as raised:
        Params({"metadata": {"k" * 41: "v"}}).metadata()
    assert "40 characters" in raised.value.message
    assert Params({"metadata": {"a": "1", "b": ""}}).metadata() == {"a": "1"}


@pytest.mark.parametrize("total, percentage, tax", [(11900, 19, 1900), (10710, 19, 1710), (999, 7, 65), (0, 19, 0)])
def test_inclusive_tax_formula(total, percentage, tax):
    assert inclusive_tax(total, Decimal(percentage)) == tax
    assert tax == total - round(Decimal(total) / (1 + Decimal(percentage) / 100))


def test_price_lines_with_discount_and_both_tax_kinds():
    rates = [{"id": "txr_in", "percentage": 19.0, "inclusive": True}]
    exclusive = [{"id": "txr_ex", "percentage": 10.0, "inclusive": False}]
    lines = [{"unit_amount": 5000, "quantity": 2, "rates": rates}, {"unit_amount": 1000, "quantity": 1, "rates": exclusive}]
    priced = price_lines(lines, {"percent_off": 10})

    assert [(p.subtotal, p.discount, p.tax, p.total) for p in priced] == [(10000, 1000, 1437, 9000), (1000, 100, 90, 990)]
    fixed = price_lines(lines, {"amount_off": 1100, "currency": "eur"})
    assert sum(p.discount for p in fixed) == 1100


def test_format_amount():
    assert format_amount(11900, "eur") == "€119.00"
    assert format_amount(-1190, "eur") == "-€11.90"
    assert format_amount(500, "jpy") == "¥500"
    assert format_amount(1234, "sek") == "12.34 SEK"
