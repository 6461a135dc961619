"""Load tests: the demo under gunicorn on PostgreSQL, the Stripe sandbox on loopback.

PostgreSQL only (the test modules skip themselves otherwise)::

    LMS_STRIPE_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test pytest -q -s tests/load

Each test gets a fresh stack: its own schema (dropped afterwards), its own sandbox, its own gunicorn.
``LMS_STRIPE_LOAD_PAYMENTS`` sizes the main scenario (default 60 payments, about 430 events).
"""
from __future__ import annotations

import os

import pytest

from .harness import Stack, postgres_url


@pytest.fixture
def stack():
    with Stack(postgres_url()) as running:
        yield running
        errors = running.log_errors()
        if errors:
            print(f"\n   gunicorn logged: {errors}  (log: {running.log_path})")


@pytest.fixture
def load_payments() -> int:
    return max(4, int(os.environ.get("LMS_STRIPE_LOAD_PAYMENTS", "60")))
