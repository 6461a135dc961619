"""Finding the demo's users without loading them all: an LMS has thousands, a page shows a few."""
from __future__ import annotations

from sqlalchemy import or_

from .models import Course, Enrollment, User, db
from .seed import NORD_USERNAMES, ROLE_USERNAMES

#: Members the back office lists at once; a search finds the others.
SHOWN = 50
#: Enrollments the back office lists, the latest first.
LATEST_ENROLLMENTS = 50


def role_accounts() -> list[User]:
    """The seeded account of each role and audience, which the user switcher offers (as a platform, the second
    school's too)."""
    return (db.session.query(User).filter(User.username.in_(ROLE_USERNAMES + NORD_USERNAMES)).order_by(User.id)
            .all())


def search(text: str, limit: int = SHOWN) -> list[User]:
    """Up to ``limit`` users, by name, whose name, email or username contains ``text`` (any user if empty)."""
    query = db.session.query(User)
    if text:
        pattern = "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.filter(or_(*(db.func.lower(column).like(pattern, escape="\\")
                                   for column in (User.name, User.email, User.username))))
    return query.order_by(User.name, User.id).limit(limit).all()


def by_ids(ids: list[int]) -> list[User]:
    """The users with these ids that exist, by name (one query)."""
    if not ids:
        return []
    return db.session.query(User).filter(User.id.in_(ids)).order_by(User.name, User.id).all()


def latest_enrollments(limit: int = LATEST_ENROLLMENTS) -> list:
    """The latest ``limit`` enrollments, as (enrollment, user, course) rows."""
    return (db.session.query(Enrollment, User, Course).join(User).join(Course)
            .order_by(Enrollment.id.desc()).limit(limit).all())
