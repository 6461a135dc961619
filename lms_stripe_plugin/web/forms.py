"""Marshmallow schemas for every input the plugin accepts. Messages are translated at validation time."""
from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import urlparse

from babel.numbers import format_decimal

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validates_schema
from werkzeug.datastructures import MultiDict

from ..accounts import identity
from ..accounts.settings import key_mode
from ..billing.reminders import EARLIEST, LATEST
from ..core.enums import BalanceDue, DepositAccess, PaymentPlan
from ..core.i18n import current_locale, gettext as _, ngettext
from ..core.models import utcnow
from ..host import AUDIENCES
from ..money import (Money, MoneyError, example_amount, format_amount_input, minimum_amount, normalize_currency,
                     parse_money, parse_rate)
from ..shop import deposits

MAX_TEXT = 2048
#: Currencies a school may accept besides its default one (each a price field on every course form).
MAX_OTHER_CURRENCIES = 9


class Checkbox(fields.Field):
    """An HTML checkbox: absent or empty is False."""

    TRUE = {"on", "1", "true", "yes", "y"}
    FALSE = {"", "0", "off", "false", "no", "n"}

    def _deserialize(self, value, attr, data, **kwargs):
        text = str(value).strip().lower()
        if text in self.TRUE:
            return True
        if text in self.FALSE:
            return False
        raise ValidationError(_("Tick or untick this box."))


class Text(fields.String):
    """A trimmed single-line string of bounded length; blank becomes None."""

    def __init__(self, max_length: int = 255, **kwargs):
        super().__init__(**kwargs)
        self.max_length = max_length

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ValidationError(_("Enter text."))
        value = value.strip()
        if len(value) > self.max_length:
            raise ValidationError(_("At most %(n)s characters.", n=self.max_length))
        if any(ord(c) < 32 for c in value):
            raise ValidationError(_("Remove the control characters."))
        return value or None


