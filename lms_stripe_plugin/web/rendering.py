"""Rendering helpers: templates get the plugin's translations, money formatting and CSRF token."""
from __future__ import annotations

import os
from datetime import date, datetime, timezone
from pathlib import Path

from babel.dates import format_date, get_timezone
from babel.numbers import get_currency_name

from flask import current_app, render_template, request
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup

from ..accounts import settings as payment_settings
from ..core.enums import payment_method_label
from ..core.i18n import current_locale, gettext, ngettext
from ..core.models import utcnow
from ..money import Money, format_rate
from ..refunds.lifecycle import failure_text
from . import audit_text
from .forms import amount_input


def format_money(amount: int | None, currency: str | None) -> str:
    if amount is None or not currency:
        return ""
    return Money(int(amount), currency).format(current_locale())


def format_day(moment: datetime | date | None) -> str:
    """A date as the reader's locale writes it ("2 déc. 2026", "Dec 2, 2026"); a moment's date is the one of
    the school's time zone."""
    if moment is None:
        return ""
    if isinstance(moment, datetime):
        aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
        moment = aware.astimezone(get_timezone(audit_text.time_zone())).date()
    return format_date(moment, format="medium", locale=current_locale())


def format_moment(moment: datetime | None) -> str:
    """A date and time as the reader's locale writes them, in the school's time zone."""
    return audit_text.when(moment) if moment is not None else ""


def template_context() -> dict:
    return {
        "_": gettext,
        "gettext": gettext,
        "ngettext": ngettext,
        "money": format_money,
        "rate": lambda bp: format_rate(bp, current_locale()),
        "date": format_day,
        "moment": format_moment,
        "amount_input": amount_input,
        "now": utcnow(),
        "locale": current_locale(),
        "csrf_token": generate_csrf,
        "lms_stripe_base": current_app.config["LMS_STRIPE_BASE_TEMPLATE"],
        "refund_failure": failure_text,
        "label": _label,
        "method_label": payment_method_label,
        "stripe_mode": _stripe_mode,
        "currency_name": _currency_name,
    }


def _currency_name(code: str) -> str:
    """A currency's name in the reader's language ("franc suisse"), or its code if Babel does not know it."""
    try:
        return get_currency_name(code, locale=current_locale())
    except (ValueError, LookupError):
        return code


def _stripe_mode() -> str | None:
    """The Stripe mode of the secret key in force ("test", "live" or None), for the administrators' pages."""
    return payment_settings.load(current_app.extensions["lms_stripe"].session).mode


def _label(value) -> str:
    """A stored status or action in the reader's language (as stored, if this version does not know it)."""
    return getattr(value, "label", value)


def render(template, **context) -> str:
    """Render one of the plugin's templates (``lms_stripe/...``), overridable by the host."""
    return render_template(template, **template_context(), **context)


#: The plugin's own templates (a host may override any of them with a file of its own).
OWN_TEMPLATES = str(Path(__file__).resolve().parent.parent / "templates") + os.sep


def is_own(template) -> bool:
    return (template.filename or "").startswith(OWN_TEMPLATES)


def render_fragment(template, **context) -> Markup:
    """Render a fragment the host embeds in its own page (course detail, price filter, pricing form).

    The plugin's own fragments get the plugin's context only (and ``request``): the host's context
    processors already ran for the page around them, and running them again for each fragment would
    repeat their work (and queries). A host's override is rendered as the host's templates are.
    ``template`` is a name, or a template already looked up.
    """
    source = current_app.jinja_env.get_or_select_template(template)
    if not is_own(source):
        return Markup(render(source, **context))
    return Markup(source.render(**template_context(), request=request, **context))
