from decimal import Decimal

import pytest

from lms_stripe_plugin.money import (MAXIMUM_CHARGE, MINIMUM_CHARGE, Money, MoneyError, amount_step, check_chargeable,
                                     example_amount, exponent, format_amount_input, format_rate, maximum_amount,
                                     minimum_amount, parse_money, parse_rate, percent_of, vat_split)

NNBSP, NBSP = "\u202f", "\u00a0"


def refused(text, currency="EUR", *, locale, minimum=True) -> MoneyError:
    with pytest.raises(MoneyError) as err:
        parse_money(text, currency, locale=locale, minimum=minimum)
    return err.value


def eur(amount):
    return Money(amount, "EUR")


def kwd(amount):
    return Money(amount, "KWD")


# --- The reported bugs: each amount was read 1,000 times wrong -------------------------------------------------------

def test_a_thousandth_of_a_euro_is_refused_not_read_as_one_euro():
    assert refused("0,001", locale="fr").code == "decimals"
    err = refused("0,001", locale="en")  # not an English number: a grouping needs a leading digit
    assert err.code == "syntax" and Money(100, "EUR") not in err.params["suggestions"][1:]


def test_a_price_of_19_999_in_french_is_refused_not_saved_as_19_999_euros():
    err = refused("19,999", locale="fr")
    assert (err.code, err.params) == ("decimals", {"digits": 2})
    assert str(err) == "EUR takes at most 2 decimals."
    assert parse_money("19,999", "EUR", locale="en") == eur(1999900)  # the English reading of the same text


def test_a_refund_of_0_500_is_never_500_euros():
    assert refused("0,500", locale="fr", minimum=False).code == "decimals"
    err = refused("0,500", locale="en", minimum=False)
    assert err.code == "syntax"
    assert set(err.params["suggestions"]) == {eur(50000), eur(50)}  # shown to the person, never applied
    assert refused("0.500", locale="fr", minimum=False).code == "syntax"


def test_299_001_is_not_read_as_299_001_in_french():
    assert refused("299,001", locale="fr").code == "decimals"
    err = refused("299,001", "KWD", locale="fr")
    assert (err.code, err.params["example"]) == ("step", kwd(299000))
    assert parse_money("299,001", "EUR", locale="en") == eur(29900100)


@pytest.mark.parametrize("locale, currency, expected", [
    ("fr", "KWD", kwd(1230)), ("en", "EUR", eur(123000)), ("en", "KWD", kwd(1230000)),
])
def test_1_230_is_read_by_the_locale_whatever_the_currency(locale, currency, expected):
    assert parse_money("1,230", currency, locale=locale) == expected


def test_1_230_euros_in_french_has_too_many_decimals():
    assert refused("1,230", locale="fr").code == "decimals"


@pytest.mark.parametrize("locale, limit_text", [("fr", f"0,010{NBSP}KWD"), ("en", "KWD0.010")])
def test_zero_kwd_names_a_minimum_that_is_itself_accepted(locale, limit_text):
    err = refused("0", "KWD", locale=locale)
    assert (err.code, err.params["limit"]) == ("minimum", kwd(10))
    assert limit_text in str(err)
    assert parse_money(err.params["limit"].format(locale), "KWD", locale=locale) == kwd(10)
    assert refused("0,001", "KWD", locale="fr").params["limit"] == kwd(10)


# --- Reading in French ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, amount", [
    ("49,90", 4990), ("49,9", 4990), ("0,50", 50), ("1234", 123400), ("  12  ", 1200), ("1 234,50", 123450),
    (f"1{NBSP}234,50", 123450), (f"1{NNBSP}234,50", 123450), ("1.234,50", 123450), ("10 000", 1000000),
    ("1 234", 123400), ("49,90 €", 4990), ("49,90€", 4990), ("€ 49,90", 4990),
    ("49,90 EUR", 4990), ("eur 49,90", 4990), (f"1{NNBSP}234,50{NBSP}€", 123450),
])
def test_french_reads_a_decimal_comma_and_groups_with_spaces_or_points(text, amount):
    assert parse_money(text, "EUR", locale="fr") == eur(amount)


