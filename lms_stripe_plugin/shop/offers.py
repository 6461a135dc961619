"""Course offers: how a course is sold, its VAT breakdown and what the school receives after fees."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import select

from ..accounts import connect, settings as payment_settings
from ..core import audit, jobs
from ..core.enums import AuditAction, BalanceDue, DepositAccess, PaymentPlan, PurchaseStatus
from ..core.models import CourseOffer, CoursePrice, Purchase
from ..core.state import PluginState
from ..core.txn import transition
from ..errors import PaymentsError
from ..money import Money, percent_of, vat_split
from . import catalog, deposits


def get_offer(session, course_id: str) -> CourseOffer | None:
    return session.scalar(select(CourseOffer).where(CourseOffer.course_id == course_id))


def save_offer(session, course_id: str, data: dict, *, actor_id: str | None) -> CourseOffer:
    """Store a validated offer (from `CoursePricingSchema`) in the caller's transaction: from the host's
    course form, the host's commit saves it with the course, and a refused save leaves nothing."""
    offer = get_offer(session, course_id) or CourseOffer(course_id=course_id)
    before = (_terms(offer), prices_of(session, course_id) if offer.id is not None else {})
    offer.is_paid = data["is_paid"]
    if data["is_paid"]:
        offer.amount, offer.currency = data["amount"], data["currency"]
        offer.vat_rate, offer.audience, offer.on_sale = data["vat_rate"], data["audience"], data["on_sale"]
    _set_plan(offer, data)
    session.add(offer)
    session.flush()  # the offer is read back by this request's pages before the commit (and its prices need it)
    others = _set_prices(session, offer, data.get("prices"))
    extra: dict[str, Any] = {"prices": others} if others else {}
    audit.record(session, AuditAction.COURSE_PRICING_CHANGED, actor_id=actor_id, course_id=course_id,
                 paid=offer.is_paid, amount=offer.amount, currency=offer.currency, vat_rate=offer.vat_rate,
                 audience=offer.audience, on_sale=offer.on_sale, **extra, **_plan_details(offer))
    if (_terms(offer), others) != before:
        withdraw_open_checkouts(session, course_id)
    catalog.raise_revision(session)
    payment_settings.forget_cached()
    catalog.forget_cached()
    return offer


def prices_of(session, course_id: str) -> dict[str, int]:
    """Currency → amount of the course's prices besides its offer's own (none when one currency is accepted)."""
    rows = session.execute(select(CoursePrice.currency, CoursePrice.amount)
                           .where(CoursePrice.course_id == course_id).order_by(CoursePrice.currency)).all()
    return dict(rows)


def _set_prices(session, offer: CourseOffer, prices: dict[str, int | None] | None) -> dict[str, int]:
    """Set the course's other prices from ``prices`` (currency → amount, None to remove it; the currencies it
    does not name keep theirs, such as one the school stopped accepting for a while), in the caller's
    transaction; a free course keeps none. The prices it has then, by currency."""
    rows = {row.currency: row for row in session.scalars(
        select(CoursePrice).where(CoursePrice.course_id == offer.course_id))}
    for code, amount in ({code: None for code in rows} if not offer.is_paid else (prices or {})).items():
        row = rows.get(code)
        if amount is None or code == offer.currency:
            if row is not None:
                session.delete(row)
                del rows[code]
        elif row is None:
            rows[code] = CoursePrice(course_id=offer.course_id, currency=code, amount=amount)
            session.add(rows[code])
        else:
            row.amount = amount
    own = rows.pop(offer.currency or "", None)  # the offer's own currency now: its price is the offer's
    if own is not None:
        session.delete(own)
    session.flush()
    return {code: rows[code].amount for code in sorted(rows)}


@dataclass(frozen=True)
class PricedOffer:
    """A course's offer in one of its other currencies: the same terms, that currency's price, and a fixed
    deposit as the same share of it (rounded down to what Stripe charges)."""

    course_id: str
    is_paid: bool
    amount: int
    currency: str
    vat_rate: int
    audience: str
    on_sale: bool
    payment_plan: PaymentPlan
    deposit_percent: int | None
    deposit_amount: int | None
    balance_due: BalanceDue | None
    balance_due_date: date | None
    balance_due_days: int | None
    deposit_access: DepositAccess | None

    @property
    def price(self) -> Money:
        return Money(self.amount, self.currency)


def in_currency(session, offer: CourseOffer | None, currency: str | None) -> CourseOffer | PricedOffer | None:
    """The offer as a learner paying in ``currency`` buys it: the offer itself in its own currency (or when
    ``currency`` is None: one currency accepted), the offer at its price in ``currency``, or None when the
    course has no price in it. A free course's offer is given as it is."""
    if offer is None or currency is None or offer.price is None or offer.currency == currency:
        return offer
    amount = session.scalar(select(CoursePrice.amount).where(CoursePrice.course_id == offer.course_id,
                                                              CoursePrice.currency == currency))
    return priced(offer, currency, amount) if amount is not None else None


