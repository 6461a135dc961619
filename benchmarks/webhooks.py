"""Webhooks through the whole Flask stack, and the Stripe calls one Buy click costs.

    .venv/bin/python benchmarks/webhooks.py [--payments 60] [--database-url postgresql+psycopg://...] [--sqlite]
                                            [--redis-url redis://...]

One run on PostgreSQL (a schema of its own, dropped afterwards; the URL comes from --database-url, else
LMS_STRIPE_TEST_DATABASE_URL, else the local postgresql+psycopg://postgres@127.0.0.1:5432/test), in-process;
--sqlite runs on a SQLite file as well:

1. Stripe calls per Buy click, counted as the requests reaching the sandbox's API: the school's very first click
   (the VAT rate is created once), a first-time learner, a returning learner (customer remembered from their
   first purchase; target 1), and a second click while the Checkout Session is still open (target 0).
2. Webhooks: N learners buy and pay at the sandbox (Stripe's offline stand-in, on a loopback port, reached by
   the real SDK); a fifth of the payments are then refunded from the dashboard, a tenth disputed (not timed).
   The demo LMS (Flask test client: routing, signature check, event stored, handler, commits) then receives
   every event of the handled types the sandbox emitted, pre-signed, in the order they were created, and the
   same batch again (every event a duplicate). Printed, per kind of event (checkout, invoice, refund, credit
   note, dispute): the Stripe calls per event (target 0; reads and writes apart: a dashboard refund asks for its
   credit note, a write), and the times of a first and of a duplicate delivery;
   then the ratios first delivery / duplicate delivery (target <= 2) and first delivery / one bare
   insert and commit of an event row through the same session (target <= 5).
3. The same app with an RQ queue on a real Redis (--redis-url, else a private redis-server started for the run
   if one is on PATH; else this part is skipped): the events of N more payments are delivered; each answer
   (verified, stored received, job sent, 200) is timed, and right after it, with the queue taken off, a
   duplicate delivery of an event handled in part 2 (so that the machine's load weighs on both alike). Then an
   RQ worker in this process handles the jobs (timed as context), and the batch is delivered again with the
   queue (duplicates). Printed: the ratio of the answer time with a queue to the duplicate delivery without
   one, taken side by side (target <= 1.5); then what the answer adds to a duplicate, each part timed alone
   (the event row inserted durably, in autocommit as the answer does; one job sent to the queue), and the
   least ratio they leave: a duplicate plus both, over a duplicate.

Beside the times, the CPU time of this process per delivery (and per part timed alone), taken outside the timed
span: what the code costs, which the machine's other load (a shared disk's fsync, above all) sways far less than
the times. Figures only: nothing here asserts a time.
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from lms_stripe_plugin.core import jobs, queue  # noqa: E402
from lms_stripe_plugin.demo import SANDBOX_KEYS, create_app  # noqa: E402
from lms_stripe_plugin.demo.models import User, db  # noqa: E402
from lms_stripe_plugin.core.enums import EventStatus  # noqa: E402
from lms_stripe_plugin.core.models import Customer, Event, Purchase, utcnow  # noqa: E402
from lms_stripe_plugin.sandbox import SandboxServer  # noqa: E402
from lms_stripe_plugin.sandbox.state import event_payload  # noqa: E402
from lms_stripe_plugin.sync import webhooks as intake  # noqa: E402
from lms_stripe_plugin.sync.handlers import HANDLERS  # noqa: E402
from lms_stripe_plugin.testing import sign_payload  # noqa: E402
from tests.load.harness import CallCounter, create_schema, drop_schema, new_schema_name, schema_url  # noqa: E402
from tests.queue_support import RedisServer, queue_name, redis, rq  # noqa: E402

LOCAL_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SECRET = SANDBOX_KEYS["webhook_secret"]


class Bench:
    """The demo app on one database, the sandbox, and a counter of the API calls reaching the sandbox."""

    def __init__(self, database_url: str):
        self.sandbox = SandboxServer(port=0, webhook_url=None, webhook_secret=SECRET)
        self.calls = CallCounter(self.sandbox.app.wsgi_app)
        self.sandbox.app.wsgi_app = self.calls
        self.sandbox.start()
        self.app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "LMS_STRIPE_API_BASE": self.sandbox.url,
                               "DEMO_ENABLE_PAYMENTS": True, "SECRET_KEY": "benchmark"})
        self.pay_client = self.sandbox.app.test_client()

    def close(self) -> None:
        with self.app.app_context():
            db.session.remove()
            db.engine.dispose()
        self.sandbox.stop()

    def add_learners(self, prefix: str, count: int) -> list[str]:
        with self.app.app_context():
            names = [f"{prefix}{i:05d}" for i in range(count)]
            db.session.add_all([User(username=n, name=n, email=f"{n}@bench.test", role="learner", audience="public")
                                for n in names])
            db.session.commit()
            return names

    def courses(self) -> list[tuple[int, str, int]]:
        """(course id, currency, VAT rate) of the public paid courses."""
        with self.app.app_context():
            rows = db.session.execute(sa.text(
                "SELECT o.course_id, o.currency, o.vat_rate FROM lms_stripe_course_offers o "
                "WHERE o.is_paid AND o.audience = 'public' ORDER BY CAST(o.course_id AS INTEGER)")).all()
        return [(int(course_id), currency, vat) for course_id, currency, vat in rows]

    def client(self, username: str):
        client = self.app.test_client()
        assert client.get(f"/demo/login/{username}").status_code == 302
        return client

    def click(self, client, course_id: int, currency: str | None = None) -> tuple[str, int]:
        """One Buy click (in ``currency``, as a learner who chose it sends it): (Checkout URL, API calls it made)."""
        token = CSRF.search(client.get(f"/courses/{course_id}").get_data(as_text=True)).group(1)
        before = self.calls.count()
        response = client.post(f"/payments/checkout/{course_id}",
                               data={"csrf_token": token, **({"currency": currency} if currency else {})})
        assert response.status_code == 303, (response.status_code, response.get_data(as_text=True)[:300])
        return response.headers["Location"], self.calls.count() - before

    def pay(self, checkout_url: str) -> dict:
        session_id = checkout_url.rstrip("/").rsplit("/", 1)[-1]
        response = self.pay_client.post(f"/_sandbox/checkout/sessions/{session_id}/pay",
                                         json={"card": "4242424242424242"})
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        return response.get_json()["session"]

    def post_webhook(self, client, payload: bytes, signature: str):
        return client.post("/payments/webhook", data=payload, content_type="application/json",
                           headers={"Stripe-Signature": signature})

    def deliver(self, session_id: str) -> None:
        """Deliver the checkout.session.completed event of a session (so the learner becomes returning)."""
        client = self.app.test_client()
        for event in self.sandbox.state.all("event"):
            if event["type"] == "checkout.session.completed" and event["data"]["object"]["id"] == session_id:
                payload = event_payload(event)
                assert self.post_webhook(client, payload, sign_payload(payload, SECRET)).status_code == 200


#: Event types handled, by the kind the figures are grouped in.
KINDS = {"checkout": ("checkout.session.",), "invoice": ("invoice.", "invoice_payment."),
         "refund": ("refund.", "charge.refund.updated"), "credit note": ("credit_note.",),
         "dispute": ("charge.dispute.",), "charge": ("charge.succeeded", "charge.pending")}


def _kind(event_type: str) -> str | None:
    if event_type not in HANDLERS:
        return None
    return next(kind for kind, prefixes in KINDS.items() if event_type.startswith(prefixes))


def _prepare(bench: Bench, payments: int, prefix: str = "hook") -> list[tuple[str, bytes, str]]:
    """Payments, dashboard refunds and disputes at the sandbox; their handled events, oldest first, signed."""
    course_id = bench.courses()[0][0]
    earlier = {e["id"] for e in bench.sandbox.state.all("event")}  # the Buy clicks' events
    charges = []
    for username in bench.add_learners(prefix, payments):
        url, _calls = bench.click(bench.client(username), course_id)
        session = bench.pay(url)
        charges.append(bench.sandbox.state.get(session["payment_intent"])["latest_charge"])
    for i, charge in enumerate(charges):
        if i % 5 == 1:
            assert bench.pay_client.post(f"/_sandbox/charges/{charge}/refund", json={"amount": 1000}).status_code == 200
        elif i % 10 == 2:
            assert bench.pay_client.post(f"/_sandbox/charges/{charge}/dispute", json={}).status_code == 200
    events = bench.sandbox.state.all("event")[::-1]  # the sandbox lists newest first
    return [(_kind(e["type"]), payload, sign_payload(payload, SECRET))
            for e in events if _kind(e["type"]) and e["id"] not in earlier for payload in (event_payload(e),)]


def _deliver(bench: Bench, batch) -> dict[str, dict]:
    """Deliver a batch: per kind, the Stripe calls, each delivery's seconds, and the answers."""
    client = bench.app.test_client()
    figures = _new_figures()
    for delivery in batch:
        _deliver_one(bench, client, delivery, figures)
    return figures


