"""``lms.catalog.rendering`` and ``lms.catalog.filtering``."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from flask import request
from markupsafe import Markup

from .. import catalog, settings as payment_settings
from ..i18n import current_locale, gettext as _
from ..money import Money
from ..rendering import render_fragment
from ._state import plugin_state


def _labels(ids, found, locale: str) -> dict[str, Markup]:
    """Price labels, built from fixed patterns rather than a template per course: a catalog page shows
    hundreds, and a template render per course would cost more than the host's whole page."""
    free, purchased = _free_label(_("Free")), _("Purchased")
    labels = {}
    for course_id in ids:
        offer, status = found.get(course_id, (None, None))
        if offer is None or not offer.is_paid or not offer.amount:
            labels[course_id] = free
        elif status == "paid":
            labels[course_id] = _purchased_label(offer.amount, purchased)
        else:
            labels[course_id] = _price_label(offer.amount, offer.currency, locale)
    return labels


@lru_cache(maxsize=8)
def _free_label(text: str) -> Markup:
    return Markup('<span class="badge ok lms-stripe-price" data-price="free">%s</span>') % text


@lru_cache(maxsize=4096)
def _purchased_label(amount: int, text: str) -> Markup:
    return Markup('<span class="badge ok lms-stripe-price" data-price="%d">%s</span>') % (amount, text)


@lru_cache(maxsize=4096)
def _price_label(amount: int, currency: str, locale: str) -> Markup:
    # Memoised: a catalog shows the same prices on every page.
    return Markup('<span class="badge lms-stripe-price" data-price="%d" data-currency="%s">%s</span>') % (
        amount, currency, Money(amount, currency).format(locale))


@dataclass
class CatalogDecoration:
    """The plugin's answer to ``lms.catalog.rendering``.

    ``labels`` maps each course id to an HTML price label ("49,90 €", "Free", "Purchased");
    ``filter_widget`` is the price filter form to show above the list.
    """

    labels: dict[str, Markup] = field(default_factory=dict)
    filter_widget: Markup = Markup("")


def rendering(sender, courses, user=None, **_):
    state = plugin_state(sender)
    if state is None:
        return None
    host = state.host
    ids = [host.course_id(course) for course in courses]
    user_id = host.user_id(user) if user is not None else None
    current = payment_settings.load(state.session)
    found = catalog.offers_with_ownership(state.session, ids, user_id)
    labels = _labels(ids, found, current_locale())
    price_filter = catalog.parse_filter(request.args, current.default_currency)
    widget = render_fragment("lms_stripe/catalog_filter.html", price_filter=price_filter, args=request.args,
                             currency=current.default_currency)
    return CatalogDecoration(labels=labels, filter_widget=widget)


def filtering(sender, courses, args, **_):
    """The courses matching the price filter in ``args`` (all of them when no filter is set)."""
    state = plugin_state(sender)
    if state is None:
        return None
    courses = list(courses)
    price_filter = catalog.parse_filter(args, payment_settings.load(state.session).default_currency)
    if not price_filter.active:
        return courses
    host = state.host
    user = host.current_user()
    ids = [host.course_id(course) for course in courses]
    offers = catalog.offers_with_ownership(state.session, ids, host.user_id(user) if user is not None else None)
    return [course for course, course_id in zip(courses, ids)
            if catalog.matches(offers.get(course_id, (None, None))[0], price_filter)]
