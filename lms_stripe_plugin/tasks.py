"""Work a host schedules: the reminders of payment requests, the messages whose delivery failed, and the
suspension of access for a deposit's balance overdue past the school's grace period.

From cron: ``flask lms-stripe reminders run`` every few minutes (``--dry-run`` lists what it would send). From
Celery beat or RQ: ``send_due_reminders(app)``. Safe to run at once from two machines: each reminder is
claimed by a unique row before anything is sent.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from flask import Flask

from . import messages
from .billing import reminders
from .accounts import settings as payment_settings
from .core import audit, schools
from .shop import deposits
from .core.models import utcnow


@dataclass
class ReminderReport:
    sent: int = 0
    skipped: int = 0  # paid or cancelled meanwhile, or no way to reach the learner
    claimed_elsewhere: int = 0  # another run sent it
    due: list[reminders.Due] = field(default_factory=list)  # with --dry-run: what would be sent
    retried: int = 0  # failed messages sent again
    suspended: int = 0  # accesses suspended for an overdue balance
    overdue: list[int] = field(default_factory=list)  # with --dry-run: the purchases it would suspend


def send_due_reminders(app: Flask, *, dry_run: bool = False, now: datetime | None = None,
                       batch: int = 200) -> ReminderReport:
    """Send every reminder that has come (or, with ``dry_run``, list them and change nothing), then retry
    the messages whose delivery failed. Each reminder is its own units of work: claimed, then sent."""
    report = ReminderReport()
    with app.app_context(), audit.acting(audit.VIA_SCHEDULE):
        state = app.extensions["lms_stripe"]
        every = payment_settings.every_school(state.session)
        state.session.commit()  # end the read
        for school in every:
            with schools.scope(school):
                _send_due(state, report, dry_run, now, batch)
    return report


def _send_due(state, report: ReminderReport, dry_run: bool, now: datetime | None, batch: int) -> None:
    """`send_due_reminders` for the school in force."""
    session = state.session
    rules = reminders.rules_of(state)
    after = 0
    while rules.steps and rules.maximum > 0:
        items = reminders.due(session, now=now or utcnow(), rules=rules.steps, maximum=rules.maximum,
                              after_id=after, limit=batch)
        session.commit()  # end the read: no transaction is held across a delivery
        if not items:
            break
        after = items[-1].request_id
        for item in items:
            _one(state, item, report, dry_run, rules.sms)
    if not dry_run:
        report.retried += messages.retry_failed(state)
        session.commit()
    _suspend_overdue(state, report, dry_run, now or utcnow())


def _suspend_overdue(state, report: ReminderReport, dry_run: bool, now: datetime) -> None:
    """Suspend access for deposits whose balance is overdue past the grace period, each its own unit of work."""
    session = state.session
    overdue = deposits.overdue(session, now=now, grace_days=deposits.grace_days(state))
    session.commit()
    if dry_run:
        report.overdue.extend(overdue)
        return
    for purchase_id in overdue:
        if deposits.suspend(state, purchase_id):
            report.suspended += 1
        session.commit()  # the host's unenrollment and the row together


def _one(state, item: reminders.Due, report: ReminderReport, dry_run: bool, sms: bool) -> None:
    session = state.session
    if dry_run:
        report.due.append(item)
        return
    reminder = reminders.claim(session, item)
    session.commit()
    if reminder is None:
        report.claimed_elsewhere += 1
        return
    if reminders.send(state, reminder, sms=sms):
        report.sent += 1
    else:
        report.skipped += 1
    session.commit()  # the messages go out once this commits
