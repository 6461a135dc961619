"""``lms.course.settings_form``, ``lms.course.settings_saved`` and ``lms.course.detail_rendering``."""
from __future__ import annotations

from flask import url_for
from marshmallow import ValidationError

from ..accounts import settings as payment_settings
from ..core import schools
from ..core.enums import PaymentPlan, PurchaseStatus
from ..core.urls import sign_in_url
from ..host import AUDIENCES, audience_allows, course_start
from ..money import Money
from ..shop import currencies, deposits, offers
from ..shop.checkout import live_purchase
from ..web.forms import (PRICING_PREFIX, CoursePricingSchema, amount_input, first_errors, format_rate_input,
                         in_order, price_field)
from ..web.rendering import render_fragment
from ._state import plugin_state


def _sells(state, course) -> bool:
    """The plugin prices and sells this course: the request's school's, which sells courses in the catalog."""
    return (state is not None and schools.owns_course(state.host, course)
            and not payment_settings.load(state.session).requests_only)


def settings_form(sender, course, form=None, errors=None, **_):
    """The pricing section of the course settings form, with the saved (or just submitted) values."""
    state = plugin_state(sender)
    if not _sells(state, course):
        return None
    course_id = state.host.course_id(course)
    offer = offers.get_offer(state.session, course_id)
    current = payment_settings.load(state.session)
    values = _form_values(offer, current, form)
    others = tuple(code for code in current.currencies if code != values["currency"]) \
        if current.several_currencies else ()
    values.update(_price_values(state.session, offer, others, form))
    own = {name: message for name, message in (errors or {}).items() if name.startswith(PRICING_PREFIX)}
    return render_fragment(
        "lms_stripe/course_settings.html", values=values, errors=own, prefix=PRICING_PREFIX,
        other_prices=[(code, price_field(code)) for code in others],
        audiences=AUDIENCES, breakdown=_breakdown(offer, form), settings=current,
        preview_url=url_for("lms_stripe.pricing_preview"), course_start=course_start(state.host, course),
        deposit=deposits.deposit_amount(offer) if offer is not None else None,
    )


def _breakdown(offer, form):
    """Net, VAT and fees of the price the form shows: the one just typed after a refused save (none if it
    cannot be read), else the one stored."""
    if form is not None:
        try:
            data = CoursePricingSchema.load_price({name: form.get(PRICING_PREFIX + name)
                                                   for name in CoursePricingSchema.PRICE})
        except ValidationError:
            return None
        return offers.breakdown(Money(data["amount"], data["currency"]), data["vat_rate"])
    if offer is not None and offer.price is not None:
        return offers.breakdown(offer.price, offer.vat_rate)
    return None


def _price_values(session, offer, accepted: tuple[str, ...], form) -> dict:
    """The fields of the prices in the accepted currencies besides the offer's own: typed, or stored."""
    if form is not None:
        return {price_field(code): form.get(PRICING_PREFIX + price_field(code), "") for code in accepted}
    stored = offers.prices_of(session, offer.course_id) if offer is not None and offer.price is not None else {}
    return {price_field(code): amount_input(stored.get(code), code) for code in accepted}


def _form_values(offer, current, form) -> dict:
    if form is not None:
        return {name: form.get(PRICING_PREFIX + name, "") for name in CoursePricingSchema.NAMES}
    if offer is None:
        return {"paid": "", "price": "", "currency": current.default_currency,
                "vat_rate": format_rate_input(current.default_vat_rate), "audience": "public", "on_sale": "on",
                **_plan_values(None)}
    return {
        "paid": "on" if offer.is_paid else "",
        "price": amount_input(offer.amount, offer.currency) if offer.price else "",
        "currency": offer.currency or current.default_currency,
        "vat_rate": format_rate_input(offer.vat_rate),
        "audience": offer.audience,
        "on_sale": "on" if offer.on_sale else "",
        **_plan_values(offer),
    }


def _plan_values(offer) -> dict:
    """The deposit fields as the form shows them (full payment, 30 % and access on the deposit by default)."""
    if offer is None or offer.payment_plan != PaymentPlan.DEPOSIT:
        return {"payment_plan": "full", "deposit_kind": "percent", "deposit_value": "30", "balance_due": "date",
                "balance_due_date": "", "balance_due_days": "", "deposit_access": "deposit"}
    by_amount = offer.deposit_amount is not None
    return {
        "payment_plan": "deposit", "deposit_kind": "amount" if by_amount else "percent",
        "deposit_value": amount_input(offer.deposit_amount, offer.currency) if by_amount
        else format_rate_input(offer.deposit_percent or 0),
        "balance_due": str(offer.balance_due or "date"),
        "balance_due_date": offer.balance_due_date.isoformat() if offer.balance_due_date else "",
        "balance_due_days": "" if offer.balance_due_days is None else str(offer.balance_due_days),
        "deposit_access": str(offer.deposit_access or "deposit"),
    }


def settings_saved(sender, course, form, **_):
    """Validate and store the pricing in the host's transaction (the host's commit saves it with the
    course); answer a dict of field errors (nothing stored) or None."""
    state = plugin_state(sender)
    if not _sells(state, course):
        return None
    current = payment_settings.load(state.session)
    schema = CoursePricingSchema(course_start=course_start(state.host, course),
                                 currencies=current.currencies if current.several_currencies else ())
    try:
        data = schema.load_form(form)
    except ValidationError as err:
        errors = in_order(first_errors(err.messages), schema.names)
        return {PRICING_PREFIX + name: message for name, message in errors.items()}
    actor = state.host.current_user()
    offers.save_offer(state.session, state.host.course_id(course), data,
                       actor_id=state.host.user_id(actor) if actor is not None else None)
    return None


def detail_rendering(sender, course, user, **_):
    """Price and Buy button, or "Enrolled" / "Pending payment", for the course page."""
    state = plugin_state(sender)
    if not _sells(state, course):
        return None
    host = state.host
    course_id = host.course_id(course)
    stored = offers.get_offer(state.session, course_id)
    if stored is None or stored.price is None:
        return render_fragment("lms_stripe/course_detail.html", offer=None, status="free")
    currency = currencies.of_viewer(state, payment_settings.load(state.session), user)
    offer = offers.in_currency(state.session, stored, currency)
    if offer is None:
        return render_fragment("lms_stripe/course_detail.html", offer=None, status="not_in_currency",
                               currency=currency)
    status = _detail_status(state, offer, course, user)
    balance = deposits.balance_state(state.session, host.user_id(user), course_id) if user is not None else None
    return render_fragment(
        "lms_stripe/course_detail.html", offer=offer, status=status, balance=balance,
        terms=deposits.terms(state, offer, course) if status in ("buy", "resume") else None,
        checkout_url=url_for("lms_stripe.checkout", course_id=course_id), currency=currency,
        sign_in_url=sign_in_url(host, host.course_url(course)) if status == "sign_in" else None,
    )


def _detail_status(state, offer, course, user) -> str:
    host = state.host
    if user is None:
        return "sign_in"
    if host.is_enrolled(user, course):
        return "enrolled"
    purchase = live_purchase(state.session, host.user_id(user), offer.course_id)
    if purchase is not None and purchase.status in (PurchaseStatus.PROCESSING, PurchaseStatus.PAID):
        return "pending"
    if not payment_settings.load(state.session).active:
        return "unavailable"
    if not offer.on_sale:
        return "not_on_sale"
    if not (audience_allows(offer.audience, host.user_audience(user)) and host.can_purchase(user, course)):
        return "not_for_you"
    return "resume" if purchase is not None else "buy"
