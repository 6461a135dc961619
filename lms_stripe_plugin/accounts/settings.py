"""Payment settings: the administrator's page merged with app config (config wins)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from flask import current_app, has_request_context, request
from sqlalchemy import ColumnElement, Select, SelectBase, literal, select, true

from ..config import OVERRIDES
from ..core import audit, crypto, schools
from ..core.enums import AuditAction
from ..core.i18n import gettext as _
from ..core.models import Settings, utcnow
from ..core.txn import after_commit
from ..errors import ConfigurationError, UnreadableSecret


#: Per-request cache (the request environ, not `g`, which may outlive a request).
_CACHE = "lms_stripe.settings"


#: The settings held encrypted, with their column.
SECRETS = {"secret_key": "secret_key_encrypted", "webhook_secrets": "webhook_secrets_encrypted"}


class SecretState(StrEnum):
    """What re-encrypting a stored secret with the first encryption key did."""

    REENCRYPTED = "re-encrypted with the first key"
    CURRENT = "already under the first key"
    UNREADABLE = "cannot be read with any key: enter it again on the payment settings page"


@dataclass
class EffectiveSettings:
    """The settings in force, with where each came from.

    A secret set in the app config is used as it is, and the stored one is then never decrypted. A stored
    secret is decrypted when first asked for: pages that need none (the catalog, the admin lists) never
    decrypt one, and one that cannot be decrypted fails only what needs it, with `UnreadableSecret`.
    Secrets are never rendered, nor shown by ``repr``.
    """

    enabled: bool = False
    publishable_key: str | None = None
    default_currency: str = "EUR"
    default_vat_rate: int = 2000
    vouchers_enabled: bool = False
    #: Apple Pay and Google Pay through the plugin's Payment Method Configuration (accounts/wallets.py).
    wallets_enabled: bool = False
    klarna_enabled: bool = False
    klarna_minimum: int | None = None
    sepa_debit_enabled: bool = False
    automatic_tax: bool = False
    terms_url: str | None = None
    overridden: frozenset[str] = frozenset()
    catalog_revision: int = 0
    school_name: str | None = None
    partial_payments_enabled: bool = False
    partial_minimum: int | None = None  # minor units of the default currency
    reminder_days: str = "-3,1,7"  # days relative to a request's due date
    reminder_max: int = 3
    reminder_sms: bool = False
    #: The seller's legal identity on invoices, and what they say of late payment (billing/legal.py).
    seller_legal_name: str | None = None
    seller_address: str | None = None
    seller_siret: str | None = None
    seller_vat_number: str | None = None
    seller_legal_form: str | None = None
    late_payment_text: str | None = None
    business_buyers: bool = False
    #: Days after a deposit's balance was due before the learner's access is suspended.
    balance_grace_days: int = 7
    #: Learners' prepaid balances, topped up between these amounts (minor units of the default currency).
    prepaid_enabled: bool = False
    topup_minimum: int = 1000
    topup_maximum: int = 100000
    #: The currencies accepted besides the default one, space-separated ("CHF USD"); see `currencies`.
    other_currencies: str | None = None
    #: Platform mode (``LMS_STRIPE_PLATFORM``): the school's connected account, and what Stripe last said of it.
    platform: bool = False
    stripe_account_id: str | None = None
    account_state: str | None = None
    #: No course is sold in the catalog: invoices, payment requests and links only.
    requests_only: bool = False
    #: Secrets set in the app config, in clear.
    config_secrets: dict = field(default_factory=dict, repr=False)
    #: Stored secrets the config does not override, encrypted.
    stored_secrets: dict[str, str] = field(default_factory=dict, repr=False)
    _opened: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def secret_key(self) -> str | None:
        """The secret key in force; `UnreadableSecret` (saying what to do) if the stored one cannot be read."""
        return self._secret("secret_key")

    @property
    def webhook_secrets(self) -> list[str]:
        """The webhook signing secrets in force; `UnreadableSecret` if the stored ones cannot be read."""
        return list(self._secret("webhook_secrets") or [])

    def has(self, name: str) -> bool:
        """The secret ``name`` is set and can be read."""
        try:
            return bool(self._secret(name))
        except ConfigurationError:
            return False

    @property
    def unreadable(self) -> frozenset[str]:
        """The stored secrets in force that cannot be decrypted: they must be entered again."""
        return frozenset(name for name in self.stored_secrets if not self.has(name))

    @property
    def mode(self) -> str | None:
        """"test" or "live", as the secret key in force says (never the key itself); None without a readable one."""
        return key_mode(self.secret_key or "") if self.has("secret_key") else None

    @property
    def currencies(self) -> tuple[str, ...]:
        """The currencies the school accepts: the default one first, then the others in the order entered."""
        others = [code for code in (self.other_currencies or "").split() if code != self.default_currency]
        return (self.default_currency, *dict.fromkeys(others))

    @property
    def several_currencies(self) -> bool:
        """Courses may have a price in each accepted currency, and learners choose theirs."""
        return len(self.currencies) > 1

    @property
    def livemode(self) -> bool:
        return self.mode == "live"

    @property
    def configured(self) -> bool:
        return bool(self.publishable_key and self.has("secret_key") and self.has("webhook_secrets"))

    @property
    def active(self) -> bool:
        """Payments are on and Stripe is configured (in platform mode, the school's account is connected and
        Stripe lets it take payments): learners can buy."""
        return self.enabled and self.configured and (not self.platform or self.charges_enabled)

    @property
    def account(self) -> dict:
        """What Stripe last said of the school's connected account (platform mode), or nothing."""
        try:
            found = json.loads(self.account_state) if self.account_state else {}
        except ValueError:
            return {}
        return found if isinstance(found, dict) else {}

    @property
    def charges_enabled(self) -> bool:
        """Platform mode: the school's connected account may take payments."""
        return bool(self.stripe_account_id and self.account.get("charges_enabled"))

    def blockers(self) -> list[str]:
        """Why learners cannot buy, in words for the settings page (none when they can)."""
        reasons = []
        if not self.enabled:
            reasons.append(_("online payment is turned off in the application's configuration")
                           if "enabled" in self.overridden else _("online payment is turned off"))
        if not self.publishable_key:
            reasons.append(_("the publishable key is missing"))
        for name in ("secret_key", "webhook_secrets"):
            if name in self.unreadable:
                reasons.append(_UNREADABLE_REASON[name]())
            elif not self.has(name):
                reasons.append(_MISSING_REASON[name]())
        if self.platform and not self.stripe_account_id:
            reasons.append(_("the school's Stripe account is not connected yet (Online payment)"))
        elif self.platform and not self.charges_enabled:
            reasons.append(_("Stripe does not let the school's account take payments now (Online payment)"))
        return reasons

    def _secret(self, name: str):
        if name in self.config_secrets:
            return self.config_secrets[name]
        if name not in self._opened:  # decrypted once per request, whatever the outcome
            self._opened[name] = self._open(name)
        opened = self._opened[name]
        if isinstance(opened, ConfigurationError):
            raise opened
        return opened

    def _open(self, name: str):
        """The stored secret decrypted, or the error that says why it cannot be."""
        token = self.stored_secrets.get(name)
        if not token:
            return None
        try:
            text = crypto.decrypt(token)
        except UnreadableSecret:
            return UnreadableSecret(_UNREADABLE[name]())
        except ConfigurationError as err:  # no key at all, or a malformed one: the message names it
            return err
        return json.loads(text) if name == "webhook_secrets" else text


