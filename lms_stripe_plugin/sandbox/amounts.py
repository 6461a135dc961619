"""Money arithmetic in minor units: discounts, inclusive and exclusive tax, display formatting."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .errors import StripeError, invalid_param

ZERO_DECIMAL_CURRENCIES = {
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg",
    "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf",
}
# Stripe's three-decimal currencies: amounts must end in 0 (docs.stripe.com/currencies#three-decimal).
THREE_DECIMAL_CURRENCIES = {"bhd", "jod", "kwd", "omr", "tnd"}
# Stripe's minimum charge amounts, in minor units (docs.stripe.com/currencies#minimum-and-maximum-charge-amounts).
# For a currency not listed Stripe asks for the equivalent of 0.50 USD in the settlement currency, which
# depends on exchange rates; the sandbox does not check those.
MINIMUM_CHARGE = {
    "usd": 50, "aed": 200, "aud": 50, "bgn": 100, "brl": 50, "cad": 50, "chf": 50, "czk": 1500, "dkk": 250,
    "eur": 50, "gbp": 30, "hkd": 400, "huf": 17500, "inr": 50, "jpy": 50, "mxn": 1000, "myr": 200, "nok": 300,
    "nzd": 50, "pln": 200, "ron": 200, "sek": 300, "sgd": 50, "thb": 1000,
}
_SYMBOLS = {"eur": "€", "usd": "$", "gbp": "£", "jpy": "¥", "chf": "CHF ", "inr": "₹"}


def exponent(currency: str) -> int:
    """Digits after the decimal point: 0 (JPY), 2 (EUR) or 3 (KWD)."""
    currency = currency.lower()
    if currency in ZERO_DECIMAL_CURRENCIES:
        return 0
    return 3 if currency in THREE_DECIMAL_CURRENCIES else 2


def step(currency: str) -> int:
    """The smallest amount Stripe moves: 10 for three-decimal currencies, else 1."""
    return 10 if currency.lower() in THREE_DECIMAL_CURRENCIES else 1


def round_to(amount: Decimal | int, unit: int) -> int:
    """Round half up to a multiple of ``unit`` minor units."""
    return round_half_up(Decimal(amount) / unit) * unit


def round_half_up(value: Decimal) -> int:
    """Round to a whole minor unit the way invoices do (half away from zero)."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def inclusive_tax(amount: int, percentage: Decimal) -> int:
    """Tax contained in a tax-inclusive ``amount``: amount - round(amount / (1 + pct/100))."""
    net = round_half_up(Decimal(amount) / (1 + Decimal(percentage) / 100))
    return amount - net


def exclusive_tax(amount: int, percentage: Decimal, unit: int = 1) -> int:
    """Tax added on top of a tax-exclusive ``amount`` (a multiple of ``unit``, since it is charged)."""
    return round_to(Decimal(amount) * Decimal(percentage) / 100, unit)


def format_amount(amount: int, currency: str) -> str:
    """``1234, "eur"`` -> ``€12.34``; ``12340, "kwd"`` -> ``12.340 KWD``; ``500, "jpy"`` -> ``¥500``."""
    currency = currency.lower()
    digits = exponent(currency)
    value = Decimal(amount).scaleb(-digits)
    text = f"{value:,.{digits}f}"
    symbol = _SYMBOLS.get(currency)
    if symbol:
        return f"-{symbol}{text[1:]}" if text.startswith("-") else f"{symbol}{text}"
    return f"{text} {currency.upper()}"


@dataclass
class TaxShare:
    """The tax one rate adds to (or contains in) one line."""

    rate: dict[str, Any]
    amount: int
    taxable_amount: int


@dataclass
class PricedLine:
    """Amounts of one line after discount and tax."""

    subtotal: int
    discount: int
    taxes: list[TaxShare] = field(default_factory=list)

    @property
    def tax(self) -> int:
        """All tax of the line, inclusive and exclusive."""
        return sum(share.amount for share in self.taxes)

    @property
    def exclusive_tax(self) -> int:
        """Only the tax added on top of the price."""
        return sum(s.amount for s in self.taxes if not s.rate.get("inclusive"))

    @property
    def total(self) -> int:
        """What the customer pays for the line."""
        return self.subtotal - self.discount + self.exclusive_tax


