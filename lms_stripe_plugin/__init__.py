"""lms-stripe-plugin: sell the courses of a Flask LMS with Stripe.

    from lms_stripe_plugin import StripePayments
    payments = StripePayments(app, db=db, host=MyHost())
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from . import signals
from .config import apply_defaults
from .errors import (CardDeclined, ConfigurationError, Forbidden, GatewayError, HostContractError,
                     NotFound, NotPurchasable, PaymentsError, ValidationFailed, WebhookSignatureError)
from .host import AUDIENCES, HOST_SIGNALS, Host, check_host
from .money import Money

__all__ = [
    "StripePayments", "Host", "Money", "signals", "AUDIENCES", "HOST_SIGNALS",
    "PaymentsError", "ConfigurationError", "HostContractError", "GatewayError", "CardDeclined",
    "NotPurchasable", "NotFound", "Forbidden", "ValidationFailed", "WebhookSignatureError",
]


@dataclass
class PluginState:
    """What the plugin keeps per app, in ``app.extensions["lms_stripe"]``."""

    db: Any
    host: Host
    gateway: Any
    #: The catalog's paid offers at one revision (see `catalog.prices`).
    catalog_snapshot: Any = None
    #: Rendered price filter forms (see `hooks.catalog`).
    filter_forms: dict = field(default_factory=dict)

    @property
    def session(self):
        return self.db.session


class StripePayments:
    """The Flask extension. One instance may serve several apps; each app has its own state."""

    def __init__(self, app: Flask | None = None, *, db=None, host: Host | None = None):
        self.db = db
        self.host = host
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, *, db=None, host: Host | None = None) -> None:
        """Register the plugin on ``app``. Touches neither the database nor Stripe."""
        if "lms_stripe" in app.extensions:
            raise RuntimeError(
                "StripePayments is already registered on this app: call init_app once per app "
                "(use one StripePayments(...) and call init_app(app) for each further app)."
            )
        db, host = db or self.db, host or self.host
        if db is None:
            raise ConfigurationError("StripePayments needs the host's Flask-SQLAlchemy object: pass db=...")
        check_host(host)
        apply_defaults(app.config)
        app.extensions["lms_stripe"] = PluginState(db=db, host=host, gateway=self._setup_gateway(app))
        self._setup_blueprint(app)
        self._setup_hooks()
        self._setup_cli(app)

    @staticmethod
    def _setup_gateway(app: Flask):
        from .gateway import StripeGateway

        return StripeGateway.from_config(app.config)

    @staticmethod
    def _setup_blueprint(app: Flask) -> None:
        from .views import IdConverter, create_blueprint

        app.url_map.converters.setdefault("lms_id", IdConverter)
        app.register_blueprint(create_blueprint(), url_prefix=app.config["LMS_STRIPE_URL_PREFIX"])

    @staticmethod
    def _setup_hooks() -> None:
        from .hooks import connect

        connect()

    @staticmethod
    def _setup_cli(app: Flask) -> None:
        from .cli import lms_stripe_cli

        app.cli.add_command(lms_stripe_cli)
