"""Refund states, driven by Stripe's answers and events: requested → pending → succeeded, or failed.

A refund Stripe has not confirmed is never counted as refunded. Whoever started it (an administrator
here, or someone in the Stripe dashboard), its success is applied once: the refund row's transition to
"succeeded" is a conditional UPDATE, and only the caller that made it adds the amount.
"""
from __future__ import annotations

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from . import audit, signals
from .models import Invoice, Purchase, Refund, parse_row_id, utcnow
from .txn import after_commit, transition

STRIPE_TO_OURS = {"pending": "pending", "requires_action": "pending", "succeeded": "succeeded",
                  "failed": "failed", "canceled": "failed"}


def purchase_for_payment_intent(session, payment_intent: str | None) -> Purchase | None:
    if not payment_intent:
        return None
    return session.scalar(select(Purchase).where(Purchase.stripe_payment_intent_id == payment_intent))


def purchase_for_payment(state, payment_intent: str | None) -> Purchase | None:
    """Our purchase paid by this PaymentIntent, fulfilled first if its refund or dispute arrives before
    its payment was recorded (events come in any order); None if the payment is not ours."""
    purchase = purchase_for_payment_intent(state.session, payment_intent)
    if purchase is not None or not payment_intent:
        return purchase
    from . import settings as payment_settings
    from .fulfillment import fulfil_from_stripe

    settings = payment_settings.load(state.session)
    intent = state.gateway.retrieve_payment_intent(payment_intent, api_key=settings.secret_key)
    purchase_id = parse_row_id((intent.get("metadata") or {}).get("lms_purchase_id"))
    purchase = state.session.get(Purchase, purchase_id) if purchase_id is not None else None
    if purchase is None or not purchase.stripe_checkout_session_id:
        return None
    fulfil_from_stripe(state, purchase.stripe_checkout_session_id)
    return purchase_for_payment_intent(state.session, payment_intent)


def sync_refund(state, stripe_refund: dict, *, refund: Refund | None = None) -> Refund | None:
    """Bring our refund row (created if Stripe's dashboard made the refund) in line with Stripe's refund."""
    session = state.session
    refund = refund or session.scalar(select(Refund).where(Refund.stripe_refund_id == stripe_refund["id"]))
    if refund is None:
        refund = _dashboard_refund(state, stripe_refund)
        if refund is None:
            return None  # not a payment of ours
    session.refresh(refund, with_for_update=True)  # another request may have moved it since we read it
    if refund.stripe_refund_id is None:
        refund.stripe_refund_id = stripe_refund["id"]
    status = STRIPE_TO_OURS.get(stripe_refund.get("status"), "pending")
    if status == "succeeded":
        _succeeded(state, refund)
    elif status == "failed":
        _failed(state, refund, stripe_refund.get("failure_reason") or stripe_refund.get("status"))
    elif transition(session, refund, ("requested",), "pending"):
        set_invoice_status(session, refund.purchase, "refund_pending")
    return refund


def _dashboard_refund(state, stripe_refund: dict) -> Refund | None:
    """Our row for a refund we have no id for: an administrator's request whose answer was lost (same
    purchase and amount, not yet confirmed), or else a refund made in the Stripe dashboard."""
    session = state.session
    purchase = purchase_for_payment(state, stripe_refund.get("payment_intent"))
    if purchase is None:
        return None
    amount = int(stripe_refund["amount"])
    unconfirmed = session.scalar(select(Refund).where(
        Refund.purchase_id == purchase.id, Refund.origin == "admin", Refund.status == "requested",
        Refund.stripe_refund_id.is_(None), Refund.amount == amount).order_by(Refund.id))
    if unconfirmed is not None:
        return unconfirmed
    refund = Refund(purchase=purchase, stripe_refund_id=stripe_refund["id"], amount=amount,
                    currency=stripe_refund["currency"].upper(), status="requested", origin="dashboard",
                    full=amount >= (purchase.amount_paid or purchase.amount) - purchase.amount_refunded,
                    revoke_access=True, idempotency_key=f"stripe-{stripe_refund['id']}",
                    reason=stripe_refund.get("reason"))
    try:
        with session.begin_nested():
            session.add(refund)
    except IntegrityError:  # the same refund, recorded meanwhile by a concurrent event
        return session.scalar(select(Refund).where(Refund.stripe_refund_id == stripe_refund["id"]))
    audit.record(session, "refund_requested", user_id=purchase.user_id, course_id=purchase.course_id,
                 purchase_id=purchase.id, amount=refund.amount, origin="dashboard", refund=stripe_refund["id"])
    return refund


