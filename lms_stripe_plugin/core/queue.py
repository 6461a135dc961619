"""The host's job queue, when it has one: RQ on Redis, or a Celery app.

With a queue, the work that must not slow down a request or a webhook answer (handling a stored Stripe event,
delivering messages, follow-up calls to Stripe, the reminders run) is sent to it as a job; without one, it runs
in-process as it always did (`core.jobs`). A job is a function of the plugin named by its path
(``"lms_stripe_plugin.sync.webhooks:handle_queued"``) with its arguments, which the queue hands to
`core.jobs.perform` in a worker: that worker must have the host's Flask app (``flask lms-stripe worker`` for
RQ; for Celery, the host's Celery worker, whose app imports the Flask app that registered the plugin's task).

A backend only carries jobs: what a job does, and which unit of work it is, is `core.jobs`'s. The queue is
``app.extensions["lms_stripe_queue"]`` (`of`), set up once by ``StripePayments.init_app`` (`install`).
"""
from __future__ import annotations

import base64
import pickle
from typing import Any, Callable, Protocol, Sequence

from flask import Flask

from ..errors import ConfigurationError

try:  # the "rq" extra: a queue on Redis, built from LMS_STRIPE_RQ_REDIS_URL, and the plugin's worker
    import redis  # optional dependency: the rq extra
    import rq  # optional dependency: the rq extra
except ImportError:  # pragma: no cover - exercised by hosts without the extra
    redis = rq = None  # type: ignore[assignment]

_KEY = "lms_stripe_queue"
#: What a queue's worker runs: `core.jobs.perform` (named, so that this module does not import it).
PERFORM = "lms_stripe_plugin.core.jobs.perform"
#: The name of the plugin's task on a host's Celery app, and of its reminders task (for beat).
CELERY_TASK = "lms_stripe_plugin.perform"
CELERY_REMINDERS_TASK = "lms_stripe_plugin.send_due_reminders"

Perform = Callable[..., None]


class Retry(Exception):
    """Raised by a job whose failure is recorded already (a webhook event kept failed): the queue tries it
    again after each of its retry delays, then leaves it for a replay."""


class Backend(Protocol):
    """What the plugin needs of a queue: send one job, say which."""

    name: str

    def enqueue(self, path: str, args: Sequence[Any], *, retry_delays: Sequence[int] = ()) -> str:
        """Send ``perform(path, *args)`` to the queue; the job's id. ``retry_delays``: the waits (seconds)
        before each new attempt of a job that raised `Retry`."""
        ...


class RQBackend:
    """An ``rq.Queue``: the host's, or one built from ``LMS_STRIPE_RQ_REDIS_URL``."""

    name = "rq"

    def __init__(self, queue, *, timeout: int):
        self.queue = queue
        self.timeout = timeout

    def enqueue(self, path: str, args: Sequence[Any], *, retry_delays: Sequence[int] = ()) -> str:
        retry = rq.Retry(max=len(retry_delays), interval=list(retry_delays)) if retry_delays and rq else None
        with self.queue.connection.pipeline() as pipe:  # one round trip to Redis
            job = self.queue.enqueue_call(PERFORM, args=(path, *args), timeout=self.timeout, retry=retry,
                                          result_ttl=0, description=path, pipeline=pipe)  # nothing kept once done
            pipe.execute()
        return job.id

    def worker(self, *, name: str | None = None):
        """An RQ worker of this queue that runs each job in its own process, with no fork per job: the Flask
        app, its engine and its connections stay the worker's. Run several for more throughput."""
        if rq is None:
            raise ConfigurationError(_NO_RQ)
        return rq.SimpleWorker([self.queue], connection=self.queue.connection, name=name)


