"""Administrators cancel a purchase (credit note + full refund + access revoked) or refund part of it.

Each request is first written as a "requested" refund row whose id gives the idempotency key; the row is
reused if the administrator retries after Stripe could not be reached, so a retry can never refund twice.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from . import audit, settings as payment_settings
from .errors import GatewayError, PaymentsError
from .i18n import current_locale, gettext as _
from .money import Money
from .models import Invoice, Refund
from .refunds import STRIPE_TO_OURS, revoke_access, set_invoice_status, sync_refund
from .txn import transition

RETRY_PREFIX = "lms-refund-retry-"


class RefundRefused(PaymentsError):
    status_code = 409


def refundable(invoice: Invoice, session) -> int:
    """What can still be refunded: paid, minus refunded, minus refunds Stripe has under way. A request
    Stripe never confirmed is not under way: asking again retries it with its own key."""
    in_flight = session.scalars(select(Refund.amount).where(
        Refund.purchase_id == invoice.purchase_id, Refund.status.in_(("requested", "pending")),
        (Refund.stripe_refund_id.is_not(None)) | (Refund.stripe_credit_note_id.is_not(None)))).all()
    return max(0, invoice.gross - invoice.amount_refunded - sum(in_flight))


def unconfirmed_request(session, invoice: Invoice) -> Refund | None:
    """A credit note request that Stripe never confirmed (unreachable at the time)."""
    return session.scalar(select(Refund).where(Refund.purchase_id == invoice.purchase_id, Refund.origin == "admin",
                                               Refund.status == "requested", Refund.stripe_credit_note_id.is_(None),
                                               Refund.stripe_refund_id.is_(None),
                                               Refund.idempotency_key.not_like(f"{RETRY_PREFIX}%")))


def cancel_invoice(state, invoice: Invoice, *, actor_id: str, reason: str | None) -> Refund:
    """Credit note for the whole remaining amount, with its refund; access revoked at once."""
    return _refund(state, invoice, amount=None, revoke=True, actor_id=actor_id, reason=reason)


def refund_part(state, invoice: Invoice, *, amount: int, revoke: bool, actor_id: str, reason: str | None) -> Refund:
    return _refund(state, invoice, amount=amount, revoke=revoke, actor_id=actor_id, reason=reason)


def _refund(state, invoice: Invoice, *, amount: int | None, revoke: bool, actor_id: str, reason: str | None) -> Refund:
    session = state.session
    refund = _matching_request(session, invoice, amount) or _new_request(state, invoice, amount, revoke, actor_id,
                                                                         reason)
    settings = payment_settings.load(session)
    params = {"invoice": invoice.stripe_invoice_id, "amount": refund.amount, "refund_amount": refund.amount,
              "reason": "order_change", "metadata": {"lms_refund_id": str(refund.id)}}
    if reason:
        params["memo"] = reason[:500]
    session.commit()  # hold no transaction open across the network call
    try:
        credit_note = state.gateway.create_credit_note(params, api_key=settings.secret_key,
                                                       idempotency_key=refund.idempotency_key)
    except GatewayError as err:
        _gateway_failed(session, refund, err)
        raise
    _apply_credit_note(state, invoice, refund, credit_note, settings)
    session.commit()
    return refund


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


def _new_request(state, invoice, amount, revoke, actor_id, reason) -> Refund:
    session = state.session
    if invoice.status == "cancelled" or (amount is None and invoice.purchase.status != "paid"):
        raise RefundRefused(_("This invoice is already cancelled."))
    remaining = refundable(invoice, session)
    if remaining <= 0:
        raise RefundRefused(_("Nothing is left to refund on this invoice, or a refund is in progress."))
    if amount is not None and not 0 < amount <= remaining:
        raise RefundRefused(_("The amount must be more than 0 and at most %(max)s.",
                              max=Money(remaining, invoice.currency).format(current_locale())))
    refund = Refund(purchase_id=invoice.purchase_id, amount=amount or remaining, currency=invoice.currency,
                    status="requested", full=amount is None or amount == invoice.gross - invoice.amount_refunded,
                    revoke_access=revoke, origin="admin", reason=reason, actor_id=actor_id,
                    idempotency_key="pending")
    session.add(refund)
    try:
        session.flush()
        refund.idempotency_key = f"lms-refund-{refund.id}"
        audit.record(session, "refund_requested", actor_id=actor_id, user_id=invoice.user_id,
                     course_id=invoice.course_id, purchase_id=invoice.purchase_id, amount=refund.amount,
                     full=refund.full, revoke_access=revoke, reason=reason)
        session.commit()
    except IntegrityError:
        session.rollback()  # another administrator's refund of this purchase is in flight
        raise RefundRefused(_("Another refund of this purchase is in progress: wait for it to finish."))
    return refund


def _gateway_failed(session, refund: Refund, err: GatewayError) -> None:
    """Unreachable: nothing marked, the request kept for a safe retry with its key. Refused, or a server
    error Stripe keeps as this key's answer: the request fails, and a new attempt gets a new key."""
    if err.retryable and not err.answered:
        session.rollback()
        return
    refund.status, refund.failure_reason = "failed", err.message
    audit.record(session, "refund_failed", actor_id=refund.actor_id, purchase_id=refund.purchase_id,
                 amount=refund.amount, reason=err.message)
    session.commit()


