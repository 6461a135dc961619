"""Work that must wait for the commit: signals announce only what the database kept."""
from __future__ import annotations

from typing import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

_KEY = "lms_stripe_after_commit"


def _real(session) -> Session:
    return session() if hasattr(session, "registry") else session  # a scoped_session is called


def after_commit(session, callback: Callable[[], None]) -> None:
    """Run ``callback`` after the session's current transaction commits; drop it if it rolls back."""
    _real(session).info.setdefault(_KEY, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_callbacks(session: Session) -> None:
    for callback in session.info.pop(_KEY, []):
        callback()


@event.listens_for(Session, "after_rollback")
def _drop_callbacks(session: Session) -> None:
    session.info.pop(_KEY, None)
