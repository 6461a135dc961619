"""Stripe Connect: connected accounts configured by their controller properties, and what onboarding and
verification do to an account.

Accounts (``POST /v1/accounts``) are the platform's: created without a ``Stripe-Account`` header, visible to
the platform and to the account itself, never to another connected account. The sandbox models the accounts
of platforms whose users are businesses with their own Stripe Dashboard: ``controller[stripe_dashboard][type]
=full``, ``controller[fees][payer]=account``, ``controller[losses][payments]=stripe`` and
``controller[requirement_collection]=stripe`` (the defaults the SDK's ``AccountCreateParams`` document); other
controller values are a 400 ``parameter_unsupported``, and ``losses[payments]=application`` without
``fees[payer]=application`` is refused as Stripe documents. ``type`` (deprecated for ``controller``) is not
modelled.

Requirements follow the account's facts (:class:`Facts`, kept in ``state.private[account_id]``):

- until onboarding has every detail (:data:`ONBOARDING_FIELDS`), what is missing is ``currently_due``,
  ``eventually_due`` and ``past_due`` (a new account cannot take charges: ``disabled_reason`` is
  ``requirements.past_due``) and ``details_submitted`` is false;
- once submitted, Stripe verifies: ``pending_verification`` lists what it checks (``disabled_reason``
  ``requirements.pending_verification``), then the verification's outcome: ``verified`` (charges and
  payouts enabled, capabilities active), ``documents_required`` (:data:`DOCUMENT_FIELD` ``currently_due``: past
  due at once for an account never enabled, else due by a ``current_deadline`` :data:`DOCUMENT_DAYS` days
  later, charges kept until then) or ``pending`` (it waits). The outcome is the account's planned one
  (``POST /_sandbox/accounts/{id}/verification``), else ``create_app(account_verification=...)``;
- ``POST /_sandbox/accounts/{id}/disable`` disables charges later with a ``requirements.disabled_reason``.

Every change fires ``account.updated`` (with ``previous_attributes``) on the connected account: the event
carries ``account`` and goes to the Connect endpoint. Adding the payout bank account fires
``account.external_account.created``.

Account Links, which lead a browser to the onboarding pages, are in ``account_links.py``.
"""

from __future__ import annotations

import contextlib
import copy
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from stripe._account import Account as _SdkAccount

from .errors import StripeError, invalid_param, resource_missing
from .ids import new_id, random_string
from .listing import list_envelope
from .params import Params
from .payment_method_configurations import configuration_object
from .resources import merged_metadata, valid_email
from .state import EVERY_ACCOUNT, SandboxState, locked

#: Where the platform is established (the sandbox's account is German).
PLATFORM_COUNTRY = "DE"
#: The countries the sandbox creates connected accounts in, with the currency of their payouts.
COUNTRY_CURRENCIES = {
    "AT": "eur", "BE": "eur", "CH": "chf", "DE": "eur", "ES": "eur", "FI": "eur", "FR": "eur", "GB": "gbp",
    "IE": "eur", "IT": "eur", "LU": "eur", "NL": "eur", "PT": "eur", "US": "usd",
}
#: What onboarding collects from a company, in the order Stripe lists requirements (alphabetical).
ONBOARDING_FIELDS = (
    "business_profile.mcc", "business_profile.product_description", "business_type", "company.name",
    "external_account", "tos_acceptance.date", "tos_acceptance.ip",
)
#: What Stripe verifies once the details are submitted.
VERIFIED_FIELDS = ("company.name", "external_account")
#: The document verification asks for when it needs more.
DOCUMENT_FIELD = "company.verification.document"
#: Days an enabled account has to provide a requested document before its charges are disabled.
DOCUMENT_DAYS = 14
VERIFICATION_OUTCOMES = ("verified", "documents_required", "pending")
#: The controller of an account with its own full Stripe Dashboard, Stripe collecting its requirements.
FULL_DASHBOARD = {("fees", "payer"): "account", ("losses", "payments"): "stripe",
                  ("requirement_collection",): "stripe", ("stripe_dashboard", "type"): "full"}
