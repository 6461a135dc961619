"""The delivery log: a message is written in the caller's transaction and sent once that has committed.

`queue` writes a `Message` (pending) with the caller's work, and defers its delivery (`core.jobs.defer`):
nothing goes out if the caller rolls back, and the idempotency key's unique constraint writes one message
per purpose even when two transactions race. `deliver` is that job: it reads the message in a short read
of its own, so that no transaction is open while the mail server or the SMS provider answers, sends it,
and records the outcome in the job's unit of work (`core.jobs.run` commits it). A failure is recorded,
logged and audited, never raised into the work that asked for the message, which is committed already.
`retry_failed` claims the failed messages that are due and defers their delivery the same way.

Bodies are encrypted at rest (`core.crypto`): they hold payment links, whose tokens are otherwise kept
only as hashes. `content` reads them back.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..core import audit, crypto
from ..core.enums import AuditAction, Channel, MessageStatus
from ..core.i18n import gettext as _
from ..core.jobs import defer, run
from ..core.models import Message, PaymentRequest, utcnow
from ..core.state import PluginState, this_app
from ..core.txn import real_session
from ..errors import ConfigurationError
from .addresses import check_email, check_header, normalize_phone
from .errors import InvalidMessage, MessageError
from .mail import mail_backend
from .outgoing import Backend, Outgoing
from .sms import sms_backend

log = logging.getLogger("lms_stripe_plugin.messages")

#: A message is tried at most this many times in all.
MAX_ATTEMPTS = 5
#: Each wait before a retry is this many times the one before (the first is `retry_failed`'s ``older_than``).
GROWTH = 4
#: The longest idempotency key and subject the table holds.
MAX_KEY, MAX_SUBJECT = 128, 500
_BATCH = "lms_stripe_messages_batch"
_INTERRUPTED = "The delivery was interrupted before its outcome was recorded; sent again."


def queue(session, *, channel: Channel | str, recipient: str, subject: str, body: str, html: str | None = None,
          idempotency_key: str, request_id: int | None = None, reminder_id: int | None = None) -> Message | None:
    """Write a message (pending) in the caller's transaction; it is sent after the caller commits.

    ``recipient`` is an e-mail address, or for an SMS a phone number (stored in E.164; a national number is
    read in ``LMS_STRIPE_SMS_DEFAULT_REGION``). ``subject`` is the e-mail's (for an SMS, a title for the
    delivery log). ``idempotency_key`` names the message's purpose (a request's sending, a reminder step):
    None is returned, and nothing queued, when a message with that key exists. Raises `InvalidRecipient` or
    `InvalidMessage` (nothing written) for a recipient or subject that cannot go out.
    """
    channel = Channel(channel)
    values = dict(channel=channel, recipient=_recipient(channel, recipient), subject=_subject(subject),
                  body=crypto.encrypt(_body(body)), html=_html(channel, html), idempotency_key=_key(idempotency_key),
                  request_id=request_id, reminder_id=reminder_id, status=MessageStatus.PENDING, attempts=0,
                  created_at=utcnow())
    message_id = _insert_once(session, values)
    if message_id is None:
        return None
    _schedule(session, message_id, 0)
    return session.get(Message, message_id)


def _recipient(channel: Channel, recipient: str) -> str:
    if channel is Channel.SMS:
        return normalize_phone(recipient, region=default_region(current_app.config))
    return check_email(recipient)


def default_region(config) -> str | None:
    """Where national phone numbers are read: ``LMS_STRIPE_SMS_DEFAULT_REGION``, else the school's country
    (``LMS_STRIPE_TAX_COUNTRY``)."""
    return config.get("LMS_STRIPE_SMS_DEFAULT_REGION") or config.get("LMS_STRIPE_TAX_COUNTRY") or None


def _subject(subject: str) -> str:
    if len(subject) > MAX_SUBJECT:
        raise InvalidMessage(_("The subject is longer than %(max)s characters.", max=MAX_SUBJECT), code="subject")
    return check_header(subject)


def _body(body: str) -> str:
    if not body or not body.strip():
        raise InvalidMessage(_("The message has no text."), code="body")
    return body


def _html(channel: Channel, html: str | None) -> str | None:
    if html and channel is Channel.SMS:
        raise InvalidMessage(_("An SMS has no HTML version."), code="html")
    return crypto.encrypt(html) if html else None


def _key(key: str) -> str:
    if not key or len(key) > MAX_KEY:
        raise InvalidMessage(f"The idempotency key must have 1 to {MAX_KEY} characters.", code="key")
    return key


def _insert_once(session, values: dict) -> int | None:
    """Insert the message unless its key exists; its id, or None for a double.

    The key's unique constraint decides, even between two transactions: the second insert waits for the
    first, and writes nothing if that one commits. PostgreSQL and SQLite say so without an error
    (``INSERT … ON CONFLICT DO NOTHING``), so the caller's transaction goes on untouched; and on SQLite no
    savepoint opens the transaction (the sqlite3 driver would commit it when the savepoint is released).
    """
    dialect = session.get_bind(mapper=Message).dialect.name
    if dialect not in ("postgresql", "sqlite"):
        return _insert_in_savepoint(session, values)
    upsert = postgresql.insert(Message) if dialect == "postgresql" else sqlite.insert(Message)
    return session.scalar(upsert.values(**values).on_conflict_do_nothing(index_elements=[Message.idempotency_key])
                          .returning(Message.id))


def _insert_in_savepoint(session, values: dict) -> int | None:
    """Other databases: insert in a savepoint, of which only the savepoint is rolled back on a double."""
    try:
        with session.begin_nested():
            return session.scalar(insert(Message).values(**values).returning(Message.id))
    except IntegrityError:
        if session.scalar(select(Message.id).where(Message.idempotency_key == values["idempotency_key"])) is None:
            raise  # another constraint: a caller's mistake, not a double
        return None


def content(message: Message) -> tuple[str, str | None]:
    """A stored message's text and HTML, decrypted (for a page that shows what was sent)."""
    return crypto.decrypt(message.body), crypto.decrypt(message.html) if message.html else None


