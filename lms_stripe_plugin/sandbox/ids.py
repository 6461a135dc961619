"""Object ids with Stripe's prefixes and random suffixes."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def random_string(length: int, alphabet: str = _ALPHABET) -> str:
    """A random string drawn from ``alphabet``."""
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_id(prefix: str, length: int = 24) -> str:
    """An id such as ``pi_3Qx...`` (Stripe puts a digit right after the prefix)."""
    return f"{prefix}_{secrets.choice('123')}{random_string(length - 1)}"


def checkout_session_id() -> str:
    """Test-mode Checkout Session ids are long and start with ``cs_test_``."""
    return "cs_test_a1" + random_string(58)


def customer_id() -> str:
    """Customer ids carry a shorter suffix than most objects."""
    return "cus_" + random_string(14)


def request_id() -> str:
    """The id of an API request, echoed in the ``Request-Id`` header and in events."""
    return "req_" + random_string(14)