CAPABILITIES = ("card_payments", "transfers")
_PROFILE = {"mcc", "name", "product_description", "support_email", "support_phone", "support_url", "url"}
_CREATE_PARAMS = {"business_profile", "business_type", "capabilities", "company", "controller", "country",
                  "default_currency", "email", "metadata"}
_UPDATE_PARAMS = {"business_profile", "business_type", "company", "email", "metadata"}
#: What only a platform collecting requirements may change once onboarding has started (an Account Link).
_LOCKED_BY_LINK = ("business_type", "company")


def _disabled_reasons() -> tuple[str, ...]:
    hint = typing.get_type_hints(_SdkAccount.Requirements)["disabled_reason"]
    literal = next(a for a in typing.get_args(hint) if typing.get_origin(a) is typing.Literal)
    return typing.get_args(literal)


#: ``requirements.disabled_reason`` values of the pinned API (the SDK's Account object).
DISABLED_REASONS = _disabled_reasons()


@dataclass
class Facts:
    """What Stripe knows of a connected account, from which its requirements follow."""

    provided: set[str] = field(default_factory=set)
    review: str = "none"  # none, pending, documents_required, verified
    pending: tuple[str, ...] = ()
    enabled_before: bool = False
    deadline: int | None = None
    disabled_reason: str | None = None
    plan: str | None = None  # the outcome of the next verification (None: the sandbox's default)
    linked: bool = False  # an Account Link was created: onboarding has started
    public: dict[str, Any] = field(default_factory=dict)  # terms_of_service_url and address of its Dashboard


def facts(state: SandboxState, account_id: str) -> Facts:
    """The facts of an account."""
    return state.private[account_id]["facts"]


# -- errors ----------------------------------------------------------------------------------


def not_a_platform() -> StripeError:
    """What Stripe answers an account that acts on other accounts without being their platform."""
    return StripeError(
        "Only Stripe Connect platforms can work with other accounts. If you specified a client_id parameter, "
        "make sure it's correct. If you need to setup a Stripe Connect platform, you can do so at "
        "https://dashboard.stripe.com/account/applications/settings.")


def no_access(api_key_mask: str, account_id: str) -> StripeError:
    """Stripe's 403 for an account the key cannot act on (unknown, or not one of the platform's)."""
    return StripeError(
        f"The provided key '{api_key_mask}' does not have access to account '{account_id}' (or that account does "
        "not exist). Application access may have been revoked.", status=403, code="account_invalid")


def connected_account(state: SandboxState, account_id: str | None) -> dict[str, Any] | None:
    """The platform's connected account with this id, whatever the running code's scope."""
    with state.acting_as(None):
        return state.get(account_id, "account")


# -- creating and updating accounts -----------------------------------------------------------


@locked
def create_account(state: SandboxState, params: Params) -> dict[str, Any]:
    """``POST /v1/accounts``: a connected account of the platform, onboarding not started."""
    if state.current_account() is not None:
        raise not_a_platform()
    params.reject_unimplemented(_CREATE_PARAMS)
    controller = _controller(params.sub("controller"))
    country = _country(params)
    currency = _default_currency(params, country)
    account, known = _account_object(state, country, currency, controller), Facts()
    _apply_details(account, known, params, creating=True)  # every refusal before anything is stored
    state.add(account, {"facts": known})
    with state.acting_as(account["id"]):  # each account has its own default payment method configuration
        state.add(configuration_object(state, config_id=new_id("pmc"), name="Default", is_default=True))
    refresh(state, account)
    return account


