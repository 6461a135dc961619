"""The audit log as people read it: who did what, in a sentence of the reader's language, with names instead
of ids, amounts and rates formatted for the reader, and the system's own actions said as such.

An entry keeps its facts as JSON (`core.audit.record`); the words are chosen here, when it is read, so that
each reader gets their language and the names the LMS knows now.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from babel.dates import format_datetime, get_timezone
from flask import current_app
from sqlalchemy import select

from ..core import audit
from ..core.enums import AuditAction
from ..core.i18n import current_locale, gettext as _, ngettext
from ..core.models import AuditEntry, Invoice, Purchase
from ..money import Money, MoneyError, format_rate
from ..refunds.lifecycle import failure_text


@dataclass(frozen=True)
class Line:
    """One entry as read: when (in the reader's locale and the school's time zone), who, what happened."""

    entry: AuditEntry
    when: str
    who: str
    what: str
    system: bool  # done by Stripe or by the plugin itself, not by a person
    details: dict = field(default_factory=dict)


#: Who acted when no person did, by where the work ran (`core.audit.acting`).
def _origin(via: str | None) -> str:
    return {
        audit.VIA_STRIPE: _("Stripe"),
        audit.VIA_SCHEDULE: _("Scheduled task"),
        audit.VIA_COMMAND: _("Command line"),
        audit.VIA_SETUP: _("Set-up (no one signed in)"),
    }.get(via or "", _("The payments plugin"))


def time_zone() -> str:
    """The time zone the school reads times in (``LMS_STRIPE_TIMEZONE``, UTC by default)."""
    return current_app.config.get("LMS_STRIPE_TIMEZONE") or "UTC"


def when(moment: datetime) -> str:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
    return format_datetime(aware, format="medium", tzinfo=get_timezone(time_zone()), locale=current_locale())


class _Context:
    """What the sentences of one page need, read once: names, titles, invoice numbers, currencies."""

    def __init__(self, session, host, entries: list[AuditEntry], rows: list[dict]):
        self.host = host
        purchase_ids = {e.purchase_id for e in entries if e.purchase_id}
        self.purchases = {p.id: p for p in session.scalars(select(Purchase).where(Purchase.id.in_(purchase_ids)))} \
            if purchase_ids else {}
        invoice_ids = {d["invoice"] for d in rows if isinstance(d.get("invoice"), int)}
        self.invoices = {i.id: i for i in session.scalars(select(Invoice).where(Invoice.id.in_(invoice_ids)))} \
            if invoice_ids else {}
        people = {e.actor_id for e in entries} | {e.user_id for e in entries} | \
            {p.user_id for p in self.purchases.values()}
        self.names = {uid: self._name(uid) for uid in filter(None, people)}
        courses = {e.course_id for e in entries} | {p.course_id for p in self.purchases.values()}
        self.titles = {cid: self._title(cid) for cid in filter(None, courses)}

    def _name(self, user_id: str) -> str:
        user = self.host.get_user(user_id)
        return self.host.user_display_name(user) if user is not None else _("learner %(id)s", id=user_id)

    def _title(self, course_id: str) -> str:
        course = self.host.get_course(course_id)
        return _("“%(title)s”", title=self.host.course_title(course)) if course is not None else \
            _("course %(id)s", id=course_id)


def lines(session, host, entries: list[AuditEntry]) -> list[Line]:
    """The entries as sentences, in the reader's language."""
    rows = [audit.details(e) for e in entries]
    context = _Context(session, host, entries, rows)
    out = []
    for entry, details in zip(entries, rows):
        via = audit.via(entry)
        system = entry.actor_id is None
        who = context.names.get(entry.actor_id or "", entry.actor_id or "") if not system else _origin(via)
        out.append(Line(entry, when(entry.created_at), who, _sentence(entry, details, context), system, details))
    return out


def _sentence(entry: AuditEntry, details: dict, context: _Context) -> str:
    values = _values(entry, details, context)
    build = _SENTENCES.get(entry.action) if isinstance(entry.action, AuditAction) else None
    if build is None:
        return str(entry.action)
    try:
        return build(values, details)
    except (KeyError, ValueError, TypeError):  # an entry written by another version: its label
        return getattr(entry.action, "label", str(entry.action))


