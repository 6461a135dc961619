"""``POST /payments/webhook``: Stripe's deliveries."""
from __future__ import annotations

from flask import jsonify, request

from ..sync import webhooks
from ..errors import PaymentsError
from ._common import state

MAX_WEBHOOK_BYTES = 512 * 1024


def register(bp) -> None:
    bp.add_url_rule("/webhook", "webhook", receive, methods=["POST"])


def receive():
    if request.content_length is not None and request.content_length > MAX_WEBHOOK_BYTES:
        return jsonify({"error": {"message": "Payload too large."}}), 413
    payload = request.get_data(cache=False)
    if len(payload) > MAX_WEBHOOK_BYTES:
        return jsonify({"error": {"message": "Payload too large."}}), 413
    try:
        outcome = webhooks.receive(state(), payload, request.headers.get("Stripe-Signature"))
    except PaymentsError as err:
        state().session.rollback()
        return jsonify({"error": {"message": err.message}}), err.status_code
    return jsonify({"status": outcome.message}), outcome.status