@pytest.mark.parametrize("text, amount", [
    ("49.90", 4990), ("49.9", 4990), ("0.50", 50), ("1234", 123400), ("1,234", 123400), ("1,234.50", 123450),
    ("1 234.50", 123450), ("€49.90", 4990), ("49.90 EUR", 4990), ("19,999", 1999900),
])
def test_english_reads_a_decimal_point_and_groups_with_commas(text, amount):
    assert parse_money(text, "EUR", locale="en") == eur(amount)


@pytest.mark.parametrize("locale, text, amount", [
    ("fr_CH", "1'234,50", 123450), ("fr_CH", "1’234,50", 123450), ("fr_CH", "49.90", 4990),
    ("de_DE", "1.234,50", 123450), ("de_DE", "1.234", 123400), ("de_DE", "1 234,5", 123450),
    ("en_US", "1,234.50", 123450), ("fr-FR", "1 234,50", 123450), ("de_CH", "1'234.50", 123450),
])
def test_other_locales_read_with_their_own_symbols(locale, text, amount):
    assert parse_money(text, "EUR", locale=locale) == eur(amount)


@pytest.mark.parametrize("locale", ["ar", "hi", "nl", "pt_BR", "es", "it", "ru", "pl", "en_IN", "de_CH", "fr_CA"])
@pytest.mark.parametrize("money", [kwd(1234560), eur(4990), Money(123456, "JPY"), Money(100000, "ISK")])
def test_what_any_locale_shows_reads_back(locale, money):
    assert parse_money(money.format(locale), money.currency, locale=locale) == money
    assert parse_money(format_amount_input(money, locale), money.currency, locale=locale) == money


# --- Ambiguity ------------------------------------------------------------------------------------------------------

def test_a_lone_point_in_french_is_refused_with_both_readings():
    err = refused("1.230", "KWD", locale="fr")
    assert (err.code, err.params["readings"]) == ("ambiguous", (kwd(1230000), kwd(1230)))
    assert str(err) == f"“1.230” could be 1{NNBSP}230,000{NBSP}KWD or 1,230{NBSP}KWD: write 1230,000 or 1,230."


def test_a_lone_point_in_french_is_refused_even_when_one_reading_is_no_amount():
    err = refused("19.999", locale="fr")  # 19,999 € has too many decimals, but 19 999 € is not what was meant
    assert (err.code, err.params["readings"]) == ("ambiguous", (eur(1999900),))
    assert refused("1.234", locale="fr").params["readings"] == (eur(123400),)


def test_ambiguous_text_with_no_valid_reading_reports_the_locale_reading():
    assert refused("999.999", "KWD", locale="fr").code == "maximum"


@pytest.mark.parametrize("locale, text, amount", [
    ("en", "1,234", 123400),     # the locale's own group symbol
    ("de_DE", "1.234", 123400),  # the locale's own group symbol
    ("fr", "1.234,5", 123450),   # a decimal comma: the point groups
])
def test_the_locales_own_symbols_are_not_ambiguous(locale, text, amount):
    assert parse_money(text, "EUR", locale=locale) == eur(amount)


@pytest.mark.parametrize("locale, text", [
    ("fr", "1.234.567"), ("fr", "1 234 567"), ("en", "1,234,567"), ("de_DE", "1.234.567"),
])
def test_several_group_separators_cannot_be_a_decimal_point(locale, text):
    assert parse_money(text, "JPY", locale=locale) == Money(1234567, "JPY")


@pytest.mark.parametrize("locale", ["fr_CH", "de_CH"])
def test_millions_grouped_with_apostrophes_are_refused_as_babel_formats_them_ungrouped(locale):
    # Babel 2.19 writes 1234567 without its apostrophes in these locales, so its strict parsing refuses
    # "1'234'567" and suggests "1234567": refused, never misread, and what Money.format shows reads back.
    err = refused("1'234'567", "JPY", locale=locale)
    assert (err.code, err.params["suggestions"]) == ("syntax", (Money(1234567, "JPY"),))
    shown = Money(1234567, "JPY").format(locale)
    assert parse_money(shown, "JPY", locale=locale) == Money(1234567, "JPY")


def test_the_locales_decimal_separator_is_not_ambiguous():
    assert parse_money("1,230", "KWD", locale="fr") == kwd(1230)
    assert parse_money("1.230", "KWD", locale="en") == kwd(1230)
    assert refused("1.234", locale="en").code == "decimals"


