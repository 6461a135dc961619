"""Reminders of payment requests (`billing.reminders`, `tasks.send_due_reminders`, ``flask lms-stripe
reminders run``): the school's days relative to the due date, only the latest step that has come, never
within a day of the request's sending, at most so many per request; each claimed by a unique row before it
is sent, so that two runs at once send it once; a request paid meanwhile gets nothing, nor one whose payment is
under way (until it fails)."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from lms_stripe_plugin import messages, tasks
from lms_stripe_plugin.accounts import settings as payment_settings
from lms_stripe_plugin.billing import reminders, requests as payment_requests, settlements
from lms_stripe_plugin.core import audit
from lms_stripe_plugin.core.enums import AuditAction, Channel, MessageStatus
from lms_stripe_plugin.core.models import (AuditEntry, Invoice, Message, PaymentAttempt, PaymentRequest, Reminder,
                                           utcnow)
from lms_stripe_plugin.messages import DeliveryFailed, outbox

from .conftest import ON_POSTGRES
from .request_stubs import LANDLINE, MOBILE, backend, open_attempt  # noqa: F401 - a fixture
from .request_support import open_invoice

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)
RULES = [7, 1, -3]


@pytest.fixture
def state(app):
    return app.extensions["lms_stripe"]


@pytest.fixture
def owed(db, host, people, configured):
    return open_invoice(db, host)


@pytest.fixture
def phones(host, monkeypatch):
    numbers = {"u1": MOBILE, "u2": MOBILE}
    monkeypatch.setattr(host, "user_phone", lambda user: numbers.get(user.id), raising=False)
    return numbers


def _request(db, invoice_id: int, *, due: datetime, created: datetime | None = None, sms: bool = False,
             user_id: str = "u1", amount: int = 9000, **changes) -> int:
    """An open request of 90 € (or ``amount``) due at ``due``, sent at ``created`` (ten days before it by
    default)."""
    request = PaymentRequest(invoice_id=invoice_id, user_id=user_id, amount=amount, currency="EUR", due_at=due,
                             created_at=created or due - timedelta(days=10), locale="fr", send_email=True,
                             send_sms=sms, created_by="adm", **changes)
    db.session.add(request)
    db.session.commit()
    return request.id


def _due(db, now: datetime, rules=RULES, maximum: int = 3, **kwargs) -> list[tuple[int, int]]:
    items = reminders.due(db.session, now=now, rules=rules, maximum=maximum, **kwargs)
    db.session.commit()
    return [(item.request_id, item.step) for item in items]


def _claim(db, request_id: int, step: int) -> None:
    db.session.add(Reminder(request_id=request_id, step=step))
    db.session.commit()


def _run(app, db, **kwargs) -> tasks.ReminderReport:
    db.session.commit()  # the test's own writes are in: the run works in sessions of its own
    report = tasks.send_due_reminders(app, **kwargs)
    db.session.expire_all()
    return report


def _reminder_messages(db) -> list[tuple[int, str, str]]:
    """(request, channel, key) of every message a reminder wrote."""
    db.session.expire_all()
    rows = db.session.execute(select(Message.request_id, Message.channel, Message.idempotency_key)
                              .where(Message.reminder_id.is_not(None)).order_by(Message.id)).all()
    return [tuple(row) for row in rows]


def _steps(db, request_id: int) -> list[int]:
    db.session.expire_all()
    return sorted(db.session.scalars(select(Reminder.step).where(Reminder.request_id == request_id)))


# -- the school's rules ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("-3,1,7", [7, 1, -3]),
    (" 7 , -3,1 ,1,", [7, 1, -3]),
    ("+2, 0", [2, 0]),
    ("", []),
    (None, []),
    ("x, 1.5, 3 days, , 4", [4]),
    ("-61, -60, 365, 366", [365, -60]),
    ("+-3, --2, 1", [1]),  # signs that are not one sign
    ("²,³,1", [1]),  # what Python calls a digit but is no number of days
    ("١", []),
])
def test_the_days_are_read_latest_first_and_what_is_not_a_day_is_left_out(text, expected):
    assert reminders.steps(text) == expected


def test_the_rules_come_from_the_settings(db, state, configured):
    assert reminders.rules_of(state) == reminders.Rules([7, 1, -3], 3, False)
    payment_settings.save(db.session, {"reminder_days": "-1,2", "reminder_max": 1, "reminder_sms": True},
                          actor_id="adm")
    db.session.commit()
    assert reminders.rules_of(state) == reminders.Rules([2, -1], 1, True)


def test_the_app_config_overrides_the_rules_and_a_bad_day_there_is_left_out(app, state, configured):
    app.config.update(LMS_STRIPE_REMINDER_DAYS="+-3, 5, soon", LMS_STRIPE_REMINDER_MAX=1)
    assert reminders.rules_of(state) == reminders.Rules([5], 1, False)


# -- which reminders have come -----------------------------------------------------------------------------------

def test_each_step_comes_on_its_day(db, owed):
    request_id = _request(db, owed, due=NOW)
    assert _due(db, NOW - timedelta(days=3, minutes=1)) == []
    assert _due(db, NOW - timedelta(days=3)) == [(request_id, -3)]
    _claim(db, request_id, -3)
    assert _due(db, NOW + timedelta(hours=23)) == []
    assert _due(db, NOW + timedelta(days=1)) == [(request_id, 1)]
    _claim(db, request_id, 1)
    assert _due(db, NOW + timedelta(days=6)) == []
    assert _due(db, NOW + timedelta(days=7)) == [(request_id, 7)]
    _claim(db, request_id, 7)
    assert _due(db, NOW + timedelta(days=300)) == []


def test_a_request_found_late_gets_only_its_latest_step(db, owed):
    request_id = _request(db, owed, due=NOW - timedelta(days=10))
    assert _due(db, NOW) == [(request_id, 7)]
    _claim(db, request_id, 7)
    assert _due(db, NOW) == []  # the earlier steps are past: never sent after a later one


def test_a_request_is_not_reminded_within_a_day_of_its_sending(db, owed):
    """Asked for on the 1st, due on the 3rd: the "three days before" step has come already, but the learner
    has just been sent the request. The reminder waits a day."""
    request_id = _request(db, owed, due=NOW + timedelta(days=2), created=NOW - timedelta(minutes=5))
    assert _due(db, NOW) == []
    assert _due(db, NOW + timedelta(hours=23)) == []
    assert _due(db, NOW + timedelta(days=1)) == [(request_id, -3)]


def test_a_reminder_after_the_due_date_waits_a_day_after_the_sending_too(db, owed):
    request_id = _request(db, owed, due=NOW - timedelta(days=1, hours=1), created=NOW - timedelta(days=1, hours=2))
    assert _due(db, NOW, rules=[1]) == []
    assert _due(db, NOW + timedelta(days=1), rules=[1]) == [(request_id, 1)]


def test_no_more_than_the_maximum_per_request(db, owed):
    request_id = _request(db, owed, due=NOW)
    _claim(db, request_id, -3)
    _claim(db, request_id, 1)
    assert _due(db, NOW + timedelta(days=8), maximum=2) == []
    assert _due(db, NOW + timedelta(days=8), maximum=3) == [(request_id, 7)]


@pytest.mark.parametrize("changes", [{"status": "paid"}, {"status": "cancelled"}, {"amount_paid": 9000}])
def test_a_request_that_asks_nothing_more_gets_no_reminder(db, owed, changes):
    _request(db, owed, due=NOW - timedelta(days=2), **changes)
    assert _due(db, NOW) == []


def test_a_partly_paid_request_is_still_reminded(db, owed):
    request_id = _request(db, owed, due=NOW - timedelta(days=2), amount_paid=5000)
    assert _due(db, NOW) == [(request_id, 1)]


def test_one_query_per_step_whatever_the_number_of_requests(db, owed):
    for days in range(30):
        _request(db, owed, due=NOW - timedelta(days=days % 12))
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        found = _due(db, NOW)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert len(found) == 30
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == len(RULES)


def test_a_full_batch_of_one_step_keeps_only_the_requests_every_step_has_seen(db, owed):
    """With two per batch, the "one day after" query stops at the second request: the third, whose latest
    step (7) was found, waits for the next batch, so that no request is given an earlier step than its
    latest because its later one lay beyond a batch."""
    first = _request(db, owed, due=NOW - timedelta(days=2))
    second = _request(db, owed, due=NOW - timedelta(days=2))
    third = _request(db, owed, due=NOW - timedelta(days=10))
    assert _due(db, NOW, limit=2) == [(first, 1), (second, 1)]
    assert _due(db, NOW, limit=2, after_id=second) == [(third, 7)]
    assert _due(db, NOW, limit=2, after_id=third) == []


def test_a_later_step_is_never_missed_beyond_a_batch(db, owed):
    ids = [_request(db, owed, due=NOW - timedelta(days=10)) for _ in range(5)]
    found, after = [], 0
    while True:
        batch = _due(db, NOW, limit=2, after_id=after)
        if not batch:
            break
        found += batch
        after = batch[-1][0]
    assert found == [(request_id, 7) for request_id in ids]


# -- claiming and sending ---------------------------------------------------------------------------------------

def test_a_step_is_claimed_once(db, owed):
    request_id = _request(db, owed, due=NOW)
    first = reminders.claim(db.session, reminders.Due(request_id, -3))
    db.session.commit()
    assert first is not None
    assert reminders.claim(db.session, reminders.Due(request_id, -3)) is None
    db.session.commit()  # the session goes on after the refused claim
    assert _steps(db, request_id) == [-3]


def test_a_claimed_reminder_is_sent_by_email_in_the_requests_language(db, state, owed, backend):
    request_id = _request(db, owed, due=utcnow() - timedelta(days=1, hours=1))
    reminder = reminders.claim(db.session, reminders.Due(request_id, 1))
    db.session.commit()
    assert reminders.send(state, reminder) is True
    db.session.commit()
    (message,) = backend.sent
    assert message.recipient == "lea@example.com" and message.subject.startswith("En retard")
    assert _reminder_messages(db) == [(request_id, Channel.EMAIL, f"request-{request_id}-reminder+1-email")]
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == AuditAction.REMINDER_SENT))
    assert entry.user_id == "u1" and '"step": 1' in entry.details and '"messages": 1' in entry.details


@pytest.mark.parametrize("changes", [{"status": "paid"}, {"status": "cancelled"}, {"amount_paid": 9000}])
def test_a_request_closed_after_its_claim_gets_nothing(db, state, owed, backend, changes):
    request_id = _request(db, owed, due=NOW)
    reminder = reminders.claim(db.session, reminders.Due(request_id, -3))
    db.session.commit()
    db.session.execute(sa.update(PaymentRequest).where(PaymentRequest.id == request_id).values(**changes))
    db.session.commit()
    assert reminders.send(state, reminder) is False
    db.session.commit()
    assert backend.sent == [] and _reminder_messages(db) == []


def test_a_request_whose_invoice_owes_nothing_more_gets_nothing(db, state, owed, backend):
    request_id = _request(db, owed, due=NOW)
    db.session.get(PaymentRequest, request_id).invoice.amount_remaining = 0  # paid on Stripe's page, say
    db.session.commit()
    assert _due(db, NOW) == []  # nor is it listed by a dry run
    reminder = reminders.claim(db.session, reminders.Due(request_id, -3))
    db.session.commit()
    assert reminders.send(state, reminder) is False


def _attempt_now(db, attempt_id: int, status: str) -> None:
    """The Pay click's payment moved on (Stripe's event): ``status``."""
    db.session.execute(sa.update(PaymentAttempt).where(PaymentAttempt.id == attempt_id).values(status=status))
    db.session.commit()


@pytest.mark.parametrize("status", ["processing", "paid"])
def test_no_reminder_while_the_learners_payment_is_under_way(db, owed, status):
    """A bank debit processing (SEPA), or a payment taken and not yet credited to the invoice: the learner has
    paid, unless it fails. An open Checkout is no payment: the reminder still comes."""
    request_id = _request(db, owed, due=NOW - timedelta(days=2))
    attempt = open_attempt(db, request_id, status=status)
    assert _due(db, NOW) == []
    _attempt_now(db, attempt.id, "open")
    assert _due(db, NOW) == [(request_id, 1)]


def test_a_reminder_claimed_before_the_payment_began_is_not_sent_and_comes_again_if_it_fails(db, state, owed,
                                                                                             backend):
    request_id = _request(db, owed, due=utcnow() - timedelta(days=1, hours=1))
    reminder = reminders.claim(db.session, reminders.Due(request_id, 1))
    db.session.commit()
    attempt = open_attempt(db, request_id, status="processing")  # the learner paid by SEPA debit meanwhile
    assert reminders.send(state, reminder) is False
    db.session.commit()
    assert backend.sent == [] and _reminder_messages(db) == [] and _steps(db, request_id) == []
    _attempt_now(db, attempt.id, "failed")
    assert _due(db, utcnow()) == [(request_id, 1)]


# -- what cannot be paid now -------------------------------------------------------------------------------------

def _settlement(db, host, owed: int) -> tuple[int, int]:
    """The school's request for ``owed`` and a second invoice (ABC-0102, 302 €) together, due yesterday:
    (its id, the second invoice's id)."""
    second = open_invoice(db, host, gross=30200, stripe_id="in_test_open_2", number="ABC-0102")
    rows = [db.session.get(Invoice, owed), db.session.get(Invoice, second)]
    request = settlements._request(rows, user_id="u1", actor_id="adm", due_at=utcnow() - timedelta(days=1, hours=1),
                                   locale="fr", email=True, sms=False, message=None)
    request.created_at = utcnow() - timedelta(days=10)
    db.session.add(request)
    db.session.commit()
    return request.id, second


def _paying(db, request_id: int, amount: int, status: str) -> PaymentAttempt:
    """A payment of the request under way (``status``: a bank debit processing, or taken and being credited)."""
    attempt = PaymentAttempt(request_id=request_id, amount=amount, currency="EUR", status=status,
                             stripe_checkout_session_id=f"cs_test_paying_{request_id}")
    db.session.add(attempt)
    db.session.commit()
    return attempt


def _send(db, state, request_id: int, step: int = 1) -> bool:
    """Claim the step and send it, as a run does (each its own unit of work)."""
    reminder = reminders.claim(db.session, reminders.Due(request_id, step))
    db.session.commit()
    sent = reminders.send(state, reminder)
    db.session.commit()
    return sent


def _refusal(db, request_id: int) -> str | None:
    """Why the administrator's "Send again" is refused now, if it is."""
    db.session.expire_all()
    return payment_requests.resend_refusal(db.session, db.session.get(PaymentRequest, request_id))


@pytest.mark.parametrize("status", ["processing", "paid"])
def test_a_settlements_reminder_waits_while_another_payment_of_its_invoice_is_under_way(db, state, host, owed,
                                                                                        backend, status):
    """The learner is paying ABC-0102 alone (a bank debit processing, or a payment being credited): the
    settlement's page refuses a click meanwhile, so its reminder is not sent, and its step is given back: it
    comes again once that payment fails (or nothing is asked for any more once it is credited)."""
    settlement, second = _settlement(db, host, owed)
    alone = _request(db, second, due=utcnow() + timedelta(days=5), amount=30200)
    attempt = _paying(db, alone, 30200, status)
    assert _due(db, utcnow()) == [(settlement, 1)]  # the search is per step: the check is the sending's
    assert _send(db, state, settlement) is False
    assert backend.sent == [] and _reminder_messages(db) == [] and _steps(db, settlement) == []
    assert "Another payment of invoice ABC-0102 is under way" in _refusal(db, settlement)
    _attempt_now(db, attempt.id, "failed")
    assert _refusal(db, settlement) is None
    assert _send(db, state, settlement) is True
    assert _steps(db, settlement) == [1] and [r for r, _c, _k in _reminder_messages(db)] == [settlement]


@pytest.mark.parametrize("status", ["processing", "paid"])
def test_a_requests_reminder_waits_while_a_settlements_payment_of_its_invoice_is_under_way(db, state, host, owed,
                                                                                           backend, status):
    settlement, second = _settlement(db, host, owed)
    alone = _request(db, second, due=utcnow() - timedelta(days=1, hours=1), amount=30200)
    attempt = _paying(db, settlement, 60200, status)
    assert _send(db, state, alone) is False
    assert backend.sent == [] and _steps(db, alone) == []
    assert "Another payment of invoice ABC-0102 is under way" in _refusal(db, alone)
    _attempt_now(db, attempt.id, "failed")
    assert _send(db, state, alone) is True and _steps(db, alone) == [1]


def test_a_reminder_waits_while_another_payment_leaves_its_invoice_owing_less_than_it_asks(db, state, owed, backend):
    """The invoice owes 300 €; the school asks Léa for all of it, and she is paying 90 € of it through another
    request (a bank debit processing): a click for the 300 € is refused meanwhile, so the reminder waits. Once
    the 90 € are credited it asks the 210 € left; a request for 90 € fits beside that payment, and is reminded."""
    whole = _request(db, owed, due=utcnow() - timedelta(days=1, hours=1), amount=30000)
    part = _request(db, owed, due=utcnow() - timedelta(days=1, hours=1))
    beside = _request(db, owed, due=utcnow() - timedelta(days=1, hours=1))
    _paying(db, part, 9000, "processing")
    assert _send(db, state, whole) is False and _steps(db, whole) == []
    assert "Another payment of invoice ABC-0100 is under way" in _refusal(db, whole)
    assert _refusal(db, beside) is None
    assert _send(db, state, beside) is True and [r for r, _c, _k in _reminder_messages(db)] == [beside]


def test_a_reminder_of_less_than_stripe_charges_is_not_sent(db, state, owed, backend):
    """Paid but 0.30 € (Stripe charges 0.50 € at least in euros): no payment page can take what is left. The
    step is spent, not given back: nothing will make it payable."""
    request_id = _request(db, owed, due=utcnow() - timedelta(days=1, hours=1), amount_paid=8970)
    assert _send(db, state, request_id) is False
    assert backend.sent == [] and _reminder_messages(db) == [] and _steps(db, request_id) == [1]
    assert "less than the least an online payment can be" in _refusal(db, request_id)


def test_a_settlement_with_a_void_invoice_spends_its_step(db, state, host, owed, backend):
    """One of its invoices voided: it can never be paid as asked. Its step is spent (a run does not claim it
    again and again); a later step finds it the same."""
    settlement, second = _settlement(db, host, owed)
    row = db.session.get(Invoice, second)
    row.status, row.amount_remaining = "void", 0
    db.session.commit()
    assert "is void" in _refusal(db, settlement)
    assert _send(db, state, settlement) is False
    assert backend.sent == [] and _steps(db, settlement) == [1]


def test_a_run_gives_back_the_step_of_a_reminder_that_must_wait(app, db, host, owed, backend):
    settlement, second = _settlement(db, host, owed)
    alone = _request(db, second, due=utcnow() + timedelta(days=5), amount=30200)
    attempt = _paying(db, alone, 30200, "processing")
    report = _run(app, db)
    assert (report.sent, report.skipped) == (0, 1) and backend.sent == [] and _steps(db, settlement) == []
    _attempt_now(db, attempt.id, "failed")  # the debit failed: both invoices are owed still
    report = _run(app, db)
    assert report.sent == 1 and _steps(db, settlement) == [1]
    assert [m.recipient for m in backend.sent] == ["lea@example.com"]


# -- runs ---------------------------------------------------------------------------------------------------

def test_a_run_sends_each_reminder_that_has_come_once(app, db, owed, backend):
    now = utcnow()
    late = _request(db, owed, due=now - timedelta(days=10))
    soon = _request(db, owed, due=now + timedelta(days=2))
    later = _request(db, owed, due=now + timedelta(days=20))
    report = _run(app, db)
    assert (report.sent, report.skipped, report.claimed_elsewhere, report.due) == (2, 0, 0, [])
    assert [(r, key.split("-", 2)[2]) for r, _c, key in _reminder_messages(db)] == \
        [(late, "reminder+7-email"), (soon, "reminder-3-email")]
    assert len(backend.sent) == 2 and _steps(db, later) == []
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Message.id)).where(Message.status == MessageStatus.SENT)) == 2
    again = _run(app, db)
    assert (again.sent, again.skipped, again.claimed_elsewhere) == (0, 0, 0) and len(backend.sent) == 2
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == AuditAction.REMINDER_SENT)).all()
    assert len(entries) == 2 and {(e.actor_id, audit.via(e)) for e in entries} == {(None, audit.VIA_SCHEDULE)}


