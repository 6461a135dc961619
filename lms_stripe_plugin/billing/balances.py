"""Learners' prepaid balances: an append-only ledger per learner and currency in our tables, the single
source of truth, mirrored to the Stripe customer's credit balance so that Stripe's invoices apply it.

- Every movement is a `BalanceEntry` written by `post`, once per ``key`` (a unique column), together with
  the learner's `Balance` row (locked, never below zero: a check constraint).
- Money in (a top-up paid through Checkout, an administrator's credit) and money out that the school decides
  (a debit, a top-up refunded) are mirrored at Stripe by a customer balance transaction (`mirror`, deferred
  until the entry is committed, its key derived from the entry). A credit is negative at Stripe.
- Money spent is Stripe's doing: "the credit balance automatically applies toward the next invoice finalized
  to a customer" (docs.stripe.com/billing/customer/balance). When one of our invoices comes back finalized
  with a ``starting_balance`` and ``ending_balance`` that differ, `record_spent` writes what it used, once per
  invoice. A course the balance covers is then paid with no Checkout; one it covers in part leaves the rest
  on the invoice, paid by card from My payments.
- Money Stripe gives back to the balance is Stripe's doing too, recorded from its objects, once each: a
  credit note's ``credit_amount`` (a cancelled course the balance paid, `record_credit_note`), the credit a
  voided invoice had applied ("Customer balances applied to all invoices are now debited or credited back to
  the customer when voided", API changelog 2019-12-03: `record_unapplied`), and what a payment paid beyond
  an invoice's total (``amount_overpaid``, "credited to the customer's credit balance": `record_overpaid`).

A top-up is a payment on account for courses not chosen yet: no invoice is issued for it (Checkout's
``invoice_creation`` is off); its invoice, and its VAT, is the one of the course it pays, issued when it is
spent. So is a top-up paid through a payment request or a payment link made for it (`credit_attempt`), and a
request's payment, or a settlement's part (`credit_part`), that its invoice no longer owed (`unattachable`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from ..accounts import connect, settings as payment_settings
from ..core import audit, jobs
from ..core.enums import AuditAction, BalanceEntryKind, TopUpStatus
from ..core.i18n import current_locale, gettext as _
from ..core.logs import get_logger
from ..core.models import (Balance, BalanceEntry, Invoice, PaymentAttempt, Purchase, RequestPart, TopUp, parse_row_id,
                           utcnow)
from ..core.state import PluginState
from ..errors import PaymentsError, ValidationFailed
from ..gateway.types import RefundCreateParams, SessionCreateParams
from ..money import Money
from . import customers

log = get_logger(__name__)

#: Entries written by the school or a payment, which `mirror` copies to Stripe (a spending is Stripe's own).
MIRRORED = (BalanceEntryKind.TOPUP, BalanceEntryKind.CREDIT, BalanceEntryKind.DEBIT, BalanceEntryKind.TOPUP_REFUND,
            BalanceEntryKind.REFUND_FAILED, BalanceEntryKind.ATTACHED)
#: A refund's statuses at Stripe in which no money went back: "failed", or "canceled" (docs.stripe.com/api/refunds/
#: object#refund_object-status); a refund that succeeded may still fail later (docs.stripe.com/refunds#failed-refunds).
REFUND_FAILED_STATUSES = ("failed", "canceled")
MAX_REASON = 500


class BalanceRefused(PaymentsError):
    """A movement that would take a balance below zero, or that cannot be made now."""

    status_code = 409


# -- reading ---------------------------------------------------------------------------------------------------


def balances_of(session, user_id: str) -> list[Balance]:
    return list(session.scalars(select(Balance).where(Balance.user_id == user_id).order_by(Balance.currency)))


def available(session, user_id: str, currency: str) -> Money:
    """What the learner has in ``currency`` (0 when they never had a balance in it)."""
    amount = session.scalar(select(Balance.amount).where(Balance.user_id == user_id, Balance.currency == currency))
    return Money(amount or 0, currency)


def entries_of(session, user_id: str, *, limit: int = 100) -> list[BalanceEntry]:
    """The learner's movements, newest first."""
    return list(session.scalars(
        select(BalanceEntry).join(Balance).where(Balance.user_id == user_id)
        .order_by(BalanceEntry.created_at.desc(), BalanceEntry.id.desc()).limit(limit)))


def every_balance(session, *, limit: int = 500) -> list[Balance]:
    """Every learner's balance, largest first (the administrators' list)."""
    return list(session.scalars(select(Balance).order_by(Balance.amount.desc(), Balance.id).limit(limit)))


def topups_of(session, user_id: str, *, limit: int = 50) -> list[TopUp]:
    return list(session.scalars(select(TopUp).where(TopUp.user_id == user_id, TopUp.status != TopUpStatus.OPEN)
                                .order_by(TopUp.id.desc()).limit(limit)))


# -- the ledger ------------------------------------------------------------------------------------------------


def _locked_balance(session, user_id: str, currency: str) -> Balance:
    """The learner's balance row in ``currency``, written if new, locked until the transaction ends."""
    query = select(Balance).where(Balance.user_id == user_id, Balance.currency == currency).with_for_update() \
        .execution_options(populate_existing=True)
    row = session.scalar(query)
    if row is None:
        try:
            with session.begin_nested():
                session.add(Balance(user_id=user_id, currency=currency, amount=0))
        except IntegrityError:
            pass  # written meanwhile by another movement
        row = session.scalar(query)
    return row


