"""Deposits at enrollment: the learner pays a deposit through Checkout; one Stripe invoice is issued for the
full price (VAT on the whole), the deposit is attached to it as a partial payment, and the balance becomes a
payment request with the school's reminders.

After the deposit is paid (`after_payment`, in the transaction that records the payment) our invoice row is
written, unique per purchase, and `issue` is deferred until that commits: it creates and finalizes the Stripe
invoice, attaches the deposit's PaymentIntent and writes the balance request, each Stripe call with a key
derived from our rows, each step skipped when already done. A replayed event, a second delivery or a crash
mid-way runs `issue` again, which finishes the work and doubles nothing.

A balance overdue past the school's grace period suspends access (`suspend_overdue`, from the reminders run:
a row, never a deletion); the invoice paid gives access back (`invoice_changed`, from the invoice's events).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from .. import signals
from ..accounts import settings as payment_settings
from ..billing import balances, issuing, paying, unattachable
from ..billing import requests as payment_requests
from ..core import audit, jobs
from ..core.enums import (AccessReason, AuditAction, BalanceDue, DepositAccess, InvoiceSource, InvoiceStatus,
                          PaymentPlan, PaymentRequestStatus, PurchaseStatus)
from ..core.i18n import normalize_locale
from ..core.models import CourseOffer, Invoice, InvoicePayment, PaymentRequest, Purchase, Suspension, TopUp, utcnow
from ..core.state import PluginState
from ..core.txn import send_after_commit, transition
from ..errors import GatewayError
from ..host import course_start
from ..money import Money, MoneyError, amount_step, check_chargeable, percent_of
from ..refunds.access import revoke_access


@dataclass(frozen=True)
class DepositTerms:
    """What a learner buying now pays: the deposit, when the balance is due, and whether the deposit opens
    the course."""

    deposit: Money
    balance: Money
    balance_due: date
    access_on_deposit: bool


class SoldOffer(Protocol):
    """What the deposit terms read of an offer: a `CourseOffer`, or one in another currency
    (`offers.PricedOffer`)."""

    @property
    def price(self) -> Money | None: ...

    @property
    def payment_plan(self) -> PaymentPlan: ...

    @property
    def deposit_percent(self) -> int | None: ...

    @property
    def deposit_amount(self) -> int | None: ...

    @property
    def balance_due(self) -> BalanceDue | None: ...

    @property
    def balance_due_date(self) -> date | None: ...

    @property
    def balance_due_days(self) -> int | None: ...

    @property
    def deposit_access(self) -> DepositAccess | None: ...


def deposit_amount(offer: SoldOffer) -> Money | None:
    """The deposit of an offer sold with one: its share of the price (rounded to what Stripe charges in the
    currency) or its fixed amount. None for full payment."""
    price = offer.price
    if price is None or offer.payment_plan != PaymentPlan.DEPOSIT:
        return None
    if offer.deposit_amount:
        return Money(offer.deposit_amount, price.currency)
    return deposit_amount_of(price, percent=offer.deposit_percent or 0)


def deposit_amount_of(price: Money, *, percent: int) -> Money:
    """``percent`` (basis points) of the price, rounded down to what Stripe charges in the currency."""
    share = percent_of(price, Decimal(percent) / 100)
    step = amount_step(price.currency)
    return Money(share.amount // step * step, price.currency)


def scaled_deposit(price: Money, main_price: Money, main_deposit: int) -> Money:
    """A fixed deposit of ``main_deposit`` on ``main_price``, as the same share of ``price`` (the course's price
    in another currency), rounded down to what Stripe charges in it."""
    step = amount_step(price.currency)
    return Money(price.amount * main_deposit // main_price.amount // step * step, price.currency)


def check_deposit(price: Money, deposit: Money) -> str | None:
    """Why this deposit cannot be taken on this price ("minimum", "not_below", "balance"), or None."""
    try:
        check_chargeable(deposit)
    except MoneyError as err:
        return "minimum" if err.code in ("minimum", "step") else err.code
    if deposit.amount >= price.amount:
        return "not_below"
    try:
        check_chargeable(price - deposit)
    except MoneyError:
        return "balance"
    return None


def balance_due_on(offer: SoldOffer, *, enrolled_on: date, starts_on: date | None) -> date | None:
    """The day the balance is due for a learner enrolling on ``enrolled_on``; None if the rule needs a start
    date the course does not have."""
    if offer.balance_due == BalanceDue.DATE:
        return offer.balance_due_date
    if offer.balance_due == BalanceDue.AFTER_ENROLLMENT:
        return enrolled_on + timedelta(days=offer.balance_due_days or 0)
    if offer.balance_due == BalanceDue.BEFORE_START and starts_on is not None:
        return starts_on - timedelta(days=offer.balance_due_days or 0)
    return None


def terms(state: PluginState, offer: SoldOffer, course) -> DepositTerms | None:
    """The deposit terms for a learner buying now; None (full payment) for an offer without a deposit, or
    whose balance would no longer be due in the future (the course starts too soon, the date has passed):
    then the learner pays the whole price at once."""
    deposit = deposit_amount(offer)
    price = offer.price
    if deposit is None or price is None or check_deposit(price, deposit) is not None:
        return None
    today = utcnow().date()
    due = balance_due_on(offer, enrolled_on=today, starts_on=course_start(state.host, course))
    if due is None or due <= today:
        return None
    return DepositTerms(deposit, price - deposit, due, offer.deposit_access == DepositAccess.ON_DEPOSIT)


def end_of(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), timezone.utc)


# -- after the deposit is paid -------------------------------------------------------------------------------


def after_payment(state: PluginState, purchase: Purchase, *, won: bool) -> None:
    """The deposit of ``purchase`` is paid (``won``: this caller recorded it): enroll when the deposit opens the
    course, write our invoice of the full price (once: unique per purchase), and once this commits, issue it
    at Stripe. Called on every delivery of the payment, so that one that stopped half-way is finished."""
    if won and purchase.access_on_deposit:
        _enroll(state, purchase)
    invoice = _invoice_of(state.session, purchase.id) or _draft(state, purchase)
    if invoice is not None and not _done(state.session, purchase, invoice):
        jobs.defer(state.session, issue, purchase.id)


def _enroll(state: PluginState, purchase: Purchase) -> None:
    user, course = state.host.get_user(purchase.user_id), state.host.get_course(purchase.course_id)
    if user is not None and course is not None:
        state.host.enroll(user, course)


def _invoice_of(session, purchase_id: int) -> Invoice | None:
    return session.scalar(select(Invoice).where(Invoice.purchase_id == purchase_id))


def _draft(state: PluginState, purchase: Purchase) -> Invoice | None:
    """Our invoice of the full price, one line with the course's VAT rate, due with the balance."""
    host = state.host
    user, course = host.get_user(purchase.user_id), host.get_course(purchase.course_id)
    if user is None or course is None:
        return None
    due = max((purchase.balance_due_at or utcnow()).date(), utcnow().date())
    line = issuing.LineInput(description=host.course_title(course), gross=purchase.amount,
                             vat_rate=purchase.vat_rate, course_id=purchase.course_id)
    try:
        with state.session.begin_nested():
            invoice = issuing.draft(state, user=user, currency=purchase.currency, due=due, lines=[line],
                                    actor_id=None)
            invoice.purchase_id, invoice.source = purchase.id, InvoiceSource.DEPOSIT
            state.session.flush()
    except IntegrityError:  # written meanwhile by another delivery of the payment
        return _invoice_of(state.session, purchase.id)
    return invoice


