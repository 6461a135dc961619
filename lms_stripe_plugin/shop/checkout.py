"""Starting a purchase: refusals, the purchase row, and the Stripe Checkout Session.

The browser sends a course id only; every amount comes from our tables. A click costs one Stripe call
for a returning learner (the customer, the tax rate and the Payment Method Configuration of the wallets
are remembered), none when the learner's open session for the course can be reused (double click, back
button). A learner's first click creates their Stripe customer first, in their language (the invoice's),
and a click in another language than their invoices' changes that language first.

Two steps, each in a transaction of the caller's (the view commits after each): `reserve` reads and
writes our rows and plans the session; `open_session` calls Stripe first (no transaction is held across
the call) and then records Stripe's answer.
"""
from __future__ import annotations

from copy import copy
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, NoReturn, cast

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..core.state import PluginState
from ..accounts import connect, settings as payment_settings
from ..accounts import wallets
from ..core import audit, jobs
from ..core.enums import LIVE_PURCHASE, AuditAction, PurchaseStatus
from ..core.i18n import current_locale, gettext as _
from ..core.models import Customer, Purchase, utcnow
from ..core.txn import transition, transition_if
from ..core.urls import public_url
from ..errors import GatewayError, NotFound, NotPurchasable, PaymentsError
from ..gateway.types import SessionCreateParams, SessionCreateParamsLineItem
from ..host import audience_allows
from ..billing import customers, legal, taxes
from . import currencies, deposits, offers

#: An open session is reused only if it stays valid at least this long.
REUSE_MARGIN = timedelta(minutes=5)
STRIPE_MIN_EXPIRY = timedelta(minutes=30)
KLARNA_CURRENCIES = frozenset("AUD CAD CHF CZK DKK EUR GBP NOK NZD PLN RON SEK USD".split())


def live_purchase(session, user_id: str, course_id: str) -> Purchase | None:
    return session.scalar(select(Purchase).where(Purchase.user_id == user_id, Purchase.course_id == course_id,
                                                 Purchase.status.in_(LIVE_PURCHASE)))


def _expiry(purchase: Purchase) -> datetime:
    """When the purchase's session expires (one without an expiry is past it)."""
    moment = purchase.expires_at or datetime.min
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def check_purchasable(state: PluginState, user, course, settings, offer) -> None:
    """Raise `NotPurchasable` with a message for the learner when this user cannot buy this course."""
    host = state.host
    if not settings.active:
        raise NotPurchasable(_("Online payment is not available at the moment."))
    if settings.requests_only:
        raise NotPurchasable(_("This school does not sell its courses online."))
    if offer is None or offer.price is None:
        raise NotPurchasable(_("This course is free: enroll from the course page."))
    if not offer.on_sale:
        raise NotPurchasable(_("This course is not on sale."))
    if not (audience_allows(offer.audience, host.user_audience(user)) and host.can_purchase(user, course)):
        raise NotPurchasable(_("This course is not available for purchase with your account."))
    if host.is_enrolled(user, course):
        raise NotPurchasable(_("You are already enrolled in this course."))


def offer_for(state: PluginState, settings, user, course_id: str, currency: str | None = None):
    """The course's offer as ``user`` buys it, in ``currency`` (one the school accepts: the one shown on the page
    the learner clicked) or else in the learner's currency (`currencies.of_viewer`); raise `NotPurchasable`
    when the course has no price in it. None for a course without an offer."""
    stored = offers.get_offer(state.session, course_id)
    if stored is None or stored.price is None:
        return stored
    if currency is None or not settings.several_currencies or currency not in settings.currencies:
        currency = currencies.of_viewer(state, settings, user)
    offer = offers.in_currency(state.session, stored, currency)
    if offer is None:
        raise NotPurchasable(_("This course is not sold in %(currency)s.", currency=currency))
    return offer


