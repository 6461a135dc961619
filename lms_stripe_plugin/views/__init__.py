"""The plugin's blueprint: thin views that parse input, call services, own the request's transaction and
render. One module per page family: the school's settings, the learner's purchase, invoices (the learner's
and the administrators'), invoicing and payment requests, the pay page and "My payments", payment links, refunds, the audit log, free enrollments, and Stripe's webhook."""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint
from werkzeug.routing import BaseConverter

from . import (_common, audit, balance, checkout, connect, enrollments, events, invoices, invoicing, pay,
               payment_links, refunds, settings, webhook)

TEMPLATES = str(Path(__file__).resolve().parent.parent / "templates")


class IdConverter(BaseConverter):
    """One of the plugin's row ids in a URL: 1 to 9 digits (anything else is not a route of ours)."""

    regex = r"[0-9]{1,9}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(int(value))


def create_blueprint() -> Blueprint:
    bp = Blueprint("lms_stripe", __name__, template_folder=TEMPLATES)
    _common.install(bp)
    for module in (settings, connect, checkout, invoices, invoicing, pay, payment_links, balance, refunds, audit,
                   enrollments, events, webhook):
        module.register(bp)
    return bp
