"""The load scenario of tests/load, longer: the demo LMS under gunicorn on PostgreSQL, webhook storms.

    .venv/bin/python benchmarks/load.py [--payments 300] [--threads 16] [--side-threads 4]
                                        [--workers 4] [--worker-threads 4] [--seed N] [--no-clicks]
                                        [--database-url postgresql+psycopg://...]
                                        [--queue-workers N [--redis-url redis://...]] [--copies N]

Learners (written straight into the demo's table) buy the public paid courses through the real pages (course page,
CSRF token, Buy → 303 to the offline Stripe sandbox) and pay at the sandbox; a tenth are refunded from the
"dashboard" (full, partial, partial then the rest). Then every event the sandbox emitted is delivered 2-3 times,
shuffled, signed, by --threads threads released in rounds by a barrier, retrying 5xx answers as Stripe does, while
--side-threads threads open the learners' success pages. The database is then checked against the events
(one purchase per payment in its final state, enrollments, invoices, events stored once and none failed, the
ledger per currency). Unless --no-clicks: 10 simultaneous Buy clicks of one learner, and two administrators
cancelling the same invoices at once. The default of 300 payments makes about 3,400 events and 8,500 deliveries.

With --queue-workers N the LMS has an RQ queue (on --redis-url, else a private redis-server started for the run)
and N ``flask lms-stripe worker`` processes run its jobs; the database is checked once they have run them all.
--copies N delivers each event exactly N times instead of 2-3.

PostgreSQL only (a schema of its own, dropped at the end). Exit status 1 when an invariant does not hold.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.load.harness import (Stack, concurrent_cancel, concurrent_checkout, print_figures,  # noqa: E402
                                run_scenario)
from tests.queue_support import RedisServer  # noqa: E402

LOCAL_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payments", type=int, default=300)
    parser.add_argument("--threads", type=int, default=16, help="webhook delivery threads (default 16)")
    parser.add_argument("--side-threads", type=int, default=4, help="threads opening success pages (default 4)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--worker-threads", type=int, default=4, help="threads per gunicorn worker (default 4)")
    parser.add_argument("--buyers", type=int, default=8, help="learners buying at the same time (default 8)")
    parser.add_argument("--seed", type=int, default=20260)
    parser.add_argument("--no-clicks", action="store_true", help="only the webhook storm")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--queue-workers", type=int, default=0, help="RQ workers (default 0: no queue)")
    parser.add_argument("--redis-url", default=None, help="with --queue-workers (default: a private redis-server)")
    parser.add_argument("--copies", type=int, default=None, help="deliveries of each event (default 2-3)")
    args = parser.parse_args()
    base = args.database_url or os.environ.get("LMS_STRIPE_TEST_DATABASE_URL") or LOCAL_POSTGRES
    if not base.startswith("postgresql"):
        print(f"benchmarks/load.py runs on PostgreSQL only, not on {base!r}")
        return 2

    problems: list[str] = []
    started = time.monotonic()
    with contextlib.ExitStack() as running:
        redis_url = args.redis_url
        if args.queue_workers and redis_url is None:
            redis_url = running.enter_context(RedisServer(shutil.which("redis-server") or "redis-server")).url
        stack = running.enter_context(Stack(base, workers=args.workers, threads=args.worker_threads,
                                            redis_url=redis_url, queue_workers=args.queue_workers))
        print(f"gunicorn -w {args.workers} --threads {args.worker_threads} at {stack.url}, sandbox at "
              f"{stack.sandbox.url}, schema {stack.schema}"
              + (f", {args.queue_workers} RQ workers on {redis_url}" if args.queue_workers else ""))
        result = run_scenario(stack, payments=max(4, args.payments), threads=args.threads,
                              side_threads=args.side_threads, seed=args.seed, buyers=args.buyers,
                              copies=args.copies)
        print_figures(f"webhook storm: {args.payments} payments", result.figures, result.problems)
        problems += result.problems
        if not args.no_clicks:
            figures, found = concurrent_checkout(stack, clicks=10)
            print_figures("10 simultaneous Buy clicks", figures, found)
            problems += found
            figures, found = concurrent_cancel(stack)
            print_figures("two administrators cancel the same invoice at once", figures, found)
            problems += found
        errors = stack.log_errors()
        if errors:
            print(f"\ngunicorn logged: {errors} (see {stack.log_path})")
    print(f"\n{'OK' if not problems else f'{len(problems)} PROBLEM(S)'} in {time.monotonic() - started:.1f} s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
