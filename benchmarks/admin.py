"""The administrators' invoice list at 100,000 invoices, on PostgreSQL (the plugin's pages alone).

    LMS_STRIPE_BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python benchmarks/admin.py [--invoices 100000] [--small 1000] [--rounds 15]

Builds two shops in schemas of their own (``--small`` and ``--invoices`` invoices; learners, courses,
statuses and three currencies spread over them) and prints, from one run:

- page 1 of the list at 100k ÷ page 1 at 1k, for each filter and search (target ≤ 1.3);
- a page 50,000 rows deep ÷ page 1, at 100k, for each filter (target ≤ 1.3);
- the list sorted by each column, both ways (``sort``): page 1 and a page 50,000 rows deep at 100k ÷ page 1
  at 1k (target ≤ 1.3), and whether the page reads an index in order (no sort of the whole table);
- whether PostgreSQL's plan of each page reads the invoices table sequentially (it must not);
- the CSV export of every invoice: peak memory growth (target < 30 MB) and time to the first byte ÷ total
  time (target < 0.05); the same figures for the XLSX export.

Median times of ``--rounds`` pages taken in turn; ratios from the same run.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402
from flask import Flask, request  # noqa: E402
from flask_sqlalchemy import SQLAlchemy  # noqa: E402

from lms_stripe_plugin import StripePayments, migrate  # noqa: E402
from lms_stripe_plugin.billing import listing  # noqa: E402

CURRENCIES = ("EUR", "EUR", "EUR", "CHF", "USD")
STATUSES = ("paid",) * 8 + ("partially_refunded", "cancelled", "refund_failed", "open")
#: Whatever the size, each learner has 100 invoices and each course 1% of them, so that every filter's first
#: page is full (50 rows) in both shops and the ratio compares the same page.
FILTERS = {"no filter": {}, "status": {"status": "refund_failed"}, "course": {"course": "c7"},
           "learner": {"learner": "u0007"}}
#: Names as a school's learners have them (40 first names, 100 family names): the search looks up the
#: start of each word, as an administrator types a learner's name.
FIRST = tuple(f"{a}{b}" for a in ("Lé", "Sa", "Chlo", "Hu", "I", "Lu", "Em", "Ju") for b in ("a", "o", "ne", "lie", "m"))
LAST = tuple(f"{a}{b}" for a in ("Mar", "Ber", "Dub", "Tho", "Rob", "Pet", "Dur", "Ler", "Mor", "Gar")
             for b in ("tin", "nard", "ois", "mas", "ert", "it", "and", "oy", "eau", "cia"))
#: Every column the list sorts on, both ways ("-": descending), unfiltered: the whole table in order.
SORTS = {f"sort={sign}{key}": {"sort": f"{sign}{key}"} for key in listing.SortKey for sign in ("", "-")}
SEARCHES = {"search: number": {"q": "INV-000777"}, "search: e-mail": {"q": "learner0007@"},
            "search: learner name": {"q": f"{FIRST[7 % len(FIRST)]} {LAST[7 % len(LAST)]}"}}


class BenchHost:
    """The smallest host: the administrator signs in by header, courses and learners exist by id."""

    def current_user(self):
        return request.headers.get("X-User")

    def get_user(self, user_id):
        return user_id

    def get_course(self, course_id):
        return course_id

    def user_id(self, user):
        return user

    def course_id(self, course):
        return course

    def course_title(self, course):
        return f"Course {course}"

    def course_url(self, course):
        return f"/courses/{course}"

    def user_email(self, user):
        return f"{user}@bench.test"

    def user_display_name(self, user):
        return user

    def user_audience(self, user):
        return "public"

    def can_purchase(self, user, course):
        return True

    def can_manage_payments(self, user):
        return user == "admin"

    def can_enroll_others(self, user, course):
        return False

    def is_enrolled(self, user, course):
        return False

    def enroll(self, user, course):
        pass

    def unenroll(self, user, course):
        pass

    def get_locale(self):
        return "en"


def build(base_url: str, schema: str, count: int) -> tuple[Flask, SQLAlchemy]:
    engine = sa.create_engine(base_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    url = base_url + ("&" if "?" in base_url else "?") + f"options=-csearch_path%3D{schema}"
    db = SQLAlchemy()
    app = Flask(f"bench_{schema}")
    app.config.update(SQLALCHEMY_DATABASE_URI=url, SECRET_KEY="bench", SERVER_NAME="lms.bench",
                      LMS_STRIPE_PAGE_SIZE=50)
    db.init_app(app)
    StripePayments(app, db=db, host=BenchHost())
    with app.app_context():
        migrate.upgrade()
        _fill(db, count)
    return app, db


def _fill(db, count: int) -> None:
    rng = random.Random(2026)
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    purchases, invoices = [], []
    learners, courses = max(1, count // 100), max(1, count // 100)
    for n in range(1, count + 1):
        number = n % learners
        user, course = f"u{number:04d}", f"c{n % courses}"
        currency, status = rng.choice(CURRENCIES), rng.choice(STATUSES)
        gross = rng.randrange(1000, 60000)
        issued = start + timedelta(seconds=n * 600 + rng.randrange(0, 300))
        purchases.append({"id": n, "user_id": user, "course_id": course, "status": "cancelled", "amount": gross,
                          "currency": currency, "vat_rate": 2000, "amount_refunded": 0, "livemode": False,
                          "disputed": False, "created_at": issued})
        invoices.append({"id": n, "stripe_invoice_id": f"in_{n}", "purchase_id": n, "number": f"INV-{n:06d}",
                         "user_id": user, "course_id": course, "user_email": f"learner{number:04d}@example.org",
                         "user_name": f"{FIRST[number % len(FIRST)]} {LAST[number % len(LAST)]}", "course_title": f"Course {course}",
                         "currency": currency, "net": gross - gross // 6, "vat": gross // 6, "gross": gross,
                         "amount_refunded": 0, "amount_paid": gross, "amount_remaining": 0, "status": status,
                         "source": "checkout", "issued_at": issued})
    with db.engine.begin() as conn:
        for chunk in range(0, count, 5000):
            conn.execute(sa.text(
                "INSERT INTO lms_stripe_purchases (id, user_id, course_id, status, amount, currency, vat_rate, "
                "amount_refunded, livemode, disputed, created_at) VALUES (:id, :user_id, :course_id, :status, "
                ":amount, :currency, :vat_rate, :amount_refunded, :livemode, :disputed, :created_at)"),
                purchases[chunk:chunk + 5000])
            conn.execute(sa.text(
                "INSERT INTO lms_stripe_invoices (id, stripe_invoice_id, purchase_id, number, user_id, course_id, "
                "user_email, user_name, course_title, currency, net, vat, gross, amount_refunded, amount_paid, "
                "amount_remaining, status, source, issued_at) VALUES (:id, :stripe_invoice_id, :purchase_id, "
                ":number, :user_id, :course_id, :user_email, :user_name, :course_title, :currency, :net, :vat, "
                ":gross, :amount_refunded, :amount_paid, :amount_remaining, :status, :source, :issued_at)"),
                invoices[chunk:chunk + 5000])
    # What autovacuum does to a live table: statistics, and the full-text index's pending entries merged.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE lms_stripe_invoices"))


def compare(first: tuple, second: tuple, rounds: int) -> tuple[float, float]:
    """Median times of two pages, ((app, query), (app, query)), taken in turn so that the machine's load
    falls on both alike."""
    clients = [(app.test_client(), query) for app, query in (first, second)]
    times: list[list[float]] = [[], []]
    for round_number in range(rounds):
        for index in ((0, 1) if round_number % 2 else (1, 0)):
            client, query = clients[index]
            started = time.perf_counter()
            response = client.get("/payments/admin/invoices", query_string=query, headers={"X-User": "admin"})
            times[index].append(time.perf_counter() - started)
            assert response.status_code == 200, response.status_code
    return statistics.median(times[0]), statistics.median(times[1])


def deep_cursor(app, db, query: dict, depth: int) -> str | None:
    """The cursor of the page ``depth`` rows down the filtered list, in its order."""
    flt, order = _filter(query), listing.Order.parse(query.get("sort"))
    with app.app_context():
        row = db.session.execute(sa.select(*order.columns).where(*flt.conditions("postgresql"))
                                 .order_by(*order.order_by()).offset(depth).limit(1)).first()
    return order.token(tuple(row)) if row else None


def matching(app, db, query: dict) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(listing.Invoice)
                                 .where(*_filter(query).conditions("postgresql")))


def _filter(query: dict) -> listing.InvoiceFilter:
    return listing.InvoiceFilter(status=query.get("status"), course_id=query.get("course"),
                                 user_id=query.get("learner"), q=query.get("q"))


def plan(app, db, query: dict, after: str | None) -> list[str]:
    """PostgreSQL's plan of this page, as the list asks for it."""
    flt, order = _filter(query), listing.Order.parse(query.get("sort"))
    with app.app_context():
        select = sa.select(listing.Invoice).where(*flt.conditions("postgresql"))
        if after:
            select = select.where(order.after(order.read_token(after)))
        select = select.order_by(*order.order_by()).limit(51)
        compiled = select.compile(db.engine, compile_kwargs={"literal_binds": True})
        return db.session.execute(sa.text(f"EXPLAIN {compiled}")).scalars().all()


