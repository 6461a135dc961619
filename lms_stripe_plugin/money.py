"""Money as integer minor units with an ISO 4217 code: reading typed amounts, Stripe's currency rules, VAT, formatting.

This module is the shared kernel: it imports nothing else of the plugin and no Flask. Every amount a person types
goes through `parse_money`, which reads it in the person's locale and never guesses.

Reading an amount
-----------------
`parse_money(text, currency, locale=...)` reads ``text`` the way a person of ``locale`` writes numbers, with Babel's
strict parsing (`babel.numbers.parse_decimal(..., strict=True)`) and the locale's own symbols:

* The decimal separator is the locale's (the comma in French and German, the point in English). A locale whose
  currency amounts use another one (the point in ``fr_CH``) accepts that one too. Digits are ASCII.
* The group separator is the locale's ("1,234.50" in English, "1.234,50" in German). Any space (U+0020, U+00A0,
  U+202F) also groups, in every locale; ``'`` and ``’`` stand for each other; and where the decimal separator is the
  comma and the locale groups with a space (French), a point groups too: "1 234,50" and "1.234,50" in French.
  One kind of group separator per amount, placed as the locale places it ("12 34" is refused), all before the
  decimal separator, which appears at most once.
* The currency's symbol or code may stand before or after the number ("49,90 €", "€49.90", "EUR 49.90"), so that
  what `Money.format` shows reads back; a symbol of another currency is refused (code ``symbol``).
* The currency never changes how the text is read, only whether the reading is an amount Stripe takes.

Ambiguity rule. A text is ambiguous when a person of the locale could read it at two orders of magnitude. Only one
shape is: a single point (or comma) that the locale accepts as a group separator *without being its own group
symbol*, and no decimal separator. In French, "1.234" is 1 234 (a point grouping thousands) or 1,234 (a decimal
point typed from habit or a numeric keypad). Such text is refused (code ``ambiguous``) with its readings that are
valid amounts in the currency: for KWD, "1.230" gives 1 230,000 KWD and 1,230 KWD; for EUR "1.234" gives only
1 234,00 €, because 1,234 € has too many decimals, and is still refused (a typed "19.999" is not silently read as
19 999 €). Nothing else is ambiguous:

* the locale's own group symbol groups: "1,234" in English and "1.234" in German are 1 234;
* the locale's decimal separator is a decimal separator: "1,234" in French is 1,234 (refused for EUR: 3 decimals);
* several points ("1.234.567") or a point with a decimal comma ("1.234,50") cannot be a decimal point;
* a space never is a decimal separator.

Text that is not a number of the locale ("12,34" in English, "1.23" in French) is refused (code ``syntax``) with
Babel's suggestions that are valid amounts ("12,34" in English: 1 234,00 € or 12,34 €).

The currency then rules: typed decimals beyond the currency's exponent are refused even when they are zeros
("0,500" for EUR: code ``decimals``), so a text a foreign reader would take for thousands is never accepted;
three-decimal currencies (BHD, JOD, KWD, OMR, TND) end in 0 and ISK is charged in whole krónur (code ``step``);
the minimum and maximum are amounts that are themselves accepted (KWD: 0,010, not 0,001).

Error codes (`MoneyError.code`, with `MoneyError.params` for the UI, which translates them)
---------------------------------------------------------------------------------------------
``empty``      nothing typed. No params.
``syntax``     not a number of the locale. ``suggestions``: tuple of `Money`, valid amounts the text may mean
               (possibly empty); ``example``: str, an amount written as the locale writes it ("49,90").
``ambiguous``  readable at two magnitudes (rule above). ``readings``: tuple of one or two `Money`, each valid.
``decimals``   more decimals than the currency has. ``digits``: int, the decimals it takes (0 for JPY and ISK).
``step``       not a multiple of Stripe's step. ``step``: `Money` (0,010 KWD; 1 ISK); ``example``: `Money`, an
               accepted amount next to the one typed (12,345 KWD → 12,340 KWD).
``minimum``    below Stripe's minimum. ``limit``: `Money`, the smallest accepted amount.
``maximum``    above Stripe's maximum. ``limit``: `Money`, the largest accepted amount.
``symbol``     a currency symbol that is not this currency's. ``symbol``: str, as typed.
``currency``   a currency Stripe does not charge in. ``currency``: str, as given.
``mixed``      arithmetic on two currencies. ``currencies``: tuple of the two codes.
``range``      (rates) not between 0 and 100 %. No params.
Rates also use ``empty``, ``syntax`` (``example``: str) and ``decimals`` (``digits``: 2).
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from babel import Locale
from babel.numbers import (NumberFormatError, format_decimal, get_currency_precision, get_currency_symbol,
                           get_decimal_symbol, get_group_symbol, parse_decimal)

#: Currencies Stripe charges in (presentment currencies).
STRIPE_CURRENCIES = frozenset(
    """usd aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl bsd bwp byn bzd
    cad cdf chf clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp gbp gel gip gmd gnf gtq gyd hkd
    hnl htg huf idr ils inr isk jmd jod jpy kes kgs khr kmf krw kwd kyd kzt lak lbp lkr lrd lsl mad mdl mga
    mkd mmk mnt mop mur mvr mwk mxn myr mzn nad ngn nio nok npr nzd omr pab pen pgk php pkr pln pyg qar ron
    rsd rub rwf sar sbd scr sek sgd shp sle sos srd std szl thb tjs tnd top try ttd twd tzs uah ugx uyu uzs
    vnd vuv wst xaf xcd xof xpf yer zar zmw""".upper().split()
)
ZERO_DECIMAL = frozenset("BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split())
#: Stripe charges these in multiples of 10 minor units (the last of the three digits is 0).
THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())
#: Stripe takes ISK as a two-decimal amount that must be a whole number of krónur.
WHOLE_UNITS_ONLY = frozenset({"ISK"})
#: Stripe's minimum charge in minor units, from "Minimum and maximum charge amounts" (docs.stripe.com/currencies).
#: Stripe lists it per settlement currency; a currency not listed here is taken down to one step.
MINIMUM_CHARGE = {"USD": 50, "AED": 200, "AUD": 50, "BGN": 100, "BRL": 50, "CAD": 50, "CHF": 50, "CZK": 1500,
                  "DKK": 250, "EUR": 50, "GBP": 30, "HKD": 400, "HUF": 17500, "INR": 50, "JPY": 50, "MXN": 1000,
                  "MYR": 200, "NOK": 300, "NZD": 50, "PLN": 200, "RON": 200, "SEK": 300, "SGD": 50, "THB": 1000}
#: Stripe's maximum amount for one charge (eight digits of minor units).
MAXIMUM_CHARGE = 99_999_999

#: Spaces that group digits; bidirectional marks that Babel puts around amounts in some locales.
_SPACES = frozenset(" \u00a0\u202f")
_INVISIBLE = re.compile(r"[\u200e\u200f\u061c]")
_DIGITS = frozenset("0123456789")
#: Longer text is not an amount anyone types; refusing it early bounds the work on hostile input.
_MAX_TEXT = 64


class MoneyError(ValueError):
    """Text or an amount that is not valid money. ``code`` and ``params`` let callers translate it."""

    def __init__(self, message: str, code: str = "invalid", **params):
        super().__init__(message)
        self.code = code
        self.params = params


def normalize_currency(code: str) -> str:
    """The upper-case ISO code, or `MoneyError` ``currency`` unless Stripe charges in it."""
    normalized = (code or "").strip().upper()
    if normalized not in STRIPE_CURRENCIES:
        raise MoneyError(f"Unknown or unsupported currency: {normalized or '(empty)'}.", "currency",
                         currency=code or "")
    return normalized


def exponent(currency: str) -> int:
    """Number of decimals in Stripe's minor unit for this currency."""
    currency = currency.upper()
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2


