"""Disputes (chargebacks): recorded, shown to administrators, and access revoked when configured."""
from __future__ import annotations

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from . import audit
from .models import Dispute, Purchase
from .refunds import purchase_for_payment, revoke_access


def sync_dispute(state, stripe_dispute: dict) -> Dispute | None:
    """Record or update a dispute; a new one revokes access if LMS_STRIPE_REVOKE_ON_DISPUTE (default)."""
    session = state.session
    purchase = purchase_for_payment(state, stripe_dispute.get("payment_intent"))
    if purchase is None:
        return None
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
    if not created:
        dispute.status = stripe_dispute["status"]
    _flag(session, purchase, dispute, created)
    if created and current_app.config["LMS_STRIPE_REVOKE_ON_DISPUTE"]:
        revoke_access(state, purchase, reason="dispute")
    return dispute


def _flag(session, purchase: Purchase, dispute: Dispute, created: bool) -> None:
    purchase.disputed = True
    purchase.dispute_status = dispute.status
    audit.record(session, "dispute_opened" if created else "dispute_updated", user_id=purchase.user_id,
                 course_id=purchase.course_id, purchase_id=purchase.id, dispute=dispute.stripe_dispute_id,
                 status=dispute.status, amount=dispute.amount)
