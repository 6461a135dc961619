"""Simple resources: customers, tax rates, coupons, promotion codes, products and prices."""

from __future__ import annotations

import re
import secrets
from typing import Any

from .errors import invalid_param, missing_param
from .ids import customer_id, new_id, random_string
from .params import Params
from .state import SandboxState, locked

NULL_ADDRESS = {"city": None, "country": None, "line1": None, "line2": None, "postal_code": None, "state": None}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

CUSTOMER_PARAMS = {
    "address", "balance", "business_name", "description", "email", "individual_name",
    "invoice_prefix", "metadata", "name", "phone", "preferred_locales", "tax_exempt",
}
TAX_RATE_PARAMS = {
    "active", "country", "description", "display_name", "inclusive", "jurisdiction", "metadata",
    "percentage", "state", "tax_type",
}
COUPON_PARAMS = {
    "amount_off", "currency", "duration", "duration_in_months", "id", "max_redemptions",
    "metadata", "name", "percent_off", "redeem_by",
}
PROMOTION_CODE_PARAMS = {
    "active", "code", "customer", "expires_at", "max_redemptions", "metadata", "promotion", "restrictions",
}

SEEDED_PROMOTIONS = (("WELCOME10", 10), ("HALF", 50))


def valid_email(value: str) -> bool:
    """A loose check of an email address, like Stripe's."""
    return bool(_EMAIL.match(value))


# -- customers -----------------------------------------------------------------


