"""Transactions: conditional state transitions, and work that must wait for the commit.

Services never commit or roll back: the edge that started the work (a view, a webhook delivery, a CLI
command, the host's own request for its signals) owns the transaction. What must happen only once the
database kept the work (the plugin's signals, follow-up calls to Stripe) is registered with `after_commit`
on the session the work runs in, and dropped if that transaction rolls back.
"""
from __future__ import annotations

from typing import Any, Callable

from blinker import NamedSignal
from sqlalchemy import event, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from .logs import get_logger
from .state import this_app

log = get_logger(__name__)

_KEY = "lms_stripe_after_commit"


def real_session(session: Any) -> Session:
    """The `Session` behind a Flask-SQLAlchemy ``scoped_session`` (or the session itself)."""
    return session() if hasattr(session, "registry") else session


def transition(session, row, from_states, to_state, **values) -> bool:
    """Move ``row`` to status ``to_state`` if the database still has it in one of ``from_states``.

    A conditional UPDATE, so of concurrent callers exactly one wins (True) and does what follows the
    transition (enroll, count a refund…); the row in memory is updated without being marked dirty.
    """
    return transition_if(session, row, from_states, to_state, (), **values)


def transition_if(session, row, from_states, to_state, where: tuple, /, **values) -> bool:
    """`transition`, only if ``where`` (more conditions on the row) holds too."""
    model = type(row)
    result = session.execute(update(model).where(model.id == row.id, model.status.in_(tuple(from_states)), *where)
                             .values(status=to_state, **values).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        return False
    for key, value in {"status": to_state, **values}.items():
        set_committed_value(row, key, value)
    return True


def send_after_commit(session, signal: NamedSignal, **kwargs: Any) -> None:
    """Send one of the plugin's signals, with the app as sender, once the transaction has committed."""
    app = this_app()

    def send() -> None:
        signal.send(app, **kwargs)

    after_commit(session, send)


def after_commit(session, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the session's current transaction has committed; drop it if it rolls back.

    Callbacks run when the committed transaction has ended, so they may use the session again (a signal
    receiver that queries, a follow-up unit of work that commits). Listeners are installed on this one
    session, the first time the plugin needs them, never on the `Session` class: the host's other
    sessions are left alone.
    """
    target = real_session(session)
    pending = target.info.get(_KEY)
    if pending is None:
        pending = target.info[_KEY] = _Pending()
        event.listen(target, "after_commit", _committed)
        event.listen(target, "after_rollback", _rolled_back)
        event.listen(target, "after_transaction_end", _ended)
    pending.callbacks.append(callback)


class _Pending:
    """The session's callbacks: those of the transaction under way, and those of committed transactions
    still to run. A callback that commits work of its own (a follow-up job) adds its callbacks to the ones
    to run, which the first loop runs in turn: callbacks never run inside one another's commits, and a
    follow-up that rolls back drops only its own."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[], None]] = []
        self.ready: list[Callable[[], None]] = []
        self.committed = False
        self.running = False


def _committed(session: Session) -> None:
    session.info[_KEY].committed = True  # also on a savepoint's release: `_ended` tells them apart


def _rolled_back(session: Session) -> None:
    pending = session.info[_KEY]
    pending.callbacks.clear()
    pending.committed = False


def _ended(session: Session, transaction) -> None:
    pending = session.info[_KEY]
    if transaction.parent is not None or not pending.committed:
        return  # a savepoint, or a transaction that did not commit
    pending.committed = False
    pending.ready.extend(pending.callbacks)
    pending.callbacks.clear()
    if pending.running:
        return  # committed by a callback: the loop below runs what it added
    pending.running = True
    try:
        while pending.ready:
            callback = pending.ready.pop(0)
            try:
                callback()
            except Exception:  # noqa: BLE001 - the commit is done: a failing observer must not undo it
                log.exception("A callback run after the commit failed")
    finally:
        pending.running = False