def post(session, *, user_id: str, currency: str, amount: int, kind: BalanceEntryKind, key: str,
         reason: str | None = None, actor_id: str | None = None, topup_id: int | None = None,
         invoice_id: int | None = None) -> BalanceEntry | None:
    """Write one movement and move the balance with it; None when ``key`` is already written (nothing is
    written twice). `BalanceRefused` when it would take the balance below zero."""
    if session.scalar(select(BalanceEntry.id).where(BalanceEntry.key == key)) is not None:
        return None
    balance = _locked_balance(session, user_id, currency)
    after = balance.amount + amount
    if after < 0:
        raise BalanceRefused(_("The balance is %(balance)s: it cannot be debited by %(amount)s.",
                               balance=balance.money.format(current_locale()),
                               amount=Money(-amount, currency).format(current_locale())))
    entry = BalanceEntry(balance_id=balance.id, kind=kind, amount=amount, balance_after=after, key=key,
                         reason=(reason or None) and reason[:MAX_REASON], actor_id=actor_id, topup_id=topup_id,
                         invoice_id=invoice_id)
    try:
        with session.begin_nested():
            session.add(entry)
    except IntegrityError:
        return None  # the same movement, written meanwhile
    balance.amount, balance.updated_at = after, utcnow()
    return entry


def mirror(state: PluginState, entry_id: int) -> None:
    """Follow-up work: copy an entry to the learner's Stripe customer balance (created first if the learner has
    no customer yet), once: its key is the entry's, and its transaction's id is recorded."""
    session = state.session
    entry = session.get(BalanceEntry, entry_id)
    if entry is None or entry.stripe_transaction_id is not None or entry.kind not in MIRRORED:
        return
    settings = payment_settings.load(session)
    user_id, currency = entry.balance.user_id, entry.balance.currency
    customer = customers.known(session, user_id, livemode=settings.livemode)
    created = None
    if customer is None:
        user = state.host.get_user(user_id)
        created = customer = customers.create(state, settings, customers.CustomerWanted(
            user_id, state.host.user_email(user) if user else None,
            state.host.user_display_name(user) if user else None, current_locale()))
    transaction = state.gateway.create_balance_transaction(customer, {
        "amount": -entry.amount, "currency": currency.lower(), "description": entry.kind.value,
        "metadata": {"lms_balance_entry_id": str(entry.id), "lms_user_id": user_id}},
        api_key=settings.secret_key, idempotency_key=f"lms-balance-entry-{entry.id}")
    if created is not None:
        customers.remember(session, user_id, created, livemode=settings.livemode)
    entry.stripe_transaction_id = transaction["id"]


def unmirrored(session) -> list[int]:
    """Entries not copied to Stripe yet (for reconciliation)."""
    return list(session.scalars(select(BalanceEntry.id).where(BalanceEntry.kind.in_(MIRRORED),
                                                               BalanceEntry.stripe_transaction_id.is_(None))
                                .order_by(BalanceEntry.id)))


def paid_from_balance(session, invoice_id: int) -> int:
    """What the balance paid of one of our invoices (less what a void gave back)."""
    total = session.scalar(select(func.sum(BalanceEntry.amount)).where(
        BalanceEntry.invoice_id == invoice_id,
        BalanceEntry.kind.in_((BalanceEntryKind.SPENT, BalanceEntryKind.UNAPPLIED))))
    return max(0, -(total or 0))


def spent_on(session, invoice_id: int) -> int:
    """What the balance paid of one of our invoices, less what Stripe gave back to it since (a credit note's
    credit, the invoice voided): what a cancellation can still credit back to the balance."""
    total = session.scalar(select(func.sum(BalanceEntry.amount)).where(
        BalanceEntry.invoice_id == invoice_id, BalanceEntry.kind.in_(
            (BalanceEntryKind.SPENT, BalanceEntryKind.CREDIT_NOTE, BalanceEntryKind.UNAPPLIED))))
    return max(0, -(total or 0))


def record_spent(session, invoice: Invoice, stripe_invoice: dict) -> BalanceEntry | None:
    """What the learner's credit paid of this invoice, as Stripe applied it at finalization (the difference of
    its ``starting_balance`` and ``ending_balance``), written once per invoice."""
    start, end = stripe_invoice.get("starting_balance"), stripe_invoice.get("ending_balance")
    if not isinstance(start, int) or not isinstance(end, int) or end - start <= 0 or invoice.user_id is None:
        return None
    used = end - start
    try:
        entry = post(session, user_id=invoice.user_id, currency=invoice.currency, amount=-used,
                     kind=BalanceEntryKind.SPENT, key=f"spent-{stripe_invoice.get('id')}", invoice_id=invoice.id)
    except BalanceRefused:
        # Stripe applied a credit our ledger does not have (one added outside the plugin): said, not hidden.
        log.error("invoice %s used %s of credit the ledger of learner %s does not have", stripe_invoice.get("id"),
                  used, invoice.user_id)
        return None
    if entry is not None:
        audit.record(session, AuditAction.BALANCE_SPENT, user_id=invoice.user_id, course_id=invoice.course_id,
                     invoice=invoice.id, amount=used, currency=invoice.currency)
    return entry


def _given_back(session, invoice: Invoice, amount: int, kind: BalanceEntryKind, key: str,
                transaction: str | None = None) -> BalanceEntry | None:
    """Write, once, money Stripe put back on the learner's balance for one of our invoices (not mirrored: the
    balance transaction is Stripe's own, ``transaction`` when its id is known)."""
    if amount <= 0 or invoice.user_id is None:
        return None
    entry = post(session, user_id=invoice.user_id, currency=invoice.currency, amount=amount, kind=kind, key=key,
                 invoice_id=invoice.id)
    if entry is None:
        return None
    if transaction and session.scalar(select(BalanceEntry.id).where(
            BalanceEntry.stripe_transaction_id == transaction)) is None:
        entry.stripe_transaction_id = transaction
    audit.record(session, AuditAction.BALANCE_RETURNED, user_id=invoice.user_id, course_id=invoice.course_id,
                 invoice=invoice.id, amount=amount, currency=invoice.currency, kind=kind.value)
    return entry


