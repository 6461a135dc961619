"""The learner's purchase: the course's payment page, the Buy click, and Stripe's return pages."""
from __future__ import annotations

from flask import abort, redirect, request

from ..accounts import settings as payment_settings
from ..core import schools
from ..core.enums import PurchaseStatus
from ..core.models import Purchase
from ..errors import NotPurchasable, PaymentsError
from ..shop import checkout, currencies, deposits, offers, prepaid
from ..shop.fulfilment import SessionMismatch, fulfil_from_stripe
from ..core.i18n import gettext as _
from ..core.urls import local_path
from ..web.rendering import render
from ._common import course_or_404, error_response, posted_currency, require_user, state, step


def register(bp) -> None:
    bp.add_url_rule("/courses/<course_id>", "course_payment", course_payment)
    bp.add_url_rule("/checkout/<course_id>", "checkout", start, methods=["POST"])
    bp.add_url_rule("/checkout/success", "checkout_success", success)
    bp.add_url_rule("/checkout/cancel/<lms_id:purchase_id>", "checkout_cancel", cancel)
    bp.add_url_rule("/currency", "choose_currency", choose_currency, methods=["POST"])


def course_payment(course_id: str):
    """The payment page a paid course's enrollment refusal points to: price, what is included, Buy."""
    user = require_user()
    course = course_or_404(course_id)
    st = state()
    settings = payment_settings.load(st.session)
    currency = currencies.of_viewer(st, settings, user)
    refusal = None
    try:
        offer = checkout.offer_for(st, settings, user, course_id)
    except NotPurchasable as err:
        offer, refusal = None, err.message
    try:
        if refusal is None:
            checkout.check_purchasable(st, user, course, settings, offer)
        checkout.check_not_bought(st.session, st.host.user_id(user), course_id)
    except NotPurchasable as err:
        refusal = err.message
    breakdown = offers.breakdown(offer.price, offer.vat_rate) if offer and offer.price else None
    terms = deposits.terms(st, offer, course) if offer is not None else None
    balance = deposits.balance_state(st.session, st.host.user_id(user), course_id)
    return render("lms_stripe/course_payment.html", course=course, title=st.host.course_title(course),
                  course_url=st.host.course_url(course), offer=offer, breakdown=breakdown, refusal=refusal,
                  course_id=course_id, settings=settings, terms=terms, balance=balance, currency=currency,
                  prepaid=prepaid.usable(st, st.host.user_id(user), offer) if refusal is None else None)


def start(course_id: str):
    user = require_user()
    course = course_or_404(course_id)
    try:
        plan = step(checkout.reserve, state(), user, course, posted_currency())
        url = plan.url or step(checkout.open_session, state(), plan)
    except NotPurchasable as err:
        return render("lms_stripe/refused.html", message=err.message, course_url=state().host.course_url(course)), 409
    return redirect(url, code=303)


def success():
    """Stripe's return: fulfil now if the webhook has not yet, then show the course or "processing"."""
    user = require_user()
    st = state()
    session_id = request.args.get("session_id", "")
    if not session_id.startswith("cs_") or len(session_id) > 255:
        abort(404)
    purchase = st.session.query(Purchase).filter_by(stripe_checkout_session_id=session_id).one_or_none()
    if purchase is None or purchase.user_id != st.host.user_id(user):
        abort(404)
    if purchase.status in (PurchaseStatus.OPEN, PurchaseStatus.PROCESSING, PurchaseStatus.EXPIRED):
        # Expired too: the learner may have paid a session retired meanwhile (an old tab, a changed offer).
        purchase = _fulfil(st, session_id, purchase.id) or purchase
    course = st.host.get_course(purchase.course_id)
    return render("lms_stripe/success.html", purchase=purchase, course=course, invoice=purchase.invoice,
                  course_url=st.host.course_url(course) if course is not None else None,
                  title=st.host.course_title(course) if course is not None else purchase.course_id)


def _fulfil(st, session_id: str, purchase_id: int):
    try:
        st.session.commit()  # end this request's reads: no transaction is held across the call to Stripe
        fulfil_from_stripe(st, session_id)
        st.session.commit()
    except SessionMismatch:
        st.session.rollback()
        abort(404)
    except PaymentsError:
        st.session.rollback()
        return None  # Stripe unreachable: the webhook will fulfil; the page says "processing"
    return schools.get(st.session, Purchase, purchase_id)


def cancel(purchase_id: int):
    user = require_user()
    st = state()
    purchase = schools.get(st.session, Purchase, purchase_id)
    if purchase is None or purchase.user_id != st.host.user_id(user):
        abort(404)
    course = st.host.get_course(purchase.course_id)
    return render("lms_stripe/cancelled.html", status=purchase.status,
                  course_url=st.host.course_url(course) if course else None,
                  title=st.host.course_title(course) if course else purchase.course_id)


def choose_currency():
    """The catalog's currency switcher: remember the reader's currency (a visitor's in their session only),
    then back to the page they were on."""
    st = state()
    settings = payment_settings.load(st.session)
    currency = (request.form.get("currency") or "").strip().upper()[:3]
    if not currencies.choose(st, settings, st.host.current_user(), currency):
        return error_response(400, _("Choose one of the currencies the school accepts: %(currencies)s.",
                                     currencies=", ".join(settings.currencies)))
    st.session.commit()
    return redirect(local_path(request.form.get("next")) or "/", code=303)
