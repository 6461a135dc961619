"""The forms of payment links: an administrator's new link, and a payer's amount, name and e-mail address on the
link's page. Every amount is read in the reader's locale by `money.parse_money`; every error is reported on its
field, all at once. The service checks the same again (`billing.payment_links`), and the tables' constraints
refuse what slips past both."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from werkzeug.datastructures import MultiDict

from .. import messages
from ..billing.payment_links import MAX_NAME, MAX_PURPOSE, MAX_TITLE, MAX_USES, LinkInput, LinkRefused, check_amount
from ..core import schools
from ..core.i18n import current_locale, gettext as _
from ..core.models import PaymentLink, utcnow
from ..money import MoneyError, normalize_currency, parse_rate
from .forms import money_message, read_amount

KINDS = ("fixed", "free")


@dataclass
class LinkForm:
    data: LinkInput | None = None
    errors: dict[str, str] = field(default_factory=dict)


def read_link(form: MultiDict, host) -> LinkForm:
    """Read the new-link form; ``errors`` maps each field at fault to its message."""
    errors: dict[str, str] = {}
    title = _text(form, "title", MAX_TITLE, errors, required=_("Enter a title."))
    purpose = _text(form, "purpose", MAX_PURPOSE, errors, required=_("Say what the payment is for."), lines=True)
    currency = _currency(form, errors)
    kind = form.get("kind") if form.get("kind") in KINDS else "fixed"
    amounts = {name: _amount(form, name, currency, errors) for name in
               (("amount",) if kind == "fixed" else ("minimum", "maximum"))}
    least, most = amounts.get("minimum"), amounts.get("maximum")
    if least is not None and most is not None and least > most:
        errors["maximum"] = _("The maximum must be at least the minimum.")
    topup = form.get("topup") in ("on", "1", "true")
    rate = _rate(form, errors) if not topup else 0  # a top-up carries no VAT (the course it pays does)
    learner = (form.get("learner") or "").strip()[:64] or None
    if learner is not None and schools.member(host, learner) is None:
        errors["learner"] = _("Enter the id of a learner of the LMS.")
    max_uses = _uses(form, errors)
    expires_on = _day(form, "expires_on", errors)
    if errors or title is None or purpose is None or rate is None:
        return LinkForm(errors=errors)
    return LinkForm(LinkInput(title=title, purpose=purpose, currency=currency, vat_rate=rate, user_id=learner,
                              max_uses=max_uses, expires_on=expires_on, topup=topup, **amounts))


def _text(form: MultiDict, name: str, limit: int, errors: dict, *, required: str, lines: bool = False) -> str | None:
    value = (form.get(name) or "").strip()
    allowed = "\r\n\t" if lines else ""
    if not value:
        errors[name] = required
    elif len(value) > limit:
        errors[name] = _("At most %(n)s characters.", n=limit)
    elif any(ord(c) < 32 and c not in allowed for c in value):
        errors[name] = _("Remove the control characters.")
    else:
        return value
    return None


def _currency(form: MultiDict, errors: dict) -> str:
    try:
        return normalize_currency((form.get("currency") or "")[:8])
    except MoneyError:
        errors["currency"] = _("Choose a currency Stripe supports, as a three-letter code (EUR, USD, JPY…).")
        return ""


def _amount(form: MultiDict, name: str, currency: str, errors: dict) -> int | None:
    typed = (form.get(name) or "").strip()[:32]
    if not currency:
        return None
    try:
        return read_amount(typed, currency).amount
    except MoneyError as err:
        errors[name] = money_message(err, currency)
        return None


def _rate(form: MultiDict, errors: dict) -> int | None:
    try:
        return parse_rate((form.get("vat_rate") or "").strip()[:16], locale=current_locale())
    except MoneyError:
        errors["vat_rate"] = _("Enter a VAT rate between 0 and 100, 0 if none applies.")
        return None


def _uses(form: MultiDict, errors: dict) -> int | None:
    typed = (form.get("max_uses") or "").strip()[:16]
    if not typed:
        return None
    if not typed.isascii() or not typed.isdigit() or not 1 <= int(typed) <= MAX_USES:
        errors["max_uses"] = _("Enter a number of uses from 1 to %(n)s, or leave it empty.", n=MAX_USES)
        return None
    return int(typed)


def _day(form: MultiDict, name: str, errors: dict) -> date | None:
    raw = (form.get(name) or "").strip()[:16]
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        errors[name] = _("Choose a date.")
        return None
    if day < utcnow().date():
        errors[name] = _("The end date is in the past.")
        return None
    return day


@dataclass
class PayerForm:
    amount: int | None = None
    name: str = ""
    email: str = ""
    errors: dict[str, str] = field(default_factory=dict)


def read_payer(form: MultiDict, link: PaymentLink, *, signed_in: bool) -> PayerForm:
    """Read a payer's form on a link's page: the amount (a free amount only; typed in the payer's locale, within
    the link's limits) and, from someone not signed in, a name and an e-mail address."""
    result = PayerForm()
    if link.amount is not None:
        result.amount = link.amount
    else:
        result.amount = _payer_amount(form, link, result.errors)
    if not signed_in:
        result.name = _text(form, "name", MAX_NAME, result.errors, required=_("Enter your name.")) or ""
        result.email = _email(form, result.errors)
    return result


def _payer_amount(form: MultiDict, link: PaymentLink, errors: dict) -> int | None:
    try:
        amount = read_amount((form.get("amount") or "").strip()[:32], link.currency).amount
        check_amount(link, amount)
    except MoneyError as err:
        errors["amount"] = money_message(err, link.currency)
        return None
    except LinkRefused as err:
        errors["amount"] = err.message
        return None
    return amount


def _email(form: MultiDict, errors: dict) -> str:
    typed = (form.get("email") or "").strip()
    if not typed:
        errors["email"] = _("Enter your e-mail address: the invoice is sent to it.")
        return ""
    try:
        return messages.check_email(typed)
    except messages.InvalidRecipient:
        errors["email"] = _("Enter an e-mail address such as name@example.org.")
        return ""