def test_a_request_found_late_is_sent_one_reminder_not_three(app, db, owed, backend):
    request_id = _request(db, owed, due=utcnow() - timedelta(days=30))
    assert _run(app, db).sent == 1
    assert _steps(db, request_id) == [7] and len(backend.sent) == 1
    assert _run(app, db, now=utcnow() + timedelta(days=60)).sent == 0


def test_the_steps_go_out_one_after_another_up_to_the_maximum(app, db, owed, backend):
    payment_settings.save(db.session, {"reminder_max": 2}, actor_id="adm")
    due = utcnow() + timedelta(days=3, hours=1)
    request_id = _request(db, owed, due=due)
    sent = [_run(app, db, now=due + timedelta(days=days)).sent for days in (-4, -3, -2, 1, 7, 30)]
    assert sent == [0, 1, 0, 1, 0, 0]
    assert _steps(db, request_id) == [-3, 1]


def test_a_dry_run_lists_what_would_be_sent_and_changes_nothing(app, db, owed, backend):
    late = _request(db, owed, due=utcnow() - timedelta(days=2))
    report = _run(app, db, dry_run=True)
    assert [(item.request_id, item.step) for item in report.due] == [(late, 1)]
    assert (report.sent, report.retried) == (0, 0)
    assert _steps(db, late) == [] and backend.sent == [] and _reminder_messages(db) == []