def _done(session, purchase: Purchase, invoice: Invoice) -> bool:
    """Whether the deposit's invoice is issued, the deposit settled (attached, or on the learner's balance) and
    the balance asked for while the invoice is open."""
    return (invoice.status != InvoiceStatus.ISSUING and unattachable.deposit_settled(session, purchase)
            and (_balance_request(session, purchase.id) is not None or invoice.amount_remaining == 0
                 or invoice.status != InvoiceStatus.OPEN))


def _balance_request(session, purchase_id: int) -> PaymentRequest | None:
    return session.scalar(select(PaymentRequest).where(PaymentRequest.balance_of == purchase_id))


def unfinished(session) -> list[int]:
    """Deposit purchases whose invoice, deposit or balance request is not done (`_done`), for reconciliation, in
    one query whatever the number of deposits: a deposit whose invoice was paid otherwise or voided (which closed
    its purchase) is not done until it is on the learner's balance."""
    attached = select(InvoicePayment.id).where(
        InvoicePayment.stripe_payment_intent_id == Purchase.stripe_payment_intent_id).exists()
    on_balance = select(TopUp.id).where(TopUp.purchase_id == Purchase.id).exists()
    asked = select(PaymentRequest.id).where(PaymentRequest.balance_of == Purchase.id).exists()
    paid = and_(Purchase.status == PurchaseStatus.PAID, or_(
        Invoice.id.is_(None), Invoice.status == InvoiceStatus.ISSUING, and_(~attached, ~on_balance),
        and_(Invoice.status == InvoiceStatus.OPEN, Invoice.amount_remaining > 0, ~asked)))
    voided = and_(Purchase.status == PurchaseStatus.CANCELLED, Invoice.status == InvoiceStatus.VOID, ~attached,
                  ~on_balance)
    return list(session.scalars(
        select(Purchase.id).outerjoin(Invoice, Invoice.purchase_id == Purchase.id)
        .where(Purchase.deposit_amount.is_not(None), or_(paid, voided)).order_by(Purchase.id)))