@dataclass(frozen=True, order=True)
class Money:
    """An amount in minor units of a currency, as Stripe counts them."""

    amount: int
    currency: str

    def __post_init__(self):
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise TypeError("Money.amount must be an int of minor units")
        object.__setattr__(self, "currency", self.currency.upper())

    @property
    def major(self) -> Decimal:
        return Decimal(self.amount).scaleb(-exponent(self.currency))

    def format(self, locale: str = "en") -> str:
        """Format for a locale: ``49,90 €`` in French, ``€49.90`` in English, ``12,340 KWD``, ``¥8,000``."""
        return _format(self.amount, self.currency, str(locale))

    def __add__(self, other: "Money") -> "Money":
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: "Money") -> "Money":
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def _same_currency(self, other: "Money") -> None:
        if other.currency != self.currency:
            raise MoneyError(f"Cannot mix {self.currency} and {other.currency}.", "mixed",
                             currencies=(self.currency, other.currency))


# --- Stripe's rules -------------------------------------------------------------------------------------------------

def amount_step(currency: str) -> int:
    """The minor units Stripe charges this currency in multiples of: 10 for KWD and the like, 100 for ISK, else 1."""
    currency = currency.upper()
    if currency in THREE_DECIMAL:
        return 10
    if currency in WHOLE_UNITS_ONLY:
        return 100
    return 1


