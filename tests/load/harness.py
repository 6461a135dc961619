"""Machinery of the load tests and of ``benchmarks/load.py``.

A :class:`Stack` is one PostgreSQL schema of its own, the Stripe sandbox (threaded, on a loopback port, with
no webhook delivery: the caller delivers the events itself) and the demo LMS under gunicorn
(``-w 4 --threads 4 --preload``) as a subprocess; with ``queue_workers`` and a Redis URL, the LMS has an RQ
queue (a name of its own on that Redis) and that many ``flask lms-stripe worker`` processes run its jobs.
Scenarios drive it with ``requests`` the way browsers and Stripe would, then check the database against what
the sandbox's events say.

Everything is bounded: every loop has a count, every wait a deadline, and only 127.0.0.1 is used.
"""
from __future__ import annotations

import collections
import itertools
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import requests
import sqlalchemy as sa
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry
from sqlalchemy.engine import make_url

from lms_stripe_plugin.demo import SANDBOX_KEYS
from lms_stripe_plugin.sandbox import SandboxServer
from lms_stripe_plugin.sandbox.state import event_payload
from lms_stripe_plugin.testing import sign_payload

from ..queue_support import redis, rq

REPO = Path(__file__).resolve().parents[2]
DATABASE_ENV = "LMS_STRIPE_TEST_DATABASE_URL"
WEBHOOK_SECRET = SANDBOX_KEYS["webhook_secret"]
CARD_OK = "4242424242424242"
HTTP_TIMEOUT = 30  # seconds, every request
#: A page read again once when its connection drops, as a browser does for a safe request (RFC 9110 §9.2.2):
#: gunicorn closes a connection idle for two seconds, and a request sent on it at that instant is reset. A form
#: posted is never sent twice.
PAGE_RETRY = Retry(total=1, connect=1, read=1, status=0, other=0, redirect=False, allowed_methods={"GET"})
#: A form is posted on a new connection once the last answer on the kept one is this old (seconds), never on
#: one that gunicorn (--keep-alive 2) may be closing at that instant.
KEPT_FOR_POST = 1.0
ROUND_TIMEOUT = 120  # seconds a delivery thread waits for the others at the barrier
_schema_numbers = itertools.count(1)

# -- the demo's tables and the plugin's, read with SQL (no app context in the test process) ----------------

SQL_COURSES = """
    SELECT c.id, o.amount, o.currency FROM demo_courses c
    JOIN lms_stripe_course_offers o ON o.course_id = CAST(c.id AS VARCHAR)
    WHERE o.is_paid AND o.on_sale AND o.audience = 'public' AND o.payment_plan = 'full' ORDER BY c.id"""


def postgres_url() -> str | None:
    """The PostgreSQL URL the load tests run on, or None (they belong on PostgreSQL only)."""
    url = os.environ.get(DATABASE_ENV, "")
    return url if url.startswith("postgresql") else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def schema_url(base_url: str, schema: str) -> str:
    """``base_url`` with PostgreSQL's ``search_path`` set to ``schema`` for every connection."""
    return make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False)


def new_schema_name(label: str = "load_test") -> str:
    return f"{label}_{os.getpid()}_{next(_schema_numbers)}"


