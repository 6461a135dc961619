"""Apple Pay and Google Pay on Checkout, through a Payment Method Configuration the plugin creates once.

Wallets are no payment method types: neither ``allowed_payment_method_types`` nor
``excluded_payment_method_types`` can name them, and ``wallet_options`` only has Link. They ride on
cards, and Checkout shows them when the session's Payment Method Configuration turns them on. So when
the settings turn wallets on, a Checkout Session names the plugin's configuration
(``payment_method_configuration``; it cannot go with ``allowed_payment_method_types``) and takes off,
with ``excluded_payment_method_types``, what that configuration turns on and this payment must not offer
(Klarna under its minimum, SEPA outside the euro...). It also says ``managed_payments[enabled]=false``:
Stripe refuses a configuration on an account whose Managed Payments is on unless the session turns it off.
With wallets off nothing is passed: the session lists its methods, and the account's default configuration
decides for the wallets (Stripe's default turns Apple Pay on: an administrator who wants none turns it off
in the Dashboard too).

Like the tax rates: looking the configuration up reads our table; creating it calls Stripe (its
idempotency key makes a second creation return the same configuration) and, after that call, `remember`
writes it. Callers look up in one step and create in the next, or defer the creation until their writes
are committed, so that no transaction is held across the call.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from ..core import jobs
from ..core.models import PaymentMethodConfig
from ..core.state import PluginState
from ..gateway.types import PaymentMethodConfigurationCreateParams, SessionCreateParams
from . import settings as payment_settings

#: What the plugin's configuration turns on besides cards; each session excludes those it must not offer.
OFFERED = ("klarna", "sepa_debit")


@dataclass(frozen=True)
class ConfigurationWanted:
    """The plugin's configuration for Checkout: with Apple Pay and Google Pay."""

    wallets: bool = True


def wanted(settings) -> ConfigurationWanted | None:
    """The configuration the settings ask for: one with the wallets when they are on, else none."""
    return ConfigurationWanted() if settings.wallets_enabled else None


def known(session, configuration: ConfigurationWanted, *, livemode: bool) -> str | None:
    """The Stripe id of this configuration, if it was created before."""
    return session.scalar(select(PaymentMethodConfig.stripe_configuration_id).where(
        PaymentMethodConfig.livemode == livemode, PaymentMethodConfig.wallets == configuration.wallets))


def create(state: PluginState, settings, configuration: ConfigurationWanted) -> str:
    """Create the configuration at Stripe (or get the one its key created before): its id."""
    display = "on" if configuration.wallets else "off"
    params: PaymentMethodConfigurationCreateParams = {
        "name": "LMS Checkout" + (" (Apple Pay, Google Pay)" if configuration.wallets else ""),
        "card": {"display_preference": {"preference": "on"}},
        "apple_pay": {"display_preference": {"preference": display}},
        "google_pay": {"display_preference": {"preference": display}},
        "klarna": {"display_preference": {"preference": "on"}},
        "sepa_debit": {"display_preference": {"preference": "on"}},
        "link": {"display_preference": {"preference": "off"}},  # never offered by the plugin
    }
    created = state.gateway.create_payment_method_configuration(
        params, api_key=settings.secret_key,
        idempotency_key=f"lms-payment-method-configuration-{int(configuration.wallets)}-{int(settings.livemode)}")
    return created["id"]


def remember(session, configuration: ConfigurationWanted, stripe_id: str, *, livemode: bool) -> None:
    """Record a configuration created at Stripe (once: a concurrent request may have recorded it)."""
    try:
        with session.begin_nested():
            session.add(PaymentMethodConfig(livemode=livemode, wallets=configuration.wallets,
                                            stripe_configuration_id=stripe_id))
    except IntegrityError:
        pass  # the same configuration, recorded by a concurrent request (same key, same id)


def forget(session, stripe_id: str) -> None:
    """Drop a configuration Stripe no longer knows (the keys now open another account): the next
    payment creates it again."""
    session.execute(delete(PaymentMethodConfig).where(PaymentMethodConfig.stripe_configuration_id == stripe_id))


def ensure(state: PluginState, wallets: bool) -> None:
    """Follow-up work: create the configuration, unless it is known already, and remember it."""
    settings = payment_settings.load(state.session)
    configuration = ConfigurationWanted(wallets)
    if known(state.session, configuration, livemode=settings.livemode) is None:
        created = create(state, settings, configuration)
        remember(state.session, configuration, created, livemode=settings.livemode)


def configuration_or_later(state: PluginState, settings) -> str | None:
    """The configuration the settings ask for, if it is known; if it is not, its creation is deferred until
    the current transaction commits (the session being planned then lists its methods)."""
    configuration = wanted(settings)
    if configuration is None:
        return None
    found = known(state.session, configuration, livemode=settings.livemode)
    if found is None:
        jobs.defer(state.session, ensure, configuration.wallets)
    return found


def method_params(methods: Sequence[str], configuration_id: str | None) -> SessionCreateParams:
    """The Checkout Session parameters that choose its payment methods: ``methods`` listed, or the
    configuration less what it turns on beyond ``methods``."""
    if configuration_id is None:
        return {"allowed_payment_method_types": [*methods]}
    params: SessionCreateParams = {"payment_method_configuration": configuration_id,
                                   "managed_payments": {"enabled": False}}
    excluded = [method for method in OFFERED if method not in methods]
    if excluded:
        params["excluded_payment_method_types"] = excluded
    return params


def with_configuration(params: SessionCreateParams, configuration_id: str) -> SessionCreateParams:
    """Session parameters planned with their methods listed, moved onto a configuration just created."""
    moved = SessionCreateParams(**params)  # a copy
    methods = moved.pop("allowed_payment_method_types", None) or ["card"]
    moved.update(method_params(methods, configuration_id))
    return moved
