"""Platform mode: the school's administrators activate online payment on their own Stripe account."""
from __future__ import annotations

import time

from flask import abort, flash, redirect, url_for

from ..accounts import connect, settings as payment_settings
from ..core import schools
from ..core.i18n import gettext as _
from ..errors import PaymentsError
from ..web.rendering import render
from ._common import actor_id, require_admin, state, step


def register(bp) -> None:
    bp.add_url_rule("/admin/online-payment", "admin_connect", admin_connect)
    bp.add_url_rule("/admin/online-payment/activate", "admin_connect_activate", activate, methods=["POST"])
    bp.add_url_rule("/admin/online-payment/return", "admin_connect_return", back_from_stripe)
    bp.add_url_rule("/admin/online-payment/refresh", "admin_connect_refresh", new_link)


def _platform_admin():
    user = require_admin()
    if not schools.platform_mode():
        abort(404)  # a school with its own keys has none of this
    return user


def admin_connect():
    """Where the school's Stripe account stands, with "Activate online payment" or "Continue on Stripe"."""
    _platform_admin()
    settings = payment_settings.load(state().session)
    return render("lms_stripe/admin/connect.html", account=connect.status(settings), settings=settings)


def activate():
    """Create the school's connected account (once), then send the administrator to Stripe's onboarding."""
    user = _platform_admin()
    st = state()
    try:
        account_id = step(connect.ensure_account, st, actor_id=actor_id(user))
        url = connect.onboarding_link(st, account_id)
    except PaymentsError as err:
        flash(err.message, "error")
        return redirect(url_for("lms_stripe.admin_connect"), code=303)
    return redirect(url, code=303)


def back_from_stripe():
    """Stripe's onboarding sends the administrator back here: the account is read now (its event may come
    later), and the page says where it stands."""
    _platform_admin()
    st = state()
    try:
        account = step(connect.check_now, st, now=int(time.time()))
    except PaymentsError as err:
        flash(err.message, "error")
        return redirect(url_for("lms_stripe.admin_connect"), code=303)
    if account.charges_enabled:
        flash(_("Your Stripe account can take payments: learners can buy."), "success")
    elif account.details_submitted:
        flash(_("Stripe is checking your details, or needs more: see below."), "error")
    else:
        flash(_("Your Stripe account is not complete yet: continue on Stripe when you are ready."), "error")
    return redirect(url_for("lms_stripe.admin_connect"), code=303)


def new_link():
    """Stripe sends the administrator here when an onboarding link expired or was opened already: a new one."""
    _platform_admin()
    st = state()
    account_id = payment_settings.load(st.session).stripe_account_id
    if not account_id:
        return redirect(url_for("lms_stripe.admin_connect"), code=303)
    try:
        url = connect.onboarding_link(st, account_id)
    except PaymentsError as err:
        flash(err.message, "error")
        return redirect(url_for("lms_stripe.admin_connect"), code=303)
    return redirect(url, code=303)
