"""Checkout Sessions: creation and validation, amounts, promotion codes, expiry."""

from __future__ import annotations

from typing import Any

from .amounts import PricedLine, check_minimum, check_step, format_amount, price_lines, step
from .connect import public_details, require_charges_enabled
from .errors import StripeError, invalid_param, missing_param
from .ids import checkout_session_id, new_id
from .invoice_payments import intent_ended_unpaid
from .params import Params
from .payment_method_configurations import session_configuration, session_wallets, turned_on
from .resources import custom_fields, find_promotion_code, price_object, product_object, usable_coupon, valid_email
from .state import SandboxState, locked
from .taxes import KLARNA_MINIMUM, automatic_rate, customer_country, tax_location_invalid

SUPPORTED_METHODS = ("card", "klarna", "sepa_debit")
# Currencies each supported method accepts (card takes all).
METHOD_CURRENCIES = {
    "sepa_debit": {"eur"},
    "klarna": {"aud", "cad", "chf", "czk", "dkk", "eur", "gbp", "nok", "nzd", "pln", "ron", "sek", "usd"},
}
SESSION_PARAMS = {
    "allow_promotion_codes", "allowed_payment_method_types", "automatic_tax", "cancel_url",
    "client_reference_id", "consent_collection", "currency", "custom_text", "customer",
    "customer_creation", "customer_email", "discounts", "excluded_payment_method_types", "expires_at",
    "invoice_creation", "line_items", "locale", "metadata", "mode", "payment_intent_data",
    "payment_method_configuration", "success_url", "ui_mode",
    # Accepted and ignored: they change only how the real page looks or what it asks for
    # (``managed_payments`` is checked only against ``payment_method_configuration``).
    "adaptive_pricing", "after_expiration", "billing_address_collection", "branding_settings",
    "custom_fields", "customer_update", "integration_identifier", "managed_payments", "name_collection",
    "origin_context", "payment_method_options", "permissions",
    "phone_number_collection", "redirect_on_completion", "return_url", "saved_payment_method_options",
    "shipping_address_collection", "submit_type", "tax_id_collection", "wallet_options",
}


# -- creation ------------------------------------------------------------------


@locked
def create_session(state: SandboxState, params: Params, base_url: str) -> dict[str, Any]:
    """``POST /v1/checkout/sessions`` (payment mode, hosted page)."""
    params.reject_unimplemented(SESSION_PARAMS)
    require_charges_enabled(state)  # a direct charge on a connected account needs its charges enabled
    _check_mode(params)
    lines = [_parse_line(state, item) for item in _line_items(params)]
    currency = _currency(params, lines)
    session_id = checkout_session_id()
    private = {
        "lines": lines, "base_url": base_url, "coupon_id": None, "promotion_code_id": None,
        "discount_id": new_id("di"), "payment_intent_data": _payment_intent_data(state, params.sub("payment_intent_data")),
    }
    methods, config, dynamic = _payment_offer(state, params, currency)
    session = _session_object(state, params, session_id, currency, base_url, methods)
    if dynamic:
        session["payment_method_configuration_details"] = {"id": config["id"], "parent": None}
    _check_terms(state, session)
    _initial_discount(state, params, session, private)
    _setup_automatic_tax(state, params, session, private)
    _create_catalog(state, lines, currency)
    state.add(session, private)
    refresh_amounts(state, session)
    check_minimum(session["amount_total"], currency)
    _check_application_fee(private["payment_intent_data"]["application_fee_amount"], session["amount_total"])
    if dynamic:
        _drop_klarna_below_minimum(session)
    else:
        _check_klarna_minimum(session)
    private["wallets"] = session_wallets(config, session["payment_method_types"], session["automatic_tax"]["enabled"],
                                         params.has("shipping_address_collection"))
    return session


def _check_application_fee(fee: int | None, total: int) -> None:
    if fee is not None and fee > total:
        # Stripe's wording of this refusal is not published; the sandbox's.
        raise invalid_param("payment_intent_data[application_fee_amount]",
                            f"The application fee ({fee}) cannot be greater than the amount of the payment ({total}).")


def _check_terms(state: SandboxState, session: dict[str, Any]) -> None:
    consent = session["consent_collection"] or {}
    if consent.get("terms_of_service") == "required" and not public_details(state).terms_of_service_url:
        raise invalid_param("consent_collection[terms_of_service]", (
            "You cannot collect consent to your terms of service unless a URL is set in the Stripe Dashboard. "
            "Update your public business details with a terms of service URL."))