def _values(entry: AuditEntry, details: dict, context: _Context) -> dict[str, Any]:
    purchase = context.purchases.get(entry.purchase_id or 0)
    invoice = context.invoices.get(details.get("invoice")) if isinstance(details.get("invoice"), int) else None
    currency = details.get("currency") or (purchase.currency if purchase else None) or \
        (invoice.currency if invoice else None)
    learner = entry.user_id or (purchase.user_id if purchase else None)
    course = entry.course_id or (purchase.course_id if purchase else None)
    return {
        "learner": context.names.get(learner or "", _("a learner")),
        "course": context.titles.get(course or "", _("a course")),
        "amount": _money(details.get("amount"), currency),
        "number": details.get("number") or (invoice.number if invoice and invoice.number else None)
        or (_("#%(id)s", id=details["invoice"]) if isinstance(details.get("invoice"), int) else ""),
        "reason": details.get("reason") or details.get("error") or _("no reason given"),
        "currency": currency,
    }


def _money(amount, currency) -> str:
    if amount is None or not currency:
        return _("an amount")
    try:
        return Money(int(amount), str(currency)).format(current_locale())
    except (MoneyError, ValueError, TypeError):
        return str(amount)


def _pricing(v: dict, d: dict) -> str:
    if not d.get("paid"):
        return _("%(course)s is now free.", course=v["course"])
    rate = format_rate(int(d.get("vat_rate") or 0), current_locale())
    if d.get("on_sale") is False:
        return _("%(course)s is priced at %(amount)s including %(rate)s VAT, not on sale.", course=v["course"],
                 amount=v["amount"], rate=rate) + _deposit_pricing(v, d)
    return _("%(course)s is now sold at %(amount)s including %(rate)s VAT.", course=v["course"], amount=v["amount"],
             rate=rate) + _deposit_pricing(v, d)


def _settings(v: dict, d: dict) -> str:
    fields = d.get("fields") or []
    if not fields and d.get("reencrypted"):
        return _("The stored Stripe secrets were encrypted again with the first key.")
    return ngettext("Payment settings changed: %(num)d field (%(fields)s).",
                    "Payment settings changed: %(num)d fields (%(fields)s).", len(fields),
                    fields=", ".join(str(f).replace("_", " ") for f in fields))


def _requested(v: dict, d: dict) -> str:
    if d.get("settlement"):
        return _settlement_requested(v, d)
    if d.get("topup"):
        channels = [{"email": _("e-mail"), "sms": _("SMS")}.get(c, c) for c in d.get("channels") or []]
        return _("%(learner)s was asked to top up their balance by %(amount)s, by %(channels)s.", amount=v["amount"],
                 learner=v["learner"], channels=_(" and ").join(channels) or _("no channel"))
    if d.get("by_learner"):
        return _("%(learner)s chose to pay %(amount)s of invoice %(number)s from My payments.", amount=v["amount"],
                 learner=v["learner"], number=v["number"])
    channels = [{"email": _("e-mail"), "sms": _("SMS")}.get(c, c) for c in d.get("channels") or []]
    return _("%(amount)s asked of %(learner)s on invoice %(number)s, by %(channels)s.", amount=v["amount"],
             learner=v["learner"], number=v["number"], channels=_(" and ").join(channels) or _("no channel"))


def _settlement_requested(v: dict, d: dict) -> str:
    """One invoice of several asked in one payment (each invoice's history has its own entry)."""
    others = ", ".join(str(number) for number in d.get("with_invoices") or [])
    if d.get("by_learner"):
        return _("%(learner)s chose to pay %(amount)s of invoice %(number)s from My payments, in one payment with "
                 "invoices %(others)s.", amount=v["amount"], learner=v["learner"], number=v["number"], others=others)
    channels = [{"email": _("e-mail"), "sms": _("SMS")}.get(c, c) for c in d.get("channels") or []]
    return _("%(amount)s asked of %(learner)s on invoice %(number)s, in one payment with invoices %(others)s, by "
             "%(channels)s.", amount=v["amount"], learner=v["learner"], number=v["number"], others=others,
             channels=_(" and ").join(channels) or _("no channel"))


def _refund_requested(v: dict, d: dict) -> str:
    if d.get("origin") == "dashboard":
        return _("A refund of %(amount)s to %(learner)s for %(course)s was made in the Stripe Dashboard.", **v)
    if d.get("full"):
        said = _("Cancellation of %(learner)s's purchase of %(course)s: %(amount)s to refund.", **v)
    else:
        said = _("A refund of %(amount)s to %(learner)s for %(course)s was requested.", **v)
    if d.get("to_balance"):
        said += " " + _("%(part)s of it goes back to their prepaid balance.",
                        part=_money(d.get("to_balance"), v["currency"]))
    return said


