"""Prepaid balances: the learner's top-up (from "My payments"), a course bought with the balance (from its
payment page), and the administrators' pages: every balance, one learner's movements with a credit or debit
form and their top-ups, each refundable while unspent, and a request that the learner top up (sent by e-mail
or SMS to the pay page, as any payment request; a top-up link is made from the payment links' form).

Who may open what: the learner's actions act on the signed-in learner's own balance only; the administrators'
pages need an administrator.
"""
from __future__ import annotations

import secrets

from flask import abort, current_app, flash, redirect, request, url_for

from ..accounts import settings as payment_settings
from ..billing import balances, issuing, listing, paying, requests as payment_requests
from ..core import schools
from ..core.enums import PaymentRequestStatus, PurchaseStatus
from ..core.i18n import current_locale, gettext as _
from ..core.models import TopUp
from ..core.urls import public_url
from ..errors import NotPurchasable, PaymentsError, ValidationFailed
from ..money import MoneyError
from ..shop import prepaid
from ..web.billing_forms import default_due, read_request
from ..web.forms import amount_input, money_message, read_amount
from ..web.rendering import render
from ._common import actor_id, course_or_404, posted_currency, require_admin, require_user, state, step


def register(bp) -> None:
    bp.add_url_rule("/my-payments/top-up", "top_up", top_up, methods=["POST"])
    bp.add_url_rule("/checkout/<course_id>/balance", "pay_from_balance", pay_from_balance, methods=["POST"])
    bp.add_url_rule("/admin/balances", "admin_balances", balance_list)
    bp.add_url_rule("/admin/balances/<user_id>", "admin_balance", balance_page, methods=["GET", "POST"])
    bp.add_url_rule("/admin/balances/top-ups/<lms_id:topup_id>/refund", "admin_refund_topup", refund_topup,
                    methods=["POST"])
    bp.add_url_rule("/admin/balances/<user_id>/request", "admin_request_topup", request_topup,
                    methods=["GET", "POST"])


# -- the learner ------------------------------------------------------------------------------------------------


def top_up():
    """Top up the balance by the typed amount (read in the learner's locale): through Checkout."""
    user = require_user()
    st = state()
    settings = payment_settings.load(st.session)
    currency = settings.default_currency
    try:
        amount = read_amount(request.form.get("amount", ""), currency)
        plan = step(balances.start_topup, st, user, amount, return_url=public_url("lms_stripe.my_payments"))
        url = step(balances.open_topup, st, plan)
    except MoneyError as err:
        flash(money_message(err, currency), "error")
    except ValidationFailed as err:
        flash(err.errors.get("amount") or err.message, "error")
    except PaymentsError as err:
        flash(err.message, "error")
    else:
        return redirect(url, code=303)
    return redirect(url_for("lms_stripe.my_payments"), code=303)


def pay_from_balance(course_id: str):
    """Buy a course with the balance: paid at once when the balance covers it, else the rest is left to pay
    from My payments."""
    user = require_user()
    st = state()
    course = course_or_404(course_id)
    try:
        purchase_id = step(prepaid.reserve, st, user, course, posted_currency())
        plan = step(prepaid.create, st, purchase_id)
        if plan is not None:
            step(issuing.create_at_stripe, st, plan)
        purchase = step(prepaid.issue, st, purchase_id)
    except NotPurchasable as err:
        return render("lms_stripe/refused.html", message=err.message, course_url=st.host.course_url(course)), 409
    except PaymentsError as err:
        flash(err.message, "error")
        return redirect(url_for("lms_stripe.my_payments"), code=303)
    if purchase.status == PurchaseStatus.PAID:
        flash(_("Paid from your balance: you are enrolled."), "success")
        return redirect(st.host.course_url(course), code=303)
    flash(_("Your balance paid part of this course: pay the rest below."), "success")
    return redirect(url_for("lms_stripe.my_payments"), code=303)


# -- administrators ---------------------------------------------------------------------------------------------


def balance_list():
    require_admin()
    st = state()
    rows = balances.every_balance(st.session, limit=current_app.config["LMS_STRIPE_PAGE_SIZE"] * 10)
    names = {row.user_id: _name(st, row.user_id) for row in rows}
    return render("lms_stripe/admin/balances.html", rows=rows, names=names)


def _name(st, user_id: str) -> str:
    user = st.host.get_user(user_id)
    return st.host.user_display_name(user) if user is not None else _("learner %(id)s", id=user_id)