def _setup_automatic_tax(state: SandboxState, params: Params, session: dict[str, Any],
                         private: dict[str, Any]) -> None:
    """Stripe Tax needs the customer's location: from the Customer, or entered on the page."""
    update = params.sub("customer_update")
    if update.data and not session["customer"]:
        raise invalid_param("customer_update", "customer_update can only be used with customer.")
    private["save_address"] = update.string("address") == "auto"
    if not session["automatic_tax"]["enabled"]:
        return
    customer = state.get(session["customer"], "customer")
    country = customer_country(customer)
    if customer is not None and country is None and not private["save_address"]:
        raise tax_location_invalid()
    private["tax_country"] = country
    session["automatic_tax"]["status"] = "complete" if country else "requires_location_inputs"


def set_tax_location(state: SandboxState, session: dict[str, Any], country: str) -> None:
    """The address entered on the page decides the automatic tax (and is saved when asked)."""
    private = state.private[session["id"]]
    private["tax_country"] = country.upper()
    session["automatic_tax"]["status"] = "complete"
    customer = state.get(session["customer"], "customer")
    if customer is not None and private.get("save_address"):
        customer["address"] = {**(customer.get("address") or {}), "country": country.upper()}
    refresh_amounts(state, session)


def _check_klarna_minimum(session: dict[str, Any]) -> None:
    if "klarna" not in session["payment_method_types"]:
        return
    minimum = KLARNA_MINIMUM.get(session["currency"], 0)
    if session["amount_total"] < minimum:
        index = session["payment_method_types"].index("klarna")
        raise invalid_param(f"allowed_payment_method_types[{index}]", (
            f"Klarna cannot be used for amounts below {format_amount(minimum, session['currency'])}."))


def _drop_klarna_below_minimum(session: dict[str, Any]) -> None:
    # Dynamic payment methods show only what is eligible: below its minimum Klarna is left out, silently.
    minimum = KLARNA_MINIMUM.get(session["currency"], 0)
    if "klarna" in session["payment_method_types"] and session["amount_total"] < minimum:
        session["payment_method_types"].remove("klarna")
        if not session["payment_method_types"]:
            raise _no_valid_methods()


def _check_mode(params: Params) -> None:
    mode = params.string("mode", required=True, choices=("payment", "setup", "subscription"))
    if mode != "payment":
        raise invalid_param("mode", f"The Stripe sandbox supports only mode=payment (got `{mode}`).")
    ui_mode = params.string("ui_mode", default="hosted_page")
    if ui_mode not in ("hosted_page", "hosted"):
        raise invalid_param("ui_mode", f"The Stripe sandbox serves only ui_mode=hosted_page (got `{ui_mode}`).")


def _line_items(params: Params) -> list[Params]:
    items = params.objects("line_items")
    if not items:
        raise missing_param("line_items")
    if len(items) > 100:
        raise invalid_param("line_items", "You may only specify up to 100 line items.")
    return items


def _parse_line(state: SandboxState, item: Params) -> dict[str, Any]:
    item.reject_unimplemented({"price", "price_data", "quantity", "tax_rates", "metadata"})
    if item.has("price") == bool(item.sub("price_data").data):
        raise invalid_param(item.name("price"), "You must specify either `price` or `price_data` in each line item.")
    line = _from_price(state, item) if item.has("price") else _from_price_data(state, item.sub("price_data"))
    line.update(
        id=new_id("li"),
        quantity=item.integer("quantity", required=True, minimum=1, maximum=999999),
        metadata=item.metadata(),
        tax_rate_ids=[_tax_rate_id(state, item, i, rate_id) for i, rate_id in enumerate(item.strings("tax_rates"))],
    )
    return line


def _tax_rate_id(state: SandboxState, item: Params, index: int, rate_id: str) -> str:
    param = f"{item.name('tax_rates')}[{index}]"
    rate = state.require(rate_id, "tax_rate", param=param, status=400)
    if not rate["active"]:
        raise invalid_param(param, f"The tax rate {rate_id} is archived and cannot be used.")
    return rate_id


