"""A small reference LMS that sells its courses with lms-stripe-plugin, through the public host contract only.

    python -m lms_stripe_plugin.demo          # the demo with the offline Stripe sandbox
    create_app({"SQLALCHEMY_DATABASE_URI": ...})  # for tests
"""
from __future__ import annotations

import os
from pathlib import Path

from flask import Flask
from sqlalchemy import event

from lms_stripe_plugin import StripePayments, migrate

from .host import DemoHost
from .models import db
from .sandbox_keys import SANDBOX_KEYS
from .seed import seed
from .views import bp

__all__ = ["SANDBOX_KEYS", "create_app", "default_config"]



def default_config(instance_path: str) -> dict:
    return {
        "SECRET_KEY": os.environ.get("DEMO_SECRET_KEY", "demo-only-secret-key-change-me"),
        # The session cookie is not sent with cross-site POSTs nor readable from scripts. Served over
        # https, the host also sets SESSION_COOKIE_SECURE=True (the demo runs on plain http locally).
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_HTTPONLY": True,
        "SQLALCHEMY_DATABASE_URI": os.environ.get(
            "DEMO_DATABASE_URL", "sqlite:///" + str(Path(instance_path) / "demo.sqlite")),
        "DEMO_USER_SWITCHER": True,
        "DEMO_SEED": True,
        "LMS_STRIPE_BASE_TEMPLATE": "demo/layout.html",
        "LMS_STRIPE_API_BASE": os.environ.get("LMS_STRIPE_API_BASE"),
        # Where visitors reach the demo: the addresses sent to Stripe are built on it, never on a Host header.
        "LMS_STRIPE_PUBLIC_URL": os.environ.get("DEMO_PUBLIC_URL", "http://127.0.0.1:5000"),
        "DEMO_TERMS_URL": None,
        # With the sandbox, payments start enabled with its keys; False leaves them for the admin to enter.
        "DEMO_ENABLE_PAYMENTS": True,
        # Payment requests' e-mails and SMS go to files, which the demo's Inbox page reads.
        "LMS_STRIPE_MAIL_BACKEND": "file", "LMS_STRIPE_MAIL_FILE": str(Path(instance_path) / "demo-mail.mbox"),
        "LMS_STRIPE_MAIL_SENDER": "Demo School <noreply@demo.test>",
        "LMS_STRIPE_SMS_BACKEND": "file", "LMS_STRIPE_SMS_FILE": str(Path(instance_path) / "demo-sms.jsonl"),
    }


def _immediate_transactions(engine) -> None:
    """SQLite: take the write lock when a transaction begins.

    SQLite's default (deferred) transactions fail at once when two of them both try to upgrade a read lock
    to a write lock, as a webhook and a page can in a threaded server; immediate ones wait their turn.
    """
    @event.listens_for(engine, "connect")
    def _autocommit_driver(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_app(config: dict | None = None) -> Flask:
    """The demo app; ``config`` overrides the defaults (database URI, sandbox URL, …)."""
    app = Flask(__name__, instance_relative_config=True)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.update(default_config(app.instance_path))
    app.config.update(config or {})
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"connect_args": {"timeout": 30}})
    db.init_app(app)
    StripePayments(app, db=db, host=DemoHost())
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            _immediate_transactions(db.engine)
    app.register_blueprint(bp)
    with app.app_context():
        db.create_all()
        migrate.upgrade()
        if app.config["DEMO_SEED"]:
            seed(app)
    return app
