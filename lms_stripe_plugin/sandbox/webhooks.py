"""Webhook signing and delivery, with retries, in order of event creation."""

from __future__ import annotations

import collections
import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

log = logging.getLogger(__name__)

WebhookSink = Callable[[bytes, dict], int]


def sign_payload(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header value: ``t=<unix time>,v1=<hex HMAC-SHA256 of "t.payload">``.

    It verifies with ``stripe.Webhook.construct_event(payload, header, secret)``.
    """
    t = int(time.time()) if timestamp is None else int(timestamp)
    signed = f"{t}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


@dataclass(frozen=True)
class DeliveryAttempt:
    """One try at delivering one event; ``status_code`` is None when no answer came."""

    event_id: str
    event_type: str
    attempt: int
    status_code: int | None
    error: str | None
    at: float

    @property
    def succeeded(self) -> bool:
        """Whether the endpoint answered 2xx."""
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class _Delivery:
    event_id: str
    event_type: str
    payload: bytes


class Deliverer:
    """Queue of event payloads delivered to a URL or a sink.

    Asynchronous mode delivers from one daemon thread, one event after the other;
    synchronous mode delivers when :meth:`flush` is called (the app calls it at the
    end of every request, outside the state lock).
    """

    def __init__(self, *, url: str | None, secret: str, sink: WebhookSink | None, asynchronous: bool,
                 backoff: float, max_attempts: int, stop_event: threading.Event) -> None:
        self.url, self.secret, self.sink = url, secret, sink
        self.asynchronous = asynchronous
        self.backoff, self.max_attempts = backoff, max_attempts
        self._stop = stop_event
        self._cond = threading.Condition()
        self._queue: collections.deque[_Delivery] = collections.deque()
        self._busy = 0
        self._attempts: list[DeliveryAttempt] = []
        self._thread: threading.Thread | None = None
        self._flushing = threading.local()

    @property
    def enabled(self) -> bool:
        """Whether there is anywhere to deliver to."""
        return bool(self.url or self.sink)

    def enqueue(self, event_id: str, event_type: str, payload: bytes) -> None:
        """Queue an event for delivery (a no-op without a URL or sink)."""
        if not self.enabled:
            return
        with self._cond:
            self._queue.append(_Delivery(event_id, event_type, payload))
            if self.asynchronous:
                self._ensure_thread()
            self._cond.notify_all()

    @property
    def attempts(self) -> list[DeliveryAttempt]:
        """Every delivery attempt so far, oldest first."""
        with self._cond:
            return list(self._attempts)

    def pending(self) -> int:
        """Deliveries queued or under way."""
        with self._cond:
            return len(self._queue) + self._busy

    def flush(self) -> None:
        """Synchronous mode: deliver everything queued, in the calling thread."""
        if self.asynchronous or getattr(self._flushing, "active", False):
            return  # a sink that calls back into the sandbox must not re-enter delivery
        self._flushing.active = True
        try:
            while (item := self._take(block=False)) is not None:
                self._deliver_and_release(item)
        finally:
            self._flushing.active = False

    def wait(self, timeout: float) -> bool:
        """Wait until nothing is queued or under way; False on timeout."""
        self.flush()
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.1))
        return True

    def clear(self) -> None:
        """Drop queued deliveries and the attempt log (sandbox reset)."""
        with self._cond:
            self._queue.clear()
            self._attempts.clear()

    def close(self) -> None:
        """Wake and end the worker (the stop event must already be set)."""
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="stripe-sandbox-webhooks", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            item = self._take(block=True)
            if item is not None:
                self._deliver_and_release(item)

    def _take(self, block: bool) -> _Delivery | None:
        with self._cond:
            if block and not self._queue:
                self._cond.wait(0.25)
            if not self._queue:
                return None
            self._busy += 1
            return self._queue.popleft()

    def _deliver_and_release(self, item: _Delivery) -> None:
        try:
            self._deliver(item)
        finally:
            with self._cond:
                self._busy -= 1
                self._cond.notify_all()

    def _deliver(self, item: _Delivery) -> None:
        for attempt in range(1, self.max_attempts + 1):
            status, error = self._post(item.payload)
            record = DeliveryAttempt(item.event_id, item.event_type, attempt, status, error, time.time())
            with self._cond:
                self._attempts.append(record)
            if record.succeeded or attempt == self.max_attempts:
                return
            # Exponential backoff, cut short when the sandbox stops.
            if self._stop.wait(self.backoff * 2 ** (attempt - 1)):
                return

    def _post(self, payload: bytes) -> tuple[int | None, str | None]:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign_payload(payload, self.secret),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        try:
            if self.sink is not None:
                return int(self.sink(payload, headers)), None
            response = requests.post(self.url, data=payload, headers=headers, timeout=10)
            return response.status_code, None
        except Exception as exc:  # any failure to get an answer counts as a failed attempt
            log.info("webhook delivery failed: %s", exc)
            return None, f"{type(exc).__name__}: {exc}"