def credit_note_credit(credit_note: dict) -> int:
    """What a credit note credited to the customer's balance (its ``credit_amount``, which the object does not
    carry): its post-payment part that was neither refunded nor credited outside Stripe; 0 when it made no
    customer balance transaction."""
    if not credit_note.get("customer_balance_transaction"):
        return 0
    refunded = sum(int(entry.get("amount_refunded") or 0) for entry in credit_note.get("refunds") or [])
    post_payment = int(credit_note.get("post_payment_amount") or 0)
    return max(0, post_payment - refunded - int(credit_note.get("out_of_band_amount") or 0))


def record_credit_note(session, invoice: Invoice, credit_note: dict) -> BalanceEntry | None:
    """What a credit note of one of our invoices credited to the learner's balance (a cancellation of a course
    the balance paid, or a credit note made in the Dashboard with a ``credit_amount``), written once.

    Whatever its ``status``: Stripe voids only the credit notes of open invoices ("You can only void a credit
    note if the associated invoice is open"), and those credited no balance. A credit to the balance is
    post-payment, which comes once the credit note has taken what remained to zero: its invoice is then paid,
    and the credit is the learner's for good."""
    transaction = credit_note.get("customer_balance_transaction")
    transaction = transaction.get("id") if isinstance(transaction, dict) else transaction
    return _given_back(session, invoice, credit_note_credit(credit_note), BalanceEntryKind.CREDIT_NOTE,
                       f"credit-note-{credit_note.get('id')}", transaction)


def record_unapplied(session, invoice: Invoice, stripe_invoice: dict) -> BalanceEntry | None:
    """A voided invoice gives back the credit its finalization applied (an ``unapplied_from_invoice`` balance
    transaction at Stripe): written once, if the ledger recorded it as spent (what it did not record as spent,
    Stripe took from a credit the ledger does not have either)."""
    spent = session.scalar(select(BalanceEntry.amount).where(
        BalanceEntry.key == f"spent-{stripe_invoice.get('id')}"))
    return _given_back(session, invoice, -(spent or 0), BalanceEntryKind.UNAPPLIED,
                       f"unapplied-{stripe_invoice.get('id')}")


def record_overpaid(session, invoice: Invoice, stripe_invoice: dict) -> BalanceEntry | None:
    """What was paid beyond the invoice's amount due (``amount_overpaid``, which Stripe credits to the customer's
    balance as an ``invoice_overpaid`` transaction): the part not written yet (it only grows), once per total."""
    overpaid = stripe_invoice.get("amount_overpaid")
    if not isinstance(overpaid, int) or overpaid <= 0:
        return None
    written = session.scalar(select(func.sum(BalanceEntry.amount)).where(
        BalanceEntry.invoice_id == invoice.id, BalanceEntry.kind == BalanceEntryKind.OVERPAID)) or 0
    return _given_back(session, invoice, overpaid - written, BalanceEntryKind.OVERPAID,
                       f"overpaid-{stripe_invoice.get('id')}-{overpaid}")


# -- an administrator's credit or debit -------------------------------------------------------------------------


def adjust(state: PluginState, *, user_id: str, amount: Money, credit: bool, reason: str, actor_id: str,
           token: str) -> BalanceEntry | None:
    """Credit or debit a learner's balance with a reason (audited); ``token`` is the form's, so that a form
    sent twice moves the balance once. Mirrored at Stripe once committed."""
    reason = (reason or "").strip()
    errors = {}
    if amount.amount <= 0:
        errors["amount"] = _("Enter an amount above zero.")
    if not reason:
        errors["reason"] = _("Say why: the learner's history shows it.")
    elif len(reason) > MAX_REASON:
        errors["reason"] = _("At most %(n)s characters.", n=MAX_REASON)
    if errors:
        raise ValidationFailed(errors, _("The balance was not changed."))
    kind = BalanceEntryKind.CREDIT if credit else BalanceEntryKind.DEBIT
    try:
        entry = post(state.session, user_id=user_id, currency=amount.currency,
                     amount=amount.amount if credit else -amount.amount, kind=kind, key=f"admin-{token}",
                     reason=reason, actor_id=actor_id)
    except BalanceRefused as err:
        raise ValidationFailed({"amount": err.message}, _("The balance was not changed.")) from None
    if entry is not None:
        audit.record(state.session, AuditAction.BALANCE_CREDITED if credit else AuditAction.BALANCE_DEBITED,
                     actor_id=actor_id, user_id=user_id, amount=amount.amount, currency=amount.currency,
                     reason=reason, entry=entry.id)
        jobs.defer(state.session, mirror, entry.id)
    return entry


# -- top-ups through Checkout -----------------------------------------------------------------------------------


def check_topup(settings, amount: Money) -> None:
    """A top-up is in the default currency, between the school's minimum and maximum."""
    error = topup_amount_error(settings, amount)
    if error:
        raise ValidationFailed({"amount": error}, _("The balance was not topped up."))