def allocate_discount(subtotals: list[int], coupon: dict[str, Any] | None, unit: int = 1) -> list[int]:
    """Split a coupon's discount over the lines (percent per line, fixed amount pro rata).

    Each share is a multiple of ``unit`` (10 for three-decimal currencies), so that what is
    charged stays one.
    """
    if not coupon:
        return [0] * len(subtotals)
    if coupon.get("percent_off") is not None:
        pct = Decimal(str(coupon["percent_off"]))
        return [round_to(Decimal(s) * pct / 100, unit) for s in subtotals]
    total = sum(subtotals)
    off = round_to(min(int(coupon.get("amount_off") or 0), total), unit)
    if total == 0:
        return [0] * len(subtotals)
    shares = [off * s // total // unit * unit for s in subtotals]
    # The remainder of the integer division goes to the last line so the parts add up.
    shares[-1] += off - sum(shares)
    return shares


def line_taxes(taxable: int, rates: list[dict[str, Any]], unit: int = 1) -> list[TaxShare]:
    """Tax of one line for each of its tax rates."""
    inclusive = [r for r in rates if r.get("inclusive")]
    exclusive = [r for r in rates if not r.get("inclusive")]
    shares: list[TaxShare] = []
    net = taxable
    if inclusive:
        combined = sum(Decimal(str(r["percentage"])) for r in inclusive)
        contained = inclusive_tax(taxable, combined)
        net = taxable - contained
        shares += _split_inclusive(contained, net, inclusive, combined)
    for rate in exclusive:
        shares.append(TaxShare(rate, exclusive_tax(net, Decimal(str(rate["percentage"])), unit), net))
    return shares


def _split_inclusive(contained: int, net: int, rates: list[dict[str, Any]], combined: Decimal) -> list[TaxShare]:
    shares = []
    remaining = contained
    for index, rate in enumerate(rates):
        pct = Decimal(str(rate["percentage"]))
        if index == len(rates) - 1:
            amount = remaining
        else:
            amount = round_half_up(Decimal(contained) * pct / combined) if combined else 0
        remaining -= amount
        shares.append(TaxShare(rate, amount, net))
    return shares


def price_lines(lines: list[dict[str, Any]], coupon: dict[str, Any] | None, unit: int = 1) -> list[PricedLine]:
    """Price lines given as ``{"unit_amount", "quantity", "rates": [tax_rate, ...]}``.

    ``unit`` is :func:`step` of the currency: discounts and added tax are rounded to it.
    """
    subtotals = [int(line["unit_amount"]) * int(line["quantity"]) for line in lines]
    discounts = allocate_discount(subtotals, coupon, unit)
    priced = []
    for line, subtotal, discount in zip(lines, subtotals, discounts):
        taxes = line_taxes(subtotal - discount, line.get("rates") or [], unit)
        priced.append(PricedLine(subtotal, discount, taxes))
    return priced


def check_step(amount: int | None, currency: str, param: str) -> None:
    """Refuse an amount of a three-decimal currency whose last digit is not 0, as Stripe does."""
    if amount is not None and amount % step(currency):
        raise invalid_param(param, (
            f"Invalid amount: {amount}. Amounts in {currency.upper()} (a three-decimal currency) must be a "
            "multiple of 10: the last digit must be 0."), code="invalid_charge_amount")


def check_minimum(total: int, currency: str) -> None:
    """Refuse a Checkout total below Stripe's minimum charge for the currency (0 needs no payment)."""
    minimum = MINIMUM_CHARGE.get(currency.lower())
    if minimum is not None and 0 < total < minimum:
        raise StripeError(
            f"The Checkout Session's total amount due must add up to at least {format_amount(minimum, currency)} "
            f"{currency.lower()}", code="amount_too_small")
