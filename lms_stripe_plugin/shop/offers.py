"""Course offers: how a course is sold, its VAT breakdown and what the school receives after fees."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from flask import current_app
from sqlalchemy import select

from ..accounts import settings as payment_settings
from ..core import audit
from ..core.enums import AuditAction
from ..core.models import CourseOffer
from ..money import Money, percent_of, vat_split
from . import catalog


def get_offer(session, course_id: str) -> CourseOffer | None:
    return session.scalar(select(CourseOffer).where(CourseOffer.course_id == course_id))


def save_offer(session, course_id: str, data: dict, *, actor_id: str | None) -> CourseOffer:
    """Store a validated offer (from `CoursePricingSchema`) in the caller's transaction: from the host's
    course form, the host's commit saves it with the course, and a refused save leaves nothing."""
    offer = get_offer(session, course_id) or CourseOffer(course_id=course_id)
    offer.is_paid = data["is_paid"]
    if data["is_paid"]:
        offer.amount, offer.currency = data["amount"], data["currency"]
        offer.vat_rate, offer.audience, offer.on_sale = data["vat_rate"], data["audience"], data["on_sale"]
    session.add(offer)
    audit.record(session, AuditAction.COURSE_PRICING_CHANGED, actor_id=actor_id, course_id=course_id,
                 paid=offer.is_paid, amount=offer.amount, currency=offer.currency, vat_rate=offer.vat_rate,
                 audience=offer.audience, on_sale=offer.on_sale)
    session.flush()  # the offer is read back by this request's pages before the commit
    catalog.raise_revision(session)
    payment_settings.forget_cached()
    catalog.forget_cached()
    return offer


@dataclass(frozen=True)
class FeeEstimate:
    method: str
    fee: Money
    received: Money
    extra_fixed: Money | None  # a fixed fee in another currency, not deducted


@dataclass(frozen=True)
class Breakdown:
    gross: Money
    net: Money
    vat: Money
    vat_rate: int
    fees: tuple[FeeEstimate, ...]


def breakdown(gross: Money, vat_rate: int) -> Breakdown:
    """Net, VAT and gross of a tax-inclusive price, and what the school receives per payment method."""
    net, vat = vat_split(gross, vat_rate)
    fees = tuple(_fee(method, gross, table) for method, table in current_app.config["LMS_STRIPE_FEES"].items())
    return Breakdown(gross=gross, net=net, vat=vat, vat_rate=vat_rate, fees=fees)


def _fee(method: str, gross: Money, table: dict) -> FeeEstimate:
    fee = percent_of(gross, Decimal(str(table["percent"])))
    fixed = Money(int(table["fixed"]), table.get("currency", gross.currency))
    extra = None
    if fixed.currency == gross.currency:
        fee = fee + fixed
    else:
        extra = fixed
    return FeeEstimate(method=method, fee=fee, received=gross - fee, extra_fixed=extra)
