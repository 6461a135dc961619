"""A learner's Stripe customer: created once (by their first Checkout, or for their first invoice) and
remembered per (learner, mode)."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..core.models import Customer
from ..core.state import PluginState
from ..gateway.types import CustomerCreateParams


def known(session, user_id: str, *, livemode: bool) -> str | None:
    return session.scalar(select(Customer.stripe_customer_id).where(
        Customer.user_id == user_id, Customer.livemode == livemode))


def create(state: PluginState, settings, *, user_id: str, email: str | None, name: str | None,
           locale: str) -> str:
    """Create the learner's customer at Stripe (its key makes a second creation return the same one): its
    id. The customer's language makes Stripe's invoices and e-mails speak it."""
    params: CustomerCreateParams = {"metadata": {"lms_user_id": user_id}, "preferred_locales": [locale]}
    if email:
        params["email"] = email
    if name:
        params["name"] = name[:256]
    created = state.gateway.create_customer(params, api_key=settings.secret_key,
                                            idempotency_key=f"lms-customer-{int(settings.livemode)}-{user_id}")
    return created["id"]


def remember(session, user_id: str, stripe_id: str, *, livemode: bool) -> None:
    try:
        with session.begin_nested():
            session.add(Customer(user_id=user_id, livemode=livemode, stripe_customer_id=stripe_id))
    except IntegrityError:
        pass  # recorded meanwhile (by a Checkout of the same learner, or a concurrent request)
