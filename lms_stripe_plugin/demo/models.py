"""The demo LMS's own tables: users, courses, enrollments."""
from __future__ import annotations

from datetime import date

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

db = SQLAlchemy()


class User(db.Model):
    __tablename__ = "demo_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(db.String(64), unique=True)
    name: Mapped[str] = mapped_column(db.String(128))
    email: Mapped[str] = mapped_column(db.String(255))
    role: Mapped[str] = mapped_column(db.String(16), default="learner")  # admin | manager | learner
    audience: Mapped[str] = mapped_column(db.String(16), default="public")  # internal | partner | public
    phone: Mapped[str | None] = mapped_column(db.String(32))  # a mobile number, for payment requests by SMS
    #: The school the user belongs to, when the demo runs as a platform of several (`host.SCHOOLS`).
    school: Mapped[str] = mapped_column(db.String(32), default="lumiere", server_default="lumiere")


class Course(db.Model):
    __tablename__ = "demo_courses"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(db.String(255))
    description: Mapped[str] = mapped_column(db.Text, default="")
    starts_on: Mapped[date | None] = mapped_column(db.Date)  # a balance may be due N days before it
    school: Mapped[str] = mapped_column(db.String(32), default="lumiere", server_default="lumiere")  # as a user's


class Enrollment(db.Model):
    __tablename__ = "demo_enrollments"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(db.ForeignKey("demo_users.id"))
    course_id: Mapped[int] = mapped_column(db.ForeignKey("demo_courses.id"))

    __table_args__ = (db.UniqueConstraint("user_id", "course_id"),)