# -- delivery ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Stored:
    """A message's columns, read before sending; the texts still encrypted."""

    id: int
    channel: Channel
    recipient: str
    subject: str
    body: str
    html: str | None
    request_id: int | None


def _schedule(session, message_id: int, attempt: int) -> None:
    """Deliver the message once the caller's transaction commits.

    One follow-up job per transaction delivers all the messages it queued or claimed, one after the other,
    each in a unit of work of its own (`core.jobs.run` commits it): a hundred reminders are a loop, not a
    hundred callbacks run from one another's commits.
    """
    target = real_session(session)
    transaction = target.get_transaction()
    owner, batch = target.info.get(_BATCH, (None, None))
    if batch is None or owner is not transaction:
        batch = []
        target.info[_BATCH] = (transaction, batch)
        defer(session, _deliver_all, batch)
    batch.append((message_id, attempt))


def _deliver_all(state: PluginState, batch: list[tuple[int, int]]) -> None:
    app = this_app()
    for message_id, attempt in batch:
        run(app, deliver, message_id, attempt)


def deliver(state: PluginState, message_id: int, attempt: int = 0) -> bool:
    """The job that sends a pending message and records the outcome in the job's transaction; True if sent.

    ``attempt`` is 0 for a message's first delivery (counted as attempt 1 once it is made), or the attempt
    `retry_failed` claimed it as (counted when claimed). Nothing is done (False) if the message is no longer
    pending at that attempt: sent, or settled by another run.
    """
    stored = _read(state, message_id, attempt)
    if stored is None:
        return False
    error = _attempt(stored)
    counted = max(attempt, 1)
    if _settle(state.session, message_id, attempt, counted, error) and error is not None:
        _audit_failure(state.session, stored, counted, error)
    return error is None


def _read(state: PluginState, message_id: int, attempt: int) -> _Stored | None:
    """The message if it is pending at ``attempt``: read with a session of its own, closed before anything
    is sent, so that no transaction stays open during the delivery. It only reads: nothing to commit."""
    with Session(bind=state.session.get_bind(mapper=Message)) as reader:
        row = reader.get(Message, message_id)
        if row is None or row.status != MessageStatus.PENDING or row.attempts != attempt:
            return None
        return _Stored(row.id, Channel(row.channel), row.recipient, row.subject, row.body, row.html, row.request_id)


