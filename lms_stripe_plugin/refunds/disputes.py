"""Disputes (chargebacks): recorded, shown to administrators, and access revoked when configured."""
from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from ..billing import balances, paying
from ..core.state import PluginState
from ..core import audit
from ..core.enums import AccessReason, AuditAction
from ..core.models import Dispute, PaymentAttempt, PaymentRequest, Purchase
from .access import revoke_access
from .lifecycle import ExceedsPayment, OtherCurrency, check_fits, purchase_for_payment_intent

#: Stripe's dispute statuses after which a dispute does not reopen: an older snapshot, still open, that
#: arrives after one of these leaves the dispute as it is.
CLOSED = ("won", "lost", "warning_closed", "prevented")
#: How far along its life each status is (the Dispute object's ``status``): an inquiry waits for an answer,
#: is reviewed, and may turn into a chargeback, which waits for evidence, is reviewed, then decided. A
#: snapshot that is not further along than the dispute is (two events of the same second, delivered in
#: reverse order) leaves its status as it is; a status not listed here is taken as it comes.
_STAGE = {"warning_needs_response": 0, "warning_under_review": 1, "needs_response": 2, "under_review": 3,
          **{status: 4 for status in CLOSED}}


def sync_dispute(state: PluginState, stripe_dispute: dict, *, purchase: Purchase | None = None) -> Dispute | None:
    """Record or update a dispute of ``purchase`` (by default the purchase its PaymentIntent paid); a new
    one revokes access if LMS_STRIPE_REVOKE_ON_DISPUTE (default). A dispute of a Pay click's payment (a payment
    request's, a payment link's) or of a top-up's is recorded too (`_pay_click_dispute`). None when the payment
    is not ours."""
    session = state.session
    purchase = purchase or purchase_for_payment_intent(session, stripe_dispute.get("payment_intent"))
    if purchase is None or balances.deposit_on_balance(session, purchase.id):
        # No purchase's; or a deposit's that went on the balance, which its course no longer counts as paid
        return _pay_click_dispute(state, stripe_dispute)
    check_fits(purchase, "Dispute", stripe_dispute["id"], int(stripe_dispute["amount"]), stripe_dispute["currency"])
    dispute, created = _recorded(session, stripe_dispute, purchase_id=purchase.id)
    _flag(session, purchase, dispute, created)
    if created and current_app.config["LMS_STRIPE_REVOKE_ON_DISPUTE"]:
        revoke_access(state, purchase, reason=AccessReason.DISPUTE)
    return dispute


def _recorded(session, stripe_dispute: dict, **payment) -> tuple[Dispute, bool]:
    """The dispute's row, written now (True) unless it was already, its status brought forward; ``payment``:
    the purchase, Pay click or top-up it names."""
    dispute = session.scalar(select(Dispute).where(Dispute.stripe_dispute_id == stripe_dispute["id"]))
    created = dispute is None
    if created:
        dispute = Dispute(stripe_dispute_id=stripe_dispute["id"], amount=int(stripe_dispute["amount"]),
                          currency=stripe_dispute["currency"].upper(), status=stripe_dispute["status"],
                          reason=stripe_dispute.get("reason"), **payment)
        try:
            with session.begin_nested():
                session.add(dispute)
        except IntegrityError:  # recorded meanwhile by a concurrent event: update that one
            dispute = session.scalar(select(Dispute).where(Dispute.stripe_dispute_id == stripe_dispute["id"]))
            created = False
    if not created and _further(stripe_dispute["status"], dispute.status):
        dispute.status = stripe_dispute["status"]
    return dispute, created


def _pay_click_dispute(state: PluginState, stripe_dispute: dict) -> Dispute | None:
    """A dispute of the payment of a payment request or link (its Pay click's PaymentIntent): recorded, and
    written in the audit log with the invoices it paid, which show it on their page. It revokes nothing: what
    was paid is an invoice, not a course. Or of a top-up's payment (from My payments): recorded and written in
    the audit log, for the school to decide about the credit still on the balance. None when the payment is
    neither."""
    session = state.session
    payment_intent = stripe_dispute.get("payment_intent")
    attempt = paying.pay_click_of(session, payment_intent)
    topup = balances.topup_of(session, payment_intent) if attempt is None else None
    paid = attempt or topup
    if paid is None:
        return None
    amount, currency = int(stripe_dispute["amount"]), str(stripe_dispute["currency"]).upper()
    what = f"Pay click {attempt.id}" if attempt is not None else f"top-up {paid.id}"
    if currency != paid.currency.upper():
        raise OtherCurrency(f"Dispute {stripe_dispute['id']} is in {currency}; {what} was paid in {paid.currency}.")
    if amount > paid.amount:
        raise ExceedsPayment(f"Dispute {stripe_dispute['id']} is of {amount} (minor units); {what} paid "
                             f"{paid.amount}.")
    before = session.scalar(select(Dispute.status).where(Dispute.stripe_dispute_id == stripe_dispute["id"]))
    dispute, created = _recorded(session, stripe_dispute, attempt_id=attempt.id if attempt else None,
                                 topup_id=topup.id if topup else None)
    if not created and dispute.status == before:
        return dispute
    action = AuditAction.DISPUTE_OPENED if created else AuditAction.DISPUTE_UPDATED
    said: dict[str, Any] = dict(dispute=dispute.stripe_dispute_id, status=dispute.status, amount=dispute.amount,
                                currency=dispute.currency)
    if topup is not None:
        audit.record(session, action, user_id=topup.user_id, topup=topup.id, **said)
        return dispute
    assert attempt is not None
    user_id = attempt.request.user_id if attempt.request is not None else attempt.payer_user_id
    invoice_ids: list[int | None] = list(paying.invoices_paid_by(attempt)) or [None]
    for invoice_id in invoice_ids:  # an entry in each invoice's history
        audit.record(session, action, user_id=user_id, request=attempt.request_id, link=attempt.link_id,
                     invoice=invoice_id, **said)
    return dispute


def of_invoice(session, invoice_id: int, purchase_id: int | None) -> list[Dispute]:
    """The disputes of an invoice's payments: its purchase's, and those of the Pay clicks that paid it."""
    clicks = select(PaymentAttempt.id).join(PaymentRequest, PaymentRequest.id == PaymentAttempt.request_id).where(
        PaymentRequest.covering(invoice_id))
    linked = select(PaymentAttempt.id).where(PaymentAttempt.invoice_id == invoice_id)
    mine = or_(Dispute.attempt_id.in_(clicks), Dispute.attempt_id.in_(linked))
    if purchase_id is not None:
        mine = or_(mine, Dispute.purchase_id == purchase_id)
    return list(session.scalars(select(Dispute).where(mine).order_by(Dispute.id)))


def _further(status: str, than: str) -> bool:
    """Whether a snapshot's ``status`` may replace the recorded one: not a step back in the dispute's life."""
    return _STAGE.get(status, len(_STAGE)) >= _STAGE.get(than, 0)


def _flag(session, purchase: Purchase, dispute: Dispute, created: bool) -> None:
    purchase.disputed = True
    purchase.dispute_status = dispute.status
    audit.record(session, AuditAction.DISPUTE_OPENED if created else AuditAction.DISPUTE_UPDATED, user_id=purchase.user_id,
                 course_id=purchase.course_id, purchase_id=purchase.id, dispute=dispute.stripe_dispute_id,
                 status=dispute.status, amount=dispute.amount)