def _deposit_pricing(v: dict, d: dict) -> str:
    """The deposit terms of a course's offer, as one clause (empty for full payment)."""
    if d.get("payment_plan") != "deposit":
        return ""
    if d.get("deposit_percent"):
        share = format_rate(int(d["deposit_percent"]), current_locale()) + " %"
    else:
        share = _money(d.get("deposit_amount"), d.get("currency"))
    return " " + _("A deposit of %(share)s is taken at enrollment.", share=share)


def _reminded(v: dict, step: int) -> str:
    if step < 0:
        return ngettext("%(learner)s was reminded of invoice %(number)s, %(num)d day before its due date.",
                        "%(learner)s was reminded of invoice %(number)s, %(num)d days before its due date.",
                        -step, **v)
    if step == 0:
        return _("%(learner)s was reminded of invoice %(number)s on its due date.", **v)
    return ngettext("%(learner)s was reminded of invoice %(number)s, %(num)d day after its due date.",
                    "%(learner)s was reminded of invoice %(number)s, %(num)d days after its due date.", step, **v)


def _link(v: dict, d: dict) -> dict[str, str]:
    return {"title": _("“%(title)s”", title=d.get("title") or ""), "payer": d.get("payer") or v["learner"], **v}


def _issued(v: dict, d: dict) -> str:
    if d.get("link") is not None:
        return _("Invoice %(number)s was issued to %(payer)s for the payment link %(title)s.", **_link(v, d))
    return _("Invoice %(number)s was issued to %(learner)s for %(course)s.", **v)


def _link_created(v: dict, d: dict) -> str:
    if d.get("amount") is None:
        v = {**v, "amount": _("%(min)s to %(max)s", min=_money(d.get("minimum"), d.get("currency")),
                                                   max=_money(d.get("maximum"), d.get("currency")))}
    if d.get("topup"):
        return _("The payment link %(title)s was created for %(learner)s to top up their balance, for %(amount)s.",
                 **_link(v, d))
    return _("The payment link %(title)s was created, for %(amount)s.", **_link(v, d))


def _returned(v: dict, d: dict) -> str:
    """Money Stripe put back on a learner's balance."""
    if d.get("kind") == "unapplied":
        return _("Invoice %(number)s was voided: the %(amount)s of the balance of %(learner)s it had used went back "
                 "to that balance.", **v)
    if d.get("kind") == "overpaid":
        return _("%(amount)s paid beyond invoice %(number)s went to the balance of %(learner)s.", **v)
    return _("The credit note of invoice %(number)s credited %(amount)s back to the balance of %(learner)s.", **v)


def _topped_up(v: dict, d: dict) -> str:
    if d.get("deposit"):
        return _("The deposit of %(amount)s paid by %(learner)s for %(course)s went to their balance: its invoice "
                 "%(number)s no longer owed it.", **v)
    if d.get("refused"):
        return _("%(amount)s paid by %(learner)s for invoice %(number)s went to their balance: the invoice no longer "
                 "owed it.", **v)
    if d.get("request") is not None:
        return _("%(learner)s topped up their balance with %(amount)s, as a payment request asked.", **v)
    if d.get("link") is not None:
        return _("%(learner)s topped up their balance with %(amount)s through the payment link %(title)s.",
                 **_link(v, d))
    return _("%(learner)s topped up their balance with %(amount)s.", **v)


def _topup_refunded(v: dict, d: dict) -> str:
    if not d.get("outside"):
        return _("A top-up of %(amount)s was refunded to %(learner)s.", **v)
    if d.get("spent"):
        return _("%(amount)s of a top-up of %(learner)s was refunded in the Stripe Dashboard and taken off their "
                 "balance; %(spent)s of it was spent already, which their balance could not give back.",
                 spent=_money(d.get("spent"), v.get("currency")), **v)
    return _("%(amount)s of a top-up of %(learner)s was refunded in the Stripe Dashboard and taken off their "
             "balance.", **v)