def check_not_bought(session, user_id: str, course_id: str) -> None:
    """Raise `NotPurchasable` when the learner's payment for the course is done or under way."""
    purchase = live_purchase(session, user_id, course_id)
    if purchase is not None and purchase.status == PurchaseStatus.PAID:
        raise NotPurchasable(_("You have already bought this course."))
    if purchase is not None and purchase.status == PurchaseStatus.PROCESSING:
        raise NotPurchasable(_("Your payment for this course is processing: you will be enrolled as soon as it "
                               "is confirmed."))
    if purchase is not None and purchase.status == PurchaseStatus.OPEN and purchase.invoice is not None:
        raise NotPurchasable(_("Your balance paid part of this course: pay the rest of its invoice in My payments."))


@dataclass(frozen=True)
class CheckoutPlan:
    """What `open_session` needs, as plain values: it runs after the caller's commit, and calls Stripe
    before touching the database."""

    purchase_id: int
    user_id: str
    course_id: str
    url: str | None  # the open session's page, when it can be reused
    params: SessionCreateParams
    tax_rate: taxes.TaxRateWanted | None = None  # a Stripe tax rate to create first
    configuration: wallets.ConfigurationWanted | None = None  # a Payment Method Configuration to create first
    customer: customers.CustomerWanted | None = None  # the learner's Stripe customer, to create first
    relocalize: tuple[str, str] | None = None  # (known customer, language) whose invoices' language to change


def reserve(state: PluginState, user, course, currency: str | None = None) -> CheckoutPlan:
    """Check the learner may buy, then reuse their open purchase of the course or write a new one; in
    ``currency`` when the school accepts several (see `offer_for`)."""
    session, host = state.session, state.host
    user_id, course_id = host.user_id(user), host.course_id(course)
    settings = payment_settings.load(session)
    offer = offer_for(state, settings, user, course_id, currency)
    check_purchasable(state, user, course, settings, offer)
    check_not_bought(session, user_id, course_id)
    purchase = live_purchase(session, user_id, course_id)
    terms = deposits.terms(state, offer, course) if offer is not None else None
    if purchase is None or not _still_usable(purchase, offer, terms):
        if purchase is not None:
            retire(state, purchase)
        purchase = _insert_purchase(session, user_id, course_id, offer, settings, terms)
    return _plan(state, settings, purchase, user, course)


def open_session(state: PluginState, plan: CheckoutPlan) -> str:
    """Create the Checkout Session at Stripe (and first what it needs that is new: the learner's customer,
    the VAT rate, the wallets' configuration), then record it."""
    settings = payment_settings.load(state.session)
    made = _Made()
    params = plan.params
    try:
        params = connect.with_application_fee(_prepare(state, settings, plan, made))
        created = state.gateway.create_checkout_session(params, api_key=settings.secret_key,
                                                        idempotency_key=f"lms-checkout-{plan.purchase_id}")
    except NotFound:
        _forget_configuration(state, params)
        raise
    except GatewayError as err:
        _remember_created(state, settings, plan, made)
        if err.answered or not err.retryable:
            _give_up(state.session, plan.purchase_id, err)  # this key's answer is final: start afresh
        raise
    _remember_created(state, settings, plan, made)
    purchase = state.session.get(Purchase, plan.purchase_id, with_for_update=True, populate_existing=True)
    recorded = {"stripe_checkout_session_id": created["id"], "checkout_url": created["url"]}
    if not transition(state.session, purchase, (PurchaseStatus.OPEN,), PurchaseStatus.OPEN, **recorded):
        state.session.execute(update(Purchase).where(Purchase.id == purchase.id).values(**recorded))
        _withdraw(state, created["id"])
    audit.record(state.session, AuditAction.CHECKOUT_STARTED, actor_id=plan.user_id, user_id=plan.user_id,
                 course_id=plan.course_id, purchase_id=plan.purchase_id, checkout_session=created["id"])
    return created["url"]


