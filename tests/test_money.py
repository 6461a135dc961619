from decimal import Decimal

import pytest

from lms_stripe_plugin.money import (MAXIMUM_CHARGE, MINIMUM_CHARGE, Money, MoneyError, amount_step, check_chargeable,
                                     example_amount, exponent, format_amount_input, format_rate, maximum_amount,
                                     minimum_amount, parse_money, parse_rate, vat_split)

NNBSP, NBSP = "\u202f", "\u00a0"


@pytest.mark.parametrize("text, amount", [
    ("49,90", 4990), ("49.90", 4990), ("1 234,50", 123450), ("1\u00a0234,50", 123450), ("1\u202f234,50", 123450),
    ("1,234.50", 123450), ("1.234,50", 123450), ("1234", 123400), ("1,234", 123400), ("1.234", 123400),
    ("49,9", 4990), ("0,50", 50), ("  12  ", 1200), ("10 000", 1000000),
])
def test_parse_euro_amounts_as_admins_type_them(text, amount):
    assert parse_money(text, "EUR") == Money(amount, "EUR")


def test_zero_decimal_currency_has_no_minor_unit():
    assert exponent("JPY") == 0
    assert parse_money("8000", "jpy") == Money(8000, "JPY")
    assert parse_money("8 000", "JPY") == Money(8000, "JPY")
    with pytest.raises(MoneyError) as err:
        parse_money("80,50", "JPY")
    assert err.value.code == "decimals"


def test_three_decimal_currencies_follow_stripe_rounding():
    assert exponent("KWD") == 3
    assert parse_money("12,340", "KWD") == Money(12340, "KWD")
    with pytest.raises(MoneyError) as err:
        parse_money("12,345", "KWD")
    assert err.value.code == "step"


def test_isk_is_charged_in_whole_units_of_two_decimal_amounts():
    assert parse_money("1000", "ISK") == Money(100000, "ISK")
    with pytest.raises(MoneyError):
        check_chargeable(Money(100050, "ISK"))


@pytest.mark.parametrize("text, code", [
    ("", "empty"), ("abc", "syntax"), ("-5", "syntax"), ("12,3,4", "syntax"), ("1e5", "syntax"), ("12.", "syntax"),
    ("1,23,456", "syntax"), ("0,10", "minimum"), ("0", "minimum"), ("1000000000", "maximum"), ("49,9051", "decimals"),
    ("NaN", "syntax"), ("１２", "syntax"), ("49€", "syntax"),
])
def test_bad_amounts_are_refused_with_a_code(text, code):
    with pytest.raises(MoneyError) as err:
        parse_money(text, "EUR")
    assert err.value.code == code


def test_unknown_currency_is_refused():
    with pytest.raises(MoneyError) as err:
        parse_money("10", "XYZ")
    assert (err.value.code, err.value.params) == ("currency", {"currency": "XYZ"})


def test_zero_kwd_names_a_minimum_that_is_itself_accepted():
    with pytest.raises(MoneyError) as err:
        parse_money("0", "KWD")
    assert (err.value.code, err.value.params["limit"]) == ("minimum", Money(10, "KWD"))
    assert "KWD0.010" in str(err.value)
    check_chargeable(err.value.params["limit"])


def test_minimum_charges_follow_stripes_table():
    assert {c: MINIMUM_CHARGE[c] for c in ("USD", "EUR", "GBP", "HKD", "HUF", "JPY", "MXN", "THB")} == {
        "USD": 50, "EUR": 50, "GBP": 30, "HKD": 400, "HUF": 17500, "JPY": 50, "MXN": 1000, "THB": 1000}
    assert minimum_amount("KWD") == Money(10, "KWD") and minimum_amount("ISK") == Money(100, "ISK")
    assert minimum_amount("EUR", charge=False) == Money(1, "EUR")
    assert minimum_amount("KWD", charge=False) == Money(10, "KWD")


def test_limits_are_accepted_amounts():
    for currency in ("EUR", "JPY", "KWD", "ISK", "HUF", "BHD"):
        refund_floor = minimum_amount(currency, charge=False)
        for money in (minimum_amount(currency), refund_floor, maximum_amount(currency)):
            check_chargeable(money, minimum=money != refund_floor)
            assert money.amount % amount_step(currency) == 0
    assert maximum_amount("KWD") == Money(99999990, "KWD") and maximum_amount("EUR").amount == MAXIMUM_CHARGE