def _controller(params: Params) -> dict[str, Any]:
    payer = params.sub("fees").string("payer", default="account")
    losses = params.sub("losses").string("payments", default="stripe")
    if losses == "application" and payer != "application":
        # The SDK's documentation of the parameter: "Setting controller.losses.payments=application requires
        # controller.fees.payer=application" (Stripe's wording of the refusal is not published).
        raise invalid_param("controller[losses][payments]",
                            "controller[losses][payments]=application requires controller[fees][payer]=application.")
    for path, modelled in FULL_DASHBOARD.items():
        node = params
        for key in path[:-1]:
            node = node.sub(key)
        if node.string(path[-1], default=modelled) != modelled:
            raise StripeError(
                f"The Stripe sandbox models only connected accounts with their own full Stripe Dashboard "
                f"(controller[{']['.join(path)}]={modelled}).", code="parameter_unsupported",
                param=node.name(path[-1]))
    return {"fees": {"payer": "account"}, "is_controller": True, "losses": {"payments": "stripe"},
            "requirement_collection": "stripe", "stripe_dashboard": {"type": "full"}, "type": "application"}


def _country(params: Params) -> str:
    country = params.string("country", default=PLATFORM_COUNTRY).upper()
    if len(country) != 2 or not country.isalpha():
        raise invalid_param("country", (
            f"Country '{country}' is unknown. Try using a 2-character alphanumeric country code instead, such as "
            "'US', 'EG', or 'GB'. A full list of country codes is available at https://stripe.com/docs/api#country_codes"))
    if country not in COUNTRY_CURRENCIES:
        raise StripeError(f"The Stripe sandbox creates connected accounts in {', '.join(COUNTRY_CURRENCIES)} only.",
                          code="parameter_unsupported", param="country")
    return country


def _default_currency(params: Params, country: str) -> str:
    currency = (params.string("default_currency") or COUNTRY_CURRENCIES[country]).lower()
    if currency != COUNTRY_CURRENCIES[country]:
        raise invalid_param("default_currency", (
            f"{currency} is not a supported default currency for an account in {country}: the sandbox pays out "
            f"accounts in {country} in {COUNTRY_CURRENCIES[country]}."))
    return currency


def _account_object(state: SandboxState, country: str, currency: str, controller: dict[str, Any]) -> dict[str, Any]:
    account_id = new_id("acct", 16)
    return {
        "id": account_id, "object": "account", "business_profile": _empty_profile(), "business_type": None,
        "capabilities": {}, "charges_enabled": False, "company": _empty_company(), "controller": controller,
        "country": country, "created": state.now(), "default_currency": currency, "details_submitted": False,
        "email": None,
        "external_accounts": {**list_envelope([], f"/v1/accounts/{account_id}/external_accounts"), "total_count": 0},
        "future_requirements": _requirements(), "metadata": {}, "payouts_enabled": False,
        "requirements": _requirements(),
        "settings": {
            "branding": {"icon": None, "logo": None, "primary_color": None, "secondary_color": None},
            "card_payments": {"decline_on": {"avs_failure": False, "cvc_failure": False},
                              "statement_descriptor_prefix": None, "statement_descriptor_prefix_kana": None,
                              "statement_descriptor_prefix_kanji": None},
            "dashboard": {"display_name": None, "timezone": "Etc/UTC"},
            "payments": {"statement_descriptor": None, "statement_descriptor_kana": None,
                         "statement_descriptor_kanji": None},
            "payouts": {"debit_negative_balances": True, "schedule": {"delay_days": 7, "interval": "daily"},
                        "statement_descriptor": None},
        },
        "tos_acceptance": {"date": None, "ip": None, "service_agreement": "full", "user_agent": None},
        # The account type these controller properties amount to (docs: "Each account type maps to a set of
        # controller properties").
        "type": "standard",
    }


def _empty_profile() -> dict[str, Any]:
    return {"annual_revenue": None, "estimated_worker_count": None, "mcc": None,
            "minority_owned_business_designation": None, "name": None, "product_description": None,
            "support_address": None, "support_email": None, "support_phone": None, "support_url": None, "url": None}


def _empty_company() -> dict[str, Any]:
    address = {"city": None, "country": None, "line1": None, "line2": None, "postal_code": None, "state": None}
    return {"address": address, "directors_provided": False, "executives_provided": False, "name": None,
            "owners_provided": False, "phone": None, "tax_id_provided": False,
            "verification": {"document": {"back": None, "details": None, "details_code": None, "front": None}}}


