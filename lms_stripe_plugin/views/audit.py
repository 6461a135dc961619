"""The audit log, for administrators."""
from __future__ import annotations

from datetime import date
from typing import Any

from flask import current_app, request, url_for

from ..core import audit
from ..core.enums import AuditAction
from ..web import audit_text
from ..web.rendering import render
from ._common import require_admin, state

MAX_ID = 2**31 - 1
AUDIT_FILTERS = ("action", "actor", "learner", "course", "from", "to")


def register(bp) -> None:
    bp.add_url_rule("/admin/audit", "admin_audit", audit_log)


def _filter(args) -> audit.AuditFilter:
    action = args.get("action") or None
    return audit.AuditFilter(
        action=AuditAction(action) if action in AuditAction.values() else None,
        actor_id=(args.get("actor") or "").strip()[:64] or None,
        user_id=(args.get("learner") or "").strip()[:64] or None,
        course_id=(args.get("course") or "").strip()[:64] or None,
        date_from=_day(args.get("from")), date_to=_day(args.get("to")))


def _day(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def audit_log():
    require_admin()
    args = request.args
    after = args.get("after", type=int)
    rows, more = audit.page(state().session, _filter(args), before_id=after if after and 0 < after <= MAX_ID else None,
                            limit=current_app.config["LMS_STRIPE_PAGE_SIZE"])
    keep: dict[str, Any] = {k: v for k, v in args.items() if k in AUDIT_FILTERS}
    st = state()
    return render("lms_stripe/admin/audit.html", lines=audit_text.lines(st.session, st.host, rows),
                  time_zone=audit_text.time_zone(), actions=list(AuditAction), args=keep,
                  next_url=url_for("lms_stripe.admin_audit", after=rows[-1].id, **keep) if more and rows else None)
