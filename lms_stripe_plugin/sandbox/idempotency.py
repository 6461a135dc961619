"""Idempotency keys, as Stripe's "Idempotent requests" page describes them for API v1.

- Stripe saves the status code and body of the first request made with a key once the
  endpoint has begun to execute, whatever the outcome: 2xx, 4xx and 5xx alike. Retries with
  the key get that saved answer back (``Idempotent-Replayed: true``), 500 included.
- Nothing is saved when the parameters fail validation or when another request with the key
  is still running (409): no endpoint began, so the request can be retried.
- A key is compared with the endpoint and parameters it was first used with; any difference
  is a 400 ``idempotency_error``.
- Keys may be pruned once they are 24 hours old; a key reused after that is a new request.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import StripeError

# Stripe prunes keys once they are at least 24 hours old.
KEY_LIFETIME_SECONDS = 24 * 3600


@dataclass(frozen=True)
class SavedResponse:
    """The answer given the first time a key was used, and when (sandbox time)."""

    endpoint: str
    fingerprint: str
    status: int
    body: bytes
    request_id: str
    saved_at: float = 0.0


class IdempotencyStore:
    """Saved answers and in-flight requests, per account and idempotency key.

    ``clock`` is the sandbox clock, so that ``advance_clock`` ages keys too.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._saved: dict[tuple[str, str], SavedResponse] = {}
        self._in_flight: dict[tuple[str, str], str] = {}

    def begin(self, scope: tuple[str, str], endpoint: str, fingerprint: str) -> SavedResponse | None:
        """Return the answer to replay, or mark the key in flight and return None.

        Raises Stripe's ``idempotency_error`` when the key was used for another
        request, and a 409 when a request with the key is still running.
        """
        with self._lock:
            saved = self._live(scope)
            if saved is not None:
                _check_same_request(scope[1], saved, endpoint, fingerprint)
                return saved
            if scope in self._in_flight:
                raise _in_progress(scope[1])
            self._in_flight[scope] = fingerprint
            return None

    def _live(self, scope: tuple[str, str]) -> SavedResponse | None:
        saved = self._saved.get(scope)
        if saved is not None and self._clock() - saved.saved_at >= KEY_LIFETIME_SECONDS:
            del self._saved[scope]
            return None
        return saved

    def save(self, scope: tuple[str, str], response: SavedResponse) -> None:
        """Keep the answer of a request whose endpoint ran, stamped with the sandbox time."""
        with self._lock:
            self._saved[scope] = SavedResponse(response.endpoint, response.fingerprint, response.status,
                                               response.body, response.request_id, self._clock())
            self._in_flight.pop(scope, None)

    def release(self, scope: tuple[str, str]) -> None:
        """Forget an in-flight mark (the request ended without an answer to keep)."""
        with self._lock:
            self._in_flight.pop(scope, None)

    def clear(self) -> None:
        """Forget everything (sandbox reset)."""
        with self._lock:
            self._saved.clear()
            self._in_flight.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._saved)


def _check_same_request(key: str, saved: SavedResponse, endpoint: str, fingerprint: str) -> None:
    if saved.endpoint != endpoint:
        raise StripeError(
            f"Keys for idempotent requests can only be used for the same endpoint they were first "
            f"used for ('{saved.endpoint}' vs '{endpoint}'). Try using a key other than '{key}' if "
            "you meant to execute a different request.",
            type="idempotency_error",
        )
    if saved.fingerprint != fingerprint:
        raise StripeError(
            "Keys for idempotent requests can only be used with the same parameters they were first "
            f"used with. Try using a key other than '{key}' if you meant to execute a different request.",
            type="idempotency_error",
        )


def _in_progress(key: str) -> StripeError:
    return StripeError(
        "There is currently another in-progress request using this Idempotent Key (that probably "
        f"means you submitted twice, and the other request is still going through): {key}. "
        "Please try again later.",
        status=409,
        type="idempotency_error",
        code="idempotency_key_in_use",
    )


def fingerprint_of(params: dict[str, Any]) -> str:
    """A canonical text of the parsed parameters, independent of their order on the wire."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"))
