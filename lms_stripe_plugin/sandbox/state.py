"""All sandbox objects in memory, the sandbox clock, and event emission."""

from __future__ import annotations

import contextlib
import contextvars
import copy
import functools
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from flask import g, has_request_context

from .errors import resource_missing
from .faults import FaultRegistry
from .idempotency import IdempotencyStore
from .ids import new_id
from .scheduler import Scheduler
from .schema import EVENT_TYPES
from .webhooks import Deliverer, DeliveryAttempt, DeliveryOrder, WebhookSink

API_VERSION = "2026-10-28.endive"

# How Stripe names each object type in "No such ..." messages.
OBJECT_LABELS = {
    "checkout.session": "checkout.session",
    "customer": "customer",
    "tax_rate": "tax rate",
    "invoice": "invoice",
    "invoice_payment": "invoice payment",
    "payment_record": "payment record",
    "invoiceitem": "invoiceitem",
    "payment_intent": "payment_intent",
    "charge": "charge",
    "refund": "refund",
    "credit_note": "credit note",
    "dispute": "dispute",
    "event": "event",
    "coupon": "coupon",
    "promotion_code": "promotion code",
    "product": "product",
    "price": "price",
    "payment_method_configuration": "payment_method_configuration",
    "account": "account",
    "application_fee": "application fee",
}


class _EveryAccount:
    """The scope of code that is not an API request (control endpoints, hosted pages, tests): it sees the
    objects of every account."""

    def __repr__(self) -> str:
        return "EVERY_ACCOUNT"


EVERY_ACCOUNT = _EveryAccount()
#: Whose objects the running code sees and creates: the platform (None), a connected account's id (an API
#: request with a ``Stripe-Account`` header), or every account.
_SCOPE: contextvars.ContextVar[str | None | _EveryAccount] = contextvars.ContextVar("stripe_sandbox_scope",
                                                                                  default=EVERY_ACCOUNT)


@dataclass
class SandboxConfig:
    """Settings given to :func:`create_app`."""

    webhook_url: str | None = None
    webhook_secret: str = "whsec_sandbox"
    webhook_sink: WebhookSink | None = None
    public_url: str | None = None
    delayed_settle_seconds: float | None = None
    deliver_async: bool = True
    webhook_retry_backoff: float = 0.5
    webhook_max_attempts: int = 5
    refund_failure_seconds: float = 1.0
    terms_of_service_url: str | None = None
    #: The account's public business details (Dashboard, Settings, Business): the top of its invoices.
    business_name: str = "Stripe Sandbox"
    business_address: tuple[str, ...] = ()
    delivery_order: DeliveryOrder = field(default_factory=DeliveryOrder)
    #: The Connect endpoint: where events of connected accounts go (they carry ``account``), with its secret.
    connect_webhook_url: str | None = None
    connect_webhook_secret: str = "whsec_sandbox_connect"
    connect_webhook_sink: WebhookSink | None = None
    #: What verifying a connected account's details gives unless told otherwise: ``verified``,
    #: ``documents_required`` or ``pending`` (see ``connect.py``).
    account_verification: str = "verified"