def _from_price(state: SandboxState, item: Params) -> dict[str, Any]:
    price = state.require(item.string("price"), "price", param=item.name("price"), status=400)
    product = state.require(price["product"], "product")
    return {
        "price_id": price["id"], "product_id": product["id"], "name": product["name"],
        "description": product["description"], "product_metadata": product["metadata"],
        "currency": price["currency"], "unit_amount": price["unit_amount"], "tax_behavior": price["tax_behavior"],
    }


def _from_price_data(state: SandboxState, data: Params) -> dict[str, Any]:
    data.reject_unimplemented({"currency", "product", "product_data", "tax_behavior", "unit_amount",
                               "unit_amount_decimal"})
    currency = data.string("currency", required=True).lower()
    unit_amount = _unit_amount(data)
    check_step(unit_amount, currency, data.name("unit_amount"))
    line = {"price_id": None, "product_id": None, "currency": currency, "unit_amount": unit_amount,
            "tax_behavior": data.string("tax_behavior", default="unspecified",
                                        choices=("exclusive", "inclusive", "unspecified"))}
    if data.has("product"):
        product = state.require(data.string("product"), "product", param=data.name("product"), status=400)
        line.update(product_id=product["id"], name=product["name"], description=product["description"],
                    product_metadata=product["metadata"])
        return line
    product_data = data.sub("product_data")
    if not product_data.data:
        raise missing_param(data.name("product_data"))
    product_data.reject_unimplemented({"name", "description", "metadata", "images", "tax_code", "unit_label", "tax_details"})
    line.update(name=product_data.string("name", required=True, max_length=250),
                description=product_data.string("description", max_length=40000),
                product_metadata=product_data.metadata())
    return line


def _unit_amount(data: Params) -> int:
    if data.has("unit_amount") and data.has("unit_amount_decimal"):
        raise invalid_param(data.name("unit_amount_decimal"),
                            "You may only specify one of these parameters: unit_amount, unit_amount_decimal.")
    if data.has("unit_amount"):
        return data.integer("unit_amount", minimum=0, maximum=99999999)
    decimal = data.decimal("unit_amount_decimal")
    if decimal is None:
        raise missing_param(data.name("unit_amount"))
    if decimal != decimal.to_integral_value():
        raise invalid_param(data.name("unit_amount_decimal"),
                            "The Stripe sandbox supports only whole minor units in unit_amount_decimal.")
    return int(decimal)


def _currency(params: Params, lines: list[dict[str, Any]]) -> str:
    currencies = {line["currency"] for line in lines}
    if len(currencies) > 1:
        raise invalid_param("line_items", "All line items must use the same currency.")
    currency = currencies.pop()
    requested = params.string("currency")
    if requested and requested.lower() != currency:
        raise invalid_param("currency", f"The currency `{requested}` does not match the line items' `{currency}`.")
    return currency


def _create_catalog(state: SandboxState, lines: list[dict[str, Any]], currency: str) -> None:
    for line in lines:
        if line["product_id"] is None:
            product = product_object(state, line["name"], line["description"], line["product_metadata"])
            line["product_id"] = state.add(product)["id"]
        if line["price_id"] is None:
            price = price_object(state, line["product_id"], currency, line["unit_amount"], line["tax_behavior"])
            line["price_id"] = state.add(price)["id"]


def _payment_intent_data(state: SandboxState, data: Params) -> dict[str, Any]:
    data.reject_unimplemented({"application_fee_amount", "description", "metadata", "receipt_email",
                               "statement_descriptor", "statement_descriptor_suffix", "setup_future_usage"})
    fee = data.integer("application_fee_amount", minimum=0)
    if fee is not None and state.current_account() is None:
        raise invalid_param(data.name("application_fee_amount"), (
            "Can only apply an application_fee_amount when the PaymentIntent is attempting a direct payment "
            "(using an OAuth key or Stripe-Account header) or destination payment (using "
            "`transfer_data[destination]`)."))
    return {
        "application_fee_amount": fee,
        "description": data.string("description", max_length=1000),
        "metadata": data.metadata(),
        "receipt_email": data.string("receipt_email"),
        "statement_descriptor": data.string("statement_descriptor", max_length=22),
        "statement_descriptor_suffix": data.string("statement_descriptor_suffix", max_length=22),
        "setup_future_usage": data.string("setup_future_usage", choices=("off_session", "on_session")),
    }


# -- the session object --------------------------------------------------------------


