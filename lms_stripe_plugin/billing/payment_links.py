"""Payment links: an administrator's link to a public page of ours where a fixed amount, or an amount of the
payer's choice between a minimum and a maximum, is paid through Checkout; every payment gets a Stripe invoice
(Checkout's ``invoice_creation``). Stripe's own Payment Links take no customer, so each payment is a Checkout
Session of ours, like a payment request's Pay click (`paying`).

Who may pay: whoever holds the address (it is meant for a school's website), signed in or not; someone not
signed in types a name and an e-mail address, to which the invoice is made out. A link for one learner is
paid by that learner only, signed in: anyone else is told so, and nothing is written.

When a use is counted: when a payment is made. From the Pay click until its Checkout is paid, fails or expires
(``LMS_STRIPE_CHECKOUT_EXPIRY`` after the click), the click holds one use, so that a link with one use left is
paid once however many people click at the same moment (`paying.hold_use`).

The address's token is random and stored hashed, for lookups, and encrypted (`core.crypto`, as the settings'
secrets), so that administrators see the address again; it is never logged.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timezone

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..accounts import settings as payment_settings
from ..core import audit, crypto, schools
from ..core.enums import AttemptStatus, AuditAction, LinkAvailability, PaymentLinkStatus
from ..core.i18n import current_locale, gettext as _
from ..core.models import PaymentAttempt, PaymentLink, utcnow
from ..core.state import PluginState
from ..core.txn import transition
from ..core.urls import public_url
from ..errors import NotPurchasable, UnreadableSecret, ValidationFailed
from ..money import Money, MoneyError, check_chargeable
from . import balances, customers, legal, links, paying, taxes

MAX_TITLE = 200
MAX_PURPOSE = 1000
MAX_USES = 1_000_000
#: What Stripe takes as an invoice's custom field value (the payer's name).
MAX_NAME = 140


class LinkRefused(NotPurchasable):
    """This link cannot be paid now, or not by this payer, or not this amount; the message says why."""


@dataclass(frozen=True)
class LinkInput:
    """A new link as an administrator describes it: amounts in minor units of ``currency``, tax-inclusive."""

    title: str
    purpose: str
    currency: str
    vat_rate: int  # basis points
    amount: int | None = None  # fixed; else the payer's, from ``minimum`` to ``maximum``
    minimum: int | None = None
    maximum: int | None = None
    user_id: str | None = None
    max_uses: int | None = None
    expires_on: date | None = None  # the last day it can be paid
    topup: bool = False  # tops up ``user_id``'s prepaid balance: no invoice, no VAT


@dataclass(frozen=True)
class Payer:
    """Who pays: a signed-in user (``user_id``), or the name and e-mail address typed on the page."""

    name: str
    email: str
    user_id: str | None = None


# -- an administrator's links --------------------------------------------------------------------------------


def create(state: PluginState, data: LinkInput, *, actor_id: str | None) -> PaymentLink:
    """Check and write a new link (its address: `page_url`)."""
    check(state, data)
    token = links.new_token()
    link = PaymentLink(
        token_hash=links.token_hash(token), token_encrypted=crypto.encrypt(token), title=data.title,
        purpose=data.purpose, currency=data.currency, amount=data.amount, minimum=data.minimum,
        maximum=data.maximum, vat_rate=data.vat_rate, user_id=data.user_id, max_uses=data.max_uses,
        expires_at=_end_of(data.expires_on) if data.expires_on else None, status=PaymentLinkStatus.ACTIVE,
        uses=0, held=0, created_by=actor_id, topup=data.topup)
    state.session.add(link)
    state.session.flush()
    audit.record(state.session, AuditAction.PAYMENT_LINK_CREATED, actor_id=actor_id, user_id=data.user_id,
                 link=link.id, title=link.title, amount=data.amount, minimum=data.minimum, maximum=data.maximum,
                 currency=data.currency, topup=data.topup)
    return link


def check(state: PluginState, data: LinkInput) -> None:
    """Raise `ValidationFailed` with every field at fault (the form checked the same, and the table's
    constraints refuse what slips past both)."""
    errors: dict[str, str] = {}
    if not data.title.strip() or len(data.title) > MAX_TITLE:
        errors["title"] = _("Enter a title of at most %(n)s characters.", n=MAX_TITLE)
    if not data.purpose.strip() or len(data.purpose) > MAX_PURPOSE:
        errors["purpose"] = _("Say what the payment is for, in at most %(n)s characters.", n=MAX_PURPOSE)
    errors.update(_amount_errors(data))
    if not 0 <= data.vat_rate <= 10000:
        errors["vat_rate"] = _("Enter a VAT rate between 0 and 100, 0 if none applies.")
    if data.user_id is not None and state.host.get_user(data.user_id) is None:
        errors["learner"] = _("Enter the id of a learner of the LMS.")
    if data.max_uses is not None and not 1 <= data.max_uses <= MAX_USES:
        errors["max_uses"] = _("Enter a number of uses from 1 to %(n)s, or leave it empty.", n=MAX_USES)
    if data.expires_on is not None and data.expires_on < utcnow().date():
        errors["expires_on"] = _("The end date is in the past.")
    if data.topup:
        errors = {**_topup_errors(state, data), **errors}
    if errors:
        raise ValidationFailed(errors, _("The payment link was not created."))


def _topup_errors(state: PluginState, data: LinkInput) -> dict[str, str]:
    """A top-up link: for one learner (whose balance it tops up), with no VAT (a payment on account: the
    course the balance pays is invoiced with its VAT), its amounts within the school's top-up limits."""
    settings = payment_settings.load(state.session)
    if not settings.prepaid_enabled:
        return {"topup": _("Prepaid balances are off in the payment settings: turn them on first.")}
    errors = {}
    if data.user_id is None:
        errors["learner"] = _("A top-up link is for one learner: enter their id.")
    if data.vat_rate:
        errors["vat_rate"] = _("A top-up carries no VAT (the course it pays is invoiced with its VAT): enter 0.")
    for name in ("amount", "minimum", "maximum"):
        value = getattr(data, name)
        error = balances.topup_amount_error(settings, Money(value, data.currency)) if value is not None else None
        if error:
            errors[name] = error
    return errors


