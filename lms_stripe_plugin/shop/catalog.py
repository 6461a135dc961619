"""What the catalog shows of prices, and the price filter.

Each course of a catalog page gets one label, the same as the course page's one message: "Purchased",
"Enrolled" (a back-office enrollment), "Pending payment" (a bank debit under way), else "Not on sale", "Not
available to you" (outside the course's audience) or the price; "Free" for a course the plugin does not sell.
When the school accepts several currencies, prices are shown in the reader's (shop/currencies.py), and a course
without a price in it says "Not sold in CHF".
The page costs one query whatever its number of courses and currencies (the settings row beside the user's
purchases and free enrollments; the offers and their prices in other currencies are kept per app while they do
not change, and read again with the user's purchases, a second query, when they do), and no call to the host
per course: the host's own ``Host.can_purchase`` check is made on the course page and at checkout.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import compress, repeat
from operator import not_
from typing import Any, Callable, NamedTuple

from flask import has_request_context, request
from markupsafe import Markup
from sqlalchemy import BindParameter, and_, bindparam, literal, null, select, union_all, update
from sqlalchemy.exc import IntegrityError

from ..accounts import settings as payment_settings
from ..accounts.settings import EffectiveSettings
from ..core import schools
from ..core.state import PluginState
from ..core.enums import LIVE_PURCHASE, PurchaseStatus
from ..core.models import CourseOffer, CoursePrice, FreeEnrollment, Purchase, Settings
from ..host import AUDIENCES, audience_allows
from ..money import Money, MoneyError, parse_money


@dataclass(frozen=True)
class PriceFilter:
    kind: str | None = None  # None (all), "free", "paid"
    max_amount: int | None = None  # minor units, in `currency`
    currency: str | None = None
    error: str | None = None

    @property
    def active(self) -> bool:
        return bool(self.kind or self.max_amount is not None)


def parse_filter(args, default_currency: str, locale: str) -> PriceFilter:
    """Read ``price`` (free / paid) and ``price_max`` (an amount, in the reader's ``locale``) from the query
    string."""
    kind = (args.get("price") or "").strip().lower() or None
    if kind not in (None, "free", "paid"):
        kind = None
    raw_max = (args.get("price_max") or "").strip()
    if not raw_max:
        return PriceFilter(kind=kind)
    try:
        money = parse_money(raw_max, default_currency, locale=locale)
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
    on_sale: bool = True
    audience: str = "public"

    def buyable_by(self, audience: str | None) -> bool:
        """Whether a user of ``audience`` (None: not signed in, who may sign in) may buy it, as far as the
        catalog knows: on sale, and for their audience."""
        return self.on_sale and self.amount > 0 and (audience is None or audience_allows(self.audience, audience))


#: The status of a course the user was enrolled in for free from the back office, beside their purchases'.
ENROLLED = "enrolled"
#: Which of a user's statuses for one course the catalog shows: a purchase paid, then a free enrollment, then
#: a payment being processed (an open checkout shows the price: it is not bought yet).
_PRECEDENCE = {PurchaseStatus.PAID: 3, ENROLLED: 2, PurchaseStatus.PROCESSING: 1}


@dataclass
class Snapshot:
    """Every paid offer of the catalog at one revision, and their labels per locale, kept per app."""

    revision: int
    offers: dict[str, OfferRow]
    #: Course id → label of every paid offer, per (locale, audience, texts): see `_offer_labels`.
    labels: dict[tuple, dict[str, Markup]] = field(default_factory=dict)
    #: The courses each price filter keeps or drops (see `filter_selection`), by filter; at most `_MAX_SELECTIONS`.
    selections: dict[tuple, Selection] = field(default_factory=dict)
    loaded_at: float = field(default_factory=time.monotonic)
    #: The currencies of the paid offers, sorted (what the price filter says it compares, and leaves out).
    currencies: tuple[str, ...] = ()
    #: Currency → course id → the course's price in it besides its offer's own (`CoursePrice`).
    others: dict[str, dict[str, int]] = field(default_factory=dict)
    #: The offers as a reader paying in a currency sees them, by currency (see `in_currency`).
    views: dict[str, dict[str, OfferRow]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.currencies:
            self.currencies = tuple(sorted({offer.currency for offer in self.offers.values()}))

    def in_currency(self, currency: str | None) -> dict[str, OfferRow]:
        """The paid offers in ``currency``: each course's price in it (its offer's own, or its other price),
        and those without one at no price (``amount`` 0, never buyable: "not sold in …"). None: the offers
        in their own currencies (a school accepting one currency). Worked out once per snapshot and currency."""
        if currency is None:
            return self.offers
        view = self.views.get(currency)
        if view is None:
            prices = self.others.get(currency, {})
            view = {key: offer if offer.currency == currency
                    else offer._replace(amount=prices.get(key, 0), currency=currency)
                    for key, offer in self.offers.items()}
            self.views[currency] = view
        return view

    def fresh(self, revision: int) -> bool:
        return self.revision == revision and time.monotonic() - self.loaded_at < SNAPSHOT_SECONDS


class Prices(NamedTuple):
    """The catalog's paid offers, and the live purchase status of the user's courses."""

    snapshot: Snapshot
    statuses: dict[str, str]

    @property
    def offers(self) -> dict[str, OfferRow]:
        return self.snapshot.offers


_REQUEST_CACHE = "lms_stripe.catalog_prices"
#: Course object → its id, for the courses the price filter read during this request.
_KEYS_CACHE = "lms_stripe.course_keys"
#: A snapshot is read again after this long even if the revision holds: a backstop for offers changed
#: without `raise_revision` (a script writing to the table, a worker of an older version during a deploy).
SNAPSHOT_SECONDS = 300
#: Label sets a snapshot keeps, one per locale and audience (the host's locales times four audiences, counting
#: visitors not signed in; a bound, not a limit anyone should reach).
_MAX_LABEL_SETS = 32 * (len(AUDIENCES) + 1)
#: Price filters whose courses a snapshot keeps. ``price_max`` is whatever a visitor types, and each
#: selection holds up to one id per paid offer: a bound on memory, above the few filters a catalog sees.
_MAX_SELECTIONS = 16
#: Schools whose snapshot an app keeps at once (platform mode; one outside it).
_SNAPSHOTS_KEPT = 256


def prices(state: PluginState, revision: int, user_id: str | None) -> Prices:
    """The paid offers of the whole catalog and the user's live purchases and free enrollments, in at most
    one query.

    The offers are kept per app while ``revision`` (the settings row's ``catalog_revision``, given a new
    value by every offer change in the same transaction) is unchanged; then only the user's purchases are
    read. When it has changed, one query reads the offers and the user's purchases together. Filtering
    then rendering the same catalog in one request reuses what the first call read.
    """
    cached = request.environ.get(_REQUEST_CACHE) if has_request_context() else None
    if cached is not None and cached[0] == (revision, user_id):
        return cached[1]
    snapshot = _kept_snapshot(state, revision)
    if snapshot is not None:
        statuses = _statuses(state.session, user_id) if user_id is not None else {}
    else:
        offers, others, statuses = _load(state.session, user_id)
        snapshot = Snapshot(revision, offers, others=others)
        school = schools.current()
        if len(state.catalog_snapshots) >= _SNAPSHOTS_KEPT and school not in state.catalog_snapshots:
            state.catalog_snapshots.clear()
        state.catalog_snapshots[school] = snapshot
    return _for_request(Prices(snapshot, statuses), revision, user_id)


def settings_and_prices(state: PluginState, user_id: str | None) -> tuple[EffectiveSettings, Prices]:
    """The settings in force and `prices` for ``user_id``, in one query while the offers are kept: the settings
    row and the user's purchases and free enrollments side by side. Two when the offers changed (the offers are
    then read with the user's purchases, as `prices` does); none when this request has read both already. A
    school that sells no course here (``requests_only``) gets no prices, and nothing of its offers is read."""
    current = payment_settings.loaded()
    rows = None
    if current is None and user_id is not None:
        current, rows = payment_settings.load_beside(state.session, _SETTINGS_AND_STATUSES, {"user_id": user_id})
    elif current is None:
        current = payment_settings.load(state.session)
    if current.requests_only:
        return current, Prices(Snapshot(0, {}), {})
    revision = current.catalog_revision
    if rows is not None:
        snapshot = _kept_snapshot(state, revision)
        if snapshot is not None:
            return current, _for_request(Prices(snapshot, _ranked(rows)), revision, user_id)
    return current, prices(state, revision, user_id)


def _kept_snapshot(state: PluginState, revision: int) -> Snapshot | None:
    """The school's offers kept by the app, if they are those of ``revision`` (0: no settings row yet, never
    kept)."""
    snapshot = state.catalog_snapshots.get(schools.current())
    return snapshot if revision and snapshot is not None and snapshot.fresh(revision) else None


def _for_request(result: Prices, revision: int, user_id: str | None) -> Prices:
    """``result``, kept for the rest of the request (filtering then rendering the same catalog)."""
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
    bump = (update(Settings).where(Settings.school_id == schools.current()).values(catalog_revision=revision)
            .execution_options(synchronize_session=False))
    if session.execute(bump).rowcount:
        return
    try:
        with session.begin_nested():
            session.add(Settings(school_id=schools.current(), catalog_revision=revision))
    except IntegrityError:  # another transaction created the row meanwhile
        if not session.execute(bump).rowcount:  # not visible to this transaction (repeatable read)
            raise RuntimeError("The payment settings row was created by a concurrent transaction: try again.")


def _load(session, user_id: str | None) -> tuple[dict[str, OfferRow], dict[str, dict[str, int]], dict[str, str]]:
    paid = and_(CourseOffer.is_paid.is_(True), CourseOffer.amount.is_not(None))
    query: Any
    if user_id is None:
        query = select(*_COLUMNS, null(), null(), *_OTHER).where(paid)
    else:
        query = (select(*_COLUMNS, Purchase.status, FreeEnrollment.id, *_OTHER).where(paid)
                 .outerjoin(Purchase, and_(Purchase.course_id == CourseOffer.course_id, _live(user_id)))
                 .outerjoin(FreeEnrollment, and_(FreeEnrollment.course_id == CourseOffer.course_id,
                                                 FreeEnrollment.user_id == user_id)))
    # The prices in other currencies, in the same query: one row per offer and other price.
    query = query.outerjoin(CoursePrice, CoursePrice.course_id == CourseOffer.course_id)
    offers: dict[str, OfferRow] = {}
    others: dict[str, dict[str, int]] = {}
    found = []
    with session.no_autoflush:
        rows = session.execute(query).all()
    for course_id, amount, currency, on_sale, audience, status, free, other_currency, other_amount in rows:
        if course_id not in offers:
            offers[course_id] = OfferRow(course_id, amount, currency, on_sale, audience)
        if other_currency is not None:
            others.setdefault(other_currency, {})[course_id] = other_amount
        if status is not None:
            found.append((course_id, status))
        if free is not None:
            found.append((course_id, ENROLLED))
    return offers, others, _ranked(found)


def _ranked(rows) -> dict[str, str]:
    """Course id → the status the catalog shows of the user's (`_PRECEDENCE`; an open purchase's otherwise)."""
    statuses: dict[str, str] = {}
    for course_id, status in rows:
        if course_id not in statuses or _PRECEDENCE.get(status, 0) >= _PRECEDENCE.get(statuses[course_id], 0):
            statuses[course_id] = status
    return statuses


_PURCHASES = Purchase.__table__
_FREE = FreeEnrollment.__table__


#: The live statuses, one bound parameter each: a fixed list, which no execution has to expand into the SQL.
_LIVE: list[BindParameter] = [bindparam(f"live_{index}", status, type_=_PURCHASES.c.status.type)
                              for index, status in enumerate(LIVE_PURCHASE)]


def _live(user_id):
    """The user's live purchases (open, processing or paid)."""
    return and_(_PURCHASES.c.user_id == user_id, _PURCHASES.c.status.in_(_LIVE))


