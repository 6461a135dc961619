"""Stripe webhooks: verify, store once by id, handle in one transaction, keep what could not be handled.

This is the edge of a delivery: it owns its transactions. A new event's row (processed), its object's
version and the handler's writes are one transaction; a second delivery of the same event, arriving
meanwhile, waits on that row (its primary key) and then finds it handled. When handling fails, everything
rolls back and the event is stored failed, with its traceback, in a transaction of its own: answered 500,
Stripe retries it, and ``flask lms-stripe events replay`` or the administrators' "Stripe events" page
handle it again. Nothing is lost meanwhile: Stripe keeps an event until it is acknowledged.

An event that can never be used (see `shapes` and `_REJECTED`) is stored rejected, with its reason, and
acknowledged (200), so that Stripe stops retrying it; the administrators see it beside the failed ones.

When the host has a queue (`core.queue`), a delivery is checked as above, then the event is stored received
and its handling sent to the queue (`handle_queued`), and the answer (200) goes out at once. The worker
handles it as a replay does (`handle`), in the same transaction; when that fails the event is kept failed,
with its error, and the queue tries again after each of ``LMS_STRIPE_QUEUE_RETRY_DELAYS``; then the
administrators' page and ``flask lms-stripe events replay`` handle it again, as without a queue. A delivery
of an event stored but not settled yet sends its handling again (it may have been lost with a worker):
the job that comes second finds it handled. Without a queue, or when the queue cannot take the job, the
event is handled in this process.
"""
from __future__ import annotations

import json
import traceback
from dataclasses import dataclass
from typing import Any
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from ..core.logs import get_logger
from ..accounts import connect, settings as payment_settings
from ..core import jobs, queue, schools
from ..core.enums import SETTLED_EVENT, EventStatus, RejectReason
from ..core.models import Event, utcnow
from ..core.state import PluginState, this_app
from ..core.txn import real_session
from ..errors import NotFound, PaymentsError
from ..refunds.lifecycle import ExceedsPayment, OtherCurrency
from ..shop.fulfilment import SessionMismatch
from . import versions
from .handlers import HANDLERS, Handling
from .shapes import SHAPES, Rejection, check_event, check_object, stored_id, stored_type

log = get_logger(__name__)

#: Errors that say the event, not our system, is at fault: a retry would change nothing. Anything else
#: (the database, Stripe unreachable, a bug) is a failure, answered 500 and kept for a retry.
_REJECTED: tuple[tuple[type[PaymentsError], RejectReason], ...] = (
    (SessionMismatch, RejectReason.MISMATCH),
    (OtherCurrency, RejectReason.MISMATCH),
    (NotFound, RejectReason.UNKNOWN_OBJECT),
)
#: Errors that say the event does not fit what is recorded so far: a refund counted past what was paid while
#: the failure of an earlier refund, or the payment of a deposit's balance, is still to come (Stripe does not
#: promise the order of its events). Failed, with the reason and no traceback, and answered 500: Stripe (or
#: the queue) delivers it again, and it applies once the events it waits for are handled.
_NOT_YET: tuple[type[PaymentsError], ...] = (ExceedsPayment,)
_DONE = (EventStatus.PROCESSED, EventStatus.IGNORED)
#: What the administrators' page lists.
PROBLEMS = (EventStatus.FAILED, EventStatus.REJECTED)
#: An event stored for the queue and still not handled this long after is taken as lost with its job: a
#: replay handles it.
QUEUED_GRACE = timedelta(minutes=10)


@dataclass(frozen=True)
class Outcome:
    status: int
    message: str


