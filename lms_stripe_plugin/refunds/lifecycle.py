"""Refund states, driven by Stripe's answers and events: requested → pending → succeeded, or failed.

A refund Stripe has not confirmed is never counted as refunded. Whoever started it (an administrator
here, or someone in the Stripe dashboard), its success is applied once: the refund row's transition to
"succeeded" is a conditional UPDATE, and only the caller that made it adds the amount.
"""
from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from ..core.state import PluginState
from .. import signals
from ..billing import balances, paying
from ..core import audit, jobs
from ..core.enums import AccessReason, AuditAction, InvoiceStatus, RefundOrigin, RefundStatus
from ..core.i18n import gettext as _
from ..core.models import Invoice, Purchase, Refund, parse_row_id
from ..core.txn import send_after_commit, transition
from ..errors import PaymentsError
from . import credit_notes
from .access import revoke_access, set_invoice_status

#: Stripe's refund statuses, in ours.
STRIPE_TO_OURS = {"pending": RefundStatus.PENDING, "requires_action": RefundStatus.PENDING,
                  "succeeded": RefundStatus.SUCCEEDED, "failed": RefundStatus.FAILED,
                  "canceled": RefundStatus.FAILED}


class ExceedsPayment(PaymentsError):
    """A refund or dispute Stripe tells us of for more than the payment: counting it would make the refunded
    total exceed what was paid. Stripe refuses such refunds, so the event is not one to apply."""

    status_code = 409


class OtherCurrency(PaymentsError):
    """A refund or dispute in another currency than the payment it names."""

    status_code = 409


def paid_amount(purchase: Purchase) -> int:
    """What the learner paid (after vouchers), the most that can be refunded or disputed."""
    return purchase.amount_paid or purchase.amount


def check_fits(purchase: Purchase, kind: str, stripe_id: str, amount: int, currency: str) -> None:
    """Raise unless a refund or dispute of ``amount`` ``currency`` fits the payment of ``purchase``."""
    if currency.upper() != purchase.currency.upper():
        raise OtherCurrency(f"{kind} {stripe_id} is in {currency.upper()}; purchase {purchase.id} was paid in "
                            f"{purchase.currency}.")
    if amount > paid_amount(purchase):
        raise ExceedsPayment(f"{kind} {stripe_id} is of {amount} (minor units); purchase {purchase.id} was paid "
                             f"{paid_amount(purchase)}.")


def status_of(stripe_refund: dict) -> RefundStatus:
    """A Stripe refund's status in ours (an unknown one is still pending)."""
    return STRIPE_TO_OURS.get(stripe_refund.get("status") or "", RefundStatus.PENDING)


def purchase_for_payment_intent(session, payment_intent: str | None) -> Purchase | None:
    """Our purchase paid by this PaymentIntent, if its payment is recorded."""
    if not payment_intent:
        return None
    return session.scalar(select(Purchase).where(Purchase.stripe_payment_intent_id == payment_intent))


def of_balance(session, stripe_refund: dict) -> bool:
    """Whether a refund is the learner's balance's: a top-up's made by the plugin (`of_topup`), or any refund of a
    deposit that went on the balance (its payment is also its purchase's)."""
    if of_topup(stripe_refund):
        return True
    purchase = purchase_for_payment_intent(session, stripe_refund.get("payment_intent"))
    return purchase is not None and balances.deposit_on_balance(session, purchase.id)


def of_topup(stripe_refund: dict) -> bool:
    """Whether a refund is a top-up's (`balances.finish_refund` names it in the metadata): the balance's own, not a
    purchase's, even when the payment it refunds is also a purchase's (a deposit its invoice no longer owed, put
    on the balance)."""
    return (stripe_refund.get("metadata") or {}).get("lms_topup_id") is not None