#: Read on every catalog page a signed-in user opens: built once (SQLAlchemy caches its SQL), of the
#: tables' columns, so that it runs as a plain statement without the ORM's steps: the user's live purchases
#: and their free enrollments, in one query.
_STATUSES = union_all(
    select(_PURCHASES.c.course_id, _PURCHASES.c.status).where(_live(bindparam("user_id")),
                                                              schools.its_own(_PURCHASES)),
    select(_FREE.c.course_id, literal(ENROLLED)).where(_FREE.c.user_id == bindparam("user_id"),
                                                       schools.its_own(_FREE)))


#: The settings row beside the user's live purchases and free enrollments: a catalog page's one query.
_SETTINGS_AND_STATUSES = payment_settings.beside(_STATUSES)


def _statuses(session, user_id: str) -> dict[str, str]:
    """Course id → status of the user's live purchases and free enrollments, on the session's connection (in
    its transaction; nothing flushed)."""
    return _ranked(schools.execute(session, Purchase, _STATUSES, {"user_id": user_id}).all())


_COLUMNS = (CourseOffer.course_id, CourseOffer.amount, CourseOffer.currency, CourseOffer.on_sale,
            CourseOffer.audience)
_OTHER = (CoursePrice.currency, CoursePrice.amount)


_dict_get = dict.get