def sequential_scan(app, db, query: dict, after: str | None) -> bool:
    """Whether PostgreSQL's plan of this page reads the invoices table sequentially."""
    return any("Seq Scan on lms_stripe_invoices" in line for line in plan(app, db, query, after))


def in_order(app, db, query: dict, after: str | None) -> bool:
    """Whether the plan reads an index in the page's order (no sort of the rows it finds)."""
    lines = plan(app, db, query, after)
    return not any(line.lstrip(" ->").startswith(("Sort", "Incremental Sort")) for line in lines)


def export_figures(app, path: str) -> tuple[float, float, float, int]:
    """(MB of peak memory growth, seconds to the first byte, total seconds, bytes) of the whole export at
    ``path``: the times from a pass of its own, since tracing memory slows Python down several times."""
    client = app.test_client()

    def run():
        started = time.perf_counter()
        response = client.get(path, headers={"X-User": "admin"}, buffered=False)
        chunks = iter(response.response)
        first = next(chunks)
        first_byte = time.perf_counter() - started
        size = len(first) + sum(len(chunk) for chunk in chunks)
        return first_byte, time.perf_counter() - started, size

    first_byte, total, size = run()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (peak - base) / 2**20, first_byte, total, size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=31)
    args = parser.parse_args()
    base = os.environ.get("LMS_STRIPE_BENCH_DATABASE_URL") or os.environ.get("LMS_STRIPE_TEST_DATABASE_URL")
    if not base or not base.startswith("postgresql"):
        sys.exit("Set LMS_STRIPE_BENCH_DATABASE_URL=postgresql+psycopg://... (the figures are PostgreSQL's)")
    started = time.perf_counter()
    small, _small_db = build(base, "bench_admin_small", args.small)
    large, large_db = build(base, "bench_admin_large", args.invoices)
    print(f"built {args.small:,} and {args.invoices:,} invoices in {time.perf_counter() - started:.0f} s\n")
    print(f"{'page 1':<24}{'1k (ms)':>9}{'100k (ms)':>11}{'ratio':>8}   seq scan")
    for name, query in {**FILTERS, **SEARCHES}.items():
        few, many = compare((small, query), (large, query), args.rounds)
        print(f"{name:<24}{few * 1000:>9.1f}{many * 1000:>11.1f}{many / few:>8.2f}   "
              f"{'YES' if sequential_scan(large, large_db, query, None) else 'no'}")
    print(f"\n{'page 50,000 rows deep':<24}{'page 1':>9}{'deep':>11}{'ratio':>8}   seq scan")
    for name, query in FILTERS.items():
        depth = min(50_000, matching(large, large_db, query) - 60)  # a filter may match fewer rows
        cursor = deep_cursor(large, large_db, query, depth)
        first, deep = compare((large, query), (large, {**query, "after": cursor}), args.rounds)
        print(f"{name:<24}{first * 1000:>9.1f}{deep * 1000:>11.1f}{deep / first:>8.2f}   "
              f"{'YES' if sequential_scan(large, large_db, query, cursor) else 'no'}  ({depth:,} rows deep)")
    print(f"\n{'sorted':<26}{'1k (ms)':>9}{'100k (ms)':>11}{'ratio':>8}{'deep (ms)':>11}{'ratio':>8}   in order")
    for name, query in SORTS.items():
        few, many = compare((small, query), (large, query), args.rounds)
        cursor = deep_cursor(large, large_db, query, min(50_000, args.invoices - 60))
        _first, deep = compare((large, query), (large, {**query, "after": cursor}), args.rounds)
        ordered = in_order(large, large_db, query, None) and in_order(large, large_db, query, cursor)
        scanned = sequential_scan(large, large_db, query, None) or sequential_scan(large, large_db, query, cursor)
        print(f"{name:<26}{few * 1000:>9.1f}{many * 1000:>11.1f}{many / few:>8.2f}{deep * 1000:>11.1f}"
              f"{deep / few:>8.2f}   {'yes' if ordered else 'NO'}{'  SEQ SCAN' if scanned else ''}")
    print()
    for kind, path in (("CSV", "/payments/admin/invoices.csv"), ("XLSX", "/payments/admin/invoices.xlsx")):
        memory, first_byte, total, size = export_figures(large, path)
        print(f"{kind} of {args.invoices:,} invoices: {size / 2**20:.1f} MiB in {total:.2f} s; first byte after "
              f"{first_byte * 1000:.0f} ms (÷ total {first_byte / total:.3f}); peak memory growth {memory:.1f} MB")
    print("(an XLSX file is a zip whose directory comes last: it is written to a temporary file in constant "
          "memory, then sent)")


if __name__ == "__main__":
    main()
