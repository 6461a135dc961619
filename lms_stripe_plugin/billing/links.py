"""Random link tokens, of which only the SHA-256 is stored, so that the database alone opens no page: the links
to a payment request's page (one per message sent; every link of a request works while it is open), and the
address of a payment link (`payment_links`)."""
from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select

from ..core import schools
from ..core.models import PaymentRequest, RequestLink

#: Tokens are 43 characters (32 random bytes); anything much longer is not one of ours.
MAX_TOKEN = 128


def new_token() -> str:
    """A new random token (43 URL-safe characters)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str | None:
    """What is stored of a token to find it again; None for text that cannot be one of ours."""
    if not token or len(token) > MAX_TOKEN:
        return None
    return hashlib.sha256(token.encode()).hexdigest()


def new(session, request: PaymentRequest) -> str:
    """A new link token for the request: returned once (for the message), stored only hashed."""
    token = new_token()
    session.add(RequestLink(request_id=request.id, token_hash=token_hash(token)))
    return token


def request_of(session, token: str) -> PaymentRequest | None:
    """The request a link's token opens, or None."""
    hashed = token_hash(token)
    if hashed is None:
        return None
    link = schools.by_token(session, select(RequestLink).where(RequestLink.token_hash == hashed))
    return session.get(PaymentRequest, link.request_id) if link is not None else None
