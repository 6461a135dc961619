"""The administrators' forms of billing: a new invoice (a learner, a currency, a due date, lines) and a
payment request. Every amount is read in the administrator's locale by `money.parse_money`; every error is
reported on its field, all at once."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from werkzeug.datastructures import MultiDict

from ..billing.issuing import MAX_LINES, LineInput
from ..billing.requests import RequestInput
from ..billing.settlements import SettlementInput
from ..core import schools
from ..core.i18n import current_locale, gettext as _, normalize_locale
from ..core.models import parse_row_id, utcnow
from ..money import MoneyError, normalize_currency, parse_rate
from .forms import money_message, read_amount

#: Rows of lines the new-invoice form offers.
LINE_ROWS = 5


@dataclass
class InvoiceForm:
    user: object | None = None
    currency: str = ""
    due: date | None = None
    lines: list[LineInput] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def read_invoice(form: MultiDict, host) -> InvoiceForm:
    """Read the new-invoice form; ``errors`` maps each field at fault to its message."""
    result = InvoiceForm()
    learner = (form.get("learner") or "").strip()[:64]
    result.user = schools.member(host, learner) if learner else None
    if result.user is None:
        result.errors["learner"] = _("Enter the id of a learner of the LMS.")
    try:
        result.currency = normalize_currency(form.get("currency") or "")
    except MoneyError:
        result.errors["currency"] = _("Choose a currency Stripe supports, as a three-letter code (EUR, USD, JPY…).")
    result.due = _day(form, "due", result.errors)
    if result.due is not None and result.due < utcnow().date():
        result.errors["due"] = _("The due date is in the past.")
    rows = range(1, min(LINE_ROWS, MAX_LINES) + 1)
    for row in rows:
        line = _line(form, row, result, host)
        if line is not None:
            result.lines.append(line)
    # Only when no line was filled in: a line whose amount waits for a valid currency is not missing.
    if not any(_typed(form, row) for row in rows):
        result.errors["line-1-description"] = _("Add at least one line.")
    return result


def _typed(form: MultiDict, row: int) -> bool:
    return any((form.get(f"line-{row}-{name}") or "").strip() for name in ("course", "description", "amount"))


def _line(form: MultiDict, row: int, result: InvoiceForm, host) -> LineInput | None:
    name = f"line-{row}-"
    if not _typed(form, row):
        return None
    course_id = (form.get(name + "course") or "").strip()[:64] or None
    description = (form.get(name + "description") or "").strip()[:500]
    typed = (form.get(name + "amount") or "").strip()[:32]
    course = host.get_course(course_id) if course_id else None
    if course is not None and not schools.owns_course(host, course):  # another school's: not one of ours
        course = None
    if course_id and course is None:
        result.errors[name + "course"] = _("No course of the LMS has this id.")
    description = description or (host.course_title(course) if course is not None else "")
    if not description:
        result.errors[name + "description"] = _("Describe the line, or choose a course.")
    gross = _amount(typed, result.currency, name + "amount", result.errors)
    rate = _rate(form.get(name + "vat_rate") or "", name + "vat_rate", result.errors)
    if gross is None or rate is None or name + "course" in result.errors or not description:
        return None
    return LineInput(description=description, gross=gross, vat_rate=rate, course_id=course_id)


def _amount(typed: str, currency: str, name: str, errors: dict) -> int | None:
    if not currency:
        return None
    try:
        return read_amount(typed, currency, minimum=False).amount
    except MoneyError as err:
        errors[name] = money_message(err, currency)
        return None


def _rate(typed: str, name: str, errors: dict) -> int | None:
    try:
        return parse_rate(typed.strip()[:16], locale=current_locale())
    except MoneyError:
        errors[name] = _("Enter a VAT rate between 0 and 100, 0 if none applies.")
        return None


def _day(form: MultiDict, name: str, errors: dict) -> date | None:
    raw = (form.get(name) or "").strip()
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[name] = _("Choose a date.")
        return None


def default_due(days: int = 30) -> date:
    return utcnow().date() + timedelta(days=days)


@dataclass
class RequestForm:
    data: RequestInput | None = None
    errors: dict[str, str] = field(default_factory=dict)


def read_request(form: MultiDict, currency: str) -> RequestForm:
    """Read the payment request form: amount, due date, message, channels, language."""
    errors: dict[str, str] = {}
    amount = _amount((form.get("amount") or "").strip()[:32], currency, "amount", errors)
    due = _day(form, "due", errors)
    message = (form.get("message") or "").strip()
    if any(ord(c) < 32 and c not in "\r\n\t" for c in message):
        errors["message"] = _("Remove the control characters.")
    email, sms = bool(form.get("email")), bool(form.get("sms"))
    if errors:  # the checks the service makes of the rest, so that every error is shown at once
        if due is not None and due < utcnow().date():
            errors["due"] = _("The due date is in the past.")
        if not (email or sms):
            errors["channels"] = _("Choose how to send the request: e-mail, SMS or both.")
    if errors or amount is None or due is None:
        return RequestForm(errors=errors)
    return RequestForm(RequestInput(amount=amount, due=due, message=message or None, email=email, sms=sms,
                                    locale=normalize_locale(form.get("locale") or current_locale())))


#: More boxes than this in one form is not a form of ours.
MAX_CHOSEN = 100


def chosen_invoices(form: MultiDict) -> list[int] | None:
    """The invoice ids of the boxes ticked (``invoice``), or None when they cannot be ours."""
    raw = form.getlist("invoice")
    if len(raw) > MAX_CHOSEN:
        return None
    ids = [parse_row_id(value) for value in raw]
    return None if any(value is None for value in ids) else [value for value in ids if value is not None]


@dataclass
class SettlementForm:
    invoice_ids: list[int] = field(default_factory=list)
    data: SettlementInput | None = None
    errors: dict[str, str] = field(default_factory=dict)


def read_settlement(form: MultiDict) -> SettlementForm:
    """Read an administrator's request for several invoices: the invoices ticked, due date, message, channels,
    language (each invoice's part is what it owes: no amount is typed)."""
    errors: dict[str, str] = {}
    ids = chosen_invoices(form)
    if ids is None:
        errors["invoices"] = _("The invoices chosen could not be read: reload the page.")
    elif len(ids) < 2:
        errors["invoices"] = _("Choose at least two invoices to pay them together.")
    due = _day(form, "due", errors)
    if due is not None and due < utcnow().date():
        errors["due"] = _("The due date is in the past.")
    message = (form.get("message") or "").strip()
    if any(ord(c) < 32 and c not in "\r\n\t" for c in message):
        errors["message"] = _("Remove the control characters.")
    email, sms = bool(form.get("email")), bool(form.get("sms"))
    if not (email or sms):
        errors["channels"] = _("Choose how to send the request: e-mail, SMS or both.")
    if errors or due is None or ids is None:
        return SettlementForm(invoice_ids=ids or [], errors=errors)
    return SettlementForm(ids, SettlementInput(due=due, message=message or None, email=email, sms=sms,
                                               locale=normalize_locale(form.get("locale") or current_locale())))