class Paragraph(fields.String):
    """A few lines of text (an address, a sentence of the invoices' footer), each trimmed, blank lines dropped,
    of bounded length; blank becomes None."""

    def __init__(self, max_length: int, max_lines: int, **kwargs):
        super().__init__(**kwargs)
        self.max_length, self.max_lines = max_length, max_lines

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ValidationError(_("Enter text."))
        lines = [line.strip() for line in value.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
        text = "\n".join(line for line in lines if line)
        if any(ord(c) < 32 and c != "\n" for c in text):
            raise ValidationError(_("Remove the control characters."))
        if len(text) > self.max_length:
            raise ValidationError(_("At most %(n)s characters.", n=self.max_length))
        if text.count("\n") >= self.max_lines:
            raise ValidationError(_("At most %(n)s lines.", n=self.max_lines))
        return text or None


class Siret(Text):
    """A SIREN (9 digits) or SIRET (14 digits), spaces allowed, whose check digit is right; stored as digits."""

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if value is None:
            return None
        digits = identity.compact(value)
        if not digits.isascii() or not digits.isdigit() or len(digits) not in (9, 14):
            raise ValidationError(_("Enter the SIREN (9 digits) or the SIRET (14 digits)."))
        if not identity.valid_siren_or_siret(digits):
            raise ValidationError(_("This number does not check out (its last digit is a check digit): look for a "
                                    "digit typed wrong."))
        return digits


class FrenchVatNumber(Text):
    """A French VAT number (FR, a key, the SIREN), spaces allowed, its key and SIREN checked; stored compact."""

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if value is None:
            return None
        number = identity.compact(value)
        if not (len(number) == 13 and number.startswith("FR") and number[4:].isdigit() and number.isascii()):
            raise ValidationError(_("Enter a French VAT number: FR, 2 characters, then the 9 digits of the SIREN "
                                    "(such as %(example)s).", example="FR 44 732829320"))
        if not identity.valid_french_vat(number):
            raise ValidationError(_("This VAT number does not check out: its key or its SIREN has a digit typed "
                                    "wrong."))
        return number


class Currency(Text):
    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        try:
            return normalize_currency(value or "")
        except MoneyError:
            raise ValidationError(_("Choose a currency Stripe supports, as a three-letter code (EUR, USD, JPY…)."))


class Rate(Text):
    """A VAT rate typed as "20" or "5,5", loaded as basis points."""

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if value is None:
            raise ValidationError(_("Enter a VAT rate, 0 if none applies."))
        try:
            return parse_rate(value, locale=current_locale())
        except MoneyError:
            raise ValidationError(_("Enter a VAT rate between 0 and 100, such as 20 or %(example)s.",
                                    example=format_rate_input(550)))


class Url(Text):
    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if value is None:
            return None
        try:
            parsed = urlparse(value)
        except ValueError:
            raise ValidationError(_("Enter a full web address starting with https://."))
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValidationError(_("Enter a full web address starting with https://."))
        return value


def read_amount(text: str, currency: str, *, minimum: bool = True) -> Money:
    """An amount a person typed, read in their locale (`money.parse_money`); `MoneyError` if refused."""
    return parse_money(text, currency, locale=current_locale(), minimum=minimum)


def amount_input(amount: int | None, currency: str | None) -> str:
    """How a form field shows a stored amount for the reader's locale ("129,00" in French)."""
    if amount is None or not currency:
        return ""
    return format_amount_input(Money(int(amount), currency), current_locale())


def format_rate_input(basis_points: int) -> str:
    """How a form field shows a VAT rate for the reader's locale ("5,5" in French, "5.5" in English)."""
    return format_decimal(Decimal(basis_points) / 100, locale=current_locale(), group_separator=False)


def form_to_dict(form: MultiDict, names, prefix: str = "") -> dict:
    """The named fields of a submitted form (one value each), without the prefix."""
    return {name: form.get(prefix + name) for name in names if prefix + name in form}


# -- Payment settings -----------------------------------------------------------------------------

def _check_key(key: str | None, prefixes: tuple[str, ...], message: str) -> None:
    if key is None:
        return
    if not key.startswith(prefixes) or key_mode(key) is None or len(key) < 12 or " " in key:
        raise ValidationError(message)


class SettingsSchema(Schema):
    """The payment settings page. ``stored`` (the settings in force) is used for cross-field checks."""

    class Meta:
        unknown = EXCLUDE

    enabled = Checkbox(load_default=False)
    publishable_key = Text(max_length=255)
    secret_key = Text(max_length=255)
    webhook_secrets = fields.String()
    default_currency = Currency(required=True)
    other_currencies = Text(max_length=200)
    default_vat_rate = Rate(required=True)
    vouchers_enabled = Checkbox(load_default=False)
    wallets_enabled = Checkbox(load_default=False)
    klarna_enabled = Checkbox(load_default=False)
    klarna_minimum = Text(max_length=32)
    school_name = Text(max_length=255)
    partial_payments_enabled = Checkbox(load_default=False)
    partial_minimum = Text(max_length=32)
    reminder_days = Text(max_length=64)
    reminder_max = Text(max_length=4)
    reminder_sms = Checkbox(load_default=False)
    balance_grace_days = Text(max_length=4)
    prepaid_enabled = Checkbox(load_default=False)
    requests_only = Checkbox(load_default=False)
    topup_minimum = Text(max_length=32)
    topup_maximum = Text(max_length=32)
    sepa_debit_enabled = Checkbox(load_default=False)
    automatic_tax = Checkbox(load_default=False)
    terms_url = Url(max_length=MAX_TEXT)
    # The seller's identity on invoices: the name and legal form are each an invoice custom field's value,
    # which Stripe takes up to 140 characters.
    seller_legal_name = Text(max_length=140)
    seller_address = Paragraph(max_length=300, max_lines=4)
    seller_siret = Siret(max_length=32)
    seller_vat_number = FrenchVatNumber(max_length=32)
    seller_legal_form = Text(max_length=140)
    late_payment_text = Paragraph(max_length=1000, max_lines=8)
    business_buyers = Checkbox(load_default=False)

    #: In the page's order, which its summary of errors follows.
    FIELDS = ("enabled", "requests_only", "publishable_key", "secret_key", "webhook_secrets", "default_currency",
              "other_currencies", "default_vat_rate", "vouchers_enabled", "wallets_enabled", "klarna_enabled", "klarna_minimum",
              "sepa_debit_enabled", "automatic_tax", "terms_url", "school_name", "partial_payments_enabled",
              "partial_minimum", "reminder_days", "reminder_max", "reminder_sms", "balance_grace_days",
              "prepaid_enabled", "topup_minimum", "topup_maximum", "seller_legal_name", "seller_address", "seller_siret", "seller_vat_number", "seller_legal_form",
              "late_payment_text", "business_buyers")
    #: The seller's identity, whose legal name the others are printed under.
    IDENTITY = ("seller_address", "seller_siret", "seller_vat_number", "seller_legal_form")
    SECRETS = ("secret_key", "webhook_secrets")

    def __init__(self, *, stored=None, **kwargs):
        super().__init__(**kwargs)
        self.stored = stored

    def load_form(self, form: MultiDict, *, locked: frozenset[str] = frozenset()) -> dict:
        """Load the page's form; fields set in app config (``locked``) and blank secrets are left out."""
        data = form_to_dict(form, self.FIELDS)
        for name in self.FIELDS:
            if name not in data and self.fields[name].load_default is False:
                data[name] = ""
        for name in list(data):
            if name in locked or (name in self.SECRETS and not (data[name] or "").strip()):
                del data[name]
        return self.load(data, partial=tuple(locked))

    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def _check(self, data, original_data, **kwargs):
        """The checks of the secrets and of the fields read together. They run even when some fields were
        refused, so that the page shows every error at once; a field refused is left out of them."""
        errors: dict[str, list | dict] = {}
        refused = {name for name in original_data if name not in data}
        for name, check in (("publishable_key", self._check_publishable), ("secret_key", self._check_secret),
                            ("webhook_secrets", self._check_webhook_secrets),
                            ("klarna_minimum", self._check_klarna_minimum),
                            ("partial_minimum", self._check_partial_minimum),
                            ("reminder_days", self._check_reminder_days), ("reminder_max", self._check_reminder_max),
                            ("balance_grace_days", self._check_grace_days),
                            ("other_currencies", self._check_other_currencies),
                            ("topup_minimum", self._check_topup_limit), ("topup_maximum", self._check_topup_limit)):
            if name in data:
                try:
                    data[name] = check(data[name], data)
                except ValidationError as err:
                    errors[name] = err.messages
                    refused.add(name)
        for name, messages in self._check_combination(data, refused).items():
            errors[name] = [*errors.get(name, []), *messages]
        if errors:
            raise ValidationError(errors)

    def _check_publishable(self, value, data):
        _check_key(value, ("pk_",), _("A publishable key starts with pk_test_ or pk_live_."))
        return value

    def _check_secret(self, value, data):
        _check_key(value, ("sk_", "rk_"),
                   _("A secret key starts with sk_test_ or sk_live_ (a restricted key with rk_test_ or rk_live_)."))
        return value

    def _check_webhook_secrets(self, value, data):
        secrets = [line.strip() for line in (value or "").splitlines() if line.strip()]
        if not secrets:
            return None
        if len(secrets) > 5:
            raise ValidationError(_("At most 5 signing secrets."))
        for secret in secrets:
            if not secret.startswith("whsec_") or len(secret) < 12 or " " in secret or len(secret) > 255:
                raise ValidationError(_("A webhook signing secret starts with whsec_ (one per line)."))
        return secrets

    def _check_partial_minimum(self, value, data):
        return self._check_klarna_minimum(value, data)

    def _check_topup_limit(self, value, data):
        """A top-up limit: an amount Stripe can charge in the default currency (empty: 10.00 and 1,000.00 in
        its minor units)."""
        return self._check_klarna_minimum(value, data) if value else None

    def _check_reminder_days(self, value, data):
        """Days relative to the due date, such as "-3, 1, 7" (before it: negative)."""
        parts = [part.strip() for part in (value or "").split(",") if part.strip()]
        if (any(not part.lstrip("+-").isdigit() or not EARLIEST <= int(part) <= LATEST for part in parts)
                or len(parts) > 10):
            raise ValidationError(_("Enter up to 10 days between %(earliest)s and %(latest)s, separated by commas: "
                                    "-3, 1, 7.", earliest=EARLIEST, latest=LATEST))
        return ",".join(str(day) for day in sorted({int(part) for part in parts}))

    def _check_other_currencies(self, value, data):
        """The currencies accepted besides the default one: three-letter codes Stripe supports, separated by
        commas or spaces ("CHF, USD"); stored space-separated, without the default one or repeats."""
        codes = [part for part in re.split(r"[\s,;]+", (value or "").strip()) if part]
        wrong = []
        found: list[str] = []
        for code in codes:
            try:
                found.append(normalize_currency(code))
            except MoneyError:
                wrong.append(code[:8])
        if wrong:
            raise ValidationError(_("%(codes)s: not a currency Stripe supports. Enter three-letter codes separated "
                                    "by commas, such as CHF, USD.", codes=", ".join(wrong)))
        default = data.get("default_currency") or getattr(self.stored, "default_currency", "EUR")
        found = [code for code in dict.fromkeys(found) if code != default]
        if len(found) > MAX_OTHER_CURRENCIES:
            raise ValidationError(_("At most %(num)s currencies besides the default one.", num=MAX_OTHER_CURRENCIES))
        return " ".join(found) or None

    def _check_reminder_max(self, value, data):
        if value in (None, ""):
            return 3
        if not value.isdigit() or not 0 <= int(value) <= 10:
            raise ValidationError(_("Enter a number of reminders from 0 to 10."))
        return int(value)

    def _check_grace_days(self, value, data):
        if value in (None, ""):
            return 7
        if not value.isascii() or not value.isdigit() or not 0 <= int(value) <= 365:
            raise ValidationError(_("Enter a number of days from 0 to 365."))
        return int(value)

    def _check_klarna_minimum(self, value, data):
        if not value:
            return None
        currency = data.get("default_currency") or getattr(self.stored, "default_currency", "EUR")
        try:
            return read_amount(value, currency).amount
        except MoneyError as err:
            raise ValidationError(money_message(err, currency)) from err

    def _merged(self, data, name):
        """The value the field will have once saved: the one entered (a cleared field is None), else the one
        in force (a secret left blank keeps it; a stored secret that cannot be read counts as none)."""
        if name in data:
            return data[name]
        if self.stored is None or name in self._unreadable():
            return None
        return getattr(self.stored, name, None)

    def _unreadable(self) -> frozenset[str]:
        return getattr(self.stored, "unreadable", frozenset())

    def _check_combination(self, data, refused: set[str]) -> dict[str, list]:
        errors: dict[str, list] = {}
        publishable, secret = self._merged(data, "publishable_key"), self._merged(data, "secret_key")
        if publishable and secret and not {"publishable_key", "secret_key"} & refused and \
                key_mode(publishable) != key_mode(secret):
            errors["secret_key"] = [_("The publishable key and the secret key must both be test keys or both live keys.")]
        if data.get("enabled") and not getattr(self.stored, "enabled", False):
            # Turning payments on needs the three keys. Once on, a key may be cleared (a leaked one, say):
            # the page then saves and says that payments are off, and why.
            missing = [name for name in STRIPE_KEYS if name not in refused and not self._merged(data, name)]
            if missing:
                errors["enabled"] = [_("Enter the publishable key, the secret key and the webhook signing secret before enabling payments.")]
            for name in missing:
                errors[name] = [_UNREADABLE[name]() if name in self._unreadable() else _("Required to enable payments.")]
        errors.update(self._check_identity(data, refused))
        for name, default in (("topup_minimum", 1000), ("topup_maximum", 100000)):
            if name in data and data[name] is None:
                data[name] = default
        low, high = self._merged(data, "topup_minimum"), self._merged(data, "topup_maximum")
        if low and high and not {"topup_minimum", "topup_maximum"} & refused and low > high:
            errors["topup_maximum"] = [_("The largest top-up cannot be below the smallest.")]
        return errors

    def _check_identity(self, data, refused: set[str]) -> dict[str, list]:
        """The seller's identity read together: a legal name to print the rest under, and one SIREN in both the
        SIRET and the VAT number."""
        errors: dict[str, list] = {}
        given = [name for name in self.IDENTITY if name not in refused and self._merged(data, name)]
        if given and "seller_legal_name" not in refused and not self._merged(data, "seller_legal_name"):
            errors["seller_legal_name"] = [_("Enter the legal name: the invoices show the seller's other details "
                                             "under it.")]
        siret, vat = self._merged(data, "seller_siret"), self._merged(data, "seller_vat_number")
        if siret and vat and not {"seller_siret", "seller_vat_number"} & refused and \
                identity.vat_siren(vat) != siret[:9]:
            errors["seller_vat_number"] = [_("This VAT number holds the SIREN %(vat)s, and the SIRET is that of "
                                             "%(siret)s.", vat=identity.vat_siren(vat), siret=siret[:9])]
        return errors


#: What learners' payments need.
STRIPE_KEYS = ("publishable_key", "secret_key", "webhook_secrets")

_UNREADABLE = {
    "secret_key": lambda: _("The stored secret key cannot be read: enter it again to enable payments."),
    "webhook_secrets": lambda: _("The stored signing secrets cannot be read: enter them again to enable payments."),
}


# -- Course pricing ---------------------------------------------------------------------------------

PRICING_PREFIX = "lms_stripe-"


class CoursePricingSchema(Schema):
    """The pricing section of the host's course settings form (fields prefixed ``lms_stripe-``)."""

    class Meta:
        unknown = EXCLUDE

    is_paid = Checkbox(load_default=False, data_key="paid")
    price = Text(max_length=32)
    currency = Currency()
    vat_rate = Rate()
    audience = Text(max_length=16)
    on_sale = Checkbox(load_default=False)
    payment_plan = Text(max_length=16)
    deposit_kind = Text(max_length=16)
    deposit_value = Text(max_length=32)
    balance_due = Text(max_length=32)
    balance_due_date = Text(max_length=10)
    balance_due_days = Text(max_length=5)
    deposit_access = Text(max_length=16)

    NAMES = ("paid", "price", "currency", "vat_rate", "audience", "on_sale", "payment_plan", "deposit_kind",
             "deposit_value", "balance_due", "balance_due_date", "balance_due_days", "deposit_access")

    def __init__(self, *, course_start: date | None = None, currencies: tuple[str, ...] = (), **kwargs):
        """``course_start``: the course's start date as the host gives it (`Host.course_start`), for a balance
        due N days before it. ``currencies``: the currencies the school accepts when several (the settings'
        `currencies`): the form then takes a price in each besides the offer's own (``price_chf``…)."""
        super().__init__(**kwargs)
        self.course_start = course_start
        self.currencies = currencies

    @property
    def price_names(self) -> tuple[str, ...]:
        """The fields of the prices in the other accepted currencies, in the settings' order."""
        return tuple(price_field(code) for code in self.currencies)

    @property
    def names(self) -> tuple[str, ...]:
        """Every field of the form, in its order (the summary of errors follows it)."""
        return self.NAMES[:3] + self.price_names + self.NAMES[3:]

    #: The fields that make the price (the course form's preview reads these alone).
    PRICE = ("price", "currency", "vat_rate")

    @classmethod
    def load_price(cls, values) -> dict:
        """The price as a save reads it from ``values`` (price, currency and VAT rate, unprefixed), for a paid
        course; `ValidationError` names each of the three fields at fault."""
        form = MultiDict({PRICING_PREFIX + name: values.get(name) or "" for name in cls.PRICE})
        form.update({PRICING_PREFIX + "paid": "on", PRICING_PREFIX + "audience": "public"})
        return cls().load_form(form)

    def load_form(self, form: MultiDict) -> dict:
        data = form_to_dict(form, self.names, PRICING_PREFIX)
        paid = str(data.get("paid") or "").strip().lower()
        if paid not in Checkbox.TRUE:
            if paid not in Checkbox.FALSE:
                raise ValidationError({"paid": [_("Tick or untick this box.")]})
            return {"is_paid": False}
        data.setdefault("on_sale", "")
        return self.load(data)

    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def _check(self, data, original_data, **kwargs):
        """The checks of a paid course's fields read together. They run even when some fields were refused,
        so that the form shows every error at once; a field refused is left out of them."""
        if not data.get("is_paid"):
            return
        refused = {name for name in self.NAMES if name in original_data and name not in data}
        errors = {}
        for name in ("price", "currency", "vat_rate"):
            if name not in refused and data.get(name) is None:
                errors[name] = [_("Required for a paid course.")]
        if "audience" not in refused and data.get("audience") not in AUDIENCES:
            errors["audience"] = [_("Choose internal, partner or public.")]
        if data.get("price") is not None and data.get("currency"):
            try:
                data["amount"] = read_amount(data["price"], data["currency"]).amount
            except MoneyError as err:
                errors["price"] = [money_message(err, data["currency"])]
        errors.update(self._load_prices(data, original_data))
        errors.update(self._check_plan(data, priced="amount" in data))
        if errors:
            raise ValidationError(errors)

    def _load_prices(self, data: dict, original_data: dict) -> dict[str, list]:
        """The prices in the other accepted currencies (``data["prices"]``: currency → amount, None for one left
        empty), each read in its currency; the offer's own currency has no field of its own."""
        errors: dict[str, list] = {}
        prices: dict[str, int | None] = {}
        for code in self.currencies:
            if code == data.get("currency"):
                continue
            name = price_field(code)
            text = str(original_data.get(name) or "").strip()
            if not text:
                prices[code] = None
                continue
            try:
                prices[code] = read_amount(text[:32], code).amount
            except MoneyError as err:
                errors[name] = [money_message(err, code)]
        data["prices"] = prices
        return errors

    def _check_plan(self, data: dict, *, priced: bool) -> dict[str, list]:
        """Full payment, or a deposit (a share or an amount below the price, at least Stripe's minimum, leaving
        a balance Stripe can charge), a balance due date rule that gives a date to come, and an access rule.
        Loads the terms as `offers.save_offer` stores them."""
        plan = data.get("payment_plan") or PaymentPlan.FULL.value
        if plan not in PaymentPlan.values():
            return {"payment_plan": [_("Choose full payment or a deposit.")]}
        data["payment_plan"] = PaymentPlan(plan)
        if data["payment_plan"] == PaymentPlan.FULL:
            return {}
        errors: dict[str, list] = {}
        for name, check in (("deposit_value", self._load_deposit), ("balance_due", self._load_balance_due),
                            ("deposit_access", self._load_access)):
            try:
                check(data, priced)
            except ValidationError as err:
                field_errors = err.messages if isinstance(err.messages, dict) else {name: err.messages}
                errors.update(field_errors)
        return errors

    def _load_deposit(self, data: dict, priced: bool) -> None:
        kind, value = data.get("deposit_kind") or "percent", data.get("deposit_value")
        if kind not in ("percent", "amount"):
            raise ValidationError({"deposit_kind": [_("Choose a percentage or an amount.")]})
        if not value:
            raise ValidationError({"deposit_value": [_("Enter the deposit.")]})
        if not priced:
            return  # the price is refused: its own message says why
        price = Money(data["amount"], data["currency"])
        if kind == "percent":
            try:
                share = parse_rate(value, locale=current_locale())
            except MoneyError:
                share = 0
            if not 0 < share < 10000:
                raise ValidationError({"deposit_value": [
                    _("Enter a percentage of the price above 0 and below 100, such as 30.")]})
            data["deposit_percent"] = share
            deposit = deposits.deposit_amount_of(price, percent=share)
        else:
            try:
                deposit = read_amount(value, data["currency"], minimum=False)
            except MoneyError as err:
                raise ValidationError({"deposit_value": [money_message(err, data["currency"])]}) from err
            data["deposit_amount"] = deposit.amount
        problem = deposits.check_deposit(price, deposit)
        if problem is not None:
            raise ValidationError({"deposit_value": [_deposit_message(problem, price, deposit)]})
        wrong = {}
        for code, amount in (data.get("prices") or {}).items():  # the same deposit in each other currency
            if amount is None:
                continue
            other = Money(amount, code)
            part = deposits.scaled_deposit(other, price, deposit.amount) if kind == "amount" \
                else deposits.deposit_amount_of(other, percent=data["deposit_percent"])
            problem = deposits.check_deposit(other, part)
            if problem is not None:
                wrong[price_field(code)] = [_deposit_message(problem, other, part)]
        if wrong:
            raise ValidationError(wrong)

    def _load_balance_due(self, data: dict, priced: bool) -> None:
        rule = data.get("balance_due")
        if rule not in BalanceDue.values():
            raise ValidationError({"balance_due": [_("Choose when the balance is due.")]})
        data["balance_due"] = BalanceDue(rule)
        if rule == BalanceDue.DATE:
            day = _read_day(data.get("balance_due_date"))
            if day is None:
                raise ValidationError({"balance_due_date": [_("Enter the date the balance is due, as 2027-03-31.")]})
            if day <= utcnow().date():
                raise ValidationError({"balance_due_date": [_("The balance due date must be after today.")]})
            data["balance_due_date"], data["balance_due_days"] = day, None
            return
        data["balance_due_date"] = None
        days = (data.get("balance_due_days") or "").strip()
        if not days.isascii() or not days.isdigit() or not 0 <= int(days) <= 3650:
            raise ValidationError({"balance_due_days": [_("Enter a number of days from 0 to 3650.")]})
        data["balance_due_days"] = int(days)
        if rule == BalanceDue.AFTER_ENROLLMENT and int(days) == 0:
            raise ValidationError({"balance_due_days": [
                _("A balance due on the day of enrollment is a full payment: enter at least 1 day.")]})
        if rule == BalanceDue.BEFORE_START:
            if self.course_start is None:
                raise ValidationError({"balance_due": [
                    _("This course has no start date: choose a date or a number of days after enrollment.")]})
            if self.course_start - timedelta(days=int(days)) <= utcnow().date():
                raise ValidationError({"balance_due_days": [
                    _("With this course's start date, the balance would be due today or in the past.")]})

    def _load_access(self, data: dict, priced: bool) -> None:
        if data.get("deposit_access") not in DepositAccess.values():
            raise ValidationError({"deposit_access": [_("Choose when the learner gets access to the course.")]})
        data["deposit_access"] = DepositAccess(data["deposit_access"])


def _read_day(text: str | None) -> date | None:
    try:
        return date.fromisoformat((text or "").strip()) if text and len(text.strip()) == 10 else None
    except ValueError:
        return None


def _deposit_message(problem: str, price: Money, deposit: Money) -> str:
    locale = current_locale()
    if problem == "not_below":
        return _("The deposit must be below the price (%(price)s).", price=price.format(locale))
    if problem == "balance":
        return _("The balance left after the deposit must be at least Stripe's minimum of %(limit)s.",
                 limit=minimum_amount(price.currency).format(locale))
    return _("The deposit (%(deposit)s) must be at least Stripe's minimum of %(limit)s.",
             deposit=deposit.format(locale), limit=minimum_amount(price.currency).format(locale))


def price_field(currency: str) -> str:
    """The course form's field of the price in ``currency`` (besides the offer's own): ``price_chf``."""
    return "price_" + currency.lower()


def money_message(err: MoneyError, currency: str) -> str:
    """A translated message for an amount that `money.parse_money` refused (its ``code`` and ``params``)."""
    locale = current_locale()
    params = err.params
    if err.code == "decimals":
        if params.get("digits") == 0:
            return _("%(currency)s has no decimals: enter a whole amount.", currency=currency)
        return ngettext("%(currency)s takes at most %(num)s decimal.", "%(currency)s takes at most %(num)s decimals.",
                        params["digits"], currency=currency)
    if err.code == "minimum":
        return _("Stripe's minimum for %(currency)s is %(limit)s.", currency=currency,
                 limit=params["limit"].format(locale))
    if err.code == "maximum":
        return _("Stripe's maximum for one payment is %(limit)s.", limit=params["limit"].format(locale))
    if err.code == "step":
        return _("%(currency)s amounts are charged in steps of %(step)s, such as %(example)s.", currency=currency,
                 step=params["step"].format(locale), example=format_amount_input(params["example"], locale))
    if err.code == "ambiguous":
        return _readings(_("This amount can be read two ways:"), params.get("readings") or (), locale)
    if err.code == "symbol":
        return _("“%(symbol)s” is not the symbol of %(currency)s.", symbol=params.get("symbol", ""), currency=currency)
    if err.code == "empty":
        return _("Enter an amount.")
    if err.code == "currency":
        return _("Choose a currency Stripe supports, as a three-letter code (EUR, USD, JPY…).")
    example = example_amount(currency, locale)
    if err.code == "syntax" and params.get("suggestions"):
        return _readings(_("Write the amount like %(example)s.", example=example), params["suggestions"], locale)
    return _("Write the amount like %(example)s.", example=example)


def _readings(lead: str, readings, locale: str) -> str:
    shown = [_("%(amount)s (type %(typed)s)", amount=money.format(locale), typed=format_amount_input(money, locale))
             for money in readings]
    if not shown:
        return lead
    return " ".join([lead, _(" or ").join(shown) + "."]) if len(shown) > 1 else \
        " ".join([lead, _("did you mean %(reading)s?", reading=shown[0])])


def all_errors(messages: dict | list, order: tuple[str, ...] = ()) -> dict[str, str]:
    """Marshmallow's error dict as one line per field holding each of its messages, for forms that show
    every error at once (errors not tied to a field under "_schema"), the fields in the form's ``order``."""
    out = {}
    for name, value in (messages.items() if isinstance(messages, dict) else [("_schema", messages)]):
        out[name] = " ".join(str(message) for message in _flat(value))
    return in_order(out, order)


def in_order(errors: dict[str, str], order: tuple[str, ...]) -> dict[str, str]:
    """The errors in the order of the form's fields (the others last), as its summary lists them."""
    rank = {name: index for index, name in enumerate(order)}
    return dict(sorted(errors.items(), key=lambda item: rank.get(item[0], len(rank))))


def _flat(value) -> list:
    if isinstance(value, dict):
        return [message for item in value.values() for message in _flat(item)]
    if isinstance(value, (list, tuple)):
        return [message for item in value for message in _flat(item)]
    return [value]


def first_errors(messages: dict | list) -> dict[str, str]:
    """Marshmallow's error dict reduced to one message per field, for forms (errors not tied to a field,
    which marshmallow gives as a list, under "_schema")."""
    out = {}
    for name, value in (messages.items() if isinstance(messages, dict) else [("_schema", messages)]):
        while isinstance(value, (list, dict)):
            value = next(iter(value.values() if isinstance(value, dict) else value), "")
        out[name] = str(value)
    return out