def customer_object(state: SandboxState, *, email: str | None, name: str | None = None,
                    metadata: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
    """A customer shaped like Stripe's."""
    return {
        "id": customer_id(), "object": "customer", "address": fields.get("address"), "balance": fields.get("balance", 0),
        "business_name": fields.get("business_name"), "created": state.now(), "currency": None,
        "customer_account": None, "default_source": None, "delinquent": False,
        "description": fields.get("description"), "discount": None, "email": email,
        "individual_name": fields.get("individual_name"),
        "invoice_prefix": fields.get("invoice_prefix") or random_string(8, "0123456789ABCDEF"),
        "invoice_settings": {"custom_fields": None, "default_payment_method": None, "footer": None,
                             "rendering_options": None},
        "livemode": False, "metadata": metadata or {}, "name": name, "next_invoice_sequence": 1,
        "phone": fields.get("phone"), "preferred_locales": fields.get("preferred_locales", []),
        "shipping": None, "tax_exempt": fields.get("tax_exempt", "none"), "test_clock": None,
    }


@locked
def create_customer(state: SandboxState, params: Params) -> dict[str, Any]:
    """``POST /v1/customers``."""
    params.reject_unimplemented(CUSTOMER_PARAMS)
    email = params.string("email", max_length=512)
    if email is not None and not valid_email(email):
        raise invalid_param("email", f"Invalid email address: {email}", code="email_invalid")
    customer = customer_object(
        state, email=email, name=params.string("name", max_length=256), metadata=params.metadata(),
        description=params.string("description"), phone=params.string("phone"),
        address=_address(params.sub("address")), balance=params.integer("balance", default=0),
        business_name=params.string("business_name"), individual_name=params.string("individual_name"),
        invoice_prefix=params.string("invoice_prefix", max_length=12),
        preferred_locales=params.strings("preferred_locales"),
        tax_exempt=params.string("tax_exempt", default="none", choices=("exempt", "none", "reverse")),
    )
    state.add(customer)
    state.emit("customer.created", customer)
    return customer


def _address(params: Params) -> dict[str, Any] | None:
    if not params.data:
        return None
    params.reject_unimplemented(NULL_ADDRESS)
    return {key: params.string(key) for key in NULL_ADDRESS}


# -- tax rates -----------------------------------------------------------------


@locked
def create_tax_rate(state: SandboxState, params: Params) -> dict[str, Any]:
    """``POST /v1/tax_rates``."""
    params.reject_unimplemented(TAX_RATE_PARAMS)
    display_name = params.string("display_name", required=True, max_length=50)
    percentage = params.decimal("percentage", required=True)
    inclusive = params.boolean("inclusive", required=True)
    if percentage < 0 or percentage > 100:
        raise invalid_param("percentage", "The percentage must be between 0 and 100.")
    rate = {
        "id": new_id("txr"), "object": "tax_rate", "active": params.boolean("active", default=True),
        "country": params.string("country"), "created": state.now(),
        "description": params.string("description"), "display_name": display_name,
        "effective_percentage": float(percentage), "flat_amount": None, "inclusive": inclusive,
        "jurisdiction": params.string("jurisdiction"), "jurisdiction_level": None, "livemode": False,
        "metadata": params.metadata(), "percentage": float(percentage), "rate_type": "percentage",
        "state": params.string("state"), "tax_type": params.string("tax_type"),
    }
    state.add(rate)
    state.emit("tax_rate.created", rate)
    return rate


# -- coupons and promotion codes -----------------------------------------------


def coupon_object(state: SandboxState, *, coupon_id: str, percent_off: float | None = None,
                  amount_off: int | None = None, currency: str | None = None, duration: str = "once",
                  name: str | None = None, **fields: Any) -> dict[str, Any]:
    """A coupon shaped like Stripe's."""
    return {
        "id": coupon_id, "object": "coupon", "amount_off": amount_off, "applies_to": None,
        "created": state.now(), "currency": currency, "duration": duration,
        "duration_in_months": fields.get("duration_in_months"), "livemode": False,
        "max_redemptions": fields.get("max_redemptions"), "metadata": fields.get("metadata", {}),
        "name": name, "percent_off": percent_off, "redeem_by": fields.get("redeem_by"),
        "times_redeemed": 0, "valid": True,
    }


@locked
def create_coupon(state: SandboxState, params: Params) -> dict[str, Any]:
    """``POST /v1/coupons``: either ``percent_off`` or ``amount_off`` with ``currency``."""
    params.reject_unimplemented(COUPON_PARAMS)
    percent_off = params.decimal("percent_off")
    amount_off = params.integer("amount_off", minimum=1)
    if (percent_off is None) == (amount_off is None):
        raise invalid_param("percent_off", "You must pass exactly one of percent_off or amount_off.")
    if percent_off is not None and not 0 < percent_off <= 100:
        raise invalid_param("percent_off", "percent_off must be greater than 0 and at most 100.")
    currency = params.string("currency", required=amount_off is not None)
    coupon_id = params.string("id", max_length=200) or random_string(8)
    if state.get(coupon_id, "coupon"):
        raise invalid_param("id", "Coupon already exists.", code="resource_already_exists")
    coupon = coupon_object(
        state, coupon_id=coupon_id, percent_off=float(percent_off) if percent_off is not None else None,
        amount_off=amount_off, currency=currency.lower() if currency else None,
        duration=params.string("duration", default="once", choices=("forever", "once", "repeating")),
        name=params.string("name", max_length=40), metadata=params.metadata(),
        max_redemptions=params.integer("max_redemptions", minimum=1),
        redeem_by=params.integer("redeem_by"), duration_in_months=params.integer("duration_in_months"),
    )
    state.add(coupon)
    state.emit("coupon.created", coupon)
    return coupon


def promotion_code_object(state: SandboxState, *, promo_id: str, code: str, coupon_id: str,
                          **fields: Any) -> dict[str, Any]:
    """A promotion code shaped like Stripe's (API 2025+: the coupon sits under ``promotion``)."""
    return {
        "id": promo_id, "object": "promotion_code", "active": fields.get("active", True), "code": code,
        "created": state.now(), "customer": fields.get("customer"), "customer_account": None,
        "expires_at": fields.get("expires_at"), "livemode": False,
        "max_redemptions": fields.get("max_redemptions"), "metadata": fields.get("metadata", {}),
        "promotion": {"coupon": coupon_id, "type": "coupon"},
        "restrictions": fields.get("restrictions") or {
            "currency_options": {}, "first_time_transaction": False,
            "minimum_amount": None, "minimum_amount_currency": None,
        },
        "times_redeemed": 0,
    }


@locked
def create_promotion_code(state: SandboxState, params: Params) -> dict[str, Any]:
    """``POST /v1/promotion_codes`` with ``promotion[type]=coupon&promotion[coupon]=...``."""
    params.reject_unimplemented(PROMOTION_CODE_PARAMS)
    promotion = params.sub("promotion")
    if not promotion.data:
        raise missing_param("promotion")
    promotion.string("type", required=True, choices=("coupon",))
    coupon = state.require(promotion.string("coupon", required=True), "coupon",
                           param="promotion[coupon]", status=400)
    code = params.string("code", max_length=500) or random_string(8, "ABCDEFGHJKLMNPQRSTUVWXYZ23456789")
    if find_promotion_code(state, code, active_only=True):
        raise invalid_param("code", f"An active promotion code with `code: {code}` already exists.")
    if params.has("customer"):
        state.require(params.string("customer"), "customer", param="customer", status=400)
    promo = promotion_code_object(
        state, promo_id=new_id("promo"), code=code, coupon_id=coupon["id"],
        active=params.boolean("active", default=True), customer=params.string("customer"),
        expires_at=params.integer("expires_at"), max_redemptions=params.integer("max_redemptions", minimum=1),
        metadata=params.metadata(), restrictions=_restrictions(params.sub("restrictions")),
    )
    state.add(promo)
    state.emit("promotion_code.created", promo)
    return promo


def _restrictions(params: Params) -> dict[str, Any] | None:
    if not params.data:
        return None
    params.reject_unimplemented({"first_time_transaction", "minimum_amount", "minimum_amount_currency"})
    return {
        "currency_options": {},
        "first_time_transaction": params.boolean("first_time_transaction", default=False),
        "minimum_amount": params.integer("minimum_amount", minimum=0),
        "minimum_amount_currency": params.string("minimum_amount_currency"),
    }


def find_promotion_code(state: SandboxState, code: str, *, active_only: bool = False) -> dict[str, Any] | None:
    """The promotion code with this customer-facing code (case-insensitive)."""
    wanted = code.strip().upper()
    for promo in state.all("promotion_code"):
        if promo["code"].upper() == wanted and (promo["active"] or not active_only):
            return promo
    return None


def usable_coupon(state: SandboxState, promo: dict[str, Any], currency: str, amount: int) -> dict[str, Any] | None:
    """The coupon behind a promotion code if it can be redeemed now on this amount, else None."""
    coupon = state.get(promo["promotion"]["coupon"], "coupon")
    now = state.now()
    if coupon is None or not promo["active"] or not coupon["valid"]:
        return None
    if promo["expires_at"] and promo["expires_at"] <= now or coupon["redeem_by"] and coupon["redeem_by"] <= now:
        return None
    if _exhausted(promo) or _exhausted(coupon):
        return None
    if coupon["amount_off"] is not None and coupon["currency"] != currency:
        return None
    minimum = promo["restrictions"].get("minimum_amount")
    if minimum and amount < minimum:
        return None
    return coupon


def _exhausted(obj: dict[str, Any]) -> bool:
    return obj.get("max_redemptions") is not None and obj["times_redeemed"] >= obj["max_redemptions"]


def seed_promotion_codes(state: SandboxState) -> None:
    """The codes every sandbox starts with: WELCOME10 (10 % off) and HALF (50 % off)."""
    for code, percent in SEEDED_PROMOTIONS:
        coupon = coupon_object(state, coupon_id=f"sbx_{code.lower()}", percent_off=float(percent),
                               name=f"{percent}% off")
        state.add(coupon)
        state.add(promotion_code_object(state, promo_id=f"promo_sbx{code}", code=code, coupon_id=coupon["id"]))


# -- products and prices (created inline by Checkout) ------------------------------


def product_object(state: SandboxState, name: str, description: str | None, metadata: dict[str, str]) -> dict[str, Any]:
    """A product as ``price_data[product_data]`` creates it."""
    now = state.now()
    return {
        "id": new_id("prod", 14), "object": "product", "active": False, "created": now,
        "default_price": None, "description": description, "images": [], "livemode": False,
        "marketing_features": [], "metadata": metadata, "name": name, "package_dimensions": None,
        "shippable": None, "statement_descriptor": None, "tax_code": None, "type": "service",
        "unit_label": None, "updated": now, "url": None,
    }


def price_object(state: SandboxState, product_id: str, currency: str, unit_amount: int,
                 tax_behavior: str) -> dict[str, Any]:
    """A one-time price as ``price_data`` creates it (inactive, like Stripe's inline prices)."""
    return {
        "id": new_id("price"), "object": "price", "active": False, "billing_scheme": "per_unit",
        "created": state.now(), "currency": currency, "custom_unit_amount": None, "livemode": False,
        "lookup_key": None, "metadata": {}, "nickname": None, "product": product_id, "recurring": None,
        "tax_behavior": tax_behavior, "tiers_mode": None, "transform_quantity": None, "type": "one_time",
        "unit_amount": unit_amount, "unit_amount_decimal": str(unit_amount),
    }


def fingerprint() -> str:
    """A payment method fingerprint."""
    return secrets.token_hex(8)

