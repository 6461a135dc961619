"""The demo's implementation of `lms_stripe_plugin.Host`."""
from __future__ import annotations

from datetime import date

from flask import current_app, g, has_request_context, request, session as web_session, url_for

from .inputs import parse_id
from .models import Course, Enrollment, User, db


#: The schools of the demo run as a platform (``python -m lms_stripe_plugin.demo --platform``): id → name.
SCHOOLS = {"lumiere": "École Lumière", "nord": "Atelier Nord"}
DEFAULT_SCHOOL = "lumiere"


def platform() -> bool:
    return bool(current_app.config.get("LMS_STRIPE_PLATFORM"))


class DemoHost:
    def current_user(self):
        """The signed-in user, loaded once per request (as Flask-Login does)."""
        user_id = web_session.get("user_id")
        cached = g.get("demo_user")
        if cached is not None and cached[0] == user_id:
            return cached[1]
        user = db.session.get(User, user_id) if user_id else None
        g.demo_user = (user_id, user)
        return user

    def get_user(self, user_id: str):
        """The user whose id is ``user_id`` written plainly ("42"); None for "042" or "٤٢", as for no such id."""
        number = parse_id(user_id)
        return db.session.get(User, number) if number is not None else None

    def get_course(self, course_id: str):
        """The course whose id is ``course_id`` written plainly; the plugin keys its offers by this string."""
        number = parse_id(course_id)
        return db.session.get(Course, number) if number is not None else None

    def user_id(self, user) -> str:
        return str(user.id)

    def course_id(self, course) -> str:
        return str(course.id)

    def course_title(self, course) -> str:
        return course.title

    def course_url(self, course) -> str:
        return url_for("demo.course", course_id=course.id)

    def user_email(self, user) -> str:
        return user.email

    def user_display_name(self, user) -> str:
        return user.name

    def user_phone(self, user) -> str | None:
        return user.phone

    def sign_in_url(self, next_url: str) -> str:
        """The demo's sign-in page (choose an account), which brings the visitor back to ``next_url``."""
        return url_for("demo.sign_in", next=next_url)

    def course_start(self, course) -> date | None:
        """The optional `Host.course_start`: the day the course starts, if it has one."""
        return course.starts_on

    def user_audience(self, user) -> str:
        return user.audience

    def can_purchase(self, user, course) -> bool:
        return user.role == "learner" or user.role == "admin"

    def can_manage_payments(self, user) -> bool:
        return user.role == "admin"

    def can_enroll_others(self, user, course) -> bool:
        return user.role in ("admin", "manager")

    def is_enrolled(self, user, course) -> bool:
        return db.session.query(Enrollment.id).filter_by(user_id=user.id, course_id=course.id).first() is not None

    def enroll(self, user, course) -> None:
        if not self.is_enrolled(user, course):
            db.session.add(Enrollment(user_id=user.id, course_id=course.id))

    def unenroll(self, user, course) -> None:
        db.session.query(Enrollment).filter_by(user_id=user.id, course_id=course.id).delete()

    def current_school(self) -> str | None:
        """The optional `Host.current_school`, as a platform: the signed-in user's school, else the one the
        visitor chose on the catalog; None (one school) when the demo is not a platform."""
        if not platform() or not has_request_context():
            return None
        user = self.current_user()
        if user is not None:
            return user.school
        chosen = web_session.get("school")
        return chosen if chosen in SCHOOLS else DEFAULT_SCHOOL

    def course_school(self, course) -> str | None:
        return course.school if platform() else None

    def user_in_school(self, user, school: str) -> bool:
        return user.school == school

    def get_locale(self) -> str:
        if not has_request_context():
            return "en"
        chosen = web_session.get("lang")
        return chosen or request.accept_languages.best_match(["fr", "en"]) or "en"
