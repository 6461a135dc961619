"""Monotonic webhooks: per Stripe object, the ``created`` time of the last event whose snapshot was applied.

Stripe does not promise the order of its events, and delivers some twice: an event carries the object as it
was when the event was created, so a snapshot older than the one already applied is skipped rather than
allowed to move a state back. ``created`` has a one-second precision: snapshots of the same second are all
applied, and the services' transitions, which only go forward (a refund that succeeded never goes back to
pending, a closed dispute never reopens), keep their order. Stripe documents one move that looks backward,
a refund that succeeds and fails later: it comes in a newer event, which is applied.

The row of an object is written in the delivery's transaction, so on PostgreSQL the deliveries of one
object's events wait for each other, and a delivery that fails leaves no version behind.
"""
from __future__ import annotations

import json
from typing import Callable

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from ..core.models import Event, ObjectVersion
from ..core.txn import real_session

#: The dialects whose INSERT … ON CONFLICT DO UPDATE … RETURNING makes `claim` one statement.
_UPSERT: dict[str, Callable[..., postgresql.Insert | sqlite.Insert]] = {
    "postgresql": postgresql.insert, "sqlite": sqlite.insert}


def claim(session, stripe_id: str, created: int, event_id: str) -> bool:
    """Record that the event ``event_id``, created at ``created``, is about to apply its snapshot of
    ``stripe_id``; False, recording nothing, if a later snapshot was applied already."""
    dialect = real_session(session).get_bind().dialect
    insert = _UPSERT.get(dialect.name)
    if insert is None or not dialect.insert_returning:
        return _claim_portably(session, stripe_id, created, event_id)
    values = insert(ObjectVersion).values(stripe_id=stripe_id, event_created=created, event_id=event_id)
    upsert = values.on_conflict_do_update(
        index_elements=[ObjectVersion.stripe_id],
        set_={"event_created": values.excluded.event_created, "event_id": values.excluded.event_id},
        where=ObjectVersion.event_created <= values.excluded.event_created)
    return session.execute(upsert.returning(ObjectVersion.stripe_id)).first() is not None


def _claim_portably(session, stripe_id: str, created: int, event_id: str) -> bool:
    """`claim` without INSERT … ON CONFLICT: a conditional UPDATE, else an INSERT, compared again with the row
    a concurrent delivery inserted meanwhile."""
    if _move(session, stripe_id, created, event_id):
        return True
    try:
        with session.begin_nested():
            session.add(ObjectVersion(stripe_id=stripe_id, event_created=created, event_id=event_id))
        return True
    except IntegrityError:
        return _move(session, stripe_id, created, event_id)


def _move(session, stripe_id: str, created: int, event_id: str) -> bool:
    moved = session.execute(update(ObjectVersion)
                            .where(ObjectVersion.stripe_id == stripe_id, ObjectVersion.event_created <= created)
                            .values(event_created=created, event_id=event_id)
                            .execution_options(synchronize_session=False))
    return moved.rowcount == 1


def latest_snapshot(session, stripe_id: str) -> dict | None:
    """The object as the last event applied carried it (e.g. an invoice whose event came before its
    payment was recorded), or None if no event of it was handled."""
    payload = session.scalar(select(Event.payload).join(ObjectVersion, ObjectVersion.event_id == Event.id)
                             .where(ObjectVersion.stripe_id == stripe_id))
    if payload is None:
        return None
    obj = json.loads(payload).get("data", {}).get("object")
    return obj if isinstance(obj, dict) else None
