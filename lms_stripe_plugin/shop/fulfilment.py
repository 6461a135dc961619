"""Fulfilment: one idempotent function that brings a purchase in line with its Checkout Session.

Called from the webhook and from the success page, in any order, any number of times, concurrently.
Doubles are prevented by the database: state changes are conditional UPDATEs (only one caller wins the
transition and enrolls), invoices are unique by Stripe id and by purchase.
"""
from __future__ import annotations

from typing import cast

from sqlalchemy import Table, bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..core.state import PluginState
from .. import signals
from ..accounts import settings as payment_settings
from ..billing.invoices import record_invoice
from ..billing.paying import payment_method_of
from ..core import audit, jobs, schools
from ..core.enums import LIVE_PURCHASE, AuditAction, PurchaseStatus, RefundOrigin, RefundStatus
from ..core.models import Customer, Purchase, Refund, parse_row_id, utcnow
from ..core.txn import send_after_commit, transition
from ..errors import NotFound, PaymentsError
from ..refunds.cancellation import refund_plan, send
from . import deposits


class SessionMismatch(PaymentsError):
    """A Checkout Session claims a purchase, learner or course that does not match our records."""

    status_code = 400


def claimed_purchase_id(checkout_session: dict) -> int:
    metadata = checkout_session.get("metadata") or {}
    raw = metadata.get("lms_purchase_id")
    purchase_id = parse_row_id(raw)
    if purchase_id is None or checkout_session.get("client_reference_id") != f"lms-purchase-{raw}":
        raise SessionMismatch(f"Checkout Session {checkout_session.get('id')} does not name one of our purchases.")
    return purchase_id


def _check_claim(purchase: Purchase | None, cs: dict) -> Purchase:
    metadata = cs.get("metadata") or {}
    if purchase is None:
        raise NotFound(f"No purchase matches Checkout Session {cs.get('id')}.")
    mismatches = [
        name for name, ours, theirs in (
            ("user", purchase.user_id, metadata.get("lms_user_id")),
            ("course", purchase.course_id, metadata.get("lms_course_id")),
            ("currency", purchase.currency.lower(), (cs.get("currency") or "").lower()),
            ("amount", purchase.deposit_amount or purchase.amount, cs.get("amount_subtotal")),
        ) if ours != theirs
    ]
    if purchase.stripe_checkout_session_id not in (None, cs.get("id")):
        mismatches.append("session")
    if mismatches:
        raise SessionMismatch(
            f"Checkout Session {cs.get('id')} does not match purchase {purchase.id} ({', '.join(mismatches)}).")
    return purchase


def sync_checkout_session(state: PluginState, cs: dict) -> Purchase:
    """Apply a Checkout Session, as Stripe returns it (``invoice`` and ``payment_intent`` expanded if possible),
    in the caller's transaction."""
    session = state.session
    purchase = _check_claim(session.get(Purchase, claimed_purchase_id(cs)), cs)
    if purchase.stripe_checkout_session_id is None:
        purchase.stripe_checkout_session_id = cs["id"]  # our commit after Stripe's answer was lost
    _remember_customer(session, purchase, cs)
    status, payment = cs.get("status"), cs.get("payment_status")
    if status == "expired":
        transition(session, purchase, (PurchaseStatus.OPEN,), PurchaseStatus.EXPIRED)
    elif status == "complete" and payment in ("paid", "no_payment_required"):
        _mark_paid(state, purchase, cs)
    elif status == "complete" and _payment_failed(cs):
        _mark_failed(state, purchase, cs)
    elif status == "complete":
        transition(session, purchase, (PurchaseStatus.OPEN,), PurchaseStatus.PROCESSING)
    return purchase


#: What fulfilment needs expanded when it reads a Checkout Session from Stripe.
EXPAND_SESSION = ("invoice", "payment_intent")


def fulfil_from_stripe(state: PluginState, session_id: str) -> Purchase:
    """Read the Checkout Session from Stripe (never trusting a copy) and apply it."""
    settings = payment_settings.load(state.session)
    checkout_session = state.gateway.retrieve_checkout_session(session_id, api_key=settings.secret_key,
                                                               expand=EXPAND_SESSION)
    return sync_checkout_session(state, checkout_session)


def _mark_paid(state: PluginState, purchase: Purchase, cs: dict) -> None:
    session, host = state.session, state.host
    discount = (cs.get("total_details") or {}).get("amount_discount")
    paid = {"paid_at": utcnow(), "amount_paid": cs.get("amount_total"), "amount_discount": discount,
            "stripe_payment_intent_id": _id(cs.get("payment_intent")), "stripe_customer_id": _id(cs.get("customer"))}
    won = transition(session, purchase, (PurchaseStatus.OPEN, PurchaseStatus.PROCESSING), PurchaseStatus.PAID,
                     **paid)
    if not won:
        session.refresh(purchase)
        if purchase.status == PurchaseStatus.EXPIRED:
            won = _paid_after_replacement(state, purchase, cs, paid)
    if won:
        user, course = host.get_user(purchase.user_id), host.get_course(purchase.course_id)
        if user is None or course is None:
            raise NotFound(f"Purchase {purchase.id}: the host no longer knows its user or course.")
        if purchase.deposit_amount is None:
            host.enroll(user, course)
        audit.record(session, AuditAction.PAID, user_id=purchase.user_id, course_id=purchase.course_id,
                     purchase_id=purchase.id, amount=cs.get("amount_total"), currency=purchase.currency,
                     checkout_session=cs.get("id"))
        send_after_commit(session, signals.purchase_completed, purchase=purchase, user_id=purchase.user_id,
                          course_id=purchase.course_id)
    if purchase.deposit_amount is not None and purchase.status == PurchaseStatus.PAID:
        deposits.after_payment(state, purchase, won=won)
        return
    invoice = cs.get("invoice")
    if isinstance(invoice, dict):
        record_invoice(state, invoice, purchase)


