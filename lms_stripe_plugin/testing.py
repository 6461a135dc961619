"""Test helpers for hosts: sign and post Stripe webhooks to an app under test.

    from lms_stripe_plugin.testing import post_webhook
    response = post_webhook(client, {"id": "evt_1", "type": "checkout.session.completed", ...}, "whsec_...")
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time


def sign_payload(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header value for ``payload``, as Stripe computes it."""
    timestamp = int(time.time()) if timestamp is None else int(timestamp)
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def post_webhook(client, event: dict | bytes, secret: str, *, url: str = "/payments/webhook",
                 timestamp: int | None = None):
    """POST a signed event to the plugin's webhook with a Flask test client; returns the response."""
    payload = event if isinstance(event, bytes) else json.dumps(event).encode()
    return client.post(url, data=payload, content_type="application/json",
                       headers={"Stripe-Signature": sign_payload(payload, secret, timestamp)})