def _requirements() -> dict[str, Any]:
    return {"alternatives": [], "current_deadline": None, "currently_due": [], "disabled_reason": None,
            "errors": [], "eventually_due": [], "past_due": [], "pending_verification": []}


@locked
def update_account(state: SandboxState, account_id: str, params: Params) -> dict[str, Any]:
    """``POST /v1/accounts/{id}``: the business profile, email and metadata; the business type and company
    until onboarding starts (then only a platform that collects requirements may change them)."""
    account = _visible_account(state, account_id)
    if state.current_account() is not None:
        raise not_a_platform()
    params.reject_unimplemented(_UPDATE_PARAMS)
    if facts(state, account_id).linked:
        for key in _LOCKED_BY_LINK:
            if key in params.data:
                raise invalid_param(key, (
                    f"{key} can no longer be changed: onboarding has started (an Account Link was created) and "
                    "Stripe collects this account's requirements (controller.requirement_collection=stripe)."))
    with changes(state, account):
        _apply_details(account, facts(state, account_id), params, creating=False)
    return account


def _visible_account(state: SandboxState, account_id: str) -> dict[str, Any]:
    account = state.get(account_id, "account")
    if account is None:
        raise resource_missing("account", account_id)
    return account


def _apply_details(account: dict[str, Any], known: Facts, params: Params, *, creating: bool) -> None:
    if params.has("email"):
        email = params.string("email", max_length=800)
        if not valid_email(email or ""):
            raise invalid_param("email", f"Invalid email address: {email}")
        account["email"] = email
    if "metadata" in params.data:
        account["metadata"] = merged_metadata(account["metadata"], params)
    _apply_profile(account, params.sub("business_profile"), known)
    if params.has("business_type"):
        account["business_type"] = params.string("business_type")
        known.provided.add("business_type")
    company = params.sub("company")
    company.reject_unimplemented({"name"})
    if company.has("name"):
        account["company"]["name"] = company.string("name", max_length=100)
        known.provided.add("company.name")
    if creating:
        _check_capabilities(params.sub("capabilities"))


def _apply_profile(account: dict[str, Any], profile: Params, known: Facts) -> None:
    profile.reject_unimplemented(_PROFILE)
    target = account["business_profile"]
    if profile.has("mcc"):
        mcc = profile.string("mcc")
        if not (mcc and len(mcc) == 4 and mcc.isdigit()):
            raise invalid_param(profile.name("mcc"), f"Invalid mcc: {mcc}. It must be a 4-digit merchant category code.")
        target["mcc"] = mcc
        known.provided.add("business_profile.mcc")
    if profile.has("product_description"):
        target["product_description"] = profile.string("product_description", max_length=40000)
        known.provided.add("business_profile.product_description")
    for key in ("name", "support_email", "support_phone", "support_url", "url"):
        if key in profile.data:
            target[key] = profile.string(key, max_length=5000)
    if target["name"]:
        account["settings"]["dashboard"]["display_name"] = target["name"]


def _check_capabilities(capabilities: Params) -> None:
    """Stripe onboards full-Dashboard accounts for card payments and transfers (:func:`refresh` shows their
    status); ``capabilities`` may ask for them too, and the sandbox models no other."""
    capabilities.reject_unimplemented(CAPABILITIES)
    for name in CAPABILITIES:
        requested = capabilities.sub(name)
        requested.reject_unimplemented({"requested"})
        if requested.boolean("requested") is False:
            raise StripeError(f"The Stripe sandbox onboards full-Dashboard accounts for {name}: it cannot be "
                              "left out.", code="parameter_unsupported", param=requested.name("requested"))


# -- requirements ---------------------------------------------------------------------------------


