"""Work that must wait for the commit: signals announce only what the database kept."""
from __future__ import annotations

from typing import Callable

from sqlalchemy import event, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

_KEY = "lms_stripe_after_commit"


def _real(session) -> Session:
    return session() if hasattr(session, "registry") else session  # a scoped_session is called


def transition(session, row, from_states, to_state: str, **values) -> bool:
    """Move ``row`` to status ``to_state`` if the database still has it in one of ``from_states``.

    A conditional UPDATE, so of concurrent callers exactly one wins (True) and does what follows the
    transition (enroll, count a refund…); the row in memory is updated without being marked dirty.
    """
    model = type(row)
    result = session.execute(update(model).where(model.id == row.id, model.status.in_(tuple(from_states)))
                             .values(status=to_state, **values).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        return False
    for key, value in {"status": to_state, **values}.items():
        set_committed_value(row, key, value)
    return True


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