def key_mode(key: str) -> str | None:
    """The mode of a Stripe key: "test" (pk_test_, sk_test_, rk_test_…) or "live"; None for neither."""
    for mode in ("test", "live"):
        if f"_{mode}_" in key:
            return mode
    return None


_UNREADABLE = {
    "secret_key": lambda: _("The stored Stripe secret key cannot be read: the encryption keys changed (SECRET_KEY "
                            "or LMS_STRIPE_ENCRYPTION_KEYS). Enter it again on the payment settings page, or keep "
                            "the old key among those that decrypt."),
    "webhook_secrets": lambda: _("The stored webhook signing secrets cannot be read: the encryption keys changed "
                                 "(SECRET_KEY or LMS_STRIPE_ENCRYPTION_KEYS). Enter them again on the payment "
                                 "settings page, or keep the old key among those that decrypt."),
}

_UNREADABLE_REASON = {
    "secret_key": lambda: _("the stored secret key cannot be read (enter it again)"),
    "webhook_secrets": lambda: _("the stored webhook signing secrets cannot be read (enter them again)"),
}
_MISSING_REASON = {
    "secret_key": lambda: _("the secret key is missing"),
    "webhook_secrets": lambda: _("the webhook signing secret is missing"),
}

_PLAIN = ("enabled", "publishable_key", "default_currency", "default_vat_rate", "vouchers_enabled",
          "wallets_enabled", "klarna_enabled", "klarna_minimum", "sepa_debit_enabled", "automatic_tax",
          "terms_url", "catalog_revision", "school_name", "partial_payments_enabled", "partial_minimum",
          "reminder_days", "reminder_max", "reminder_sms", "balance_grace_days", "seller_legal_name",
          "seller_address", "seller_siret", "seller_vat_number", "seller_legal_form", "late_payment_text",
          "business_buyers", "prepaid_enabled", "topup_minimum", "topup_maximum", "other_currencies",
          "stripe_account_id", "account_state", "requests_only")