def note_pay_click_refund(state: PluginState, stripe_refund: dict) -> bool:
    """A refund of a Pay click's payment (a payment request's, a payment link's) that the plugin did not make (in
    the Stripe Dashboard, say), once it succeeded or failed: written in the history of each invoice the payment
    paid, once per refund and status, so that the school sees the money went back and issues the invoice's credit
    note. The invoice itself is left as Stripe keeps it (paid). Whether it was one."""
    session = state.session
    status = status_of(stripe_refund)
    if of_topup(stripe_refund) or parse_row_id((stripe_refund.get("metadata") or {}).get("lms_refund_id")) \
            is not None or status not in (RefundStatus.SUCCEEDED, RefundStatus.FAILED):
        return False
    attempt = paying.pay_click_of(session, stripe_refund.get("payment_intent"))
    if attempt is None:
        return False
    user_id = attempt.request.user_id if attempt.request is not None else attempt.payer_user_id
    action = AuditAction.REFUND_SUCCEEDED if status == RefundStatus.SUCCEEDED else AuditAction.REFUND_FAILED
    if audit.recorded_of_refund(session, action, user_id=user_id, refund_id=stripe_refund["id"]):
        return True  # told already (refund.created, then refund.updated of the same status)
    invoice_ids: list[int | None] = list(paying.invoices_paid_by(attempt)) or [None]
    for invoice_id in invoice_ids:
        audit.record(session, action, user_id=user_id, refund=stripe_refund["id"], outside=True,
                     amount=int(stripe_refund["amount"]), currency=str(stripe_refund["currency"]).upper(),
                     request=attempt.request_id, link=attempt.link_id, invoice=invoice_id,
                     error=stripe_refund.get("failure_reason"))
    return True


def refunds_of(session, purchase_id: int) -> list[Refund]:
    """A purchase's refunds, newest first."""
    return list(session.scalars(select(Refund).where(Refund.purchase_id == purchase_id)
                                .order_by(Refund.created_at.desc(), Refund.id.desc())))


def sync_refund(state: PluginState, stripe_refund: dict, *, refund: Refund | None = None,
                purchase: Purchase | None = None) -> Refund | None:
    """Bring our refund row in line with Stripe's refund. A refund we have no row for was made in Stripe's
    dashboard (or its answer to us was lost): it is recorded against ``purchase``, by default the purchase
    its PaymentIntent paid; None when the payment is not ours."""
    session = state.session
    # Read locked (or read again, locked): another request may have moved it since it was read.
    if refund is None:
        refund = session.scalar(select(Refund).where(Refund.stripe_refund_id == stripe_refund["id"])
                                .with_for_update().execution_options(populate_existing=True))
    else:
        session.refresh(refund, with_for_update=True)
    if refund is None:
        if of_topup(stripe_refund):
            return None
        purchase = purchase or purchase_for_payment_intent(session, stripe_refund.get("payment_intent"))
        if purchase is not None and balances.deposit_on_balance(session, purchase.id):
            return None  # its deposit, all it paid, is the balance's: `balances.refunded_outside` takes the refund
        refund = _dashboard_refund(state, stripe_refund, purchase) if purchase is not None else None
        if refund is None:
            return None
        session.refresh(refund, with_for_update=True)
    if refund.stripe_refund_id is None:
        refund.stripe_refund_id = stripe_refund["id"]
    status = status_of(stripe_refund)
    if status == RefundStatus.SUCCEEDED:
        succeeded(state, refund)
    elif status == RefundStatus.FAILED:
        _failed(state, refund, stripe_refund.get("failure_reason") or stripe_refund.get("status") or "unknown")
    elif transition(session, refund, (RefundStatus.REQUESTED,), RefundStatus.PENDING):
        set_invoice_status(session, refund.purchase, InvoiceStatus.REFUND_PENDING)
    return refund


