"""A learner's Stripe customer: created once (before their first Checkout, or for their first invoice) and
remembered per (learner, mode), with the language of its invoices.

Stripe writes a customer's invoices, their PDF and hosted page, in the customer's ``preferred_locales``; the
plugin sets it to the learner's language when it creates the customer, and again when the learner buys in
another language, so that the invoice and the legal mentions the plugin adds to it (billing/legal.py) are
in one language. Looking a customer up reads our table; creating or changing one calls Stripe, and the
caller records the answer in its next step (no transaction is held across the call).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..core.models import Customer
from ..core.state import PluginState
from ..gateway.types import CustomerCreateParams


@dataclass(frozen=True)
class CustomerWanted:
    """A customer to create at Stripe for a learner, with the language of their invoices."""

    user_id: str
    email: str | None
    name: str | None
    locale: str


@dataclass(frozen=True)
class KnownCustomer:
    stripe_id: str
    locale: str | None  # None: not set by the plugin


def known(session, user_id: str, *, livemode: bool) -> str | None:
    found = known_customer(session, user_id, livemode=livemode)
    return found.stripe_id if found else None


def known_customer(session, user_id: str, *, livemode: bool) -> KnownCustomer | None:
    row = session.execute(select(Customer.stripe_customer_id, Customer.locale).where(
        Customer.user_id == user_id, Customer.livemode == livemode)).first()
    return KnownCustomer(row.stripe_customer_id, row.locale) if row else None


def create(state: PluginState, settings, wanted: CustomerWanted) -> str:
    """Create the learner's customer at Stripe (its key makes a second creation return the same one): its
    id. The customer's language makes Stripe's invoices and e-mails speak it."""
    params: CustomerCreateParams = {"metadata": {"lms_user_id": wanted.user_id},
                                    "preferred_locales": [wanted.locale]}
    if wanted.email:
        params["email"] = wanted.email
    if wanted.name:
        params["name"] = wanted.name[:256]
    created = state.gateway.create_customer(
        params, api_key=settings.secret_key, idempotency_key=f"lms-customer-{int(settings.livemode)}-{wanted.user_id}")
    return created["id"]


def set_locale(state: PluginState, settings, stripe_id: str, locale: str) -> None:
    """Make Stripe write this customer's invoices in ``locale`` from now on."""
    state.gateway.update_customer(stripe_id, {"preferred_locales": [locale]}, api_key=settings.secret_key)


def remember(session, user_id: str, stripe_id: str, *, livemode: bool, locale: str | None = None) -> None:
    try:
        with session.begin_nested():
            session.add(Customer(user_id=user_id, livemode=livemode, stripe_customer_id=stripe_id, locale=locale))
    except IntegrityError:
        # Recorded meanwhile (by a Checkout of the same learner, or a concurrent request): its language is
        # the one just set at Stripe.
        if locale is not None:
            remember_locale(session, stripe_id, locale)


def remember_locale(session, stripe_id: str, locale: str) -> None:
    session.execute(update(Customer).where(Customer.stripe_customer_id == stripe_id).values(locale=locale)
                    .execution_options(synchronize_session=False))
