"""Platform mode: the school connects its own Stripe account from the LMS, and every payment is made on it.

The LMS operator configures the platform's keys (``LMS_STRIPE_PLATFORM``, ``LMS_STRIPE_SECRET_KEY``…). An
administrator of the school clicks *Activate online payment*: the plugin creates the school's connected account
(Accounts v1 configured by its controller properties: the school has its own full Stripe Dashboard, pays
Stripe's fees, Stripe collects what it requires and carries the losses; see gateway/client.py), then an
Account Link sends the administrator to Stripe's hosted onboarding (company, activity, IBAN, verification).
Back in the LMS, the page says where the school stands: details submitted, payments and payouts enabled,
what Stripe still requires and by when; ``account.updated`` events keep it current, the newer never
overwritten by an older one. Every call for the school's payments is then made on its account (direct
charges: `PluginState.gateway`), and learners can buy only while Stripe lets the account take payments.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from ..core import audit, jobs, schools
from ..core.enums import AuditAction
from ..core.models import Settings
from ..core.state import PluginState
from ..core.urls import public_url
from ..errors import ConfigurationError
from ..money import Money, percent_of
from . import settings as payment_settings

#: The key of the one connected account a school creates, by the school's id (Stripe keeps it 24 hours; the
#: account's id is stored at once, so a second click never creates another).
ACCOUNT_KEY = "lms-connect-account-{}"


def account_of(state: PluginState) -> str | None:
    """The connected account the school's payments are made on (platform mode), else None."""
    if not schools.platform_mode():
        return None
    return payment_settings.load(state.session).stripe_account_id


def application_fee_rate() -> int:
    """The platform's share of the school's payments, in basis points (``LMS_STRIPE_APPLICATION_FEE``); 0
    outside platform mode or without one."""
    if not schools.platform_mode():
        return 0
    configured = current_app.config.get("LMS_STRIPE_APPLICATION_FEE")
    rate = configured(schools.current()) if callable(configured) else configured
    if rate is None:
        return 0
    if isinstance(rate, bool) or not isinstance(rate, int) or not 0 <= rate <= 10000:
        raise ConfigurationError("LMS_STRIPE_APPLICATION_FEE must be basis points of the amount, an integer from "
                                 "0 to 10000 (250: 2.5 %), or a function of the school's id that returns one.")
    return rate


def application_fee(amount: Money, rate: int) -> Money | None:
    """The platform's fee at ``rate`` (basis points, `application_fee_rate`) on a payment of ``amount``, rounded
    half up to a minor unit; None when nothing."""
    fee = percent_of(amount, Decimal(rate) / 100) if rate else None
    return fee if fee is not None and fee.amount > 0 else None


def with_application_fee(params: Any) -> Any:
    """A payment-mode Checkout Session's parameters with the platform's fee on the payment it takes (a direct
    charge on the school's account: ``payment_intent_data.application_fee_amount``), when there is one."""
    rate = application_fee_rate()
    if not rate or params.get("mode") != "payment":
        return params
    items = [item for item in params.get("line_items", ()) if "price_data" in item]
    if not items:
        return params
    total = sum(int(item["price_data"]["unit_amount"]) * int(item.get("quantity", 1)) for item in items)
    fee = application_fee(Money(total, str(items[0]["price_data"]["currency"]).upper()), rate)
    if fee is None:
        return params
    return {**params, "payment_intent_data": {**params.get("payment_intent_data", {}),
                                              "application_fee_amount": fee.amount}}


def school_of(session, account_id: str | None) -> str:
    """The school whose connected account is ``account_id`` (platform mode), else the default one."""
    if not account_id or not schools.platform_mode():
        return schools.DEFAULT
    found = session.scalar(select(Settings.school_id).where(Settings.stripe_account_id == account_id)
                           .execution_options(**{schools.ALL_SCHOOLS: True}))
    return found if found is not None else schools.DEFAULT


@dataclass(frozen=True)
class AccountStatus:
    """Where the school's connected account stands, as Stripe last said."""

    account_id: str | None
    details_submitted: bool = False
    charges_enabled: bool = False
    payouts_enabled: bool = False
    currently_due: tuple[str, ...] = ()
    past_due: tuple[str, ...] = ()
    eventually_due: tuple[str, ...] = ()
    deadline: date | None = None
    disabled_reason: str | None = None

    @property
    def complete(self) -> bool:
        return self.details_submitted and self.charges_enabled and self.payouts_enabled


def status(settings) -> AccountStatus:
    state = settings.account
    deadline = state.get("deadline")
    return AccountStatus(
        account_id=settings.stripe_account_id, details_submitted=bool(state.get("details_submitted")),
        charges_enabled=bool(state.get("charges_enabled")), payouts_enabled=bool(state.get("payouts_enabled")),
        currently_due=tuple(state.get("currently_due") or ()), past_due=tuple(state.get("past_due") or ()),
        eventually_due=tuple(state.get("eventually_due") or ()),
        deadline=datetime.fromtimestamp(deadline, timezone.utc).date() if isinstance(deadline, int) else None,
        disabled_reason=state.get("disabled_reason"))


