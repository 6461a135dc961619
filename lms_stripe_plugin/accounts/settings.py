"""Payment settings: the administrator's page merged with app config (config wins)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from flask import current_app, has_request_context, request
from sqlalchemy import select

from ..config import OVERRIDES
from ..core import audit, crypto
from ..core.enums import AuditAction
from ..core.models import Settings, utcnow
from ..core.txn import after_commit


#: Per-request cache (the request environ, not `g`, which may outlive a request).
_CACHE = "lms_stripe.settings"


@dataclass
class EffectiveSettings:
    """The settings in force, with where each came from. Secrets are held decrypted, never rendered."""

    enabled: bool = False
    publishable_key: str | None = None
    secret_key: str | None = None
    webhook_secrets: list[str] = field(default_factory=list)
    default_currency: str = "EUR"
    default_vat_rate: int = 2000
    vouchers_enabled: bool = False
    wallets_enabled: bool = True
    klarna_enabled: bool = False
    klarna_minimum: int | None = None
    sepa_debit_enabled: bool = False
    automatic_tax: bool = False
    terms_url: str | None = None
    overridden: frozenset[str] = frozenset()
    catalog_revision: int = 0

    @property
    def livemode(self) -> bool:
        return bool(self.secret_key and "_live_" in self.secret_key)

    @property
    def configured(self) -> bool:
        return bool(self.publishable_key and self.secret_key and self.webhook_secrets)

    @property
    def active(self) -> bool:
        """Payments are on and Stripe is configured: learners can buy."""
        return self.enabled and self.configured


_PLAIN = ("enabled", "publishable_key", "default_currency", "default_vat_rate", "vouchers_enabled",
          "wallets_enabled", "klarna_enabled", "klarna_minimum", "sepa_debit_enabled", "automatic_tax",
          "terms_url", "catalog_revision")
#: The settings row, read on every page that shows prices: built once (SQLAlchemy caches its SQL).
_ROW = select(*(getattr(Settings, name) for name in _PLAIN), Settings.secret_key_encrypted,
              Settings.webhook_secrets_encrypted).where(Settings.id == 1)


def _from_row(row) -> dict:
    if row is None:
        return {}
    values = {name: getattr(row, name) for name in _PLAIN}
    values["secret_key"] = crypto.decrypt(row.secret_key_encrypted) if row.secret_key_encrypted else None
    values["webhook_secrets"] = (
        json.loads(crypto.decrypt(row.webhook_secrets_encrypted)) if row.webhook_secrets_encrypted else []
    )
    return values


def _from_config(config) -> dict:
    values = {}
    for name, key in OVERRIDES.items():
        value = config.get(key)
        if value is None:
            continue
        if name == "webhook_secrets" and isinstance(value, str):
            value = [value]
        if name == "default_currency":
            value = value.upper()
        values[name] = list(value) if name == "webhook_secrets" else value
    return values


def load(session) -> EffectiveSettings:
    """The settings in force; one query per request."""
    if has_request_context() and _CACHE in request.environ:
        return request.environ[_CACHE]
    with session.no_autoflush:  # a read: the host's pending changes are not the plugin's to flush
        row = session.execute(_ROW).first()
    values = {k: v for k, v in _from_row(row).items() if v is not None}
    overrides = _from_config(current_app.config)
    values.update(overrides)
    settings = EffectiveSettings(**values, overridden=frozenset(overrides))
    if has_request_context():
        request.environ[_CACHE] = settings
    return settings


def mask(secret: str | None) -> str:
    """A secret as the settings page shows it: enough to recognise, never enough to use."""
    return crypto.mask(secret)


def forget_cached() -> None:
    if has_request_context():
        request.environ.pop(_CACHE, None)


def save(session, data: dict, *, actor_id: str | None) -> Settings:
    """Store validated settings (from `SettingsSchema`) and log the change, in the caller's transaction.

    Secrets absent from ``data`` keep their stored value; secrets are encrypted before they are stored.
    """
    row = session.get(Settings, 1) or Settings(id=1)
    changed = []
    for name, value in data.items():
        if name == "secret_key":
            row.secret_key_encrypted = crypto.encrypt(value)
        elif name == "webhook_secrets":
            row.webhook_secrets_encrypted = crypto.encrypt(json.dumps(value))
        elif getattr(row, name) == value:
            continue
        else:
            setattr(row, name, value)
        changed.append(name)
    row.updated_at, row.updated_by = utcnow(), actor_id
    session.add(row)
    audit.record(session, AuditAction.SETTINGS_CHANGED, actor_id=actor_id, fields=sorted(changed))
    forget_cached()
    after_commit(session, crypto.forget_decrypted)  # replaced secrets leave memory once replaced for good
    return row
