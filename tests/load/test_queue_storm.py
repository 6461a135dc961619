"""The webhook storm of issue 17: a thousand Stripe events, each delivered twice, shuffled, from 16 threads at
once, to the demo under gunicorn on PostgreSQL: handled in-process by gunicorn's workers, and through an RQ
queue on a real Redis, whose jobs two ``flask lms-stripe worker`` processes run. Either way: no purchase,
invoice, refund or event lost or doubled, and the ledger per currency equal to what the events say.
"""
from __future__ import annotations

import pytest

from ..queue_support import redis_url  # noqa: F401 - fixture
from .harness import Stack, postgres_url, print_figures, run_scenario

if postgres_url() is None:
    pytest.skip("load tests need PostgreSQL: set LMS_STRIPE_TEST_DATABASE_URL=postgresql+psycopg://...",
                allow_module_level=True)

pytestmark = pytest.mark.postgres

#: About 10.7 events per payment (its checkout, charge, payment intent, customer and invoice events, and the
#: refunds of a tenth of them): a little over 1,000 events.
PAYMENTS = 96
QUEUE_WORKERS = 2


@pytest.mark.parametrize("through", ["in-process", "queue"])
def test_a_thousand_events_delivered_twice_keep_the_books(request, through):
    redis = request.getfixturevalue("redis_url") if through == "queue" else None
    with Stack(postgres_url(), redis_url=redis, queue_workers=QUEUE_WORKERS if redis else 0) as stack:
        result = run_scenario(stack, payments=PAYMENTS, threads=16, side_threads=4, copies=2)
        print_figures(f"a thousand events delivered twice, {through}", result.figures, result.problems)
        logged = stack.log_errors()
    figures = result.figures
    events = figures["events (distinct)"]
    assert events >= 1000 and figures["deliveries planned (2-3 per event)"] == 2 * events
    answers = figures["webhook answers"]
    handled_in_the_request = {"200 handled", "200 outdated"} & set(answers)
    if through == "queue":  # every event to handle was answered "queued" and handled by a worker
        assert "200 queued" in answers and not handled_in_the_request, answers
    else:
        assert "200 handled" in answers and "200 queued" not in answers, answers
    assert (figures["lost"], figures["doubled"]) == (0, 0), result.problems
    assert figures["ledger (database)"] == figures["ledger (events)"]
    assert result.problems == [], (result.problems, logged)