class CatalogLabels(dict):
    """Course id (as ``Host.course_id`` gives it) → price label, for the courses of one page.

    ``labels[key]`` also takes any key whose ``str()`` is the id, such as the host's own integer id; a key
    that is no course of the page gives an empty label."""

    __slots__ = ()

    def __missing__(self, key) -> str:
        return _dict_get(self, str(key), "") if not isinstance(key, str) else ""

    def get(self, key, default=None):
        found = _dict_get(self, key, _NOTHING)
        if found is _NOTHING and not isinstance(key, str):
            found = _dict_get(self, str(key), _NOTHING)
        return default if found is _NOTHING else found

    def __contains__(self, key) -> bool:
        return dict.__contains__(self, key) or (not isinstance(key, str) and dict.__contains__(self, str(key)))


class CourseLabels(dict):
    """Course object → price label, for the course objects the host sent; another object standing for one
    of those courses (loaded again, say) is found through its id.

    The same labels by id (`by_id`) are made when first asked: a template that looks its courses up by object,
    as most do, never pays for them."""

    __slots__ = ("_course_id", "_keys", "_values", "_by_id")

    def __init__(self, courses: list, keys: list[str], values: list[Markup], course_id: Callable[[Any], Any]):
        super().__init__()
        self._course_id, self._keys, self._values = course_id, keys, values
        self._by_id: CatalogLabels | None = None
        try:
            self.update(zip(courses, values))
        except TypeError:  # an unhashable course object: its label is found by id only
            _update_hashable(self, courses, values)

    @property
    def by_id(self) -> CatalogLabels:
        """The labels keyed by ``Host.course_id`` (see `CatalogLabels`)."""
        if self._by_id is None:
            self._by_id = CatalogLabels(zip(self._keys, self._values))
        return self._by_id

    def __missing__(self, course) -> str:
        return self.by_id[self._course_id(course)]