def issue(state: PluginState, purchase_id: int) -> None:
    """Follow-up work: bring the deposit's invoice to issued, its deposit attached, its balance asked for.
    Each step is skipped when done, and each Stripe call carries a key derived from our rows."""
    session = state.session
    purchase = session.get(Purchase, purchase_id)
    if purchase is None or not purchase.deposit_amount:
        return
    if purchase.status == PurchaseStatus.CANCELLED:  # closed by its invoice voided: the deposit, if not attached
        voided = _invoice_of(session, purchase_id)
        if voided is not None and voided.status == InvoiceStatus.VOID and \
                not unattachable.deposit_settled(session, purchase):
            _attach_deposit(state, purchase, voided)  # refused by Stripe: the deposit goes on the balance
        return
    if purchase.status != PurchaseStatus.PAID:
        return
    invoice = _invoice_of(session, purchase_id) or _draft(state, purchase)
    if invoice is None:
        return
    if invoice.stripe_invoice_id is None:
        issuing.create_at_stripe(state, issuing.stripe_draft(state, invoice, locale=_locale(purchase)))
    if invoice.status == InvoiceStatus.ISSUING:
        issuing.finalize_at_stripe(state, issuing.stripe_lines(state, invoice))
    if invoice.status != InvoiceStatus.ISSUING and not unattachable.deposit_settled(session, purchase):
        _attach_deposit(state, purchase, invoice)  # Stripe refuses it to an invoice paid or voided meanwhile
    if _balance_request(session, purchase_id) is None and invoice.status == InvoiceStatus.OPEN \
            and invoice.amount_remaining > 0:
        _ask_balance(state, purchase, invoice)


def _locale(purchase: Purchase) -> str:
    return normalize_locale(purchase.locale or "en")


def _attach_deposit(state: PluginState, purchase: Purchase, invoice: Invoice) -> None:
    """Attach the deposit's PaymentIntent to the invoice (Stripe's partial payments on invoices)."""
    api_key = payment_settings.load(state.session).secret_key
    payment_intent = purchase.stripe_payment_intent_id or ""
    try:
        updated = state.gateway.attach_payment(
            invoice.stripe_invoice_id or "", {"payment_intent": payment_intent, "expand": ["payments"]},
            api_key=api_key, idempotency_key=f"lms-deposit-{purchase.id}-attach")
    except GatewayError as err:
        if err.retryable:
            raise
        found = paying.invoice_attached_to(state, {"type": "payment_intent", "payment_intent": payment_intent},
                                           api_key)
        if found is None:
            _after_refusal(state, purchase, invoice, api_key, err)
            return
        updated = found
    paying.apply_invoice(state, updated)


def _after_refusal(state: PluginState, purchase: Purchase, invoice: Invoice, api_key: str | None,
                   err: GatewayError) -> None:
    """Stripe refused to attach the deposit, which is attached to no invoice: if the invoice no longer owes it
    (paid otherwise meanwhile, on Stripe's hosted page; voided; owing less than the deposit now), the deposit goes
    on the learner's balance (`unattachable`). Any other refusal is raised again, for reconcile to report."""
    stripe_invoice = state.gateway.retrieve_invoice(invoice.stripe_invoice_id or "", api_key=api_key,
                                                    expand=["payments"])
    why = unattachable.why_refused(stripe_invoice, purchase.deposit_amount or 0)
    if why is None:
        raise err
    paying.apply_invoice(state, stripe_invoice)  # locks the invoice first, as its events' handlers do
    unattachable.put_deposit_on_balance(state, purchase, invoice, stripe_invoice, why)


