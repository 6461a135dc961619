"""What the plugin keeps per app, in ``app.extensions["lms_stripe"]``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from flask import Flask, current_app
from flask_sqlalchemy import SQLAlchemy
from markupsafe import Markup

from ..host import Host

if TYPE_CHECKING:  # types only: the kernel imports nothing of the layers above it
    from ..gateway import StripeGateway
    from ..shop.catalog import Snapshot


@dataclass
class PluginState:
    db: SQLAlchemy
    host: Host
    #: The gateway with the configured keys: the school's own, or in platform mode the platform's.
    platform_gateway: StripeGateway
    #: Each school's catalog's paid offers at one revision (see `shop.catalog.prices`).
    catalog_snapshots: dict[str, Snapshot] = field(default_factory=dict)
    #: Rendered price filter forms, by locale, currency and query string (see `hooks.catalog`).
    filter_forms: dict[tuple, Markup] = field(default_factory=dict)

    #: Platform mode: the school's connected account, on which every call of `gateway` is made (None: none yet).
    account_of: Callable[["PluginState"], str | None] | None = None

    @property
    def gateway(self) -> StripeGateway:
        """The gateway for the school's payments: on its connected account in platform mode, else the
        configured keys' own."""
        account = self.account_of(self) if self.account_of is not None else None
        return self.platform_gateway.for_account(account) if account else self.platform_gateway

    @gateway.setter
    def gateway(self, gateway: StripeGateway) -> None:
        self.platform_gateway = gateway

    @property
    def session(self):
        """The host's Flask-SQLAlchemy session: the plugin's rows join the host's transactions."""
        return self.db.session


def this_app() -> Flask:
    """The real app behind ``current_app`` (a sender of signals, a target of follow-up work)."""
    return current_app._get_current_object()  # type: ignore[attr-defined]


def plugin_state() -> PluginState:
    """The state of the current app (inside an app context)."""
    return current_app.extensions["lms_stripe"]
