"""Idempotency keys: the same key with the same request replays the first answer."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from .errors import StripeError


@dataclass(frozen=True)
class SavedResponse:
    """The first successful answer given for an idempotency key."""

    endpoint: str
    fingerprint: str
    status: int
    body: bytes
    request_id: str


class IdempotencyStore:
    """Saved answers and in-flight requests, per API key and idempotency key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._saved: dict[tuple[str, str], SavedResponse] = {}
        self._in_flight: dict[tuple[str, str], str] = {}

    def begin(self, scope: tuple[str, str], endpoint: str, fingerprint: str) -> SavedResponse | None:
        """Return the answer to replay, or mark the key in flight and return None.

        Raises Stripe's ``idempotency_error`` when the key was used for another
        request, and a 409 when a request with the key is still running.
        """
        with self._lock:
            saved = self._saved.get(scope)
            if saved is not None:
                _check_same_request(scope[1], saved, endpoint, fingerprint)
                return saved
            if scope in self._in_flight:
                raise _in_progress(scope[1])
            self._in_flight[scope] = fingerprint
            return None

    def save(self, scope: tuple[str, str], response: SavedResponse) -> None:
        """Keep a successful answer for later replays."""
        with self._lock:
            self._saved[scope] = response
            self._in_flight.pop(scope, None)

    def release(self, scope: tuple[str, str]) -> None:
        """Forget an in-flight mark (the request ended without a saved answer)."""
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