def _ask_balance(state: PluginState, purchase: Purchase, invoice: Invoice) -> None:
    """The balance request: what remains, due with the balance, sent by e-mail (the school's reminders then
    apply to it as to any request). Unique per purchase."""
    settings = payment_settings.load(state.session)
    request = PaymentRequest(
        invoice_id=invoice.id, user_id=purchase.user_id, amount=invoice.amount_remaining, currency=invoice.currency,
        due_at=end_of(max((purchase.balance_due_at or utcnow()).date(), utcnow().date())),
        locale=_locale(purchase), send_email=True, send_sms=False, balance_of=purchase.id,
        partial_minimum=settings.partial_minimum or 0 if settings.partial_payments_enabled else None)
    request.invoice = invoice
    try:
        with state.session.begin_nested():
            state.session.add(request)
    except IntegrityError:
        return  # asked meanwhile by another run
    audit.record(state.session, AuditAction.PAYMENT_REQUESTED, user_id=purchase.user_id,
                 course_id=purchase.course_id, invoice=invoice.id, request=request.id, amount=request.amount,
                 currency=request.currency, channels=["email"], balance=True)
    payment_requests.notify(state, request, purpose="sent")


# -- paid in full, overdue, suspended, restored ---------------------------------------------------------------


def invoice_changed(state: PluginState, invoice: Invoice | None) -> None:
    """An invoice's event was applied: a deposit's invoice now paid gives the learner the course (a suspended
    access restored, or the access that waited for full payment), once. What the purchase counts as paid
    follows the invoice (the most a cancellation refunds)."""
    if invoice is None or invoice.source != InvoiceSource.DEPOSIT or invoice.purchase_id is None:
        return
    session = state.session
    if invoice.status == InvoiceStatus.VOID:
        _voided(state, invoice)
        return
    session.execute(update(Purchase).where(Purchase.id == invoice.purchase_id,
                                           Purchase.amount_paid < invoice.amount_paid)
                    .values(amount_paid=invoice.amount_paid).execution_options(synchronize_session=False))
    purchase = session.get(Purchase, invoice.purchase_id, populate_existing=True)
    if invoice.status != InvoiceStatus.PAID or purchase is None or purchase.status != PurchaseStatus.PAID or \
            invoice.amount_paid + balances.paid_from_balance(session, invoice.id) < invoice.gross:
        return  # settled by a credit note (a cancellation), not paid: nothing to give
    now = utcnow()
    won = session.execute(update(Purchase).where(Purchase.id == purchase.id, Purchase.balance_paid_at.is_(None))
                          .values(balance_paid_at=now).execution_options(synchronize_session=False)).rowcount == 1
    if not won:
        return
    session.refresh(purchase)
    lifted = session.execute(update(Suspension).where(Suspension.purchase_id == purchase.id,
                                                      Suspension.restored_at.is_(None))
                             .values(restored_at=now).execution_options(synchronize_session=False)).rowcount
    _enroll(state, purchase)
    audit.record(session, AuditAction.BALANCE_PAID, user_id=purchase.user_id, course_id=purchase.course_id,
                 purchase_id=purchase.id, invoice=invoice.id)
    if lifted:
        audit.record(session, AuditAction.ACCESS_RESTORED, user_id=purchase.user_id, course_id=purchase.course_id,
                     purchase_id=purchase.id)
        send_after_commit(session, signals.access_restored, user_id=purchase.user_id, course_id=purchase.course_id)


def _voided(state: PluginState, invoice: Invoice) -> None:
    """The deposit's invoice was voided (in the Stripe Dashboard; Stripe voids no invoice with a payment attached,
    so its deposit was not): the sale is undone. The purchase is closed and the access it gave removed, once,
    and the deposit goes on the learner's balance (`issue`, once this commits; reconcile finishes it)."""
    session = state.session
    purchase = session.get(Purchase, invoice.purchase_id, with_for_update=True, populate_existing=True)
    if purchase is None or not revoke_access(state, purchase, reason=AccessReason.CANCELLED):
        return
    audit.record(session, AuditAction.CHECKOUT_WITHDRAWN, user_id=purchase.user_id, course_id=purchase.course_id,
                 purchase_id=purchase.id, invoice=invoice.id, voided=True)
    for request in session.scalars(select(PaymentRequest).where(PaymentRequest.balance_of == purchase.id,
                                                                PaymentRequest.status == PaymentRequestStatus.OPEN)):
        transition(session, request, (PaymentRequestStatus.OPEN,), PaymentRequestStatus.CANCELLED,
                   cancelled_at=utcnow())
    if not unattachable.deposit_settled(session, purchase):
        jobs.defer(session, issue, purchase.id)