def _session_object(state: SandboxState, params: Params, session_id: str, currency: str,
                    base_url: str, methods: list[str]) -> dict[str, Any]:
    customer, customer_email, creation = _customer_fields(state, params)
    return {
        "id": session_id, "object": "checkout.session", "adaptive_pricing": {"enabled": False},
        "after_expiration": None, "allow_promotion_codes": params.boolean("allow_promotion_codes"),
        "allowed_payment_method_types": params.strings("allowed_payment_method_types") or None,
        "amount_subtotal": 0, "amount_total": 0,
        "automatic_tax": _automatic_tax(params.sub("automatic_tax")),
        "billing_address_collection": params.string("billing_address_collection"),
        "branding_settings": None, "cancel_url": _url(params, "cancel_url"),
        "client_reference_id": params.string("client_reference_id", max_length=200), "client_secret": None,
        "collected_information": None, "consent": None, "consent_collection": _consent_collection(params),
        "created": state.now(), "currency": currency, "currency_conversion": None, "custom_fields": [],
        "custom_text": _custom_text(params.sub("custom_text")), "customer": customer, "customer_account": None,
        "customer_creation": creation, "customer_details": None, "customer_email": customer_email,
        "discounts": [], "excluded_payment_method_types": params.strings("excluded_payment_method_types"),
        "expires_at": _expires_at(state, params), "integration_identifier": None, "invoice": None,
        "invoice_creation": _invoice_creation(params.sub("invoice_creation")), "livemode": False,
        "locale": params.string("locale"), "managed_payments": None,
        "metadata": params.metadata(), "mode": "payment", "name_collection": None, "optional_items": None,
        "origin_context": None, "payment_intent": None, "payment_link": None,
        "payment_method_collection": "if_required", "payment_method_configuration_details": None,
        "payment_method_options": {}, "payment_method_types": methods, "payment_status": "unpaid",
        "permissions": None, "phone_number_collection": {"enabled": False}, "presentment_details": None,
        "recovered_from": None, "redirect_on_completion": None, "return_url": None,
        "saved_payment_method_options": None, "setup_intent": None, "shipping_address_collection": None,
        "shipping_cost": None, "shipping_options": [], "status": "open",
        "submit_type": params.string("submit_type"), "subscription": None,
        "success_url": _url(params, "success_url"), "tax_id_collection": {"enabled": False, "required": "never"},
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted_page", "url": f"{base_url}/c/pay/{session_id}", "wallet_options": None,
    }


def _automatic_tax(automatic_tax: Params) -> dict[str, Any]:
    # Stripe Tax as the sandbox models it: EU VAT standard rates by the customer's country (taxes.py).
    automatic_tax.reject_unimplemented({"enabled", "liability"})
    enabled = automatic_tax.boolean("enabled", required=bool(automatic_tax.data), default=False)
    if not enabled:
        return {"enabled": False, "liability": None, "provider": None, "status": None}
    return {"enabled": True, "liability": {"type": "self"}, "provider": "stripe", "status": "complete"}


def _url(params: Params, key: str) -> str | None:
    value = params.string(key, max_length=5000)
    if value is not None and not value.startswith(("http://", "https://")):
        raise invalid_param(key, "Not a valid URL", code="url_invalid")
    return value


def _customer_fields(state: SandboxState, params: Params) -> tuple[str | None, str | None, str | None]:
    customer = params.string("customer")
    email = params.string("customer_email", max_length=800)
    creation = params.string("customer_creation", choices=("always", "if_required"))
    if customer and email:
        raise invalid_param("customer_email", "You may only specify one of these parameters: customer, customer_email.")
    if customer and creation:
        raise invalid_param("customer_creation",
                            "You may only specify one of these parameters: customer, customer_creation.")
    if customer:
        state.require(customer, "customer", param="customer", status=400)
    if email and not valid_email(email):
        raise invalid_param("customer_email", f"Invalid email address: {email}", code="email_invalid")
    return customer, email, creation


