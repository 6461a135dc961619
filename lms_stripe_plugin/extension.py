"""The Flask extension: `StripePayments`."""
from __future__ import annotations

from functools import partial
from typing import Any

from flask import Flask

from . import hooks
from .accounts import connect
from .cli import lms_stripe_cli, reminders_job
from .config import apply_defaults
from .core import crypto, jobs, queue as job_queue, schools
from .core.state import PluginState
from .errors import ConfigurationError
from .gateway import StripeGateway
from .gateway.sdk_logging import quiet_sdk_logger
from .host import Host, check_host
from .views import IdConverter, create_blueprint
from .views._common import exempt_webhook_from_host_csrf


class StripePayments:
    """The Flask extension. One instance may serve several apps; each app has its own state."""

    def __init__(self, app: Flask | None = None, *, db=None, host: Host | None = None, queue: Any = None):
        self.db = db
        self.host = host
        self.queue = queue
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, *, db=None, host: Host | None = None, queue: Any = None) -> None:
        """Register the plugin on ``app``. Touches neither the database nor Stripe (nor the queue).

        ``queue``: the host's ``rq.Queue`` or Celery app, to which webhook handling, messages and follow-up
        work go as jobs; else an RQ queue on ``LMS_STRIPE_RQ_REDIS_URL``; else all runs in-process."""
        if "lms_stripe" in app.extensions:
            raise RuntimeError(
                "StripePayments is already registered on this app: call init_app once per app "
                "(use one StripePayments(...) and call init_app(app) for each further app)."
            )
        db, host = db or self.db, host or self.host
        if db is None:
            raise ConfigurationError("StripePayments needs the host's Flask-SQLAlchemy object: pass db=...")
        host = check_host(host)
        self._setup_config(app)
        app.extensions["lms_stripe"] = PluginState(db=db, host=host,
                                                  platform_gateway=StripeGateway.from_config(app.config),
                                                  account_of=connect.account_of)
        schools.install(db.session)  # platform mode: every ORM statement on the plugin's rows names the school
        self._setup_blueprint(app)
        self._setup_queue(app, queue if queue is not None else self.queue)
        hooks.connect()
        app.cli.add_command(lms_stripe_cli)

    @staticmethod
    def _setup_config(app: Flask) -> None:
        apply_defaults(app.config)
        crypto.check_keys(app.config)  # a malformed encryption key fails here, not on a page
        quiet_sdk_logger(app.config["LMS_STRIPE_SDK_LOG_LEVEL"])

    @staticmethod
    def _setup_queue(app: Flask, queue: Any) -> None:
        reminders = partial(jobs.perform, f"{reminders_job.__module__}:{reminders_job.__qualname__}")  # for beat
        job_queue.install(app, queue, jobs.perform, named={job_queue.CELERY_REMINDERS_TASK: reminders})

    @staticmethod
    def _setup_blueprint(app: Flask) -> None:
        app.url_map.converters.setdefault("lms_id", IdConverter)
        app.register_blueprint(create_blueprint(), url_prefix=app.config["LMS_STRIPE_URL_PREFIX"])
        exempt_webhook_from_host_csrf(app)  # CSRFProtect registered before the plugin; else at the first delivery