def _dashboard_refund(state: PluginState, stripe_refund: dict, purchase: Purchase) -> Refund | None:
    """Our row for a refund we have no id for: the row its metadata names (a refund the plugin asked for,
    whose answer is not applied yet), an administrator's request whose answer was lost (same purchase and
    amount, not yet confirmed), or else a refund made in the Stripe dashboard."""
    session = state.session
    amount = int(stripe_refund["amount"])
    check_fits(purchase, "Refund", stripe_refund["id"], amount, stripe_refund["currency"])
    named = _named_row(session, stripe_refund, purchase)
    if named is not None:
        return named
    unconfirmed = session.scalar(select(Refund).where(
        Refund.purchase_id == purchase.id, Refund.origin == RefundOrigin.ADMIN,
        Refund.status == RefundStatus.REQUESTED, Refund.stripe_refund_id.is_(None),
        Refund.amount - Refund.balance_amount == amount).order_by(Refund.id))
    if unconfirmed is not None:
        return unconfirmed
    refund = Refund(purchase=purchase, stripe_refund_id=stripe_refund["id"], amount=amount,
                    currency=stripe_refund["currency"].upper(), status=RefundStatus.REQUESTED,
                    origin=RefundOrigin.DASHBOARD,
                    full=amount >= paid_amount(purchase) - purchase.amount_refunded,
                    revoke_access=True, idempotency_key=f"stripe-{stripe_refund['id']}",
                    reason=stripe_refund.get("reason"))
    try:
        with session.begin_nested():
            session.add(refund)
    except IntegrityError:  # the same refund, recorded meanwhile by a concurrent event
        return session.scalar(select(Refund).where(Refund.stripe_refund_id == stripe_refund["id"]))
    audit.record(session, AuditAction.REFUND_REQUESTED, user_id=purchase.user_id, course_id=purchase.course_id,
                 purchase_id=purchase.id, amount=refund.amount, origin=RefundOrigin.DASHBOARD,
                 refund=stripe_refund["id"])
    wanted = credit_notes.wanted_for(refund) if status_of(stripe_refund) != RefundStatus.FAILED else None
    if wanted is not None:
        # An invoiced payment refunded: the credit note that documents it, unless the Dashboard made one.
        jobs.defer(session, credit_notes.issue_for_refund, wanted)
    return refund


def _named_row(session, stripe_refund: dict, purchase: Purchase) -> Refund | None:
    """The row a refund's metadata names, whatever its kind (an administrator's retry, a duplicate payment's
    refund): ``lms_refund_id``, which the plugin sets on every refund it asks for through the Refunds API and
    Stripe keeps on the refund and its events. A credit note's refund carries none (the credit note's metadata
    is its own): it is matched by its amount. Only a row of the school's (the query is scoped to it), of the
    refund's purchase, that has no other refund yet."""
    named = parse_row_id((stripe_refund.get("metadata") or {}).get("lms_refund_id"))
    if named is None:
        return None
    return session.scalar(select(Refund).where(Refund.id == named, Refund.purchase_id == purchase.id,
                                               Refund.stripe_refund_id.is_(None)))


def _count_refunded(session, purchase: Purchase, amount: int) -> None:
    """Add ``amount`` (negative: take it back) to what the purchase and its invoice count as refunded; never
    past what was paid nor past the invoice's gross (`ExceedsPayment`): conditional writes, so that refunds
    counted at the same time cannot pass it together either."""
    query = update(Purchase).where(Purchase.id == purchase.id)
    if amount > 0:
        query = query.where(Purchase.amount_refunded + amount <=
                            func.coalesce(func.nullif(Purchase.amount_paid, 0), Purchase.amount))
    counted = session.execute(query.values(amount_refunded=Purchase.amount_refunded + amount)
                              .execution_options(synchronize_session=False))
    if counted.rowcount != 1 or (amount > 0 and session.scalar(select(Invoice.id).where(
            Invoice.purchase_id == purchase.id, Invoice.amount_refunded + amount > Invoice.gross)) is not None):
        raise ExceedsPayment(f"A refund of {amount} (minor units) would bring what purchase {purchase.id} counts "
                             f"as refunded past what was paid ({paid_amount(purchase)}) or invoiced.")
    session.execute(update(Invoice).where(Invoice.purchase_id == purchase.id)
                    .values(amount_refunded=Invoice.amount_refunded + amount)
                    .execution_options(synchronize_session=False))
    session.refresh(purchase)


_SUCCEEDS_FROM = (RefundStatus.REQUESTED, RefundStatus.PENDING)


