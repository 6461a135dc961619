"""What the catalog shows of prices, and the price filter."""
from __future__ import annotations

from dataclasses import dataclass

from flask import has_request_context, request
from typing import NamedTuple

from sqlalchemy import and_, null, select

from .models import LIVE_PURCHASE_STATES, CourseOffer, Purchase
from .money import Money, MoneyError, parse_money


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


_CACHE = "lms_stripe.catalog_offers"


def offers_with_ownership(session, course_ids, user_id: str | None) -> dict[str, tuple["OfferRow", str | None]]:
    """Each course's offer and the user's live purchase status, in one query per request.

    Filtering then rendering the same catalog in one request reuses what the first call loaded.
    """
    ids = [str(c) for c in course_ids]
    cache = request.environ.get(_CACHE) if has_request_context() else None
    if cache is not None and cache["user_id"] == user_id and cache["ids"].issuperset(ids):
        return {i: cache["rows"][i] for i in ids if i in cache["rows"]}
    rows = _load(session, ids, user_id)
    if has_request_context():
        request.environ[_CACHE] = {"user_id": user_id, "ids": set(ids), "rows": rows}
    return rows


class OfferRow(NamedTuple):
    """What the catalog needs of an offer (plain rows: a catalog page loads hundreds of them)."""

    course_id: str
    is_paid: bool
    amount: int | None
    currency: str | None
    audience: str
    on_sale: bool

    @property
    def price(self) -> Money | None:
        return Money(self.amount, self.currency) if self.is_paid and self.amount else None


_COLUMNS = (CourseOffer.course_id, CourseOffer.is_paid, CourseOffer.amount, CourseOffer.currency,
            CourseOffer.audience, CourseOffer.on_sale)


#: Above this many courses, read every paid offer rather than list the ids in the query (cheaper).
_IN_LIMIT = 200


def _load(session, ids: list[str], user_id: str | None) -> dict[str, tuple[OfferRow, str | None]]:
    if not ids:
        return {}
    if user_id is None:
        query = select(*_COLUMNS, null())
    else:
        join = and_(Purchase.course_id == CourseOffer.course_id, Purchase.user_id == user_id,
                    Purchase.status.in_(LIVE_PURCHASE_STATES))
        query = select(*_COLUMNS, Purchase.status).outerjoin(Purchase, join)
    if len(ids) <= _IN_LIMIT:
        query = query.where(CourseOffer.course_id.in_(ids))
    else:
        query = query.where(CourseOffer.is_paid.is_(True))
    wanted = set(ids)
    return {row[0]: (OfferRow(*row[:6]), row[6]) for row in session.execute(query) if row[0] in wanted}


def matches(offer: "OfferRow | None", price_filter: PriceFilter) -> bool:
    paid = bool(offer and offer.is_paid and offer.amount)
    if price_filter.kind == "free" and paid:
        return False
    if price_filter.kind == "paid" and not paid:
        return False
    if price_filter.max_amount is not None and paid:
        return offer.currency == price_filter.currency and offer.amount <= price_filter.max_amount
    return True
