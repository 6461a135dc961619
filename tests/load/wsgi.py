"""The demo LMS as gunicorn's workers import it (``gunicorn --preload 'tests.load.wsgi:app'``).

Configured from the environment, so that the test process can start gunicorn as a plain subprocess:

- ``LMS_STRIPE_LOAD_DATABASE_URL``: the database (a PostgreSQL URL with its own ``search_path``);
- ``LMS_STRIPE_LOAD_API_BASE``: the Stripe sandbox's base URL;
- ``DEMO_ENABLE_PAYMENTS``: "1" (default) to seed the sandbox's keys, "0" to leave payments off;
- ``LMS_STRIPE_LOAD_SQL_ECHO``: "1" logs every SQL statement (to investigate a failure);
- ``LMS_STRIPE_LOAD_RQ_REDIS_URL`` and ``LMS_STRIPE_LOAD_RQ_QUEUE``: an RQ queue for the plugin's jobs (webhook
  handling, messages, follow-up work), run by ``flask --app tests.load.wsgi:app lms-stripe worker``.

With ``--preload`` the master builds the app (tables, migrations, seed) once, then forks the workers:
the engine's pool is disposed here so that no worker inherits the master's connections.
"""
from __future__ import annotations

import os

from lms_stripe_plugin.demo import create_app
from lms_stripe_plugin.demo.models import db


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    return default if raw is None else raw.strip().lower() in ("1", "true", "yes", "on")


def _queue() -> dict:
    url = os.environ.get("LMS_STRIPE_LOAD_RQ_REDIS_URL")
    if not url:
        return {}
    return {"LMS_STRIPE_RQ_REDIS_URL": url, "LMS_STRIPE_RQ_QUEUE": os.environ["LMS_STRIPE_LOAD_RQ_QUEUE"],
            "LMS_STRIPE_QUEUE_RETRY_DELAYS": (1, 2, 4)}  # short waits: the test waits for the queue to drain


def build():
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": os.environ["LMS_STRIPE_LOAD_DATABASE_URL"],
        "LMS_STRIPE_API_BASE": os.environ["LMS_STRIPE_LOAD_API_BASE"],
        "DEMO_ENABLE_PAYMENTS": _flag("DEMO_ENABLE_PAYMENTS", True),
        "SECRET_KEY": os.environ.get("LMS_STRIPE_LOAD_SECRET_KEY", "load-test-secret-key"),
        # One pool per worker: 4 threads, a little headroom.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 6, "max_overflow": 4, "pool_pre_ping": True},
        # Every SQL statement in gunicorn's log, to investigate a failure.
        "SQLALCHEMY_ECHO": _flag("LMS_STRIPE_LOAD_SQL_ECHO", False),
        **_queue(),
    })
    with app.app_context():
        db.engine.dispose()
    return app


app = build()