def _succeeded(state, refund: Refund) -> None:
    session = state.session
    if not transition(session, refund, ("requested", "pending", "failed"), "succeeded", failure_reason=None):
        return
    purchase = refund.purchase
    session.execute(update(Purchase).where(Purchase.id == purchase.id)
                    .values(amount_refunded=Purchase.amount_refunded + refund.amount)
                    .execution_options(synchronize_session=False))
    session.execute(update(Invoice).where(Invoice.purchase_id == purchase.id)
                    .values(amount_refunded=Invoice.amount_refunded + refund.amount)
                    .execution_options(synchronize_session=False))
    session.refresh(purchase)
    audit.record(session, "refund_succeeded", user_id=purchase.user_id, course_id=purchase.course_id,
                 purchase_id=purchase.id, amount=refund.amount, refund=refund.stripe_refund_id, origin=refund.origin)
    fully = purchase.amount_refunded >= (purchase.amount_paid or purchase.amount)
    if fully or refund.full:
        set_invoice_status(session, purchase, "cancelled")
    else:
        set_invoice_status(session, purchase, "partially_refunded")
    if refund.revoke_access and (fully or refund.full or refund.origin == "admin"):
        revoke_access(state, purchase, reason="refund", actor_id=refund.actor_id)


def _failed(state, refund: Refund, reason: str) -> None:
    session = state.session
    if not transition(session, refund, ("requested", "pending"), "failed", failure_reason=reason):
        return
    purchase = refund.purchase
    set_invoice_status(session, purchase, "refund_failed")
    audit.record(session, "refund_failed", user_id=purchase.user_id, course_id=purchase.course_id,
                 purchase_id=purchase.id, amount=refund.amount, reason=reason, refund=refund.stripe_refund_id)
    after_commit(session, lambda: signals.refund_failed.send(current_app._get_current_object(), refund=refund,
                                                             reason=failure_text(reason)))


def set_invoice_status(session, purchase: Purchase, status: str) -> None:
    """Set the invoice's status unless it is already cancelled (a conditional write, never a stale one)."""
    values = {"status": status}
    if status == "cancelled":
        values["cancelled_at"] = utcnow()
    session.execute(update(Invoice).where(Invoice.purchase_id == purchase.id, Invoice.status != "cancelled")
                    .values(**values).execution_options(synchronize_session="fetch"))


def revoke_access(state, purchase: Purchase, *, reason: str, actor_id: str | None = None) -> bool:
    """Cancel the purchase and remove the learner's access, once; the learner may buy again later."""
    session, host = state.session, state.host
    if not transition(session, purchase, ("paid",), "cancelled", cancelled_at=utcnow()):
        return False
    session.refresh(purchase)
    user, course = host.get_user(purchase.user_id), host.get_course(purchase.course_id)
    if user is not None and course is not None:
        host.unenroll(user, course)
    invoice = session.scalar(select(Invoice).where(Invoice.purchase_id == purchase.id))
    audit.record(session, "access_revoked", actor_id=actor_id, user_id=purchase.user_id,
                 course_id=purchase.course_id, purchase_id=purchase.id, reason=reason)
    app = current_app._get_current_object()
    after_commit(session, lambda: (
        signals.purchase_cancelled.send(app, purchase=purchase, invoice=invoice, actor_id=actor_id, reason=reason),
        signals.access_revoked.send(app, user_id=purchase.user_id, course_id=purchase.course_id, reason=reason)))
    return True


def failure_text(reason: str | None) -> str:
    """Why a refund failed, in the reader's language: Stripe's failure codes are stored, not sentences."""
    from .i18n import gettext as _

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
