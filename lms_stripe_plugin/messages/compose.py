"""The messages of a payment request, in the learner's language: the e-mail (subject, text, HTML) and the SMS.

Built from plain values, so that whoever sends a request or a reminder composes it without a request
context of the learner's. The words are translated here, in the recipient's locale (not the current
request's: an administrator's click in French may write to a learner in English); the templates
``lms_stripe/messages/payment_request.txt`` and ``.html`` only lay them out, and a host may override them.
Amounts are formatted by `Money.format`, dates by Babel, both in that locale.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import date

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from flask import current_app

from ..core.i18n import gettext, in_locale
from ..money import Money
from .addresses import check_header
from .errors import InvalidMessage
from .segments import shorten, sms_text

TEXT_TEMPLATE = "lms_stripe/messages/payment_request.txt"
HTML_TEMPLATE = "lms_stripe/messages/payment_request.html"
#: The school's name in an SMS is cut to this length: its room goes to the amount, the date and the link.
SMS_SCHOOL_MAX = 30
_LINK = re.compile(r"https?://[^\s<>\"'\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class _Words:
    """The sentences of the e-mail, translated; what the templates lay out."""

    locale: str
    subject: str
    greeting: str
    lead: str
    invoice: str
    note_heading: str
    note: str
    pay_label: str
    pay_text: str
    link_hint: str
    link: str
    ignore: str
    overdue: bool


def payment_request_email(*, locale: str, school_name: str, learner_name: str, amount: Money, due: date,
                          link: str, invoice_number: str | None, message: str | None = None,
                          reminder: bool = False, overdue: bool = False, invoices: int = 1,
                          topup: bool = False) -> tuple[str, str, str]:
    """``(subject, text, html)`` of the e-mail that asks a learner to pay (or reminds them to).

    ``message`` is the school's own note (plain text, escaped in the HTML); ``reminder`` says "this is a
    reminder", ``overdue`` (which wins over it) that the due date has passed; ``invoices`` how many invoices
    ``invoice_number`` names (a settlement's, comma-separated); ``topup``: what is paid tops up the learner's
    prepaid balance (no invoice). Needs an app context (the templates are the app's, so a host may override
    them).
    """
    words = _email_words(locale, _school(school_name), _line(learner_name), amount, due, _checked_link(link),
                         _line(invoice_number or ""), _note(message), reminder, overdue, invoices, topup)
    env = current_app.jinja_env
    text = env.get_template(TEXT_TEMPLATE).render(**asdict(words))
    html = env.get_template(HTML_TEMPLATE).render(**asdict(words))
    return words.subject, re.sub(r"\n{3,}", "\n\n", text).strip() + "\n", html


def _email_words(locale: str, school: str, learner: str, amount: Money, due: date, link: str, number: str,
                 note: str, reminder: bool, overdue: bool, invoices: int = 1, topup: bool = False) -> _Words:
    _ = in_locale(locale).gettext
    ngettext = in_locale(locale).ngettext
    where = _babel_locale(locale)
    values = {"school": school, "amount": amount.format(where), "due": format_date(due, "long", locale=where)}
    if overdue:
        subject = _("Overdue: %(amount)s to pay to %(school)s (due on %(due)s)", **values)
        lead = _("Your payment of %(amount)s to %(school)s was due on %(due)s and is overdue. Please pay it as "
                 "soon as you can.", **values)
    elif reminder:
        subject = _("Reminder from %(school)s: %(amount)s to pay by %(due)s", **values)
        lead = _("This is a reminder: %(school)s asks you to pay %(amount)s by %(due)s.", **values)
    else:
        subject = _("%(school)s asks you to pay %(amount)s by %(due)s", **values)
        lead = _("%(school)s asks you to pay %(amount)s by %(due)s.", **values)
    return _Words(
        locale=in_locale(locale).locale, subject=check_header(subject), lead=lead,
        greeting=_("Hello %(name)s,", name=learner) if learner else _("Hello,"),
        invoice=_("It tops up your prepaid balance, which pays for your courses.") if topup else
        ngettext("Invoice: %(number)s", "Invoices: %(number)s", invoices, number=number) if number else "",
        note_heading=_("Message from %(school)s:", school=school) if note else "", note=note,
        pay_label=_("Pay online"), pay_text=_("Pay online: %(link)s", link=link),
        link_hint=_("If the button does not work, open this address:"), link=link,
        ignore=_("If you have paid already, please ignore this message.") if reminder or overdue else "",
        overdue=overdue,
    )


def payment_request_sms(*, locale: str, school_name: str, amount: Money, due: date, link: str,
                        invoice_number: str | None = None, message: str | None = None, reminder: bool = False,
                        overdue: bool = False, invoices: int = 1, topup: bool = False) -> str:
    """The SMS that asks a learner to pay (or reminds them to), in one part where it can be.

    The amount, the due date and the link are always whole; the school's note, then the invoice number, are
    shortened or left out to keep the SMS in one part (see `segments.sms_text`); the school's name is cut
    to `SMS_SCHOOL_MAX` characters.
    """
    _ = in_locale(locale).gettext
    where = _babel_locale(locale)
    if overdue:
        template = _("%(school)s: %(amount)s was due on %(due)s and is overdue. %(invoice)s %(note)s Pay: %(link)s")
    elif reminder:
        template = _("Reminder from %(school)s: %(amount)s to pay by %(due)s. %(invoice)s %(note)s Pay: %(link)s")
    else:
        template = _("%(school)s: %(amount)s to pay by %(due)s. %(invoice)s %(note)s Pay: %(link)s")
    number = _line(invoice_number or "")
    note = _note(message)
    fixed = {"school": shorten(_school(school_name), SMS_SCHOOL_MAX), "amount": amount.format(where),
             "due": format_date(due, "medium", locale=where), "link": _checked_link(link)}
    what = _("Top-up of your balance.") if topup else in_locale(locale).ngettext(
        "Invoice %(number)s.", "Invoices %(number)s.", invoices, number=number) if number else ""
    optional = [("note", note if not note or note[-1] in ".!?…" else note + "."), ("invoice", what)]
    return sms_text(template, fixed=fixed, optional=optional)


def payment_on_balance_email(*, locale: str, school_name: str, learner_name: str, amount: Money,
                             invoice_number: str, why: str, remaining: Money) -> tuple[str, str]:
    """``(subject, text)`` of the e-mail that tells a learner their payment went on their prepaid balance, since
    the invoice it was for no longer owed it: ``why`` is "paid" (paid in the meantime), "closed" (voided) or
    "less" (owing only ``remaining`` now)."""
    _ = in_locale(locale).gettext
    where = _babel_locale(locale)
    values = {"school": _school(school_name), "amount": amount.format(where), "number": _line(invoice_number),
              "remaining": remaining.format(where)}
    cause = {"paid": _("Your payment of %(amount)s could not be credited to invoice %(number)s: the invoice was paid "
                       "in the meantime.", **values),
             "closed": _("Your payment of %(amount)s could not be credited to invoice %(number)s: the invoice was "
                         "cancelled.", **values)}.get(why) or _(
        "Your payment of %(amount)s could not be credited to invoice %(number)s: only %(remaining)s remained to be "
        "paid on it.", **values)
    learner = _line(learner_name)
    lines = [_("Hello %(name)s,", name=learner) if learner else _("Hello,"), "", cause, "",
             _("%(school)s has put it on your prepaid balance, which pays your next invoices. To have it refunded "
               "instead, please contact %(school)s.", **values)]
    return check_header(_("%(school)s: your payment of %(amount)s is on your balance", **values)), \
        "\n".join(lines) + "\n"


def _babel_locale(locale: str) -> str:
    """The locale of the formats: the learner's ("fr_CA", "en_GB") when the message is in its language,
    else the language the message is written in (a German learner reads English, with English dates)."""
    language = in_locale(locale).locale
    try:
        parsed = Locale.parse((locale or "").replace("-", "_"))
    except (ValueError, TypeError, UnknownLocaleError):
        return language
    return str(parsed) if parsed.language == language else language


def _school(name: str) -> str:
    school = _line(name)
    if not school:
        raise InvalidMessage(gettext("Messages to learners need the school's name: enter it in the payment settings."),
                             code="school_name")
    return school


def _line(value: str | None) -> str:
    """One line of text: a name or a number, whatever white space it was typed with."""
    return " ".join((value or "").split())


def _note(message: str | None) -> str:
    """The school's note: its lines kept, control characters and trailing spaces dropped."""
    lines = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", "", (message or "").replace("\r\n", "\n")).split("\n")
    return "\n".join(line.rstrip() for line in lines).strip()


def _checked_link(link: str) -> str:
    if not _LINK.fullmatch(link or ""):
        raise InvalidMessage("The payment link must be an http(s) address without spaces.", code="link")
    return link