def topup_amount_error(settings, amount: Money) -> str | None:
    """Why ``amount`` cannot be a top-up (None: it can): in the school's currency, from its minimum to its
    maximum."""
    if amount.currency != settings.default_currency:
        return _("Top-ups are in %(currency)s.", currency=settings.default_currency)
    low, high = Money(settings.topup_minimum, amount.currency), Money(settings.topup_maximum, amount.currency)
    if amount.amount < low.amount or amount.amount > high.amount:
        locale = current_locale()
        return _("Enter an amount from %(min)s to %(max)s.", min=low.format(locale), max=high.format(locale))
    return None


def topup_refusal(settings, amount: Money, *, asked: bool = False) -> str | None:
    """Why a top-up of ``amount`` cannot be paid now (None: it can); ``asked``: by a top-up request or link,
    whose amount the school chose (the school's limits may have changed since)."""
    if not settings.active or not settings.prepaid_enabled:
        return _("Topping up a balance is not available at the moment.")
    error = topup_amount_error(settings, amount)
    if error and asked:
        return _("This top-up no longer fits the school's limits: ask the school for another one.")
    return error


@dataclass(frozen=True)
class TopUpPlan:
    """What `open_topup` needs, as plain values (it calls Stripe before writing)."""

    topup_id: int
    params: SessionCreateParams
    customer: customers.CustomerWanted | None  # the learner's customer, to create first


def start_topup(state: PluginState, user, amount: Money, *, return_url: str) -> TopUpPlan:
    """Check and write a top-up of ``amount``; its Checkout Session is opened by `open_topup`."""
    settings = payment_settings.load(state.session)
    if not settings.active or not settings.prepaid_enabled:
        raise BalanceRefused(_("Topping up a balance is not available at the moment."))
    check_topup(settings, amount)
    host, session = state.host, state.session
    user_id = host.user_id(user)
    expires = (utcnow() + timedelta(seconds=current_app.config["LMS_STRIPE_CHECKOUT_EXPIRY"])).replace(microsecond=0)
    topup = TopUp(user_id=user_id, amount=amount.amount, currency=amount.currency, status=TopUpStatus.OPEN,
                  expires_at=expires)
    session.add(topup)
    session.flush()
    customer = customers.known(session, user_id, livemode=settings.livemode)
    wanted = None if customer else customers.CustomerWanted(user_id, host.user_email(user),
                                                            host.user_display_name(user), current_locale())
    metadata = {"lms_topup_id": str(topup.id), "lms_user_id": user_id}
    label = _("Top-up of your prepaid balance")
    params: SessionCreateParams = {
        "mode": "payment", "customer": customer or "", "metadata": metadata,
        "client_reference_id": f"lms-topup-{topup.id}", "locale": "fr" if current_locale() == "fr" else "en",
        "expires_at": int(expires.timestamp()), "allowed_payment_method_types": ["card"],
        "success_url": f"{return_url}{'&' if '?' in return_url else '?'}topup={topup.id}",
        "cancel_url": return_url,
        "line_items": [{"quantity": 1, "price_data": {"currency": amount.currency.lower(), "unit_amount": amount.amount,
                                                      "product_data": {"name": label[:250]}}}],
        "payment_intent_data": {"metadata": metadata, "description": label[:1000]},
    }
    return TopUpPlan(topup.id, params, wanted)


def open_topup(state: PluginState, plan: TopUpPlan) -> str:
    """Create the learner's customer if need be, then the top-up's Checkout Session; record both."""
    settings = payment_settings.load(state.session)
    params = dict(plan.params)
    created = None
    if plan.customer is not None:
        created = customers.create(state, settings, plan.customer)
        params["customer"] = created
    session_obj = state.gateway.create_checkout_session(connect.with_application_fee(params),
                                                        api_key=settings.secret_key,
                                                        idempotency_key=f"lms-topup-{plan.topup_id}")
    if created is not None and plan.customer is not None:
        customers.remember(state.session, plan.customer.user_id, created, livemode=settings.livemode,
                           locale=plan.customer.locale)
    topup = state.session.get(TopUp, plan.topup_id)
    topup.stripe_checkout_session_id, topup.checkout_url = session_obj["id"], session_obj["url"]
    return session_obj["url"]


def topup_of_session(session, cs: dict) -> TopUp | None:
    """Our top-up paid by this Checkout Session (its metadata and client reference name it)."""
    raw = (cs.get("metadata") or {}).get("lms_topup_id")
    topup_id = parse_row_id(raw)
    if topup_id is None or cs.get("client_reference_id") != f"lms-topup-{raw}":
        return None
    topup = session.get(TopUp, topup_id)
    if topup is None or topup.stripe_checkout_session_id not in (None, cs.get("id")):
        return None
    return topup


def sync_topup_session(state: PluginState, cs: dict) -> TopUp | None:
    """Apply a top-up's Checkout Session: paid puts the amount on the balance (once), expired closes it."""
    session = state.session
    topup = topup_of_session(session, cs)
    if topup is None:
        return None
    if topup.stripe_checkout_session_id is None:
        topup.stripe_checkout_session_id = cs["id"]
    intent = cs.get("payment_intent")
    intent_id = intent.get("id") if isinstance(intent, dict) else intent
    if cs.get("status") == "expired":
        _move(session, topup, (TopUpStatus.OPEN,), TopUpStatus.EXPIRED)
    elif cs.get("status") == "complete" and cs.get("payment_status") == "paid" and int(cs.get("amount_total") or 0) \
            == topup.amount and _move(session, topup, (TopUpStatus.OPEN, TopUpStatus.EXPIRED), TopUpStatus.PAID,
                                      paid_at=utcnow(), stripe_payment_intent_id=intent_id):
        entry = post(session, user_id=topup.user_id, currency=topup.currency, amount=topup.amount,
                     kind=BalanceEntryKind.TOPUP, key=f"topup-{topup.id}", topup_id=topup.id)
        audit.record(session, AuditAction.BALANCE_TOPPED_UP, user_id=topup.user_id, amount=topup.amount,
                     currency=topup.currency, topup=topup.id)
        if entry is not None:
            jobs.defer(session, mirror, entry.id)
    return topup