def create_schema(base_url: str, schema: str) -> None:
    engine = sa.create_engine(base_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    finally:
        engine.dispose()


def drop_schema(base_url: str, schema: str) -> None:
    engine = sa.create_engine(base_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        engine.dispose()


class CallCounter:
    """WSGI middleware around the sandbox: counts the Stripe API requests (``/v1/...``) that reach it."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.calls: list[tuple[str, str]] = []

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/v1/"):
            with self.lock:
                self.calls.append((environ.get("REQUEST_METHOD", ""), path))
        return self.app(environ, start_response)

    def count(self) -> int:
        with self.lock:
            return len(self.calls)

    def since(self, mark: int) -> list[tuple[str, str]]:
        with self.lock:
            return list(self.calls[mark:])


class Stack:
    """Schema + sandbox + gunicorn. ``with Stack(base_url) as stack:``; ``stack.url`` is the LMS."""

    def __init__(self, base_url: str, *, workers: int = 4, threads: int = 4, enable_payments: bool = True,
                 start_timeout: float = 90.0, redis_url: str | None = None, queue_workers: int = 0):
        self.base_url = base_url
        self.workers, self.threads = workers, threads
        self.redis_url = redis_url if queue_workers else None
        self.queue_workers = queue_workers
        self.queue_name = ""
        self.queue_processes: list[subprocess.Popen] = []
        self.enable_payments = enable_payments
        self.start_timeout = start_timeout
        self.schema = new_schema_name()
        if self.redis_url:
            self.queue_name = f"lms_stripe_{self.schema}"
        self.db_url = schema_url(base_url, self.schema)
        self.sandbox: SandboxServer | None = None
        self.api_calls: CallCounter | None = None
        self.process: subprocess.Popen | None = None
        self.engine: sa.Engine | None = None
        self.url = ""
        self.log_path: Path | None = None
        self._log_file = None
        self._schema_created = False
        self.killed_workers: list[int] = []

    # -- lifecycle ---------------------------------------------------------------------------------------

    def __enter__(self) -> "Stack":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()

    def start(self) -> "Stack":
        create_schema(self.base_url, self.schema)
        self._schema_created = True
        self.engine = sa.create_engine(self.db_url, pool_size=4, max_overflow=4)
        self.sandbox = SandboxServer(port=0, webhook_url=None, webhook_secret=WEBHOOK_SECRET, deliver_async=True)
        self.api_calls = CallCounter(self.sandbox.app.wsgi_app)
        self.sandbox.app.wsgi_app = self.api_calls
        self.sandbox.start()
        self._start_gunicorn()
        for number in range(self.queue_workers if self.redis_url else 0):
            self._start_queue_worker(number)
        return self

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "LMS_STRIPE_LOAD_DATABASE_URL": self.db_url,
            "LMS_STRIPE_LOAD_API_BASE": self.sandbox.url,
            "DEMO_ENABLE_PAYMENTS": "1" if self.enable_payments else "0",
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p),
        })
        if self.redis_url:
            env.update({"LMS_STRIPE_LOAD_RQ_REDIS_URL": self.redis_url, "LMS_STRIPE_LOAD_RQ_QUEUE": self.queue_name})
        return env

    def _start_queue_worker(self, number: int) -> None:
        """``flask lms-stripe worker`` on the demo app, in a process of its own (logging to gunicorn's log)."""
        self.queue_processes.append(subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "tests.load.wsgi:app", "lms-stripe", "worker",
             "--name", f"{self.queue_name}-{number}"],
            cwd=str(REPO), env=self._env(), stdout=self._log_file, stderr=subprocess.STDOUT))

    def queue_backlog(self) -> dict[str, int]:
        """What the queue still holds: waiting, running, waiting for a retry; and events stored unhandled."""
        connection = redis.Redis.from_url(self.redis_url)
        try:
            queue = rq.Queue(self.queue_name, connection=connection)
            return {"queued": queue.count, "running": queue.started_job_registry.count,
                    "retrying": queue.scheduled_job_registry.count,
                    "events received, not handled": self.scalar(
                        "SELECT COUNT(*) FROM lms_stripe_events WHERE status = 'received'")}
        finally:
            connection.close()

    def wait_for_queue(self, deadline_seconds: float = 300.0) -> tuple[float, dict[str, int]]:
        """Wait until the workers have run every job (bounded); (seconds waited, what is left). The backlog
        must be seen empty twice in a row: a job a worker has just taken off the queue is, for an instant,
        neither queued nor in the running registry."""
        started = time.monotonic()
        left, empty_before = self.queue_backlog(), False
        while time.monotonic() - started < deadline_seconds:
            empty = not any(left.values())
            if empty and empty_before:
                break
            if not self.queue_workers_running():
                break  # no worker left to run them
            empty_before = empty
            time.sleep(0.2)
            left = self.queue_backlog()
        return time.monotonic() - started, left

    def queue_workers_running(self) -> int:
        return sum(1 for process in self.queue_processes if process.poll() is None)

    def _stop_queue_workers(self) -> None:
        for process in self.queue_processes:
            if process.poll() is None:
                process.terminate()  # RQ's warm shutdown: the job under way is finished first
        for process in self.queue_processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self.queue_processes = []
        if self.redis_url:
            connection = redis.Redis.from_url(self.redis_url)
            try:
                rq.Queue(self.queue_name, connection=connection).delete(delete_jobs=True)
            finally:
                connection.close()

    def _start_gunicorn(self) -> None:
        gunicorn = Path(sys.executable).parent / "gunicorn"
        if not gunicorn.exists():
            gunicorn = Path(shutil.which("gunicorn") or "gunicorn")
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"{self.schema}-gunicorn.log"
        self._log_file = open(self.log_path, "wb")
        env = self._env()
        last_error = None
        for _attempt in range(3):  # a port picked free may be taken by the time gunicorn binds it
            port = free_port()
            self.url = f"http://127.0.0.1:{port}"
            self.process = subprocess.Popen(
                [str(gunicorn), "-w", str(self.workers), "--threads", str(self.threads), "--preload",
                 "-b", f"127.0.0.1:{port}", "--timeout", "120", "--graceful-timeout", "10",
                 "--log-level", "warning", "--error-logfile", "-", "tests.load.wsgi:app"],
                cwd=str(REPO), env=env, stdout=self._log_file, stderr=subprocess.STDOUT)
            try:
                self._wait_ready()
                return
            except RuntimeError as err:
                last_error = err
                self._stop_gunicorn()
        raise RuntimeError(f"gunicorn did not start: {last_error}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.url}/catalog", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer within {self.start_timeout} s:\n{self.log_tail()}")

    def kill_a_worker(self) -> None:
        """SIGKILL one gunicorn worker, as the kernel's OOM killer or a crash would; gunicorn starts another."""
        workers = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout.split()
        if not workers:
            raise RuntimeError("gunicorn has no worker to kill")
        os.kill(int(workers[0]), signal.SIGKILL)
        self.killed_workers.append(int(workers[0]))

    def _stop_gunicorn(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        self._stop_queue_workers()
        self._stop_gunicorn()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
            if self.log_path.exists() and "Traceback" not in self.log_path.read_text(errors="replace"):
                self.log_path.unlink()  # kept only when a worker logged an exception
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None
        if self._schema_created:
            drop_schema(self.base_url, self.schema)
            self._schema_created = False

    def log_tail(self, chars: int = 4000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]

    def log_errors(self) -> dict[str, int]:
        """The exceptions gunicorn's workers logged (last line of each traceback), by type."""
        if self.log_path is None or not self.log_path.exists():
            return {}
        found = re.findall(r"^([\w.]+(?:Error|Exception|Violation|Detected|Failure|Failed))(?::|$)",
                           self.log_path.read_text(errors="replace"), flags=re.M)
        return dict(collections.Counter(found).most_common())

    # -- the database ------------------------------------------------------------------------------------

    def sql(self, query: str, **params) -> list[sa.Row]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(query), params))

    def scalar(self, query: str, **params) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(query), params).scalar()

    def paid_courses(self) -> list[tuple[int, int, str]]:
        """(course id, amount, currency) of the public courses on sale."""
        return [tuple(row) for row in self.sql(SQL_COURSES)]

    def currency_of(self, course_id: int) -> str:
        """The currency of a paid course's own price."""
        if not hasattr(self, "_currencies"):
            self._currencies = {row[0]: row[2] for row in self.paid_courses()}
        return self._currencies[course_id]

    def add_users(self, prefix: str, count: int, *, role: str = "learner") -> list[tuple[int, str]]:
        """Demo users written straight into the demo's table: [(id, username)]."""
        rows = [{"username": f"{prefix}{i:04d}", "name": f"{prefix.title()} {i}", "email": f"{prefix}{i}@load.test",
                 "role": role, "audience": "public"} for i in range(count)]
        with self.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO demo_users (username, name, email, role, audience) "
                                 "VALUES (:username, :name, :email, :role, :audience)"), rows)
            found = conn.execute(sa.text("SELECT id, username FROM demo_users WHERE username LIKE :p ORDER BY id"),
                                 {"p": f"{prefix}%"})
            return [tuple(r) for r in found]


# -- browsers ------------------------------------------------------------------------------------------------

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class InFlight:
    """Counts requests under way from every thread, and the most seen at once."""

    def __init__(self):
        self.lock = threading.Lock()
        self.now = 0
        self.max = 0
        self.total = 0

    def __enter__(self):
        with self.lock:
            self.now += 1
            self.total += 1
            self.max = max(self.max, self.now)

    def __exit__(self, *_exc):
        with self.lock:
            self.now -= 1


