"""Paying what is owed: the pay page a request's link opens, and "My payments" for signed-in learners.

Who may open a pay page: whoever holds one of the request's links. The link's token is random, unguessable
and sent only to the learner (by e-mail or SMS), so a learner pays from their phone without signing in,
as a practice's clients do; the page shows that one invoice and nothing else of the learner, and never
leaves the token in a Referer. A signed-in learner also pays their own requests from "My payments".
"""
from __future__ import annotations

from flask import abort, flash, make_response, redirect, request, url_for

from ..accounts import settings as payment_settings
from ..billing import balances, links, listing, paying, requests as payment_requests, settlements
from ..core import schools
from ..core.enums import AttemptStatus, InvoiceStatus
from ..core.i18n import gettext as _, normalize_locale
from ..core.models import PaymentAttempt, PaymentRequest
from ..core.urls import public_url
from ..errors import PaymentsError
from ..money import MoneyError
from ..web.billing_forms import chosen_invoices
from ..web.forms import money_message, read_amount
from ..web.rendering import render
from ._common import current_user, require_user, state, step


def register(bp) -> None:
    bp.add_url_rule("/pay/<token>", "pay", pay, methods=["GET", "POST"])
    bp.add_url_rule("/my-payments", "my_payments", my_payments)
    bp.add_url_rule("/my-payments/<lms_id:request_id>/pay", "my_payment_pay", my_payment_pay, methods=["POST"])
    bp.add_url_rule("/my-payments/invoices/<lms_id:invoice_id>/pay", "my_invoice_pay", my_invoice_pay,
                    methods=["POST"])
    bp.add_url_rule("/my-payments/settle", "my_payments_settle", my_payments_settle, methods=["POST"])


def _private(response):
    """A page whose address holds a token: never in a Referer, never in a search engine."""
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def pay(token: str):
    st = state()
    found = links.request_of(st.session, token)
    if found is None:
        abort(404)
    if current_user() is None:  # the link's holder, not signed in: the language the request was sent in
        request.environ["lms_stripe.locale"] = normalize_locale(found.locale)
    return_url = public_url("lms_stripe.pay", token=token)
    if request.method == "POST":
        return _start(found, return_url, again=lambda error: _page(found, error=error, token=token))
    notice = _back_from_stripe(found)
    return _page(found, token=token, notice=notice)


def _page(found: PaymentRequest, *, token: str | None = None, error: str | None = None, notice: str | None = None,
          typed: str = ""):
    least, most = paying.limits(found)
    live = paying.live_attempt(state().session, found.id)
    values = dict(req=found, remaining=paying.remaining(found), least=least, most=most, error=error, notice=notice,
                  typed=typed, processing=live is not None and live.status == AttemptStatus.PROCESSING,
                  paused=not payment_settings.load(state().session).active,
                  action=url_for("lms_stripe.pay", token=token) if token else
                  url_for("lms_stripe.my_payment_pay", request_id=found.id))
    if found.parts:  # several invoices in one payment
        on_balance = balances.parts_on_balance(state().session, [part.id for part in found.parts])
        body = render("lms_stripe/pay_settlement.html", parts=found.parts, blocked=paying.blocked(found),
                      on_balance=on_balance,
                      crediting=paying.paid_unattached(state().session, found.id), **values)
    elif found.invoice is None:  # a top-up of the learner's balance
        body = render("lms_stripe/pay_topup.html", **values)
    else:
        body = render("lms_stripe/pay.html", invoice=found.invoice, lines=found.invoice.lines, **values)
    return _private(make_response(body, 400 if error else 200))


def _start(found: PaymentRequest, return_url: str, *, again):
    """The Pay click: the amount (the learner's own when partial payments are on), then Checkout."""
    # A settlement, a top-up, are paid whole.
    typed = "" if found.parts or found.topup else (request.form.get("amount") or "").strip()[:32]
    try:
        amount = read_amount(typed, found.currency, minimum=False).amount if typed else paying.remaining(found)
        plan = step(paying.reserve, state(), found, amount, return_url=return_url)
        url = plan.url or step(paying.open_session, state(), plan)
    except MoneyError as err:
        return again(money_message(err, found.currency))
    except PaymentsError as err:
        return again(err.message)
    return redirect(url, code=303)


def _back_from_stripe(found: PaymentRequest) -> str | None:
    attempt = back_from_stripe()
    return attempt.status if attempt is not None and attempt.request_id == found.id else None


