"""Rendering helpers: templates get the plugin's translations, money formatting and CSRF token."""
from __future__ import annotations

from flask import current_app, render_template, request
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup

from .i18n import current_locale, gettext, ngettext
from .money import Money, format_rate
from .refunds import failure_text


def format_money(amount: int | None, currency: str | None) -> str:
    if amount is None or not currency:
        return ""
    return Money(int(amount), currency).format(current_locale())


def template_context() -> dict:
    return {
        "_": gettext,
        "gettext": gettext,
        "ngettext": ngettext,
        "money": format_money,
        "rate": lambda bp: format_rate(bp, current_locale()),
        "locale": current_locale(),
        "csrf_token": generate_csrf,
        "lms_stripe_base": current_app.config["LMS_STRIPE_BASE_TEMPLATE"],
        "refund_failure": failure_text,
    }


def render(template: str, **context) -> str:
    """Render one of the plugin's templates (``lms_stripe/...``), overridable by the host."""
    return render_template(template, **template_context(), **context)


def render_fragment(template: str, **context) -> Markup:
    """Render a fragment the host embeds in its own page (course detail, price filter, pricing form).

    Only the plugin's context is given (and ``request``): the host's context processors already run for
    the page around it, and running them again for each fragment would repeat their work (and queries).
    """
    source = current_app.jinja_env.get_or_select_template(template)
    return Markup(source.render(**template_context(), request=request, **context))