def receive(state: PluginState, payload: bytes, signature: str | None) -> Outcome:
    """Verify and handle one delivery (or, with a queue, store it and send its handling to the queue).
    Raises `WebhookSignatureError` (400) before anything is stored.

    The settings (the signing secrets) and the stored status of the event the body names are read in one
    query, before the signature is checked: a second delivery is answered after one round trip. The status is
    used only once the signature says the body is Stripe's."""
    body = _parsed(payload)
    named = _named_id(body)
    session = state.session
    if (queue.of(this_app()) is not None and not real_session(session).in_transaction()
            and session.get_bind(mapper=Event).dialect.name in _INSERT_NEW):
        # The answer with a queue writes one row, in one statement: each statement commits on its own, with no
        # BEGIN and no COMMIT to wait for (`_receive` starts a transaction if the event is handled here after all).
        session.connection(bind_arguments={"mapper": Event}, execution_options={"isolation_level": "AUTOCOMMIT"})
    settings, status = payment_settings.load_with(session, _SETTINGS_AND_STATUS, {"id": named or ""})
    event = state.gateway.verify_event(payload, signature, settings.webhook_secrets,
                                       current_app.config["LMS_STRIPE_WEBHOOK_TOLERANCE"], parsed=body)
    known = status if named is not None and stored_id(event["id"]) == named else _UNKNOWN
    with schools.scope(connect.school_of(state.session, event.get("account"))):
        return _receive(state, event, payload.decode("utf-8"), settings.livemode, known)


def _parsed(payload: bytes) -> Any:
    """The body parsed once, for the lookup before its signature is checked and then for `verify_event`; None
    if it is no JSON (`verify_event` then refuses it)."""
    try:
        return json.loads(payload)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than Python parses
        return None


def _named_id(body: Any) -> str | None:
    """The key of the event a parsed body names (`stored_id`); None if it names none."""
    event_id = body.get("id") if isinstance(body, dict) else None
    return stored_id(event_id) if isinstance(event_id, str) else None


#: A stored event's status not read yet.
_UNKNOWN = object()


def _receive(state: PluginState, event: dict, text: str, livemode: bool, status=_UNKNOWN) -> Outcome:
    """A verified delivery, as the school it belongs to (in platform mode, the one whose account sent it);
    ``status``: its stored status (None: not stored), when it was read with the settings."""
    key = stored_id(event["id"])
    queued = queue.of(this_app()) is not None
    if status in SETTLED_EVENT:
        return Outcome(200, "already handled")
    if queued:
        outcome = _queue_new(state, key, event, text, livemode, new=status is None)
        if outcome is not None:
            return outcome
        state.session.commit()  # out of autocommit: what follows may write, in one transaction
    if status is _UNKNOWN or queued:  # with a queue, it may have been stored since
        status = _status(state.session, key)
    if status in SETTLED_EVENT:
        return Outcome(200, "already handled")
    if queued and status is not None:  # stored, not handled yet (or failed): its handling is sent again
        return _send(state, key, event, text, livemode)
    if status is not None and schools.platform_mode():
        # Handled as the school it was stored for, as a replay handles it (`handle`), even if its account has
        # become another school's since.
        stored_for = _connection(state.session).execute(_SCHOOL, {"id": key}).scalar()
        if stored_for is not None and stored_for != schools.current():
            with schools.scope(stored_for):
                return _handle(state, key, event, text, livemode, stored=True)
    return _handle(state, key, event, text, livemode, stored=status is not None)


def handle(state: PluginState, row: Event) -> Outcome:
    """Handle a stored event again (a replay, or an administrator's "Handle again"), as its school."""
    with schools.scope(row.school_id):
        livemode = payment_settings.load(state.session).livemode
        return _handle(state, row.id, json.loads(row.payload), row.payload, livemode, stored=True)


def handling_of(state: PluginState, event: dict) -> Handling | None:
    """How an event is handled; None (ignored) for a type without a handler, or for another Stripe account's
    event: in platform mode only the school's connected account's events (``event.account``) are its own, and
    otherwise only events of the keys' own account (no ``account``)."""
    account = event.get("account")
    if account is not None and account != connect.account_of(state):
        return None
    if account is None and schools.platform_mode():
        return None
    return HANDLERS.get(event["type"])


