"""Fault injection: make the next matching API calls fail the way a network or Stripe can."""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import asdict, dataclass
from typing import Any

from .errors import StripeError, invalid_param

FAULT_KINDS = ("500", "429", "timeout", "connection", "card_error")


@dataclass
class Fault:
    """One armed fault: ``kind`` hits the next ``times`` calls matching ``method`` and ``path``.

    ``path`` is an exact path or a shell pattern (``/v1/checkout/sessions/*``); ``method``
    may be ``*``. A ``timeout`` stalls ``timeout_seconds``; with ``after`` the request is
    carried out first and only its answer is held back. A ``500`` fails before the endpoint
    begins (nothing is kept for an idempotency key, so a retry carries the request out); with
    ``after`` the endpoint runs and its answer is replaced by a 500 that the key keeps and
    replays, as Stripe does for a 500 raised while the endpoint executed.
    """

    kind: str
    method: str = "*"
    path: str = "*"
    times: int = 1
    timeout_seconds: float = 30.0
    after: bool = False

    def matches(self, method: str, path: str) -> bool:
        """Whether a request is hit by this fault."""
        method_ok = self.method == "*" or self.method.upper() == method.upper()
        return method_ok and fnmatch.fnmatchcase(path, self.path)

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as the control endpoint lists it."""
        return asdict(self)


def fault_from_json(body: dict[str, Any]) -> Fault:
    """Build a fault from the control endpoint's JSON body, validating it."""
    kind = str(body.get("kind", ""))
    if kind not in FAULT_KINDS:
        raise invalid_param("kind", f"Invalid kind: must be one of {', '.join(FAULT_KINDS)}")
    try:
        fault = Fault(
            kind=kind,
            method=str(body.get("method") or "*"),
            path=str(body.get("path") or "*"),
            times=int(body.get("times", 1)),
            timeout_seconds=float(body.get("timeout_seconds", 30.0)),
            after=bool(body.get("after", False)),
        )
    except (TypeError, ValueError):
        raise invalid_param(None, "times and timeout_seconds must be numbers.") from None
    if fault.times < 1 or fault.timeout_seconds < 0:
        raise invalid_param("times", "times must be at least 1 and timeout_seconds not negative.")
    return fault


class FaultRegistry:
    """Armed faults, consumed in the order they were added."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        """Arm a fault."""
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        """Disarm all faults."""
        with self._lock:
            self._faults.clear()

    def list(self) -> list[Fault]:
        """The faults still armed."""
        with self._lock:
            return list(self._faults)

    def take(self, method: str, path: str) -> Fault | None:
        """Consume one use of the first fault matching this request."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None


def fault_error(fault: Fault) -> StripeError:
    """The error answered for a fault that answers with an HTTP error."""
    if fault.kind == "429":
        return StripeError(
            "Request rate limit exceeded. Learn more about rate limits here "
            "https://stripe.com/docs/rate-limits.",
            status=429,
            type="rate_limit_error",
            code="rate_limit",
            headers={"Retry-After": "1"},
        )
    if fault.kind == "card_error":
        return StripeError(
            "Your card was declined.",
            status=402,
            type="card_error",
            code="card_declined",
            decline_code="generic_decline",
        )
    if fault.kind == "timeout":
        return StripeError(
            f"The sandbox held this request for {fault.timeout_seconds:g} s (injected timeout) "
            "and did not carry it out.",
            status=500,
            type="api_error",
        )
    return StripeError("An unknown error occurred (injected by the sandbox).", status=500, type="api_error")
