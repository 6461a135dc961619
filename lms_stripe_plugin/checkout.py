"""Starting a purchase: refusals, the purchase row, and the Stripe Checkout Session.

The browser sends a course id only; every amount comes from our tables. A click costs one Stripe call
for a returning learner (the customer and the tax rate are remembered), none when the learner's open
session for the course can be reused (double click, back button).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import current_app, url_for
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from . import audit, pricing, settings as payment_settings
from .errors import GatewayError, NotPurchasable, PaymentsError
from .host import audience_allows
from .i18n import current_locale, gettext as _
from .models import LIVE_PURCHASE_STATES, Customer, Purchase, TaxRate, utcnow
from .txn import transition

#: An open session is reused only if it stays valid at least this long.
REUSE_MARGIN = timedelta(minutes=5)
STRIPE_MIN_EXPIRY = timedelta(minutes=30)
KLARNA_CURRENCIES = frozenset("AUD CAD CHF CZK DKK EUR GBP NOK NZD PLN RON SEK USD".split())


def live_purchase(session, user_id: str, course_id: str, *, for_update: bool = False) -> Purchase | None:
    query = select(Purchase).where(Purchase.user_id == user_id, Purchase.course_id == course_id,
                                   Purchase.status.in_(LIVE_PURCHASE_STATES))
    if for_update:
        query = query.with_for_update()
    return session.scalar(query)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment


def check_purchasable(state, user, course, settings, offer) -> None:
    """Raise `NotPurchasable` with a message for the learner when this user cannot buy this course."""
    host = state.host
    if not settings.active:
        raise NotPurchasable(_("Online payment is not available at the moment."))
    if offer is None or offer.price is None:
        raise NotPurchasable(_("This course is free: enroll from the course page."))
    if not offer.on_sale:
        raise NotPurchasable(_("This course is not on sale."))
    if not (audience_allows(offer.audience, host.user_audience(user)) and host.can_purchase(user, course)):
        raise NotPurchasable(_("This course is not available for purchase with your account."))
    if host.is_enrolled(user, course):
        raise NotPurchasable(_("You are already enrolled in this course."))


def start_checkout(state, user, course) -> str:
    """Return the URL of a Stripe Checkout page where this learner pays for this course."""
    session, host = state.session, state.host
    user_id, course_id = host.user_id(user), host.course_id(course)
    settings = payment_settings.load(session)
    offer = pricing.get_offer(session, course_id)
    check_purchasable(state, user, course, settings, offer)
    purchase = _reusable_or_new(state, user_id, course_id, offer, settings)
    if purchase.checkout_url:
        return purchase.checkout_url
    params = _session_params(state, settings, purchase, user, course)
    session.commit()  # hold no transaction open across the network call
    try:
        created = state.gateway.create_checkout_session(
            params, api_key=settings.secret_key, idempotency_key=f"lms-checkout-{purchase.id}")
    except GatewayError as err:
        if err.answered or not err.retryable:
            _give_up(session, purchase, err)  # this key's answer is final: the next click starts afresh
        raise
    purchase.stripe_checkout_session_id, purchase.checkout_url = created["id"], created["url"]
    audit.record(session, "checkout_started", actor_id=user_id, user_id=user_id, course_id=course_id,
                 purchase_id=purchase.id, checkout_session=created["id"])
    session.commit()
    return purchase.checkout_url


def check_not_bought(session, user_id: str, course_id: str) -> None:
    """Raise `NotPurchasable` when the learner's payment for the course is done or under way."""
    purchase = live_purchase(session, user_id, course_id)
    if purchase is not None and purchase.status == "paid":
        raise NotPurchasable(_("You have already bought this course."))
    if purchase is not None and purchase.status == "processing":
        raise NotPurchasable(_("Your payment for this course is processing: you will be enrolled as soon as it "
                               "is confirmed."))


def _reusable_or_new(state, user_id, course_id, offer, settings) -> Purchase:
    session = state.session
    check_not_bought(session, user_id, course_id)
    purchase = live_purchase(session, user_id, course_id)
    if purchase is not None:
        if _still_usable(purchase, offer):
            return purchase
        _replace(state, purchase, settings)
    return _insert_purchase(session, user_id, course_id, offer, settings)


def _still_usable(purchase: Purchase, offer) -> bool:
    same_offer = (purchase.amount, purchase.currency, purchase.vat_rate) == (offer.amount, offer.currency,
                                                                             offer.vat_rate)
    # A session still to create must expire at least 30 minutes ahead (Stripe's minimum).
    margin = REUSE_MARGIN if purchase.checkout_url else STRIPE_MIN_EXPIRY + REUSE_MARGIN
    return same_offer and _aware(purchase.expires_at) > utcnow() + margin


def _give_up(session, purchase: Purchase, err) -> None:
    session.rollback()
    transition(session, purchase, ("open",), "failed", failure_reason=err.message)
    session.commit()


def _replace(state, purchase: Purchase, settings) -> None:
    """Retire an open purchase; its session, if any, is expired at Stripe so that an old tab cannot pay it."""
    session = state.session
    purchase.status = "expired"
    session.commit()
    if purchase.stripe_checkout_session_id:
        try:
            state.gateway.expire_checkout_session(purchase.stripe_checkout_session_id, api_key=settings.secret_key)
        except PaymentsError:
            pass  # already expired or complete; if paid meanwhile, fulfilment still honours it