@dataclass
class _Made:
    """What `open_session` created or changed at Stripe before the session: recorded whatever became of it."""

    customer: str | None = None
    relocalized: bool = False
    configuration: str | None = None
    rate: str | None = None


def _prepare(state: PluginState, settings, plan: CheckoutPlan, made: _Made) -> SessionCreateParams:
    """Create at Stripe what the session needs and is new, noting each in ``made``; the session's params."""
    params = plan.params
    if plan.customer is not None:
        made.customer = customers.create(state, settings, plan.customer)
        params = _with_customer(params, made.customer, settings)
    elif plan.relocalize is not None:
        customers.set_locale(state, settings, *plan.relocalize)
        made.relocalized = True
    if plan.configuration is not None:
        made.configuration = wallets.create(state, settings, plan.configuration)
        params = wallets.with_configuration(params, made.configuration)
    if plan.tax_rate is not None:
        made.rate = taxes.create(state, settings, plan.tax_rate)
        params = taxes.with_tax_rate(params, made.rate)
    return params


def _still_usable(purchase: Purchase, offer, terms: deposits.DepositTerms | None) -> bool:
    same_offer = (purchase.amount, purchase.currency, purchase.vat_rate, purchase.deposit_amount) == (
        offer.amount, offer.currency, offer.vat_rate, terms.deposit.amount if terms else None)
    # A session still to create must expire at least 30 minutes ahead (Stripe's minimum).
    margin = REUSE_MARGIN if purchase.checkout_url else STRIPE_MIN_EXPIRY + REUSE_MARGIN
    return same_offer and _expiry(purchase) > utcnow() + margin


def _give_up(session, purchase_id: int, err: PaymentsError) -> None:
    """Fail the purchase on Stripe's final answer for its key, unless another click of the learner (the same
    key) recorded the purchase's session meanwhile: the learner was sent to pay that one, so the purchase
    stays open for its payment. Both are conditional writes (on SQLite, which has no row locks, too): whichever
    comes second sees what the first wrote. The row is locked, as `open_session` locks it to record a session."""
    purchase = session.get(Purchase, purchase_id, with_for_update=True, populate_existing=True)
    transition_if(session, purchase, (PurchaseStatus.OPEN,), PurchaseStatus.FAILED,
                  (Purchase.stripe_checkout_session_id.is_(None),), failure_reason=err.message)


def _withdraw(state: PluginState, session_id: str) -> NoReturn:
    """A session Stripe made for a purchase that another click of the learner failed or retired while Stripe
    answered this one: it is recorded (should it be paid all the same), expired at Stripe once this commits,
    and the learner is not sent to pay it."""
    jobs.defer(state.session, offers.expire_checkout_sessions, [session_id])
    raise NotPurchasable(_("Your purchase changed while its payment page was being opened: go back to the course "
                           "and buy it again."))


def retire(state: PluginState, purchase: Purchase) -> None:
    """Retire an open purchase; once that is committed, its session (if any) is expired at Stripe, so
    that an old tab cannot pay it."""
    transition(state.session, purchase, (PurchaseStatus.OPEN,), PurchaseStatus.EXPIRED)
    if purchase.stripe_checkout_session_id:
        jobs.defer(state.session, offers.expire_checkout_sessions, [purchase.stripe_checkout_session_id])


def _insert_purchase(session, user_id, course_id, offer, settings, terms: deposits.DepositTerms | None) -> Purchase:
    expiry = current_app.config["LMS_STRIPE_CHECKOUT_EXPIRY"]
    purchase = Purchase(user_id=user_id, course_id=course_id, status=PurchaseStatus.OPEN, amount=offer.amount,
                        currency=offer.currency, vat_rate=offer.vat_rate, livemode=settings.livemode,
                        expires_at=(utcnow() + timedelta(seconds=expiry)).replace(microsecond=0),
                        locale=current_locale())
    if terms is not None:
        purchase.deposit_amount, purchase.access_on_deposit = terms.deposit.amount, terms.access_on_deposit
        purchase.balance_due_at = deposits.end_of(terms.balance_due)
    try:
        with session.begin_nested():
            session.add(purchase)
    except IntegrityError:
        # Another click of the same learner got there first: use its purchase (same idempotency key).
        other = live_purchase(session, user_id, course_id)
        if other is None or other.status != PurchaseStatus.OPEN:
            raise NotPurchasable(_("You have already bought this course."))
        return other
    return purchase