class Browser:
    """One user's cookies; ``clone()`` gives another tab (its own connection pool, same cookies)."""

    def __init__(self, base: str, username: str | None = None, *, cookies=None):
        self.base = base
        self.username = username
        self.http = requests.Session()
        self.http.mount("http://", HTTPAdapter(max_retries=PAGE_RETRY))
        self.answered = 0.0  # time.monotonic() of the last answer
        if cookies is not None:
            self.http.cookies.update(cookies)
        elif username is not None:
            response = self.get(f"/demo/login/{username}")
            if response.status_code not in (302, 303):
                raise AssertionError(f"login as {username}: HTTP {response.status_code}")

    def clone(self) -> "Browser":
        return Browser(self.base, self.username, cookies=self.http.cookies.get_dict())

    def get(self, path: str, **kwargs) -> requests.Response:
        return self._send("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        if time.monotonic() - self.answered > KEPT_FOR_POST:
            self.http.close()  # the kept connections: the form goes on a new one
        return self._send("POST", path, **kwargs)

    def _send(self, method: str, path: str, **kwargs) -> requests.Response:
        try:
            return self.http.request(method, self.base + path, timeout=HTTP_TIMEOUT, allow_redirects=False, **kwargs)
        finally:
            self.answered = time.monotonic()

    def csrf(self, path: str) -> str:
        response = self.get(path)
        match = CSRF.search(response.text)
        if response.status_code != 200 or match is None:
            raise AssertionError(f"GET {path} as {self.username}: HTTP {response.status_code}, no csrf_token")
        return match.group(1)

    def close(self) -> None:
        self.http.close()


def session_id_of(checkout_url: str) -> str:
    return checkout_url.rstrip("/").rsplit("/", 1)[-1].split("?")[0]


@dataclass
class Payment:
    user_id: int
    username: str
    course_id: int
    session_id: str
    purchase_id: int
    amount_total: int
    currency: str
    payment_intent: str
    charge: str
    refunds: list[int | None] = field(default_factory=list)  # amounts asked from the dashboard (None: the rest)
    expected: str = "paid"  # the purchase's final state: paid, or cancelled when fully refunded


def buy_and_pay(stack: Stack, browser: Browser, course_id: int) -> Payment:
    """Course page → CSRF → Buy (303 to the sandbox) → pay with 4242 at the sandbox."""
    token = browser.csrf(f"/courses/{course_id}")
    # In the course's own currency (the demo school accepts several), as a learner who chose it sends it.
    response = browser.post(f"/payments/checkout/{course_id}",
                            data={"csrf_token": token, "currency": stack.currency_of(course_id)})
    if response.status_code != 303 or "/c/pay/" not in response.headers.get("Location", ""):
        raise AssertionError(f"Buy course {course_id} as {browser.username}: HTTP {response.status_code} "
                             f"{response.headers.get('Location')!r} {response.text[:300]!r}")
    session_id = session_id_of(response.headers["Location"])
    paid = requests.post(f"{stack.sandbox.url}/_sandbox/checkout/sessions/{session_id}/pay",
                         json={"card": CARD_OK}, timeout=HTTP_TIMEOUT)
    if paid.status_code != 200:
        raise AssertionError(f"pay {session_id}: HTTP {paid.status_code} {paid.text[:300]}")
    cs = paid.json()["session"]
    intent = stack.sandbox.state.get(cs["payment_intent"], "payment_intent")
    user_id = int(cs["metadata"]["lms_user_id"])
    return Payment(user_id=user_id, username=browser.username, course_id=course_id, session_id=session_id,
                   purchase_id=int(cs["metadata"]["lms_purchase_id"]), amount_total=cs["amount_total"],
                   currency=cs["currency"].upper(), payment_intent=cs["payment_intent"],
                   charge=intent["latest_charge"])


def dashboard_refund(stack: Stack, charge: str, amount: int | None) -> dict:
    body = {} if amount is None else {"amount": amount}
    response = requests.post(f"{stack.sandbox.url}/_sandbox/charges/{charge}/refund", json=body, timeout=HTTP_TIMEOUT)
    if response.status_code != 200:
        raise AssertionError(f"refund {charge} {amount}: HTTP {response.status_code} {response.text[:300]}")
    return response.json()


# -- webhook deliveries --------------------------------------------------------------------------------------

@dataclass
class DeliveryStats:
    sent: int = 0  # HTTP requests to the webhook, retries included
    copies: int = 0  # deliveries planned (each event 2-3 times)
    retried_5xx: int = 0
    connection_errors: int = 0
    gave_up: list[str] = field(default_factory=list)
    answers: collections.Counter = field(default_factory=collections.Counter)  # "200 handled", ...
    success_pages: collections.Counter = field(default_factory=collections.Counter)  # status codes
    success_failures: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    max_in_flight: int = 0
    threads: int = 0
    queue_seconds: float = 0.0  # with a queue: how long its workers went on after the last answer
    queue_left: dict = field(default_factory=dict)  # and what they had not run by the deadline


class Deliverer:
    """Stripe's side: signed POSTs of events to ``/payments/webhook``, 5xx retried with backoff (bounded)."""

    def __init__(self, stack: Stack, stats: DeliveryStats, in_flight: InFlight, *, max_attempts: int = 8):
        self.url = f"{stack.url}/payments/webhook"
        self.stats, self.in_flight = stats, in_flight
        self.max_attempts = max_attempts
        self.lock = threading.Lock()
        self.local = threading.local()
        self.sessions: list[requests.Session] = []

    def _http(self) -> requests.Session:
        if getattr(self.local, "http", None) is None:
            self.local.http = requests.Session()
            with self.lock:
                self.sessions.append(self.local.http)
        return self.local.http

    def close(self) -> None:
        for http in self.sessions:
            http.close()

    def deliver(self, event_id: str, payload: bytes) -> int | None:
        status = None
        for attempt in range(self.max_attempts):
            headers = {"Content-Type": "application/json; charset=utf-8",
                       "Stripe-Signature": sign_payload(payload, WEBHOOK_SECRET),
                       "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"}
            try:
                with self.in_flight:
                    response = self._http().post(self.url, data=payload, headers=headers, timeout=HTTP_TIMEOUT)
                status = response.status_code
                try:
                    message = response.json().get("status") or response.json().get("error", {}).get("message")
                except ValueError:
                    message = "not json"
            except requests.RequestException as err:
                status, message = None, type(err).__name__
            with self.lock:
                self.stats.sent += 1
                self.stats.answers[f"{status} {message}"] += 1
                if status is None:
                    self.stats.connection_errors += 1
                elif status >= 500:
                    self.stats.retried_5xx += 1
            if status is not None and status < 500:
                return status
            time.sleep(min(1.0, 0.05 * 2 ** attempt))
        with self.lock:
            self.stats.gave_up.append(event_id)
        return status


def plan_deliveries(events: list[dict], rng: random.Random, copies: int | None = None) -> list[tuple[str, bytes]]:
    """Each event ``copies`` times, or else 2 or 3 times (half of each), all shuffled."""
    ordered = list(events)
    rng.shuffle(ordered)
    plan = []
    for index, event in enumerate(ordered):
        payload = event_payload(event)
        plan.extend([(event["id"], payload)] * (copies or 2 + index % 2))
    rng.shuffle(plan)
    return plan


def deliver_all(stack: Stack, plan: list[tuple[str, bytes]], *, threads: int = 16,
                side_tasks: list[tuple[float, Callable[[], None]]] = (), side_threads: int = 4,
                deadline_seconds: float = 600.0) -> DeliveryStats:
    """Deliver ``plan`` from ``threads`` threads in rounds released together by a barrier, while
    ``side_threads`` run ``side_tasks`` ((fraction of the plan delivered before it runs, task)).
    """
    stats = DeliveryStats(copies=len(plan), threads=threads + side_threads)
    in_flight = InFlight()
    deliverer = Deliverer(stack, stats, in_flight)
    barrier = threading.Barrier(threads)
    progress = [0]
    progress_lock = threading.Lock()
    deadline = time.monotonic() + deadline_seconds
    rounds = (len(plan) + threads - 1) // threads
    tasks = sorted(side_tasks, key=lambda t: t[0])
    task_queue = collections.deque(tasks)
    queue_lock = threading.Lock()

    def deliver_thread(index: int) -> None:
        try:
            for round_number in range(rounds):
                try:
                    barrier.wait(timeout=ROUND_TIMEOUT)
                except threading.BrokenBarrierError:
                    pass  # a thread failed or is stuck: the others carry on without the rendezvous
                position = round_number * threads + index
                if position < len(plan) and time.monotonic() < deadline:
                    deliverer.deliver(*plan[position])
                with progress_lock:
                    progress[0] += 1
        except BaseException:
            barrier.abort()
            raise

    def side_thread() -> None:
        while time.monotonic() < deadline:
            with queue_lock:
                if not task_queue:
                    return
                at, task = task_queue[0]
                ready = progress[0] >= at * rounds * threads
                if ready:
                    task_queue.popleft()
            if not ready:
                time.sleep(0.005)
                continue
            with in_flight:
                task()

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=threads + side_threads, thread_name_prefix="load") as pool:
        futures = [pool.submit(deliver_thread, i) for i in range(threads)]
        futures += [pool.submit(side_thread) for _ in range(side_threads)]
        for future in futures:
            future.result(timeout=deadline_seconds + 60)
    stats.elapsed = time.monotonic() - started
    stats.max_in_flight = in_flight.max
    deliverer.close()
    if stack.redis_url:  # the answers came at once: the database is checked once the workers are done
        stats.queue_seconds, stats.queue_left = stack.wait_for_queue()
    return stats


