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
    "invoice_prefix", "invoice_settings", "metadata", "name", "phone", "preferred_locales", "tax_exempt",
}
CUSTOMER_UPDATE_PARAMS = CUSTOMER_PARAMS | {"next_invoice_sequence"}
# Lengths from Stripe's API reference ("This may be up to 512 characters", ...).
_CUSTOMER_LIMITS = {"email": 512, "name": 256, "phone": 20, "description": 5000, "business_name": 150,
                    "individual_name": 150}
# A language tag such as ``fr``, ``fr-FR`` or ``zh-Hant-TW``. Stripe's list of accepted locales is not
# published with the API; the sandbox checks the shape only.
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}$")
_INVOICE_PREFIX = re.compile(r"^[A-Z0-9]{1,12}$")
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
        "invoice_settings": fields.get("invoice_settings") or empty_invoice_settings(),
        "livemode": False, "metadata": metadata or {}, "name": name, "next_invoice_sequence": 1,
        "phone": fields.get("phone"), "preferred_locales": fields.get("preferred_locales", []),
        "shipping": None, "tax_exempt": fields.get("tax_exempt", "none"), "test_clock": None,
    }


def empty_invoice_settings() -> dict[str, Any]:
    """A customer's ``invoice_settings`` when nothing was set."""
    return {"custom_fields": None, "default_payment_method": None, "footer": None, "rendering_options": None}


@locked
def create_customer(state: SandboxState, params: Params) -> dict[str, Any]:
    """``POST /v1/customers``."""
    params.reject_unimplemented(CUSTOMER_PARAMS)
    fields = {key: reader(params) for key, reader in _CUSTOMER_FIELDS.items() if key in params.data}
    email = fields.pop("email", None)
    name = fields.pop("name", None)
    metadata = fields.pop("metadata", None)
    customer = customer_object(state, email=email, name=name, metadata=metadata, **fields)
    state.add(customer)
    state.emit("customer.created", customer)
    return customer


@locked
def update_customer(state: SandboxState, customer_id: str, params: Params) -> dict[str, Any]:
    """``POST /v1/customers/{id}``: changes what is sent, fires ``customer.updated`` with the previous values.

    ``metadata`` is merged (a key sent empty is removed, ``metadata=""`` empties it), as everywhere
    in Stripe's API; ``address=""``, ``business_name=""`` and ``individual_name=""`` unset them.
    """
    params.reject_unimplemented(CUSTOMER_UPDATE_PARAMS)
    customer = state.require(customer_id, "customer")
    changes = {key: reader(params) for key, reader in _CUSTOMER_FIELDS.items() if key in params.data}
    if "metadata" in changes:
        changes["metadata"] = merged_metadata(customer["metadata"], params)
    if "invoice_settings" in changes:
        changes["invoice_settings"] = {**customer["invoice_settings"], **_sent_invoice_settings(params)}
    if "next_invoice_sequence" in params.data:
        changes["next_invoice_sequence"] = params.integer("next_invoice_sequence", minimum=1)
    previous = {key: customer[key] for key, value in changes.items() if customer[key] != value}
    customer.update(changes)
    if previous:
        state.emit("customer.updated", customer, previous)
    return customer


def merged_metadata(current: dict[str, str], params: Params, key: str = "metadata") -> dict[str, str]:
    """Stripe's metadata update: sent keys replace, keys sent empty go, ``metadata=""`` clears all."""
    if params.raw(key) == "":
        return {}
    sent = params.raw(key) or {}
    params.metadata(key)  # Stripe's limits on keys and values
    merged = {**current, **sent}
    return {k: v for k, v in merged.items() if v != ""}


def _email(params: Params) -> str | None:
    email = params.string("email", max_length=_CUSTOMER_LIMITS["email"])
    if email is not None and not valid_email(email):
        raise invalid_param("email", f"Invalid email address: {email}", code="email_invalid")
    return email


def _limited(key: str) -> Any:
    return lambda params: params.string(key, max_length=_CUSTOMER_LIMITS[key]) or None


def _preferred_locales(params: Params) -> list[str]:
    locales = params.strings("preferred_locales")
    for index, locale in enumerate(locales):
        if not _LOCALE.match(locale):
            raise invalid_param(f"preferred_locales[{index}]", f"Invalid locale: {locale}")
    return locales


def _invoice_prefix(params: Params) -> str | None:
    prefix = params.string("invoice_prefix")
    if prefix is not None and not _INVOICE_PREFIX.match(prefix):
        raise invalid_param("invoice_prefix", "Invoice prefix must be 1-12 uppercase letters or numbers.")
    return prefix