def credit_attempt(state: PluginState, attempt: PaymentAttempt, *, user_id: str, checkout_session: str,
                   reason: str | None = None, **details) -> TopUp:
    """A top-up request's or link's Pay click is paid: its top-up written (once per click: a unique column),
    paid, its amount put on the learner's balance and mirrored at Stripe, as a top-up from My payments is (and
    refundable while unspent the same way). ``reason`` is the ledger line's, for a payment that was not asked
    as a top-up; ``details`` name the request or link in the audit log."""
    session = state.session
    topup = TopUp(user_id=user_id, amount=attempt.amount, currency=attempt.currency, status=TopUpStatus.PAID,
                  stripe_checkout_session_id=checkout_session, stripe_payment_intent_id=attempt.stripe_payment_intent_id,
                  paid_at=utcnow(), attempt_id=attempt.id)
    try:
        with session.begin_nested():
            session.add(topup)
    except IntegrityError:  # written meanwhile (the webhook and the payer's return at once)
        return session.scalar(select(TopUp).where(TopUp.attempt_id == attempt.id))
    _on_balance(state, topup, reason, details)
    return topup


def attached_elsewhere(state: PluginState, payment_intent: str | None, amount: int, *,
                       invoice_payment: str) -> tuple[int, int] | None:
    """A payment put on the learner's balance (a Pay click's top-up, or a settlement's parts' top-ups), then
    attached to an invoice in Stripe's Dashboard: it now pays that invoice, so it no longer counts on the
    balance. Its top-ups are "attached" (no longer refundable from the balance page: their payment pays an
    invoice), once (a conditional write of each), and what is left of them on the balance, at most ``amount``
    (what the invoice counts), is taken off it, mirrored at Stripe once committed. What the learner spent of it
    meanwhile cannot be taken back: (taken, spent), for the audit log; None when no paid top-up has this
    payment (attached already, or refunded)."""
    session = state.session
    if not payment_intent:
        return None
    topups = session.scalars(select(TopUp).where(TopUp.stripe_payment_intent_id == payment_intent,
                                                 TopUp.status == TopUpStatus.PAID).order_by(TopUp.id)).all()
    if not topups:
        return None
    first = topups[0]
    left = _locked_balance(session, first.user_id, first.currency).amount  # locked first: one run takes it
    moved = [topup for topup in topups
             if _move(session, topup, (TopUpStatus.PAID,), TopUpStatus.ATTACHED)]
    if not moved:
        return None
    # Less what refunds of them took off the balance already (a partial refund in the Dashboard), net of those
    # that failed and were given back: not taken twice.
    refunded = session.scalar(select(func.coalesce(func.sum(BalanceEntry.amount), 0)).where(
        BalanceEntry.topup_id.in_([topup.id for topup in moved]),
        BalanceEntry.kind.in_((BalanceEntryKind.TOPUP_REFUND, BalanceEntryKind.REFUND_FAILED))))
    credited = max(0, min(amount, sum(topup.amount for topup in moved) + int(refunded or 0)))
    taken = min(credited, left)
    entry = post(session, user_id=first.user_id, currency=first.currency, amount=-taken,
                 kind=BalanceEntryKind.ATTACHED, key=f"attached-{invoice_payment}", topup_id=first.id) \
        if taken > 0 else None
    if entry is not None:
        jobs.defer(session, mirror, entry.id)
    return taken, credited - taken


def refunded_from_balance(session, payment_intent: str | None) -> bool:
    """Whether a top-up of this payment is being or was refunded from the balance."""
    return payment_intent is not None and session.scalar(select(TopUp.id).where(
        TopUp.stripe_payment_intent_id == payment_intent,
        TopUp.status.in_((TopUpStatus.REFUNDING, TopUpStatus.REFUNDED))).limit(1)) is not None


def deposit_on_balance(session, purchase_id: int) -> bool:
    """Whether a purchase's deposit went on the learner's balance (`credit_deposit`)."""
    return session.scalar(select(TopUp.id).where(TopUp.purchase_id == purchase_id)) is not None


def parts_on_balance(session, part_ids: list[int]) -> set[int]:
    """Which of these settlement parts went on the learner's balance (`credit_part`), in one query."""
    if not part_ids:
        return set()
    return set(session.scalars(select(TopUp.request_part_id).where(TopUp.request_part_id.in_(part_ids))))


def credit_part(state: PluginState, part: RequestPart, attempt: PaymentAttempt, *, user_id: str, reason: str,
                **details) -> TopUp | None:
    """A settlement's part that its invoice no longer owed: its share of the Pay click's payment put on the
    learner's balance as a top-up of its own (once per part: a unique column; None when it was written already),
    mirrored at Stripe, and refundable while unspent as any top-up is: a refund of that share only
    (`finish_refund`), the PaymentIntent carrying the whole settlement. ``details`` name it in the audit log."""
    return _credit_once(state, TopUp(user_id=user_id, amount=part.amount, currency=attempt.currency,
                                     stripe_payment_intent_id=attempt.stripe_payment_intent_id,
                                     request_part_id=part.id), reason, details)