def _amount_errors(data: LinkInput) -> dict[str, str]:
    fixed, free = data.amount is not None, data.minimum is not None or data.maximum is not None
    if fixed == free:
        return {"amount": _("Enter a fixed amount, or a minimum and a maximum.")}
    if not fixed and (data.minimum is None or data.maximum is None):
        return {"minimum" if data.minimum is None else "maximum": _("Enter a minimum and a maximum.")}
    errors = {}
    for name in ("amount", "minimum", "maximum"):
        value = getattr(data, name)
        if value is not None and not _chargeable(value, data.currency):
            errors[name] = _("Stripe cannot charge this amount in %(currency)s.", currency=data.currency)
    if not errors and not fixed and (data.minimum or 0) > (data.maximum or 0):
        errors["maximum"] = _("The maximum must be at least the minimum.")
    return errors


def _chargeable(amount: int, currency: str) -> bool:
    try:
        check_chargeable(Money(amount, currency))
    except MoneyError:
        return False
    return True


def _end_of(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), timezone.utc)


def disable(state: PluginState, link: PaymentLink, *, actor_id: str | None) -> None:
    """Disable a link: its page then says so, and the Checkouts open on it are expired at Stripe."""
    if not transition(state.session, link, (PaymentLinkStatus.ACTIVE,), PaymentLinkStatus.DISABLED,
                      disabled_at=utcnow(), disabled_by=actor_id):
        raise LinkRefused(_("This payment link is disabled already."))
    for attempt in state.session.scalars(select(PaymentAttempt).where(
            PaymentAttempt.link_id == link.id, PaymentAttempt.status == AttemptStatus.OPEN)):
        paying.retire(state, attempt)
    audit.record(state.session, AuditAction.PAYMENT_LINK_DISABLED, actor_id=actor_id, user_id=link.user_id,
                 link=link.id, title=link.title)


def rotate_tokens(session) -> dict[int, payment_settings.SecretState]:
    """``flask lms-stripe secrets rotate``: every link's token under the first encryption key, as the settings'
    secrets, in the caller's transaction; what happened to each link's."""
    outcomes = {}
    for link in session.scalars(select(PaymentLink).order_by(PaymentLink.id)
                                .execution_options(**{schools.ALL_SCHOOLS: True})):  # every school's
        try:
            fresh = crypto.rotate(link.token_encrypted)
        except UnreadableSecret:
            outcomes[link.id] = payment_settings.SecretState.UNREADABLE
            continue
        if fresh is not None:
            link.token_encrypted = fresh
        outcomes[link.id] = payment_settings.SecretState.REENCRYPTED if fresh else payment_settings.SecretState.CURRENT
    return outcomes


def page(session, *, before_id: int | None, limit: int) -> tuple[list[PaymentLink], bool]:
    """One page of links, newest first, older than ``before_id``; and whether more follow."""
    query = select(PaymentLink)
    if before_id:
        query = query.where(PaymentLink.id < before_id)
    rows = session.scalars(query.order_by(PaymentLink.id.desc()).limit(limit + 1)).all()
    return list(rows[:limit]), len(rows) > limit


def payments(session, link: PaymentLink) -> list[PaymentAttempt]:
    """The link's payments, made or under way (a bank debit), newest first, with their invoices."""
    return list(session.scalars(select(PaymentAttempt).options(selectinload(PaymentAttempt.invoice)).where(
        PaymentAttempt.link_id == link.id,
        PaymentAttempt.status.in_((AttemptStatus.PAID, AttemptStatus.PROCESSING))).order_by(PaymentAttempt.id.desc())))


