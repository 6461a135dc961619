"""Webhook throughput through the whole Flask stack, and the Stripe calls one Buy click costs.

    .venv/bin/python benchmarks/webhooks.py [--events 300] [--database-url postgresql+psycopg://...] [--no-postgres]

For SQLite (a file) and PostgreSQL (a schema of its own, dropped afterwards; the URL comes from
--database-url, else LMS_STRIPE_TEST_DATABASE_URL, else the local postgresql+psycopg://postgres@127.0.0.1:5432/test):

1. webhooks: the demo LMS (Flask test client: routing, signature check, event stored, handler, commits) receives a
   pre-signed batch of N distinct ``checkout.session.completed`` events for purchases that exist (N learners
   bought and paid at the sandbox beforehand). Stripe is the offline sandbox on a loopback port, reached over
   HTTP by the real SDK: each event's handler retrieves its Checkout Session there, so that round trip is part
   of the figure. Printed: events per second, ms per event, Stripe calls per event; then the same batch again
   (every event a duplicate: "already handled").
2. Stripe calls per Buy click, counted as the requests reaching the sandbox's API: the school's very first click
   (the VAT rate is created once), a first-time learner, a returning learner (customer remembered from their
   first purchase; target 1), and a second click while the Checkout Session is still open (target 0).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from lms_stripe_plugin.demo import SANDBOX_KEYS, create_app  # noqa: E402
from lms_stripe_plugin.demo.models import User, db  # noqa: E402
from lms_stripe_plugin.core.models import Customer, Purchase  # noqa: E402
from lms_stripe_plugin.sandbox import SandboxServer  # noqa: E402
from lms_stripe_plugin.sandbox.state import event_payload  # noqa: E402
from lms_stripe_plugin.testing import sign_payload  # noqa: E402
from tests.load.harness import CallCounter, create_schema, drop_schema, new_schema_name, schema_url  # noqa: E402

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

    def click(self, client, course_id: int) -> tuple[str, int]:
        """One Buy click: (Checkout URL, API calls it made)."""
        token = CSRF.search(client.get(f"/courses/{course_id}").get_data(as_text=True)).group(1)
        before = self.calls.count()
        response = client.post(f"/payments/checkout/{course_id}", data={"csrf_token": token})
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


def webhook_throughput(bench: Bench, events: int) -> dict:
    course_id = bench.courses()[0][0]
    setup = time.perf_counter()
    sessions = []
    for username in bench.add_learners("hook", events):
        url, _calls = bench.click(bench.client(username), course_id)
        sessions.append(bench.pay(url)["id"])
    wanted = set(sessions)
    batch = [event_payload(e) for e in bench.sandbox.state.all("event")
             if e["type"] == "checkout.session.completed" and e["data"]["object"]["id"] in wanted]
    assert len(batch) == events, (len(batch), events)
    signed = [(payload, sign_payload(payload, SECRET)) for payload in batch]  # pre-signed: not timed
    setup = time.perf_counter() - setup

    client = bench.app.test_client()
    paid_before = _paid(bench)
    results = {}
    for label in ("first delivery", "duplicate delivery"):
        calls = bench.calls.count()
        statuses: dict[str, int] = {}
        started = time.perf_counter()
        for payload, signature in signed:
            response = bench.post_webhook(client, payload, signature)
            key = f"{response.status_code} {(response.get_json() or {}).get('status')}"
            statuses[key] = statuses.get(key, 0) + 1
        elapsed = time.perf_counter() - started
        results[label] = {"events/s": round(events / elapsed, 1), "ms/event": round(1000 * elapsed / events, 2),
                          "Stripe calls/event": round((bench.calls.count() - calls) / events, 2),
                          "answers": statuses}
    results["setup (checkout + pay, not timed) s"] = round(setup, 1)
    results["purchases paid by the batch"] = f"{_paid(bench) - paid_before} of {events}"
    return results


def _paid(bench: Bench) -> int:
    with bench.app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Purchase).where(Purchase.status == "paid"))


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
            bench.click(alice_client, other_rate[0])
    figures["customers remembered"] = remembered
    figures["target: returning learner = 1 call"] = "met" if returning == 1 else f"MISSED ({returning})"
    return figures


def run(label: str, database_url: str, events: int) -> None:
    bench = Bench(database_url)
    try:
        print(f"\n== {label}")
        print("   Stripe: the offline sandbox over HTTP on 127.0.0.1 (real SDK; each handler retrieves its session)")
        print("   Stripe API calls per Buy click (requests reaching the sandbox):")
        for name, value in clicks(bench).items():  # first: the school's very first click is one of them
            print(f"     {name:<72} {value}")
        print(f"   Webhooks: {events} distinct checkout.session.completed events, pre-signed, Flask test client:")
        for name, value in webhook_throughput(bench, events).items():
            print(f"     {name:<36} {value}")
    finally:
        bench.close()
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300, help="distinct events in the batch (default 300)")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (a schema of its own is used)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    events = max(1, args.events)

    with tempfile.TemporaryDirectory() as tmp:
        run(f"SQLite (file), {events} events", f"sqlite:///{Path(tmp) / 'bench.sqlite'}", events)
    if args.no_postgres:
        return
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
        run(f"PostgreSQL (schema {schema}), {events} events", schema_url(base, schema), events)
    finally:
        drop_schema(base, schema)


if __name__ == "__main__":
    main()