_PLAIN_NAMES = frozenset(_PLAIN)
_TABLE = Settings.__table__
#: The settings row, read by every page that shows prices and by every webhook: a Core statement, built once
#: (compiled once), run on the session's connection (see `_stored_row`).
_ROW = select(*(_TABLE.c[name] for name in _PLAIN),
              *(_TABLE.c[column] for column in SECRETS.values())).where(schools.its_own(_TABLE))
_ROW_NAMES = tuple(column.name for column in _ROW.selected_columns)


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
    """The settings in force; one query per request. Secrets set in the app config win, and the stored
    ones they override are not even read."""
    school = schools.current()
    cached = _cached(school)
    return cached if cached is not None else _in_force(school, _stored_row(session))


def school_name(session) -> str:
    """The school's name in messages to learners: the payment settings', else the app's."""
    return load(session).school_name or current_app.name


def reading(column: ColumnElement) -> Select:
    """A statement that reads the school's settings and ``column`` (a scalar subquery, say) in one query, for
    `load_with`: one row even when the school has no settings row yet."""
    return select(column.label(_ALSO), *_ROW.selected_columns).select_from(_one_row())


def load_with(session, statement: Select, params: dict) -> tuple[EffectiveSettings, Any]:
    """`load`, with the value of the column that ``statement`` (built by `reading`) reads beside the settings:
    one round trip for both, on a path as short as a webhook's."""
    school = schools.current()
    values = schools.execute(session, Settings, statement, params).one()._asdict()
    also = values.pop(_ALSO)
    return _cached_or_in_force(school, values), also


_ALSO = "lms_also"


def _one_row():
    """The school's settings row outer-joined to one row: a row even when the school has none yet."""
    return select(literal(1).label("one")).subquery().outerjoin(_TABLE, schools.its_own(_TABLE))


def beside(rows: SelectBase) -> Select:
    """A statement that reads the school's settings beside the rows ``rows`` selects, for `load_beside`: each of
    those rows with the settings repeated, or the settings alone when it selects none (and one row even when the
    school has no settings row yet). Meant for a few rows, such as one learner's standing."""
    found = select(literal(1).label(_ALSO), *rows.subquery().c).subquery()
    return select(*found.c, *_ROW.selected_columns).select_from(_one_row().outerjoin(found, true()))


def load_beside(session, statement: Select, params: dict) -> tuple[EffectiveSettings, list[tuple]]:
    """`load`, with the rows that ``statement`` (built by `beside`) reads beside the settings: one round trip for
    both, on a path as short as a catalog page's."""
    school = schools.current()
    found = schools.execute(session, Settings, statement, params).all()
    width = len(statement.selected_columns) - len(_ROW.selected_columns)
    rows = [tuple(row[1:width]) for row in found if row[0] is not None]
    return _cached_or_in_force(school, dict(zip(_ROW_NAMES, found[0][width:]))), rows


def loaded() -> EffectiveSettings | None:
    """The settings in force if this request has read them already (`load` would then cost nothing)."""
    return _cached(schools.current())


def _cached_or_in_force(school: str, row: dict) -> EffectiveSettings:
    """The settings this request has read already, else those of ``row`` (read beside something else)."""
    cached = _cached(school)
    return cached if cached is not None else _in_force(school, row)


def _cached(school: str) -> EffectiveSettings | None:
    cached = request.environ.get(_CACHE) if has_request_context() else None
    return cached[1] if cached is not None and cached[0] == school else None


def _in_force(school: str, row: dict) -> EffectiveSettings:
    """The settings in force from the school's stored row (by column name; values None where nothing is
    stored) and the app config, kept for the request."""
    overrides = _from_config(current_app.config)
    values = {name: value for name, value in row.items() if value is not None and name in _PLAIN_NAMES}
    values.update({name: value for name, value in overrides.items() if name not in SECRETS})
    config_secrets = {name: value for name, value in overrides.items() if name in SECRETS}
    stored = {name: row[column] for name, column in SECRETS.items() if row.get(column) and name not in config_secrets}
    settings = EffectiveSettings(**values, overridden=frozenset(overrides), config_secrets=config_secrets,
                                 stored_secrets=stored, platform=bool(current_app.config.get("LMS_STRIPE_PLATFORM")))
    if has_request_context():
        request.environ[_CACHE] = (school, settings)
    return settings


