"""The reminders run over 100,000 open payment requests, on PostgreSQL.

    LMS_STRIPE_BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python benchmarks/reminders.py [--requests 100000] [--due 5000] [--batch 200]

Builds a school in a schema of its own with ``--requests`` open requests (one invoice each), of which
``--due`` have a reminder due now and the others are due later or were reminded already, then runs
`tasks.send_due_reminders` as ``flask lms-stripe reminders run`` does (messages through the console backend,
its log off). Prints, from one run:

- the SQL statements of each batch's search for what is due (one per reminder step, whatever the number of
  requests: constant) and of each reminder sent;
- the time per reminder sent and per open request looked at;
- the peak memory growth of the run (flat: batches of ``--batch``, nothing kept across them);
- a second run at once: nothing sent twice.
"""
from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402
from flask import Flask  # noqa: E402
from flask_sqlalchemy import SQLAlchemy  # noqa: E402

from lms_stripe_plugin import StripePayments, migrate, tasks  # noqa: E402
from lms_stripe_plugin.accounts import settings as payment_settings  # noqa: E402
from lms_stripe_plugin.billing import reminders  # noqa: E402

from admin import BenchHost  # noqa: E402

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)


class ReminderHost(BenchHost):
    def user_phone(self, user):
        return None


def build(base_url: str, schema: str, count: int, due: int) -> tuple[Flask, SQLAlchemy]:
    engine = sa.create_engine(base_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    url = base_url + ("&" if "?" in base_url else "?") + f"options=-csearch_path%3D{schema}"
    db = SQLAlchemy()
    app = Flask(f"bench_{schema}")
    app.config.update(SQLALCHEMY_DATABASE_URI=url, SECRET_KEY="bench", SERVER_NAME="lms.bench",
                      LMS_STRIPE_MAIL_BACKEND="console", LMS_STRIPE_MAIL_SENDER="School <school@bench.test>")
    db.init_app(app)
    StripePayments(app, db=db, host=ReminderHost())
    with app.app_context():
        migrate.upgrade()
        payment_settings.save(db.session, {"school_name": "Bench School", "reminder_days": "-3,1,7",
                                           "reminder_max": 3}, actor_id=None)
        db.session.commit()
        _fill(db, count, due)
    return app, db


def _fill(db, count: int, due: int) -> None:
    """``count`` open requests: every ``count // due``-th is 2 days past due (its +1 reminder is due), the
    others are due in 10 days (nothing yet) or were reminded at +1 already (nothing until +7)."""
    invoices, requests, sent = [], [], []
    every = max(1, count // max(1, due))
    for n in range(1, count + 1):
        user = f"u{n % 5000:04d}"
        if n % every == 0 and n // every <= due:
            due_at, reminded = NOW - timedelta(days=2), False
        elif n % 2:
            due_at, reminded = NOW + timedelta(days=10), False
        else:
            due_at, reminded = NOW - timedelta(days=3), True
        invoices.append({"id": n, "stripe_invoice_id": f"in_{n}", "number": f"F-{n:06d}", "user_id": user,
                         "user_email": f"{user}@bench.test", "user_name": user, "currency": "EUR", "net": 25000,
                         "vat": 5000, "gross": 30000, "amount_refunded": 0, "amount_paid": 0,
                         "amount_remaining": 30000, "status": "open", "source": "admin",
                         "issued_at": NOW - timedelta(days=30), "due_at": NOW + timedelta(days=30)})
        requests.append({"id": n, "invoice_id": n, "user_id": user, "amount": 9000, "currency": "EUR",
                         "amount_paid": 0, "status": "open", "due_at": due_at, "locale": "fr", "send_email": True,
                         "send_sms": False, "created_at": NOW - timedelta(days=20)})
        if reminded:
            sent.append({"request_id": n, "step": 1, "created_at": NOW - timedelta(days=2)})
    with db.engine.begin() as conn:
        for chunk in range(0, count, 5000):
            conn.execute(sa.text(
                "INSERT INTO lms_stripe_invoices (id, stripe_invoice_id, number, user_id, user_email, user_name, "
                "currency, net, vat, gross, amount_refunded, amount_paid, amount_remaining, status, source, "
                "issued_at, due_at) VALUES (:id, :stripe_invoice_id, :number, :user_id, :user_email, :user_name, "
                ":currency, :net, :vat, :gross, :amount_refunded, :amount_paid, :amount_remaining, :status, "
                ":source, :issued_at, :due_at)"), invoices[chunk:chunk + 5000])
            conn.execute(sa.text(
                "INSERT INTO lms_stripe_payment_requests (id, invoice_id, user_id, amount, currency, amount_paid, "
                "status, due_at, locale, send_email, send_sms, created_at) VALUES (:id, :invoice_id, :user_id, "
                ":amount, :currency, :amount_paid, :status, :due_at, :locale, :send_email, :send_sms, "
                ":created_at)"), requests[chunk:chunk + 5000])
        for chunk in range(0, len(sent), 5000):
            conn.execute(sa.text("INSERT INTO lms_stripe_reminders (request_id, step, created_at) "
                                 "VALUES (:request_id, :step, :created_at)"), sent[chunk:chunk + 5000])
        for table in ("lms_stripe_invoices", "lms_stripe_payment_requests", "lms_stripe_reminders"):
            conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                 f"(SELECT coalesce(max(id), 1) FROM {table}))"))
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))


