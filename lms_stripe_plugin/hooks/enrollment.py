"""``lms.enrollment.requested``: paid courses are bought; the back office enrolls for free."""
from __future__ import annotations

from flask import url_for

from ..core.i18n import gettext as _
from ..shop import enrollment, offers
from ..shop.enrollment import EnrollmentDecision
from ._state import plugin_state


def requested(sender, course, user, actor=None, source="self", **_kw):
    state = plugin_state(sender)
    if state is None:
        return None
    host, session = state.host, state.session
    course_id = host.course_id(course)
    offer = offers.get_offer(session, course_id)
    if offer is None or offer.price is None:
        return None  # free course: no opinion
    user_id = host.user_id(user)
    if source == "backoffice":
        return _backoffice(state, course, course_id, user_id, actor)
    if enrollment.has_paid(session, user_id, course_id):
        return EnrollmentDecision(allowed=True, reason="purchased")
    return EnrollmentDecision(
        allowed=False, reason="payment_required",
        message=_("This course is paid: buy it to enroll."),
        checkout_url=url_for("lms_stripe.course_payment", course_id=course_id),
    )


def _backoffice(state, course, course_id, user_id, actor):
    host = state.host
    if actor is None or not host.can_enroll_others(actor, course):
        return EnrollmentDecision(allowed=False, reason="not_allowed",
                                  message=_("You may not enroll other people in this course."))
    enrollment.record_free_enrollment(state.session, user_id=user_id, course_id=course_id,
                                      actor_id=host.user_id(actor))
    return EnrollmentDecision(allowed=True, reason="free_enrollment")