_NOTHING = object()


def course_keys(courses: list, course_id, *, remember: bool = False) -> list[str]:
    """``course_id(course)`` of each course, as the plugin's tables store it: the contract says a string; take
    what a host gives.

    With ``remember`` (the price filter) the ids are kept for the request, so that rendering the courses the
    filter kept asks the host for none of them again.
    """
    known = request.environ.get(_KEYS_CACHE) if has_request_context() else None
    if known is not None:
        try:
            return list(map(known.__getitem__, courses))
        except (KeyError, TypeError):  # a course the filter did not read, or an unhashable one
            pass
    keys = list(map(course_id, courses))
    if {*map(type, keys)} != {str}:
        keys = list(map(str, keys))
    if remember and has_request_context():
        try:
            request.environ[_KEYS_CACHE] = dict(zip(courses, keys))
        except TypeError:  # an unhashable course object: nothing kept
            pass
    return keys


class Texts(NamedTuple):
    """The words of the labels, in the reader's language."""

    free: str
    purchased: str
    enrolled: str
    pending: str
    not_on_sale: str
    not_for_you: str
    #: "Not sold in CHF": a course without a price in the reader's currency.
    not_in_currency: str = ""


class Viewer(NamedTuple):
    """Who reads the catalog: their audience (None: not signed in), the host's check that they are still
    enrolled in a course, asked only of the courses on the page they were enrolled in for free, and the
    currency they see prices in (None: each course in its own, when the school accepts one currency)."""

    audience: str | None = None
    is_enrolled: Callable[[Any], bool] | None = None
    currency: str | None = None


