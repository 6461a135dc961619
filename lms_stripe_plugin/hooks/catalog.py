"""``lms.catalog.rendering`` and ``lms.catalog.filtering``."""
from __future__ import annotations

from dataclasses import dataclass, field

from flask import request
from markupsafe import Markup

from .. import catalog, settings as payment_settings
from ..rendering import render_fragment
from ._state import plugin_state


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
    labels = {}
    for course_id in ids:
        offer, status = found.get(course_id, (None, None))
        labels[course_id] = render_fragment("lms_stripe/catalog_label.html", offer=offer, status=status)
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
    offers = catalog.offers_with_ownership(state.session, [state.host.course_id(c) for c in courses], None)
    return [course for course in courses
            if catalog.matches(offers.get(state.host.course_id(course), (None, None))[0], price_filter)]
