"""The plugin's blueprint: thin views that parse input, call services and render."""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint

from . import _common, admin, admin_payments, checkout, invoices, webhook

TEMPLATES = str(Path(__file__).resolve().parent.parent / "templates")


def create_blueprint() -> Blueprint:
    bp = Blueprint("lms_stripe", __name__, template_folder=TEMPLATES)
    _common.install(bp)
    for module in (admin, admin_payments, checkout, invoices, webhook):
        module.register(bp)
    return bp