def _new_figures() -> dict[str, dict]:
    return {kind: {"calls": 0, "reads": 0, "writes": [], "seconds": [], "cpu": [], "answers": {}} for kind in KINDS}


def _deliver_one(bench: Bench, client, delivery: tuple[str, bytes, str], figures: dict[str, dict]) -> None:
    kind, payload, signature = delivery
    calls = bench.calls.count()
    cpu = time.process_time()
    started = time.perf_counter()
    response = bench.post_webhook(client, payload, signature)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    row = figures[kind]
    row["seconds"].append(elapsed)
    row["cpu"].append(cpu)
    made = bench.calls.since(calls)
    row["calls"] += len(made)
    row["reads"] += sum(1 for method, _path in made if method == "GET")
    row["writes"] += [path for method, path in made if method != "GET"]
    answer = f"{response.status_code} {(response.get_json() or {}).get('status')}"
    row["answers"][answer] = row["answers"].get(answer, 0) + 1


def _bare_insert_and_commit(bench: Bench, payload: bytes, rounds: int = 200) -> list[float]:
    """Seconds of each insert and commit of an event row, through the app's session, and nothing else."""
    times = []
    with bench.app.app_context():
        for i in range(rounds):
            started = time.perf_counter()
            db.session.add(Event(id=f"evt_bare_{i:05d}", type="checkout.session.completed", livemode=False,
                                 payload=payload.decode(), status=EventStatus.PROCESSED, attempts=1,
                                 processed_at=utcnow()))
            db.session.commit()
            times.append(time.perf_counter() - started)
        db.session.execute(sa.delete(Event).where(Event.id.like("evt_bare_%")))
        db.session.commit()
    return times


