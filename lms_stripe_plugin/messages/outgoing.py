"""A message as it leaves: plain values read from the delivery log, handed to a backend."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..core.enums import Channel


@dataclass(frozen=True)
class Outgoing:
    """What a backend sends. ``body`` and ``html`` may hold a payment link: never logged by the real
    backends (the console backend, for development, prints them)."""

    message_id: int
    channel: Channel
    recipient: str
    subject: str
    body: str = field(repr=False)
    html: str | None = field(default=None, repr=False)


class Backend(Protocol):
    """An e-mail or SMS backend: sends one message, or raises (`DeliveryFailed` with a message safe to store,
    or any other error, which is stored by its class name only)."""

    def send(self, outgoing: Outgoing) -> None: ...
