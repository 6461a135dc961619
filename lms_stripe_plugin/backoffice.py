"""The enrollment gate: paid courses are bought, except back-office enrollments, which are free."""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select

from . import audit, signals
from .models import FreeEnrollment, Purchase


@dataclass(frozen=True)
class EnrollmentDecision:
    """The plugin's answer to ``lms.enrollment.requested``."""

    allowed: bool
    reason: str | None = None  # "payment_required", "not_allowed", "free_enrollment", "purchased"
    message: str | None = None
    checkout_url: str | None = None


def has_paid(session, user_id: str, course_id: str) -> bool:
    return session.scalar(
        select(Purchase.id).where(Purchase.user_id == user_id, Purchase.course_id == course_id,
                                  Purchase.status == "paid").limit(1)
    ) is not None


def record_free_enrollment(session, *, user_id: str, course_id: str, actor_id: str) -> FreeEnrollment:
    """Record a back-office enrollment into a paid course, in one transaction: no Stripe call, no invoice."""
    enrollment = FreeEnrollment(user_id=user_id, course_id=course_id, actor_id=actor_id)
    session.add(enrollment)
    audit.record(session, "free_enrollment", actor_id=actor_id, user_id=user_id, course_id=course_id)
    session.commit()
    signals.free_enrollment_recorded.send(current_app._get_current_object(), enrollment=enrollment)
    return enrollment


def free_enrollments(session, *, course_id: str | None = None, limit: int = 200):
    query = select(FreeEnrollment).order_by(FreeEnrollment.created_at.desc(), FreeEnrollment.id.desc())
    if course_id:
        query = query.where(FreeEnrollment.course_id == course_id)
    return session.scalars(query.limit(limit)).all()