def priced(offer: CourseOffer, currency: str, amount: int) -> PricedOffer:
    """``offer`` at ``amount`` of ``currency`` (see `PricedOffer`)."""
    deposit = None
    if offer.deposit_amount and offer.price is not None:
        deposit = deposits.scaled_deposit(Money(amount, currency), offer.price, offer.deposit_amount).amount
    terms = {name: getattr(offer, name) for name in PLAN_FIELDS}
    terms["deposit_amount"] = deposit
    return PricedOffer(course_id=offer.course_id, is_paid=True, amount=amount, currency=currency,
                       vat_rate=offer.vat_rate, audience=offer.audience, on_sale=offer.on_sale,
                       payment_plan=offer.payment_plan, **terms)


#: The deposit terms of an offer, as `CoursePricingSchema` loads them.
PLAN_FIELDS = ("deposit_percent", "deposit_amount", "balance_due", "balance_due_date", "balance_due_days",
               "deposit_access")


def deposit_of(data: dict) -> Money:
    """The deposit of validated deposit terms (from `CoursePricingSchema`), as a learner would pay it."""
    price = Money(data["amount"], data["currency"])
    if data.get("deposit_amount"):
        return Money(data["deposit_amount"], price.currency)
    return deposits.deposit_amount_of(price, percent=data.get("deposit_percent") or 0)


def _set_plan(offer: CourseOffer, data: dict) -> None:
    """Full payment, or the deposit's terms (every one of them: the others cleared)."""
    deposit = bool(data.get("is_paid")) and data.get("payment_plan") == PaymentPlan.DEPOSIT
    offer.payment_plan = PaymentPlan.DEPOSIT if deposit else PaymentPlan.FULL
    for name in PLAN_FIELDS:
        setattr(offer, name, data.get(name) if deposit else None)


def _plan_details(offer: CourseOffer) -> dict:
    if offer.payment_plan != PaymentPlan.DEPOSIT:
        return {"payment_plan": str(PaymentPlan.FULL)}
    details = {name: getattr(offer, name) for name in PLAN_FIELDS}
    details["balance_due_date"] = offer.balance_due_date.isoformat() if offer.balance_due_date else None
    return {"payment_plan": str(PaymentPlan.DEPOSIT), **details}


def _terms(offer: CourseOffer) -> tuple:
    """What a learner's open checkout was made for: any change of it withdraws open checkouts."""
    return (offer.is_paid, offer.amount, offer.currency, offer.vat_rate, offer.audience, offer.on_sale,
            offer.payment_plan, *(getattr(offer, name) for name in PLAN_FIELDS))


def withdraw_open_checkouts(session, course_id: str) -> None:
    """The course's offer changed: its open purchases are retired, and once that is committed their Checkout
    Sessions are expired at Stripe (one call each), so that a tab opened before cannot pay the old terms.
    A session paid anyway, in the moment before it expired, is honoured at the price paid (see fulfilment)."""
    open_ones = session.scalars(select(Purchase).where(Purchase.course_id == course_id,
                                                       Purchase.status == PurchaseStatus.OPEN)).all()
    expiring = []
    for purchase in open_ones:
        if transition(session, purchase, (PurchaseStatus.OPEN,), PurchaseStatus.EXPIRED):
            audit.record(session, AuditAction.CHECKOUT_WITHDRAWN, user_id=purchase.user_id, course_id=course_id,
                         purchase_id=purchase.id, checkout_session=purchase.stripe_checkout_session_id)
            if purchase.stripe_checkout_session_id:
                expiring.append(purchase.stripe_checkout_session_id)
    if expiring:
        jobs.defer(session, expire_checkout_sessions, expiring)


def expire_checkout_sessions(state: PluginState, session_ids: list[str]) -> None:
    """Expire Checkout Sessions at Stripe; one already expired or complete is left as it is (if it was paid,
    fulfilment still honours it)."""
    settings = payment_settings.load(state.session)
    for session_id in session_ids:
        try:
            state.gateway.expire_checkout_session(session_id, api_key=settings.secret_key)
        except PaymentsError:
            continue


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
    #: Platform mode: the platform's share of each payment (its rate in basis points), deducted from what the
    #: school receives.
    platform_fee: Money | None = None
    platform_rate: int = 0


def breakdown(gross: Money, vat_rate: int) -> Breakdown:
    """Net, VAT and gross of a tax-inclusive price, and what the school receives per payment method (after
    the platform's fee, in platform mode)."""
    net, vat = vat_split(gross, vat_rate)
    rate = connect.application_fee_rate()
    platform_fee = connect.application_fee(gross, rate)
    fees = tuple(_fee(method, gross, table, platform_fee)
                 for method, table in current_app.config["LMS_STRIPE_FEES"].items())
    return Breakdown(gross=gross, net=net, vat=vat, vat_rate=vat_rate, fees=fees, platform_fee=platform_fee,
                     platform_rate=rate if platform_fee is not None else 0)


def _fee(method: str, gross: Money, table: dict, platform_fee: Money | None = None) -> FeeEstimate:
    fee = percent_of(gross, Decimal(str(table["percent"])))
    if platform_fee is not None:
        fee = fee + platform_fee
    fixed = Money(int(table["fixed"]), table.get("currency", gross.currency))
    extra = None
    if fixed.currency == gross.currency:
        fee = fee + fixed
    else:
        extra = fixed
    return FeeEstimate(method=method, fee=fee, received=gross - fee, extra_fixed=extra)