def _apply_credit_note(state, invoice: Invoice, refund: Refund, credit_note: dict, settings) -> None:
    session = state.session
    # The refund's webhooks may have been handled while we waited for Stripe: work on fresh rows.
    session.refresh(refund, with_for_update=True)
    session.refresh(invoice, with_for_update=True)
    refund.stripe_credit_note_id = credit_note["id"]
    if refund.full:
        invoice.credit_note_id = credit_note["id"]
        invoice.credit_note_number = credit_note.get("number")
        invoice.credit_note_pdf_url = credit_note.get("pdf")
    if transition(session, refund, ("requested",), "pending"):
        set_invoice_status(session, invoice.purchase, "refund_pending")
    stripe_refund = _credit_note_refund(state, credit_note, settings)
    refused_now = stripe_refund is not None and STRIPE_TO_OURS.get(stripe_refund.get("status")) == "failed"
    if refund.revoke_access and not refused_now:
        # Revoked now, as the administrator decided; a learner whose refund Stripe refuses outright keeps
        # access until a retried refund goes through.
        revoke_access(state, invoice.purchase, reason="cancelled" if refund.full else "refund",
                      actor_id=refund.actor_id)
    if stripe_refund is not None:
        sync_refund(state, stripe_refund, refund=refund)


def _credit_note_refund(state, credit_note: dict, settings) -> dict | None:
    stripe_refunds = credit_note.get("refunds") or []
    if not stripe_refunds:
        return None
    refund_id = stripe_refunds[0].get("refund")
    refund_id = refund_id.get("id") if isinstance(refund_id, dict) else refund_id
    return state.gateway.retrieve_refund(refund_id, api_key=settings.secret_key)


def retry_refund(state, failed: Refund, *, actor_id: str) -> Refund:
    """Refund again, through Stripe's refunds API, what a failed refund did not return."""
    session = state.session
    if failed.status != "failed":
        raise RefundRefused(_("Only a failed refund can be retried."))
    purchase = failed.purchase
    if not purchase.stripe_payment_intent_id:
        raise RefundRefused(_("This purchase has no Stripe payment to refund."))
    retry = _pending_retry(session, purchase.id) or _new_retry(session, failed, actor_id)
    settings = payment_settings.load(session)
    try:
        created = state.gateway.create_refund(
            {"payment_intent": purchase.stripe_payment_intent_id, "amount": retry.amount,
             "metadata": {"lms_refund_id": str(retry.id)}}, api_key=settings.secret_key,
            idempotency_key=retry.idempotency_key)
    except GatewayError as err:
        _gateway_failed(session, retry, err)
        raise
    session.refresh(failed)
    failed.status = "canceled"  # replaced by the retry, kept for the record
    sync_refund(state, created, refund=retry)
    session.commit()
    return retry


def _pending_retry(session, purchase_id: int) -> Refund | None:
    return session.scalar(select(Refund).where(Refund.purchase_id == purchase_id, Refund.status == "requested",
                                               Refund.idempotency_key.like(f"{RETRY_PREFIX}%"),
                                               Refund.stripe_refund_id.is_(None)))


def _new_retry(session, failed: Refund, actor_id: str) -> Refund:
    retry = Refund(purchase_id=failed.purchase_id, amount=failed.amount, currency=failed.currency,
                   status="requested", full=failed.full, revoke_access=failed.revoke_access, origin="admin",
                   reason=failed.reason, actor_id=actor_id, idempotency_key="pending")
    session.add(retry)
    try:
        session.flush()
        retry.idempotency_key = f"{RETRY_PREFIX}{retry.id}"
        audit.record(session, "refund_retried", actor_id=actor_id, purchase_id=failed.purchase_id,
                     amount=retry.amount, failed_refund=failed.id)
        session.commit()
    except IntegrityError:
        session.rollback()
        raise RefundRefused(_("Another refund of this purchase is in progress: wait for it to finish."))
    return retry
