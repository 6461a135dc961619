"""The inclusive Stripe Tax Rates of our VAT rates: created once per (rate, country, mode) and remembered.

Looking a rate up reads our table; creating one calls Stripe (its idempotency key makes a second creation
return the same rate) and, after that call, `remember` writes it: callers look up in one step and create
in the next, so that no transaction is held across the call.
"""
from __future__ import annotations

from copy import copy
from dataclasses import dataclass
from decimal import Decimal

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..core.models import TaxRate
from ..core.state import PluginState
from ..gateway.types import SessionCreateParams


@dataclass(frozen=True)
class TaxRateWanted:
    """A VAT rate (basis points) in the country the plugin's tax rates are for."""

    rate: int
    country: str


def wanted(rate: int) -> TaxRateWanted:
    return TaxRateWanted(rate, current_app.config["LMS_STRIPE_TAX_COUNTRY"])


def known(session, rate: TaxRateWanted, *, livemode: bool) -> str | None:
    """The Stripe id of this rate, if it was created before."""
    return session.scalar(select(TaxRate.stripe_tax_rate_id).where(
        TaxRate.rate == rate.rate, TaxRate.country == rate.country, TaxRate.livemode == livemode))


def create(state: PluginState, settings, rate: TaxRateWanted) -> str:
    """Create the inclusive Stripe Tax Rate (or get the one its key created before): its id."""
    percentage = Decimal(rate.rate).scaleb(-2)  # basis points: 550 is 5.5 %
    created = state.gateway.create_tax_rate(
        {"display_name": display_name(rate.country), "percentage": float(percentage), "inclusive": True,
         "country": rate.country,
         "description": f"VAT {percentage:f} % ({rate.country})", "tax_type": "vat"},
        api_key=settings.secret_key,
        idempotency_key=f"lms-tax-rate-{rate.country}-{rate.rate}-{int(settings.livemode)}")
    return created["id"]


def display_name(country: str) -> str:
    """The tax's name as Stripe prints it on invoices, whatever their language: French invoices say TVA."""
    return TAX_NAMES.get(country, "VAT")


#: The name of VAT on the invoices of a school in these countries (elsewhere: "VAT").
TAX_NAMES = {"FR": "TVA"}


def remember(session, rate: TaxRateWanted, stripe_id: str, *, livemode: bool) -> None:
    """Record a rate created at Stripe (once: a concurrent request may have recorded it)."""
    try:
        with session.begin_nested():
            session.add(TaxRate(rate=rate.rate, country=rate.country, livemode=livemode,
                                stripe_tax_rate_id=stripe_id))
    except IntegrityError:
        pass  # the same rate, recorded by a concurrent request (same key, same id)


def with_tax_rate(params: SessionCreateParams, tax_rate_id: str) -> SessionCreateParams:
    """A Checkout Session's parameters whose (one) line carries this inclusive VAT rate."""
    line = copy(params["line_items"][0])
    line["tax_rates"] = [tax_rate_id]
    with_rate = copy(params)
    with_rate["line_items"] = [line]
    return with_rate
