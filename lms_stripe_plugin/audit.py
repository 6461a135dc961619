"""The audit log: every payment action with its actor and time."""
from __future__ import annotations

import json

from .models import AuditEntry


def record(session, action: str, *, actor_id: str | None = None, user_id: str | None = None,
           course_id: str | None = None, purchase_id: int | None = None, **details) -> AuditEntry:
    """Add an audit entry to the caller's transaction (the caller commits)."""
    entry = AuditEntry(
        action=action, actor_id=actor_id, user_id=user_id, course_id=course_id, purchase_id=purchase_id,
        details=json.dumps(details, default=str, sort_keys=True) if details else None,
    )
    session.add(entry)
    return entry
