"""Administrators cancel a purchase (credit note + full refund + access revoked) or refund part of it.

What the learner's prepaid balance paid of the invoice goes back to that balance, not to a card: the credit
note credits it to the Stripe customer's balance (``credit_amount``, Stripe's own balance transaction, which
the ledger records with the credit note: `balances.record_credit_note`), and refunds the rest to the payment
(``refund_amount``). A partial refund is refunded to the payment first, the rest credited to the balance. A
cancellation wholly credited to the balance has no refund to wait for: it is done with its credit note.

Two steps, each in a transaction of the caller's. `request_cancel`, `request_part` and `request_retry`
check and write a "requested" refund row, whose id gives the idempotency key, and return a `RefundPlan`;
`send` calls Stripe first (no transaction is held across the call) and then applies its answer. A request
Stripe never confirmed is reused if the administrator repeats it, so a retry can never refund twice; one whose
answer was lost but whose refund Stripe told us of since (its event) is not asked again at all.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..core.state import PluginState
from ..accounts import settings as payment_settings
from ..core import audit
from ..core.enums import (AccessReason, AuditAction, InvoiceSource, InvoiceStatus, PaymentRequestStatus,
                          PurchaseStatus, RefundOrigin, RefundStatus)
from ..core.i18n import current_locale, gettext as _
from ..core.models import Invoice, InvoicePayment, PaymentRequest, Refund, RequestPart, utcnow
from ..core.txn import transition
from ..billing import balances, requests as payment_requests, unattachable
from ..errors import GatewayError, PaymentsError
from ..gateway.types import CreditNoteCreateParams, RefundCreateParams
from ..money import Money
from . import credit_notes
from .access import revoke_access, set_invoice_status
from .lifecycle import status_of, succeeded, sync_refund

RETRY_PREFIX = "lms-refund-retry-"
_IN_FLIGHT = (RefundStatus.REQUESTED, RefundStatus.PENDING)


class RefundRefused(PaymentsError):
    status_code = 409


@dataclass(frozen=True)
class RefundPlan:
    """The Stripe call for one refund row, as plain values: a credit note (with its refund) for an
    invoice, or else a refund through the Refunds API (a retry, a duplicate payment)."""

    refund_id: int
    idempotency_key: str
    credit_note: CreditNoteCreateParams | None = None
    refund: RefundCreateParams | None = None


def refundable(invoice: Invoice, session) -> int:
    """What can still be refunded (or credited back to the balance): paid, minus refunded, minus refunds
    Stripe has under way. A request Stripe never confirmed is not under way: asking again retries it with its
    own key."""
    in_flight = session.scalars(select(Refund.amount).where(
        Refund.purchase_id == invoice.purchase_id, Refund.status.in_(_IN_FLIGHT),
        (Refund.stripe_refund_id.is_not(None)) | (Refund.stripe_credit_note_id.is_not(None)))).all()
    return max(0, _paid(session, invoice) - invoice.amount_refunded - sum(in_flight))


def to_balance(invoice: Invoice, session) -> int:
    """What of `refundable` goes back to the learner's prepaid balance: what the balance paid of the invoice
    and no credit note gave back yet."""
    return min(balances.spent_on(session, invoice.id), refundable(invoice, session))


def _paid(session, invoice: Invoice) -> int:
    """What was paid on the invoice: the whole of a Checkout purchase's; of another (a deposit's, one paid from
    the balance), what Stripe says its payments paid and what the learner's balance paid."""
    if invoice.source == InvoiceSource.CHECKOUT:
        return invoice.gross
    return invoice.amount_paid + balances.paid_from_balance(session, invoice.id)


def _split(session, invoice: Invoice, amount: int) -> int:
    """The part of ``amount`` credited back to the balance: what the payment cannot refund (a partial refund is
    refunded to the payment first)."""
    back = to_balance(invoice, session)
    return min(back, max(0, amount - (refundable(invoice, session) - back)))


def _unpaid_part(invoice: Invoice, amount: int | None) -> int:
    """A deposit's invoice still open, or one the balance paid in part: its cancellation also credits what
    remains unpaid (Stripe's pre-payment credit, which lowers amount_remaining), so that the credit note
    cancels the whole invoice."""
    if invoice.source not in (InvoiceSource.DEPOSIT, InvoiceSource.BALANCE) or invoice.status != InvoiceStatus.OPEN:
        return 0
    if amount is not None:
        raise RefundRefused(_("The rest of this invoice is still due: cancel the purchase (what was paid goes back "
                              "to the learner), or refund part of it once it is paid."))
    return invoice.amount_remaining