def credit_deposit(state: PluginState, purchase: Purchase, *, reason: str, **details) -> TopUp | None:
    """A deposit that its invoice no longer owed (paid otherwise, voided) put on the learner's balance as a top-up
    (once per purchase: a unique column; None when it was written already), mirrored at Stripe, and refundable
    while unspent as any top-up is: a refund of the deposit's payment. ``details`` name it in the audit log."""
    return _credit_once(state, TopUp(user_id=purchase.user_id, amount=purchase.deposit_amount or 0,
                                     currency=purchase.currency,
                                     stripe_payment_intent_id=purchase.stripe_payment_intent_id,
                                     purchase_id=purchase.id), reason, details)


def _credit_once(state: PluginState, topup: TopUp, reason: str, details: dict) -> TopUp | None:
    """Write a paid top-up unless its unique column names it already (None then), and put it on the balance."""
    session = state.session
    topup.status, topup.paid_at = TopUpStatus.PAID, utcnow()
    try:
        with session.begin_nested():
            session.add(topup)
    except IntegrityError:  # written meanwhile (two runs of the attaching at once)
        return None
    _on_balance(state, topup, reason, details)
    return topup


def _on_balance(state: PluginState, topup: TopUp, reason: str | None, details: dict) -> None:
    """A paid top-up's ledger line (once: its key), audited, mirrored at Stripe once committed."""
    session = state.session
    entry = post(session, user_id=topup.user_id, currency=topup.currency, amount=topup.amount,
                 kind=BalanceEntryKind.TOPUP, key=f"topup-{topup.id}", topup_id=topup.id, reason=reason)
    audit.record(session, AuditAction.BALANCE_TOPPED_UP, user_id=topup.user_id, amount=topup.amount,
                 currency=topup.currency, topup=topup.id, **details)
    if entry is not None:
        jobs.defer(session, mirror, entry.id)


def _lock_and_read(session, topup: TopUp) -> None:
    """Lock the top-up's balance, then read the top-up again: as it is now that no other run can move it (a
    refund's or an attaching's event, a refund asked from the balance page). The balance first, then the
    top-up's row: the one order every run takes them in."""
    _locked_balance(session, topup.user_id, topup.currency)
    session.refresh(topup)


def _move(session, topup: TopUp, from_states, to_state: TopUpStatus, **values) -> bool:
    """A conditional write of the top-up's status: True for the one caller that moved it."""
    moved = session.execute(update(TopUp).where(TopUp.id == topup.id, TopUp.status.in_(from_states))
                            .values(status=to_state, **values).execution_options(synchronize_session=False))
    session.refresh(topup)
    return moved.rowcount == 1


# -- a top-up refunded while unspent ----------------------------------------------------------------------------


def refund_topup(state: PluginState, topup_id: int, *, actor_id: str) -> None:
    """Take a paid top-up back off the balance (refused when part of it is spent), then, once committed, mirror
    that at Stripe and refund its payment."""
    session = state.session
    topup = session.get(TopUp, topup_id)
    if topup is not None:
        _lock_and_read(session, topup)
    if topup is None or topup.status != TopUpStatus.PAID:
        raise BalanceRefused(_("Only a paid top-up can be refunded."))
    keys = set(session.scalars(select(BalanceEntry.key).where(BalanceEntry.topup_id == topup.id)))
    if any(key.startswith("refund-outside-") and f"refund-failed-{key.removeprefix('refund-outside-')}" not in keys
           for key in keys):
        raise BalanceRefused(_("Part of this top-up was refunded in the Stripe Dashboard: refund the rest there."))
    try:
        entry = post(session, user_id=topup.user_id, currency=topup.currency, amount=-topup.amount,
                     kind=BalanceEntryKind.TOPUP_REFUND, key=_refund_key(topup, keys), topup_id=topup.id,
                     actor_id=actor_id)
    except BalanceRefused:
        raise BalanceRefused(_("Part of this top-up is spent: it can no longer be refunded.")) from None
    if entry is None:
        return  # the same refund, asked twice (two clicks)
    if not _move(session, topup, (TopUpStatus.PAID,), TopUpStatus.REFUNDING):
        raise BalanceRefused(_("Only a paid top-up can be refunded."))  # moved meanwhile: nothing written
    audit.record(session, AuditAction.TOPUP_REFUNDED, actor_id=actor_id, user_id=topup.user_id, amount=topup.amount,
                 currency=topup.currency, topup=topup.id)
    jobs.defer(session, finish_refund, topup.id, entry.id)


def _refund_key(topup: TopUp, keys: set[str]) -> str:
    """The key of the top-up's next refund from the balance page: ``refund-<id>``, then, after refunds that
    failed and were given back (`refund_failed`), ``refund-<id>-2`` and so on. Two clicks at once share it."""
    first = f"refund-{topup.id}"
    made = sum(1 for key in keys if key == first or key.startswith(f"{first}-"))
    return first if made == 0 else f"{first}-{made + 1}"