def test_batches_cover_every_request(app, db, owed, backend, monkeypatch):
    ids = [_request(db, owed, due=utcnow() - timedelta(days=2)) for _ in range(5)]
    batches = []
    original = reminders.due

    def counting(session, **kwargs):
        found = original(session, **kwargs)
        batches.append([item.request_id for item in found])
        return found

    monkeypatch.setattr(reminders, "due", counting)
    report = _run(app, db, batch=2)
    assert report.sent == 5 and batches == [ids[:2], ids[2:4], ids[4:], []]
    assert sorted(r for r, _c, _k in _reminder_messages(db)) == ids


def test_a_reminder_another_run_claimed_is_left_to_it(app, db, owed, backend, monkeypatch):
    mine = _request(db, owed, due=utcnow() - timedelta(days=2))
    theirs = _request(db, owed, due=utcnow() - timedelta(days=2))
    original = reminders.due

    def another_run_claims(session, **kwargs):
        found = original(session, **kwargs)
        if kwargs["after_id"] == 0:
            with db.engine.begin() as conn:  # another machine, between this run's reading and its claim
                conn.execute(sa.insert(Reminder).values(request_id=theirs, step=1, created_at=utcnow()))
        return found

    monkeypatch.setattr(reminders, "due", another_run_claims)
    report = _run(app, db)
    assert (report.sent, report.claimed_elsewhere) == (1, 1)
    assert [r for r, _c, _k in _reminder_messages(db)] == [mine]