def _payment_offer(state: SandboxState, params: Params, currency: str) -> tuple[list[str], dict[str, Any], bool]:
    """The session's payment methods, the configuration its wallets come from, and whether its methods are
    dynamic (from that configuration) rather than the list in ``allowed_payment_method_types``.

    ``allowed_payment_method_types`` and ``payment_method_configuration`` are mutually exclusive, as Stripe
    documents for the PaymentIntent's ``allowed_payment_method_types`` (changelog 2026-07-29.dahlia; the
    Checkout Session's own rule is not published in full: refusing both is the safe side). Without either,
    the account's default configuration decides, and with ``allowed_payment_method_types`` its wallets
    still ride on cards."""
    if params.strings("allowed_payment_method_types") and params.has("payment_method_configuration"):
        raise invalid_param("payment_method_configuration", "You may only specify one of these parameters: "
                                                            "allowed_payment_method_types, payment_method_configuration.")
    _check_managed_payments(params)
    config = session_configuration(state, params)
    if params.strings("allowed_payment_method_types"):
        return _payment_methods(params, currency), config, False
    return _dynamic_methods(params, config, currency), config, True


def _check_managed_payments(params: Params) -> None:
    # Reported by Stripe's API in 2026 (alexmorrisnz/moodle-paygw_stripe#78) when Managed Payments is on.
    managed = params.sub("managed_payments")
    if managed.boolean("enabled") and params.has("payment_method_configuration"):
        raise invalid_param("payment_method_configuration", (
            "payment_method_configuration cannot be used with Managed Payments, which is enabled by default on "
            "your account. Remove payment_method_configuration, or pass managed_payments[enabled]=false to "
            "disable it for this request."))


def _dynamic_methods(params: Params, config: dict[str, Any], currency: str) -> list[str]:
    """What the configuration turns on, eligible for the currency, less ``excluded_payment_method_types``."""
    excluded = set(params.strings("excluded_payment_method_types"))
    methods = [m for m in SUPPORTED_METHODS
               if turned_on(config, m) and currency in METHOD_CURRENCIES.get(m, {currency}) and m not in excluded]
    if not methods:
        raise _no_valid_methods()
    return methods


def _no_valid_methods() -> StripeError:
    return StripeError("No valid payment method types for this Checkout Session. Please ensure that you have "
                       "activated payment methods compatible with your chosen currency in your dashboard "
                       "(https://dashboard.stripe.com/settings/payment_methods).")


def _payment_methods(params: Params, currency: str) -> list[str]:
    # ``allowed_payment_method_types``, read as the list the session offers (each one checked).
    key = "allowed_payment_method_types"
    methods = list(dict.fromkeys(params.strings(key)))
    for index, method in enumerate(methods):
        _check_method(f"{key}[{index}]", method, currency)
    excluded = set(params.strings("excluded_payment_method_types"))
    methods = [m for m in methods if m not in excluded]
    if not methods:
        raise invalid_param(key, "No payment method types are left for this Checkout Session.")
    return methods


def _check_method(param: str, method: str, currency: str) -> None:
    if method not in SUPPORTED_METHODS:
        raise invalid_param(param, f"The Stripe sandbox supports the payment method types card, klarna and "
                                   f"sepa_debit (got `{method}`).")
    accepted = METHOD_CURRENCIES.get(method)
    if accepted is not None and currency not in accepted:
        raise invalid_param(param, f"The payment method type `{method}` cannot be used with currency `{currency}`.")


def _expires_at(state: SandboxState, params: Params) -> int:
    now = state.now()
    expires_at = params.integer("expires_at")
    if expires_at is None:
        return now + 24 * 3600
    # A few seconds of slack, because the caller's clock and ours are read at different moments.
    if expires_at < now + 30 * 60 - 10:
        raise invalid_param("expires_at", "The `expires_at` timestamp must be at least 30 minutes from "
                                          "Checkout Session creation.")
    if expires_at > now + 24 * 3600 + 10:
        raise invalid_param("expires_at", "The `expires_at` timestamp must be less than 24 hours from "
                                          "Checkout Session creation.")
    return expires_at


def _consent_collection(params: Params) -> dict[str, Any] | None:
    consent = params.sub("consent_collection")
    if not consent.data:
        return None
    consent.reject_unimplemented({"terms_of_service", "promotions", "payment_method_reuse_agreement"})
    return {
        "payment_method_reuse_agreement": None,
        "promotions": consent.string("promotions", choices=("auto", "none")),
        "terms_of_service": consent.string("terms_of_service", choices=("none", "required")),
    }


def _custom_text(custom: Params) -> dict[str, Any]:
    custom.reject_unimplemented({"after_submit", "shipping_address", "submit", "terms_of_service_acceptance"})
    text: dict[str, Any] = {}
    for key in ("after_submit", "shipping_address", "submit", "terms_of_service_acceptance"):
        message = custom.sub(key).string("message", max_length=1200)
        text[key] = {"message": message} if message else None
    return text


