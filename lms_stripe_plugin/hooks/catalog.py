"""``lms.catalog.rendering`` and ``lms.catalog.filtering``."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

from babel.lists import format_list
from flask import current_app, request, url_for
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup

from ..core.i18n import LocaleText, current_locale
from ..money import example_amount
from ..shop import catalog, currencies
from ..web.rendering import is_own, render_fragment
from ._state import plugin_state


class CatalogDecoration:
    """The plugin's answer to ``lms.catalog.rendering``: each course's HTML price label ("49,90 €", "Free",
    "Purchased", "Enrolled", "Not available to you"…: see `shop.catalog`), and the price filter form to show
    above the list.

    ``course_labels[course]`` takes the course objects the host sent (the quickest lookup in a template);
    ``labels[course_id]`` takes what ``Host.course_id`` returns, or any key whose ``str()`` is that. The labels
    by id are made when first read: a template that looks its courses up by object never pays for them.
    (No ``__slots__``: a template reads ``course_labels`` once per course, and the instance's own dictionary
    is the quicker read there.)
    """

    def __init__(self, labels: Mapping[str, Markup] | None = None, filter_widget: Markup = Markup(""),
                 course_labels: Mapping[object, Markup] | None = None):
        self._labels = labels
        self.filter_widget = filter_widget
        self.course_labels = {} if course_labels is None else course_labels

    @property
    def labels(self) -> Mapping[str, Markup]:
        if self._labels is None:
            self._labels = self.course_labels.by_id if isinstance(self.course_labels, catalog.CourseLabels) else {}
        return self._labels


class JoinedLabels(dict):
    """Course → the labels of several answers to ``lms.catalog.rendering``, joined in the answers' order, made
    for each course when the template first reads it (see `course_labels`)."""

    __slots__ = ("_answers",)

    def __init__(self, answers: Sequence[Mapping[object, Markup]]):
        super().__init__()
        self._answers = answers

    def __missing__(self, course) -> Markup:
        label = self[course] = Markup("").join(_label(answer, course) for answer in self._answers)
        return label

    def __bool__(self) -> bool:  # labels to show, before any is read
        return True


def _label(answer: Mapping[object, Markup], course) -> Markup:
    try:
        return answer[course]
    except LookupError:  # an answer without this course's label
        return Markup("")


def course_labels(answers: Iterable[object]) -> Mapping[object, Markup]:
    """The course labels of the answers a host got from ``lms.catalog.rendering``, as one mapping, so that its
    template looks each course up once: ``{% if labels %}{{ labels[course] }}{% endif %}``. The one answer's own
    mapping, read as it is (the quickest), or each course's labels of several answers joined. Answers without
    course labels (another receiver's) are left out; with none, an empty mapping, which the template's test
    skips at no cost."""
    mappings = [labels for labels in (getattr(answer, "course_labels", None) for answer in answers)
                if isinstance(labels, Mapping)]
    if not mappings:
        return {}
    return mappings[0] if len(mappings) == 1 else JoinedLabels(mappings)


def rendering(sender, courses, user=None, **_kwargs):
    state = plugin_state(sender)
    if state is None:
        return None
    host = state.host
    courses = courses if isinstance(courses, list) else list(courses)  # read twice: ids, then labels
    user_id = host.user_id(user) if user is not None else None
    current, prices = catalog.settings_and_prices(state, user_id)
    if current.requests_only:
        return None  # the school sells no course here
    locale = current_locale()
    currency = currencies.of_viewer(state, current, user)
    viewer = catalog.Viewer(host.user_audience(user), lambda course: host.is_enrolled(user, course), currency) \
        if user is not None else catalog.Viewer(currency=currency)
    course_labels = catalog.labels(prices, courses, host.course_id, locale, _texts(locale, currency), viewer)
    if currency is None:
        widget = _filter_form(state, current.default_currency, locale, prices.snapshot.currencies)
    else:  # every price is shown in the reader's currency, which the switcher changes
        widget = _switcher(state, current.currencies, currency, locale) + _filter_form(state, currency, locale, ())
    return CatalogDecoration(filter_widget=widget, course_labels=course_labels)


@lru_cache(maxsize=256)
def _texts(locale: str, currency: str | None = None) -> catalog.Texts:
    """The labels' words in ``locale``, one per situation, as the course page says them (made once per
    locale and currency)."""
    _ = LocaleText(locale).gettext
    return catalog.Texts(free=_("Free"), purchased=_("Purchased"), enrolled=_("Enrolled"),
                         pending=_("Pending payment"), not_on_sale=_("Not on sale"),
                         not_for_you=_("Not available to you"),
                         not_in_currency=_("Not sold in %(currency)s", currency=currency) if currency else "")


_SWITCHER_TEMPLATE = "lms_stripe/currency_switcher.html"
#: Stands for the reader's CSRF token in a kept switcher form (see `_switcher`).
_TOKEN = "lms-stripe-csrf-token-here"


def _switcher(state, accepted: tuple[str, ...], currency: str, locale: str) -> Markup:
    """The currency switcher: a small form posting the reader's choice, which brings them back to this page.

    The plugin's own form is rendered once per locale, currencies, choice and page, and kept; each reader's
    CSRF token is put in on the way out. A host's override is rendered every time, as is any form while
    Flask reloads templates (development)."""
    env = current_app.jinja_env
    template = env.get_or_select_template(_SWITCHER_TEMPLATE)
    back = request.full_path.rstrip("?")
    keep = not env.auto_reload and is_own(template)
    key = ("switcher", locale, accepted, currency, back)
    form = state.filter_forms.get(key) if keep else None
    if form is None:
        context = {"currencies": accepted, "currency": currency, "action": url_for("lms_stripe.choose_currency"),
                   "back": back}
        if not keep:
            return render_fragment(template, **context)
        form = _keep(state, key, render_fragment(template, token=_TOKEN, **context))
    return Markup(form.replace(_TOKEN, generate_csrf()))


_FILTER_TEMPLATE = "lms_stripe/catalog_filter.html"
#: Rendered price filter forms kept per app, at most this many (most pages show the same few).
_FORMS_KEPT = 128


def _filter_form(state, currency: str, locale: str, currencies: tuple[str, ...]) -> Markup:
    """The price filter form for this request's query string. Its maximum price is in ``currency``; it says
    which of the catalog's ``currencies`` it leaves out (a maximum compares prices in one currency).

    The plugin's own form is a GET form with nothing personal in it, so it is rendered once per locale,
    currencies and query string and kept. A host's override of the template may hold anything, so it is
    rendered every time, as is any form while Flask reloads templates (development)."""
    args = request.args
    env = current_app.jinja_env
    template = env.get_or_select_template(_FILTER_TEMPLATE)
    keep = not env.auto_reload and is_own(template)
    others = tuple(code for code in currencies if code != currency)
    key = (locale, currency, others, tuple(args.items(multi=True)))
    form = state.filter_forms.get(key) if keep else None
    if form is None:
        price_filter = catalog.parse_filter(args, currency, locale)
        form = render_fragment(template, price_filter=price_filter, args=args, currency=currency,
                               example=example_amount(currency, locale),
                               other_currencies=format_list(list(others), locale=locale) if others else None)
        if keep:
            _keep(state, key, form)
    return form


def _keep(state, key: tuple, form: Markup) -> Markup:
    """Keep a rendered form of the plugin's own for the app (at most `_FORMS_KEPT`): ``form``."""
    if len(state.filter_forms) >= _FORMS_KEPT:
        state.filter_forms.clear()
    state.filter_forms[key] = form
    return form


def filtering(sender, courses, args, **_kwargs):
    """The courses matching the price filter in ``args`` (all of them when no filter is set)."""
    state = plugin_state(sender)
    if state is None:
        return None
    price_filter = None
    host = state.host
    if args.get("price") or args.get("price_max"):  # else nothing to read
        user = host.current_user()
        current, prices = catalog.settings_and_prices(state, host.user_id(user) if user is not None else None)
        if current.requests_only:
            return None
        currency = currencies.of_viewer(state, current, user)
        price_filter = catalog.parse_filter(args, currency or current.default_currency, current_locale())
    courses = courses if isinstance(courses, list) else list(courses)
    if price_filter is None or not price_filter.active:
        return courses
    selection = catalog.filter_selection(prices.snapshot, price_filter,
                                         host.user_audience(user) if user is not None else None, currency)
    return catalog.kept(courses, catalog.course_keys(courses, host.course_id, remember=True), selection)