def _plan(state: PluginState, settings, purchase: Purchase, user, course) -> CheckoutPlan:
    plan = CheckoutPlan(purchase_id=purchase.id, user_id=purchase.user_id, course_id=purchase.course_id,
                        url=purchase.checkout_url, params={})
    if purchase.checkout_url:
        return plan
    configuration = wallets.wanted(settings)
    configuration_id = wallets.known(state.session, configuration, livemode=settings.livemode) \
        if configuration else None
    if configuration_id is not None:
        configuration = None  # known: nothing to create
    params = _session_params(state, settings, purchase, user, course, configuration_id)
    customer, wanted, relocalize = _customer_plan(state, settings, purchase, user)
    if customer is not None:
        params = _with_customer(params, customer, settings)
    tax_rate = None
    if not settings.automatic_tax and purchase.vat_rate and purchase.deposit_amount is None:
        rate = taxes.wanted(purchase.vat_rate)
        known = taxes.known(state.session, rate, livemode=settings.livemode)
        if known:
            params = taxes.with_tax_rate(params, known)
        else:
            tax_rate = rate
    return replace(plan, params=params, tax_rate=tax_rate, configuration=configuration, customer=wanted,
                   relocalize=relocalize)


def _customer_plan(state: PluginState, settings, purchase: Purchase, user) -> tuple[
        str | None, customers.CustomerWanted | None, tuple[str, str] | None]:
    """The learner's known customer, or the one to create, and whether to change its invoices' language to
    this click's (the learner's now)."""
    locale = current_locale()
    known = customers.known_customer(state.session, purchase.user_id, livemode=settings.livemode)
    if known is None:
        host = state.host
        return None, customers.CustomerWanted(purchase.user_id, host.user_email(user),
                                              host.user_display_name(user), locale), None
    return known.stripe_id, None, (known.stripe_id, locale) if known.locale != locale else None


def _with_customer(params: SessionCreateParams, customer: str, settings) -> SessionCreateParams:
    with_customer = copy(params)
    with_customer["customer"] = customer
    if "automatic_tax" in params:
        # Stripe Tax needs the buyer's address: Checkout collects it, and saves it on the customer (a
        # deposit's session has no tax of its own, and collects no address).
        with_customer["customer_update"] = {"address": "auto"}
    return with_customer