def labels(prices_: Prices, courses, course_id, locale: str, texts: Texts,
           viewer: Viewer = Viewer()) -> CourseLabels:
    """The label of each course for ``locale`` and ``viewer`` (see the module's docstring), keyed by the course
    objects themselves, and by ``course_id(course)`` as `CourseLabels.by_id`.

    The labels of the offers are made once per snapshot, locale and audience; what is left per course is the
    host's ``course_id`` and dictionary work done in C (``map``, ``zip``), as a page shows hundreds of courses;
    then the few courses the user bought, is paying for or was enrolled in.
    """
    keys = course_keys(courses, course_id)
    offered = _offer_labels(prices_.snapshot, locale, viewer.audience, texts, viewer.currency)
    found = map(offered.get, keys, repeat(_free_label(texts.free)))
    mine = _status_labels(prices_, keys, courses, texts, viewer)
    return CourseLabels(courses, keys, list(map(mine.get, keys, found) if mine else found), course_id)


def _offer_labels(snapshot: Snapshot, locale: str, audience: str | None, texts: Texts,
                  currency: str | None = None) -> dict[str, Markup]:
    """Course id → label of every paid offer for a reader of ``audience`` paying in ``currency``: its price, or
    why they cannot buy it. Made once per snapshot, locale, audience and currency; the price labels alone when
    every offer is for them."""
    key = (locale, audience, texts.not_on_sale, texts.not_for_you, currency, texts.not_in_currency)
    found = snapshot.labels.get(key)
    if found is None:
        offers = snapshot.in_currency(currency)
        prices = _paid_labels(snapshot, locale, currency)
        closed = {course: _closed_label(offer, texts) for course, offer in offers.items()
                  if not offer.buyable_by(audience)}
        found = {**prices, **closed} if closed else prices
        if len(snapshot.labels) < _MAX_LABEL_SETS:
            snapshot.labels[key] = found
    return found


def _paid_labels(snapshot: Snapshot, locale: str, currency: str | None = None) -> dict[str, Markup]:
    """Course id → price label of every paid offer (in ``currency``), formatted once per snapshot, locale and
    currency."""
    paid = snapshot.labels.get((locale, currency))
    if paid is None:
        paid = {key: _price_label(offer.amount, offer.currency, locale)
                for key, offer in snapshot.in_currency(currency).items() if offer.amount}
        if len(snapshot.labels) < _MAX_LABEL_SETS:
            snapshot.labels[(locale, currency)] = paid
    return paid


def _closed_label(offer: OfferRow, texts: Texts) -> Markup:
    if not offer.amount:
        return _status_label("not_in_currency", texts.not_in_currency)
    return _status_label("not_on_sale", texts.not_on_sale) if not offer.on_sale \
        else _status_label("not_for_you", texts.not_for_you)


