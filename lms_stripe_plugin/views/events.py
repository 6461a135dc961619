"""Stripe's events that could not be handled, for administrators: the failed ones, which they may handle
again, and the rejected ones, with why. Newest first, a keyset page at a time."""
from __future__ import annotations

from datetime import datetime

from flask import current_app, flash, redirect, request, url_for

from ..core.enums import EventStatus
from ..core.i18n import gettext as _
from ..sync import webhooks
from ..sync.shapes import MAX_ID
from ..web.rendering import render
from ._common import require_admin, state


def register(bp) -> None:
    bp.add_url_rule("/admin/events", "admin_events", events)
    bp.add_url_rule("/admin/events/handle", "admin_handle_event", handle_again, methods=["POST"])


def _cursor(args) -> tuple[datetime, str] | None:
    """Where the page starts: after the event received at ``before`` with id ``before_id`` (else the newest)."""
    at, event_id = args.get("before", ""), args.get("before_id", "")
    if not at or not event_id or len(event_id) > MAX_ID:
        return None
    try:
        return datetime.fromisoformat(at[:40]), event_id
    except ValueError:
        return None


def events():
    require_admin()
    rows, more = webhooks.problems(state().session, before=_cursor(request.args),
                                   limit=current_app.config["LMS_STRIPE_PAGE_SIZE"])
    next_url = (url_for("lms_stripe.admin_events", before=rows[-1].received_at.isoformat(), before_id=rows[-1].id)
                if more and rows else None)
    return render("lms_stripe/admin/events.html", events=[(row, webhooks.summary(row)) for row in rows],
                  failed=EventStatus.FAILED, next_url=next_url)


def handle_again():
    """Handle a failed event again, as Stripe's retry or ``flask lms-stripe events replay`` would."""
    require_admin()
    outcome = webhooks.handle_again(state(), (request.form.get("event_id") or "")[:MAX_ID])
    if outcome is None:
        flash(_("This event has not failed, or no longer: nothing was done."), "error")
    elif outcome.status >= 500:
        flash(_("Handling the event failed again; its error is below. Try again later."), "error")
    elif outcome.message == "rejected":
        flash(_("The event cannot be used: it is now rejected, with the reason below."), "error")
    else:
        flash(_("The event is handled."), "success")
    return redirect(url_for("lms_stripe.admin_events"))