def _insert_purchase(session, user_id, course_id, offer, settings) -> Purchase:
    expiry = current_app.config["LMS_STRIPE_CHECKOUT_EXPIRY"]
    purchase = Purchase(user_id=user_id, course_id=course_id, status="open", amount=offer.amount,
                        currency=offer.currency, vat_rate=offer.vat_rate, livemode=settings.livemode,
                        expires_at=(utcnow() + timedelta(seconds=expiry)).replace(microsecond=0))
    session.add(purchase)
    try:
        session.commit()
    except IntegrityError:
        # Another click of the same learner got there first: use its purchase (same idempotency key).
        session.rollback()
        purchase = live_purchase(session, user_id, course_id)
        if purchase is None or purchase.status != "open":
            raise NotPurchasable(_("You have already bought this course."))
    return purchase


def _session_params(state, settings, purchase: Purchase, user, course) -> dict:
    host = state.host
    metadata = {"lms_purchase_id": str(purchase.id), "lms_user_id": purchase.user_id,
                "lms_course_id": purchase.course_id}
    title = host.course_title(course)[:250]
    line = {
        "quantity": 1,
        "price_data": {"currency": purchase.currency.lower(), "unit_amount": purchase.amount,
                       "tax_behavior": "inclusive",
                       "product_data": {"name": title, "metadata": {"lms_course_id": purchase.course_id}}},
    }
    params = {
        "mode": "payment",
        "line_items": [line],
        "invoice_creation": {"enabled": True, "invoice_data": {"description": title, "metadata": metadata}},
        "payment_intent_data": {"metadata": metadata},
        "payment_method_types": payment_methods(settings, purchase),
        "client_reference_id": f"lms-purchase-{purchase.id}",
        "metadata": metadata,
        "locale": current_locale(),
        "expires_at": int(_aware(purchase.expires_at).timestamp()),
        "success_url": url_for("lms_stripe.checkout_success", _external=True) + "?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": url_for("lms_stripe.checkout_cancel", purchase_id=purchase.id, _external=True),
    }
    _add_tax(state, settings, purchase, params)
    _add_customer(state.session, host, settings, purchase, user, params)
    if settings.vouchers_enabled:
        params["allow_promotion_codes"] = True
    if settings.terms_url:
        params["consent_collection"] = {"terms_of_service": "required"}
        params["custom_text"] = {"terms_of_service_acceptance": {
            "message": _("I accept the [terms of sale](%(url)s).", url=settings.terms_url)}}
    return params


def payment_methods(settings, purchase: Purchase) -> list[str]:
    """Card always (Apple Pay and Google Pay ride on it); Klarna from its minimum; SEPA in euros."""
    methods = ["card"]
    if settings.klarna_enabled and purchase.currency in KLARNA_CURRENCIES:
        minimum = settings.klarna_minimum
        if minimum is None or (purchase.currency == settings.default_currency and purchase.amount >= minimum):
            methods.append("klarna")
    if settings.sepa_debit_enabled and purchase.currency == "EUR":
        methods.append("sepa_debit")
    return methods


def _add_tax(state, settings, purchase: Purchase, params: dict) -> None:
    if settings.automatic_tax:
        params["automatic_tax"] = {"enabled": True}
        return
    if purchase.vat_rate:
        params["line_items"][0]["tax_rates"] = [tax_rate_id(state, settings, purchase.vat_rate)]


def tax_rate_id(state, settings, rate: int) -> str:
    """The inclusive Stripe Tax Rate for this VAT rate, created once and remembered."""
    session = state.session
    country = current_app.config["LMS_STRIPE_TAX_COUNTRY"]
    found = session.scalar(select(TaxRate.stripe_tax_rate_id).where(
        TaxRate.rate == rate, TaxRate.country == country, TaxRate.livemode == settings.livemode))
    if found:
        return found
    percentage = f"{rate // 100}.{rate % 100:02d}"
    created = state.gateway.create_tax_rate(
        {"display_name": "VAT", "percentage": percentage, "inclusive": True, "country": country,
         "description": f"VAT {percentage} % ({country})", "tax_type": "vat"},
        api_key=settings.secret_key, idempotency_key=f"lms-tax-rate-{country}-{rate}-{int(settings.livemode)}")
    session.add(TaxRate(rate=rate, country=country, livemode=settings.livemode,
                        stripe_tax_rate_id=created["id"]))
    try:
        session.commit()
    except IntegrityError:
        session.rollback()  # a concurrent checkout stored the same rate (same idempotency key, same id)
    return created["id"]


def _add_customer(session, host, settings, purchase: Purchase, user, params: dict) -> None:
    customer = session.scalar(select(Customer.stripe_customer_id).where(
        Customer.user_id == purchase.user_id, Customer.livemode == settings.livemode))
    if customer:
        params["customer"] = customer
    else:
        params["customer_creation"] = "always"
        params["customer_email"] = host.user_email(user)