def unconfirmed_request(session, invoice: Invoice) -> Refund | None:
    """A credit note request that Stripe never confirmed (unreachable at the time)."""
    return session.scalar(select(Refund).where(
        Refund.purchase_id == invoice.purchase_id, Refund.origin == RefundOrigin.ADMIN,
        Refund.status == RefundStatus.REQUESTED, Refund.stripe_credit_note_id.is_(None),
        Refund.stripe_refund_id.is_(None), Refund.idempotency_key.not_like(f"{RETRY_PREFIX}%")))


def request_cancel(state: PluginState, invoice: Invoice, *, actor_id: str, reason: str | None) -> RefundPlan:
    """Plan a credit note for the whole remaining amount, with its refund; access is revoked with it."""
    return _request(state, invoice, amount=None, revoke=True, actor_id=actor_id, reason=reason)


def request_part(state: PluginState, invoice: Invoice, *, amount: int, revoke: bool, actor_id: str,
                 reason: str | None) -> RefundPlan:
    """Plan a credit note with a refund of ``amount`` (minor units)."""
    return _request(state, invoice, amount=amount, revoke=revoke, actor_id=actor_id, reason=reason)


def _request(state: PluginState, invoice: Invoice, *, amount: int | None, revoke: bool, actor_id: str,
             reason: str | None) -> RefundPlan:
    session = state.session
    if invoice.purchase is None or invoice.stripe_invoice_id is None:
        raise RefundRefused(_("Only the invoice of an online purchase is cancelled and refunded here."))
    if _settled_with_others(session, invoice):
        raise RefundRefused(_("Part of this invoice was paid together with other invoices, in one payment, which "
                              "Stripe credited to it by a payment record: refund that payment and issue the credit "
                              "note in the Stripe Dashboard. Refunding it here is not supported yet."))
    if invoice.source == InvoiceSource.DEPOSIT and not unattachable.deposit_settled(session, invoice.purchase):
        # Its credit note would refund nothing of the deposit, which Stripe has not credited to the invoice yet
        raise RefundRefused(_("The deposit is not credited to this invoice yet: Stripe could not be reached when it "
                              "was paid. Reconciliation credits it; cancel once the invoice shows it paid."))
    unpaid = _unpaid_part(invoice, amount)
    _refuse_made(session, invoice, amount)
    refund = _matching_request(session, invoice, amount) or _new_request(session, invoice, amount, revoke,
                                                                         actor_id, reason)
    params: CreditNoteCreateParams = {
        "invoice": invoice.stripe_invoice_id, "amount": refund.amount + unpaid, "reason": "order_change",
        "metadata": {"lms_refund_id": str(refund.id)}}
    if refund.amount > refund.balance_amount:
        params["refund_amount"] = refund.amount - refund.balance_amount
    if refund.balance_amount:
        params["credit_amount"] = refund.balance_amount  # back to the learner's balance (the customer's, at Stripe)
    if reason:
        params["memo"] = reason[:500]
    return RefundPlan(refund.id, refund.idempotency_key, credit_note=params)


def _settled_with_others(session, invoice: Invoice) -> bool:
    """Whether a settlement of several invoices paid part of this one: Stripe refunds only the payments it
    attached itself, not a payment record's share of another payment (so a credit note's refund_amount cannot)."""
    return session.scalar(select(RequestPart.id).where(RequestPart.invoice_id == invoice.id,
                                                       RequestPart.paid_at.is_not(None)).limit(1)) is not None


def _matching_request(session, invoice: Invoice, amount: int | None) -> Refund | None:
    """An unconfirmed request for the same thing is retried with its own idempotency key; another request
    waits until that one is settled (repeating it, or reconciliation, settles it)."""
    pending = unconfirmed_request(session, invoice)
    if pending is None:
        return None
    if (amount is None and pending.full) or (amount is not None and not pending.full and amount == pending.amount):
        return pending
    raise RefundRefused(_("An earlier request of %(amount)s was not confirmed by Stripe: repeat that request "
                          "first, it is retried safely.",
                          amount=Money(pending.amount, pending.currency).format(current_locale())))