# -- the scenario ---------------------------------------------------------------------------------------------

REFUND_KINDS = ("full", "partial", "partial_then_rest")


@dataclass
class ScenarioResult:
    payments: list[Payment]
    learners: int
    events: list[dict]
    stats: DeliveryStats
    setup_seconds: float
    api_calls: int
    figures: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def run_scenario(stack: Stack, *, payments: int, threads: int = 16, side_threads: int = 4, seed: int = 20260,
                 buyers: int = 8, kill_a_worker_at: float | None = None, copies: int | None = None) -> ScenarioResult:
    """Learners buy and pay, a few are refunded from the dashboard, then every event is delivered 2-3 times
    (or ``copies`` times), shuffled, from ``threads`` threads while ``side_threads`` open the learners' success
    pages (and, at ``kill_a_worker_at`` of the deliveries, one gunicorn worker is killed with SIGKILL). With a
    queue, the database is checked once its workers have run every job."""
    rng = random.Random(seed)
    started = time.monotonic()
    courses = stack.paid_courses()
    per_learner = len(courses)
    learners = stack.add_users("loadlearner", (payments + per_learner - 1) // per_learner)
    orders = [(learners[i // per_learner][1], courses[i % per_learner][0]) for i in range(payments)]
    browsers = {username: Browser(stack.url, username) for _id, username in learners}

    by_learner: dict[str, list[int]] = collections.defaultdict(list)
    for username, course_id in orders:
        by_learner[username].append(course_id)

    def buy_all(username: str) -> list[Payment]:  # one learner's purchases, one after the other
        return [buy_and_pay(stack, browsers[username], course_id) for course_id in by_learner[username]]

    with ThreadPoolExecutor(max_workers=buyers, thread_name_prefix="buyer") as pool:
        made = [p for result in pool.map(buy_all, list(by_learner), timeout=600) for p in result]

    # Refunds "from the dashboard": full, partial, and partial then the rest.
    count = max(3, payments // 10)
    for index, payment in enumerate(rng.sample(made, min(count, len(made)))):
        kind = REFUND_KINDS[index % len(REFUND_KINDS)]
        if kind == "full":
            payment.refunds = [None]
        elif kind == "partial":
            payment.refunds = [max(1, payment.amount_total // 4)]
        else:
            payment.refunds = [max(1, payment.amount_total // 3), None]
        payment.expected = "paid" if kind == "partial" else "cancelled"
        for amount in payment.refunds:
            dashboard_refund(stack, payment.charge, amount)
    setup_seconds = time.monotonic() - started
    api_calls = stack.api_calls.count()

    events = stack.sandbox.state.all("event")
    plan = plan_deliveries(events, rng, copies)
    result_lock = threading.Lock()
    stats_holder: list[DeliveryStats] = []

    def success_page(payment: Payment) -> Callable[[], None]:
        def visit() -> None:
            tab = browsers[payment.username].clone()
            try:
                for attempt in range(2):  # a learner whose page failed to load (a worker killed) reloads it
                    try:
                        status = tab.get(f"/payments/checkout/success?session_id={payment.session_id}").status_code
                        break
                    except requests.RequestException as err:
                        status = type(err).__name__
            finally:
                tab.close()
            with result_lock:
                stats_holder[0].success_pages[status] += 1
                if status != 200:
                    stats_holder[0].success_failures.append(f"{payment.username} {payment.session_id}: {status}")
        return visit

    side_tasks = [(rng.random(), success_page(p)) for p in made]
    if kill_a_worker_at is not None:
        side_tasks.append((kill_a_worker_at, stack.kill_a_worker))
    stats_holder.append(DeliveryStats())  # the pages' counters, merged below
    stats = deliver_all(stack, plan, threads=threads, side_tasks=side_tasks, side_threads=side_threads)
    stats.success_pages = stats_holder[0].success_pages
    stats.success_failures = stats_holder[0].success_failures
    for browser in browsers.values():
        browser.close()
    result = ScenarioResult(payments=made, learners=len(learners), events=events, stats=stats,
                            setup_seconds=setup_seconds, api_calls=api_calls)
    if stack.redis_url:
        running = stack.queue_workers_running()
        result.figures.update({"queue workers (still running at the end)": f"{stack.queue_workers} ({running})",
                               "seconds the workers took after the last answer": round(stats.queue_seconds, 2),
                               "left in the queue": stats.queue_left})
        if any(stats.queue_left.values()):
            result.problems.append(f"the queue did not drain: {stats.queue_left}")
        if running != stack.queue_workers:
            result.problems.append(f"{stack.queue_workers - running} queue worker(s) exited (log: {stack.log_path})")
    check_scenario(stack, result)
    return result


def ledger_from_events(events: list[dict]) -> dict[str, int]:
    """Per currency: amount_total of distinct completed (paid) sessions minus distinct succeeded refunds."""
    sessions, refunds = {}, {}
    for event in events:
        obj = event["data"]["object"]
        if event["type"] == "checkout.session.completed" and obj.get("payment_status") == "paid":
            sessions[obj["id"]] = (obj["currency"].upper(), obj["amount_total"])
        if obj.get("object") == "refund":
            refunds.setdefault(obj["id"], {})[event["created"], event["id"]] = obj
    ledger: dict[str, int] = collections.defaultdict(int)
    for currency, amount in sessions.values():
        ledger[currency] += amount
    for snapshots in refunds.values():
        latest = snapshots[max(snapshots)]
        if latest["status"] == "succeeded":
            ledger[latest["currency"].upper()] -= latest["amount"]
    return dict(ledger)


def ledger_from_database(stack: Stack) -> dict[str, int]:
    ledger: dict[str, int] = collections.defaultdict(int)
    for currency, paid in stack.sql("SELECT currency, COALESCE(SUM(amount_paid), 0) FROM lms_stripe_purchases "
                                    "WHERE status IN ('paid', 'cancelled') GROUP BY currency"):
        ledger[currency] += int(paid)
    for currency, refunded in stack.sql("SELECT currency, SUM(amount) FROM lms_stripe_refunds "
                                        "WHERE status = 'succeeded' GROUP BY currency"):
        ledger[currency] -= int(refunded)
    return dict(ledger)


def _refund_timeline(stack: Stack, events: list[dict], refund: dict) -> str:
    """When the refund's events were handled, against when its purchase was paid (to explain a loss)."""
    ids = [e["id"] for e in events if e["data"]["object"].get("id") in (refund["id"], refund["charge"])
           and e["type"].startswith(("refund.", "charge.refund"))]
    handled = stack.sql("SELECT type, processed_at FROM lms_stripe_events WHERE id = ANY(:ids) ORDER BY processed_at",
                        ids=ids)
    paid = stack.scalar("SELECT paid_at FROM lms_stripe_purchases WHERE stripe_payment_intent_id = :pi",
                        pi=refund["payment_intent"])
    if not handled or paid is None:
        return ""
    early = [row.type for row in handled if row.processed_at is not None and row.processed_at < paid]
    return (f"; its events {[row.type for row in handled]} were handled from {handled[0].processed_at:%H:%M:%S.%f}, "
            f"the purchase was paid at {paid:%H:%M:%S.%f}" + (f" (before it: {early})" if early else ""))


def check_scenario(stack: Stack, result: ScenarioResult) -> None:
    """Compare the database with the payments made and the events delivered; fill figures and problems."""
    problems, figures = result.problems, result.figures
    stats = result.stats
    ids = [p.purchase_id for p in result.payments]
    purchases = {row.id: row for row in stack.sql(
        "SELECT id, user_id, course_id, status, amount_paid, amount_refunded FROM lms_stripe_purchases")}
    per_pair = collections.Counter((int(r.user_id), int(r.course_id)) for r in purchases.values())
    enrollments = collections.Counter((r.user_id, r.course_id) for r in stack.sql(
        "SELECT user_id, course_id FROM demo_enrollments"))
    invoices = collections.Counter(r.purchase_id for r in stack.sql("SELECT purchase_id FROM lms_stripe_invoices"))
    invoice_status = dict(stack.sql("SELECT purchase_id, status FROM lms_stripe_invoices"))
    lost, doubled = [], []
    for p in result.payments:
        row = purchases.get(p.purchase_id)
        pair = (p.user_id, p.course_id)
        label = f"purchase {p.purchase_id} ({p.username}, course {p.course_id}, refunds {p.refunds})"
        if per_pair[pair] != 1:
            (lost if per_pair[pair] == 0 else doubled).append(f"{label}: {per_pair[pair]} purchase rows")
        if row is None:
            continue
        if row.status != p.expected:
            problems.append(f"{label}: status {row.status!r}, expected {p.expected!r}")
        want = 1 if p.expected == "paid" else 0
        if enrollments[pair] != want:
            problems.append(f"{label}: {enrollments[pair]} enrollment(s), expected {want}")
        if invoices[p.purchase_id] != 1:
            (lost if invoices[p.purchase_id] == 0 else doubled).append(f"{label}: {invoices[p.purchase_id]} invoices")
        if row.amount_paid != p.amount_total:
            problems.append(f"{label}: amount_paid {row.amount_paid}, Stripe says {p.amount_total}")
        expected_invoice = ("cancelled" if p.expected == "cancelled" else
                            "partially_refunded" if p.refunds else "paid")
        if invoices[p.purchase_id] and invoice_status.get(p.purchase_id) != expected_invoice:
            problems.append(f"{label}: invoice {invoice_status.get(p.purchase_id)!r}, expected {expected_invoice!r}")
    extra = sorted(set(purchases) - set(ids))
    if extra:
        doubled.append(f"purchases nobody paid for: {extra}")

    # Refunds: one row per Stripe refund, all succeeded, amounts as Stripe says.
    stripe_refunds = {}
    for event in result.events:
        obj = event["data"]["object"]
        if obj.get("object") == "refund":
            stripe_refunds[obj["id"]] = obj
    refund_rows = stack.sql("SELECT stripe_refund_id, amount, status FROM lms_stripe_refunds")
    per_refund = collections.Counter(r.stripe_refund_id for r in refund_rows)
    for refund_id, obj in stripe_refunds.items():
        if per_refund[refund_id] != 1:
            (lost if per_refund[refund_id] == 0 else doubled).append(
                f"refund {refund_id} ({obj['amount']} {obj['currency']}): {per_refund[refund_id]} rows"
                + _refund_timeline(stack, result.events, obj))
    for row in refund_rows:
        if row.status != "succeeded":
            problems.append(f"refund {row.stripe_refund_id}: status {row.status!r}")
    for p in result.payments:
        row = purchases.get(p.purchase_id)
        stripe_sum = sum(o["amount"] for o in stripe_refunds.values() if o["payment_intent"] == p.payment_intent)
        if row is not None and row.amount_refunded != stripe_sum:
            problems.append(f"purchase {p.purchase_id}: amount_refunded {row.amount_refunded}, Stripe refunded "
                            f"{stripe_sum}")

    # Events: each stored once, none failed.
    distinct = {e["id"] for e in result.events}
    stored = stack.scalar("SELECT COUNT(*) FROM lms_stripe_events")
    stored_distinct = stack.scalar("SELECT COUNT(DISTINCT id) FROM lms_stripe_events")
    statuses = dict(stack.sql("SELECT status, COUNT(*) FROM lms_stripe_events GROUP BY status"))
    if stored != len(distinct) or stored_distinct != len(distinct):
        problems.append(f"{stored} stored events ({stored_distinct} distinct) for {len(distinct)} sent")
    unfinished = stack.sql("SELECT id, type, status, attempts FROM lms_stripe_events "
                           "WHERE status NOT IN ('processed', 'ignored')")
    for row in unfinished:
        problems.append(f"event {row.id} ({row.type}) left {row.status!r} after {row.attempts} attempts")
    if stats.gave_up:
        problems.append(f"{len(stats.gave_up)} deliveries still failing after retries: {stats.gave_up[:5]}")
    if stats.success_failures:
        problems.append(f"success pages not 200: {stats.success_failures[:5]}")

    # The ledger.
    from_events, from_db = ledger_from_events(result.events), ledger_from_database(stack)
    if from_events != from_db:
        problems.append(f"ledger per currency: database {from_db}, events {from_events}")
    problems.extend(f"lost: {item}" for item in lost)
    problems.extend(f"doubled: {item}" for item in doubled)

    types = collections.Counter(e["type"] for e in result.events)
    # A delivery that ran a handler is answered "handled", or "outdated" when a newer snapshot of its object
    # had been applied already (the event is processed all the same).
    handled = sum(n for answer, n in stats.answers.items() if answer.startswith(("200 handled", "200 outdated")))
    handling = {"deliveries that ran a handler (200 handled or outdated)": handled,
                "  of which duplicates handled at the same time (idempotent)": handled - statuses.get("processed", 0)}
    if stack.redis_url:  # the workers ran the handlers: the answers only say what was queued
        queued, processed = stats.answers["200 queued"], statuses.get("processed", 0)
        handling = {"deliveries whose handling was queued (200 queued)": queued,
                    "  of which a duplicate's job, which found its event handled": queued - processed}
    figures.update({
        "payments": len(result.payments),
        "learners": result.learners,
        "refunded payments (dashboard)": sum(1 for p in result.payments if p.refunds),
        "fully refunded": sum(1 for p in result.payments if p.expected == "cancelled"),
        "Stripe API calls during checkout and refunds": result.api_calls,
        "events (distinct)": len(distinct),
        "events by type": dict(sorted(types.items())),
        "deliveries planned (2-3 per event)": stats.copies,
        "duplicate deliveries": stats.copies - len(distinct),
        "webhook requests sent (with retries)": stats.sent,
        "5xx answers retried": stats.retried_5xx,
        "connection errors retried": stats.connection_errors,
        "webhook answers": dict(stats.answers.most_common()),
        **handling,
        "success pages": dict(stats.success_pages),
        "client threads (webhook + pages)": stats.threads,
        "max requests in flight": stats.max_in_flight,
        "delivery phase seconds": round(stats.elapsed, 2),
        "webhook requests per second": round(stats.sent / stats.elapsed, 1) if stats.elapsed else None,
        "setup seconds (checkout + pay + refunds)": round(result.setup_seconds, 2),
        "stored events": stored,
        "stored events by status": statuses,
        "purchases by status": dict(collections.Counter(r.status for r in purchases.values())),
        "enrollments of the scenario": sum(enrollments[(p.user_id, p.course_id)] for p in result.payments),
        "invoices": sum(invoices.values()),
        "refund rows": len(refund_rows),
        "ledger (database)": from_db,
        "ledger (events)": from_events,
        "lost": len(lost),
        "doubled": len(doubled),
        "exceptions in gunicorn's log": stack.log_errors(),
    })


def print_figures(title: str, figures: dict, problems: list[str] = ()) -> None:
    print(f"\n== {title}")
    width = max((len(k) for k in figures), default=0)
    for key, value in figures.items():
        print(f"   {key:<{width}}  {value}")
    if problems:
        print(f"   PROBLEMS ({len(problems)}):")
        for problem in problems[:40]:
            print(f"     - {problem}")
        if len(problems) > 40:
            print(f"     ... and {len(problems) - 40} more")
    sys.stdout.flush()


# -- concurrent clicks ----------------------------------------------------------------------------------------

def run_together(callables: list[Callable[[], Any]], *, timeout: float = 60.0) -> list[Any]:
    """Run the callables in threads released at the same instant by a barrier; their results (or exceptions)."""
    barrier = threading.Barrier(len(callables))

    def run(fn):
        barrier.wait(timeout=timeout)
        try:
            return fn()
        except Exception as err:  # noqa: BLE001 - reported by the caller
            return err

    with ThreadPoolExecutor(max_workers=len(callables)) as pool:
        return [f.result(timeout=timeout * 2) for f in [pool.submit(run, fn) for fn in callables]]


def concurrent_checkout(stack: Stack, *, clicks: int = 10) -> tuple[dict, list[str]]:
    """One learner, ``clicks`` simultaneous Buy POSTs (same cookies, separate connections)."""
    (user_id, username), = stack.add_users("clicker", 1)
    course_id = stack.paid_courses()[0][0]
    browser = Browser(stack.url, username)
    token = browser.csrf(f"/courses/{course_id}")
    tabs = [browser.clone() for _ in range(clicks)]
    mark = stack.api_calls.count()
    started = time.monotonic()
    responses_ = run_together([lambda tab=tab: tab.post(f"/payments/checkout/{course_id}",
                                                        data={"csrf_token": token}) for tab in tabs])
    elapsed = time.monotonic() - started
    problems = []
    statuses = collections.Counter(r.status_code if isinstance(r, requests.Response) else type(r).__name__
                                   for r in responses_)
    locations = {r.headers.get("Location") for r in responses_ if isinstance(r, requests.Response)}
    if statuses != collections.Counter({303: clicks}):
        bodies = [r.text[:200] for r in responses_ if isinstance(r, requests.Response) and r.status_code != 303]
        problems.append(f"answers {dict(statuses)}, expected {clicks} x 303; bodies: {bodies[:3]}")
    if len(locations) != 1:
        problems.append(f"{len(locations)} different redirect URLs: {sorted(map(str, locations))[:4]}")
    rows = stack.sql("SELECT id, status, stripe_checkout_session_id FROM lms_stripe_purchases "
                     "WHERE user_id = :u AND course_id = :c", u=str(user_id), c=str(course_id))
    open_rows = [r for r in rows if r.status == "open"]
    if len(rows) != 1 or len(open_rows) != 1:
        problems.append(f"purchases for the learner and course: {[(r.id, r.status) for r in rows]}, expected one open")
    sessions = [s for s in stack.sandbox.state.all("checkout.session")
                if (s.get("metadata") or {}).get("lms_user_id") == str(user_id)]
    if len(sessions) != 1:
        problems.append(f"{len(sessions)} Checkout Sessions at the sandbox for the learner, expected 1")
    elif open_rows and (sessions[0]["client_reference_id"] != f"lms-purchase-{open_rows[0].id}"
                        or open_rows[0].stripe_checkout_session_id != sessions[0]["id"]):
        problems.append(f"the sandbox's session {sessions[0]['id']} does not match purchase {open_rows[0].id}")
    calls = collections.Counter(f"{m} {p}" for m, p in stack.api_calls.since(mark))
    for tab in tabs:
        tab.close()
    browser.close()
    figures = {"simultaneous Buy clicks": clicks, "answers": dict(statuses), "distinct redirect URLs": len(locations),
               "purchase rows": len(rows), "Checkout Sessions at the sandbox": len(sessions),
               "Stripe API requests (SDK retries of 409 in-flight included)": dict(calls),
               "seconds": round(elapsed, 2)}
    return figures, problems


def fulfilled_invoices(stack: Stack, count: int, prefix: str = "cancelbuyer") -> list[tuple[int, Payment]]:
    """``count`` learners each buy and pay a course and come back to the success page: (invoice id, payment)."""
    course_id = stack.paid_courses()[0][0]
    made = []
    for _user_id, username in stack.add_users(prefix, count):
        browser = Browser(stack.url, username)
        payment = buy_and_pay(stack, browser, course_id)
        page = browser.get(f"/payments/checkout/success?session_id={payment.session_id}")
        if page.status_code != 200:
            raise AssertionError(f"success page of {payment.session_id}: HTTP {page.status_code}")
        browser.close()
        invoice_id = stack.scalar("SELECT id FROM lms_stripe_invoices WHERE purchase_id = :p", p=payment.purchase_id)
        if invoice_id is None:
            raise AssertionError(f"purchase {payment.purchase_id}: no invoice after the success page")
        made.append((invoice_id, payment))
    return made


def concurrent_cancel(stack: Stack, *, offsets: tuple[float, ...] = (0.0, 0.0, 0.0, 0.004, 0.012, 0.03),
                      slow_offsets: tuple[float, ...] = (0.3,), slow_seconds: float = 1.0
                      ) -> tuple[dict, list[str]]:
    """Two administrators confirm the cancellation of the same invoice at the same instant (the second click
    delayed by each offset in turn, to cover the whole of the first one's flight; for ``slow_offsets``, Stripe
    holds back its answer to the first click's credit note for ``slow_seconds``, so the second click lands while
    the first waits); then every event the sandbox emitted is delivered 2-3 times. Exactly one credit note and
    one refund per invoice, counted once, never a 500."""
    admins = [Browser(stack.url, "admin")] + [Browser(stack.url, username)
                                              for _id, username in stack.add_users("secondadmin", 1, role="admin")]
    rounds = [(offset, False) for offset in offsets] + [(offset, True) for offset in slow_offsets]
    targets = fulfilled_invoices(stack, len(rounds))
    problems: list[str] = []
    answers: collections.Counter = collections.Counter()
    events_before = {e["id"] for e in stack.sandbox.state.all("event")}
    for (invoice_id, payment), (offset, slow) in zip(targets, rounds):
        path = f"/payments/admin/invoices/{invoice_id}/cancel"
        tokens = [admin.csrf(path) for admin in admins]
        if slow:
            armed = requests.post(f"{stack.sandbox.url}/_sandbox/faults", timeout=HTTP_TIMEOUT, json={
                "kind": "timeout", "after": True, "timeout_seconds": slow_seconds, "method": "POST",
                "path": "/v1/credit_notes", "times": 1})
            armed.raise_for_status()

        def click(admin, token, delay):
            if delay:
                time.sleep(delay)
            return admin.post(path, data={"csrf_token": token, "reason": "load test: two clicks"})

        results = run_together([lambda a=a, t=t, d=(offset if i else 0.0): click(a, t, d)
                                for i, (a, t) in enumerate(zip(admins, tokens))])
        codes = []
        for result in results:
            if not isinstance(result, requests.Response):
                problems.append(f"invoice {invoice_id} (offset {offset}s): {result!r}")
                continue
            codes.append(result.status_code)
            answers[result.status_code] += 1
            if result.status_code >= 500:
                problems.append(f"invoice {invoice_id} (offset {offset}s, slow {slow}): HTTP {result.status_code}")
            elif 400 <= result.status_code < 500 and 'role="alert"' not in result.text:
                problems.append(f"invoice {invoice_id}: HTTP {result.status_code} without a message")
            elif result.status_code in (302, 303) and f"/admin/invoices/{invoice_id}" not in result.headers.get(
                    "Location", ""):
                problems.append(f"invoice {invoice_id}: redirected to {result.headers.get('Location')}")
        if not any(code in (302, 303) for code in codes):
            problems.append(f"invoice {invoice_id} (offset {offset}s): no click succeeded: {codes}")
        when = f"offset {offset}s{', Stripe slow' if slow else ''}, answers {codes}"
        problems.extend(_check_cancelled(stack, invoice_id, payment, when))

    # Stripe's events about all this, delivered twice each (the admin pages already applied them).
    new_events = [e for e in stack.sandbox.state.all("event") if e["id"] not in events_before]
    stats = deliver_all(stack, plan_deliveries(new_events, random.Random(7)), threads=8, side_threads=0)
    if stats.gave_up:
        problems.append(f"webhooks still failing after retries: {stats.gave_up[:5]}")
    for invoice_id, payment in targets:
        problems.extend(_check_cancelled(stack, invoice_id, payment, "after the webhooks"))
    for admin in admins:
        admin.close()
    figures = {"invoices cancelled by two simultaneous clicks": len(targets),
               "second click delays (s)": list(offsets),
               f"with Stripe answering the first click {slow_seconds} s late, second click after (s)":
                   list(slow_offsets),
               "answers": dict(answers),
               "events delivered afterwards (x2-3)": f"{len(new_events)} events, {stats.sent} requests, "
                                                     f"{stats.retried_5xx} 5xx retried",
               "credit notes at the sandbox": len(stack.sandbox.state.all("credit_note")),
               "refunds at the sandbox": len(stack.sandbox.state.all("refund")),
               "refund rows": stack.scalar("SELECT COUNT(*) FROM lms_stripe_refunds")}
    return figures, problems


def _check_cancelled(stack: Stack, invoice_id: int, payment: Payment, when: str) -> list[str]:
    state = stack.sandbox.state
    label = f"invoice {invoice_id} ({when})"
    problems = []
    invoice = stack.sql("SELECT stripe_invoice_id, status, gross, amount_refunded, credit_note_id "
                        "FROM lms_stripe_invoices WHERE id = :i", i=invoice_id)[0]
    notes = [n for n in state.all("credit_note") if n["invoice"] == invoice.stripe_invoice_id]
    refunds = [r for r in state.all("refund") if r["charge"] == payment.charge]
    rows = stack.sql("SELECT id, status, amount, stripe_refund_id, stripe_credit_note_id FROM lms_stripe_refunds "
                     "WHERE purchase_id = :p", p=payment.purchase_id)
    purchase = stack.sql("SELECT status, amount_refunded FROM lms_stripe_purchases WHERE id = :p",
                         p=payment.purchase_id)[0]
    revoked = stack.scalar("SELECT COUNT(*) FROM lms_stripe_audit_log WHERE purchase_id = :p "
                           "AND action = 'access_revoked'", p=payment.purchase_id)
    enrolled = stack.scalar("SELECT COUNT(*) FROM demo_enrollments WHERE user_id = :u AND course_id = :c",
                            u=payment.user_id, c=payment.course_id)
    if len(notes) != 1:
        problems.append(f"{label}: {len(notes)} credit notes at the sandbox")
    if len(refunds) != 1:
        problems.append(f"{label}: {len(refunds)} refunds at the sandbox")
    if len(rows) != 1:
        problems.append(f"{label}: refund rows {[(r.id, r.status, r.amount) for r in rows]}")
    elif rows[0].status != "succeeded" or rows[0].amount != invoice.gross:
        problems.append(f"{label}: refund row {rows[0].status} {rows[0].amount}, expected succeeded {invoice.gross}")
    if invoice.status != "cancelled" or invoice.credit_note_id is None:
        problems.append(f"{label}: invoice {invoice.status}, credit note {invoice.credit_note_id}")
    if invoice.amount_refunded != invoice.gross or purchase.amount_refunded != invoice.gross:
        problems.append(f"{label}: refunded {invoice.amount_refunded} on the invoice, {purchase.amount_refunded} on "
                        f"the purchase, for a gross of {invoice.gross}")
    if purchase.status != "cancelled" or revoked != 1 or enrolled != 0:
        problems.append(f"{label}: purchase {purchase.status}, access revoked {revoked} time(s), {enrolled} enrollment")
    return problems



# -- events out of order --------------------------------------------------------------------------------------

CARD_DISPUTED = "4000000000000259"  # pays, then the payment is disputed


def late_payment_events(stack: Stack) -> tuple[dict, list[str]]:
    """A fully refunded payment and a disputed one, whose refund and dispute events reach us *before* the
    events of the payment itself (Stripe does not promise any order). Each event is delivered once (5xx
    retried). The end state must not depend on the order: cancelled, access revoked, refund and dispute kept.
    """
    course_id = stack.paid_courses()[0][0]
    (_r, refunded_user), (_d, disputed_user) = stack.add_users("latelearner", 2)
    browser = Browser(stack.url, refunded_user)
    refunded = buy_and_pay(stack, browser, course_id)
    browser.close()
    dashboard_refund(stack, refunded.charge, None)
    browser = Browser(stack.url, disputed_user)
    token = browser.csrf(f"/courses/{course_id}")
    location = browser.post(f"/payments/checkout/{course_id}", data={"csrf_token": token}).headers["Location"]
    browser.close()
    cs = requests.post(f"{stack.sandbox.url}/_sandbox/checkout/sessions/{session_id_of(location)}/pay",
                       json={"card": CARD_DISPUTED}, timeout=HTTP_TIMEOUT).json()["session"]
    disputed_purchase = int(cs["metadata"]["lms_purchase_id"])

    events = stack.sandbox.state.all("event")[::-1]  # oldest first
    early = [e for e in events if e["type"].startswith(("refund.", "charge.refund", "charge.dispute."))]
    late = [e for e in events if e not in early]
    stats = DeliveryStats(copies=len(events))
    deliverer = Deliverer(stack, stats, InFlight())
    for event in early + late:
        deliverer.deliver(event["id"], event_payload(event))
    deliverer.close()
    if stack.redis_url:
        stack.wait_for_queue()

    problems = []
    if stats.gave_up:
        problems.append(f"deliveries still failing after retries: {stats.gave_up}")
    purchase = stack.sql("SELECT status, amount_refunded FROM lms_stripe_purchases WHERE id = :p",
                         p=refunded.purchase_id)[0]
    refund_rows = stack.sql("SELECT status, amount FROM lms_stripe_refunds WHERE purchase_id = :p",
                            p=refunded.purchase_id)
    enrolled = stack.scalar("SELECT COUNT(*) FROM demo_enrollments WHERE user_id = :u AND course_id = :c",
                            u=refunded.user_id, c=course_id)
    label = f"fully refunded purchase {refunded.purchase_id}, refund events first"
    if purchase.status != "cancelled" or enrolled != 0:
        problems.append(f"{label}: purchase {purchase.status!r} with {enrolled} enrollment, expected 'cancelled' "
                        "and no enrollment")
    if [tuple(r) for r in refund_rows] != [("succeeded", refunded.amount_total)] or \
            purchase.amount_refunded != refunded.amount_total:
        problems.append(f"{label}: refund rows {[tuple(r) for r in refund_rows]}, amount_refunded "
                        f"{purchase.amount_refunded}, expected one succeeded refund of {refunded.amount_total}")
    disputed = stack.sql("SELECT status, disputed, user_id FROM lms_stripe_purchases WHERE id = :p",
                         p=disputed_purchase)[0]
    disputes = stack.scalar("SELECT COUNT(*) FROM lms_stripe_disputes WHERE purchase_id = :p", p=disputed_purchase)
    enrolled = stack.scalar("SELECT COUNT(*) FROM demo_enrollments WHERE user_id = :u AND course_id = :c",
                            u=int(disputed.user_id), c=course_id)
    label = f"disputed purchase {disputed_purchase}, dispute event first"
    if disputes != 1 or not disputed.disputed:
        problems.append(f"{label}: {disputes} dispute rows, disputed={disputed.disputed}, expected the dispute kept")
    if disputed.status != "cancelled" or enrolled != 0:
        problems.append(f"{label}: purchase {disputed.status!r} with {enrolled} enrollment, expected access revoked "
                        "(LMS_STRIPE_REVOKE_ON_DISPUTE)")
    figures = {"events": len(events), "delivered first (refund/dispute)": [e["type"] for e in early],
               "answers": dict(stats.answers)}
    return figures, problems