def test_check_chargeable_names_accepted_amounts():
    with pytest.raises(MoneyError) as err:
        check_chargeable(Money(12345, "KWD"))
    assert err.value.params == {"step": Money(10, "KWD"), "example": Money(12340, "KWD")}
    assert str(err.value) == "KWD amounts end in 0: 12.340."
    with pytest.raises(MoneyError) as err:
        check_chargeable(Money(100050, "ISK"))
    assert err.value.params == {"step": Money(100, "ISK"), "example": Money(100000, "ISK")}
    with pytest.raises(MoneyError) as err:
        check_chargeable(Money(5, "KWD"), minimum=False)
    assert (err.value.code, err.value.params["limit"]) == ("minimum", Money(10, "KWD"))


def test_formatting_follows_the_locale():
    price = Money(4990, "EUR")
    assert price.format("fr") == "49,90\u00a0€"
    assert price.format("en") == "€49.90"
    assert Money(8000, "JPY").format("en") == "¥8,000"
    assert Money(123450, "EUR").format("fr") == "1\u202f234,50\u00a0€"


def test_three_decimal_currencies_show_three_decimals_and_zero_decimal_ones_none():
    assert Money(12340, "KWD").format("fr") == f"12,340{NBSP}KWD"
    assert Money(12340, "KWD").format("en") == "KWD12.340"
    assert Money(8000, "JPY").format("fr") == f"8{NNBSP}000{NBSP}JPY"


def test_formatting_never_rounds_minor_units_away():
    assert Money(123456, "HUF").format("fr") == f"1{NNBSP}234,56{NBSP}HUF"
    assert Money(123400, "HUF").format("fr") == f"1{NNBSP}234{NBSP}HUF"
    assert Money(100000, "ISK").format("en") == "ISK1,000"
    assert Money(100050, "ISK").format("en") == "ISK1,000.50"


@pytest.mark.parametrize("money, locale, text", [
    (Money(12900, "EUR"), "fr", "129,00"), (Money(12900, "EUR"), "en", "129.00"), (Money(12340, "KWD"), "fr", "12,340"),
    (Money(8000, "JPY"), "fr", "8000"), (Money(123450, "EUR"), "fr", "1234,50"), (Money(123450, "EUR"), "en", "1234.50"),
    (Money(100000, "ISK"), "fr", "1000"), (Money(4990, "EUR"), "fr_CH", "49,90"), (Money(4990, "EUR"), "de_CH", "49.90"),
    (Money(4990, "EUR"), "fr-FR", "49,90"),
])
def test_form_fields_are_prefilled_without_symbol_or_grouping(money, locale, text):
    assert format_amount_input(money, locale) == text


@pytest.mark.parametrize("currency, locale, text", [
    ("EUR", "fr", "49,90"), ("EUR", "en", "49.90"), ("JPY", "fr", "5000"), ("KWD", "fr", "12,340"),
    ("KWD", "en", "12.340"), ("ISK", "fr", "5000"), ("HUF", "fr", "499"),
])
def test_example_amounts_are_accepted(currency, locale, text):
    assert example_amount(currency, locale) == text
    check_chargeable(Money(int(Decimal(text.replace(",", ".")).scaleb(exponent(currency))), currency))


def test_money_refuses_floats_and_mixed_currencies():
    with pytest.raises(TypeError):
        Money(49.9, "EUR")
    with pytest.raises(MoneyError) as err:
        Money(1, "EUR") + Money(1, "USD")
    assert (err.value.code, err.value.params) == ("mixed", {"currencies": ("EUR", "USD")})
    assert Money(4990, "eur").major == Decimal("49.90")


@pytest.mark.parametrize("gross, rate, net, vat", [
    (4990, 2000, 4158, 832), (12000, 2000, 10000, 2000), (1000, 550, 948, 52), (8000, 1000, 7273, 727), (50, 0, 50, 0),
])
def test_vat_split_of_a_tax_inclusive_price_adds_up(gross, rate, net, vat):
    n, v = vat_split(Money(gross, "EUR"), rate)
    assert (n.amount, v.amount) == (net, vat)
    assert n.amount + v.amount == gross


@pytest.mark.parametrize("text, bp", [("20", 2000), ("5,5", 550), ("5.5 %", 550), ("0", 0), ("2.10", 210)])
def test_vat_rates_parse_to_basis_points(text, bp):
    assert parse_rate(text) == bp


@pytest.mark.parametrize("text", ["", "abc", "-1", "100", "5.555", "inf", "nan"])
def test_bad_vat_rates_are_refused(text):
    with pytest.raises(MoneyError):
        parse_rate(text)


def test_format_rate_per_locale():
    assert format_rate(550, "fr") == "5,5 %"
    assert format_rate(2000, "en") == "20 %"