def _handle(state: PluginState, key: str, event: dict, payload: str, livemode: bool, *, stored: bool) -> Outcome:
    session = state.session
    handling = handling_of(state, event)
    try:
        check_event(event, livemode=livemode, handled=handling is not None, payload=payload)
        if handling is None:
            _settle(state, key, event, payload, EventStatus.IGNORED, stored=stored)
            return Outcome(200, "ignored")
        obj = event["data"]["object"]
        check_object(obj, SHAPES[handling.kind], handling.kind)
        extra = handling.read(state, obj) if handling.read is not None else None
        taken, applied = _take(session, key, event, payload, obj, stored)
        if not taken:
            session.rollback()
            return Outcome(200, "already handled")
        if applied:
            handling.apply(state, obj, event, extra)
        session.commit()
    except Exception as err:  # noqa: BLE001 - every outcome is kept on the event
        session.rollback()
        return _failed(state, key, event, payload, err, stored=stored)
    return Outcome(200, "handled" if applied else "outdated")


def _queue_new(state: PluginState, key: str, event: dict, payload: str, livemode: bool, *,
               new: bool) -> Outcome | None:
    """With a queue: a new event of a handled type that passes the checks is stored received (one statement,
    which leaves a stored event untouched), committed, and its handling sent to the queue. An event to ignore
    or to reject that the read found not stored (``new``) is settled at once by `_handle`, which runs no
    handler for it: one more statement, its row with its outcome. None for any other (an event stored already,
    or meanwhile): the path without a queue settles it."""
    handling = handling_of(state, event)
    if handling is None or not _usable(event, handling, livemode, payload):
        return _handle(state, key, event, payload, livemode, stored=False) if new else None
    if not store_received(state.session, key, event, payload):
        state.session.rollback()
        return None
    state.session.commit()
    return _send(state, key, event, payload, livemode)


def _usable(event: dict, handling: Handling, livemode: bool, payload: str) -> bool:
    """Whether an event of a handled type passes the checks (`_handle` runs them again, and keeps their
    outcome)."""
    try:
        check_event(event, livemode=livemode, handled=True, payload=payload)
        check_object(event["data"]["object"], SHAPES[handling.kind], handling.kind)
    except Exception:  # noqa: BLE001 - a rejection, or a failure `_handle` keeps as it is
        return False
    return True


def store_received(session, key: str, event: dict, payload: str) -> bool:
    """Insert the event's row, received (not handled yet), unless one has its id: whether it did. What an
    answer with a queue writes (``benchmarks/webhooks.py`` times it alone)."""
    values = dict(id=key, type=stored_type(event["type"]), livemode=event.get("livemode") is True, payload=payload,
                  status=EventStatus.RECEIVED, attempts=0, received_at=utcnow(), school_id=schools.current())
    return _insert_new(session, values)


def _insert_new(session, values: dict) -> bool:
    """Insert an event's row unless one has its id: whether it did. On PostgreSQL and SQLite, ``INSERT … ON
    CONFLICT DO NOTHING``: a concurrent delivery's insert of the same event waits for that delivery's
    transaction, then does nothing (or inserts, if it rolled back). Elsewhere, an INSERT in a savepoint."""
    connection = _connection(session)
    upsert = _INSERT_NEW.get(connection.dialect.name)
    if upsert is None:
        try:
            with session.begin_nested():
                session.execute(insert(Event).values(**values))
            return True
        except IntegrityError:
            return False
    return connection.execute(upsert, values).scalar() is not None


def _connection(session):
    """The session's connection for the events table, in its transaction. The intake's statements are Core
    statements built once (so compiled once) and run on it: every delivery waits on them, and one row needs
    none of the ORM's unit of work."""
    return session.connection(bind_arguments={"mapper": Event})


def _status(session, key: str) -> EventStatus | str | None:
    """The stored event's status (not its payload), None if it is not stored."""
    return _connection(session).execute(_STATUS, {"id": key}).scalar()


_EVENTS = Event.__table__
_INSERT_NEW = {name: dialect.insert(_EVENTS).on_conflict_do_nothing(index_elements=["id"]).returning(_EVENTS.c.id)
               for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))}
_STATUS = select(_EVENTS.c.status).where(_EVENTS.c.id == bindparam("id"))
_SETTINGS_AND_STATUS = payment_settings.reading(_STATUS.scalar_subquery())
_SCHOOL = select(_EVENTS.c.school_id).where(_EVENTS.c.id == bindparam("id"))