class SandboxState:
    """Every object of one sandbox, guarded by :attr:`lock` (re-entrant).

    Objects are Stripe-shaped dicts keyed by id; :attr:`private` keeps what Stripe
    would know but not show (the test card used, line details, ...).

    Every object belongs to an account: the platform's own (owner None) or a connected account's, the one
    whose ``Stripe-Account`` header the creating request carried. An API request sees only its account's
    objects (:meth:`acting_as`); code outside requests sees every account's.
    """

    def __init__(self, config: SandboxConfig | None = None, *,
                 seed: Callable[[SandboxState], None] | None = None,
                 on_clock: Callable[[SandboxState], None] | None = None) -> None:
        """``seed`` fills a new or reset sandbox (the promotion codes); ``on_clock`` runs when the clock is
        advanced (expiring sessions). The modules that define them build on this one, so they are given."""
        self.config = config or SandboxConfig()
        self._seed = seed or (lambda _state: None)
        self._on_clock = on_clock or (lambda _state: None)
        self.lock = threading.RLock()
        self.stop_event = threading.Event()
        self.faults = FaultRegistry()
        self.idempotency = IdempotencyStore(self.now_float)
        self.deliverer = self._deliverer("account", self.config.webhook_url, self.config.webhook_secret,
                                         self.config.webhook_sink)
        self.connect_deliverer = self._deliverer("connect", self.config.connect_webhook_url,
                                                 self.config.connect_webhook_secret, self.config.connect_webhook_sink)
        self.scheduler = Scheduler(self.now_float, self.stop_event, after_task=self.flush_deliveries)
        self._reset_data()

    def _deliverer(self, endpoint: str, url: str | None, secret: str, sink: WebhookSink | None) -> Deliverer:
        return Deliverer(
            url=url, secret=secret, sink=sink, asynchronous=self.config.deliver_async,
            backoff=self.config.webhook_retry_backoff, max_attempts=self.config.webhook_max_attempts,
            stop_event=self.stop_event, order=self.config.delivery_order, endpoint=endpoint,
        )

    def _reset_data(self) -> None:
        with self.lock:
            self.objects: dict[str, dict[str, Any]] = {}
            self.private: dict[str, dict[str, Any]] = {}
            self._owners: dict[str, str | None] = {}
            self._order: dict[str, int] = {}
            self._seq = itertools.count(1)
            self._invoice_numbers: dict[str | None, Iterator[int]] = {}
            #: Sandbox-only records that are not API objects (account links, onboarding sessions), by kind.
            self.registries: dict[str, dict[str, Any]] = {}
            self._clock_offset = 0.0
            self._seed(self)

    # -- accounts ------------------------------------------------------------

    @contextlib.contextmanager
    def acting_as(self, account: str | None | _EveryAccount) -> Iterator[None]:
        """Run as ``account`` (None: the platform): see its objects only, create objects that belong to it."""
        token = _SCOPE.set(account)
        try:
            yield
        finally:
            _SCOPE.reset(token)

    def enter_account(self, account: str | None) -> contextvars.Token:
        """Start acting as ``account`` for the rest of a request (:meth:`leave_account` ends it)."""
        return _SCOPE.set(account)

    @staticmethod
    def leave_account(token: contextvars.Token) -> None:
        """End what :meth:`enter_account` started."""
        _SCOPE.reset(token)

    @staticmethod
    def scope() -> str | None | _EveryAccount:
        """Whose objects the running code sees: an account id, None (the platform) or :data:`EVERY_ACCOUNT`."""
        return _SCOPE.get()

    def current_account(self) -> str | None:
        """The connected account the running code acts as; None for the platform (and outside any scope)."""
        scope = _SCOPE.get()
        return None if scope is EVERY_ACCOUNT else scope  # type: ignore[return-value]

    def owner_of(self, object_id: Any) -> str | None:
        """The connected account an object belongs to; None for the platform's objects (and unknown ids)."""
        return self._owners.get(object_id) if isinstance(object_id, str) else None

    def _visible(self, obj: dict[str, Any]) -> bool:
        scope = _SCOPE.get()
        if scope is EVERY_ACCOUNT:
            return True
        # A connected account sees its own objects and its own Account object.
        return self._owners.get(obj["id"]) == scope or (obj.get("object") == "account" and obj["id"] == scope)

    # -- clock ---------------------------------------------------------------

    def now_float(self) -> float:
        """Sandbox time in seconds (wall clock plus every advance)."""
        return time.time() + self._clock_offset

    def now(self) -> int:
        """Sandbox time as a Unix timestamp, as in ``created`` fields."""
        return int(self.now_float())

    def advance_clock(self, seconds: float) -> None:
        """Move the sandbox clock forward, then expire sessions and run tasks that came due."""
        with self.lock:
            self._clock_offset += float(seconds)
            self._on_clock(self)
        self.scheduler.run_due()
        self.flush_deliveries()

    # -- objects -------------------------------------------------------------

    def add(self, obj: dict[str, Any], private: dict[str, Any] | None = None) -> dict[str, Any]:
        """Store a new object (and its sandbox-only details), owned by the account the running code acts as."""
        with self.lock:
            self.objects[obj["id"]] = obj
            self.private[obj["id"]] = private or {}
            self._owners[obj["id"]] = self.current_account()
            self._order[obj["id"]] = next(self._seq)
        return obj

    def get(self, object_id: Any, object_type: str | None = None) -> dict[str, Any] | None:
        """The stored object with this id (of this type), or None."""
        if not isinstance(object_id, str):
            return None
        obj = self.objects.get(object_id)
        if obj is None or (object_type and obj.get("object") != object_type) or not self._visible(obj):
            return None
        return obj

    def require(self, object_id: Any, object_type: str, *, param: str = "id", status: int = 404) -> dict[str, Any]:
        """The object, or Stripe's ``resource_missing`` error."""
        obj = self.get(object_id, object_type)
        if obj is None:
            label = OBJECT_LABELS.get(object_type, object_type)
            raise resource_missing(label, str(object_id), param=param, status=status)
        return obj

    def all(self, object_type: str) -> list[dict[str, Any]]:
        """Objects of a type that the running code sees, newest first (the order of Stripe's lists)."""
        with self.lock:
            found = [o for o in self.objects.values() if o.get("object") == object_type and self._visible(o)]
            return sorted(found, key=lambda o: self._order[o["id"]], reverse=True)

    def render(self, obj: dict[str, Any]) -> dict[str, Any]:
        """A copy safe to serialise outside the lock."""
        with self.lock:
            return copy.deepcopy(obj)

    def counts(self) -> dict[str, int]:
        """Number of objects of each type."""
        with self.lock:
            return dict(Counter(o["object"] for o in self.objects.values()))

    def next_invoice_number(self) -> str:
        """Sequential invoice numbers of the account the running code acts as: SBX-0001, SBX-0002, ..."""
        with self.lock:
            numbers = self._invoice_numbers.setdefault(self.current_account(), itertools.count(1))
            return f"SBX-{next(numbers):04d}"

    # -- events --------------------------------------------------------------

    def emit(self, event_type: str, obj: dict[str, Any], previous_attributes: dict[str, Any] | None = None, *,
             account: str | None | _EveryAccount = EVERY_ACCOUNT) -> dict[str, Any]:
        """Record an event carrying a snapshot of ``obj`` and queue its delivery.

        An event happens on an account: by default the one the running code acts as, else the owner of
        ``obj``. A connected account's event carries ``account`` and goes to the Connect endpoint (Stripe's
        "Connect webhooks"); the platform's own events have no ``account`` and go to the account endpoint.
        """
        if event_type not in EVENT_TYPES:
            raise ValueError(f"{event_type} is not an event type of API {API_VERSION}.")
        with self.lock:
            if account is EVERY_ACCOUNT:
                account = self._event_account(obj)
            deliverer = self._deliverer_for(account)  # type: ignore[arg-type]
            data: dict[str, Any] = {"object": copy.deepcopy(obj)}
            if previous_attributes:
                data["previous_attributes"] = copy.deepcopy(previous_attributes)
            event = {
                "id": new_id("evt"), "object": "event", "api_version": API_VERSION,
                "created": self.now(), "data": data, "livemode": False,
                "pending_webhooks": 1 if deliverer.enabled else 0,
                "request": _request_info(), "type": event_type,
            }
            if account is not None:
                event["account"] = account
            with self.acting_as(account):  # the event is an object of that account (GET /v1/events)
                self.add(event)
            deliverer.enqueue(event["id"], event_type, event_payload(event))
            return event

    def _event_account(self, obj: dict[str, Any]) -> str | None:
        scope = _SCOPE.get()
        if scope is not EVERY_ACCOUNT:
            return scope  # type: ignore[return-value]
        return self.owner_of(obj.get("id"))

    def _deliverer_for(self, account: str | None) -> Deliverer:
        return self.deliverer if account is None else self.connect_deliverer

    def resend(self, event: dict[str, Any]) -> None:
        """Queue another delivery of an existing event, to the endpoint it went to."""
        self._deliverer_for(event.get("account")).enqueue(event["id"], event["type"], event_payload(event))

    # -- deliveries and lifecycle ---------------------------------------------

    def flush_deliveries(self) -> None:
        """Deliver queued events now when delivering synchronously (no-op otherwise)."""
        self.deliverer.flush()
        self.connect_deliverer.flush()

    def wait_for_deliveries(self, timeout: float = 10.0) -> bool:
        """Block until every queued webhook (of both endpoints) was delivered or gave up; False on timeout."""
        deadline = time.monotonic() + timeout
        if not self.deliverer.wait(timeout):
            return False
        return self.connect_deliverer.wait(max(0.0, deadline - time.monotonic()))

    @property
    def deliveries(self) -> list[DeliveryAttempt]:
        """Every webhook delivery attempt (event id, attempt number, status code, endpoint), oldest first."""
        return sorted(self.deliverer.attempts + self.connect_deliverer.attempts, key=lambda a: a.at)

    def pending_deliveries(self) -> int:
        """Deliveries held, queued or under way, on both endpoints."""
        return self.deliverer.pending() + self.connect_deliverer.pending()

    def schedule(self, delay_seconds: float, task: Callable[[], None]) -> None:
        """Run ``task`` after ``delay_seconds`` of sandbox time, as the account the running code acts as."""
        scope = _SCOPE.get()

        def run() -> None:
            with self.acting_as(scope):
                task()

        self.scheduler.schedule(delay_seconds, run)

    def reset(self) -> None:
        """Empty the sandbox, keeping its settings and the seeded promotion codes."""
        with self.lock:
            self.scheduler.clear()
            self.deliverer.clear()
            self.connect_deliverer.clear()
            self.faults.clear()
            self.idempotency.clear()
            self._reset_data()

    def close(self) -> None:
        """Stop background threads and wake stalled requests."""
        self.stop_event.set()
        self.scheduler.close()
        self.deliverer.close()
        self.connect_deliverer.close()


def locked(function: Callable[..., Any]) -> Callable[..., Any]:
    """Run an operation ``function(state, ...)`` while holding the state lock."""

    @functools.wraps(function)
    def wrapper(state: SandboxState, *args: Any, **kwargs: Any) -> Any:
        with state.lock:
            return function(state, *args, **kwargs)

    return wrapper


def event_payload(event: dict[str, Any]) -> bytes:
    """The webhook body of an event (pretty-printed JSON, as Stripe sends it)."""
    return json.dumps(event, indent=2, sort_keys=True).encode()


def _request_info() -> dict[str, Any]:
    if has_request_context():
        info = g.get("stripe_request")
        if info:
            return dict(info)
    return {"id": None, "idempotency_key": None}