class Statements:
    """SQL statements counted by what runs them: the search for what is due, or the sending."""

    def __init__(self, engine):
        self.searches: list[int] = []  # statements of each call of reminders.due
        self.total = 0
        sa.event.listen(engine, "before_cursor_execute", self._count)
        self._original = reminders.due
        reminders.due = self._due  # type: ignore[assignment]

    def _count(self, *args) -> None:
        self.total += 1

    def _due(self, *args, **kwargs):
        before = self.total
        found = self._original(*args, **kwargs)
        self.searches.append(self.total - before)
        return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()
    base = os.environ.get("LMS_STRIPE_BENCH_DATABASE_URL") or os.environ.get("LMS_STRIPE_TEST_DATABASE_URL")
    if not base or not base.startswith("postgresql"):
        sys.exit("Set LMS_STRIPE_BENCH_DATABASE_URL=postgresql+psycopg://... (the figures are PostgreSQL's)")
    logging.getLogger("lms_stripe_plugin").setLevel(logging.WARNING)  # the console backend's lines
    started = time.perf_counter()
    app, db = build(base, "bench_reminders", args.requests, args.due)
    print(f"built {args.requests:,} open requests ({args.due:,} with a reminder due) in "
          f"{time.perf_counter() - started:.0f} s\n")
    with app.app_context():
        statements = Statements(db.engine)
    tracemalloc.start()
    base_memory = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    report = tasks.send_due_reminders(app, now=NOW, batch=args.batch)
    elapsed = time.perf_counter() - started
    peak = (tracemalloc.get_traced_memory()[1] - base_memory) / 2**20
    tracemalloc.stop()
    searches = list(statements.searches)
    sending = statements.total - sum(searches)
    print(f"sent {report.sent:,} reminders ({report.skipped} skipped) in {elapsed:.1f} s: "
          f"{elapsed / max(1, report.sent) * 1000:.2f} ms per reminder sent, "
          f"{elapsed / args.requests * 1e6:.1f} µs per open request")
    print(f"batches searched: {len(searches)}; statements per search: min {min(searches)}, max {max(searches)}, "
          f"median {statistics.median(searches):.0f} (one per reminder step)")
    print(f"statements per reminder sent (claim, send, message delivery): {sending / max(1, report.sent):.1f}")
    print(f"peak memory growth: {peak:.1f} MB")
    again = tasks.send_due_reminders(app, now=NOW, batch=args.batch)
    print(f"a second run at once: {again.sent} sent, {len(statements.searches) - len(searches)} searches")


if __name__ == "__main__":
    main()