@contextlib.contextmanager
def changes(state: SandboxState, account: dict[str, Any]) -> Iterator[None]:
    """``with changes(state, account):`` -- apply the facts changed inside to the account, then fire
    ``account.updated`` with what changed (``previous_attributes``), if anything did. A refused change (an
    exception inside) leaves the account and its facts as they were."""
    before, before_facts = copy.deepcopy(account), copy.deepcopy(facts(state, account["id"]))
    try:
        yield
    except BaseException:
        account.clear()
        account.update(before)
        state.private[account["id"]]["facts"] = before_facts
        raise
    refresh(state, account)
    previous = previous_attributes(before, account)
    if previous:
        state.emit("account.updated", account, previous, account=account["id"])


def previous_attributes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The values ``before`` had where ``after`` differs, nested as in Stripe's ``previous_attributes``."""
    previous: dict[str, Any] = {}
    for key, old in before.items():
        new = after.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict) and old.get("object") != "list":
            previous[key] = previous_attributes(old, new)
        else:
            previous[key] = copy.deepcopy(old)
    return previous


def refresh(state: SandboxState, account: dict[str, Any]) -> None:
    """Set ``details_submitted``, ``charges_enabled``, ``payouts_enabled``, ``capabilities`` and
    ``requirements`` from the account's facts."""
    known = facts(state, account["id"])
    missing = [name for name in ONBOARDING_FIELDS if name not in known.provided]
    requirements = _requirements()
    enabled = _fill_requirements(requirements, known, missing, state.now())
    if known.disabled_reason:
        enabled, requirements["disabled_reason"] = False, known.disabled_reason
    account["requirements"] = requirements
    account["details_submitted"] = not missing
    account["charges_enabled"] = enabled
    account["payouts_enabled"] = enabled and bool(account["external_accounts"]["data"])
    status = "active" if enabled else "pending" if known.review == "pending" else "inactive"
    account["capabilities"] = {name: status for name in CAPABILITIES}


def _fill_requirements(requirements: dict[str, Any], known: Facts, missing: list[str], now: int) -> bool:
    """Fill ``requirements``; whether charges are enabled."""
    if missing:
        requirements.update(currently_due=missing, eventually_due=list(missing), past_due=list(missing),
                            disabled_reason="requirements.past_due")
        return False
    if known.review == "pending":
        requirements["pending_verification"] = list(known.pending)
        if known.enabled_before:
            return True
        requirements["disabled_reason"] = "requirements.pending_verification"
        return False
    if known.review == "documents_required":
        requirements.update(currently_due=[DOCUMENT_FIELD], eventually_due=[DOCUMENT_FIELD])
        if known.deadline is not None and now < known.deadline:
            requirements["current_deadline"] = known.deadline
            return True
        requirements.update(past_due=[DOCUMENT_FIELD], disabled_reason="requirements.past_due")
        return False
    return known.review == "verified"


# -- onboarding and verification ------------------------------------------------------------------------


def save_business(state: SandboxState, account: dict[str, Any], *, company: str, mcc: str, description: str,
                  iban: str) -> None:
    """The onboarding form's first step: the company, its activity and the bank account of its payouts."""
    with changes(state, account):
        known = facts(state, account["id"])
        account["business_type"] = account["business_type"] or "company"
        account["company"]["name"] = company
        profile = account["business_profile"]
        profile.update(mcc=mcc, product_description=description, name=profile["name"] or company)
        account["settings"]["dashboard"]["display_name"] = profile["name"]
        bank = _bank_account(state, account, iban, company)
        account["external_accounts"]["data"] = [bank]
        account["external_accounts"]["total_count"] = 1
        known.provided.update({"business_type", "company.name", "business_profile.mcc",
                               "business_profile.product_description", "external_account"})
        state.emit("account.external_account.created", bank, account=account["id"])  # then account.updated