def _send(state: PluginState, key: str, event: dict, payload: str, livemode: bool) -> Outcome:
    """Send a stored event's handling to the queue; if the queue does not take it, handle it here."""
    app = this_app()
    if jobs.enqueue(app, handle_queued, key, retry_delays=tuple(app.config["LMS_STRIPE_QUEUE_RETRY_DELAYS"])):
        return Outcome(200, "queued")
    return _handle(state, key, event, payload, livemode, stored=True)


def handle_queued(state: PluginState, key: str) -> None:
    """The queue's job for a stored event: handled once, as a replay is (`handle`). Raises `jobs.Retry` when
    the handling failed (the event is kept failed, with its error), for the queue to try again."""
    row = state.session.get(Event, key, execution_options={schools.ALL_SCHOOLS: True})
    if row is None or row.status in SETTLED_EVENT:
        state.session.rollback()  # only read: end the transaction
        return
    outcome = handle(state, row)
    if outcome.status >= 500:
        raise jobs.Retry(f"Stripe event {key}: {outcome.message}")


def _take(session, key: str, event: dict, payload: str, obj: dict, stored: bool) -> tuple[bool, bool]:
    """Take the event's row, marked processed by this transaction: inserted now unless ``stored`` (a
    concurrent delivery of the same event waits on it), or the stored one, updated unless settled; then claim
    its object (`versions.claim`). (taken, claimed); not taken if the event was settled meanwhile."""
    if not stored:
        values = _new_values(key, event, payload, EventStatus.PROCESSED)
        found = versions.store_and_claim(session, values, obj["id"], event["created"])
        if found is not None:
            stored_now, claimed, status = found
            if stored_now:
                return True, claimed
            if status in SETTLED_EVENT:
                return False, False
        elif _insert_new(session, values):
            return True, versions.claim(session, obj["id"], event["created"], key)
    # Stored already: by an earlier delivery, or by a concurrent one (handled: see how it ended). Taken by one
    # conditional write, not a read then a write: a concurrent handling of the same stored event (two jobs, a
    # job and a replay) that commits first leaves it nothing to take, on SQLite too, which has no row locks.
    taken = session.execute(update(Event).where(Event.id == key, Event.status.not_in(SETTLED_EVENT)).values(
        status=EventStatus.PROCESSED, reason=None, error=None, attempts=Event.attempts + 1, processed_at=utcnow())
        .execution_options(synchronize_session=False))
    if taken.rowcount != 1:
        return False, False
    return True, versions.claim(session, obj["id"], event["created"], key)


def _new_values(key: str, event: dict, payload: str, status: EventStatus) -> dict:
    now = utcnow()
    return dict(id=key, type=stored_type(event["type"]), livemode=event.get("livemode") is True, payload=payload,
                status=status, attempts=1, error=None, reason=None, received_at=now, processed_at=now,
                school_id=schools.current())


def _new_row(key: str, event: dict, payload: str, status: EventStatus) -> Event:
    return Event(id=key, type=stored_type(event["type"]), livemode=event.get("livemode") is True,
                 payload=payload, status=status, attempts=1, processed_at=utcnow())


def _failed(state: PluginState, key: str, event: dict, payload: str, err: Exception, *,
            stored: bool = True) -> Outcome:
    reason = _rejection(err)
    if reason is not None:
        message = getattr(err, "message", str(err))
        log.warning("Stripe event %s (%s) rejected: %s", key, stored_type(event["type"]), message)
        _settle(state, key, event, payload, EventStatus.REJECTED, reason=reason,
                error=f"{type(err).__name__}: {message}"[:8000], stored=stored)
        return Outcome(200, "rejected")
    if isinstance(err, _NOT_YET):
        message = getattr(err, "message", str(err))
        log.warning("Stripe event %s (%s) does not fit what is recorded yet: %s", key, stored_type(event["type"]),
                    message)
        _settle(state, key, event, payload, EventStatus.FAILED, error=f"{type(err).__name__}: {message}"[:8000],
                stored=stored)
        return Outcome(500, "not applicable yet")
    log.exception("Stripe event %s (%s) failed", key, stored_type(event["type"]))
    _settle(state, key, event, payload, EventStatus.FAILED, error="".join(traceback.format_exception(err))[-8000:],
            stored=stored)
    return Outcome(500, "handler failed")


