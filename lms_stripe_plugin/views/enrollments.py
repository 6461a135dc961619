"""Free back-office enrollments into paid courses, for administrators."""
from __future__ import annotations

from ..shop import enrollment
from ..web.rendering import render
from ._common import course_titles, display_names, require_admin, state


def register(bp) -> None:
    bp.add_url_rule("/admin/free-enrollments", "admin_free_enrollments", free_enrollments)


def free_enrollments():
    require_admin()
    rows = enrollment.free_enrollments(state().session, limit=500)
    names = display_names({r.user_id for r in rows} | {r.actor_id for r in rows})
    titles = course_titles({r.course_id for r in rows})
    return render("lms_stripe/admin/free_enrollments.html",
                  rows=[(row, names[row.user_id], names[row.actor_id], titles[row.course_id]) for row in rows])