def minimum_amount(currency: str, *, charge: bool = True) -> Money:
    """The smallest amount accepted: Stripe's minimum charge rounded up to a step, or one step for a refund."""
    currency = currency.upper()
    step = amount_step(currency)
    floor = MINIMUM_CHARGE.get(currency, 1) if charge else 1
    return Money(-(-floor // step) * step, currency)


def maximum_amount(currency: str) -> Money:
    """The largest amount accepted: Stripe's maximum rounded down to a step."""
    step = amount_step(currency)
    return Money(MAXIMUM_CHARGE // step * step, currency.upper())


def check_chargeable(money: Money, *, minimum: bool = True, locale: str = "en") -> None:
    """Raise `MoneyError` unless Stripe can charge (or, without ``minimum``, refund) exactly this amount.

    ``locale`` only formats the amounts named in the message.
    """
    low, high = minimum_amount(money.currency, charge=minimum), maximum_amount(money.currency)
    if money.amount < low.amount:
        raise MoneyError(f"The amount must be at least {low.format(locale)}.", "minimum", limit=low)
    if money.amount > high.amount:
        raise MoneyError(f"The amount must be at most {high.format(locale)}.", "maximum", limit=high)
    step = amount_step(money.currency)
    if money.amount % step:
        example = Money(max(money.amount // step * step, low.amount), money.currency)
        rule = "are whole" if money.currency in WHOLE_UNITS_ONLY else "end in 0"
        raise MoneyError(f"{money.currency} amounts {rule}: {format_amount_input(example, locale)}.", "step",
                         step=Money(step, money.currency), example=example)


# --- Formatting -----------------------------------------------------------------------------------------------------

def _shown_digits(amount: int, currency: str) -> int:
    """Decimals to show: the currency's, or fewer where the locale data shows whole units (ISK, HUF) and the amount
    is whole. Never fewer than the amount needs: a display never rounds money."""
    digits = exponent(currency)
    whole = min(get_currency_precision(currency), digits)
    return whole if amount % 10 ** (digits - whole) == 0 else digits


@lru_cache(maxsize=256)
def _babel_locale(locale: str) -> Locale:
    """Babel's locale for "fr", "fr_CH" or "fr-CH"."""
    return Locale.parse(str(locale).replace("-", "_"))


@lru_cache(maxsize=4096)
def _format(amount: int, currency: str, locale: str) -> str:
    # Memoised: a catalog shows the same few prices on every page.
    babel_locale = _babel_locale(locale)
    pattern = copy.copy(babel_locale.currency_formats["standard"])
    digits = _shown_digits(amount, currency)
    pattern.frac_prec = (digits, digits)  # Stripe's exponent, not the locale data's (HUF, IDR… show cents there)
    return pattern.apply(Decimal(amount).scaleb(-exponent(currency)), babel_locale, currency=currency,
                         currency_digits=False)


def format_amount_input(money: Money, locale: str) -> str:
    """The text a form field is prefilled with: "129,00" in French, "129.00" in English, "8000" for JPY.

    No currency symbol and no grouping, so that `parse_money` reads it back identically.
    """
    digits = _shown_digits(money.amount, money.currency)
    pattern = "0" + ("." + "0" * digits if digits else "")
    value = Decimal(money.amount).scaleb(-exponent(money.currency))
    return format_decimal(value, format=pattern, locale=_babel_locale(locale))


def example_amount(currency: str, locale: str) -> str:
    """An accepted amount written for ``locale``, for placeholders and help texts: "49,90", "49.90", "5000" (JPY),
    "12,340" (KWD in French)."""
    return format_amount_input(_example(normalize_currency(currency)), locale)


def _example(currency: str) -> Money:
    amount = 500000 if currency in WHOLE_UNITS_ONLY else {0: 5000, 2: 4990, 3: 12340}[exponent(currency)]
    while amount < minimum_amount(currency).amount:  # HUF: 49,90 is below Stripe's 175 Ft
        amount *= 10
    return Money(amount, currency)


# --- The locale's way of writing numbers ----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Numbers:
    """How a locale writes numbers, and which separators this module accepts for it."""

    locale: Locale
    decimal: str              # the locale's decimal symbol (what Babel formats with)
    decimals: frozenset       # accepted decimal separators
    group: str                # the locale's group symbol
    groups: dict              # accepted group separator -> its kind (one kind per amount)
    foreign_points: frozenset  # accepted group separators that other locales use as decimal separators


@lru_cache(maxsize=256)
def _numbers(locale: str) -> _Numbers:
    parsed = _babel_locale(locale)
    decimal, group = get_decimal_symbol(parsed), get_group_symbol(parsed)
    groups = {group: group} if group not in _SPACES else {}
    groups.update({space: "space" for space in _SPACES})
    if group in "'’":
        groups.update({"'": "'", "’": "'"})
    if decimal == "," and group in _SPACES:
        groups["."] = "."  # French: "1.234,50"
    currency_decimal = parsed.number_symbols.get("latn", {}).get("currencyDecimal")
    decimals = {decimal} | ({currency_decimal} if currency_decimal and currency_decimal not in groups else set())
    foreign = frozenset(ch for ch in groups if ch in ".," and ch != group)
    return _Numbers(parsed, decimal, frozenset(decimals), group, groups, foreign)


@lru_cache(maxsize=1024)
def _symbols(currency: str, locale: str) -> frozenset:
    """What may stand for ``currency`` in typed text: its code and its symbol in this locale and in English."""
    symbols = {currency, get_currency_symbol(currency, _babel_locale(locale)), get_currency_symbol(currency, "en")}
    return frozenset(_INVISIBLE.sub("", symbol).strip().casefold() for symbol in symbols)


@lru_cache(maxsize=256)
def _known_symbols(locale: str) -> frozenset:
    """Every currency symbol or code of this locale and of English, to tell a wrong symbol from other text."""
    names = set(_babel_locale(locale).currency_symbols.values()) | set(_babel_locale("en").currency_symbols.values())
    return frozenset({_INVISIBLE.sub("", name).strip().casefold() for name in names | STRIPE_CURRENCIES})


# --- Reading amounts ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Reading:
    """The locale's reading of a numeral, and the other reading when the text is ambiguous."""

    value: Decimal
    decimals: int
    other: Decimal | None = None
    other_decimals: int = 0


def parse_money(text: str, currency: str, *, locale: str, minimum: bool = True) -> Money:
    """Read an amount typed by a person of ``locale`` ("49,90" or "1 234,50 €" in French, "1,234.50" in English).

    ``locale`` is "fr", "en" or any Babel locale ("fr_CH", "de_DE"). Without ``minimum`` (a refund) the smallest
    amount is one step instead of Stripe's minimum charge. Raises `MoneyError` (codes in the module docstring)
    unless the text has exactly one reading in that locale and that reading is an amount Stripe takes.
    """
    currency, locale = normalize_currency(currency), str(locale)
    numeral = _numeral(text, currency, locale)
    reading = _read(numeral, text, currency, locale, minimum)
    if reading.other is not None:
        _refuse_ambiguous(reading, text, currency, locale, minimum)
    return _to_money(reading.value, reading.decimals, currency, locale, minimum)


def _numeral(text: str, currency: str, locale: str) -> str:
    """The digits and separators of ``text``, once a symbol of ``currency`` before or after them is set aside."""
    cleaned = _INVISIBLE.sub("", str(text or "")).strip()
    if not cleaned:
        raise MoneyError("Enter an amount.", "empty")
    positions = [i for i, ch in enumerate(cleaned[:_MAX_TEXT + 1]) if ch in _DIGITS]
    if not positions or len(cleaned) > _MAX_TEXT:
        raise _syntax(text, currency, locale)
    before, after = cleaned[:positions[0]].strip(), cleaned[positions[-1] + 1:].strip()
    symbol = before or after
    if before and after:
        raise _syntax(text, currency, locale)
    if symbol and symbol.casefold() not in _symbols(currency, locale):
        if symbol.casefold() in _known_symbols(locale):
            raise MoneyError(f"“{symbol}” is not the symbol of {currency}.", "symbol", symbol=symbol)
        raise _syntax(text, currency, locale)
    return cleaned[positions[0]:positions[-1] + 1]


def _read(numeral: str, text: str, currency: str, locale: str, minimum: bool) -> _Reading:
    """The locale's strict reading of a numeral (see the module docstring for what is accepted)."""
    numbers = _numbers(locale)
    kinds = {numbers.groups[ch] for ch in numeral if ch in numbers.groups}
    if len(kinds) > 1 or any(ch not in _DIGITS and ch not in numbers.decimals and ch not in numbers.groups
                             for ch in numeral):
        raise _syntax(text, currency, locale)  # no suggestion: "1 234,50" in English has no reading to offer
    canonical = "".join(numbers.group if ch in numbers.groups else numbers.decimal if ch in numbers.decimals else ch
                        for ch in numeral)
    try:
        value = parse_decimal(canonical, numbers.locale, strict=True)
    except NumberFormatError as err:  # misplaced separators: Babel suggests the locale's and the swapped reading
        raise _syntax(text, currency, locale, err.suggestions or (), minimum) from err
    points = [i for i, ch in enumerate(numeral) if ch in numbers.decimals]
    if len(points) > 1 or (points and any(ch in numbers.groups for ch in numeral[points[0]:])):
        raise _syntax(text, currency, locale)
    foreign = [ch for ch in numeral if ch in numbers.foreign_points]
    if not points and len(foreign) == 1:
        whole, _, fraction = numeral.partition(foreign[0])
        return _Reading(value, 0, Decimal(f"{whole}.{fraction}"), len(fraction))
    return _Reading(value, len(numeral) - points[0] - 1 if points else 0)


def _to_money(value: Decimal, decimals: int, currency: str, locale: str, minimum: bool) -> Money:
    """The amount read, or `MoneyError` unless Stripe takes it (decimals typed, size, step)."""
    digits = exponent(currency)
    if decimals > digits:
        shown = 0 if currency in WHOLE_UNITS_ONLY else digits
        rule = f"takes at most {shown} decimals" if shown else "has no decimals: enter a whole amount"
        raise MoneyError(f"{currency} {rule}.", "decimals", digits=shown)
    if value.adjusted() > 12:  # far beyond any charge; also keeps the arithmetic below within precision
        high = maximum_amount(currency)
        raise MoneyError(f"The amount must be at most {high.format(locale)}.", "maximum", limit=high)
    money = Money(int(value.scaleb(digits)), currency)
    check_chargeable(money, minimum=minimum, locale=locale)
    return money


def _valid(value: Decimal, decimals: int, currency: str, locale: str, minimum: bool) -> Money | None:
    try:
        return _to_money(value, decimals, currency, locale, minimum)
    except MoneyError:
        return None


def _refuse_ambiguous(reading: _Reading, text: str, currency: str, locale: str, minimum: bool) -> None:
    """Raise ``ambiguous`` with the readings that are valid amounts, or the locale reading's own error if none is."""
    candidates = ((reading.value, reading.decimals), (reading.other, reading.other_decimals))
    readings = tuple(m for m in (_valid(v, d, currency, locale, minimum) for v, d in candidates if v is not None)
                     if m is not None)
    if not readings and reading.value is not None:
        _to_money(reading.value, reading.decimals, currency, locale, minimum)  # raises: no reading is an amount
    amounts = " or ".join(m.format(locale) for m in readings)
    writings = " or ".join(format_amount_input(m, locale) for m in readings)
    raise MoneyError(f"“{text}” could be {amounts}: write {writings}.", "ambiguous", readings=readings)


def _syntax(text, currency: str, locale: str, suggestions=(), minimum: bool = True) -> MoneyError:
    """``syntax``, with Babel's suggestions (text written for the locale) that are valid amounts."""
    numbers = _numbers(locale)
    found = []
    for suggestion in suggestions:
        _, point, fraction = suggestion.partition(numbers.decimal)
        money = _valid(parse_decimal(suggestion, numbers.locale), len(fraction) if point else 0, currency, locale,
                       minimum)
        if money is not None and money not in found:
            found.append(money)
    example = example_amount(currency, locale)
    hint = f" Did you mean {' or '.join(m.format(locale) for m in found)}?" if found else ""
    return MoneyError(f"“{str(text)[:_MAX_TEXT]}” is not an amount: write it like {example}.{hint}", "syntax",
                      suggestions=tuple(found), example=example)


# --- VAT rates ------------------------------------------------------------------------------------------------------
# Rates are stored in basis points (2000 = 20 %, 550 = 5.5 %) so that they stay integers.

_RATE = re.compile(r"([0-9]+)(?:[.,]([0-9]+))?")


def parse_rate(text: str, *, locale: str) -> int:
    """Read a VAT rate ("20", "5,5", "5.5 %") into basis points.

    Rates are never grouped and stay below 100, so a single point or comma followed by one or two digits can only
    be a decimal separator: both are read as one in every locale ("5.5" in French is 5,5 %, from a numeric keypad).
    Three or more decimals are refused rather than read: "5,500" could be a grouping in English.
    ``locale`` writes the example in error messages.
    """
    cleaned = _INVISIBLE.sub("", str(text or "")).strip()
    cleaned = cleaned.removesuffix("%").rstrip(" \u00a0\u202f")
    example = format_rate(550, locale)
    if not cleaned:
        raise MoneyError("Enter a VAT rate, 0 if none applies.", "empty")
    match = _RATE.fullmatch(cleaned)
    if not match:
        raise MoneyError(f"“{text}” is not a rate: write it like {example}.", "syntax", example=example)
    whole, fraction = match[1], match[2] or ""
    if len(fraction) > 2:
        raise MoneyError("A VAT rate has at most two decimals.", "decimals", digits=2)
    value = Decimal(f"{whole}.{fraction or 0}")
    if value >= 100:
        raise MoneyError("A VAT rate is between 0 and 100 %.", "range")
    return int(value * 100)


def format_rate(basis_points: int, locale: str = "en") -> str:
    """A rate as the locale writes it: "5,5 %" in French, "5.5 %" in English; `parse_rate` reads it back."""
    return format_decimal(Decimal(basis_points) / 100, locale=_babel_locale(locale)) + " %"


# --- Arithmetic -----------------------------------------------------------------------------------------------------

def vat_split(gross: Money, rate_bp: int) -> tuple[Money, Money]:
    """Split a tax-inclusive price into (net, VAT); net + VAT == gross exactly."""
    net = (Decimal(gross.amount) * 10000 / (10000 + rate_bp)).quantize(Decimal(1), ROUND_HALF_UP)
    net_money = Money(int(net), gross.currency)
    return net_money, gross - net_money


def percent_of(money: Money, percent: Decimal) -> Money:
    """``percent`` % of an amount, rounded half up to a minor unit."""
    return Money(int((Decimal(money.amount) * percent / 100).quantize(Decimal(1), ROUND_HALF_UP)),
                 money.currency)
