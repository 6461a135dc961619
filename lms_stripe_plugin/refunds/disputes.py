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
#: How far along its life each status is (the Dispute object's ``status``): an inquiry waits for an answer,
#: is reviewed, and may turn into a chargeback, which waits for evidence, is reviewed, then decided. A
#: snapshot that is not further along than the dispute is (two events of the same second, delivered in
#: reverse order) leaves its status as it is; a status not listed here is taken as it comes.
_STAGE = {"warning_needs_response": 0, "warning_under_review": 1, "needs_response": 2, "under_review": 3,
          **{status: 4 for status in CLOSED}}


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
    if not created and _further(stripe_dispute["status"], dispute.status):
        dispute.status = stripe_dispute["status"]
    _flag(session, purchase, dispute, created)
    if created and current_app.config["LMS_STRIPE_REVOKE_ON_DISPUTE"]:
        revoke_access(state, purchase, reason=AccessReason.DISPUTE)
    return dispute


def _further(status: str, than: str) -> bool:
    """Whether a snapshot's ``status`` may replace the recorded one: not a step back in the dispute's life."""
    return _STAGE.get(status, len(_STAGE)) >= _STAGE.get(than, 0)


def _flag(session, purchase: Purchase, dispute: Dispute, created: bool) -> None:
    purchase.disputed = True
    purchase.dispute_status = dispute.status
    audit.record(session, AuditAction.DISPUTE_OPENED if created else AuditAction.DISPUTE_UPDATED, user_id=purchase.user_id,
                 course_id=purchase.course_id, purchase_id=purchase.id, dispute=dispute.stripe_dispute_id,
                 status=dispute.status, amount=dispute.amount)