def _locked(session, purchase_id: int) -> Purchase | None:
    """The purchase, its row locked and read again: the payment of its balance, handled at the same moment
    (`invoice_changed` writes the same row first), either committed before and is seen here, or waits for the
    suspension and then lifts it."""
    return session.get(Purchase, purchase_id, with_for_update=True, populate_existing=True)


def overdue(session, *, now: datetime, grace_days: int) -> list[int]:
    """Deposit purchases with access whose balance was due more than ``grace_days`` ago, not suspended."""
    return list(session.scalars(select(Purchase.id).where(
        Purchase.status == PurchaseStatus.PAID, Purchase.deposit_amount.is_not(None),
        Purchase.access_on_deposit.is_(True), Purchase.balance_paid_at.is_(None),
        Purchase.balance_due_at < now - timedelta(days=grace_days),
        ~select(Suspension.id).where(Suspension.purchase_id == Purchase.id,
                                     Suspension.restored_at.is_(None)).exists())
        .order_by(Purchase.id)))


def suspend(state: PluginState, purchase_id: int) -> bool:
    """Suspend the learner's access for an overdue balance, once (a unique row); nothing is deleted: the
    purchase, invoice and request stay, and paying the invoice gives access back."""
    session = state.session
    purchase = _locked(session, purchase_id)
    if purchase is None or purchase.balance_paid_at is not None or purchase.status != PurchaseStatus.PAID:
        return False
    try:
        with session.begin_nested():
            session.add(Suspension(purchase_id=purchase.id, user_id=purchase.user_id, course_id=purchase.course_id))
    except IntegrityError:
        return False  # another run suspended it
    user, course = state.host.get_user(purchase.user_id), state.host.get_course(purchase.course_id)
    if user is not None and course is not None:
        state.host.unenroll(user, course)
    audit.record(session, AuditAction.ACCESS_SUSPENDED, user_id=purchase.user_id, course_id=purchase.course_id,
                 purchase_id=purchase.id)
    send_after_commit(session, signals.access_revoked, user_id=purchase.user_id, course_id=purchase.course_id,
                      reason=AccessReason.BALANCE_OVERDUE)
    return True


def grace_days(state: PluginState) -> int:
    return payment_settings.load(state.session).balance_grace_days


def suspended(session, purchase_id: int) -> bool:
    return session.scalar(select(Suspension.id).where(Suspension.purchase_id == purchase_id,
                                                      Suspension.restored_at.is_(None))) is not None


def grants_access(session, purchase: Purchase) -> bool:
    """Whether a paid purchase gives the course: always when paid in full; a deposit's, by its access rule
    until the balance is paid, and never while suspended."""
    if purchase.deposit_amount is None or purchase.balance_paid_at is not None:
        return True
    return bool(purchase.access_on_deposit) and not suspended(session, purchase.id)


@dataclass(frozen=True)
class BalanceState:
    """Where a learner's deposit purchase stands, for the course page and the payment page: the deposit
    paid, the balance remaining and its due date, and whether the learner has access."""

    paid: Money
    remaining: Money
    due: date
    access: bool
    suspended: bool


def balance_state(session, user_id: str, course_id: str) -> BalanceState | None:
    """The learner's deposit paid with a balance still due for this course, or None."""
    purchase = session.scalar(select(Purchase).where(
        Purchase.user_id == user_id, Purchase.course_id == course_id, Purchase.status == PurchaseStatus.PAID,
        Purchase.deposit_amount.is_not(None), Purchase.balance_paid_at.is_(None)))
    if purchase is None:
        return None
    invoice = _invoice_of(session, purchase.id)
    remaining = invoice.amount_remaining if invoice is not None and invoice.status == InvoiceStatus.OPEN \
        else purchase.amount - (purchase.deposit_amount or 0)
    paid = purchase.amount - remaining
    due = (purchase.balance_due_at or utcnow()).date()
    return BalanceState(Money(paid, purchase.currency), Money(remaining, purchase.currency), due,
                        grants_access(session, purchase), suspended(session, purchase.id))
