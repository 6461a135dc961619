"""Disputes (chargebacks): recorded, shown to administrators, and access revoked when configured."""
from __future__ import annotations

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..core.state import PluginState
from ..core import audit
from ..core.enums import AccessReason, AuditAction
from ..core.models import Dispute, Purchase
from .access import revoke_access
from .lifecycle import check_fits, purchase_for_payment_intent

#: Stripe's dispute statuses after which a dispute does not reopen: an older snapshot, still open, that
#: arrives after one of these leaves the dispute as it is.
CLOSED = ("won", "lost", "warning_closed", "prevented")


def disputes_of(session, purchase_id: int) -> list[Dispute]:
    return list(session.scalars(select(Dispute).where(Dispute.purchase_id == purchase_id).order_by(Dispute.id)))


def sync_dispute(state: PluginState, stripe_dispute: dict, *, purchase: Purchase | None = None) -> Dispute | None:
    """Record or update a dispute of ``purchase`` (by default the purchase its PaymentIntent paid); a new
    one revokes access if LMS_STRIPE_REVOKE_ON_DISPUTE (default). None when the payment is not ours."""
    session = state.session
    purchase = purchase or purchase_for_payment_intent(session, stripe_dispute.get("payment_intent"))
    if purchase is None:
        return None
    check_fits(purchase, "Dispute", stripe_dispute["id"], int(stripe_dispute["amount"]), stripe_dispute["currency"])
    dispute = session.scalar(select(Dispute).where(Dispute.stripe_dispute_id == stripe_dispute["id"]))
    created = dispute is None
    if created:
        dispute = Dispute(stripe_dispute_id=stripe_dispute["id"], purchase_id=purchase.id,
                          amount=int(stripe_dispute["amount"]), currency=stripe_dispute["currency"].upper(),
                          status=stripe_dispute["status"], reason=stripe_dispute.get("reason"))
        try:
            with session.begin_nested():
                session.add(dispute)
        except IntegrityError:  # recorded meanwhile by a concurrent event: update that one
            dispute = session.scalar(select(Dispute).where(Dispute.stripe_dispute_id == stripe_dispute["id"]))
            created = False
    if not created and not (dispute.status in CLOSED and stripe_dispute["status"] not in CLOSED):
        dispute.status = stripe_dispute["status"]
    _flag(session, purchase, dispute, created)
    if created and current_app.config["LMS_STRIPE_REVOKE_ON_DISPUTE"]:
        revoke_access(state, purchase, reason=AccessReason.DISPUTE)
    return dispute


def _flag(session, purchase: Purchase, dispute: Dispute, created: bool) -> None:
    purchase.disputed = True
    purchase.dispute_status = dispute.status
    audit.record(session, AuditAction.DISPUTE_OPENED if created else AuditAction.DISPUTE_UPDATED, user_id=purchase.user_id,
                 course_id=purchase.course_id, purchase_id=purchase.id, dispute=dispute.stripe_dispute_id,
                 status=dispute.status, amount=dispute.amount)