def _invoice_creation(creation: Params) -> dict[str, Any]:
    """``invoice_creation``: what the invoice Checkout makes when the session is paid will carry.

    ``invoice_data[custom_fields]`` as on invoices: at most 4, a name of up to 40 characters and a value of
    up to 140 (the SDK's ``SessionCreateParamsInvoiceCreationInvoiceDataCustomField``); ``footer`` up to
    5000; ``rendering_options[amount_tax_display]`` becomes the invoice's ``rendering``.
    """
    enabled = creation.boolean("enabled", required=bool(creation.data), default=False)
    data = creation.sub("invoice_data")
    data.reject_unimplemented({"account_tax_ids", "custom_fields", "description", "footer", "issuer", "metadata",
                               "rendering_options"})
    return {"enabled": enabled, "invoice_data": {
        "account_tax_ids": data.strings("account_tax_ids") or None,
        "custom_fields": custom_fields(data, "custom_fields") or None,
        "description": data.string("description", max_length=1500), "footer": data.string("footer", max_length=5000),
        "issuer": {"type": "self"}, "metadata": data.metadata(),
        "rendering_options": _rendering_options(data.sub("rendering_options")),
    }}


def _rendering_options(options: Params) -> dict[str, Any] | None:
    options.reject_unimplemented({"amount_tax_display"})
    display = options.string("amount_tax_display", choices=("", "exclude_tax", "include_inclusive_tax"))
    return {"amount_tax_display": display, "template": None} if display else None


def _initial_discount(state: SandboxState, params: Params, session: dict[str, Any], private: dict[str, Any]) -> None:
    discounts = params.objects("discounts")
    if not discounts:
        return
    if session["allow_promotion_codes"]:
        raise invalid_param("discounts", "You may only specify one of these parameters: allow_promotion_codes, discounts.")
    if len(discounts) > 1:
        raise invalid_param("discounts", "You may only specify one discount.")
    entry = discounts[0]
    entry.reject_unimplemented({"coupon", "promotion_code"})
    if entry.has("promotion_code"):
        promo = state.require(entry.string("promotion_code"), "promotion_code", param=entry.name("promotion_code"), status=400)
        private.update(promotion_code_id=promo["id"], coupon_id=promo["promotion"]["coupon"])
    else:
        coupon = state.require(entry.string("coupon", required=True), "coupon", param=entry.name("coupon"), status=400)
        private["coupon_id"] = coupon["id"]
    session["discounts"] = [{"coupon": None if private["promotion_code_id"] else private["coupon_id"],
                             "promotion_code": private["promotion_code_id"]}]


# -- amounts, line items and promotion codes -----------------------------------------


def priced_lines(state: SandboxState, session: dict[str, Any]) -> list[PricedLine]:
    """The session's lines priced with its current discount and tax rates."""
    private = state.private[session["id"]]
    coupon = state.get(private.get("coupon_id"), "coupon")
    lines = [{"unit_amount": line["unit_amount"], "quantity": line["quantity"],
              "rates": [state.get(rate_id) for rate_id in line["tax_rate_ids"]] + _automatic(state, private, line)}
             for line in private["lines"]]
    return price_lines(lines, coupon, step(session["currency"]))


def _automatic(state: SandboxState, private: dict[str, Any], line: dict[str, Any]) -> list[dict[str, Any]]:
    rate = automatic_rate(state, private.get("tax_country"), line["tax_behavior"] == "inclusive")
    return [rate] if rate is not None else []


def refresh_amounts(state: SandboxState, session: dict[str, Any]) -> list[PricedLine]:
    """Recompute the session's totals after its discount changed."""
    priced = priced_lines(state, session)
    session["amount_subtotal"] = sum(p.subtotal for p in priced)
    session["amount_total"] = sum(p.total for p in priced)
    session["total_details"] = {"amount_discount": sum(p.discount for p in priced), "amount_shipping": 0,
                                "amount_tax": sum(p.tax for p in priced)}
    return priced


def discount_object(state: SandboxState, session: dict[str, Any]) -> dict[str, Any] | None:
    """The discount applied to the session, as a Stripe discount object."""
    private = state.private[session["id"]]
    if not private.get("coupon_id"):
        return None
    return {
        "id": private["discount_id"], "object": "discount", "checkout_session": session["id"],
        "customer": session["customer"], "customer_account": None, "end": None, "invoice": None,
        "invoice_item": None, "promotion_code": private.get("promotion_code_id"),
        "source": {"coupon": private["coupon_id"], "type": "coupon"}, "start": session["created"],
        "subscription": None, "subscription_item": None,
    }


