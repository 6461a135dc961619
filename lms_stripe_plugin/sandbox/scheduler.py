"""Delayed work on the sandbox clock: settling debits, failing refunds."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

# The worker re-reads the clock at least this often, because the sandbox clock can jump forward.
_POLL_SECONDS = 0.25


class Scheduler:
    """Runs callables once the sandbox clock reaches their due time.

    A daemon thread, started on first use, runs due tasks; :meth:`run_due` runs
    them at once (after the clock was advanced). The thread ends when
    ``stop_event`` is set.
    """

    def __init__(self, clock: Callable[[], float], stop_event: threading.Event,
                 after_task: Callable[[], None] | None = None) -> None:
        self._clock = clock
        self._stop = stop_event
        self._after_task = after_task
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def schedule(self, delay_seconds: float, task: Callable[[], None]) -> None:
        """Run ``task`` once ``delay_seconds`` of sandbox time have passed."""
        with self._cond:
            heapq.heappush(self._heap, (self._clock() + delay_seconds, next(self._seq), task))
            self._ensure_thread()
            self._cond.notify_all()

    def pending(self) -> int:
        """How many tasks wait."""
        with self._cond:
            return len(self._heap)

    def clear(self) -> None:
        """Drop all waiting tasks."""
        with self._cond:
            self._heap.clear()

    def run_due(self) -> int:
        """Run every task whose time has come, in the calling thread; return how many ran."""
        count = 0
        while (task := self._pop_due()) is not None:
            self._run(task)
            count += 1
        return count

    def _pop_due(self) -> Callable[[], None] | None:
        with self._cond:
            if self._heap and self._heap[0][0] <= self._clock():
                return heapq.heappop(self._heap)[2]
        return None

    def _run(self, task: Callable[[], None]) -> None:
        try:
            task()
        except Exception:  # a failing task must not end the worker
            log.exception("sandbox scheduled task failed")
        if self._after_task is not None:
            self._after_task()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="stripe-sandbox-scheduler", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_due()
            with self._cond:
                wait = _POLL_SECONDS
                if self._heap:
                    wait = min(wait, max(0.0, self._heap[0][0] - self._clock()))
                self._cond.wait(wait)

    def close(self) -> None:
        """Wake and end the worker (the stop event must already be set)."""
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=2)
