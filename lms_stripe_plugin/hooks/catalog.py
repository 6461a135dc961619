"""``lms.catalog.rendering`` and ``lms.catalog.filtering``."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from flask import current_app, request
from markupsafe import Markup

from .. import catalog, settings as payment_settings
from ..i18n import current_locale, gettext as _
from ..rendering import render_fragment
from ._state import plugin_state


@dataclass
class CatalogDecoration:
    """The plugin's answer to ``lms.catalog.rendering``.

    ``labels`` gives each course's HTML price label ("49,90 €", "Free", "Purchased"): ``labels[course.id]``,
    with the host's own id or its string; ``filter_widget`` is the price filter form to show above the list.
    """

    labels: Mapping[str, Markup] = field(default_factory=dict)
    filter_widget: Markup = Markup("")


def rendering(sender, courses, user=None, **_kwargs):  # noqa: ARG001 - the labels cover every course
    state = plugin_state(sender)
    if state is None:
        return None
    current = payment_settings.load(state.session)
    user_id = state.host.user_id(user) if user is not None else None
    prices = catalog.prices(state, current.catalog_revision, user_id)
    labels = catalog.labels(prices, current_locale(), _("Free"), _("Purchased"))
    return CatalogDecoration(labels=labels, filter_widget=_filter_widget(state, current.default_currency))


#: Rendered filter forms kept per app (the same few on most catalog pages), at most this many.
_WIDGETS_KEPT = 128


def _filter_widget(state, currency: str) -> Markup:
    """The price filter form for this request's query string, rendered once per locale, currency and query.

    Not kept when Flask reloads templates (development), so that an edited template shows at once."""
    args = request.args
    key = (current_locale(), currency, tuple(args.items(multi=True)))
    widget = state.filter_widgets.get(key)
    if widget is None:
        price_filter = catalog.parse_filter(args, currency)
        widget = render_fragment("lms_stripe/catalog_filter.html", price_filter=price_filter, args=args,
                                 currency=currency)
        if not current_app.jinja_env.auto_reload:
            if len(state.filter_widgets) >= _WIDGETS_KEPT:
                state.filter_widgets.clear()
            state.filter_widgets[key] = widget
    return widget


def filtering(sender, courses, args, **_kwargs):
    """The courses matching the price filter in ``args`` (all of them when no filter is set)."""
    state = plugin_state(sender)
    if state is None:
        return None
    if not (args.get("price") or args.get("price_max")):  # no filter: nothing to read
        return courses if isinstance(courses, list) else list(courses)
    current = payment_settings.load(state.session)
    price_filter = catalog.parse_filter(args, current.default_currency)
    if not price_filter.active:
        return courses if isinstance(courses, list) else list(courses)
    host = state.host
    user = host.current_user()
    offers = catalog.prices(state, current.catalog_revision, host.user_id(user) if user is not None else None).offers
    return [course for course in courses if catalog.matches(offers.get(host.course_id(course)), price_filter)]
