"""Properties of reading amounts: what the plugin writes reads back, and no text is read at another magnitude."""
from decimal import Decimal

import pytest
from babel.numbers import NumberFormatError, get_decimal_symbol, get_group_symbol, parse_decimal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lms_stripe_plugin.money import (Money, MoneyError, amount_step, check_chargeable, exponent, format_amount_input,
                                     format_rate, maximum_amount, minimum_amount, parse_money, parse_rate)

#: The shipped locales first, then a few others.
LOCALES = ["en", "fr", "en_US", "fr_CH", "de_DE"]
#: Every exponent: two decimals (EUR, USD, CHF), none (JPY), three (KWD, BHD), whole units (ISK), a high minimum (HUF).
CURRENCIES = ["EUR", "USD", "CHF", "JPY", "KWD", "BHD", "ISK", "HUF"]

SPACES = " \u00a0\u202f"
#: What each tested locale writes, stated here independently of the module: decimal separators and group separators.
WRITING = {
    "en": (".", "," + SPACES), "en_US": (".", "," + SPACES), "fr": (",", "." + SPACES),
    "fr_CH": (",.", "'’" + SPACES), "de_DE": (",", "." + SPACES),
}

PROPERTIES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def chargeable(draw, currency, *, charge=True):
    """An amount Stripe takes in ``currency``: a multiple of its step between the minimum and the maximum."""
    step = amount_step(currency)
    low, high = minimum_amount(currency, charge=charge).amount // step, maximum_amount(currency).amount // step
    small = st.integers(low, min(high, low + 100_000))  # most prices are small; the whole range is drawn too
    return Money(draw(st.one_of(small, st.integers(low, high))) * step, currency)


def locale_reading(text: str, locale: str) -> Decimal | None:
    """The value a person of ``locale`` reads in ``text`` (Babel's strict parse with the locale's symbols), if any."""
    decimals, groups = WRITING[locale]
    if not text or any(not ch.isascii() or not ch.isdigit() for ch in text if ch not in decimals + groups):
        return None
    symbol, group = get_decimal_symbol(locale), get_group_symbol(locale)
    canonical = "".join(group if ch in groups else symbol if ch in decimals else ch for ch in text)
    try:
        return parse_decimal(canonical, locale, strict=True)
    except NumberFormatError:
        return None


def swapped_reading(text: str) -> Decimal | None:
    """The other reading: the last point or comma as the decimal separator, every other separator grouping."""
    position = max(text.rfind("."), text.rfind(","))
    if position < 0:
        return None
    whole = "".join(ch for ch in text[:position] if ch.isdigit())
    return Decimal(f"{whole or 0}.{text[position + 1:]}") if text[position + 1:].isdigit() else None


@pytest.mark.parametrize("currency", CURRENCIES)
@pytest.mark.parametrize("locale", LOCALES)
@PROPERTIES
@given(data=st.data())
def test_the_prefilled_text_reads_back(locale, currency, data):
    money = data.draw(chargeable(currency))
    assert parse_money(format_amount_input(money, locale), currency, locale=locale) == money


@pytest.mark.parametrize("currency", CURRENCIES)
@pytest.mark.parametrize("locale", LOCALES)
@PROPERTIES
@given(data=st.data())
def test_the_formatted_amount_with_its_symbol_reads_back(locale, currency, data):
    money = data.draw(chargeable(currency))
    assert parse_money(money.format(locale), currency, locale=locale) == money


@pytest.mark.parametrize("currency", ["EUR", "JPY", "KWD", "ISK"])
@pytest.mark.parametrize("locale", LOCALES)
@PROPERTIES
@given(data=st.data())
def test_refund_amounts_read_back_down_to_one_step(locale, currency, data):
    money = data.draw(chargeable(currency, charge=False))
    assert parse_money(format_amount_input(money, locale), currency, locale=locale, minimum=False) == money
    assert parse_money(money.format(locale), currency, locale=locale, minimum=False) == money


def typed_numbers():
    """Digit runs joined by separators of every locale, as people type them (and mistype them)."""
    runs = st.text("0123456789", min_size=1, max_size=4)
    separators = st.sampled_from([".", ",", " ", "\u00a0", "\u202f", "'", "’"])
    return st.tuples(runs, st.lists(st.tuples(separators, runs), max_size=4)).map(
        lambda parts: parts[0] + "".join(sep + run for sep, run in parts[1]))


@pytest.mark.parametrize("currency", ["EUR", "JPY", "KWD", "ISK"])
@pytest.mark.parametrize("locale", LOCALES)
@settings(max_examples=300, deadline=None)
@given(text=typed_numbers())
def test_no_text_is_read_at_another_magnitude_than_its_locales_reading(locale, currency, text):
    try:
        money = parse_money(text, currency, locale=locale)
    except MoneyError:
        return  # refusing is always safe
    expected = locale_reading(text, locale)
    assert expected is not None, f"{text!r} is not a number in {locale}, yet it was read as {money}"
    assert money.major == expected
    other = swapped_reading(text)
    assert other is None or other == expected or money.major != other
    check_chargeable(money)
    assert money.amount % amount_step(currency) == 0


@pytest.mark.parametrize("currency", ["EUR", "KWD"])
@PROPERTIES
@given(whole=st.integers(1, 999), thousands=st.integers(0, 999))
def test_a_lone_point_in_french_is_never_read(currency, whole, thousands):
    text = f"{whole}.{thousands:03d}"
    with pytest.raises(MoneyError) as err:
        parse_money(text, currency, locale="fr")
    if err.value.code == "ambiguous":
        readings = err.value.params["readings"]
        assert set(readings) <= {Money(int(Decimal(text.replace(".", "")).scaleb(exponent(currency))), currency),
                                 Money(int(Decimal(text).scaleb(exponent(currency))), currency)}
        for reading in readings:
            check_chargeable(reading)


@pytest.mark.parametrize("locale", LOCALES)
@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=40))
def test_any_text_is_read_or_refused_with_a_money_error(locale, text):
    try:
        money = parse_money(text, "EUR", locale=locale)
    except MoneyError as err:
        assert err.code in {"empty", "syntax", "ambiguous", "decimals", "step", "minimum", "maximum", "symbol"}
        return
    check_chargeable(money)


@pytest.mark.parametrize("locale", LOCALES)
@PROPERTIES
@given(basis_points=st.integers(0, 9999))
def test_a_formatted_rate_reads_back(locale, basis_points):
    assert parse_rate(format_rate(basis_points, locale), locale=locale) == basis_points


@pytest.mark.parametrize("locale", LOCALES)
@settings(max_examples=200, deadline=None)
@given(text=typed_numbers())
def test_a_rate_is_read_with_the_decimals_typed_or_refused(locale, text):
    try:
        basis_points = parse_rate(text, locale=locale)
    except MoneyError:
        return
    assert Decimal(basis_points) / 100 == Decimal(text.replace(",", "."))