def _learner_or_404(st, user_id: str) -> None:
    if len(user_id) > 64 or schools.member(st.host, user_id) is None:
        abort(404)


def balance_page(user_id: str):
    admin = require_admin()
    st = state()
    _learner_or_404(st, user_id)
    settings = payment_settings.load(st.session)
    errors: dict[str, str] = {}
    values = {"currency": settings.default_currency, "direction": "credit", "token": secrets.token_urlsafe(16)}
    status = 200
    if request.method == "POST":
        values = {key: request.form.get(key, "") for key in ("amount", "currency", "direction", "reason", "token")}
        currency = values["currency"] if values["currency"] in _currencies(st, user_id, settings) \
            else settings.default_currency
        try:
            amount = read_amount(values["amount"], currency, minimum=False)
            step(balances.adjust, st, user_id=user_id, amount=amount, credit=values["direction"] != "debit",
                 reason=values["reason"], actor_id=actor_id(admin), token=values["token"][:64] or "none")
        except MoneyError as err:
            errors = {"amount": money_message(err, currency)}
        except ValidationFailed as err:
            errors = dict(err.errors)
        else:
            flash(_("The balance was changed."), "success")
            return redirect(url_for("lms_stripe.admin_balance", user_id=user_id), code=303)
        status = 400
    entries = balances.entries_of(st.session, user_id)
    return render("lms_stripe/admin/balance.html", learner=_name(st, user_id), user_id=user_id,
                  balances=balances.balances_of(st.session, user_id), entries=entries,
                  topups=balances.topups_of(st.session, user_id), errors=errors, values=values,
                  asked=[_topup_view(st.session, req) for req in payment_requests.topups_asked(st.session, user_id)],
                  prepaid=settings.prepaid_enabled and settings.active,
                  currencies=sorted(_currencies(st, user_id, settings)),
                  names={e.actor_id: _name(st, e.actor_id) for e in entries if e.actor_id}), status



def _topup_view(session, req) -> listing.RequestView:
    """A top-up request as the learner's balance page shows it: what "Send again" and "Cancel" may do now."""
    open_ = req.status == PaymentRequestStatus.OPEN
    under_way = open_ and paying.payment_under_way(session, req.id)
    return listing.RequestView(req, payment_requests.delivery_failed(session, req), paying=under_way,
                               refusal=payment_requests.resend_refusal(session, req, under_way=under_way)
                               if open_ else None)

def _currencies(st, user_id: str, settings) -> set[str]:
    return {settings.default_currency} | {row.currency for row in balances.balances_of(st.session, user_id)}


def request_topup(user_id: str):
    """Ask a learner to top up their balance by an amount: a payment request with no invoice, its messages
    sent by e-mail or SMS with a link to the pay page, its reminders as any request's."""
    admin = require_admin()
    st = state()
    _learner_or_404(st, user_id)
    settings = payment_settings.load(st.session)
    errors: dict[str, str] = {}
    if request.method == "POST":
        read = read_request(request.form, settings.default_currency)
        errors = read.errors
        if not errors and read.data is not None:
            try:
                step(payment_requests.create_topup, st, user_id, read.data, actor_id=actor_id(admin))
            except ValidationFailed as err:
                errors = dict(err.errors)
            except PaymentsError as err:
                errors = {"_schema": err.message}
            else:
                flash(_("The top-up request is sent."), "success")
                return redirect(url_for("lms_stripe.admin_balance", user_id=user_id), code=303)
    values = request.form if request.method == "POST" else {
        "amount": amount_input(settings.topup_minimum, settings.default_currency),
        "due": default_due(14).isoformat(), "email": "on", "locale": current_locale()}
    return render("lms_stripe/admin/request_topup.html", learner=_name(st, user_id), user_id=user_id,
                  errors=errors, values=values, currency=settings.default_currency,
                  prepaid=settings.prepaid_enabled and settings.active, least=settings.topup_minimum,
                  most=settings.topup_maximum), 400 if errors else 200


def refund_topup(topup_id: int):
    admin = require_admin()
    st = state()
    topup = schools.get(st.session, TopUp, topup_id)
    if topup is None:
        abort(404)
    try:
        step(balances.refund_topup, st, topup_id, actor_id=actor_id(admin))
    except PaymentsError as err:
        flash(err.message, "error")
    else:
        flash(_("The top-up is refunded: the learner gets it back on their card."), "success")
    return redirect(url_for("lms_stripe.admin_balance", user_id=topup.user_id), code=303)