# --- Error codes ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("locale", ["fr", "en"])
@pytest.mark.parametrize("text", ["", "   ", None, f"{NBSP}"])
def test_nothing_typed(locale, text):
    err = refused(text, locale=locale)
    assert (err.code, err.params) == ("empty", {})


@pytest.mark.parametrize("locale", ["fr", "en"])
@pytest.mark.parametrize("text", [
    "abc", "-5", "+5", "1e5", "12.,5", "NaN", "Infinity", "１２", "1_000", "12,3,4", "1,,5", ",50", ".50", "5 5,5 5",
    "1.234 567", "€49,90€", "1" * 80, "0x10", "1/2",
])
def test_text_that_is_no_amount(locale, text):
    err = refused(text, locale=locale)
    assert err.code == "syntax"
    assert isinstance(err.params["suggestions"], tuple) and err.params["example"] == example_amount("EUR", locale)


@pytest.mark.parametrize("locale, text, suggestions", [
    ("fr", "12 34", (eur(123400), eur(1234))), ("fr", "1.23", (eur(12300), eur(123))), ("fr", "12.", ()),
    ("en", "12,34", (eur(123400), eur(1234))), ("en", "1.234,50", (eur(123450),)), ("en", "12.", ()),
    ("en", "1 234,50", ()), ("fr", "1,234.50", (eur(123450),)),
])
def test_misplaced_separators_are_refused_with_babels_suggestions(locale, text, suggestions):
    err = refused(text, locale=locale)
    assert (err.code, err.params["suggestions"]) == ("syntax", suggestions)


@pytest.mark.parametrize("locale, text, digits", [
    ("fr", "49,905", 2), ("en", "49.905", 2), ("fr", "0,500", 2), ("en", "0.500", 2), ("fr", "1 234,567", 2),
])
def test_more_decimals_than_the_currency_has(locale, text, digits):
    err = refused(text, locale=locale)
    assert (err.code, err.params) == ("decimals", {"digits": digits})


@pytest.mark.parametrize("locale, text", [("fr", "8000,00"), ("en", "8000.5")])
def test_zero_decimal_currencies_take_no_decimals(locale, text):
    err = refused(text, "JPY", locale=locale)
    assert (err.code, err.params, str(err)) == ("decimals", {"digits": 0}, "JPY has no decimals: enter a whole amount.")
    assert parse_money("8 000", "jpy", locale="fr") == Money(8000, "JPY")
    assert parse_money("8,000", "JPY", locale="en") == Money(8000, "JPY")


@pytest.mark.parametrize("locale, text, example_text", [("fr", "12,345", "12,340"), ("en", "12.345", "12.340")])
def test_three_decimal_currencies_end_in_zero(locale, text, example_text):
    err = refused(text, "KWD", locale=locale)
    assert (err.code, err.params) == ("step", {"step": kwd(10), "example": kwd(12340)})
    assert str(err) == f"KWD amounts end in 0: {example_text}."
    assert parse_money(example_text, "KWD", locale=locale) == kwd(12340)


@pytest.mark.parametrize("locale, text", [("fr", "1000,50"), ("en", "1000.5")])
def test_isk_is_charged_in_whole_units(locale, text):
    err = refused(text, "ISK", locale=locale)
    assert (err.code, err.params) == ("step", {"step": Money(100, "ISK"), "example": Money(100000, "ISK")})
    assert str(err) == "ISK amounts are whole: 1000."
    assert parse_money("1000", "ISK", locale=locale) == Money(100000, "ISK")
    assert refused("1000,000" if locale == "fr" else "1000.000", "ISK", locale=locale).params == {"digits": 0}


@pytest.mark.parametrize("locale, text", [("fr", "0,49"), ("en", "0.49"), ("fr", "0"), ("en", "0")])
def test_below_stripes_minimum_charge(locale, text):
    err = refused(text, locale=locale)
    assert (err.code, err.params) == ("minimum", {"limit": eur(50)})


@pytest.mark.parametrize("locale", ["fr", "en"])
def test_a_refund_goes_down_to_one_step(locale):
    assert parse_money("0,01" if locale == "fr" else "0.01", "EUR", locale=locale, minimum=False) == eur(1)
    assert parse_money("0,01" if locale == "fr" else "0.01", "KWD", locale=locale, minimum=False) == kwd(10)
    assert refused("0", locale=locale, minimum=False).params == {"limit": eur(1)}
    assert refused("0", "KWD", locale=locale, minimum=False).params == {"limit": kwd(10)}


