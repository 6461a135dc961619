"""Reminders of payment requests: the school's rules say on which days relative to the due date (say 3 days
before, 1 and 7 days after), how many at most, and whether by SMS too.

A reminder is claimed before anything is sent: a unique row per (request, step), committed on its own, so
that two runs at once, even on two machines, send each reminder once. Just before sending, the request is
read again: one paid meanwhile gets nothing. Only the latest step that has come is sent (a request found
late is not sent three reminders at once). No reminder goes while the learner's payment of the request is
under way (a bank debit processing, a payment taken and not yet credited to its invoice): it comes once the
payment fails. Nor does one go that its page would refuse, by the rule of the school's "Send again"
(`requests.cannot_ask_now`): while another request's payment of one of its invoices is under way, its step
is given back and comes again; when it cannot be paid as asked any more (an invoice voided or paid otherwise,
less left than Stripe charges), its step is spent.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, literal, select
from sqlalchemy.exc import IntegrityError

from ..accounts import settings as payment_settings
from ..core import audit
from ..core.enums import AuditAction, PaymentRequestStatus
from ..core.models import PaymentRequest, Reminder
from ..core.state import PluginState
from . import paying, requests as payment_requests

#: The days a rule may name, relative to the due date.
EARLIEST, LATEST = -60, 365
_DAY = re.compile(r"[+-]?[0-9]{1,3}")


def steps(text: str) -> list[int]:
    """The school's reminder days ("-3,1,7"), latest first; what is not a whole number of days is left out."""
    days = set()
    for part in (text or "").split(","):
        part = part.strip()
        # One sign at most and ASCII digits: "+-3" and "²" pass str.isdigit() but are no number int() reads.
        if _DAY.fullmatch(part) and EARLIEST <= int(part) <= LATEST:
            days.add(int(part))
    return sorted(days, reverse=True)


def _paying() -> ColumnElement[bool]:
    """SQL: a payment of the request (the enclosing query's) is under way."""
    return paying.paying_now(PaymentRequest.id)


@dataclass(frozen=True)
class Due:
    request_id: int
    step: int


def due(session, *, now: datetime, rules: list[int], maximum: int, after_id: int = 0,
        limit: int = 200) -> list[Due]:
    """The reminders that have come, for open requests with ids above ``after_id`` (a keyset batch) whose
    payment is not under way: per request, the latest step whose day has come and that neither it nor a later
    step was claimed for, while fewer than ``maximum`` reminders were claimed. One query per step, whatever the
    number of requests."""
    found: dict[int, int] = {}
    cutoff: int | None = None  # a full batch of a step may stop short: keep only ids every step has seen
    for step in rules:  # latest first: a request takes its latest step
        moment = now - timedelta(days=step)
        query = (select(PaymentRequest.id).where(
            PaymentRequest.id > after_id, PaymentRequest.status == PaymentRequestStatus.OPEN,
            paying.asks_something(), PaymentRequest.due_at <= moment,
            # Not a reminder of what was just sent: a day after the request at least, even when a step before
            # the due date had come when it was sent.
            PaymentRequest.created_at <= min(moment, now) - timedelta(days=1), ~_paying(),
            ~select(Reminder.id).where(Reminder.request_id == PaymentRequest.id, Reminder.step >= step).exists(),
            select(func.count(Reminder.id)).where(Reminder.request_id == PaymentRequest.id)
            .scalar_subquery() < literal(maximum))
            .order_by(PaymentRequest.id).limit(limit))
        ids = list(session.scalars(query))
        for request_id in ids:
            found.setdefault(request_id, step)
        if len(ids) == limit:
            cutoff = ids[-1] if cutoff is None else min(cutoff, ids[-1])
    return [Due(request_id, step) for request_id, step in sorted(found.items())
            if cutoff is None or request_id <= cutoff]


def claim(session, item: Due) -> Reminder | None:
    """Write the reminder's row (its own unit of work: commit it before sending); None if another run has."""
    reminder = Reminder(request_id=item.request_id, step=item.step)
    try:
        with session.begin_nested():
            session.add(reminder)
    except IntegrityError:
        return None
    return reminder


def send(state: PluginState, reminder: Reminder, *, sms: bool = False) -> bool:
    """Write a claimed reminder's messages (sent after the commit), if the request still asks for something that
    can be paid now, as the school's "Send again" does (`requests.cannot_ask_now`): by e-mail, and by SMS too
    when the school's rules say so and the request went by SMS. While a payment under way stands in the way
    (the learner's own, or another request's of one of its invoices), nothing is sent and the claim is given
    back: the step comes again once that payment ends (failed; credited, it leaves nothing to ask, or what is
    left). When the request cannot be paid as asked whatever happens (paid, cancelled, an invoice voided or paid
    otherwise, less left than Stripe charges), nothing is sent and the step is spent."""
    session = state.session
    found = session.execute(select(PaymentRequest, _paying()).where(PaymentRequest.id == reminder.request_id)
                            .with_for_update(of=PaymentRequest).execution_options(populate_existing=True)).first()
    if found is None:
        return False
    request, under_way = found
    refusal = payment_requests.cannot_ask_now(session, request, under_way=under_way)
    if refusal is not None:
        if refusal.waits:
            session.delete(reminder)
        return False
    written = payment_requests.notify(state, request, purpose=f"reminder{reminder.step:+d}", reminder_id=reminder.id,
                                      reminder=True, sms=sms)
    audit.record(session, AuditAction.REMINDER_SENT, user_id=request.user_id, invoice=request.invoice_id,
                 request=request.id, step=reminder.step, messages=written)
    return written > 0


@dataclass(frozen=True)
class Rules:
    steps: list[int]
    maximum: int
    sms: bool


def rules_of(state: PluginState) -> Rules:
    settings = payment_settings.load(state.session)
    return Rules(steps(settings.reminder_days), settings.reminder_max, settings.reminder_sms)