# -- its address ------------------------------------------------------------------------------------------------


def find(session, token: str) -> PaymentLink | None:
    """The link a token opens, or None."""
    hashed = links.token_hash(token)
    return schools.by_token(session, select(PaymentLink).where(PaymentLink.token_hash == hashed)) if hashed else None


def token_of(link: PaymentLink) -> str:
    """The link's token (`errors.UnreadableSecret` if the encryption keys changed without the old one kept)."""
    return crypto.decrypt(link.token_encrypted)


def page_url(link: PaymentLink, token: str | None = None) -> str:
    """The link's public page, on the configured public address (never the request's Host)."""
    return public_url("lms_stripe.pay_link", token=token or token_of(link))


def script_url(link: PaymentLink, token: str | None = None) -> str:
    """The small script that opens the link's page in a window of its own (`web.link_button`)."""
    return public_url("lms_stripe.link_button", token=token or token_of(link))


# -- paying one --------------------------------------------------------------------------------------------------


def availability(link: PaymentLink) -> LinkAvailability:
    """Whether the link can be paid now."""
    if link.status != PaymentLinkStatus.ACTIVE:
        return LinkAvailability.DISABLED
    if link.expires_at is not None and _aware(link.expires_at) <= utcnow():
        return LinkAvailability.EXPIRED
    if link.max_uses is not None and link.uses >= link.max_uses:
        return LinkAvailability.USED_UP
    if link.max_uses is not None and link.uses + link.held >= link.max_uses:
        return LinkAvailability.FULL
    return LinkAvailability.AVAILABLE


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def closed_message(link: PaymentLink) -> str | None:
    """What the page says instead of its form when the link cannot be paid now; None when it can."""
    state = availability(link)
    if state == LinkAvailability.DISABLED:
        return _("This payment link is disabled: nothing can be paid through it.")
    if state == LinkAvailability.EXPIRED:
        return _("This payment link has expired: nothing can be paid through it any more.")
    if state == LinkAvailability.USED_UP:
        return _("This payment link has been used as many times as it allows: nothing more can be paid through it.")
    if state == LinkAvailability.FULL:
        return _("Every use of this payment link is taken by a payment under way. Try again later: a payment "
                 "not completed frees its place when its checkout page expires.")
    return None


def payer_refusal(link: PaymentLink, user_id: str | None) -> str | None:
    """Why this visitor may not pay a link for one learner (None: they may)."""
    if link.user_id is None or link.user_id == user_id:
        return None
    if user_id is None:
        return _("This payment link is for one learner: sign in to pay.")
    return _("This payment link is for another learner.")


def limits(link: PaymentLink) -> tuple[int, int]:
    """The smallest and largest amounts the link takes (equal for a fixed amount)."""
    if link.amount is not None:
        return link.amount, link.amount
    return link.minimum or 0, link.maximum or 0


def check_amount(link: PaymentLink, amount: int) -> None:
    """Raise `LinkRefused` unless the link takes ``amount`` (in its currency's minor units)."""
    least, most = limits(link)
    locale = current_locale()
    if link.amount is not None and amount != link.amount:
        raise LinkRefused(_("The amount of this link is %(amount)s.",
                            amount=Money(link.amount, link.currency).format(locale)))
    if amount > most:
        raise LinkRefused(_("The amount must be at most %(max)s.", max=Money(most, link.currency).format(locale)))
    if amount < least:
        raise LinkRefused(_("The amount must be at least %(min)s.", min=Money(least, link.currency).format(locale)))


def reserve(state: PluginState, link: PaymentLink, payer: Payer, amount: int, *, return_url: str) -> paying.PayPlan:
    """A Pay click on the link: check, then reuse the payer's open Checkout for the same amount, or hold a use
    and write a new attempt. ``return_url`` is the link's page, which the payer comes back to."""
    session = state.session
    if not payment_settings.load(session).active:
        raise LinkRefused(_("Online payment is not available at the moment."))
    refusal = payer_refusal(link, payer.user_id)
    if refusal is None and availability(link) not in (LinkAvailability.AVAILABLE, LinkAvailability.FULL):
        refusal = closed_message(link)  # full: the payer's own Checkout, or one let go since, may be theirs
    if refusal is None and link.topup:
        refusal = balances.topup_refusal(payment_settings.load(session), Money(amount, link.currency), asked=True)
    if refusal:
        raise LinkRefused(refusal)
    check_amount(link, amount)
    current = _open_attempt(session, link, payer)
    if current is not None and (current.amount, current.payer_name) == (amount, payer.name) \
            and paying.still_open(current):
        return paying.PayPlan(current.id, _key(link, current), current.checkout_url, {})
    if current is not None and paying.opening(current):
        raise LinkRefused(_("Your payment page is being opened: try again in a minute."))
    if current is not None:
        paying.retire(state, current)
    paying.release_stale(state, link)
    if not paying.hold_use(session, link, amount):
        session.refresh(link)
        raise LinkRefused(closed_message(link) or _("This payment link cannot be paid now: reload the page."))
    attempt = PaymentAttempt(link_id=link.id, amount=amount, currency=link.currency, status=AttemptStatus.OPEN,
                             expires_at=paying.expiry(), payer_user_id=payer.user_id, payer_name=payer.name,
                             payer_email=payer.email)
    session.add(attempt)
    session.flush()
    return _plan(state, link, payer, attempt, return_url)


