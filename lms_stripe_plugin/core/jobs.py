"""Follow-up work: a unit of work of its own, run once the transaction that asked for it has committed.

A service that must call Stripe after writing (a refund for a duplicate payment found while handling a
webhook) records what it will do, and defers the call: the webhook's writes and its event's status commit
together, and the call happens afterwards, never inside that transaction. The runner here is the edge of
that work: it commits it, or rolls it back and logs; what was recorded stays for a retry (reconciliation).
"""
from __future__ import annotations

from typing import Any, Callable

from flask import Flask

from .logs import get_logger
from .state import this_app
from .txn import after_commit

log = get_logger(__name__)

Job = Callable[..., Any]


def defer(session, job: Job, *args: Any) -> None:
    """Run ``job(state, *args)`` in a transaction of its own after the current one commits."""
    app = this_app()

    def start() -> None:
        run(app, job, *args)

    after_commit(session, start)


def run(app: Flask, job: Job, *args: Any) -> bool:
    """Run one job and commit its work; False (logged, rolled back) if it failed."""
    state = app.extensions["lms_stripe"]
    try:
        job(state, *args)
        state.session.commit()
    except Exception:  # noqa: BLE001 - a follow-up must not fail the work that asked for it
        state.session.rollback()
        log.exception("Follow-up %s%r failed; it is retried by reconciliation", job.__name__, args)
        return False
    return True