def _topup_refund_failed(v: dict, d: dict) -> str:
    given, why = d.get("given_back") or 0, failure_text(d.get("error"))
    if given and given == d.get("amount"):
        return _("The refund of %(amount)s of a top-up of %(learner)s failed: it is back on their balance. "
                 "%(why)s", why=why, **v)
    if given:
        return _("The refund of %(amount)s of a top-up of %(learner)s failed: the %(given)s it took off their "
                 "balance is back on it (the rest had been spent). %(why)s",
                 given=_money(given, v.get("currency")), why=why, **v)
    return _("The refund of %(amount)s of a top-up of %(learner)s failed. It had taken nothing off their balance "
             "(all of it had been spent): the school keeps the money. %(why)s", why=why, **v)


def _credited_attached(v: dict, d: dict) -> str:
    if d.get("refunded"):
        return _("%(amount)s of %(learner)s, put on their balance since its invoice no longer owed it, then refunded "
                 "from the balance page, was attached to invoice %(number)s in Stripe: check that invoice's payment in "
                 "the Stripe Dashboard.", **v)
    if d.get("taken") is None:  # written before such a payment was taken off the balance
        return _("%(amount)s of %(learner)s, put on their balance since its invoice no longer owed it, was then "
                 "attached to invoice %(number)s in Stripe: it counts on both. Debit their balance by it, or refund "
                 "it on the invoice.", **v)
    if not d.get("spent"):
        return _("%(amount)s of %(learner)s, put on their balance since its invoice no longer owed it, was then "
                 "attached to invoice %(number)s in Stripe, which it pays: it was taken off their balance.", **v)
    return _("%(amount)s of %(learner)s, put on their balance since its invoice no longer owed it, was then attached "
             "to invoice %(number)s in Stripe, which it pays: %(taken)s of it was taken off their balance; %(spent)s "
             "had been spent already, and counts twice: refund it on the invoice, or ask the learner for it.",
             taken=_money(d.get("taken"), v.get("currency")), spent=_money(d.get("spent"), v.get("currency")), **v)


def _dispute_opened(v: dict, d: dict) -> str:
    if d.get("topup") is not None:
        return _("%(learner)s disputed their top-up of %(amount)s, which is still on their balance: a dispute lost "
                 "takes the money back.", **v)
    if d.get("request") or d.get("link"):
        return _("%(learner)s disputed their payment of %(amount)s for invoice %(number)s.", **v)
    return _("%(learner)s disputed the payment of %(amount)s for %(course)s.", **v)


def _dispute_updated(v: dict, d: dict) -> str:
    status = d.get("status", "")
    if d.get("topup") is not None:
        return _("The dispute of %(learner)s of their top-up of %(amount)s is now: %(status)s.", status=status, **v)
    if d.get("request") or d.get("link"):
        return _("The dispute of %(learner)s of their payment for invoice %(number)s is now: %(status)s.",
                 status=status, **v)
    return _("The dispute of %(learner)s for %(course)s is now: %(status)s.", status=status, **v)


