"""Money arithmetic in minor units: discounts, inclusive and exclusive tax, display formatting."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

ZERO_DECIMAL_CURRENCIES = {
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg",
    "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf",
}
_SYMBOLS = {"eur": "€", "usd": "$", "gbp": "£", "jpy": "¥", "chf": "CHF ", "inr": "₹"}


def round_half_up(value: Decimal) -> int:
    """Round to a whole minor unit the way invoices do (half away from zero)."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def inclusive_tax(amount: int, percentage: Decimal) -> int:
    """Tax contained in a tax-inclusive ``amount``: amount - round(amount / (1 + pct/100))."""
    net = round_half_up(Decimal(amount) / (1 + Decimal(percentage) / 100))
    return amount - net


def exclusive_tax(amount: int, percentage: Decimal) -> int:
    """Tax added on top of a tax-exclusive ``amount``."""
    return round_half_up(Decimal(amount) * Decimal(percentage) / 100)


def format_amount(amount: int, currency: str) -> str:
    """``1234, "eur"`` -> ``€12.34`` (English display; the sandbox is a developer tool)."""
    currency = currency.lower()
    exponent = 0 if currency in ZERO_DECIMAL_CURRENCIES else 2
    value = Decimal(amount).scaleb(-exponent)
    text = f"{value:,.{exponent}f}"
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


def allocate_discount(subtotals: list[int], coupon: dict[str, Any] | None) -> list[int]:
    """Split a coupon's discount over the lines (percent per line, fixed amount pro rata)."""
    if not coupon:
        return [0] * len(subtotals)
    if coupon.get("percent_off") is not None:
        pct = Decimal(str(coupon["percent_off"]))
        return [round_half_up(Decimal(s) * pct / 100) for s in subtotals]
    total = sum(subtotals)
    off = min(int(coupon.get("amount_off") or 0), total)
    if total == 0:
        return [0] * len(subtotals)
    shares = [off * s // total for s in subtotals]
    # The remainder of the integer division goes to the last line so the parts add up.
    shares[-1] += off - sum(shares)
    return shares


def line_taxes(taxable: int, rates: list[dict[str, Any]]) -> list[TaxShare]:
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
        shares.append(TaxShare(rate, exclusive_tax(net, Decimal(str(rate["percentage"]))), net))
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


def price_lines(lines: list[dict[str, Any]], coupon: dict[str, Any] | None) -> list[PricedLine]:
    """Price lines given as ``{"unit_amount", "quantity", "rates": [tax_rate, ...]}``."""
    subtotals = [int(line["unit_amount"]) * int(line["quantity"]) for line in lines]
    discounts = allocate_discount(subtotals, coupon)
    priced = []
    for line, subtotal, discount in zip(lines, subtotals, discounts):
        taxes = line_taxes(subtotal - discount, line.get("rates") or [])
        priced.append(PricedLine(subtotal, discount, taxes))
    return priced
