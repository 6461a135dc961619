"""Administrators' pages of the school's account: payment settings, and the course form's pricing preview."""
from __future__ import annotations

from flask import flash, jsonify, redirect, request, url_for
from marshmallow import ValidationError
from werkzeug.datastructures import MultiDict

from ..accounts import settings as payment_settings
from ..accounts.identity import format_siret
from ..billing import legal
from ..core.i18n import current_locale, gettext as _
from ..money import Money
from ..shop import offers
from ..web.forms import (PRICING_PREFIX, CoursePricingSchema, SettingsSchema, all_errors, amount_input,
                         first_errors, format_rate_input)
from ..web.rendering import render
from ._common import actor_id, require_admin, state, step


def register(bp) -> None:
    bp.add_url_rule("/admin/", "admin_home", admin_home)
    bp.add_url_rule("/admin/settings", "admin_settings", admin_settings, methods=["GET", "POST"])
    bp.add_url_rule("/admin/pricing-preview", "pricing_preview", pricing_preview)


def admin_home():
    require_admin()
    return redirect(url_for("lms_stripe.admin_settings"))


def admin_settings():
    user = require_admin()
    session = state().session
    current = payment_settings.load(session)
    errors, submitted = {}, None
    if request.method == "POST":
        submitted = request.form
        try:
            data = SettingsSchema(stored=current).load_form(request.form, locked=current.overridden)
        except ValidationError as err:
            errors = all_errors(err.messages, SettingsSchema.FIELDS)
        else:
            step(payment_settings.save, session, data, actor_id=actor_id(user))
            flash(*_saved_message(current, payment_settings.load(session)))
            return redirect(url_for("lms_stripe.admin_settings"))
    status = 400 if errors else 200
    return render("lms_stripe/admin/settings.html", settings=current, errors=errors,
                  form=_form_values(current, submitted), masked=_masked(current),
                  late_payment_default=legal.late_payment_default(current_locale())), status


def _saved_message(before, after) -> tuple[str, str]:
    """The message after a save, and its category: it says in words when payments are off, and why, unless
    the administrator turned them off with payments already off."""
    if after.active or not (after.enabled or before.active):
        return _("Payment settings saved."), "success"
    reasons = "; ".join(after.blockers())
    if before.active:
        return _("Payment settings saved. Payments are now off: %(reasons)s.", reasons=reasons), "error"
    return _("Payment settings saved, but payments are off: %(reasons)s.", reasons=reasons), "error"


def _form_values(current, submitted) -> dict:
    """What the page's fields show: the submitted text after an error, else the stored values."""
    if submitted is not None:
        values = {name: submitted.get(name, "") for name in SettingsSchema.FIELDS if name not in SettingsSchema.SECRETS}
        for name in ("enabled", "vouchers_enabled", "wallets_enabled", "klarna_enabled", "sepa_debit_enabled",
                     "automatic_tax", "partial_payments_enabled", "reminder_sms", "business_buyers", "prepaid_enabled",
                     "requests_only"):
            values[name] = bool(submitted.get(name))
        return values
    return {
        "enabled": current.enabled, "requests_only": current.requests_only,
        "publishable_key": current.publishable_key or "",
        "default_currency": current.default_currency,
        "other_currencies": ", ".join(current.currencies[1:]),
        "default_vat_rate": format_rate_input(current.default_vat_rate),
        "vouchers_enabled": current.vouchers_enabled, "wallets_enabled": current.wallets_enabled,
        "klarna_enabled": current.klarna_enabled, "sepa_debit_enabled": current.sepa_debit_enabled,
        "automatic_tax": current.automatic_tax,
        "klarna_minimum": amount_input(current.klarna_minimum, current.default_currency),
        "terms_url": current.terms_url or "",
        "school_name": current.school_name or "", "partial_payments_enabled": current.partial_payments_enabled,
        "partial_minimum": amount_input(current.partial_minimum, current.default_currency),
        "reminder_days": ", ".join(current.reminder_days.split(",")), "reminder_max": str(current.reminder_max),
        "reminder_sms": current.reminder_sms, "balance_grace_days": str(current.balance_grace_days),
        "prepaid_enabled": current.prepaid_enabled,
        "topup_minimum": amount_input(current.topup_minimum, current.default_currency),
        "topup_maximum": amount_input(current.topup_maximum, current.default_currency),
        "seller_legal_name": current.seller_legal_name or "", "seller_address": current.seller_address or "",
        "seller_siret": format_siret(current.seller_siret) if current.seller_siret else "",
        "seller_vat_number": current.seller_vat_number or "", "seller_legal_form": current.seller_legal_form or "",
        "late_payment_text": current.late_payment_text or "", "business_buyers": current.business_buyers,
    }


def _masked(current) -> dict:
    """The secrets in force as the page shows them (masked); none for a stored one that cannot be read."""
    return {
        "secret_key": payment_settings.mask(current.secret_key) if current.has("secret_key") else "",
        "webhook_secrets": [payment_settings.mask(secret) for secret in current.webhook_secrets]
        if current.has("webhook_secrets") else [],
    }


def pricing_preview():
    """Net / VAT / gross and fee estimates for the course form, as JSON: the course form's own schema reads
    the fields, so the preview refuses what saving would refuse, and names each field at fault."""
    require_admin()
    form = MultiDict({PRICING_PREFIX + name: request.args.get(name, "")
                      for name in ("price", "currency", "vat_rate", "deposit_kind", "deposit_value")})
    deposit = request.args.get("payment_plan") == "deposit"
    # The deposit's amount is previewed; its due date and access rule, chosen by clicks, are checked on saving.
    form.update({PRICING_PREFIX + "paid": "on", PRICING_PREFIX + "audience": "public",
                 PRICING_PREFIX + "payment_plan": "deposit" if deposit else "full",
                 PRICING_PREFIX + "balance_due": "after_enrollment", PRICING_PREFIX + "balance_due_days": "30",
                 PRICING_PREFIX + "deposit_access": "deposit"})
    try:
        data = CoursePricingSchema().load_form(form)
    except ValidationError as err:
        messages = first_errors(err.messages)
        fields = {name: messages[name] for name in _PREVIEWED if name in messages}
        named = [_("%(field)s: %(message)s", field=_PRICE_LABELS[name](), message=message)
                 for name, message in fields.items()]
        return jsonify({"error": {"message": " ".join(named), "named": named, "field": next(iter(fields), None),
                                  "fields": fields}}), 400
    result = offers.breakdown(Money(data["amount"], data["currency"]), data["vat_rate"])
    html = render("lms_stripe/_breakdown.html", breakdown=result)
    answer = {"gross": result.gross.amount, "net": result.net.amount, "vat": result.vat.amount,
              "currency": data["currency"], "html": html}
    if deposit:
        share = offers.deposit_of(data)
        answer.update(deposit=share.amount, balance=result.gross.amount - share.amount,
                      deposit_text=_("Deposit: %(deposit)s, then a balance of %(balance)s.",
                                     deposit=share.format(current_locale()),
                                     balance=(result.gross - share).format(current_locale())))
    return jsonify(answer)


#: The course form's fields the preview reads, and their labels as the form shows them.
_PREVIEWED = ("price", "currency", "vat_rate", "deposit_kind", "deposit_value")
_PRICE_LABELS = {"price": lambda: _("Price incl. VAT"), "currency": lambda: _("Currency"),
                 "vat_rate": lambda: _("VAT rate (%)"), "deposit_kind": lambda: _("Deposit as"),
                 "deposit_value": lambda: _("Deposit")}