def _status_labels(prices_: Prices, keys: list[str], courses: list, texts: Texts,
                   viewer: Viewer) -> dict[str, Markup]:
    """Course id → label of the user's own paid courses: "Purchased", "Pending payment" (a bank debit under
    way), "Enrolled" (a free enrollment the host still has). A few: read per request."""
    offers = prices_.snapshot.offers
    mine, enrolled = {}, set()
    for key, status in prices_.statuses.items():
        if key not in offers:
            continue
        if status == PurchaseStatus.PAID:
            mine[key] = _purchased_label(offers[key].amount, texts.purchased)
        elif status == PurchaseStatus.PROCESSING:
            mine[key] = _status_label("pending", texts.pending)
        elif status == ENROLLED:
            enrolled.add(key)
    if enrolled:
        shown = compress(zip(keys, courses), map(enrolled.__contains__, keys))
        mine.update((key, _status_label(ENROLLED, texts.enrolled)) for key, course in shown
                    if viewer.is_enrolled is None or viewer.is_enrolled(course))
    return mine


def _update_hashable(by_course: CourseLabels, courses, values) -> None:
    for course, label in zip(courses, values):
        try:
            by_course[course] = label
        except TypeError:
            continue


@lru_cache(maxsize=64)
def _free_label(text: str) -> Markup:
    return Markup('<span class="badge ok lms-stripe-price" data-price="free">%s</span>') % text


@lru_cache(maxsize=4096)
def _purchased_label(amount: int, text: str) -> Markup:
    return Markup('<span class="badge ok lms-stripe-price" data-price="%d">%s</span>') % (amount, text)


@lru_cache(maxsize=256)
def _status_label(status: str, text: str) -> Markup:
    """A label that says where the user stands instead of a price ("Enrolled", "Not on sale"…)."""
    tone = " ok" if status == ENROLLED else " muted" if status in ("not_on_sale", "not_for_you", "not_in_currency") \
        else ""
    return Markup('<span class="badge%s lms-stripe-price" data-status="%s">%s</span>') % (tone, status, text)


@lru_cache(maxsize=4096)
def _price_label(amount: int, currency: str, locale: str) -> Markup:
    return Markup('<span class="badge lms-stripe-price" data-price="%d" data-currency="%s">%s</span>') % (
        amount, currency, Money(amount, currency).format(locale))


def matches(offer: OfferRow | None, price_filter: PriceFilter, audience: str | None = None) -> bool:
    """Whether a course with this paid offer (None: free) passes the filter, for a reader of ``audience``: a
    maximum price keeps only the offers whose price they are shown (on sale, for them) in its currency."""
    if offer is None:
        return price_filter.kind != "paid"
    if price_filter.kind == "free":
        return False
    if price_filter.max_amount is not None:
        return (offer.buyable_by(audience) and offer.currency == price_filter.currency
                and offer.amount <= price_filter.max_amount)
    return True


class Selection(NamedTuple):
    """What a price filter does to a catalog: keep the courses whose id is in ``ids`` (``keep``), or drop them."""

    ids: frozenset[str]
    keep: bool


def filter_selection(snapshot: Snapshot, price_filter: PriceFilter, audience: str | None = None,
                     currency: str | None = None) -> Selection:
    """What ``price_filter`` does to the catalog for a reader of ``audience`` paying in ``currency`` (None: each
    course in its own), worked out from the offers once per snapshot, filter, audience and currency (`matches`
    decides for each offer; free courses all pass or all fail)."""
    key = (price_filter.kind, price_filter.max_amount, price_filter.currency,
           audience if price_filter.max_amount is not None else None, currency)
    selection = snapshot.selections.get(key)
    if selection is None:
        offers = snapshot.in_currency(currency)
        passing = frozenset(k for k, offer in offers.items() if matches(offer, price_filter, audience))
        if matches(None, price_filter):  # free courses pass: drop the paid ones that do not
            selection = Selection(frozenset(offers.keys() - passing), keep=False)
        else:
            selection = Selection(passing, keep=True)
        if len(snapshot.selections) >= _MAX_SELECTIONS:
            snapshot.selections.clear()
        snapshot.selections[key] = selection
    return selection


def kept(courses: list, keys: list[str], selection: Selection) -> list:
    """The courses (whose ids are ``keys``) that ``selection`` keeps, in their order."""
    found = map(selection.ids.__contains__, keys)
    return list(compress(courses, found if selection.keep else map(not_, found)))