@pytest.mark.parametrize("locale, text", [("fr", "1 000 000"), ("en", "1,000,000"), ("fr", "9" * 40)])
def test_above_stripes_maximum_charge(locale, text):
    err = refused(text, locale=locale)
    assert (err.code, err.params) == ("maximum", {"limit": eur(MAXIMUM_CHARGE)})
    assert refused("100 000" if locale == "fr" else "100,000", "KWD", locale=locale).params == {"limit": kwd(99999990)}


@pytest.mark.parametrize("locale, text, symbol", [
    ("fr", "49,90 $", "$"), ("en", "$49.90", "$"), ("fr", "49,90 USD", "USD"), ("en", "£49.90", "£"),
])
def test_another_currencys_symbol(locale, text, symbol):
    err = refused(text, locale=locale)
    assert (err.code, err.params) == ("symbol", {"symbol": symbol})


@pytest.mark.parametrize("locale", ["fr", "en"])
@pytest.mark.parametrize("code", ["XYZ", "", "eu"])
def test_unknown_currency(locale, code):
    err = refused("10", code, locale=locale)
    assert (err.code, err.params) == ("currency", {"currency": code})


def test_mixing_currencies():
    with pytest.raises(MoneyError) as err:
        Money(1, "EUR") + Money(1, "USD")
    assert (err.value.code, err.value.params) == ("mixed", {"currencies": ("EUR", "USD")})


def test_the_locale_is_required():
    with pytest.raises(TypeError):
        parse_money("10", "EUR")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        parse_rate("20")  # type: ignore[call-arg]


# --- Stripe's rules -------------------------------------------------------------------------------------------------

def test_minimum_charges_follow_stripes_table():
    assert {c: MINIMUM_CHARGE[c] for c in ("USD", "EUR", "GBP", "HKD", "HUF", "JPY", "MXN", "THB")} == {
        "USD": 50, "EUR": 50, "GBP": 30, "HKD": 400, "HUF": 17500, "JPY": 50, "MXN": 1000, "THB": 1000}
    assert minimum_amount("KWD") == kwd(10) and minimum_amount("ISK") == Money(100, "ISK")
    assert minimum_amount("EUR", charge=False) == eur(1)
    assert minimum_amount("KWD", charge=False) == kwd(10)


def test_limits_are_accepted_amounts():
    for currency in ("EUR", "JPY", "KWD", "ISK", "HUF", "BHD"):
        refund_floor = minimum_amount(currency, charge=False)
        for money in (minimum_amount(currency), refund_floor, maximum_amount(currency)):
            check_chargeable(money, minimum=money != refund_floor)
            assert money.amount % amount_step(currency) == 0
    assert maximum_amount("KWD") == kwd(99999990) and maximum_amount("EUR").amount == MAXIMUM_CHARGE


def test_check_chargeable_names_accepted_amounts():
    with pytest.raises(MoneyError) as err:
        check_chargeable(kwd(12345))
    assert err.value.params == {"step": kwd(10), "example": kwd(12340)}
    with pytest.raises(MoneyError) as err:
        check_chargeable(Money(100050, "ISK"))
    assert err.value.params["example"] == Money(100000, "ISK")
    with pytest.raises(MoneyError) as err:
        check_chargeable(kwd(5), minimum=False)
    assert (err.value.code, err.value.params["limit"]) == ("minimum", kwd(10))


def test_exponents():
    assert (exponent("JPY"), exponent("EUR"), exponent("KWD"), exponent("isk")) == (0, 2, 3, 2)


# --- Formatting -----------------------------------------------------------------------------------------------------

def test_formatting_follows_the_locale():
    assert eur(4990).format("fr") == f"49,90{NBSP}€"
    assert eur(4990).format("en") == "€49.90"
    assert eur(123450).format("fr") == f"1{NNBSP}234,50{NBSP}€"
    assert Money(8000, "JPY").format("en") == "¥8,000"