_SENTENCES: dict[AuditAction, Callable[[dict, dict], str]] = {
    AuditAction.CHECKOUT_STARTED: lambda v, d: _("%(learner)s started paying for %(course)s.", **v),
    AuditAction.CHECKOUT_WITHDRAWN: lambda v, d: _(
        "The purchase of %(learner)s of %(course)s was closed: its invoice %(number)s was voided.", **v)
    if d.get("voided") else _(
        "The open checkout of %(learner)s for %(course)s was withdrawn: the course's offer changed.", **v),
    AuditAction.PAID: lambda v, d: _("%(learner)s paid %(amount)s for %(course)s.", **v),
    AuditAction.PAID_AFTER_WITHDRAWAL: lambda v, d: _(
        "%(learner)s paid %(amount)s for %(course)s at the price of a checkout opened before the offer changed.",
        **v),
    AuditAction.PAYMENT_FAILED: lambda v, d: _("The payment of %(learner)s for %(course)s failed: %(reason)s", **v),
    AuditAction.INVOICE_ISSUED: _issued,
    AuditAction.REFUND_REQUESTED: _refund_requested,
    AuditAction.REFUND_SUCCEEDED: lambda v, d: _(
        "%(amount)s of the payment of %(learner)s for invoice %(number)s was refunded outside this site (in the "
        "Stripe Dashboard): issue the invoice's credit note there.", **v) if d.get("outside") else _(
        "%(amount)s was refunded to %(learner)s for %(course)s.", **v),
    AuditAction.REFUND_FAILED: lambda v, d: _("The refund of %(amount)s to %(learner)s failed: %(reason)s", **v),
    AuditAction.REFUND_RETRIED: lambda v, d: _("The refund of %(amount)s to %(learner)s was tried again.", **v),
    AuditAction.DUPLICATE_PAYMENT_REFUNDED: lambda v, d: _(
        "A second payment of %(amount)s by %(learner)s for %(course)s was refunded.", **v),
    AuditAction.ACCESS_REVOKED: lambda v, d: _("%(learner)s no longer has access to %(course)s.", **v),
    AuditAction.ACCESS_RESTORED: lambda v, d: _("%(learner)s has access to %(course)s again.", **v),
    AuditAction.ACCESS_SUSPENDED: lambda v, d: _(
        "The access of %(learner)s to %(course)s is suspended: the balance is overdue.", **v),
    AuditAction.BALANCE_PAID: lambda v, d: _("%(learner)s has paid the balance for %(course)s.", **v),
    AuditAction.DISPUTE_OPENED: _dispute_opened,
    AuditAction.DISPUTE_UPDATED: _dispute_updated,
    AuditAction.FREE_ENROLLMENT: lambda v, d: _("%(learner)s was enrolled in %(course)s free of charge.", **v),
    AuditAction.SETTINGS_CHANGED: _settings,
    AuditAction.COURSE_PRICING_CHANGED: _pricing,
    AuditAction.INVOICE_CREATED: lambda v, d: _("An invoice of %(amount)s was created for %(learner)s.", **v),
    AuditAction.PAYMENT_REQUESTED: _requested,
    AuditAction.PAYMENT_REQUEST_RESENT: lambda v, d: _(
        "The payment request on invoice %(number)s was sent again to %(learner)s.", **v),
    AuditAction.PAYMENT_REQUEST_CANCELLED: lambda v, d: _(
        "The payment request to %(learner)s on invoice %(number)s was cancelled.", **v),
    AuditAction.PAYMENT_RECEIVED: lambda v, d: _("%(learner)s paid %(amount)s on invoice %(number)s.", **v),
    AuditAction.REMINDER_SENT: lambda v, d: _reminded(v, int(d.get("step", 0))),
    AuditAction.CREDIT_NOTE_ISSUED: lambda v, d: _(
        "Credit note %(note)s of %(amount)s was issued on invoice %(number)s.",
        note=d.get("credit_note_number") or d.get("credit_note") or "", **v),
    AuditAction.CREDIT_NOTE_VOIDED: lambda v, d: _(
        "Credit note %(note)s of %(amount)s on invoice %(number)s was voided.",
        note=d.get("credit_note_number") or d.get("credit_note") or "", **v),
    AuditAction.MESSAGE_FAILED: lambda v, d: _(
        "A message (%(channel)s) to %(learner)s could not be delivered: %(reason)s",
        channel={"email": _("e-mail"), "sms": _("SMS")}.get(str(d.get("channel")), str(d.get("channel"))), **v),
    AuditAction.PAYMENT_LINK_CREATED: _link_created,
    AuditAction.PAYMENT_LINK_DISABLED: lambda v, d: _("The payment link %(title)s was disabled.", **_link(v, d)),
    AuditAction.LINK_PAYMENT_RECEIVED: lambda v, d: _("%(payer)s paid %(amount)s through the payment link %(title)s.",
                                                      **_link(v, d)),
    AuditAction.BALANCE_TOPPED_UP: _topped_up,
    AuditAction.BALANCE_CREDITED: lambda v, d: _("The balance of %(learner)s was credited with %(amount)s: %(reason)s",
                                                 **v),
    AuditAction.BALANCE_DEBITED: lambda v, d: _("The balance of %(learner)s was debited by %(amount)s: %(reason)s",
                                                **v),
    AuditAction.BALANCE_SPENT: lambda v, d: _("%(amount)s of the balance of %(learner)s paid invoice %(number)s.",
                                              **v),
    AuditAction.TOPUP_REFUNDED: _topup_refunded,
    AuditAction.TOPUP_REFUND_FAILED: _topup_refund_failed,
    AuditAction.BALANCE_RETURNED: _returned,
    AuditAction.CREDITED_PAYMENT_ATTACHED: _credited_attached,
}
