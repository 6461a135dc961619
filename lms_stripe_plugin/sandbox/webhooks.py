"""Webhook signing and delivery, with retries: in order of creation, or shuffled and concurrent when asked."""

from __future__ import annotations

import collections
import hashlib
import hmac
import logging
import random
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
    """One try at delivering one event; ``status_code`` is None when no answer came. ``endpoint`` is
    ``account`` (the platform's own events) or ``connect`` (events of connected accounts)."""

    event_id: str
    event_type: str
    attempt: int
    status_code: int | None
    error: str | None
    at: float
    endpoint: str = "account"

    @property
    def succeeded(self) -> bool:
        """Whether the endpoint answered 2xx."""
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class _Delivery:
    event_id: str
    event_type: str
    payload: bytes


@dataclass(frozen=True)
class DeliveryOrder:
    """How deliveries are ordered: Stripe does not guarantee the order of events.

    ``shuffle`` delivers the events of one request (or scheduled task) in random order
    (``seed`` makes it repeatable); ``concurrency`` is how many deliveries run at once.
    """

    shuffle: bool = False
    concurrency: int = 1
    seed: int | None = None


class Deliverer:
    """Queue of event payloads delivered to a URL or a sink.

    Asynchronous mode delivers from ``order.concurrency`` daemon threads; synchronous
    mode delivers when :meth:`flush` is called (the app calls it at the end of every
    request, outside the state lock), with as many threads. By default events go out
    one at a time in order of creation. When shuffling, the events a request emits are
    held until it ends (:meth:`flush`) and then queued in random order.
    """

    def __init__(self, *, url: str | None, secret: str, sink: WebhookSink | None, asynchronous: bool,
                 backoff: float, max_attempts: int, stop_event: threading.Event,
                 order: DeliveryOrder | None = None, endpoint: str = "account") -> None:
        self.url, self.secret, self.sink = url, secret, sink
        self.endpoint = endpoint
        self.asynchronous = asynchronous
        self.backoff, self.max_attempts = backoff, max_attempts
        self.order = order or DeliveryOrder()
        if self.order.concurrency < 1:
            raise ValueError("webhook_concurrency must be at least 1.")
        self._random = random.Random(self.order.seed)
        self._stop = stop_event
        self._cond = threading.Condition()
        self._queue: collections.deque[_Delivery] = collections.deque()
        self._held: list[_Delivery] = []
        self._busy = 0
        self._attempts: list[DeliveryAttempt] = []
        self._threads: list[threading.Thread] = []
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
            delivery = _Delivery(event_id, event_type, payload)
            if self.order.shuffle:
                self._held.append(delivery)
                return
            self._queue.append(delivery)
            if self.asynchronous:
                self._ensure_threads()
            self._cond.notify_all()

    def _release_held(self) -> None:
        with self._cond:
            held, self._held = self._held, []
            self._random.shuffle(held)
            self._queue.extend(held)
            if held and self.asynchronous:
                self._ensure_threads()
            self._cond.notify_all()

    @property
    def attempts(self) -> list[DeliveryAttempt]:
        """Every delivery attempt so far, oldest first."""
        with self._cond:
            return list(self._attempts)

    def pending(self) -> int:
        """Deliveries held, queued or under way."""
        with self._cond:
            return len(self._held) + len(self._queue) + self._busy

    def flush(self) -> None:
        """Release held events; in synchronous mode deliver everything queued before returning."""
        self._release_held()
        if self.asynchronous or getattr(self._flushing, "active", False):
            return  # a sink that calls back into the sandbox must not re-enter delivery
        self._flushing.active = True
        try:
            if self.order.concurrency == 1:
                self._drain()
            else:
                self._drain_concurrently()
        finally:
            self._flushing.active = False

    def _drain(self) -> None:
        while (item := self._take(block=False)) is not None:
            self._deliver_and_release(item)

    def _drain_concurrently(self) -> None:
        workers = [threading.Thread(target=self._drain, name="stripe-sandbox-webhooks-flush", daemon=True)
                   for _ in range(self.order.concurrency)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    def wait(self, timeout: float) -> bool:
        """Wait until nothing is queued or under way; False on timeout."""
        self.flush()
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._held or self._queue or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.1))
        return True

    def clear(self) -> None:
        """Drop queued deliveries and the attempt log (sandbox reset)."""
        with self._cond:
            self._held.clear()
            self._queue.clear()
            self._attempts.clear()

    def close(self) -> None:
        """Wake and end the worker (the stop event must already be set)."""
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)

    def _ensure_threads(self) -> None:
        self._threads = [t for t in self._threads if t.is_alive()]
        while len(self._threads) < self.order.concurrency:
            thread = threading.Thread(target=self._loop, name=f"stripe-sandbox-webhooks-{self.endpoint}", daemon=True)
            thread.start()
            self._threads.append(thread)

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
            record = DeliveryAttempt(item.event_id, item.event_type, attempt, status, error, time.time(), self.endpoint)
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
