"""A minimal host LMS written for the tests (not the demo): its own tables, its own idea of users.

The current user comes from the ``X-User`` header, so tests can act as anyone without a login page.
"""
from __future__ import annotations

from flask import Flask, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

from lms_stripe_plugin import StripePayments

db = SQLAlchemy()


class Person(db.Model):
    __tablename__ = "host_people"

    id: Mapped[str] = mapped_column(db.String(32), primary_key=True)
    email: Mapped[str] = mapped_column(db.String(255))
    name: Mapped[str] = mapped_column(db.String(255))
    audience: Mapped[str] = mapped_column(db.String(16), default="public")
    role: Mapped[str] = mapped_column(db.String(16), default="learner")  # learner | manager | admin
    blocked: Mapped[bool] = mapped_column(default=False)  # host perimeter: may not buy anything


class Lesson(db.Model):
    __tablename__ = "host_lessons"

    id: Mapped[str] = mapped_column(db.String(32), primary_key=True)
    title: Mapped[str] = mapped_column(db.String(255))


class Seat(db.Model):
    __tablename__ = "host_seats"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[str] = mapped_column(db.String(32))
    lesson_id: Mapped[str] = mapped_column(db.String(32))

    __table_args__ = (db.UniqueConstraint("person_id", "lesson_id"),)


class MinimalHost:
    """Implements every method of `lms_stripe_plugin.Host`, and records calls to enroll/unenroll."""

    def __init__(self):
        self.locale = "en"
        self.calls: list[tuple[str, str, str]] = []
        #: Platform mode's schools: person or lesson id → school id (a request's school is its user's, or the
        #: ``X-School`` header's); empty: one school.
        self.schools: dict[str, str] = {}

    def current_user(self):
        user_id = request.headers.get("X-User") if request else None
        return db.session.get(Person, user_id) if user_id else None

    def get_user(self, user_id):
        return db.session.get(Person, user_id)

    def get_course(self, course_id):
        return db.session.get(Lesson, course_id)

    def user_id(self, user):
        return user.id

    def course_id(self, course):
        return course.id

    def course_title(self, course):
        return course.title

    def course_url(self, course):
        return f"/lessons/{course.id}"

    def user_email(self, user):
        return user.email

    def user_display_name(self, user):
        return user.name

    def user_audience(self, user):
        return user.audience

    def can_purchase(self, user, course):
        return not user.blocked

    def can_manage_payments(self, user):
        return user.role == "admin"

    def can_enroll_others(self, user, course):
        return user.role in ("admin", "manager")

    def is_enrolled(self, user, course):
        return db.session.query(Seat.id).filter_by(person_id=user.id, lesson_id=course.id).first() is not None

    def enroll(self, user, course):
        self.calls.append(("enroll", user.id, course.id))
        if not self.is_enrolled(user, course):
            db.session.add(Seat(person_id=user.id, lesson_id=course.id))

    def unenroll(self, user, course):
        self.calls.append(("unenroll", user.id, course.id))
        db.session.query(Seat).filter_by(person_id=user.id, lesson_id=course.id).delete()

    def get_locale(self):
        return self.locale

    def current_school(self):
        if not self.schools:
            return None
        user_id = request.headers.get("X-User")
        return request.headers.get("X-School") or (self.schools.get(user_id) if user_id else None)

    def course_school(self, course):
        return self.schools.get(course.id)

    def user_in_school(self, user, school):
        return not self.schools or self.schools.get(user.id) == school


#: Every app :func:`create_host_app` made and whose engines were not closed yet (see :func:`close_apps`).
_open_apps: list[Flask] = []


def create_host_app(config: dict) -> tuple[Flask, MinimalHost]:
    app = Flask("minimal_host")
    app.config.update(SECRET_KEY="test-secret", SERVER_NAME="lms.test", **config)
    db.init_app(app)
    host = MinimalHost()
    StripePayments(app, db=db, host=host)
    _open_apps.append(app)
    return app, host


def close_apps() -> None:
    """Close the database connections of every app made since the last call: a test's app would otherwise keep
    its pool open until the garbage collector finds it, and PostgreSQL refuses clients past its limit."""
    while _open_apps:
        app = _open_apps.pop()
        with app.app_context():
            db.session.remove()
            for engine in db.engines.values():
                engine.dispose()