def _refuse_made(session, invoice: Invoice, amount: int | None) -> None:
    """Refuse a request Stripe made already: its answer was lost, but its refund's event gave our row the
    refund's id (`lifecycle.sync_refund`) before any answer gave it its credit note. Asking for the same thing
    again is that request repeated, and Stripe is not asked again, not even with its idempotency key: Stripe
    may prune a key once it is 24 hours old, and a key reused after that makes a new credit note and refund.
    Its credit note comes in its own event (``credit_note.created``)."""
    made = session.scalars(select(Refund).where(
        Refund.purchase_id == invoice.purchase_id, Refund.origin == RefundOrigin.ADMIN,
        Refund.stripe_credit_note_id.is_(None), Refund.stripe_refund_id.is_not(None),
        Refund.idempotency_key.not_like(f"{RETRY_PREFIX}%")).order_by(Refund.id))
    for refund in made:
        if refund.full if amount is None else refund.amount == amount:
            raise RefundRefused(_("Stripe made the refund of %(amount)s asked for earlier (its answer was lost, "
                                  "Stripe has told us of the refund since): it is not asked for again.",
                                  amount=Money(refund.amount, refund.currency).format(current_locale())))


def cancellable(invoice: Invoice) -> bool:
    """Whether the purchase of the invoice can be cancelled: paid, or its invoice open with part of it paid
    from the learner's balance (the rest is then credited too)."""
    purchase = invoice.purchase
    if purchase is None or invoice.status == InvoiceStatus.CANCELLED:
        return False
    return purchase.status == PurchaseStatus.PAID or (
        purchase.status == PurchaseStatus.OPEN and invoice.source == InvoiceSource.BALANCE
        and invoice.status == InvoiceStatus.OPEN)


def _new_request(session, invoice: Invoice, amount, revoke, actor_id, reason) -> Refund:
    if invoice.status == InvoiceStatus.CANCELLED or (amount is None and not cancellable(invoice)):
        raise RefundRefused(_("This invoice is already cancelled."))
    remaining = refundable(invoice, session)
    if remaining <= 0:
        raise RefundRefused(_("Nothing is left to refund on this invoice, or a refund is in progress."))
    if amount is not None and not 0 < amount <= remaining:
        raise RefundRefused(_("The amount must be more than 0 and at most %(max)s.",
                              max=Money(remaining, invoice.currency).format(current_locale())))
    refund = Refund(purchase_id=invoice.purchase_id, amount=amount or remaining, currency=invoice.currency,
                    balance_amount=_split(session, invoice, amount or remaining), status=RefundStatus.REQUESTED,
                    full=amount is None or amount == _paid(session, invoice) - invoice.amount_refunded,
                    revoke_access=revoke, origin=RefundOrigin.ADMIN, reason=reason, actor_id=actor_id,
                    idempotency_key="pending")
    _insert(session, refund, "lms-refund-")
    audit.record(session, AuditAction.REFUND_REQUESTED, actor_id=actor_id, user_id=invoice.user_id,
                 course_id=invoice.course_id, purchase_id=invoice.purchase_id, amount=refund.amount,
                 full=refund.full, revoke_access=revoke, reason=reason, to_balance=refund.balance_amount)
    return refund


def _insert(session, refund: Refund, key_prefix: str) -> None:
    """Insert a refund request; its id gives its idempotency key. One administrator's request at a time per
    purchase (a partial unique index): a second one is refused, never sent."""
    try:
        with session.begin_nested():
            session.add(refund)
            session.flush()
            refund.idempotency_key = f"{key_prefix}{refund.id}"
    except IntegrityError:
        raise RefundRefused(_("Another refund of this purchase is in progress: wait for it to finish.")) from None


def request_retry(state: PluginState, failed: Refund, *, actor_id: str) -> RefundPlan:
    """Plan refunding again, through Stripe's Refunds API, what a failed refund did not return (its part
    credited to the balance was credited with its credit note, and is not refunded again). The retry's row
    names the refund it replaces (`Refund.replaces_id`)."""
    session = state.session
    failed = _last_refused(session, failed) if failed.status == RefundStatus.FAILED else failed
    if failed.status != RefundStatus.FAILED:
        raise RefundRefused(_("Only a failed refund can be retried."))
    purchase = failed.purchase
    payment_intent = purchase.stripe_payment_intent_id or _failed_refund_payment(state, failed)
    if not payment_intent:
        raise RefundRefused(_("This purchase has no Stripe payment to refund."))
    retry = _retry_of(session, failed)
    if retry is not None and retry.stripe_refund_id is not None:
        _replace(session, failed)
        raise RefundRefused(_("Stripe made the retry of this refund asked for earlier (its answer was lost, "
                              "Stripe has told us of the refund since): it is not asked for again."))
    retry = retry or _pending_retry(session, purchase.id, failed) or _new_retry(session, failed, actor_id)
    return refund_plan(retry, payment_intent)


