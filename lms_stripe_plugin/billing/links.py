"""Links to a payment request's page: one per message, each a random token of which only the SHA-256 is
stored, so that the database alone opens no page. Every link of a request works while it is open."""
from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select

from ..core.models import PaymentRequest, RequestLink

#: Tokens are 43 characters (32 random bytes); anything much longer is not one of ours.
MAX_TOKEN = 128


def new(session, request: PaymentRequest) -> str:
    """A new link token for the request: returned once (for the message), stored only hashed."""
    token = secrets.token_urlsafe(32)
    session.add(RequestLink(request_id=request.id, token_hash=_hash(token)))
    return token


def request_of(session, token: str) -> PaymentRequest | None:
    """The request a link's token opens, or None."""
    if not token or len(token) > MAX_TOKEN:
        return None
    link = session.scalar(select(RequestLink).where(RequestLink.token_hash == _hash(token)))
    return session.get(PaymentRequest, link.request_id) if link is not None else None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