def test_three_decimal_currencies_show_three_decimals_and_zero_decimal_ones_none():
    assert kwd(12340).format("fr") == f"12,340{NBSP}KWD"
    assert kwd(12340).format("en") == "KWD12.340"
    assert Money(8000, "JPY").format("fr") == f"8{NNBSP}000{NBSP}JPY"


def test_formatting_never_rounds_minor_units_away():
    assert Money(123456, "HUF").format("fr") == f"1{NNBSP}234,56{NBSP}HUF"
    assert Money(123400, "HUF").format("fr") == f"1{NNBSP}234{NBSP}HUF"
    assert Money(100000, "ISK").format("en") == "ISK1,000"
    assert Money(100050, "ISK").format("en") == "ISK1,000.50"


@pytest.mark.parametrize("money, locale, text", [
    (eur(12900), "fr", "129,00"), (eur(12900), "en", "129.00"), (kwd(12340), "fr", "12,340"),
    (Money(8000, "JPY"), "fr", "8000"), (eur(123450), "fr", "1234,50"), (eur(123450), "en", "1234.50"),
    (Money(100000, "ISK"), "fr", "1000"), (eur(4990), "fr_CH", "49,90"), (eur(4990), "de_CH", "49.90"),
    (eur(4990), "fr-FR", "49,90"),
])
def test_form_fields_are_prefilled_without_symbol_or_grouping(money, locale, text):
    assert format_amount_input(money, locale) == text
    assert parse_money(text, money.currency, locale=locale) == money


@pytest.mark.parametrize("currency, locale, text", [
    ("EUR", "fr", "49,90"), ("EUR", "en", "49.90"), ("JPY", "fr", "5000"), ("KWD", "fr", "12,340"),
    ("KWD", "en", "12.340"), ("ISK", "fr", "5000"), ("HUF", "fr", "499"),
])
def test_example_amounts_are_accepted(currency, locale, text):
    assert example_amount(currency, locale) == text
    parse_money(text, currency, locale=locale)


# --- Rates ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("locale", ["fr", "en"])
@pytest.mark.parametrize("text, bp", [
    ("20", 2000), ("5,5", 550), ("5.5", 550), ("5.5 %", 550), (f"5,5{NBSP}%", 550), ("0", 0), ("2.10", 210),
    ("19,6%", 1960), (" 7 ", 700),
])
def test_vat_rates_parse_to_basis_points(locale, text, bp):
    assert parse_rate(text, locale=locale) == bp


@pytest.mark.parametrize("locale", ["fr", "en"])
@pytest.mark.parametrize("text, code", [
    ("", "empty"), ("%", "empty"), ("abc", "syntax"), ("-1", "syntax"), ("inf", "syntax"), ("nan", "syntax"),
    ("1 000", "syntax"), ("5,5,5", "syntax"), ("5.", "syntax"), ("100", "range"), ("250", "range"),
    ("5.555", "decimals"), ("5,500", "decimals"), ("1,000", "decimals"),
])
def test_bad_vat_rates_are_refused(locale, text, code):
    with pytest.raises(MoneyError) as err:
        parse_rate(text, locale=locale)
    assert err.value.code == code


def test_format_rate_per_locale_reads_back():
    assert format_rate(550, "fr") == "5,5 %"
    assert format_rate(2000, "en") == "20 %"
    for locale in ("fr", "en", "de_DE", "fr_CH"):
        for bp in (0, 550, 1960, 2000, 9999):
            assert parse_rate(format_rate(bp, locale), locale=locale) == bp


# --- Arithmetic -----------------------------------------------------------------------------------------------------

def test_money_refuses_floats():
    with pytest.raises(TypeError):
        Money(49.9, "EUR")
    assert Money(4990, "eur").major == Decimal("49.90")


@pytest.mark.parametrize("gross, rate, net, vat", [
    (4990, 2000, 4158, 832), (12000, 2000, 10000, 2000), (1000, 550, 948, 52), (8000, 1000, 7273, 727), (50, 0, 50, 0),
])
def test_vat_split_of_a_tax_inclusive_price_adds_up(gross, rate, net, vat):
    n, v = vat_split(eur(gross), rate)
    assert (n.amount, v.amount) == (net, vat)
    assert n.amount + v.amount == gross


def test_percent_of_rounds_half_up():
    assert percent_of(eur(999), Decimal("50")) == eur(500)
