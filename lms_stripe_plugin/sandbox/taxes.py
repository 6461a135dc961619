"""Stripe Tax for Checkout's ``automatic_tax``: EU VAT standard rates by the customer's country.

A deliberately small table: the standard VAT rate of each EU member state (2025). Outside
the table the sandbox computes no tax, as Stripe does where the account is not registered.
"""

from __future__ import annotations

from typing import Any

from .errors import StripeError
from .state import SandboxState

EU_VAT_STANDARD_RATES = {
    "AT": 20, "BE": 21, "BG": 20, "CY": 19, "CZ": 21, "DE": 19, "DK": 25, "EE": 24, "ES": 21, "FI": 25.5,
    "FR": 20, "GR": 24, "HR": 25, "HU": 27, "IE": 23, "IT": 22, "LT": 21, "LU": 17, "LV": 21, "MT": 18,
    "NL": 21, "PL": 23, "PT": 23, "RO": 21, "SE": 25, "SI": 22, "SK": 23,
}


def customer_country(customer: dict[str, Any] | None) -> str | None:
    """The country of a customer's address, if Stripe knows one."""
    address = (customer or {}).get("address") or {}
    country = address.get("country")
    return country.upper() if country else None


def tax_location_invalid() -> StripeError:
    """Stripe's refusal of ``automatic_tax`` for a customer whose location it cannot tell."""
    return StripeError(
        "Automatic tax calculation in Checkout requires a valid address on the Customer. Add a valid address to the "
        "Customer or set either `customer_update[address]` to 'auto' or `customer_update[shipping]` to 'auto' to "
        "save the address entered in Checkout to the Customer.",
        code="customer_tax_location_invalid", param="customer_update[address]")


def automatic_rate(state: SandboxState, country: str | None, inclusive: bool) -> dict[str, Any] | None:
    """The tax rate Stripe Tax applies for ``country`` (created once, like Stripe's own rates)."""
    percentage = EU_VAT_STANDARD_RATES.get((country or "").upper())
    if percentage is None:
        return None
    rate_id = f"txr_sbxauto_{country.lower()}_{'in' if inclusive else 'ex'}"
    existing = state.get(rate_id, "tax_rate")
    if existing is not None:
        return existing
    return state.add({
        "id": rate_id, "object": "tax_rate", "active": True, "country": country.upper(), "created": state.now(),
        "description": None, "display_name": "VAT", "effective_percentage": float(percentage), "flat_amount": None,
        "inclusive": inclusive, "jurisdiction": country.upper(), "jurisdiction_level": "country", "livemode": False,
        "metadata": {}, "percentage": float(percentage), "rate_type": "percentage", "state": None,
        "tax_type": "vat",
    })


# Klarna takes only the local currency of the customer's country (docs.klarna.com, "Purchase
# countries, currencies and locales").
KLARNA_CURRENCY_BY_COUNTRY = {
    "AT": "eur", "BE": "eur", "DE": "eur", "ES": "eur", "FI": "eur", "FR": "eur", "GR": "eur", "IE": "eur",
    "IT": "eur", "NL": "eur", "PT": "eur", "SK": "eur", "DK": "dkk", "NO": "nok", "SE": "sek", "CH": "chf",
    "GB": "gbp", "CZ": "czk", "PL": "pln", "RO": "ron", "AU": "aud", "NZ": "nzd", "CA": "cad", "US": "usd",
}
# Stripe's Klarna page was not found in the docs searched; EUR 1.00 (or its equivalent) is the minimum
# Klarna's acquiring partners publish. In minor units.
KLARNA_MINIMUM = {"eur": 100, "gbp": 100, "usd": 100, "chf": 100, "aud": 100, "nzd": 100, "cad": 100,
                  "dkk": 1000, "nok": 1000, "sek": 1000, "czk": 2500, "pln": 500, "ron": 500}