def _sent_invoice_settings(params: Params) -> dict[str, Any]:
    settings = params.sub("invoice_settings")
    settings.reject_unimplemented({"custom_fields", "footer", "rendering_options"})
    sent: dict[str, Any] = {}
    if "custom_fields" in settings.data:
        sent["custom_fields"] = custom_fields(settings, "custom_fields") or None
    if "footer" in settings.data:
        sent["footer"] = settings.string("footer", max_length=5000) or None
    if "rendering_options" in settings.data:
        options = settings.sub("rendering_options")
        options.reject_unimplemented({"amount_tax_display"})
        display = options.string("amount_tax_display", choices=("", "exclude_tax", "include_inclusive_tax"))
        sent["rendering_options"] = {"amount_tax_display": display or None, "template": None} if options.data else None
    return sent


def custom_fields(params: Params, key: str) -> list[dict[str, str]]:
    """``custom_fields``: at most 4, each a name of up to 40 characters and a value of up to 140."""
    fields = params.objects(key)
    if len(fields) > 4:
        raise invalid_param(params.name(key), f"You can have at most 4 custom fields (got {len(fields)}).")
    return [{"name": f.string("name", required=True, max_length=40), "value": f.string("value", required=True,
                                                                                       max_length=140)}
            for f in fields]


_CUSTOMER_FIELDS: dict[str, Any] = {
    "email": _email,
    "name": _limited("name"),
    "phone": _limited("phone"),
    "description": _limited("description"),
    "business_name": _limited("business_name"),
    "individual_name": _limited("individual_name"),
    "address": lambda params: _address(params.sub("address")),
    "balance": lambda params: params.integer("balance", default=0),
    "invoice_prefix": _invoice_prefix,
    "invoice_settings": lambda params: {**empty_invoice_settings(), **_sent_invoice_settings(params)},
    "metadata": lambda params: params.metadata(),
    "preferred_locales": _preferred_locales,
    "tax_exempt": lambda params: params.string("tax_exempt", default="none", choices=("exempt", "none", "reverse")),
}


def _address(params: Params) -> dict[str, Any] | None:
    if not params.data:
        return None
    params.reject_unimplemented(NULL_ADDRESS)
    address = {key: params.string(key, max_length=5000) for key in NULL_ADDRESS}
    country = address["country"]
    if country is not None:
        if not re.fullmatch(r"[A-Za-z]{2}", country):
            raise invalid_param(params.name("country"), (
                f"Country '{country}' is unknown. Try using a 2-character alphanumeric country code instead, "
                "such as 'US', 'EG', or 'GB'. A full list of country codes is available at "
                "https://stripe.com/docs/api#country_codes"))
        address["country"] = country.upper()
    return address


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


def payment_intent_object(state: SandboxState, *, amount: int, currency: str, customer: str | None,
                          payment_method_types: list[str], description: str | None = None,
                          metadata: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
    """A PaymentIntent waiting for a payment method, shaped like Stripe's (API 2026: no ``invoice`` field)."""
    intent_id = new_id("pi")
    intent = {
        "id": intent_id, "object": "payment_intent", "amount": amount, "amount_capturable": 0,
        "amount_details": {"tip": {}}, "amount_received": 0, "application": None, "application_fee_amount": None,
        "automatic_payment_methods": None, "canceled_at": None, "cancellation_reason": None,
        "capture_method": "automatic_async", "client_secret": f"{intent_id}_secret_{random_string(25)}",
        "confirmation_method": "automatic", "created": state.now(), "currency": currency,
        "customer": customer, "customer_account": None, "description": description,
        "excluded_payment_method_types": None, "last_payment_error": None, "latest_charge": None,
        "livemode": False, "metadata": dict(metadata or {}), "next_action": None, "on_behalf_of": None,
        "payment_method": None, "payment_method_configuration_details": None, "payment_method_options": {},
        "payment_method_types": list(payment_method_types), "processing": None,
        "receipt_email": None, "review": None, "setup_future_usage": None,
        "shipping": None, "source": None, "statement_descriptor": None,
        "statement_descriptor_suffix": None, "status": "requires_payment_method",
        "transfer_data": None, "transfer_group": None,
    }
    intent.update(fields)
    return intent


def fingerprint() -> str:
    """A payment method fingerprint."""
    return secrets.token_hex(8)

