"""Payment Method Configurations: which payment methods, wallets included, a Checkout Session offers.

A session that names no ``allowed_payment_method_types`` takes its methods from a configuration
(dynamic payment methods): the one in ``payment_method_configuration``, else the account's default
(``is_default``, "used whenever a payment method configuration is not specified"). Apple Pay and
Google Pay are not payment method types (no ``allowed_``/``excluded_payment_method_types`` value names
them): they ride on cards, and a session shows them when its configuration turns them on and the
session offers cards. Stripe hides Google Pay when automatic tax is on without a shipping address
collected (docs.stripe.com/upgrades/manage-payment-methods); so does the sandbox.

The sandbox's account has the capabilities of the methods it models (card, Apple Pay, Google Pay,
Klarna, SEPA Direct Debit, Link): those answer ``available`` when their ``display_preference`` is
``on``. Its Dashboard turns cards on and everything else off, wallets included (Stripe's own default
turns Apple Pay on: an account may turn it off, as this one did); a preference ``none`` takes that
Dashboard value. Other methods are ``null`` in the object (not available to the account), and setting
one is a 400 ``parameter_unsupported``, like ``parent`` (Connect's parent configurations are managed in
the Dashboard, and the sandbox has no Connect). There is no ``payment_method_configuration.*`` event
in the pinned API, and none is sent.
"""

from __future__ import annotations

from typing import Any

from .errors import invalid_param
from .ids import new_id
from .params import Params
from .schema import endpoint_schema
from .state import SandboxState, locked

#: The methods the sandbox's account can show, with its Dashboard's value for each.
ACCOUNT_DEFAULTS = {"apple_pay": "off", "card": "on", "google_pay": "off", "klarna": "off", "link": "off",
                    "sepa_debit": "off"}
WALLETS = ("apple_pay", "google_pay")
DEFAULT_ID = "pmc_sbxDefault"
_NOT_METHODS = {"active", "expand", "name", "parent"}


def _all_methods() -> tuple[str, ...]:
    """Every payment method a configuration has a field for: the SDK's create params, less the rest."""
    schema = endpoint_schema("POST", "/v1/payment_method_configurations")
    assert schema is not None
    return tuple(sorted(set(schema.fields) - _NOT_METHODS))


METHODS = _all_methods()


def _method_entry(preference: str, method: str) -> dict[str, Any]:
    value = preference if preference in ("on", "off") else ACCOUNT_DEFAULTS[method]
    return {"available": value == "on",
            "display_preference": {"overridable": None, "preference": preference, "value": value}}


def configuration_object(state: SandboxState, *, config_id: str, name: str, is_default: bool = False,
                         preferences: dict[str, str] | None = None) -> dict[str, Any]:
    """A configuration shaped like Stripe's; ``preferences`` maps a method to ``on``, ``off`` or ``none``."""
    preferences = preferences or {}
    config: dict[str, Any] = {
        "id": config_id, "object": "payment_method_configuration", "active": True, "application": None,
        "is_default": is_default, "livemode": False, "name": name, "parent": None,
    }
    for method in METHODS:
        modelled = method in ACCOUNT_DEFAULTS
        config[method] = _method_entry(preferences.get(method, "none"), method) if modelled else None
    return config


def seed_default_configuration(state: SandboxState) -> None:
    """The account's default configuration, as every sandbox starts with it."""
    state.add(configuration_object(state, config_id=DEFAULT_ID, name="Default", is_default=True))


def default_configuration(state: SandboxState) -> dict[str, Any]:
    """The configuration used when a session names none."""
    return next(c for c in state.all("payment_method_configuration") if c["is_default"])


def _preferences(params: Params) -> dict[str, str]:
    """``{method: preference}`` of the methods sent; the schema already checked each value."""
    found = {}
    for method in METHODS:
        if method in params.data:
            preference = params.sub(method).sub("display_preference").string("preference")
            if preference is not None:
                found[method] = preference
    return found


@locked
def create_configuration(state: SandboxState, params: Params) -> dict[str, Any]:
    """``POST /v1/payment_method_configurations``: a new (direct) configuration."""
    params.reject_unimplemented({"name", *ACCOUNT_DEFAULTS})
    config = configuration_object(state, config_id=new_id("pmc"), name=params.string("name") or "",
                                  preferences=_preferences(params))
    return state.add(config)


@locked
def update_configuration(state: SandboxState, config_id: str, params: Params) -> dict[str, Any]:
    """``POST /v1/payment_method_configurations/{id}``: ``name``, ``active`` and display preferences."""
    params.reject_unimplemented({"active", "name", *ACCOUNT_DEFAULTS})
    config = state.require(config_id, "payment_method_configuration")
    if params.has("active"):
        config["active"] = params.boolean("active")
    if params.has("name"):
        config["name"] = params.string("name")
    for method, preference in _preferences(params).items():
        config[method] = _method_entry(preference, method)
    return config


def session_configuration(state: SandboxState, params: Params) -> dict[str, Any]:
    """The configuration a Checkout Session asks for (it must exist and be active), else the default."""
    key = "payment_method_configuration"
    if not params.has(key):
        return default_configuration(state)
    config = state.require(params.string(key), "payment_method_configuration", param=key, status=400)
    if not config["active"]:
        # Stripe: "Whether the configuration can be used for new payments." (its wording for this refusal
        # is not published; this is the sandbox's).
        raise invalid_param(key, f"The payment method configuration {config['id']} is not active and cannot be "
                                 "used for new payments.")
    return config


def turned_on(config: dict[str, Any], method: str) -> bool:
    """Whether the configuration offers this method (its preference, and the account's capability)."""
    entry = config.get(method)
    return bool(entry and entry["available"])


def session_wallets(config: dict[str, Any], methods: list[str], automatic_tax: bool,
                    collects_shipping: bool) -> list[str]:
    """The wallet buttons of a session: those its configuration turns on, when cards are offered."""
    if "card" not in methods:
        return []
    wallets = [wallet for wallet in WALLETS if turned_on(config, wallet)]
    if automatic_tax and not collects_shipping and "google_pay" in wallets:
        wallets.remove("google_pay")  # "We filter Google Pay if you enable automatic tax without ... shipping"
    return wallets