def _stored_row(session) -> dict:
    """The stored settings of the school in force by column name (empty without a row), read in the session's
    transaction.

    A Core statement on the session's connection rather than through the ORM, whose work per statement
    costs more than twice the query itself on SQLite, on a read that every catalog page and every webhook
    makes. Nor does it flush the host's pending changes, which are not the plugin's to flush."""
    row = schools.execute(session, Settings, _ROW).first()
    return row._asdict() if row is not None else {}


def mask(secret: str | None) -> str:
    """A secret as the settings page shows it: enough to recognise, never enough to use."""
    return crypto.mask(secret)


def stored(session) -> Settings | None:
    """The settings row of the school in force (None before its first save), in the caller's transaction."""
    return session.scalar(select(Settings).where(Settings.school_id == schools.current()))


def every_school(session) -> list[str]:
    """The schools work outside a request goes over (reminders, reconciliation): in platform mode every one
    with settings, else the one."""
    if not schools.platform_mode():
        return [schools.DEFAULT]
    found = session.scalars(select(Settings.school_id).order_by(Settings.school_id)
                            .execution_options(**{schools.ALL_SCHOOLS: True})).all()
    return list(found) or [schools.DEFAULT]


def forget_cached() -> None:
    if has_request_context():
        request.environ.pop(_CACHE, None)


def save(session, data: dict, *, actor_id: str | None) -> Settings:
    """Store validated settings (from `SettingsSchema`) and log the change, in the caller's transaction.

    Secrets absent from ``data`` keep their stored value, moved to the first encryption key if an older one
    encrypts it (unless the app config overrides it: that one is not decrypted); secrets are encrypted
    before they are stored.
    """
    row = stored(session) or Settings(school_id=schools.current())
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
    kept = [name for name in SECRETS if name not in data and name not in _from_config(current_app.config)]
    moved = _names(reencrypt(row, kept), SecretState.REENCRYPTED)
    row.updated_at, row.updated_by = utcnow(), actor_id
    session.add(row)
    if moved:
        audit.record(session, AuditAction.SETTINGS_CHANGED, actor_id=actor_id, fields=sorted(changed),
                     reencrypted=moved)
    else:
        audit.record(session, AuditAction.SETTINGS_CHANGED, actor_id=actor_id, fields=sorted(changed))
    forget_cached()
    after_commit(session, crypto.forget_decrypted)  # replaced secrets leave memory once replaced for good
    return row


def reencrypt(row: Settings, names) -> dict[str, SecretState]:
    """Encrypt the stored secrets ``names`` of ``row`` again with the first encryption key, where an older
    key encrypts them; what happened to each one stored."""
    outcomes = {}
    for name in names:
        column = SECRETS[name]
        token = getattr(row, column)
        if not token:
            continue
        try:
            fresh = crypto.rotate(token)
        except UnreadableSecret:
            outcomes[name] = SecretState.UNREADABLE
            continue
        if fresh is not None:
            setattr(row, column, fresh)
        outcomes[name] = SecretState.CURRENT if fresh is None else SecretState.REENCRYPTED
    return outcomes


def rotate_secrets(session) -> dict[str, SecretState]:
    """``flask lms-stripe secrets rotate``: every stored secret under the first encryption key, in the
    caller's transaction (the command commits)."""
    outcomes: dict[str, SecretState] = {}
    for row in session.scalars(select(Settings).order_by(Settings.id)
                               .execution_options(**{schools.ALL_SCHOOLS: True})).all():
        found = reencrypt(row, SECRETS)
        moved = _names(found, SecretState.REENCRYPTED)
        if moved:
            with schools.scope(row.school_id):  # each school's audit log says what happened to its secrets
                audit.record(session, AuditAction.SETTINGS_CHANGED, actor_id=None, fields=[], reencrypted=moved)
            after_commit(session, crypto.forget_decrypted)
        for name, outcome in found.items():  # the worst outcome of each secret over every school
            outcomes[name] = max(outcomes.get(name, outcome), outcome, key=_GRAVITY.index)
    forget_cached()
    return outcomes


#: What `rotate_secrets` reports of a secret stored by several schools: the gravest outcome.
_GRAVITY = (SecretState.CURRENT, SecretState.REENCRYPTED, SecretState.UNREADABLE)


def _names(outcomes: dict[str, SecretState], state: SecretState) -> list[str]:
    return sorted(name for name, outcome in outcomes.items() if outcome == state)