class CeleryBackend:
    """A host's Celery app: the plugin registers one task on it (`CELERY_TASK`), which runs `perform` in the
    Flask app. Arguments travel pickled inside one string, so the host's serializer settings (JSON by
    default) need no change."""

    name = "celery"

    def __init__(self, celery_app, flask_app: Flask, perform: Perform,
                 named: dict[str, Callable[[], None]] | None = None):
        self.celery = celery_app
        # shared=False: the task runs in this Flask app, so Celery must not add it to the process's other apps
        self.task = celery_app.task(name=CELERY_TASK, bind=True, ignore_result=True,
                                    shared=False)(_celery_body(flask_app, perform))
        for task_name, body in (named or {}).items():  # tasks that beat can name (the reminders run)
            celery_app.task(name=task_name, ignore_result=True, shared=False)(_in_app(flask_app, body))

    def enqueue(self, path: str, args: Sequence[Any], *, retry_delays: Sequence[int] = ()) -> str:
        return str(self.task.apply_async(args=(encode(path, tuple(args), tuple(retry_delays)),)).id)


def encode(path: str, args: tuple, retry_delays: tuple) -> str:
    return base64.b64encode(pickle.dumps((path, args, retry_delays), protocol=pickle.HIGHEST_PROTOCOL)).decode("ascii")


def decode(payload: str) -> tuple[str, tuple, tuple]:
    """The job a Celery message carries. Only the plugin writes these messages, to the host's own broker,
    which is as trusted as the database (RQ pickles its jobs the same way)."""
    path, args, retry_delays = pickle.loads(base64.b64decode(payload))  # noqa: S301 - the host's broker
    return path, tuple(args), tuple(retry_delays)


def _celery_body(flask_app: Flask, perform: Perform):
    def lms_stripe_perform(task, payload: str) -> None:
        path, args, retry_delays = decode(payload)
        with flask_app.app_context():
            try:
                perform(path, *args)
            except Retry as err:
                attempt = task.request.retries
                if attempt < len(retry_delays):
                    raise task.retry(exc=err, countdown=retry_delays[attempt], max_retries=len(retry_delays))
                raise
    return lms_stripe_perform


def _in_app(flask_app: Flask, body: Callable[[], None]):
    def run() -> None:
        with flask_app.app_context():
            body()
    return run


# -- set up once per app ---------------------------------------------------------------------------------------

_NO_RQ = ("LMS_STRIPE_RQ_REDIS_URL is set but RQ is not installed: pip install 'lms-stripe-plugin[rq]' "
          "(or remove the setting to handle webhooks and messages in-process).")


def install(app: Flask, queue: Any, perform: Perform,
            named: dict[str, Callable[[], None]] | None = None) -> Backend | None:
    """Set up the app's queue: ``queue`` (the host's ``rq.Queue`` or Celery app), else an RQ queue on
    ``LMS_STRIPE_RQ_REDIS_URL``, else none. Connects to nothing: Redis is first reached by a job."""
    backend = _backend(app, queue, perform, named)
    app.extensions[_KEY] = backend
    return backend


def _backend(app: Flask, queue: Any, perform: Perform, named) -> Backend | None:
    timeout = int(app.config["LMS_STRIPE_RQ_JOB_TIMEOUT"])
    if queue is None:
        url = app.config.get("LMS_STRIPE_RQ_REDIS_URL")
        if not url:
            return None
        if rq is None or redis is None:
            raise ConfigurationError(_NO_RQ)
        # A Redis that does not answer must not hold a webhook long: after 5 s the work is done in-process.
        # (RQ's worker lengthens the read timeout of its own connection for its blocking reads.)
        connection = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
        return RQBackend(rq.Queue(app.config["LMS_STRIPE_RQ_QUEUE"], connection=connection), timeout=timeout)
    if hasattr(queue, "enqueue_call") and hasattr(queue, "connection"):
        return RQBackend(queue, timeout=timeout)
    if hasattr(queue, "task") and hasattr(queue, "send_task"):
        return CeleryBackend(queue, app, perform, named)
    raise ConfigurationError(f"queue= must be an rq.Queue or a Celery app, not {type(queue).__name__}.")


def of(app: Flask) -> Backend | None:
    """The app's queue, or None: the plugin then works in-process."""
    return app.extensions.get(_KEY)