def _attempt(stored: _Stored) -> str | None:
    """Send the message; None if the backend took it, else why not (safe to store: no secret)."""
    try:
        outgoing = Outgoing(stored.id, stored.channel, stored.recipient, stored.subject, crypto.decrypt(stored.body),
                            crypto.decrypt(stored.html) if stored.html else None)
        _backend(stored.channel).send(outgoing)
    except (MessageError, ConfigurationError) as err:
        error = err.message
    except Exception as err:  # noqa: BLE001 - any backend error is recorded, never raised into the caller
        log.exception("Message #%s: unexpected error from the %s backend", stored.id, stored.channel)
        error = f"Unexpected error from the {stored.channel} backend ({type(err).__name__})."
    else:
        return None
    log.warning("Message #%s (%s) not delivered: %s", stored.id, stored.channel, error)
    return error


def _backend(channel: Channel) -> Backend:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return mail_backend(app) if channel is Channel.EMAIL else sms_backend(app)


def _settle(session, message_id: int, attempt: int, counted: int, error: str | None) -> bool:
    """Record the outcome, if the message is still pending at this attempt (False: settled meanwhile)."""
    values: dict = {"attempts": counted}
    values.update({"status": MessageStatus.SENT, "sent_at": utcnow()} if error is None
                  else {"status": MessageStatus.FAILED, "last_error": error})
    result = session.execute(update(Message).where(Message.id == message_id, Message.status == MessageStatus.PENDING,
                                                   Message.attempts == attempt)
                             .values(**values).execution_options(synchronize_session=False))
    return result.rowcount == 1


def _audit_failure(session, stored: _Stored, attempt: int, error: str) -> None:
    user_id = (session.scalar(select(PaymentRequest.user_id).where(PaymentRequest.id == stored.request_id))
               if stored.request_id else None)
    audit.record(session, AuditAction.MESSAGE_FAILED, user_id=user_id, message_id=stored.id,
                 channel=str(stored.channel), request_id=stored.request_id, attempt=attempt,
                 final=attempt >= MAX_ATTEMPTS, error=error)


# -- retries -------------------------------------------------------------------------------------------------

def retry_failed(state: PluginState, *, limit: int = 100, older_than: timedelta = timedelta(minutes=5),
                 stale_after: timedelta = timedelta(hours=1), now: datetime | None = None) -> int:
    """Claim up to ``limit`` failed messages that are due for another attempt; they are sent, each in a unit
    of work of its own, once the caller commits. Returns how many were claimed.

    A message is tried `MAX_ATTEMPTS` times at most. The first retry waits ``older_than`` after the message
    was written, and each further wait is `GROWTH` times longer (5 min, 20 min, 1 h 20, 5 h 20 by default;
    counted from the message's creation, the one time the table keeps). A claim is a conditional update
    (failed at n attempts → pending at n + 1), so two runs at once (two machines) never send one message
    twice. A message still pending, never tried, ``stale_after`` after it was written lost its first
    delivery (the process stopped after the commit): it is counted as a failed attempt and retried.
    """
    session, now = state.session, now or utcnow()
    _fail_interrupted(session, now - stale_after)
    due = session.execute(select(Message.id, Message.attempts)
                          .where(Message.status == MessageStatus.FAILED, _due(now, older_than))
                          .order_by(Message.id).limit(limit)).all()
    claimed = 0
    for message_id, attempts in due:
        if _claim(session, message_id, attempts):
            _schedule(session, message_id, attempts + 1)
            claimed += 1
    return claimed


def _due(now: datetime, first_wait: timedelta):
    """Failed messages whose next attempt is due: after n attempts, ``first_wait`` × (1 + 4 + … + 4ⁿ⁻¹)."""
    conditions = [and_(Message.attempts == n, Message.created_at <= now - first_wait * _waits(n))
                  for n in range(1, MAX_ATTEMPTS)]
    return or_(*conditions)


def _waits(attempts: int) -> int:
    return sum(GROWTH ** k for k in range(attempts))


def _claim(session, message_id: int, attempts: int) -> bool:
    result = session.execute(update(Message).where(Message.id == message_id, Message.status == MessageStatus.FAILED,
                                                   Message.attempts == attempts)
                             .values(status=MessageStatus.PENDING, attempts=attempts + 1)
                             .execution_options(synchronize_session=False))
    return result.rowcount == 1


def _fail_interrupted(session, before: datetime) -> None:
    session.execute(update(Message).where(Message.status == MessageStatus.PENDING, Message.attempts == 0,
                                          Message.created_at < before)
                    .values(status=MessageStatus.FAILED, attempts=1, last_error=_INTERRUPTED)
                    .execution_options(synchronize_session=False))
