"""The audit log: every payment action with its actor and time, and the queries that read it back."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import select

from .enums import AuditAction
from .models import AuditEntry


def record(session, action: AuditAction, *, actor_id: str | None = None, user_id: str | None = None,
           course_id: str | None = None, purchase_id: int | None = None, **details) -> AuditEntry:
    """Add an audit entry to the caller's transaction."""
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


def details(entry: AuditEntry) -> dict:
    return json.loads(entry.details) if entry.details else {}


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


def purchase_history(session, purchase_id: int) -> list[AuditEntry]:
    """What happened to one purchase, newest first (the invoice page's history)."""
    return list(session.scalars(select(AuditEntry).where(AuditEntry.purchase_id == purchase_id)
                                .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())))
