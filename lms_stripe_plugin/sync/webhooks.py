"""Stripe webhooks: verify, store once by id, handle in one transaction, keep failures for replay.

This is the edge of a delivery: it owns its transactions. The event row is committed first (so a crash
loses nothing); then the handler's writes and the event's new status commit together, or both roll back
and the failure is kept on the event.
"""
from __future__ import annotations

import json
import traceback
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..core.logs import get_logger
from ..core.state import PluginState
from ..accounts import settings as payment_settings
from ..core.enums import SETTLED_EVENT, EventStatus
from ..core.models import Event, utcnow
from ..shop.fulfilment import SessionMismatch
from .handlers import HANDLERS

log = get_logger(__name__)


@dataclass(frozen=True)
class Outcome:
    status: int
    message: str


def receive(state: PluginState, payload: bytes, signature: str | None) -> Outcome:
    """Verify and handle one delivery. Raises `WebhookSignatureError` (400) before anything is stored."""
    settings = payment_settings.load(state.session)
    event = state.gateway.verify_event(payload, signature, settings.webhook_secrets,
                                       current_app.config["LMS_STRIPE_WEBHOOK_TOLERANCE"])
    row = _store(state.session, event, payload)
    if row.status in SETTLED_EVENT:
        return Outcome(200, "already handled")
    return handle(state, row, event)


def _store(session, event: dict, payload: bytes) -> Event:
    row = session.get(Event, event["id"])
    if row is not None:
        return row
    row = Event(id=event["id"], type=event["type"], livemode=bool(event.get("livemode")),
                payload=payload.decode("utf-8"), status=EventStatus.RECEIVED)
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()  # the same event, delivered concurrently
        row = session.get(Event, event["id"])
    return row


def handle(state: PluginState, row: Event, event: dict | None = None) -> Outcome:
    """Run the handler of a stored event; its writes and the event's new status commit together."""
    session = state.session
    event = event or json.loads(row.payload)
    handler = HANDLERS.get(row.type)
    if handler is None:
        row.status, row.processed_at, row.attempts = EventStatus.IGNORED, utcnow(), row.attempts + 1
        session.commit()
        return Outcome(200, "ignored")
    session.commit()  # handlers start by reading Stripe: no transaction is held across that call
    try:
        handler(state, event["data"]["object"], event)
        row.status, row.processed_at, row.error = EventStatus.PROCESSED, utcnow(), None
        row.attempts += 1
        session.commit()
    except SessionMismatch as err:
        # Signed by Stripe but claiming a purchase it does not pay: nothing was done, and a retry
        # would not change that, so it is acknowledged and kept for the administrators.
        session.rollback()
        log.warning("Stripe event %s rejected: %s", row.id, err.message)
        _mark(session, row.id, EventStatus.REJECTED, err)
        return Outcome(200, "rejected")
    except Exception as err:  # noqa: BLE001 - any failure is kept on the event for replay
        session.rollback()
        log.exception("Stripe event %s (%s) failed", row.id, row.type)
        _mark(session, row.id, EventStatus.FAILED, err)
        return Outcome(500, "handler failed")
    return Outcome(200, "handled")


def _mark(session, event_id: str, status: EventStatus, err: Exception) -> None:
    row = session.get(Event, event_id)
    row.status = status
    row.attempts += 1
    row.error = "".join(traceback.format_exception(err))[-8000:]
    session.commit()


def replay_failed(state: PluginState, *, limit: int = 500) -> list[tuple[str, Outcome]]:
    """Handle again every stored event whose handling failed (``flask lms-stripe events replay``)."""
    ids = state.session.scalars(select(Event.id).where(Event.status.in_((EventStatus.FAILED, EventStatus.RECEIVED)))
                                .order_by(Event.received_at).limit(limit)).all()
    return [(event_id, handle(state, state.session.get(Event, event_id))) for event_id in ids]