@locked
def line_item_objects(state: SandboxState, session: dict[str, Any]) -> list[dict[str, Any]]:
    """The session's line items as ``GET .../line_items`` lists them."""
    discount = discount_object(state, session)
    items = []
    for line, priced in zip(state.private[session["id"]]["lines"], priced_lines(state, session)):
        items.append({
            "id": line["id"], "object": "item", "adjustable_quantity": None, "amount_discount": priced.discount,
            "amount_subtotal": priced.subtotal, "amount_tax": priced.tax, "amount_total": priced.total,
            "currency": session["currency"], "description": line["name"],
            "discounts": [{"amount": priced.discount, "discount": discount}] if discount and priced.discount else [],
            "metadata": line["metadata"], "price": state.render(state.get(line["price_id"], "price")),
            "quantity": line["quantity"],
            "taxes": [{"amount": share.amount, "rate": state.render(share.rate), "taxability_reason": "standard_rated",
                       "taxable_amount": share.taxable_amount} for share in priced.taxes],
        })
    return items


@locked
def apply_promotion_code(state: SandboxState, session: dict[str, Any], code: str) -> dict[str, Any]:
    """Apply a customer-entered promotion code; "This code is invalid." when it cannot be used."""
    if not session["allow_promotion_codes"]:
        raise invalid_param("promotion_code", "Promotion codes are not enabled for this Checkout Session.")
    promo = find_promotion_code(state, code, active_only=True)
    coupon = usable_coupon(state, promo, session["currency"], session["amount_subtotal"]) if promo else None
    if coupon is None:
        raise invalid_param("promotion_code", "This code is invalid.", code="promotion_code_invalid")
    private = state.private[session["id"]]
    private.update(coupon_id=coupon["id"], promotion_code_id=promo["id"])
    session["discounts"] = [{"coupon": None, "promotion_code": promo["id"]}]
    refresh_amounts(state, session)
    return promo


@locked
def remove_promotion_code(state: SandboxState, session: dict[str, Any]) -> None:
    """Take a customer-entered promotion code off the session again."""
    if not session["allow_promotion_codes"]:
        return
    state.private[session["id"]].update(coupon_id=None, promotion_code_id=None)
    session["discounts"] = []
    refresh_amounts(state, session)


# -- expiry ------------------------------------------------------------------------


def expire_if_due(state: SandboxState, session: dict[str, Any]) -> bool:
    """Expire an open session whose ``expires_at`` has passed; True when it did."""
    with state.lock:
        if session["status"] == "open" and session["expires_at"] <= state.now():
            _expire(state, session)
            return True
    return False


def sweep_expired_sessions(state: SandboxState) -> None:
    """Expire every open session past its ``expires_at``."""
    with state.lock:
        for session in state.all("checkout.session"):
            expire_if_due(state, session)


@locked
def expire_session(state: SandboxState, session_id: str) -> dict[str, Any]:
    """``POST /v1/checkout/sessions/{id}/expire``: only open sessions can be expired."""
    session = state.require(session_id, "checkout.session")
    expire_if_due(state, session)
    if session["status"] != "open":
        raise StripeError(f"Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout "
                          f"Session has a status of \"{session['status']}\".", param=None)
    _expire(state, session)
    return session


def _expire(state: SandboxState, session: dict[str, Any]) -> None:
    previous = {"status": session["status"], "url": session["url"]}
    session.update(status="expired", url=None)
    intent = state.get(session["payment_intent"], "payment_intent")
    if intent is not None and intent["status"] == "requires_payment_method":
        # Checkout cancels the PaymentIntent of an abandoned session.
        intent.update(status="canceled", canceled_at=state.now(), cancellation_reason="abandoned")
        state.emit("payment_intent.canceled", intent, {"status": "requires_payment_method"})
        intent_ended_unpaid(state, intent)
    state.emit("checkout.session.expired", session, previous)


def checked_session(state: SandboxState, session_id: str) -> dict[str, Any]:
    """The session, expired first if its time has passed."""
    session = state.require(session_id, "checkout.session")
    expire_if_due(state, session)
    return session
