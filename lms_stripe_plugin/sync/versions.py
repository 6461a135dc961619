"""Monotonic webhooks: per Stripe object, the ``created`` time of the last event whose snapshot was applied.

Stripe does not promise the order of its events, and delivers some twice: an event carries the object as it
was when the event was created, so a snapshot older than the one already applied is skipped rather than
allowed to move a state back. ``created`` has a one-second precision: snapshots of the same second are all
applied, and the services' transitions, which only go forward (a refund that succeeded never goes back to
pending, a dispute's status only goes forward), keep their order. Stripe documents one move that looks backward,
a refund that succeeds and fails later: it comes in a newer event, which is applied.

The row of an object is written in the delivery's transaction, so on PostgreSQL the deliveries of one
object's events wait for each other, and a delivery that fails leaves no version behind.
"""
from __future__ import annotations

import json
from typing import Any, Callable, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Select
from sqlalchemy.sql.dml import ReturningInsert

from ..core.models import Event, ObjectVersion

_EVENTS, _VERSIONS = cast(Table, Event.__table__), cast(Table, ObjectVersion.__table__)


def _upsert(insert: Callable[..., postgresql.Insert | sqlite.Insert]) -> ReturningInsert[Any]:
    """INSERT … ON CONFLICT DO UPDATE … WHERE the stored snapshot is not newer … RETURNING: `claim` in one
    statement."""
    table = _VERSIONS
    values = insert(table)
    return values.on_conflict_do_update(
        index_elements=[table.c.stripe_id],
        set_={"event_created": values.excluded.event_created, "event_id": values.excluded.event_id},
        where=table.c.event_created <= values.excluded.event_created).returning(table.c.stripe_id)


#: `claim`'s statement on the dialects that have it: built once (so compiled once), as every delivery runs it.
_UPSERT = {"postgresql": _upsert(postgresql.insert), "sqlite": _upsert(sqlite.insert)}


def claim(session, stripe_id: str, created: int, event_id: str) -> bool:
    """Record that the event ``event_id``, created at ``created``, is about to apply its snapshot of
    ``stripe_id``; False, recording nothing, if a later snapshot was applied already."""
    connection = session.connection(bind_arguments={"mapper": ObjectVersion})
    upsert = _UPSERT.get(connection.dialect.name)
    if upsert is None or not connection.dialect.insert_returning:
        return _claim_portably(session, stripe_id, created, event_id)
    values = {"stripe_id": stripe_id, "event_created": created, "event_id": event_id}
    return connection.execute(upsert, values).first() is not None


def store_and_claim(session, event_row: dict, stripe_id: str,
                    created: int) -> tuple[bool, bool, str | None] | None:
    """On PostgreSQL, in one statement: insert a new event's row (``event_row``, its columns' values), unless
    one has its id, and if it was inserted, `claim` ``stripe_id`` for it. (stored, claimed, the status of the
    row found stored, if it was committed before the statement began); None on other databases, where the
    caller inserts, then claims.

    A delivery's first writes, in one round trip rather than two: a concurrent delivery's insert of the same
    event waits for this transaction and then does nothing; one that finds the row stored claims nothing, and
    learns whether that event was handled."""
    connection = session.connection(bind_arguments={"mapper": Event})
    if connection.dialect.name != "postgresql":
        return None
    row = connection.execute(_STORE_AND_CLAIM, {**event_row, "stripe_id": stripe_id, "event_created": created}).one()
    return bool(row.stored), bool(row.claimed), row.status


def _store_and_claim() -> Select:
    events, table = _EVENTS, _VERSIONS
    stored = (postgresql.insert(events).values({column.key: bindparam(column.key, type_=column.type)
                                                for column in events.columns})
              .on_conflict_do_nothing(index_elements=[events.c.id]).returning(events.c.id).cte("stored"))
    values = postgresql.insert(table).from_select(
        ["stripe_id", "event_created", "event_id"],
        select(bindparam("stripe_id", type_=table.c.stripe_id.type),
               bindparam("event_created", type_=table.c.event_created.type), stored.c.id))
    claimed = values.on_conflict_do_update(
        index_elements=[table.c.stripe_id],
        set_={"event_created": values.excluded.event_created, "event_id": values.excluded.event_id},
        where=table.c.event_created <= values.excluded.event_created).returning(table.c.stripe_id).cte("claimed")
    found = select(events.c.status).where(events.c.id == bindparam("id")).scalar_subquery()  # the statement's snapshot
    return select(select(func.count()).select_from(stored).scalar_subquery().label("stored"),
                  select(func.count()).select_from(claimed).scalar_subquery().label("claimed"),
                  found.label("status"))


_STORE_AND_CLAIM = _store_and_claim()


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
