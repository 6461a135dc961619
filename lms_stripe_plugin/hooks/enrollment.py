"""``lms.enrollment.requested``: paid courses are bought; the back office enrolls for free."""
from __future__ import annotations

from flask import url_for

from ..accounts import settings as payment_settings
from ..core import schools
from ..core.i18n import gettext as _
from ..host import audience_allows
from ..shop import enrollment, offers
from ..shop.enrollment import EnrollmentDecision
from ._state import plugin_state


def requested(sender, course, user, actor=None, source="self", confirmed=False, **_kw):
    state = plugin_state(sender)
    if state is None:
        return None
    host, session = state.host, state.session
    if not schools.owns_course(host, course):
        return EnrollmentDecision(allowed=False, reason="other_school",
                                  message=_("This course belongs to another school."))
    course_id = host.course_id(course)
    offer = offers.get_offer(session, course_id)
    if offer is None or offer.price is None or payment_settings.load(session).requests_only:
        return None  # free course, or a school that sells none: no opinion
    user_id = host.user_id(user)
    if source == "backoffice":
        return _backoffice(state, course, course_id, user, actor, confirmed=bool(confirmed))
    if enrollment.has_paid(session, user_id, course_id):
        return EnrollmentDecision(allowed=True, reason="purchased")
    # One message for the situation: never "buy it" about a course this learner cannot buy.
    if not offer.on_sale:
        return EnrollmentDecision(allowed=False, reason="not_on_sale", message=_("This course is not on sale."))
    if not (audience_allows(offer.audience, host.user_audience(user)) and host.can_purchase(user, course)):
        return EnrollmentDecision(allowed=False, reason="not_for_you",
                                  message=_("This course is not available for purchase with your account."))
    return EnrollmentDecision(
        allowed=False, reason="payment_required",
        message=_("This course is paid: buy it to enroll."),
        checkout_url=url_for("lms_stripe.course_payment", course_id=course_id),
    )


def _backoffice(state, course, course_id, user, actor, *, confirmed: bool):
    """A back-office enrollment is free. Of someone else, by whoever `Host.can_enroll_others` allows; of
    oneself, only by a payments administrator (who could give the course away anyway): a manager does not
    take a paid course for free by enrolling himself. Someone already enrolled is not enrolled twice; someone
    who paid is enrolled as a buyer (no free enrollment recorded); someone whose payment is still being
    processed (a SEPA debit takes days) is enrolled only when the host confirms (``confirmed=True``), since
    the payment will still go through."""
    host = state.host
    user_id = host.user_id(user)
    if actor is None or not host.can_enroll_others(actor, course):
        return EnrollmentDecision(allowed=False, reason="not_allowed",
                                  message=_("You may not enroll other people in this course."))
    if host.user_id(actor) == user_id and not host.can_manage_payments(actor):
        return EnrollmentDecision(allowed=False, reason="not_allowed",
                                  message=_("You may not enroll yourself for free in a paid course: buy it, or ask "
                                            "a payments administrator."))
    if host.is_enrolled(user, course):
        return EnrollmentDecision(allowed=False, reason="already_enrolled",
                                  message=_("Already enrolled in this course: nothing was changed."))
    if enrollment.has_paid(state.session, user_id, course_id):
        return EnrollmentDecision(allowed=True, reason="purchased")
    if enrollment.payment_processing(state.session, user_id, course_id) and not confirmed:
        return EnrollmentDecision(
            allowed=False, reason="payment_processing",
            message=_("A payment for this course is still being processed (a bank debit takes a few days) and "
                      "will be charged even if you enroll this person for free. Confirm to enroll them anyway."))
    enrollment.record_free_enrollment(state.session, user_id=user_id, course_id=course_id,
                                      actor_id=host.user_id(actor))
    return EnrollmentDecision(allowed=True, reason="free_enrollment")