def _paid_after_replacement(state: PluginState, purchase: Purchase, cs: dict, paid: dict) -> bool:
    """The learner paid a session we had retired (an old tab). Honour it: retire the newer open purchase;
    if the course is already paid by another purchase, this payment is a duplicate and is refunded."""
    session = state.session
    newer = session.scalar(select(Purchase).where(
        Purchase.user_id == purchase.user_id, Purchase.course_id == purchase.course_id, Purchase.id != purchase.id,
        Purchase.status.in_(LIVE_PURCHASE)).with_for_update())
    if newer is not None and newer.status == PurchaseStatus.OPEN:
        transition(session, newer, (PurchaseStatus.OPEN,), PurchaseStatus.EXPIRED)
    elif newer is not None:
        _refund_duplicate(state, purchase, cs, paid)
        return False
    won = transition(session, purchase, (PurchaseStatus.EXPIRED,), PurchaseStatus.PAID, **paid)
    if won and audit.recorded(session, AuditAction.CHECKOUT_WITHDRAWN, purchase.id):
        # Paid in the moment before Stripe expired it: honoured at the price paid, and shown as such.
        audit.record(session, AuditAction.PAID_AFTER_WITHDRAWAL, user_id=purchase.user_id,
                     course_id=purchase.course_id, purchase_id=purchase.id, amount=cs.get("amount_total"))
    return won


def _refund_duplicate(state: PluginState, purchase: Purchase, cs: dict, paid: dict) -> None:
    """Record the refund of a payment for a course already paid; Stripe is asked once this commits."""
    if not transition(state.session, purchase, (PurchaseStatus.EXPIRED,), PurchaseStatus.CANCELLED,
                      cancelled_at=utcnow(), **paid):
        return
    amount = int(cs.get("amount_total") or purchase.amount)
    refund = Refund(purchase_id=purchase.id, amount=amount, currency=purchase.currency,
                    status=RefundStatus.REQUESTED, full=True, revoke_access=False, origin=RefundOrigin.SYSTEM,
                    reason="duplicate payment", idempotency_key=f"lms-duplicate-{purchase.id}")
    state.session.add(refund)
    state.session.flush()
    audit.record(state.session, AuditAction.DUPLICATE_PAYMENT_REFUNDED, user_id=purchase.user_id,
                 course_id=purchase.course_id, purchase_id=purchase.id, amount=amount)
    jobs.defer(state.session, send, refund_plan(refund, paid["stripe_payment_intent_id"]))


def _payment_failed(cs: dict) -> bool:
    intent = cs.get("payment_intent")
    return isinstance(intent, dict) and intent.get("status") in ("requires_payment_method", "canceled")


def _mark_failed(state: PluginState, purchase: Purchase, cs: dict) -> None:
    intent = cs.get("payment_intent") or {}
    error = (intent.get("last_payment_error") or {}).get("message") or "The payment failed."
    if transition(state.session, purchase, (PurchaseStatus.OPEN, PurchaseStatus.PROCESSING),
                  PurchaseStatus.FAILED, failure_reason=error):
        audit.record(state.session, AuditAction.PAYMENT_FAILED, user_id=purchase.user_id, course_id=purchase.course_id,
                     purchase_id=purchase.id, reason=error)
        send_after_commit(state.session, signals.payment_failed, purchase=purchase, reason=error)


def record_payment_method(state: PluginState, charge: dict) -> None:
    """How a purchase was paid, from its charge (succeeded, or pending for a bank debit), whose metadata Stripe
    copied from the PaymentIntent Checkout made: the purchase it names takes it, unless the purchase is known
    to have been paid by another PaymentIntent. One conditional write: the charge's events come before or
    after the session's, and nothing is read."""
    purchase_id = parse_row_id((charge.get("metadata") or {}).get("lms_purchase_id"))
    intent = _id(charge.get("payment_intent"))
    method = payment_method_of(charge)
    if purchase_id is None or not intent or method is None:
        return
    schools.execute(state.session, Purchase, _SET_PAYMENT_METHOD,
                    {"purchase": purchase_id, "intent": intent, "method": method})


_PURCHASES = cast(Table, Purchase.__table__)
#: `record_payment_method`'s write: a Core statement built once, as every charge event of a purchase runs it.
_SET_PAYMENT_METHOD = update(_PURCHASES).where(
    _PURCHASES.c.id == bindparam("purchase"), schools.its_own(_PURCHASES),
    or_(_PURCHASES.c.stripe_payment_intent_id.is_(None), _PURCHASES.c.stripe_payment_intent_id == bindparam("intent"))
).values(payment_method=bindparam("method"))


def _remember_customer(session, purchase: Purchase, cs: dict) -> None:
    customer = _id(cs.get("customer"))
    if not customer:
        return
    exists = session.scalar(select(Customer.id).where(
        (Customer.stripe_customer_id == customer) |
        ((Customer.user_id == purchase.user_id) & (Customer.livemode == purchase.livemode))))
    if exists:
        return
    try:
        with session.begin_nested():
            session.add(Customer(user_id=purchase.user_id, livemode=purchase.livemode, stripe_customer_id=customer))
    except IntegrityError:
        pass  # stored by a concurrent fulfilment


def _id(value) -> str | None:
    return value.get("id") if isinstance(value, dict) else value
