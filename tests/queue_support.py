"""A real Redis for the queue tests and the queued load test.

``LMS_STRIPE_TEST_REDIS_URL`` names one (each test uses a queue of its own name on it, deleted afterwards);
else the test session starts a private ``redis-server`` on a free loopback port, with no persistence, and stops
it at the end. Without either the tests are skipped, saying why; under CI (``CI`` set) they fail instead, since
.ci/run installs redis-server.
"""
from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

try:
    import redis  # the rq extra, in the dev dependencies
    import rq
except ImportError:  # pragma: no cover - the dev install has them
    redis = rq = None

REDIS_URL_ENV = "LMS_STRIPE_TEST_REDIS_URL"
_names = itertools.count(1)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """``redis-server`` on 127.0.0.1 and a free port, in a temporary directory, for as long as the block."""

    def __init__(self, binary: str, *, start_timeout: float = 15.0):
        self.binary = binary
        self.start_timeout = start_timeout
        self.process: subprocess.Popen | None = None
        self.url = ""
        self._dir: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> "RedisServer":
        self._dir = tempfile.TemporaryDirectory(prefix="lms-stripe-redis-")
        last = ""
        for _attempt in range(3):  # a port picked free may be taken by the time redis binds it
            port = free_port()
            log = Path(self._dir.name) / "redis.log"
            self.process = subprocess.Popen(
                [self.binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", self._dir.name, "--logfile", str(log), "--protected-mode", "yes"],
                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            self.url = f"redis://127.0.0.1:{port}/0"
            if self._ready():
                return self
            last = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            self._stop()
        self._dir.cleanup()
        raise RuntimeError(f"redis-server did not start: {last}")

    def _ready(self) -> bool:
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=1)
        deadline = time.monotonic() + self.start_timeout
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    return False
                try:
                    if client.ping():
                        return True
                except redis.exceptions.ConnectionError:
                    time.sleep(0.05)
            return False
        finally:
            client.close()

    def _stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def __exit__(self, *_exc) -> None:
        self._stop()
        if self._dir is not None:
            self._dir.cleanup()


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: .ci/run installs redis-server, so CI never skips the queue tests")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_url():
    """The URL of a real Redis (see the module's docstring)."""
    if redis is None or rq is None:
        _unavailable("the queue tests need rq and redis (pip install -e '.[dev]')")
    if os.environ.get(REDIS_URL_ENV):
        yield os.environ[REDIS_URL_ENV]
        return
    binary = shutil.which("redis-server")
    if binary is None:
        _unavailable(f"the queue tests need redis-server on PATH (apt-get install redis-server) or {REDIS_URL_ENV}")
    with RedisServer(binary) as server:
        yield server.url


def queue_name(label: str = "lms_stripe_test") -> str:
    """A queue name no other test (nor another test session on the same Redis) uses."""
    return f"{label}_{os.getpid()}_{next(_names)}"


@pytest.fixture
def rq_queue(redis_url):
    """An empty RQ queue of its own on the real Redis; deleted with its jobs afterwards."""
    connection = redis.Redis.from_url(redis_url)
    queue = rq.Queue(queue_name(), connection=connection)
    yield queue
    for job_id in queue.failed_job_registry.get_job_ids():  # RQ keeps a failed job for a year
        queue.failed_job_registry.remove(job_id, delete_job=True)
    queue.delete(delete_jobs=True)
    connection.close()