def finish_refund(state: PluginState, topup_id: int, entry_id: int) -> None:
    """Follow-up work: the refund's entry mirrored, then the top-up's payment refunded at Stripe (each call's
    key derived from our rows, so that a run again after a failure does each once: the refund's from its entry's
    key, so that a top-up refunded again after a refund that failed gets a refund of its own)."""
    mirror(state, entry_id)
    session = state.session
    topup = session.get(TopUp, topup_id)
    entry = session.get(BalanceEntry, entry_id)
    if topup is None or entry is None or topup.status != TopUpStatus.REFUNDING or not topup.stripe_payment_intent_id:
        return
    if entry_id != _last_refund_entry(session, topup.id):
        return  # an earlier refund's job, run late: that refund was made, and failed (else this one could not be)
    settings = payment_settings.load(session)
    params: RefundCreateParams = {"payment_intent": topup.stripe_payment_intent_id,
                                  "metadata": {"lms_topup_id": str(topup.id)}}
    if topup.request_part_id is not None:  # a share of a settlement's payment: that share, not the whole payment
        params["amount"] = topup.amount
    again = entry.key.removeprefix(f"refund-{topup.id}")  # "" for the first, "-2" for the second...
    refund = state.gateway.create_refund(params, api_key=settings.secret_key,
                                         idempotency_key=f"lms-topup-{topup.id}-refund{again}")
    _locked_balance(session, topup.user_id, topup.currency)  # the order `_give_back` takes them in: balance first
    if _refund_given_back(session, topup, refund["id"]):
        return  # that refund failed and was given back: the top-up is paid again
    _move(session, topup, (TopUpStatus.REFUNDING,), TopUpStatus.REFUNDED, refunded_at=utcnow(),
          stripe_refund_id=refund["id"])
    if refund.get("status") in REFUND_FAILED_STATUSES:  # failed already (its event may come, or be lost)
        refund_failed(state, dict(refund))


#: SQL: an entry of a refund asked from the balance page (`refund_topup`), not of a Dashboard refund's.
_PAGE_REFUND = (BalanceEntry.kind == BalanceEntryKind.TOPUP_REFUND, BalanceEntry.key.not_like("refund-outside-%"))


def _last_refund_entry(session, topup_id: int) -> int | None:
    """The entry of the top-up's last refund from the balance page (`_refund_key`)."""
    return session.scalar(select(func.max(BalanceEntry.id)).where(BalanceEntry.topup_id == topup_id, *_PAGE_REFUND))


def topup_of(session, payment_intent: str | None) -> TopUp | None:
    """The one top-up whose payment this PaymentIntent is wholly (not a settlement's shared payment), if any."""
    if not payment_intent:
        return None
    topups = session.scalars(select(TopUp).where(TopUp.stripe_payment_intent_id == payment_intent)
                             .order_by(TopUp.id).limit(2)).all()
    return topups[0] if len(topups) == 1 and topups[0].request_part_id is None else None


def refunded_outside(state: PluginState, stripe_refund: dict) -> bool:
    """A refund of a top-up's payment made outside the plugin (in the Stripe Dashboard; the plugin's own name their
    top-up in their metadata, and the caller leaves them out), once it succeeded: the money went back, so it is
    taken off the learner's balance, once per refund (its entry's key), mirrored at Stripe once committed. What
    the learner spent of it meanwhile cannot be taken back: the balance goes to zero and the audit log says how
    much was spent, for the school to act on. A refund of the whole top-up makes it refunded; after a part, the
    rest stays on the balance and the balance page no longer refunds it (`refund_topup`). Whether the payment is
    one top-up's (a payment several top-ups share, a settlement's, is not taken apart here)."""
    session = state.session
    topup = _refunded_topup(session, stripe_refund)
    if topup is None:
        return False
    if stripe_refund.get("status") in REFUND_FAILED_STATUSES:
        _give_back(state, topup, stripe_refund)  # what it took, if it had succeeded
        return True
    if stripe_refund.get("status") != "succeeded":
        return True  # pending: taken once it succeeds
    amount = min(int(stripe_refund["amount"]), topup.amount)
    key = f"refund-outside-{stripe_refund['id']}"
    left = _locked_balance(session, topup.user_id, topup.currency).amount  # locked first: one run takes it
    if _taken_outside(session, topup, stripe_refund["id"]):
        return True  # taken already (refund.created, then refund.updated)
    taken = min(amount, left)
    entry = post(session, user_id=topup.user_id, currency=topup.currency, amount=-taken,
                 kind=BalanceEntryKind.TOPUP_REFUND, key=key, topup_id=topup.id,
                 reason=_("Refunded in the Stripe Dashboard.")) if taken > 0 else None
    if amount >= topup.amount:
        _move(session, topup, (TopUpStatus.PAID,), TopUpStatus.REFUNDED, refunded_at=utcnow(),
              stripe_refund_id=stripe_refund["id"])
    audit.record(session, AuditAction.TOPUP_REFUNDED, user_id=topup.user_id, amount=amount, currency=topup.currency,
                 topup=topup.id, refund=stripe_refund["id"], outside=True, spent=amount - taken)
    if entry is not None:
        jobs.defer(session, mirror, entry.id)
    return True


def _refunded_topup(session, stripe_refund: dict) -> TopUp | None:
    """The paid (or refunded) top-up whose own payment a refund refunds; None for a settlement's shared payment
    (which part, Stripe cannot say) or no top-up's."""
    topup = topup_of(session, stripe_refund.get("payment_intent"))
    return topup if topup is not None and topup.status in (TopUpStatus.PAID, TopUpStatus.REFUNDED) else None


def _taken_outside(session, topup: TopUp, refund_id: str) -> bool:
    """Whether a Dashboard refund of the top-up was taken off the balance: its entry, or, when the learner had
    spent it all, its audit entry (no movement was written)."""
    if session.scalar(select(BalanceEntry.id).where(BalanceEntry.key == f"refund-outside-{refund_id}")) is not None:
        return True
    return audit.recorded_of_refund(session, AuditAction.TOPUP_REFUNDED, user_id=topup.user_id, refund_id=refund_id)


def _named_topup(stripe_refund: dict) -> int | None:
    """The top-up a refund's metadata names: the id of the top-up the plugin made it for (`finish_refund`)."""
    return parse_row_id((stripe_refund.get("metadata") or {}).get("lms_topup_id"))