def test_a_request_paid_between_reading_and_sending_gets_no_reminder(app, db, owed, backend, monkeypatch):
    paid = _request(db, owed, due=utcnow() - timedelta(days=2))
    owing = _request(db, owed, due=utcnow() - timedelta(days=2))
    original = reminders.due

    def paid_meanwhile(session, **kwargs):
        found = original(session, **kwargs)
        with db.engine.begin() as conn:  # the learner's payment, credited by a webhook meanwhile
            conn.execute(sa.update(PaymentRequest).where(PaymentRequest.id == paid)
                         .values(status="paid", amount_paid=9000))
        return found

    monkeypatch.setattr(reminders, "due", paid_meanwhile)
    report = _run(app, db)
    assert (report.sent, report.skipped) == (1, 1)
    assert [r for r, _c, _k in _reminder_messages(db)] == [owing]
    assert [m.recipient for m in backend.sent] == ["lea@example.com"]


def test_a_run_reminds_a_learner_whose_payment_failed_not_one_whose_payment_is_processing(app, db, owed, backend):
    request_id = _request(db, owed, due=utcnow() - timedelta(days=2))
    attempt = open_attempt(db, request_id, status="processing")
    listed = app.test_cli_runner().invoke(args=["lms-stripe", "reminders", "run", "--dry-run"])
    assert listed.exit_code == 0 and listed.output == "0 reminder(s) due.\n", listed.output
    report = _run(app, db)
    assert (report.sent, report.skipped) == (0, 0) and backend.sent == [] and _steps(db, request_id) == []
    _attempt_now(db, attempt.id, "failed")  # the debit failed: the learner owes the 90 € still
    report = _run(app, db)
    assert report.sent == 1 and _steps(db, request_id) == [1]
    assert [m.recipient for m in backend.sent] == ["lea@example.com"]