def _ms(seconds: list[float]) -> tuple[float, float]:
    """(median, mean) in milliseconds."""
    return 1000 * statistics.median(seconds), 1000 * statistics.fmean(seconds)


def _target(ratio: float, target: float) -> str:
    return f"{ratio:.2f} ({'met' if ratio <= target else 'MISSED'})"


def _all_ms(figures: dict[str, dict]) -> tuple[float, float]:
    return _ms([t for f in figures.values() for t in f["seconds"]])


def _cpu_ms(figures: dict[str, dict]) -> float:
    """The median CPU time of this process per delivery, in milliseconds."""
    return 1000 * statistics.median(t for f in figures.values() for t in f["cpu"])


def _answers(figures: dict[str, dict]) -> dict[str, int]:
    answers: dict[str, int] = {}
    for row in figures.values():
        for answer, count in row["answers"].items():
            answers[answer] = answers.get(answer, 0) + count
    return answers


def _side_by_side(bench: Bench, batch, handled, rq_queue) -> tuple[dict[str, dict], dict[str, dict]]:
    """Each event of ``batch`` delivered with the queue, each followed by a duplicate delivery of an event of
    ``handled`` (handled in part 2) without it: (answers with the queue, duplicates without)."""
    client = bench.app.test_client()
    answered, duplicates = _new_figures(), _new_figures()
    for delivery, duplicate in zip(batch, itertools.cycle(handled)):
        queue.install(bench.app, rq_queue, jobs.perform)
        _deliver_one(bench, client, delivery, answered)
        queue.install(bench.app, None, jobs.perform)
        _deliver_one(bench, client, duplicate, duplicates)
    return answered, duplicates