def refund_failed(state: PluginState, stripe_refund: dict) -> None:
    """A refund the plugin made of a top-up (from the balance page; its metadata names the top-up), once it
    failed or was canceled: what it took off the balance is given back (`_give_back`)."""
    topup_id = _named_topup(stripe_refund)
    topup = state.session.get(TopUp, topup_id) if topup_id is not None else None
    if topup is not None and stripe_refund.get("status") in REFUND_FAILED_STATUSES:
        _give_back(state, topup, stripe_refund)


def _give_back(state: PluginState, topup: TopUp, stripe_refund: dict) -> None:
    """A top-up's refund that failed: the money never reached the learner, so what the refund took off their
    balance goes back on it, once per refund (its entry's key), mirrored at Stripe once committed, and the
    top-up is paid again, refundable from the balance page (with a refund of its own: `_refund_key`). A refund
    that took nothing (it failed while pending, or the learner had spent it all) gives nothing back; the last
    is said in the audit log all the same."""
    session = state.session
    refund_id = stripe_refund["id"]
    _lock_and_read(session, topup)  # one run gives it back
    if _refund_given_back(session, topup, refund_id):
        return
    ours = _named_topup(stripe_refund) is not None
    taken = _taken_by(session, topup, refund_id, ours=ours)
    if taken is None:
        return  # nothing was taken: nothing to give back
    entry = post(session, user_id=topup.user_id, currency=topup.currency, amount=taken,
                 kind=BalanceEntryKind.REFUND_FAILED, key=f"refund-failed-{refund_id}",
                 topup_id=topup.id) if taken > 0 else None
    if topup.stripe_refund_id == refund_id or (ours and topup.stripe_refund_id is None):
        _move(session, topup, (TopUpStatus.REFUNDING, TopUpStatus.REFUNDED), TopUpStatus.PAID, refunded_at=None,
              stripe_refund_id=None)
    audit.record(session, AuditAction.TOPUP_REFUND_FAILED, user_id=topup.user_id, amount=int(stripe_refund["amount"]),
                 currency=topup.currency, topup=topup.id, refund=refund_id, outside=not ours, given_back=taken,
                 error=stripe_refund.get("failure_reason") or stripe_refund.get("status"))
    if entry is not None:
        jobs.defer(session, mirror, entry.id)


def _taken_by(session, topup: TopUp, refund_id: str, *, ours: bool) -> int | None:
    """What a top-up's refund took off the balance: the whole top-up for the plugin's own while the top-up is
    being or was refunded (a refund that failed was given back before the next could be made); a Dashboard
    refund's entry, or 0 when the learner had spent it all; None when it took nothing."""
    if ours:
        underway = topup.status in (TopUpStatus.REFUNDING, TopUpStatus.REFUNDED) and \
            topup.stripe_refund_id in (None, refund_id)
        return topup.amount if underway else None
    taken = session.scalar(select(BalanceEntry.amount).where(BalanceEntry.key == f"refund-outside-{refund_id}"))
    if taken is not None:
        return -taken
    return 0 if _taken_outside(session, topup, refund_id) else None


def _refund_given_back(session, topup: TopUp, refund_id: str) -> bool:
    """Whether a failed refund of the top-up was given back: its entry, or its audit entry (nothing to give)."""
    if session.scalar(select(BalanceEntry.id).where(BalanceEntry.key == f"refund-failed-{refund_id}")) is not None:
        return True
    return audit.recorded_of_refund(session, AuditAction.TOPUP_REFUND_FAILED, user_id=topup.user_id,
                                    refund_id=refund_id)


def refund_not_given_back(session, stripe_refund: dict) -> bool:
    """Whether a top-up's refund that failed took from the balance what is not given back yet (its events lost:
    for reconciliation, which then gives it back with `give_back_failed`)."""
    if stripe_refund.get("status") not in REFUND_FAILED_STATUSES:
        return False
    topup_id = _named_topup(stripe_refund)
    ours = topup_id is not None
    topup = session.get(TopUp, topup_id) if ours else _refunded_topup(session, stripe_refund)
    return topup is not None and not _refund_given_back(session, topup, stripe_refund["id"]) and \
        bool(_taken_by(session, topup, stripe_refund["id"], ours=ours))


def give_back_failed(state: PluginState, stripe_refund: dict) -> None:
    """A top-up's refund that failed, the plugin's own or a Dashboard's, given back (for reconciliation)."""
    if _named_topup(stripe_refund) is not None:
        refund_failed(state, stripe_refund)
    else:
        refunded_outside(state, stripe_refund)


def refund_not_taken(session, stripe_refund: dict) -> bool:
    """Whether a succeeded refund of a top-up's payment, made outside the plugin, is not taken off the balance
    yet (its events lost: for reconciliation, which then takes it with `refunded_outside`)."""
    if stripe_refund.get("status") != "succeeded" or (stripe_refund.get("metadata") or {}).get("lms_topup_id"):
        return False
    topup = _refunded_topup(session, stripe_refund)
    return topup is not None and not _taken_outside(session, topup, stripe_refund["id"])


def refunding(session) -> list[tuple[int, int]]:
    """Top-ups taken off the balance whose refund is not created yet, with their entry, the last of the balance
    page's refunds of each (for reconciliation)."""
    rows = session.execute(select(TopUp.id, func.max(BalanceEntry.id))
                           .join(BalanceEntry, BalanceEntry.topup_id == TopUp.id)
                           .where(TopUp.status == TopUpStatus.REFUNDING, *_PAGE_REFUND)
                           .group_by(TopUp.id))
    return [(topup_id, entry_id) for topup_id, entry_id in rows]