def test_sms_reminders_only_when_the_school_says_so(app, db, owed, backend, phones):
    by_sms = _request(db, owed, due=utcnow() - timedelta(days=2), sms=True)
    assert _run(app, db).sent == 1
    assert [c for _r, c, _k in _reminder_messages(db)] == [Channel.EMAIL]
    payment_settings.save(db.session, {"reminder_sms": True}, actor_id="adm")
    db.session.commit()
    assert _run(app, db, now=utcnow() + timedelta(days=6)).sent == 1
    assert [(r, c) for r, c, _k in _reminder_messages(db)][1:] == [(by_sms, Channel.EMAIL), (by_sms, Channel.SMS)]
    assert [m.recipient for m in backend.sent][1:] == ["lea@example.com", MOBILE]


def test_a_request_sent_by_email_only_is_not_reminded_by_sms(app, db, owed, backend, phones):
    payment_settings.save(db.session, {"reminder_sms": True}, actor_id="adm")
    _request(db, owed, due=utcnow() - timedelta(days=2))
    assert _run(app, db).sent == 1
    assert [m.recipient for m in backend.sent] == ["lea@example.com"]


def test_a_number_that_became_a_landline_does_not_stop_the_run(app, db, owed, backend, phones):
    """Léa's number, valid when the request was sent, is now a landline: her e-mail reminder still goes,
    and so do the other learners' reminders."""
    payment_settings.save(db.session, {"reminder_sms": True}, actor_id="adm")
    lea = _request(db, owed, due=utcnow() - timedelta(days=2), sms=True)
    sam = _request(db, owed, due=utcnow() - timedelta(days=2), sms=True, user_id="u2")
    phones["u1"] = LANDLINE
    report = _run(app, db)
    assert report.sent == 2
    assert sorted((r, c) for r, c, _k in _reminder_messages(db)) == \
        [(lea, Channel.EMAIL), (sam, Channel.EMAIL), (sam, Channel.SMS)]