def _rejection(err: Exception) -> RejectReason | None:
    if isinstance(err, Rejection):
        return err.reason
    return next((reason for kind, reason in _REJECTED if isinstance(err, kind)), None)


def _settle(state: PluginState, key: str, event: dict, payload: str, status: EventStatus, *,
            reason: RejectReason | None = None, error: str | None = None, stored: bool = True) -> None:
    """Store the event's outcome in a transaction of its own; a failure never overwrites the success of a
    concurrent delivery of the same event. The stored row is updated by one conditional write, not read
    then written: a success committed meanwhile (on SQLite too, which has no row locks) is left as it is.
    An event not ``stored`` when this delivery read it is inserted with its outcome (`_insert_new`), one
    statement; if a concurrent delivery stored it meanwhile, that row is left to the conditional write."""
    session = state.session
    if not stored and _insert_new(session, {**_new_values(key, event, payload, status), "reason": reason,
                                            "error": error}):
        session.commit()
        return
    values = dict(status=status, reason=reason, error=error, attempts=Event.attempts + 1, processed_at=utcnow())
    unless_done = () if status in _DONE else (Event.status.not_in(_DONE),)
    for _attempt in range(2):
        moved = session.execute(update(Event).where(Event.id == key, *unless_done).values(**values)
                                .execution_options(synchronize_session=False))
        if moved.rowcount == 1:
            session.commit()
            return
        if _status(session, key) is not None:  # handled by a concurrent delivery: its outcome stays
            session.rollback()
            return
        row = _new_row(key, event, payload, status)
        row.reason, row.error = reason, error
        session.add(row)
        try:
            session.commit()
            return
        except IntegrityError:  # inserted meanwhile by a concurrent delivery: update that row
            session.rollback()


# -- replays and the administrators' page ------------------------------------------------------------------

def replay_failed(state: PluginState, *, limit: int = 500) -> list[tuple[str, Outcome]]:
    """Handle again every stored event whose handling failed (``flask lms-stripe events replay``), and those
    stored for the queue that no worker handled within `QUEUED_GRACE` (their job was lost)."""
    lost = and_(Event.status == EventStatus.RECEIVED, Event.received_at < utcnow() - QUEUED_GRACE)
    everywhere = {schools.ALL_SCHOOLS: True}  # every school's: each is handled as its own school
    ids = state.session.scalars(select(Event.id).where(or_(Event.status == EventStatus.FAILED, lost))
                                .order_by(Event.received_at).limit(limit).execution_options(**everywhere)).all()
    return [(event_id, handle(state, state.session.get(Event, event_id, execution_options=everywhere)))
            for event_id in ids]


def handle_again(state: PluginState, event_id: str) -> Outcome | None:
    """An administrator's "Handle again" of a failed event; None if it is not (or no longer) failed."""
    row = state.session.get(Event, event_id)
    if row is None or row.status != EventStatus.FAILED:
        return None
    return handle(state, row)


def problems(session, *, before: tuple[datetime, str] | None, limit: int) -> tuple[list[Event], bool]:
    """One page of failed and rejected events, newest first, older than ``before`` (received at, id): a
    keyset page; and whether more follow."""
    query = select(Event).where(Event.status.in_(PROBLEMS))
    if before is not None:
        at, event_id = before
        query = query.where(or_(Event.received_at < at, and_(Event.received_at == at, Event.id < event_id)))
    rows = session.scalars(query.order_by(Event.received_at.desc(), Event.id.desc()).limit(limit + 1)).all()
    return list(rows[:limit]), len(rows) > limit


def summary(row: Event, length: int = 240) -> str:
    """Why an event was not handled, in one short line: a rejection's details, or a failure's last line
    (the exception and its message), never its payload."""
    lines = [line.strip() for line in (row.error or "").splitlines() if line.strip()]
    text = lines[-1] if lines else ""
    return text if len(text) <= length else text[:length - 1] + "…"