def _failed_refund_payment(state: PluginState, failed: Refund) -> str | None:
    """The payment a failed refund refunded (a payment attached to the invoice, not Checkout's), as recorded."""
    invoice = failed.purchase.invoice
    if invoice is None:
        return None
    return state.session.scalar(select(InvoicePayment.stripe_payment_intent_id).where(
        InvoicePayment.invoice_id == invoice.id, InvoicePayment.status == "paid",
        InvoicePayment.stripe_payment_intent_id.is_not(None)).order_by(InvoicePayment.id.desc()).limit(1))


def refund_plan(refund: Refund, payment_intent: str) -> RefundPlan:
    """The Refunds API call for a refund row (a retry's answer also marks the refund it replaces)."""
    params: RefundCreateParams = {"payment_intent": payment_intent, "amount": refund.amount,
                                  "metadata": {"lms_refund_id": str(refund.id)}}
    if refund.origin == RefundOrigin.SYSTEM:
        params["reason"] = "duplicate"
    return RefundPlan(refund.id, refund.idempotency_key, refund=params)


def _retry_of(session, failed: Refund) -> Refund | None:
    """The retry that replaces ``failed`` (at most one: the column is unique). Stripe may have made it though
    its answer was lost: the refund's event, whose metadata names the retry, gave it the refund's id, but only
    the answer marks ``failed`` replaced."""
    return session.scalar(select(Refund).where(Refund.replaces_id == failed.id))


def _last_refused(session, failed: Refund) -> Refund:
    """The refund to retry: ``failed``, or the retry Stripe refused that replaces it, which stands for it (and
    so on, along the retries). ``failed`` is then marked replaced: its retry's refusal marks it so today, but a
    refund may have been left failed beside its refused retry before retries named the refund they replace."""
    while (retry := _retry_of(session, failed)) is not None and retry.stripe_refund_id is None \
            and retry.status in (RefundStatus.FAILED, RefundStatus.REPLACED):
        _replace(session, failed)
        failed = retry
    return failed


def _replace(session, failed: Refund) -> None:
    transition(session, failed, (RefundStatus.FAILED,), RefundStatus.REPLACED)  # kept for the record


def _pending_retry(session, purchase_id: int, failed: Refund) -> Refund | None:
    """A retry of the purchase that Stripe never confirmed (one refund in flight per purchase), whichever refund
    it replaces: asked again with its key. One that names none was recorded before retries did: it is linked to
    ``failed`` (what an administrator retries), so that its answer marks that refund replaced."""
    pending = session.scalar(select(Refund).where(Refund.purchase_id == purchase_id,
                                                  Refund.status == RefundStatus.REQUESTED,
                                                  Refund.idempotency_key.like(f"{RETRY_PREFIX}%"),
                                                  Refund.stripe_refund_id.is_(None)))
    if pending is not None and pending.replaces_id is None:
        pending.replaces_id = failed.id
    return pending


def _new_retry(session, failed: Refund, actor_id: str) -> Refund:
    retry = Refund(purchase_id=failed.purchase_id, amount=failed.amount - failed.balance_amount,
                   currency=failed.currency, replaces_id=failed.id,
                   status=RefundStatus.REQUESTED, full=failed.full, revoke_access=failed.revoke_access,
                   origin=RefundOrigin.ADMIN, reason=failed.reason, actor_id=actor_id, idempotency_key="pending")
    _insert(session, retry, RETRY_PREFIX)
    audit.record(session, AuditAction.REFUND_RETRIED, actor_id=actor_id, purchase_id=failed.purchase_id,
                 amount=retry.amount, failed_refund=failed.id, retry=retry.id)
    return retry


# -- the call to Stripe ------------------------------------------------------------------------------


def send(state: PluginState, plan: RefundPlan) -> Refund:
    """Make the planned call to Stripe, then apply its answer. Stripe unreachable: nothing is written, and
    repeating the request retries it with its key. Refused, or a server error Stripe keeps as this key's
    answer: the request is marked failed (a new attempt gets a new key)."""
    settings = payment_settings.load(state.session)
    gateway, key = state.gateway, plan.idempotency_key
    try:
        if plan.credit_note is not None:
            created = gateway.create_credit_note(plan.credit_note, api_key=settings.secret_key, idempotency_key=key)
        elif plan.refund is not None:
            created = gateway.create_refund(plan.refund, api_key=settings.secret_key, idempotency_key=key)
    except GatewayError as err:
        _gateway_failed(state.session, plan.refund_id, err)
        raise
    if plan.credit_note is None:
        return _apply_refund(state, plan, created)
    # The credit note is made: if reading its refund fails, repeating the request finds it by its key.
    stripe_refund = _credit_note_refund(state, created, settings)
    return _apply_credit_note(state, plan.refund_id, created, stripe_refund)


