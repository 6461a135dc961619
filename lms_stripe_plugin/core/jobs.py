"""Follow-up work: a unit of work of its own, run once the transaction that asked for it has committed.

A service that must call Stripe after writing (a refund for a duplicate payment found while handling a
webhook) records what it will do, and defers the call: the webhook's writes and its event's status commit
together, and the call happens afterwards, never inside that transaction. The runner here is the edge of
that work: it commits it, or rolls it back and logs; what was recorded stays for a retry (reconciliation).

When the host has a queue (`core.queue`: RQ or Celery), deferred work is sent to it after the commit, as a
job that a worker runs (`perform`) in the same unit of work; without one, or when the queue cannot take the
job, it runs in this process, after the commit, as before. A job runs as the school that asked for it.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Sequence

from flask import Flask, has_app_context

from . import queue, schools
from .logs import get_logger
from .queue import Retry
from .state import this_app
from .txn import after_commit

__all__ = ["Job", "Retry", "defer", "enqueue", "perform", "run"]

log = get_logger(__name__)

Job = Callable[..., Any]
_PACKAGE = "lms_stripe_plugin."
#: Between a job's path and the school it runs as (platform mode): ``"module:name@school"``.
_SCHOOL = "@"


def defer(session, job: Job, *args: Any) -> None:
    """Run ``job(state, *args)`` in a transaction of its own after the current one commits: on the host's
    queue if it has one, else here. A job sent to a queue is named by its module and name, so it must be a
    module-level function of the plugin, and its arguments picklable (ids, lists, plain dataclasses)."""
    app, school = this_app(), schools.current()

    def start() -> None:
        with schools.scope(school):
            if not enqueue(app, job, *args):
                run(app, job, *args)

    after_commit(session, start)


def enqueue(app: Flask, job: Job, *args: Any, retry_delays: Sequence[int] = ()) -> bool:
    """Send ``job(state, *args)`` to the app's queue; False when there is none or it did not take the job
    (Redis unreachable: logged): the caller then runs the job itself."""
    backend = queue.of(app)
    path = job_path(job)
    if backend is None or path is None:
        return False
    school = schools.current()
    if school != schools.DEFAULT:
        path = f"{path}{_SCHOOL}{school}"
    try:
        backend.enqueue(path, args, retry_delays=retry_delays)
    except Exception:  # noqa: BLE001 - the work must still be done: here, as without a queue
        log.exception("The %s queue did not take %s; it runs in this process", backend.name, path)
        return False
    return True


def job_path(job: Job) -> str | None:
    """``"module:name"`` of a module-level function of the plugin, which a worker can import; else None."""
    module, name = getattr(job, "__module__", ""), getattr(job, "__qualname__", "")
    if not module.startswith(_PACKAGE) or not name or "<locals>" in name:
        return None
    return f"{module}:{name}"


def perform(path: str, *args: Any) -> None:
    """What a queue's worker runs: the job named ``path`` (see `job_path`), as `run` does it, in an app
    context of its own (its own session). A failure is raised, so that the queue records it (and retries
    it, for a job sent with retry delays)."""
    if not has_app_context():
        raise RuntimeError("lms-stripe jobs need the host's Flask app: run the RQ worker with "
                           "`flask lms-stripe worker` (or push an app context in your own worker).")
    app = this_app()
    path, _sep, school = path.partition(_SCHOOL)
    job = _resolve(path)
    with app.app_context(), schools.scope(school):
        run(app, job, *args, raise_failure=True)


def _resolve(path: str) -> Job:
    module, _sep, name = path.partition(":")
    if not module.startswith(_PACKAGE) or not name:
        raise ValueError(f"Not a job of the plugin: {path!r}")
    target: Any = importlib.import_module(module)
    for part in name.split("."):
        target = getattr(target, part)
    return target


def run(app: Flask, job: Job, *args: Any, raise_failure: bool = False) -> bool:
    """Run one job and commit its work; False (logged, rolled back) if it failed, or with ``raise_failure``
    the error raised again. A `Retry` says the job recorded its failure itself: it is not logged again."""
    state = app.extensions["lms_stripe"]
    try:
        job(state, *args)
        state.session.commit()
    except Retry:
        state.session.rollback()
        if raise_failure:
            raise
        return False
    except Exception:  # noqa: BLE001 - a follow-up must not fail the work that asked for it
        state.session.rollback()
        log.exception("Follow-up %s%r failed; it is retried by reconciliation", job.__name__, args)
        if raise_failure:
            raise
        return False
    return True