def _topup_plan(state: PluginState, link: PaymentLink, payer: Payer, attempt: PaymentAttempt,
                metadata: dict[str, str], return_url: str) -> paying.PayPlan:
    """A top-up link's session: a payment on account of the learner's customer (created first if new), no
    invoice; paid, it goes on their balance (`paying.sync_session`)."""
    settings = payment_settings.load(state.session)
    params = paying.topup_params(state, attempt, metadata, return_url)
    known = customers.known(state.session, payer.user_id, livemode=settings.livemode) if payer.user_id else None
    if known:
        params["customer"] = known
        return paying.PayPlan(attempt.id, _key(link, attempt), None, params)
    return paying.PayPlan(attempt.id, _key(link, attempt), None, params, customer=customers.CustomerWanted(
        payer.user_id or "", payer.email or None, payer.name or None, current_locale()))


def _key(link: PaymentLink, attempt: PaymentAttempt) -> str:
    return f"lms-link-{link.id}-{attempt.id}"


def _open_attempt(session, link: PaymentLink, payer: Payer) -> PaymentAttempt | None:
    """The payer's open Checkout on this link (a second click, the back button): by their account, or by the
    e-mail address typed."""
    who = PaymentAttempt.payer_user_id == payer.user_id if payer.user_id else \
        (PaymentAttempt.payer_user_id.is_(None) & (PaymentAttempt.payer_email == payer.email))
    return session.scalars(select(PaymentAttempt).where(
        PaymentAttempt.link_id == link.id, PaymentAttempt.status == AttemptStatus.OPEN, who)
        .order_by(PaymentAttempt.id.desc()).limit(1)).first()


def _plan(state: PluginState, link: PaymentLink, payer: Payer, attempt: PaymentAttempt,
          return_url: str) -> paying.PayPlan:
    """The click's Checkout Session: the amount as one line of the link's title, its VAT as an inclusive tax
    rate (created at Stripe first if new), an invoice issued for the payment, made out to the payer."""
    settings = payment_settings.load(state.session)
    metadata = {"lms_attempt_id": str(attempt.id), "lms_link_id": str(link.id)}
    if payer.user_id:
        metadata["lms_user_id"] = payer.user_id
    if link.topup:
        return _topup_plan(state, link, payer, attempt, metadata, return_url)
    params = paying.session_params(state, attempt, metadata, return_url)
    params["line_items"] = [{"quantity": 1, "price_data": {
        "currency": link.currency.lower(), "unit_amount": attempt.amount, "tax_behavior": "inclusive",
        "product_data": {"name": link.title[:250], "description": link.purpose[:MAX_PURPOSE],
                         "metadata": {"lms_link_id": str(link.id)}}}}]
    # The seller's legal mentions too (billing/legal.py), in the payer's language: the Checkout's.
    invoice_data = legal.checkout_invoice_data(legal.mentions(settings, current_locale()),
                                               first=((_("Paid by")[:40], payer.name[:MAX_NAME]),))
    invoice_data.update({"description": link.purpose[:MAX_PURPOSE], "metadata": metadata})
    params["invoice_creation"] = {"enabled": True, "invoice_data": invoice_data}
    params["payment_intent_data"] = {"metadata": metadata, "description": link.title[:1000]}
    known = customers.known(state.session, payer.user_id, livemode=settings.livemode) if payer.user_id else None
    if known:
        params["customer"] = known
    else:  # a customer with the payer's address, made by Checkout, so that the invoice is made out to them
        params["customer_email"], params["customer_creation"] = payer.email, "always"
    if not link.vat_rate:
        return paying.PayPlan(attempt.id, _key(link, attempt), None, params)
    rate = taxes.wanted(link.vat_rate)
    stripe_rate = taxes.known(state.session, rate, livemode=settings.livemode)
    if stripe_rate:
        return paying.PayPlan(attempt.id, _key(link, attempt), None, taxes.with_tax_rate(params, stripe_rate))
    return paying.PayPlan(attempt.id, _key(link, attempt), None, params, tax_rate=rate)
