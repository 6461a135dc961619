"""The delivery log: a message is written with the caller's work, sent strictly after its commit, once per
idempotency key, and a failure is recorded (never raised into the caller), audited and retried."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from lms_stripe_plugin import messages
from lms_stripe_plugin.core.enums import AuditAction, Channel, InvoiceSource, InvoiceStatus, MessageStatus
from lms_stripe_plugin.core.models import AuditEntry, Invoice, Message, PaymentRequest
from lms_stripe_plugin.core.txn import real_session
from lms_stripe_plugin.messages import outbox
from lms_stripe_plugin.messages.errors import DeliveryFailed, InvalidMessage, InvalidRecipient

from .conftest import ON_POSTGRES

LINK = "https://lms.test/payments/pay/tok_Secret123"


class Recorder:
    """A backend that keeps what it was given, and whether a transaction was open at that moment."""

    def __init__(self, db, fail_with: Exception | None = None):
        self.db = db
        self.sent: list[messages.Outgoing] = []
        self.in_transaction: list[bool] = []
        self.fail_with = fail_with

    def send(self, outgoing):
        self.in_transaction.append(real_session(self.db.session).in_transaction())
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(outgoing)


@pytest.fixture
def backend(db, monkeypatch):
    recorder = Recorder(db)
    monkeypatch.setattr(outbox, "_backend", lambda channel: recorder)
    return recorder


def _queue(session, key="request-1-email", **changes):
    values = dict(channel=Channel.EMAIL, recipient="lea@example.com", subject="Payment request",
                  body=f"Please pay: {LINK}", html=f'<a href="{LINK}">Pay</a>', idempotency_key=key)
    values.update(changes)
    return messages.queue(session, **values)


def _message(db, key="request-1-email") -> Message:
    db.session.expire_all()
    return db.session.scalar(sa.select(Message).where(Message.idempotency_key == key))


def _request(db) -> PaymentRequest:
    invoice = Invoice(user_id="u1", currency="EUR", net=4158, vat=832, gross=4990, status=InvoiceStatus.OPEN,
                      source=InvoiceSource.ADMIN, amount_remaining=4990)
    request = PaymentRequest(invoice=invoice, user_id="u1", amount=4990, currency="EUR",
                             due_at=datetime(2026, 12, 3, tzinfo=timezone.utc))
    db.session.add(request)
    db.session.commit()
    return request


# -- after the commit, once --------------------------------------------------------------------------------

def test_a_queued_message_is_sent_after_the_commit_and_not_before(db, backend):
    message = _queue(db.session)
    assert message is not None and message.status == MessageStatus.PENDING
    db.session.flush()
    assert backend.sent == []  # written, not sent: the caller has not committed
    db.session.commit()
    assert [m.recipient for m in backend.sent] == ["lea@example.com"]
    assert backend.sent[0].body == f"Please pay: {LINK}" and backend.sent[0].html == f'<a href="{LINK}">Pay</a>'
    stored = _message(db)
    assert (stored.status, stored.attempts, stored.last_error) == (MessageStatus.SENT, 1, None)
    assert stored.sent_at is not None


def test_nothing_is_sent_when_the_caller_rolls_back(db, backend):
    assert _queue(db.session) is not None
    db.session.rollback()
    db.session.commit()  # a later commit of other work does not send the rolled-back message
    assert backend.sent == [] and _message(db) is None


def test_no_transaction_is_open_while_the_backend_sends(db, backend):
    _queue(db.session)
    db.session.commit()
    assert backend.in_transaction == [False]


def test_the_same_key_queues_once(db, backend):
    assert _queue(db.session) is not None
    assert _queue(db.session) is None  # in the same transaction
    db.session.commit()
    assert _queue(db.session, subject="Another text") is None  # after the commit
    db.session.commit()
    assert len(backend.sent) == 1
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 1


def test_a_double_leaves_the_callers_other_work_intact(db, backend):
    _queue(db.session)
    db.session.commit()
    request = _request(db)
    request.message = "Kept"
    assert _queue(db.session) is None  # only the savepoint of the double is rolled back
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(PaymentRequest, request.id).message == "Kept"


def test_bodies_are_encrypted_at_rest(db, backend):
    _queue(db.session)
    db.session.commit()
    body, html = db.session.execute(sa.text("SELECT body, html FROM lms_stripe_messages")).one()
    assert "tok_Secret123" not in body and "tok_Secret123" not in html
    assert messages.content(_message(db)) == (f"Please pay: {LINK}", f'<a href="{LINK}">Pay</a>')


# -- refused before anything is written ------------------------------------------------------------------

@pytest.mark.parametrize("changes", [
    {"recipient": "lea@example.com\r\nBcc: all@example.com"},
    {"recipient": "Léa <lea@example.com>"},
    {"recipient": "lea@example.com, sam@example.com"},
    {"recipient": ""},
    {"channel": Channel.SMS, "recipient": "not a number", "html": None},
])
def test_bad_recipients_are_refused(db, backend, changes):
    with pytest.raises(InvalidRecipient):
        _queue(db.session, **changes)
    db.session.commit()
    assert backend.sent == [] and _message(db) is None


@pytest.mark.parametrize("changes", [
    {"subject": "Payment\r\nBcc: all@example.com"},
    {"subject": "Payment\nrequest"},
    {"subject": "x" * 501},
    {"body": "  "},
    {"channel": Channel.SMS, "recipient": "+33612345678"},  # with HTML
    {"key": ""},
])
def test_bad_messages_are_refused(db, backend, changes):
    with pytest.raises(InvalidMessage):
        _queue(db.session, **changes)


def test_sms_numbers_are_stored_in_e164_read_in_the_default_region(app, db, backend):
    app.config["LMS_STRIPE_SMS_DEFAULT_REGION"] = "FR"
    message = _queue(db.session, channel="sms", recipient="06 12 34 56 78", html=None, key="sms-1")
    db.session.commit()
    assert message.recipient == "+33612345678" and backend.sent[0].recipient == "+33612345678"


# -- failures ------------------------------------------------------------------------------------------------

def test_a_failure_is_recorded_audited_and_never_raised_into_the_caller(db, backend):
    request = _request(db)
    backend.fail_with = DeliveryFailed("The mail server refused the message: 554 No thanks")
    _queue(db.session, request_id=request.id)
    db.session.commit()  # does not raise
    stored = _message(db)
    assert (stored.status, stored.attempts) == (MessageStatus.FAILED, 1)
    assert stored.last_error == "The mail server refused the message: 554 No thanks"
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == AuditAction.MESSAGE_FAILED))
    assert entry.user_id == "u1" and entry.actor_id is None
    assert '"request_id": %d' % request.id in entry.details and '"attempt": 1' in entry.details


def test_an_unexpected_error_is_stored_by_its_name_only(db, backend):
    backend.fail_with = RuntimeError("password=hunter2 in some library's message")
    _queue(db.session)
    db.session.commit()
    stored = _message(db)
    assert stored.status == MessageStatus.FAILED and "hunter2" not in stored.last_error
    assert "RuntimeError" in stored.last_error


def test_a_misconfigured_backend_fails_the_message_with_what_to_set(app, db):
    app.config.update(LMS_STRIPE_MAIL_BACKEND="smtp", LMS_STRIPE_MAIL_SERVER=None)
    _queue(db.session)
    db.session.commit()
    stored = _message(db)
    assert stored.status == MessageStatus.FAILED and "LMS_STRIPE_MAIL_SERVER" in stored.last_error


# -- retries -------------------------------------------------------------------------------------------------

def _failed_once(db, backend, key="request-1-email"):
    backend.fail_with = DeliveryFailed("451 Try again later")
    _queue(db.session, key=key)
    db.session.commit()
    backend.fail_with = None
    return _message(db, key)


def test_a_failed_message_is_retried_after_a_growing_wait(app, db, backend):
    created = _failed_once(db, backend).created_at.replace(tzinfo=timezone.utc)
    state = app.extensions["lms_stripe"]
    assert messages.retry_failed(state, now=created + timedelta(minutes=4)) == 0  # not due yet
    assert messages.retry_failed(state, now=created + timedelta(minutes=6)) == 1
    assert backend.sent == []  # claimed: sent once the caller commits
    db.session.commit()
    stored = _message(db)
    assert (stored.status, stored.attempts, len(backend.sent)) == (MessageStatus.SENT, 2, 1)


def test_retries_stop_after_the_last_attempt(app, db, backend):
    created = _failed_once(db, backend).created_at.replace(tzinfo=timezone.utc)
    state = app.extensions["lms_stripe"]
    backend.fail_with = DeliveryFailed("451 Try again later")
    waits = []
    for _ in range(10):
        later = created + timedelta(days=1 + len(waits))
        waits.append(messages.retry_failed(state, now=later))
        db.session.commit()
    stored = _message(db)
    assert waits == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    assert (stored.status, stored.attempts) == (MessageStatus.FAILED, messages.MAX_ATTEMPTS)
    audited = db.session.scalars(sa.select(AuditEntry.details).where(AuditEntry.action == AuditAction.MESSAGE_FAILED))
    assert sum('"final": true' in d for d in audited) == 1


@pytest.mark.parametrize("attempts, minutes_due", [(1, 5), (2, 25), (3, 105), (4, 425)])
def test_the_wait_grows_fourfold(app, db, backend, attempts, minutes_due):
    created = _failed_once(db, backend).created_at.replace(tzinfo=timezone.utc)
    db.session.execute(sa.update(Message).values(attempts=attempts))
    state = app.extensions["lms_stripe"]
    assert messages.retry_failed(state, now=created + timedelta(minutes=minutes_due - 1)) == 0
    assert messages.retry_failed(state, now=created + timedelta(minutes=minutes_due)) == 1


def test_a_claimed_message_is_not_claimed_twice(app, db, backend):
    created = _failed_once(db, backend).created_at.replace(tzinfo=timezone.utc)
    state = app.extensions["lms_stripe"]
    later = created + timedelta(hours=1)
    assert messages.retry_failed(state, now=later) == 1
    assert messages.retry_failed(state, now=later) == 0
    db.session.commit()
    assert len(backend.sent) == 1


def test_retry_failed_is_bounded_by_its_limit(app, db, backend):
    for n in range(3):
        _failed_once(db, backend, key=f"k{n}")
    state = app.extensions["lms_stripe"]
    assert messages.retry_failed(state, limit=2, now=datetime.now(timezone.utc) + timedelta(hours=1)) == 2
    db.session.commit()
    assert sorted(m.recipient for m in backend.sent) == ["lea@example.com"] * 2


def test_a_message_whose_delivery_was_lost_is_sent_again(app, db, backend, monkeypatch):
    monkeypatch.setattr(outbox, "deliver", lambda state, message_id: False)  # the process stopped after the commit
    _queue(db.session)
    db.session.commit()
    monkeypatch.undo()
    monkeypatch.setattr(outbox, "_backend", lambda channel: backend)
    created = _message(db).created_at.replace(tzinfo=timezone.utc)
    state = app.extensions["lms_stripe"]
    assert messages.retry_failed(state, now=created + timedelta(minutes=30)) == 0  # may still be on its way
    assert messages.retry_failed(state, now=created + timedelta(hours=2)) == 1
    db.session.commit()
    stored = _message(db)
    assert (stored.status, stored.attempts, len(backend.sent)) == (MessageStatus.SENT, 2, 1)
    assert "interrupted" in stored.last_error


def test_a_retry_that_fails_keeps_the_message_failed_with_its_new_error(app, db, backend):
    created = _failed_once(db, backend).created_at.replace(tzinfo=timezone.utc)
    backend.fail_with = DeliveryFailed("421 Service not available")
    state = app.extensions["lms_stripe"]
    messages.retry_failed(state, now=created + timedelta(hours=1))
    db.session.commit()
    stored = _message(db)
    assert (stored.status, stored.attempts, stored.last_error) == (MessageStatus.FAILED, 2, "421 Service not available")


# -- two transactions racing (PostgreSQL) --------------------------------------------------------------------

@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="two transactions racing on one key need PostgreSQL")
@pytest.mark.parametrize("first_commits", [True, False])
def test_two_transactions_queueing_one_key_write_one_message(app, db, backend, first_commits):
    """The second insert waits for the first transaction: it finds the message if that one committed, and
    writes its own if it rolled back."""
    assert _queue(db.session) is not None  # not committed yet
    outcome, failures = [], []

    def other_worker():
        with app.app_context(), Session(db.engine) as other:
            try:
                outcome.append(_queue(other))
                other.commit()
            except Exception as err:  # noqa: BLE001 - reported below
                failures.append(err)

    thread = threading.Thread(target=other_worker)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive()  # waiting on the unique index
    db.session.commit() if first_commits else db.session.rollback()
    thread.join(10)
    assert failures == [] and not thread.is_alive()
    assert (outcome[0] is None) is first_commits
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 1


def test_other_databases_insert_in_a_savepoint(app, db, backend):
    db.session.execute(sa.update(Message).values(attempts=0))  # the transaction has begun (see _insert_once)
    values = dict(channel=Channel.EMAIL, recipient="lea@example.com", subject="S", body="B", html=None,
                  idempotency_key="k", status=MessageStatus.PENDING, attempts=0, created_at=datetime.now(timezone.utc))
    assert outbox._insert_in_savepoint(db.session, values) is not None
    assert outbox._insert_in_savepoint(db.session, values) is None
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 1


def test_a_hundred_retries_go_out_after_one_commit(app, db, backend):
    backend.fail_with = DeliveryFailed("451 Try again later")
    for n in range(100):
        _queue(db.session, key=f"k{n}")
    db.session.commit()
    backend.fail_with = None
    state = app.extensions["lms_stripe"]
    assert messages.retry_failed(state, now=datetime.now(timezone.utc) + timedelta(hours=1)) == 100
    db.session.commit()
    assert len(backend.sent) == 100
    assert db.session.scalar(sa.select(sa.func.count(Message.id)).where(Message.status == MessageStatus.SENT)) == 100