def test_a_learner_the_lms_no_longer_knows_is_skipped(app, db, owed, backend, people):
    _request(db, owed, due=utcnow() - timedelta(days=2))
    db.session.delete(people["u1"])
    report = _run(app, db)
    assert (report.sent, report.skipped) == (0, 1) and backend.sent == []


def test_no_rule_no_reminder(app, db, owed, backend):
    payment_settings.save(db.session, {"reminder_days": ""}, actor_id="adm")
    _request(db, owed, due=utcnow() - timedelta(days=30))
    assert _run(app, db).sent == 0
    payment_settings.save(db.session, {"reminder_days": "1", "reminder_max": 0}, actor_id="adm")
    assert _run(app, db).sent == 0 and backend.sent == []


def test_the_run_retries_the_messages_whose_delivery_failed(app, db, owed, backend, monkeypatch):
    class Refusing:
        def send(self, outgoing):
            raise DeliveryFailed("451 Try again later")

    monkeypatch.setattr(outbox, "_backend", lambda channel: Refusing())
    failed = messages.queue(db.session, channel="email", recipient="lea@example.com", subject="Paiement",
                            body="Payez", idempotency_key="request-1-sent-email")
    db.session.commit()
    db.session.execute(sa.update(Message).values(created_at=utcnow() - timedelta(hours=1)))
    monkeypatch.setattr(outbox, "_backend", lambda channel: backend)
    report = _run(app, db)
    assert report.retried == 1 and [m.body for m in backend.sent] == ["Payez"]
    assert db.session.get(Message, failed.id).status == MessageStatus.SENT