def _bank_account(state: SandboxState, account: dict[str, Any], iban: str, holder: str) -> dict[str, Any]:
    return {
        "id": new_id("ba"), "object": "bank_account", "account": account["id"], "account_holder_name": holder,
        "account_holder_type": "company", "account_type": None, "available_payout_methods": ["standard"],
        "bank_name": "STRIPE TEST BANK", "country": iban[:2], "currency": account["default_currency"],
        "default_for_currency": True, "fingerprint": random_string(16), "future_requirements": None,
        "last4": iban[-4:], "metadata": {}, "requirements": None, "routing_number": iban[4:12], "status": "new",
    }


def submit_details(state: SandboxState, account: dict[str, Any], *, ip: str, user_agent: str | None) -> None:
    """The onboarding's verification step: the representative accepts the services agreement; Stripe then
    verifies what was submitted."""
    with changes(state, account):
        account["tos_acceptance"].update(date=state.now(), ip=ip, user_agent=user_agent)
        known = facts(state, account["id"])
        known.provided.update({"tos_acceptance.date", "tos_acceptance.ip"})
        known.review, known.pending = "pending", VERIFIED_FIELDS
    verify(state, account)


def submit_document(state: SandboxState, account: dict[str, Any], filename: str) -> None:
    """A document uploaded on the onboarding page for :data:`DOCUMENT_FIELD`; Stripe verifies it."""
    with changes(state, account):
        account["company"]["verification"]["document"]["front"] = new_id("file")
        known = facts(state, account["id"])
        known.review, known.pending, known.deadline = "pending", (DOCUMENT_FIELD,), None
        state.private[account["id"]]["document_name"] = filename
    verify(state, account)


def verify(state: SandboxState, account: dict[str, Any]) -> None:
    """Stripe's verification of what is pending: the account's planned outcome, else the sandbox's default."""
    known = facts(state, account["id"])
    if known.review != "pending":
        return
    outcome = known.plan or state.config.account_verification
    if outcome == "pending":
        return
    known.plan = None  # a plan is for one verification
    _conclude(state, account, outcome)


def _conclude(state: SandboxState, account: dict[str, Any], outcome: str) -> None:
    with changes(state, account):
        known = facts(state, account["id"])
        known.pending = ()
        if outcome == "verified":
            known.review, known.deadline, known.enabled_before = "verified", None, True
            if known.disabled_reason and not known.disabled_reason.startswith("rejected."):
                known.disabled_reason = None
            return
        known.review = "documents_required"
        if account["charges_enabled"]:
            known.deadline = state.now() + DOCUMENT_DAYS * 86400
            state.schedule(DOCUMENT_DAYS * 86400, lambda: _deadline_passed(state, account["id"]))


def _deadline_passed(state: SandboxState, account_id: str) -> None:
    with state.lock:
        account = connected_account(state, account_id)
        if account is not None:
            with changes(state, account):
                pass  # refresh() moves the document to past_due once the deadline has passed


def plan_verification(state: SandboxState, account_id: str, outcome: str) -> dict[str, Any]:
    """``POST /_sandbox/accounts/{id}/verification``: what Stripe's verification of this account says. It
    applies at once to an account whose submitted details are verified or being verified; otherwise (details
    not yet submitted, or a document awaited) it is the outcome of the account's next verification."""
    if outcome not in VERIFICATION_OUTCOMES:
        raise invalid_param("outcome", f"outcome must be one of {', '.join(VERIFICATION_OUTCOMES)}.")
    with state.lock:
        account = _control_account(state, account_id)
        known = facts(state, account_id)
        if known.disabled_reason and known.disabled_reason.startswith("rejected.") and outcome == "verified":
            raise invalid_param("outcome", f"The account was {known.disabled_reason}: a rejected account stays "
                                           "disabled.")
        if known.review in ("pending", "verified") and outcome != "pending":
            _conclude(state, account, outcome)
        else:
            known.plan = outcome
        return account


def disable_charges(state: SandboxState, account_id: str, reason: str) -> dict[str, Any]:
    """``POST /_sandbox/accounts/{id}/disable``: Stripe disables the account's charges for ``reason`` (a
    ``requirements.disabled_reason`` of the pinned API)."""
    if reason not in DISABLED_REASONS:
        raise invalid_param("reason", f"reason must be one of {', '.join(DISABLED_REASONS)}.")
    with state.lock:
        account = _control_account(state, account_id)
        with changes(state, account):
            facts(state, account_id).disabled_reason = reason
        return account