def with_queue(bench: Bench, payments: int, redis_url: str, handled) -> dict:
    """Part 3: the answer time with an RQ queue, against a duplicate delivery without one, side by side."""
    connection = redis.Redis.from_url(redis_url)
    rq_queue = rq.Queue(queue_name("bench_webhooks"), connection=connection)
    batch = _prepare(bench, payments, prefix="queued")
    try:
        answered, duplicates = _side_by_side(bench, batch, handled, rq_queue)
        backend = queue.install(bench.app, rq_queue, jobs.perform)
        jobs_sent, calls = rq_queue.count, bench.calls.count()
        started = time.perf_counter()
        with bench.app.app_context():
            backend.worker().work(burst=True, with_scheduler=False, logging_level="WARNING")
        worked = time.perf_counter() - started
        calls = bench.calls.count() - calls
        again = _deliver(bench, batch)
        (insert_ms, job_ms), (insert_cpu, job_cpu) = _answer_parts(bench, backend, batch[0][1], len(batch))
    finally:
        queue.install(bench.app, None, jobs.perform)  # back to in-process
        rq_queue.delete(delete_jobs=True)
        connection.close()
    answer_ms, duplicate_ms, again_ms = _all_ms(answered), _all_ms(duplicates), _all_ms(again)
    ratio = (f"median {_target(answer_ms[0] / duplicate_ms[0], 1.5)}, "
             f"mean {_target(answer_ms[1] / duplicate_ms[1], 1.5)}")
    with bench.app.app_context():
        statuses = {str(status): count for status, count in db.session.execute(
            sa.select(Event.status, sa.func.count()).group_by(Event.status)).all()}
    return {
        "(times: median / mean)": "",
        "events delivered (first time), answers": f"{len(batch)}  {_answers(answered)}",
        "answer with a queue (verify, store, send the job)": "{:.2f} / {:.2f} ms".format(*answer_ms),
        "duplicate delivery without a queue, side by side": "{:.2f} / {:.2f} ms".format(*duplicate_ms),
        "answer with a queue / duplicate delivery (target <= 1.5)": ratio,
        "what the answer adds, each alone: durable insert; job": f"{insert_ms:.2f} ms; {job_ms:.2f} ms (medians)",
        "  ... least answer / duplicate (duplicate + both)":
            f"{(duplicate_ms[0] + insert_ms + job_ms) / duplicate_ms[0]:.2f}",
        "CPU per delivery, side by side: answer; duplicate":
            f"{_cpu_ms(answered):.2f} ms; {_cpu_ms(duplicates):.2f} ms (medians)",
        "  ... each part alone: durable insert; job": f"{insert_cpu:.2f} ms; {job_cpu:.2f} ms (medians)",
        "duplicate delivery with a queue, once handled": "{:.2f} / {:.2f} ms".format(*again_ms),
        "jobs sent; handled by one RQ worker in (s)": f"{jobs_sent}; {worked:.2f} s ({jobs_sent / worked:.0f} jobs/s)",
        "stored events by status, all parts": statuses,
        "Stripe calls: answers; the worker's handling": f"{sum(f['calls'] for f in answered.values())}; {calls}",
    }


