"""The minimal host wired to the offline sandbox through the real SDK; webhooks delivered into the app."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
import requests
from sqlalchemy import func, select

from lms_stripe_plugin.accounts import settings as payment_settings
from lms_stripe_plugin.core.models import Balance, BalanceEntry, Customer, PaymentAttempt
from lms_stripe_plugin.sandbox import SandboxServer
from lms_stripe_plugin.sandbox.customer_balance import credit_balance
from lms_stripe_plugin.sync.reconcile import reconcile

from ..conftest import KEYS, as_user

SECRET = KEYS["webhook_secrets"][0]


class Sink:
    """Delivers the sandbox's signed events into the app's webhook through a test client."""

    def __init__(self):
        self.app = None
        self.drop = False  # True: deliveries are lost (a webhook endpoint down)
        self.statuses: list[int] = []

    def __call__(self, payload: bytes, headers: dict) -> int:
        if self.drop or self.app is None:
            return 503
        with self.app.app_context():
            response = self.app.test_client().post("/payments/webhook", data=payload, headers=headers,
                                                   content_type="application/json")
        self.statuses.append(response.status_code)
        return response.status_code


@pytest.fixture(scope="session")
def _sink():
    return Sink()


@pytest.fixture(scope="session")
def sandbox(_sink):
    with SandboxServer(webhook_sink=_sink, webhook_secret=SECRET, webhook_retry_backoff=0.05,
                       webhook_max_attempts=3, connect_webhook_sink=_sink, connect_webhook_secret=SECRET) as server:
        yield server


@pytest.fixture
def stripe_app(app, db, sandbox, _sink, people, priced):
    """The test app pointed at the sandbox, payments enabled, a clean sandbox."""
    from lms_stripe_plugin.gateway import StripeGateway

    requests.post(f"{sandbox.url}/_sandbox/reset", timeout=5)
    requests.delete(f"{sandbox.url}/_sandbox/faults", timeout=5)
    app.config.update(LMS_STRIPE_API_BASE=sandbox.url, LMS_STRIPE_TIMEOUT=2)
    app.extensions["lms_stripe"].gateway = StripeGateway.from_config(app.config)
    payment_settings.save(db.session, {"enabled": True, "publishable_key": KEYS["publishable_key"],
                                       "secret_key": "sk_test_sandbox_e2e", "webhook_secrets": [SECRET],
                                       "vouchers_enabled": True, "sepa_debit_enabled": True}, actor_id="adm")
    db.session.commit()
    _sink.app, _sink.drop = app, False
    _sink.statuses.clear()
    yield app
    sandbox.state.wait_for_deliveries(10)
    _sink.app = None


@pytest.fixture
def sink(_sink):
    return _sink


@pytest.fixture(autouse=True)
def _ledger_equals_stripe(request):
    """After every test that ran the app against the sandbox, each learner's ledger equals their Stripe
    customer's credit balance (`assert_ledger_matches_stripe`)."""
    if "stripe_app" not in request.fixturenames:
        yield
        return
    db, sandbox = request.getfixturevalue("db"), request.getfixturevalue("sandbox")
    request.getfixturevalue("stripe_app")  # set up first, so torn down after this check
    yield
    assert_ledger_matches_stripe(db, sandbox)


def assert_ledger_matches_stripe(db, sandbox) -> None:
    """Each learner's balance equals the sum of its entries and, negated, their Stripe customer's credit balance
    in each currency (Stripe counts a credit as negative); a customer's credit the ledger does not have, in any
    currency, is a difference too."""
    sandbox.state.wait_for_deliveries(10)
    db.session.rollback()
    db.session.expire_all()
    ledger: dict[tuple[str, str], int] = {}
    for balance in db.session.scalars(select(Balance)):
        entries = db.session.scalar(select(func.sum(BalanceEntry.amount)).where(BalanceEntry.balance_id == balance.id))
        assert (entries or 0) == balance.amount, (balance.user_id, balance.currency, balance.amount, entries)
        ledger[(balance.user_id, balance.currency)] = balance.amount
    at_stripe: dict[tuple[str, str], int] = {}
    for user_id, customer_id in db.session.execute(select(Customer.user_id, Customer.stripe_customer_id)):
        customer = sandbox.state.get(customer_id, "customer")
        if customer is None:
            continue
        currencies = set(sandbox.state.private.get(customer_id, {}).get("credit", {})) | {customer.get("currency")}
        for currency in filter(None, currencies):
            at_stripe[(user_id, currency.upper())] = -credit_balance(sandbox.state, customer, currency)
    for key in set(ledger) | set(at_stripe):
        assert ledger.get(key, 0) == at_stripe.get(key, 0), (key, "ledger", ledger.get(key, 0),
                                                             "Stripe", at_stripe.get(key, 0))


def csrf(client, user: str, path: str = "/payments/courses/c1") -> str:
    page = client.get(path, headers=as_user(user)).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def start_checkout(client, user: str, course: str):
    """Click Buy; returns (response, checkout session id or None)."""
    response = client.post(f"/payments/checkout/{course}", data={"csrf_token": csrf(client, user, f"/payments/courses/{course}")},
                           headers=as_user(user))
    location = response.headers.get("Location", "")
    return response, (location.rstrip("/").split("/")[-1] if response.status_code == 303 else None)


def pay(sandbox, session_id: str, card: str = "4242424242424242", **extra):
    response = requests.post(f"{sandbox.url}/_sandbox/checkout/sessions/{session_id}/pay",
                             json={"card": card, "method": "card", "terms_accepted": True, **extra}, timeout=10)
    sandbox.state.wait_for_deliveries(10)
    return response


def fault(sandbox, path: str, kind: str, *, method: str = "POST", times: int = 1, **extra):
    response = requests.post(f"{sandbox.url}/_sandbox/faults",
                             json={"method": method, "path": path, "kind": kind, "times": times, **extra}, timeout=5)
    assert response.status_code in (200, 201), response.text


def refund_topup_from_balance_page(client, topup_id: int, **kwargs):
    """An administrator's "Refund" of a top-up on the learner's balance page."""
    return client.post(f"/payments/admin/balances/top-ups/{topup_id}/refund", headers=as_user("adm"),
                       data={"csrf_token": csrf(client, "adm", "/payments/admin/balances/u1")}, **kwargs)


def click_pay(client, link: str) -> str:
    """Pay on a request's page (its link): the Checkout Session it opens."""
    page = client.get(link).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post(link, data={"csrf_token": token})
    assert response.status_code == 303, response.get_data(as_text=True)
    return response.headers["Location"].rstrip("/").split("/")[-1]


def repaired_by_reconcile(app, db, problem: str) -> None:
    """Reconcile (over the last hour) finds this one problem and repairs it; run again, it finds nothing."""
    state = app.extensions["lms_stripe"]
    since = datetime.now(timezone.utc) - timedelta(hours=1)
    assert [(f.kind, f.problem, f.repaired) for f in reconcile(state, since=since).findings] == \
        [("refund", problem, True)]
    assert reconcile(state, since=since).findings == []
    db.session.expire_all()


def nothing_to_reconcile(app, db) -> None:
    """Past its grace period, reconcile finds nothing left to do about the (one) Pay click."""
    attempt = db.session.scalar(select(PaymentAttempt))
    attempt.paid_at = attempt.paid_at - timedelta(hours=1)
    db.session.commit()
    report = reconcile(app.extensions["lms_stripe"], since=datetime.now(timezone.utc) - timedelta(hours=2))
    assert [(f.kind, f.problem) for f in report.findings] == []