def _session_params(state: PluginState, settings, purchase: Purchase, user, course,
                    configuration_id: str | None = None) -> SessionCreateParams:
    """The session's parameters; its payment methods listed, or from the wallets' configuration when known."""
    host = state.host
    metadata = {"lms_purchase_id": str(purchase.id), "lms_user_id": purchase.user_id,
                "lms_course_id": purchase.course_id}
    title = host.course_title(course)[:250]
    invoice_data = legal.checkout_invoice_data(legal.mentions(settings, current_locale()))
    invoice_data.update({"description": title, "metadata": metadata})
    line: SessionCreateParamsLineItem = {
        "quantity": 1,
        "price_data": {"currency": purchase.currency.lower(), "unit_amount": purchase.amount,
                       "tax_behavior": "inclusive",
                       "product_data": {"name": title, "metadata": {"lms_course_id": purchase.course_id}}},
    }
    params: SessionCreateParams = {
        "mode": "payment",
        "line_items": [line],
        "invoice_creation": {"enabled": True, "invoice_data": invoice_data},
        "payment_intent_data": {"metadata": metadata},
        "client_reference_id": f"lms-purchase-{purchase.id}",
        "metadata": metadata,
        "locale": cast(Any, current_locale()),  # "en" or "fr", both Stripe Checkout locales
        "expires_at": int(_expiry(purchase).timestamp()),
        "success_url": public_url("lms_stripe.checkout_success") + "?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": public_url("lms_stripe.checkout_cancel", purchase_id=purchase.id),
    }
    params.update(wallets.method_params(payment_methods(settings, purchase), configuration_id))
    if purchase.deposit_amount is not None:
        _as_deposit(params, purchase, title)
    elif settings.automatic_tax:
        # Stripe Tax needs the buyer's address: Checkout collects it (and saves it on the customer, which
        # `_with_customer` adds).
        params["automatic_tax"] = {"enabled": True}
        params["billing_address_collection"] = "required"
    if settings.vouchers_enabled and purchase.deposit_amount is None:  # a code would lower a deposit, not the price
        params["allow_promotion_codes"] = True
    if settings.terms_url:
        params["consent_collection"] = {"terms_of_service": "required"}
        params["custom_text"] = {"terms_of_service_acceptance": {
            "message": _("I accept the [terms of sale](%(url)s).", url=settings.terms_url)}}
    return params


def _as_deposit(params: SessionCreateParams, purchase: Purchase, title: str) -> None:
    """A deposit's session charges the deposit only, and creates no invoice: the invoice of the full price is
    issued once the deposit is paid, and the deposit attached to it (shop/deposits.py). Its line carries no
    VAT of its own: VAT is on the invoice, on the whole price."""
    line = params["line_items"][0]
    line["price_data"] = {"currency": purchase.currency.lower(), "unit_amount": purchase.deposit_amount or 0,
                          "product_data": {"name": _("Deposit: %(title)s", title=title)[:250],
                                           "metadata": {"lms_course_id": purchase.course_id}}}
    del params["invoice_creation"]


PaymentMethod = Literal["card", "klarna", "sepa_debit"]


def payment_methods(settings, purchase: Purchase) -> list[PaymentMethod]:
    """Card always (Apple Pay and Google Pay ride on it); Klarna from its minimum; SEPA in euros.

    Sent as ``allowed_payment_method_types``: a filter on the methods Stripe finds eligible for the
    session, the parameter of the pinned API (it has no ``payment_method_types`` on Checkout Sessions)."""
    methods: list[PaymentMethod] = ["card"]
    if settings.klarna_enabled and purchase.currency in KLARNA_CURRENCIES:
        minimum = settings.klarna_minimum
        if minimum is None or (purchase.currency == settings.default_currency and purchase.amount >= minimum):
            methods.append("klarna")
    if settings.sepa_debit_enabled and purchase.currency == "EUR":
        methods.append("sepa_debit")
    return methods


def _remember_created(state: PluginState, settings, plan: CheckoutPlan, made: _Made) -> None:
    """Record what `open_session` created or changed at Stripe before the session, whatever became of it."""
    session = state.session
    if made.rate is not None and plan.tax_rate is not None:
        taxes.remember(session, plan.tax_rate, made.rate, livemode=settings.livemode)
    if made.configuration is not None and plan.configuration is not None:
        wallets.remember(session, plan.configuration, made.configuration, livemode=settings.livemode)
    if made.customer is not None and plan.customer is not None:
        customers.remember(session, plan.user_id, made.customer, livemode=settings.livemode,
                           locale=plan.customer.locale)
    if made.relocalized and plan.relocalize is not None:
        customers.remember_locale(session, *plan.relocalize)


def _forget_configuration(state: PluginState, params: SessionCreateParams) -> None:
    # Stripe knows no object by an id we sent: if it is the configuration (the keys now open another
    # account), the next click creates it again; the purchase stays open for that click.
    configuration_id = params.get("payment_method_configuration")
    if configuration_id:
        wallets.forget(state.session, configuration_id)