def back_from_stripe() -> PaymentAttempt | None:
    """Back from a Pay click's Checkout (``session_id``): record what Stripe says now, as the webhook will; the
    attempt, whose owner the caller checks (None when the session is not one of ours)."""
    session_id = request.args.get("session_id", "")
    if not session_id.startswith("cs_") or len(session_id) > 255:
        return None
    st = state()
    secret = payment_settings.load(st.session).secret_key
    try:
        st.session.commit()  # end this request's reads: no transaction across the call to Stripe
        cs = st.gateway.retrieve_checkout_session(session_id, api_key=secret, expand=("invoice", "payment_intent"))
        attempt = paying.sync_session(st, cs)
        st.session.commit()
    except PaymentsError:
        st.session.rollback()
        return None
    return attempt


def my_payments():
    user = require_user()
    return _my_payments_page(state().host.user_id(user))


def _my_payments_page(user_id: str, *, error: str | None = None, chosen: list[int] | None = None,
                      status: int = 200):
    """What the learner owes and has paid; ``error`` why the invoices ``chosen`` could not be paid together."""
    st = state()
    # A request whose invoice owes nothing more (paid on Stripe's own page, or void) asks for nothing.
    owed = [req for req in listing.learner_requests(st.session, user_id) if paying.remaining(req) > 0]
    open_invoices = listing.learner_open_invoices(st.session, user_id)
    # An invoice of a request of its own, or without one, may be paid with others (a settlement is one already).
    choices = [req.invoice_id for req in owed if not req.parts and req.invoice_id] + \
        [invoice.id for invoice in open_invoices]
    settings = payment_settings.load(st.session)
    held = balances.balances_of(st.session, user_id)
    # An invoice paid from the balance alone has nothing paid by card: it is listed as paid too.
    done = [inv for inv in listing.learner_invoices(st.session, user_id)
            if inv.amount_paid or inv.status == InvoiceStatus.PAID]
    # A request the learner has paid, the payment not yet credited (a bank debit processing): nothing to do.
    under_way = paying.paying_requests(st.session, [req.id for req in owed])
    return render("lms_stripe/my_payments.html", owed=owed, done=done, under_way=under_way,
                  open_invoices=open_invoices, remaining=paying.remaining, overdue=paying.overdue,
                  invoice_overdue=paying.invoice_overdue, can_settle=len(set(choices)) >= 2, error=error,
                  chosen=set(chosen or ()), prepaid=settings.prepaid_enabled and settings.active, balances=held,
                  entries=balances.entries_of(st.session, user_id, limit=20) if held else [],
                  topup_currency=settings.default_currency, topup_min=settings.topup_minimum,
                  topup_max=settings.topup_maximum), status


def my_payments_settle():
    """Pay several of the learner's invoices in one Checkout payment: their request (the same one for the same
    choice while it is open), then Checkout as for any request. A choice that cannot be paid (an invoice paid
    meanwhile, void, another learner's, in another currency…) is refused with its reason, nothing charged."""
    user = require_user()
    st = state()
    user_id = st.host.user_id(user)
    chosen = chosen_invoices(request.form)
    if chosen is None:
        return _my_payments_page(user_id, error=_("The invoices chosen could not be read: reload the page."),
                                 status=400)
    if not chosen:
        return _my_payments_page(user_id, error=_("Choose the invoices to pay together."), status=400)
    if len(set(chosen)) == 1:
        return my_invoice_pay(chosen[0])
    try:
        found = step(settlements.for_learner, st, chosen, user_id=user_id)
    except PaymentsError as err:
        return _my_payments_page(user_id, error=err.message, chosen=chosen, status=err.status_code)
    return _start(found, public_url("lms_stripe.my_payments"),
                  again=lambda error: _my_payments_page(user_id, error=error, chosen=chosen, status=409))


def my_payment_pay(request_id: int):
    user = require_user()
    st = state()
    found = schools.get(st.session, PaymentRequest, request_id)
    if found is None or found.user_id != st.host.user_id(user):
        abort(404)
    return _start(found, public_url("lms_stripe.my_payments"), again=lambda error: _page(found, error=error))


def my_invoice_pay(invoice_id: int):
    """Pay, from "My payments", what remains of an invoice that no request asks for: the learner's own request
    (no message), then Checkout as for any request."""
    user = require_user()
    st = state()
    user_id = st.host.user_id(user)
    invoice = listing.learner_invoice(st.session, user_id, invoice_id)
    if invoice is None:
        abort(404)
    try:
        found = step(payment_requests.for_learner, st, invoice, actor_id=user_id)
    except PaymentsError as err:
        flash(err.message, "error")
        return redirect(url_for("lms_stripe.my_payments"), code=303)
    return _start(found, public_url("lms_stripe.my_payments"), again=lambda error: _page(found, error=error))
