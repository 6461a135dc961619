"""The enrollment gate: paid courses are bought, except back-office enrollments, which are free."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from .. import signals
from ..core import audit
from ..core.enums import AuditAction, PurchaseStatus
from ..core.models import FreeEnrollment, Purchase
from ..core.txn import send_after_commit
from . import deposits


@dataclass(frozen=True)
class EnrollmentDecision:
    """The plugin's answer to ``lms.enrollment.requested``."""

    allowed: bool
    reason: str | None = None  # "payment_required", "not_allowed", "free_enrollment", "purchased"
    message: str | None = None
    checkout_url: str | None = None


def has_paid(session, user_id: str, course_id: str) -> bool:
    """Whether the learner's purchase gives the course: paid in full, or a deposit whose access rule opens it
    (and whose access is not suspended for an overdue balance)."""
    purchase = session.scalar(
        select(Purchase).where(Purchase.user_id == user_id, Purchase.course_id == course_id,
                               Purchase.status == PurchaseStatus.PAID).limit(1))
    return purchase is not None and deposits.grants_access(session, purchase)


def payment_processing(session, user_id: str, course_id: str) -> bool:
    """Whether the learner's payment for the course is under way at their bank (a SEPA debit, say)."""
    return session.scalar(
        select(Purchase.id).where(Purchase.user_id == user_id, Purchase.course_id == course_id,
                                  Purchase.status == PurchaseStatus.PROCESSING).limit(1)
    ) is not None


def record_free_enrollment(session, *, user_id: str, course_id: str, actor_id: str) -> FreeEnrollment:
    """Record a back-office enrollment into a paid course in the host's transaction (no Stripe call, no
    invoice): the host's commit saves it with the enrollment itself, and a refused one leaves nothing."""
    enrollment = FreeEnrollment(user_id=user_id, course_id=course_id, actor_id=actor_id)
    session.add(enrollment)
    audit.record(session, AuditAction.FREE_ENROLLMENT, actor_id=actor_id, user_id=user_id, course_id=course_id)
    send_after_commit(session, signals.free_enrollment_recorded, enrollment=enrollment)
    return enrollment


def free_enrollments(session, *, course_id: str | None = None, limit: int = 200):
    query = select(FreeEnrollment).order_by(FreeEnrollment.created_at.desc(), FreeEnrollment.id.desc())
    if course_id:
        query = query.where(FreeEnrollment.course_id == course_id)
    return session.scalars(query.limit(limit)).all()
