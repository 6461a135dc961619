"""Money as integer minor units with an ISO 4217 code: parsing, Stripe's currency rules, VAT, formatting."""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

from babel import Locale
from babel.numbers import format_decimal, get_currency_precision

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

_SPACES = re.compile(r"[\s\u00a0\u202f'’_]")


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


def _to_decimal(text: str, digits: int) -> Decimal:
    cleaned = _SPACES.sub("", text or "")
    if not cleaned:
        raise MoneyError("Enter an amount.", "empty")
    if not re.fullmatch(r"[0-9.,]+", cleaned) or not cleaned[0].isdigit():
        raise MoneyError(f"“{text}” is not an amount: use digits, with a comma or a point for decimals.", "syntax")
    if "," in cleaned and "." in cleaned:
        decimal_sep = "," if cleaned.rfind(",") > cleaned.rfind(".") else "."
    else:
        decimal_sep = _single_separator_role(cleaned, digits)
    whole, _, frac = cleaned.rpartition(decimal_sep) if decimal_sep else (cleaned, "", "")
    if not decimal_sep:
        whole, frac = cleaned, ""
    groups = re.split(r"[.,]", whole)
    if len(groups) > 1 and (not groups[0] or any(len(g) != 3 for g in groups[1:])):
        raise MoneyError(f"“{text}” has misplaced thousands separators.", "syntax")
    if decimal_sep and not frac:
        raise MoneyError(f"“{text}” ends with a separator.", "syntax")
    try:
        return Decimal("".join(groups) + ("." + frac if frac else ""))
    except InvalidOperation as err:  # pragma: no cover - the regex above prevents it
        raise MoneyError(f"“{text}” is not an amount.", "syntax") from err


def _single_separator_role(cleaned: str, digits: int) -> str | None:
    """With one kind of separator: is it the decimal separator (returned) or thousands (None)?"""
    sep = "," if "," in cleaned else "." if "." in cleaned else None
    if sep is None:
        return None
    if cleaned.count(sep) > 1:
        return None
    after = len(cleaned) - cleaned.index(sep) - 1
    if after == 3 and digits < 3:
        return None
    return sep


def parse_money(text: str, currency: str, *, minimum: bool = True) -> Money:
    """Parse an amount as an administrator types it ("49,90", "49.90", "1 234,50") into Money.

    Raises `MoneyError` with a message for the form when the text is not a valid price in that currency.
    """
    currency = normalize_currency(currency)
    digits = exponent(currency)
    value = _to_decimal(text, digits)
    if value.adjusted() > 12:  # far beyond any charge; also keeps the arithmetic below within precision
        high = maximum_amount(currency)
        raise MoneyError(f"The amount must be at most {high.format('en')}.", "maximum", limit=high)
    if value != value.quantize(Decimal(1).scaleb(-digits)):
        raise MoneyError(f"{currency} allows at most {digits} decimals.", "decimals", digits=digits)
    money = Money(int(value.scaleb(digits)), currency)
    check_chargeable(money, minimum=minimum)
    return money


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


# VAT rates are stored in basis points (2000 = 20 %, 550 = 5.5 %) so that they stay integers.

def parse_rate(text: str) -> int:
    """Parse a VAT rate typed as "20", "5,5" or "5.5 %" into basis points."""
    cleaned = _SPACES.sub("", str(text or "")).rstrip("%").replace(",", ".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation as err:
        raise MoneyError(f"“{text}” is not a rate.", "syntax") from err
    if not value.is_finite() or value < 0 or value >= 100:
        raise MoneyError("A VAT rate is between 0 and 100 %.", "range")
    if value != value.quantize(Decimal("0.01")):
        raise MoneyError("A VAT rate has at most two decimals.", "decimals")
    return int(value * 100)


def format_rate(basis_points: int, locale: str = "en") -> str:
    """A rate as the locale writes it: "5,5 %" in French, "5.5 %" in English."""
    return format_decimal(Decimal(basis_points) / 100, locale=_babel_locale(locale)) + " %"


def vat_split(gross: Money, rate_bp: int) -> tuple[Money, Money]:
    """Split a tax-inclusive price into (net, VAT); net + VAT == gross exactly."""
    net = (Decimal(gross.amount) * 10000 / (10000 + rate_bp)).quantize(Decimal(1), ROUND_HALF_UP)
    net_money = Money(int(net), gross.currency)
    return net_money, gross - net_money


def percent_of(money: Money, percent: Decimal) -> Money:
    return Money(int((Decimal(money.amount) * percent / 100).quantize(Decimal(1), ROUND_HALF_UP)),
                 money.currency)