def _summary(account: dict) -> dict:
    """What the plugin keeps of a Stripe account object."""
    requirements = account.get("requirements") or {}

    def names(key: str) -> list[str]:
        return [str(name)[:100] for name in (requirements.get(key) or [])][:50]

    deadline = requirements.get("current_deadline")
    return {"details_submitted": bool(account.get("details_submitted")),
            "charges_enabled": bool(account.get("charges_enabled")),
            "payouts_enabled": bool(account.get("payouts_enabled")),
            "currently_due": names("currently_due"), "past_due": names("past_due"),
            "eventually_due": names("eventually_due"),
            "deadline": deadline if isinstance(deadline, int) else None,
            "disabled_reason": (str(requirements["disabled_reason"])[:100]
                                if requirements.get("disabled_reason") else None)}


def apply_account(session, account: dict, *, seen_at: int, read: bool = False) -> bool:
    """Record what Stripe says of the school's connected account ``account``, as of ``seen_at`` (an event's
    ``created``, or with ``read`` the moment it was read from Stripe), in the caller's transaction; False when
    it is not the school's account, or not newer than what is recorded (an event of the same second as the
    recorded snapshot that says otherwise has Stripe asked again, after the commit)."""
    if not account.get("id"):
        return False
    ours = (Settings.school_id == schools.current(), Settings.stripe_account_id == account["id"])
    summary = json.dumps(_summary(account))
    # Read from Stripe, the account is as new as any event of the same second (``created`` counts seconds).
    newer = Settings.account_checked <= seen_at if read else Settings.account_checked < seen_at
    done = session.execute(
        update(Settings).where(*ours, (Settings.account_checked.is_(None)) | newer)
        .values(account_state=summary, account_checked=seen_at)
        .execution_options(synchronize_session=False)).rowcount
    payment_settings.forget_cached()
    if not done and not read:
        # ``created`` counts whole seconds: of two different snapshots of the same second, which is the newer
        # cannot be told. Stripe is asked once this transaction commits (`refresh_account`).
        recorded = session.execute(select(Settings.account_checked, Settings.account_state).where(*ours)).first()
        if recorded is not None and recorded[0] == seen_at and recorded[1] != summary:
            jobs.defer(session, refresh_account)
    return bool(done)


def refresh_account(state: PluginState) -> None:
    """What Stripe says of the school's account now, recorded (a follow-up job of `apply_account`)."""
    check_now(state, now=int(time.time()))


def ensure_account(state: PluginState, *, actor_id: str | None) -> str:
    """The school's connected account, created at Stripe on the first click (its id stored at once, with what
    Stripe says of it), in the caller's transaction, which the view commits."""
    if not schools.platform_mode():
        raise ConfigurationError("Online payment through the platform needs LMS_STRIPE_PLATFORM.")
    settings = payment_settings.load(state.session)
    if settings.stripe_account_id:
        return settings.stripe_account_id
    school = schools.current()
    params: dict = {"metadata": {"lms_school": school or "-"}}
    if settings.school_name:
        params["business_profile"] = {"name": settings.school_name[:100]}
    account = state.platform_gateway.create_connected_account(params,  # type: ignore[arg-type]
                                                              api_key=settings.secret_key,
                                                              idempotency_key=ACCOUNT_KEY.format(school or "-"))
    row = payment_settings.stored(state.session) or Settings(school_id=school)
    row.stripe_account_id = account["id"]
    row.account_state, row.account_checked = json.dumps(_summary(account)), int(account.get("created") or 0)
    state.session.add(row)
    audit.record(state.session, AuditAction.SETTINGS_CHANGED, actor_id=actor_id, fields=["stripe_account_id"])
    payment_settings.forget_cached()
    return account["id"]


def onboarding_link(state: PluginState, account_id: str) -> str:
    """A new single-use link to Stripe's hosted onboarding of the school's account (no transaction is held)."""
    settings = payment_settings.load(state.session)
    link = state.platform_gateway.create_account_link({
        "account": account_id, "type": "account_onboarding",
        "refresh_url": public_url("lms_stripe.admin_connect_refresh"),
        "return_url": public_url("lms_stripe.admin_connect_return"),
    }, api_key=settings.secret_key)
    return link["url"]


def check_now(state: PluginState, *, now: int) -> AccountStatus:
    """Read the school's account from Stripe and record it (the administrator is back from onboarding: the
    event may come later), in the caller's transaction."""
    settings = payment_settings.load(state.session)
    if not settings.stripe_account_id:
        return status(settings)
    account = state.platform_gateway.retrieve_account(settings.stripe_account_id, api_key=settings.secret_key)
    apply_account(state.session, account, seen_at=now, read=True)
    return status(payment_settings.load(state.session))
