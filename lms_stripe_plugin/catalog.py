"""What the catalog shows of prices, and the price filter."""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from flask import has_request_context, request
from markupsafe import Markup
from sqlalchemy import and_, bindparam, null, select, update
from sqlalchemy.exc import IntegrityError

from .models import LIVE_PURCHASE_STATES, CourseOffer, Purchase, Settings
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


class OfferRow(NamedTuple):
    """What the catalog needs of a paid offer (plain rows: a catalog page shows hundreds of them)."""

    course_id: str
    amount: int
    currency: str


@dataclass
class _Snapshot:
    """Every paid offer of the catalog at one revision, and their labels per locale, kept per app."""

    revision: int
    offers: dict[str, OfferRow]
    labels: dict[str, dict[str, Markup]] = field(default_factory=dict)


class Prices(NamedTuple):
    """The catalog's paid offers, and the live purchase status of the user's courses."""

    snapshot: _Snapshot
    statuses: dict[str, str]

    @property
    def offers(self) -> dict[str, OfferRow]:
        return self.snapshot.offers


_REQUEST_CACHE = "lms_stripe.catalog_prices"
#: Locales whose labels a snapshot keeps (the host's locales; a bound, not a limit anyone should reach).
_MAX_LOCALES = 32


def prices(state, revision: int, user_id: str | None) -> Prices:
    """The paid offers of the whole catalog and the user's live purchases, in at most one query.

    The offers are kept per app while ``revision`` (the settings row's ``catalog_revision``, given a new
    value by every offer change in the same transaction) is unchanged; then only the user's purchases are
    read. When it has changed, one query reads the offers and the user's purchases together. Filtering
    then rendering the same catalog in one request reuses what the first call read.
    """
    cached = request.environ.get(_REQUEST_CACHE) if has_request_context() else None
    if cached is not None and cached[0] == (revision, user_id):
        return cached[1]
    snapshot = state.catalog_snapshot
    if snapshot is not None and snapshot.revision == revision:
        statuses = _statuses(state.session, user_id) if user_id is not None else {}
    else:
        offers, statuses = _load(state.session, user_id)
        snapshot = state.catalog_snapshot = _Snapshot(revision, offers)
    result = Prices(snapshot, statuses)
    if has_request_context():
        request.environ[_REQUEST_CACHE] = ((revision, user_id), result)
    return result


def forget_cached() -> None:
    """Drop this request's copy (after a change of offers in the same request)."""
    if has_request_context():
        request.environ.pop(_REQUEST_CACHE, None)


def raise_revision(session) -> None:
    """Mark every cached catalog price stale, in the caller's transaction: call it with each offer change.

    The revision is a new random value rather than a count, so that a settings row deleted and created
    again can never bring back a revision some process still holds.
    """
    revision = secrets.randbits(62)
    bump = (update(Settings).where(Settings.id == 1).values(catalog_revision=revision)
            .execution_options(synchronize_session=False))
    if session.execute(bump).rowcount:
        return
    try:
        with session.begin_nested():
            session.add(Settings(id=1, catalog_revision=revision))
    except IntegrityError:  # another transaction created the row meanwhile
        session.execute(bump)


def _load(session, user_id: str | None) -> tuple[dict[str, OfferRow], dict[str, str]]:
    paid = and_(CourseOffer.is_paid.is_(True), CourseOffer.amount.is_not(None))
    if user_id is None:
        query = select(*_COLUMNS, null()).where(paid)
    else:
        query = select(*_COLUMNS, Purchase.status).outerjoin(Purchase, _live_purchase(user_id)).where(paid)
    offers, statuses = {}, {}
    for course_id, amount, currency, status in session.execute(query):
        offers[course_id] = OfferRow(course_id, amount, currency)
        if status is not None:
            statuses[course_id] = status
    return offers, statuses


#: Read on every catalog page a signed-in user opens: built once (SQLAlchemy caches its SQL).
_STATUSES = select(Purchase.course_id, Purchase.status).where(
    Purchase.user_id == bindparam("user_id"), Purchase.status.in_(LIVE_PURCHASE_STATES))


def _statuses(session, user_id: str) -> dict[str, str]:
    return dict(session.connection().execute(_STATUSES, {"user_id": user_id}).all())


def _live_purchase(user_id: str):
    return and_(Purchase.course_id == CourseOffer.course_id, Purchase.user_id == user_id,
                Purchase.status.in_(LIVE_PURCHASE_STATES))


_COLUMNS = (CourseOffer.course_id, CourseOffer.amount, CourseOffer.currency)


_dict_get = dict.get


class CatalogLabels(dict):
    """Course id → price label. Look labels up by key: ``labels[course.id]`` takes the course id as the
    host stores it or as its string; a course without a price gets the "Free" label."""

    __slots__ = ("free",)

    def __init__(self, paid: dict[str, Markup], free: Markup):
        super().__init__(paid)
        self.free = free

    def __missing__(self, key) -> Markup:
        return _dict_get(self, str(key), self.free)

    def get(self, key, default=None) -> Markup:
        """The course's label; ``default`` is never needed, as every course has one."""
        return self[key]


def labels(prices_: Prices, locale: str, free_text: str, purchased_text: str) -> CatalogLabels:
    """Every course's label for ``locale``: its price, "Purchased" once the user has paid, or "Free"."""
    snapshot = prices_.snapshot
    paid = snapshot.labels.get(locale)
    if paid is None:
        paid = {course_id: _price_label(offer.amount, offer.currency, locale)
                for course_id, offer in snapshot.offers.items()}
        if len(snapshot.labels) < _MAX_LOCALES:
            snapshot.labels[locale] = paid
    result = CatalogLabels(paid, _free_label(free_text))
    for course_id, status in prices_.statuses.items():
        offer = snapshot.offers.get(course_id)
        if status == "paid" and offer is not None:
            result[course_id] = _purchased_label(offer.amount, purchased_text)
    return result


@lru_cache(maxsize=64)
def _free_label(text: str) -> Markup:
    return Markup('<span class="badge ok lms-stripe-price" data-price="free">%s</span>') % text


@lru_cache(maxsize=4096)
def _purchased_label(amount: int, text: str) -> Markup:
    return Markup('<span class="badge ok lms-stripe-price" data-price="%d">%s</span>') % (amount, text)


@lru_cache(maxsize=4096)
def _price_label(amount: int, currency: str, locale: str) -> Markup:
    return Markup('<span class="badge lms-stripe-price" data-price="%d" data-currency="%s">%s</span>') % (
        amount, currency, Money(amount, currency).format(locale))


def matches(offer: OfferRow | None, price_filter: PriceFilter) -> bool:
    """Whether a course with this paid offer (None: free) passes the filter."""
    paid = offer is not None
    if price_filter.kind == "free" and paid:
        return False
    if price_filter.kind == "paid" and not paid:
        return False
    if price_filter.max_amount is not None and paid:
        return offer.currency == price_filter.currency and offer.amount <= price_filter.max_amount
    return True
