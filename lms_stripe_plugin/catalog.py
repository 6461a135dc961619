"""What the catalog shows of prices, and the price filter."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, select

from .models import LIVE_PURCHASE_STATES, CourseOffer, Purchase
from .money import MoneyError, parse_money


@dataclass(frozen=True)
class PriceFilter:
    kind: str | None = None  # None (all), "free", "paid"
    max_amount: int | None = None  # minor units, in `currency`
    currency: str | None = None
    error: str | None = None

    @property
    def active(self) -> bool:
        return bool(self.kind or self.max_amount is not None)


def parse_filter(args, default_currency: str) -> PriceFilter:
    """Read ``price`` (free / paid) and ``price_max`` (an amount) from the query string."""
    kind = (args.get("price") or "").strip().lower() or None
    if kind not in (None, "free", "paid"):
        kind = None
    raw_max = (args.get("price_max") or "").strip()
    if not raw_max:
        return PriceFilter(kind=kind)
    try:
        money = parse_money(raw_max, default_currency)
    except MoneyError as err:
        if err.code == "minimum":
            return PriceFilter(kind=kind, max_amount=0, currency=default_currency)
        return PriceFilter(kind=kind, error=str(err))
    return PriceFilter(kind=kind, max_amount=money.amount, currency=money.currency)


def offers_with_ownership(session, course_ids, user_id: str | None) -> dict[str, tuple[CourseOffer, str | None]]:
    """Each course's offer and the user's live purchase status, in one query."""
    ids = [str(c) for c in course_ids]
    if not ids:
        return {}
    if user_id is None:
        offers = session.scalars(select(CourseOffer).where(CourseOffer.course_id.in_(ids)))
        return {offer.course_id: (offer, None) for offer in offers}
    join = and_(Purchase.course_id == CourseOffer.course_id, Purchase.user_id == user_id,
                Purchase.status.in_(LIVE_PURCHASE_STATES))
    rows = session.execute(
        select(CourseOffer, Purchase.status).outerjoin(Purchase, join).where(CourseOffer.course_id.in_(ids))
    )
    return {offer.course_id: (offer, status) for offer, status in rows}


def matches(offer: CourseOffer | None, price_filter: PriceFilter) -> bool:
    paid = bool(offer and offer.is_paid and offer.amount)
    if price_filter.kind == "free" and paid:
        return False
    if price_filter.kind == "paid" and not paid:
        return False
    if price_filter.max_amount is not None and paid:
        return offer.currency == price_filter.currency and offer.amount <= price_filter.max_amount
    return True