def _answer_parts(bench: Bench, backend, payload: bytes,
                  rounds: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """What an answer with a queue adds to a duplicate delivery, each part alone, taken in turn (median ms):
    the event row inserted in autocommit (one statement, durable when it returns), and one job sent to the
    queue (a job for an event that is not stored, deleted with the queue before any worker runs); their times,
    then their CPU times."""
    inserts, sent, insert_cpu, sent_cpu = [], [], [], []
    text, event = payload.decode(), {"type": "checkout.session.completed", "livemode": False}
    with bench.app.app_context():
        connection = db.session.connection(bind_arguments={"mapper": Event},
                                           execution_options={"isolation_level": "AUTOCOMMIT"})
        for i in range(rounds):
            cpu = time.process_time()
            started = time.perf_counter()
            assert intake.store_received(db.session, f"evt_part_{i:05d}", event, text)
            inserts.append(time.perf_counter() - started)
            insert_cpu.append(time.process_time() - cpu)
            cpu = time.process_time()
            started = time.perf_counter()
            backend.enqueue("lms_stripe_plugin.sync.webhooks:handle_queued", (f"evt_part_{i:05d}",),
                            retry_delays=tuple(bench.app.config["LMS_STRIPE_QUEUE_RETRY_DELAYS"]))
            sent.append(time.perf_counter() - started)
            sent_cpu.append(time.process_time() - cpu)
        connection.execute(sa.delete(Event).where(Event.id.like("evt_part_%")))
        db.session.rollback()
    return ((1000 * statistics.median(inserts), 1000 * statistics.median(sent)),
            (1000 * statistics.median(insert_cpu), 1000 * statistics.median(sent_cpu)))


def webhooks(bench: Bench, payments: int, redis_url: str | None = None) -> dict:
    setup = time.perf_counter()
    batch = _prepare(bench, payments)
    setup = time.perf_counter() - setup
    first = _deliver(bench, batch)
    states = _states(bench)
    again = _deliver(bench, batch)
    bare = _ms(_bare_insert_and_commit(bench, batch[0][1]))
    results: dict = {"(times: median / mean)": ""}
    for kind in KINDS:
        f, d = first[kind], again[kind]
        if f["seconds"]:
            results[f"{kind} events"] = (
                f"{len(f['seconds']):>4}  Stripe calls/event {f['calls'] / len(f['seconds']):.2f} "
                f"(reads {f['reads'] / len(f['seconds']):.2f})  first "
                "{:.2f} / {:.2f} ms  duplicate {:.2f} / {:.2f} ms".format(*_ms(f["seconds"]), *_ms(d["seconds"])))
    first_ms = _ms([t for f in first.values() for t in f["seconds"]])
    again_ms = _ms([t for d in again.values() for t in d["seconds"]])
    results["all handled events, first delivery"] = "{:.2f} / {:.2f} ms".format(*first_ms)
    results["all handled events, duplicate delivery"] = "{:.2f} / {:.2f} ms".format(*again_ms)
    results["  ... CPU per delivery: first; duplicate"] = f"{_cpu_ms(first):.2f} ms; {_cpu_ms(again):.2f} ms (medians)"
    results["bare insert + commit of an event row"] = "{:.2f} / {:.2f} ms".format(*bare)
    results["first / duplicate (target <= 2)"] = \
        f"median {_target(first_ms[0] / again_ms[0], 2)}, mean {_target(first_ms[1] / again_ms[1], 2)}"
    results["first / bare insert+commit (target <= 5)"] = \
        f"median {_target(first_ms[0] / bare[0], 5)}, mean {_target(first_ms[1] / bare[1], 5)}"
    results["Stripe calls, all deliveries"] = sum(f["calls"] for f in (*first.values(), *again.values()))
    results["  ... of them reads (target 0)"] = sum(f["reads"] for f in (*first.values(), *again.values()))
    writes: dict[str, int] = {}
    for f in (*first.values(), *again.values()):
        for path in f["writes"]:
            name = re.sub(r"/[a-z]{2,5}_[A-Za-z0-9]{8,}", "/{id}", path)
            writes[name] = writes.get(name, 0) + 1
    results["  ... writes, by endpoint (what an event asks of Stripe)"] = writes or "none"
    answers: dict[str, int] = {}
    for d in again.values():
        for answer, count in d["answers"].items():
            answers[answer] = answers.get(answer, 0) + count
    results["duplicate answers"] = answers
    results["purchases after the batch"] = states
    results["setup (checkout, pay, refunds, disputes; not timed) s"] = round(setup, 1)
    if redis_url:
        results["-- with an RQ queue"] = redis_url
        results.update(with_queue(bench, payments, redis_url, batch))
    else:
        results["-- with an RQ queue"] = "skipped: no redis-server on PATH and no --redis-url"
    return results


def _states(bench: Bench) -> dict[str, int]:
    with bench.app.app_context():
        return {str(status): count for status, count in db.session.execute(
            sa.select(Purchase.status, sa.func.count()).group_by(Purchase.status)).all()}


def clicks(bench: Bench) -> dict:
    courses = bench.courses()
    first, second = [c for c in courses if (c[1], c[2]) == (courses[0][1], courses[0][2])][:2]  # same VAT rate
    other_rate = next((c for c in courses if c[2] != first[2]), None)
    alice, bob = bench.add_learners("click", 2)
    alice_client, bob_client = bench.client(alice), bench.client(bob)
    figures = {}
    url, figures["school's first click (VAT rate created once, new learner)"] = bench.click(alice_client, first[0])
    session = bench.pay(url)
    _url, figures["first-time learner (customer created by Checkout)"] = bench.click(bob_client, first[0])
    bench.deliver(session["id"])  # the webhook stores Alice's customer
    with bench.app.app_context():
        remembered = db.session.scalar(sa.select(sa.func.count()).select_from(Customer))
    returning_url, returning = bench.click(alice_client, second[0])
    figures["returning learner (customer remembered)"] = returning
    created = bench.sandbox.state.get(returning_url.rstrip("/").rsplit("/", 1)[-1], "checkout.session")
    figures["  ... the session carries her customer"] = bool(created and created.get("customer") == session["customer"])
    _again, figures["second click on the same course (open session reused)"] = bench.click(alice_client, second[0])
    if other_rate is not None:
        _url, figures[f"returning learner, a course at a VAT rate not used yet ({other_rate[2] / 100:g} %)"] = \
            bench.click(alice_client, other_rate[0], other_rate[1])
    figures["customers remembered"] = remembered
    figures["target: returning learner = 1 call"] = "met" if returning == 1 else f"MISSED ({returning})"
    return figures


def run(label: str, database_url: str, payments: int, redis_url: str | None = None) -> None:
    bench = Bench(database_url)
    try:
        print(f"\n== {label}")
        print("   Stripe: the offline sandbox over HTTP on 127.0.0.1 (real SDK)")
        print("   Stripe API calls per Buy click (requests reaching the sandbox):")
        for name, value in clicks(bench).items():  # first: the school's very first click is one of them
            print(f"     {name:<72} {value}")
        print(f"   Webhooks: every handled event of {payments} payments (and their refunds and disputes), "
              "pre-signed, Flask test client, first delivery then duplicate:")
        for name, value in webhooks(bench, payments, redis_url).items():
            print(f"     {name:<54} {value}")
    finally:
        bench.close()
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payments", type=int, default=60, help="payments whose events are delivered (default 60)")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (a schema of its own is used)")
    parser.add_argument("--sqlite", action="store_true", help="also run on a SQLite file")
    parser.add_argument("--redis-url", default=None, help="a Redis for part 3 (default: a private redis-server)")
    args = parser.parse_args()
    payments = max(10, args.payments)
    with contextlib.ExitStack() as stack:
        redis_url = args.redis_url
        if redis_url is None and redis is not None and shutil.which("redis-server"):
            redis_url = stack.enter_context(RedisServer(shutil.which("redis-server"))).url
        _runs(args, payments, redis_url)


def _runs(args: argparse.Namespace, payments: int, redis_url: str | None) -> None:
    if args.sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            run(f"SQLite (file), {payments} payments", f"sqlite:///{Path(tmp) / 'bench.sqlite'}", payments, redis_url)
    base = args.database_url or os.environ.get("LMS_STRIPE_TEST_DATABASE_URL") or LOCAL_POSTGRES
    if not base.startswith("postgresql"):
        print(f"\n== PostgreSQL skipped: {base!r} is not a PostgreSQL URL")
        return
    schema = new_schema_name("bench_webhooks")
    try:
        create_schema(base, schema)
    except sa.exc.OperationalError as err:
        print(f"\n== PostgreSQL skipped: cannot connect ({str(err).splitlines()[0]})")
        return
    try:
        run(f"PostgreSQL (schema {schema}), {payments} payments", schema_url(base, schema), payments, redis_url)
    finally:
        drop_schema(base, schema)


if __name__ == "__main__":
    main()