def _control_account(state: SandboxState, account_id: str) -> dict[str, Any]:
    account = connected_account(state, account_id)
    if account is None:
        raise resource_missing("account", account_id)
    return account


# -- charges on a connected account -----------------------------------------------------------------------


def require_charges_enabled(state: SandboxState) -> None:
    """Refuse a charge on a connected account that cannot take charges (the running code's account)."""
    account_id = state.current_account()
    if account_id is None:
        return
    account = connected_account(state, account_id)
    if account is not None and not account["charges_enabled"]:
        # Stripe's wording of this refusal is not published; the sandbox's.
        raise StripeError(
            f"The account {account_id} cannot currently take charges (charges_enabled is false; "
            f"requirements.disabled_reason: {account['requirements']['disabled_reason']}).")


#: The platform's Connect application, named in ``application`` of what it creates on connected accounts.
PLATFORM_APPLICATION = "ca_sbxPlatform0000000000000000"


def platform_application(state: SandboxState) -> str | None:
    """``application`` of a PaymentIntent or charge the running code creates: the platform's on a connected
    account (a direct charge), None on the platform's own account."""
    return PLATFORM_APPLICATION if state.current_account() is not None else None


def collect_application_fee(state: SandboxState, charge: dict[str, Any]) -> None:
    """A direct charge with ``application_fee_amount`` that succeeds pays the platform its fee: an
    ``application_fee`` of the platform (``application_fee.created`` on its own endpoint, without ``account``)."""
    account_id = state.current_account()
    if not charge["application_fee_amount"] or account_id is None:
        return
    fee = {
        "id": new_id("fee"), "object": "application_fee", "account": account_id,
        "amount": charge["application_fee_amount"], "amount_refunded": 0, "application": PLATFORM_APPLICATION,
        "balance_transaction": new_id("txn"), "charge": charge["id"], "created": state.now(),
        "currency": charge["currency"], "fee_source": {"charge": charge["id"], "type": "charge"}, "livemode": False,
        "originating_transaction": None, "refunded": False,
        "refunds": {**list_envelope([], "/v1/application_fees/{id}/refunds"), "total_count": 0},
    }
    fee["refunds"]["url"] = f"/v1/application_fees/{fee['id']}/refunds"
    with state.acting_as(None):
        state.add(fee)
        state.emit("application_fee.created", fee, account=None)
    charge["application_fee"] = fee["id"]


@dataclass(frozen=True)
class PublicDetails:
    """An account's public business details (its Dashboard's Settings, Public details)."""

    name: str
    address: tuple[str, ...]
    country: str
    terms_of_service_url: str | None


def public_details(state: SandboxState) -> PublicDetails:
    """The public details of the account the running code acts as: the platform's (``create_app`` options,
    ``/_sandbox/account``) or a connected account's (its business name; ``/_sandbox/account`` with
    ``account``)."""
    account_id = state.current_account()
    config = state.config
    if account_id is None:
        return PublicDetails(config.business_name, config.business_address, PLATFORM_COUNTRY,
                             config.terms_of_service_url)
    account = connected_account(state, account_id) or {}
    public = facts(state, account_id).public
    name = (account.get("business_profile") or {}).get("name") or (account.get("company") or {}).get("name")
    return PublicDetails(name or account_id, tuple(public.get("business_address", ())), account.get("country", ""),
                         public.get("terms_of_service_url"))


def scope_of(state: SandboxState, object_id: Any) -> str | None | object:
    """The account whose objects a hosted page or control endpoint about ``object_id`` acts on: its owner's
    (:data:`EVERY_ACCOUNT` for an id the sandbox does not know)."""
    if isinstance(object_id, str) and object_id in state.objects:
        return state.owner_of(object_id)
    return EVERY_ACCOUNT