# -- the command ----------------------------------------------------------------------------------------------

def test_the_command_lists_with_dry_run_then_sends(app, db, owed, backend):
    request_id = _request(db, owed, due=utcnow() - timedelta(days=2))
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["lms-stripe", "reminders", "run", "--dry-run"])
    assert listed.exit_code == 0, listed.output
    assert listed.output == f"request {request_id}: reminder +1 day(s) from its due date\n1 reminder(s) due.\n"
    assert backend.sent == [] and _steps(db, request_id) == []
    ran = runner.invoke(args=["lms-stripe", "reminders", "run"])
    assert ran.exit_code == 0, ran.output
    assert ran.output == ("1 reminder(s) sent, 0 skipped (paid, cancelled or unreachable), 0 sent by another run; "
                          "0 failed message(s) retried; 0 access(es) suspended for an overdue balance.\n")
    assert _steps(db, request_id) == [1] and len(backend.sent) == 1


# -- two runs at once (PostgreSQL) ---------------------------------------------------------------------------

@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="two runs racing on the claims need PostgreSQL")
def test_two_runs_at_once_send_each_reminder_exactly_once(app, db, host, people, configured, backend, monkeypatch):
    """Two runs (two threads, each with its own app context and session) read the same reminders at the same
    moment, then race to claim them: each reminder is claimed, and sent, by one of them."""
    owed = open_invoice(db, host)
    ids = [_request(db, owed, due=utcnow() - timedelta(days=2)) for _ in range(20)]
    both_read = threading.Barrier(2, timeout=30)
    original = reminders.due

    def read_together(session, **kwargs):
        found = original(session, **kwargs)
        if kwargs.get("after_id") == 0:
            both_read.wait()
        return found

    monkeypatch.setattr(reminders, "due", read_together)
    reports, failures = [], []

    def run():
        try:
            reports.append(tasks.send_due_reminders(app))
        except Exception as err:  # noqa: BLE001 - reported below
            failures.append(err)

    db.session.commit()
    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == [] and len(reports) == 2
    assert sum(r.sent for r in reports) == 20 and sum(r.claimed_elsewhere for r in reports) == 20
    assert sorted(r for r, _c, _k in _reminder_messages(db)) == ids
    assert sorted(m.recipient for m in backend.sent) == ["lea@example.com"] * 20
    assert db.session.scalar(select(func.count(Reminder.id))) == 20