def succeeded(state: PluginState, refund: Refund) -> None:
    """The refund is done (Stripe's refund succeeded, or all of it was credited back to the learner's balance
    with its credit note): counted once, the invoice's status and the learner's access following."""
    session = state.session
    # Never from "failed": a refund Stripe reports failed does not succeed later (a retry is a new refund).
    if refund.status not in _SUCCEEDS_FROM:  # read again, locked, by `sync_refund`: nothing to do
        return
    # A savepoint: a refund that does not fit the payment is left as it was, counted nowhere.
    with session.begin_nested():
        if not transition(session, refund, _SUCCEEDS_FROM, RefundStatus.SUCCEEDED, failure_reason=None):
            return
        purchase = refund.purchase
        _count_refunded(session, purchase, refund.amount)
    audit.record(session, AuditAction.REFUND_SUCCEEDED, user_id=purchase.user_id, course_id=purchase.course_id,
                 purchase_id=purchase.id, amount=refund.amount, refund=refund.stripe_refund_id, origin=refund.origin)
    # Whole when all that was paid is now refunded, or when the administrator cancelled the purchase. A Dashboard
    # refund's own "full" was only what it covered when it was told of: refunds that failed since (Stripe
    # documents a refund that succeeds, then fails) leave part of the payment with the school.
    whole = purchase.amount_refunded >= paid_amount(purchase) or (
        refund.full and refund.origin != RefundOrigin.DASHBOARD)
    if whole:
        set_invoice_status(session, purchase, InvoiceStatus.CANCELLED)
    else:
        set_invoice_status(session, purchase, InvoiceStatus.PARTIALLY_REFUNDED)
    if refund.revoke_access and (whole or refund.origin == RefundOrigin.ADMIN):
        revoke_access(state, purchase, reason=AccessReason.REFUND, actor_id=refund.actor_id)


def _failed(state: PluginState, refund: Refund, reason: str) -> None:
    """A refund that failed, including one that had succeeded: Stripe documents refunds that succeed and
    fail days later (test card 4000 0000 0000 5126), the money back on our balance. It is then no longer
    counted as refunded, and the invoice, even cancelled, says the refund failed."""
    session = state.session
    had_succeeded = refund.status == RefundStatus.SUCCEEDED  # the row was just read again, locked
    if not transition(session, refund, (RefundStatus.REQUESTED, RefundStatus.PENDING, RefundStatus.SUCCEEDED),
                      RefundStatus.FAILED, failure_reason=reason):
        return
    purchase = refund.purchase
    # What it credited back to the learner's balance stays credited (the credit note did it): counted as given
    # back either way; only what the payment was to get is not.
    if had_succeeded and refund.amount > refund.balance_amount:
        _count_refunded(session, purchase, -(refund.amount - refund.balance_amount))
    elif not had_succeeded and refund.balance_amount:
        _count_refunded(session, purchase, refund.balance_amount)
    set_invoice_status(session, purchase, InvoiceStatus.REFUND_FAILED, even_if_cancelled=had_succeeded)
    audit.record(session, AuditAction.REFUND_FAILED, user_id=purchase.user_id, course_id=purchase.course_id,
                 purchase_id=purchase.id, amount=refund.amount, reason=reason, refund=refund.stripe_refund_id)
    send_after_commit(session, signals.refund_failed, refund=refund, reason=failure_text(reason))


def failure_text(reason: str | None) -> str:
    """Why a refund failed, in the reader's language: Stripe's failure codes are stored, not sentences."""
    texts = {
        "expired_or_canceled_card": _("The card has expired or was cancelled."),
        "lost_or_stolen_card": _("The card was reported lost or stolen."),
        "insufficient_funds": _("The Stripe balance is insufficient for this refund."),
        "declined": _("The card issuer declined the refund."),
        "canceled": _("The refund was cancelled."),
        "unknown": _("Stripe could not refund this payment."),
    }
    if reason and " " in reason:
        return reason  # a message Stripe wrote for a refused request
    return texts.get(reason or "unknown", _("Stripe could not refund this payment (%(code)s).", code=reason))
