"""Stripe webhooks: verify, store once by id, handle in one transaction, keep failures for replay.

Handlers are small functions in a dispatch table. They re-read state (our rows or Stripe's object)
rather than trusting the order in which events arrive, so running one twice changes nothing.
"""
from __future__ import annotations

import json
import logging
import traceback
from dataclasses import dataclass
from typing import Callable

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from . import settings as payment_settings
from .fulfillment import EXPAND_SESSION, SessionMismatch, sync_checkout_session
from .disputes import sync_dispute
from .invoices import sync_invoice
from .refunds import purchase_for_payment, sync_refund
from .models import Event, utcnow

log = logging.getLogger(__name__)

def refresh_checkout_session(state, obj: dict, event: dict) -> None:
    settings = payment_settings.load(state.session)
    cs = state.gateway.retrieve_checkout_session(obj["id"], api_key=settings.secret_key, expand=EXPAND_SESSION)
    if (cs.get("metadata") or {}).get("lms_purchase_id") is None:
        return  # a session another integration created on the same account
    sync_checkout_session(state, cs)


def refresh_invoice(state, obj: dict, event: dict) -> None:
    if (obj.get("metadata") or {}).get("lms_purchase_id") is None:
        return
    settings = payment_settings.load(state.session)
    sync_invoice(state, state.gateway.retrieve_invoice(obj["id"], api_key=settings.secret_key))


def refresh_refund(state, obj: dict, event: dict) -> None:
    settings = payment_settings.load(state.session)
    sync_refund(state, state.gateway.retrieve_refund(obj["id"], api_key=settings.secret_key))


def refresh_charge_refunds(state, obj: dict, event: dict) -> None:
    if purchase_for_payment(state, obj.get("payment_intent")) is None:
        return
    settings = payment_settings.load(state.session)
    for stripe_refund in state.gateway.list_all("refunds", {"charge": obj["id"]}, api_key=settings.secret_key):
        sync_refund(state, stripe_refund)


def refresh_dispute(state, obj: dict, event: dict) -> None:
    settings = payment_settings.load(state.session)
    sync_dispute(state, state.gateway.retrieve_dispute(obj["id"], api_key=settings.secret_key))


HANDLERS: dict[str, Callable] = {
    "checkout.session.completed": refresh_checkout_session,
    "checkout.session.async_payment_succeeded": refresh_checkout_session,
    "checkout.session.async_payment_failed": refresh_checkout_session,
    "checkout.session.expired": refresh_checkout_session,
    "invoice.finalized": refresh_invoice,
    "invoice.paid": refresh_invoice,
    "refund.created": refresh_refund,
    "refund.updated": refresh_refund,
    "refund.failed": refresh_refund,
    "charge.refund.updated": refresh_refund,
    "charge.refunded": refresh_charge_refunds,
    "charge.dispute.created": refresh_dispute,
    "charge.dispute.updated": refresh_dispute,
    "charge.dispute.closed": refresh_dispute,
}


def register_handler(event_type: str, handler: Callable) -> None:
    HANDLERS[event_type] = handler


@dataclass(frozen=True)
class Outcome:
    status: int
    message: str


def receive(state, payload: bytes, signature: str | None) -> Outcome:
    """Verify and handle one delivery. Raises `WebhookSignatureError` (400) before anything is stored."""
    settings = payment_settings.load(state.session)
    event = state.gateway.verify_event(payload, signature, settings.webhook_secrets,
                                       current_app.config["LMS_STRIPE_WEBHOOK_TOLERANCE"])
    row = _store(state.session, event, payload)
    if row.status in ("processed", "ignored", "rejected"):
        return Outcome(200, "already handled")
    return handle(state, row, event)


def _store(session, event: dict, payload: bytes) -> Event:
    row = session.get(Event, event["id"])
    if row is not None:
        return row
    row = Event(id=event["id"], type=event["type"], livemode=bool(event.get("livemode")),
                payload=payload.decode("utf-8"), status="received")
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()  # the same event, delivered concurrently
        row = session.get(Event, event["id"])
    return row


def handle(state, row: Event, event: dict | None = None) -> Outcome:
    """Run the handler of a stored event; its writes and the event's new status commit together."""
    session = state.session
    event = event or json.loads(row.payload)
    handler = HANDLERS.get(row.type)
    if handler is None:
        row.status, row.processed_at, row.attempts = "ignored", utcnow(), row.attempts + 1
        session.commit()
        return Outcome(200, "ignored")
    session.commit()  # handlers start by reading Stripe: no transaction is held across that call
    try:
        handler(state, event["data"]["object"], event)
        row.status, row.processed_at, row.error, row.attempts = "processed", utcnow(), None, row.attempts + 1
        session.commit()
    except SessionMismatch as err:
        # Signed by Stripe but claiming a purchase it does not pay: nothing was done, and a retry
        # would not change that, so it is acknowledged and kept for the administrators.
        session.rollback()
        log.warning("Stripe event %s rejected: %s", row.id, err.message)
        _mark(session, row.id, "rejected", err)
        return Outcome(200, "rejected")
    except Exception as err:  # noqa: BLE001 - any failure is kept on the event for replay
        session.rollback()
        log.exception("Stripe event %s (%s) failed", row.id, row.type)
        _mark(session, row.id, "failed", err)
        return Outcome(500, "handler failed")
    return Outcome(200, "handled")


def _mark(session, event_id: str, status: str, err: Exception) -> None:
    row = session.get(Event, event_id)
    row.status = status
    row.attempts += 1
    row.error = "".join(traceback.format_exception(err))[-8000:]
    session.commit()


def replay_failed(state, *, limit: int = 500) -> list[tuple[str, Outcome]]:
    """Handle again every stored event whose handling failed (``flask lms-stripe events replay``)."""
    ids = state.session.scalars(select(Event.id).where(Event.status.in_(("failed", "received")))
                                .order_by(Event.received_at).limit(limit)).all()
    return [(event_id, handle(state, state.session.get(Event, event_id))) for event_id in ids]
