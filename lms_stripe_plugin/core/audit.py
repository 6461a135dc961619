"""The audit log: every payment action with its actor and time, and the queries that read it back."""
from __future__ import annotations

import json
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy import select

from .enums import AuditAction
from .models import AuditEntry


#: Where work that no person does runs, recorded with what it does (the audit log says "Stripe", "Scheduled
#: task"… rather than a bare "system").
VIA_STRIPE, VIA_SCHEDULE, VIA_COMMAND, VIA_SETUP = "stripe", "schedule", "command", "setup"
VIA_KEY = "_via"
_via: ContextVar[str | None] = ContextVar("lms_stripe_audit_via", default=None)


@contextmanager
def acting(via: str):
    """Entries recorded inside, without an actor, say they were done by ``via`` (one of the ``VIA_*``)."""
    token = _via.set(via)
    try:
        yield
    finally:
        _via.reset(token)


def record(session, action: AuditAction, *, actor_id: str | None = None, user_id: str | None = None,
           course_id: str | None = None, purchase_id: int | None = None, **details) -> AuditEntry:
    """Add an audit entry to the caller's transaction."""
    if actor_id is None and _via.get() is not None:
        details[VIA_KEY] = _via.get()
    entry = AuditEntry(
        action=AuditAction(action), actor_id=actor_id, user_id=user_id, course_id=course_id,
        purchase_id=purchase_id,
        details=json.dumps(details, default=str, sort_keys=True) if details else None,
    )
    session.add(entry)
    return entry


def recorded(session, action: AuditAction, purchase_id: int) -> bool:
    """Whether this action was recorded for this purchase."""
    return session.scalar(select(AuditEntry.id).where(AuditEntry.action == action,
                                                      AuditEntry.purchase_id == purchase_id).limit(1)) is not None


def recorded_of_refund(session, action: AuditAction, *, user_id: str | None, refund_id: str) -> bool:
    """Whether this action was recorded about a Stripe refund (its ``refund`` detail), among the learner's
    entries (an indexed column)."""
    return session.scalar(select(AuditEntry.id).where(
        AuditEntry.action == action, AuditEntry.user_id == user_id,
        AuditEntry.details.like(f'%"refund": "{refund_id}"%')).limit(1)) is not None


def details(entry: AuditEntry) -> dict:
    """What the entry records (without where it ran: `via`)."""
    found = json.loads(entry.details) if entry.details else {}
    found.pop(VIA_KEY, None)
    return found


def via(entry: AuditEntry) -> str | None:
    """Where the work of an entry without an actor ran (one of the ``VIA_*``), if it was said."""
    return (json.loads(entry.details) if entry.details else {}).get(VIA_KEY)


@dataclass(frozen=True)
class AuditFilter:
    action: AuditAction | None = None
    actor_id: str | None = None
    user_id: str | None = None
    course_id: str | None = None
    date_from: date | None = None
    date_to: date | None = None

    def conditions(self) -> list:
        cond = [column == value for column, value in (
            (AuditEntry.action, self.action), (AuditEntry.actor_id, self.actor_id),
            (AuditEntry.user_id, self.user_id), (AuditEntry.course_id, self.course_id)) if value]
        if self.date_from:
            cond.append(AuditEntry.created_at >= datetime.combine(self.date_from, time.min, timezone.utc))
        if self.date_to:
            cond.append(AuditEntry.created_at < datetime.combine(self.date_to + timedelta(days=1), time.min,
                                                                 timezone.utc))
        return cond


def page(session, flt: AuditFilter, *, before_id: int | None, limit: int) -> tuple[list[AuditEntry], bool]:
    """One page of entries, newest first, older than ``before_id``; and whether more follow."""
    query = select(AuditEntry).where(*flt.conditions())
    if before_id:
        query = query.where(AuditEntry.id < before_id)
    rows = session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit + 1)).all()
    return list(rows[:limit]), len(rows) > limit


def invoice_history(session, *, purchase_id: int | None, invoice_id: int, user_id: str | None) -> list[AuditEntry]:
    """What happened to one invoice, newest first: its purchase's entries, and the entries about it (its
    requests, payments, reminders), found among its learner's (an indexed column) by the invoice's id."""
    about = sa.or_(AuditEntry.details.like(f'%"invoice": {int(invoice_id)},%'),
                   AuditEntry.details.like(f'%"invoice": {int(invoice_id)}}}%'))
    mine = AuditEntry.purchase_id == purchase_id if purchase_id else sa.false()
    if user_id is not None:
        mine = sa.or_(mine, sa.and_(AuditEntry.user_id == user_id, about))
    return list(session.scalars(select(AuditEntry).where(mine)
                                .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())))


def purchase_history(session, purchase_id: int) -> list[AuditEntry]:
    """What happened to one purchase, newest first (the invoice page's history)."""
    return list(session.scalars(select(AuditEntry).where(AuditEntry.purchase_id == purchase_id)
                                .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())))