def _gateway_failed(session, refund_id: int, err: GatewayError) -> None:
    if err.retryable and not err.answered:
        return
    refund = session.get(Refund, refund_id)
    if transition(session, refund, (RefundStatus.REQUESTED,), RefundStatus.FAILED, failure_reason=err.message):
        audit.record(session, AuditAction.REFUND_FAILED, actor_id=refund.actor_id, purchase_id=refund.purchase_id,
                     amount=refund.amount, reason=err.message)
        _replaced_by(session, refund)  # a refused retry stands for the refund it replaces: it is retried next


def _replaced_by(session, retry: Refund) -> None:
    """Mark the refund that ``retry`` replaces replaced, once Stripe answered the retry."""
    if retry.replaces_id is not None:
        _replace(session, session.get(Refund, retry.replaces_id))


def _apply_refund(state: PluginState, plan: RefundPlan, created: dict) -> Refund:
    session = state.session
    refund = session.get(Refund, plan.refund_id)
    _replaced_by(session, refund)
    sync_refund(state, created, refund=refund)
    return refund


def _apply_credit_note(state: PluginState, refund_id: int, credit_note: dict, stripe_refund: dict | None) -> Refund:
    session = state.session
    # The refund's webhooks may have been handled while we waited for Stripe: work on fresh rows.
    refund = session.get(Refund, refund_id, with_for_update=True, populate_existing=True)
    invoice = session.scalar(select(Invoice).where(Invoice.purchase_id == refund.purchase_id)
                             .with_for_update().execution_options(populate_existing=True))
    refund.stripe_credit_note_id = credit_note["id"]
    credit_notes.record(state, credit_note, actor_id=refund.actor_id)  # a partial refund's too: number, PDF
    if refund.full:
        invoice.credit_note_id = credit_note["id"]
        invoice.credit_note_number = credit_note.get("number")
        invoice.credit_note_pdf_url = credit_note.get("pdf")
        _cancel_requests(state, invoice, refund.actor_id)
    if transition(session, refund, (RefundStatus.REQUESTED,), RefundStatus.PENDING):
        set_invoice_status(session, invoice.purchase, InvoiceStatus.REFUND_PENDING)
    refused_now = stripe_refund is not None and status_of(stripe_refund) == RefundStatus.FAILED
    if refund.revoke_access and not refused_now:
        # Revoked now, as the administrator decided; a learner whose refund Stripe refuses outright keeps
        # access until a retried refund goes through.
        reason = AccessReason.CANCELLED if refund.full else AccessReason.REFUND
        revoke_access(state, invoice.purchase, reason=reason, actor_id=refund.actor_id)
    if refund.full:
        _close_unpaid(session, invoice.purchase)
    if stripe_refund is not None:
        sync_refund(state, stripe_refund, refund=refund)
    elif refund.amount == refund.balance_amount:
        succeeded(state, refund)  # all of it credited back to the balance, with the credit note: nothing to wait for
    return refund


def _close_unpaid(session, purchase) -> None:
    """A purchase cancelled before it was paid (its invoice paid in part from the balance): closed, so that
    the learner may buy the course again; it gave no access, so none is revoked."""
    transition(session, purchase, (PurchaseStatus.OPEN,), PurchaseStatus.CANCELLED, cancelled_at=utcnow())


def _cancel_requests(state: PluginState, invoice: Invoice, actor_id: str | None) -> None:
    """The invoice is cancelled: its open payment requests (a deposit's balance) are cancelled with it."""
    for request in _open_requests(state.session, invoice):
        payment_requests.cancel(state, request, actor_id=actor_id)


def _open_requests(session, invoice: Invoice) -> list[PaymentRequest]:
    """Its own requests, and the settlements it is part of (which can no longer be paid as asked)."""
    return payment_requests.open_of_invoice(session, invoice)


def _credit_note_refund(state: PluginState, credit_note: dict, settings) -> dict | None:
    stripe_refunds = credit_note.get("refunds") or []
    if not stripe_refunds:
        return None
    refund_id = stripe_refunds[0].get("refund")
    refund_id = refund_id.get("id") if isinstance(refund_id, dict) else refund_id
    if not refund_id:
        return None
    return state.gateway.retrieve_refund(refund_id, api_key=settings.secret_key)
