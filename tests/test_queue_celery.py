"""With the host's Celery app (eager mode: each task runs where it is sent, as Celery's own tests do): the
plugin registers its task on it, the webhook sends the event's handling there, a failure is retried then kept
failed, and beat can name the reminders run."""
from __future__ import annotations

import re

import pytest
import responses
from flask import Flask

from lms_stripe_plugin import StripePayments, messages, tasks
from lms_stripe_plugin.core import queue
from lms_stripe_plugin.core.models import Event, Purchase
from lms_stripe_plugin.messages import outbox
from lms_stripe_plugin.testing import post_webhook

from .conftest import KEYS, STRIPE, _wipe
from .minimal_host import MinimalHost, db as host_db
from .stripe_stubs import checkout_session, event, open_purchase, stripe_error

celery = pytest.importorskip("celery", reason="the Celery adapter's tests need celery (pip install -e '.[dev]')")

SECRET = KEYS["webhook_secrets"][0]


@pytest.fixture
def celery_app():
    app = celery.Celery("host", broker="memory://", backend="cache+memory://")
    app.conf.update(task_always_eager=True, task_eager_propagates=False)
    return app


@pytest.fixture
def app(_schema, celery_app):
    app = Flask("host_with_celery")
    app.config.update(SECRET_KEY="test-secret", SERVER_NAME="lms.test", SQLALCHEMY_DATABASE_URI=_schema,
                      LMS_STRIPE_MAX_NETWORK_RETRIES=0, LMS_STRIPE_QUEUE_RETRY_DELAYS=(1, 1))
    host_db.init_app(app)
    host = MinimalHost()
    StripePayments(app, db=host_db, host=host, queue=celery_app)
    app.config["TEST_HOST"] = host
    with app.app_context():
        _wipe(host_db.engine)
        yield app
        host_db.session.remove()


@pytest.fixture
def purchase(db, people, priced, configured):
    return open_purchase(db)


def _row(db, event_id="evt_test_1") -> Event:
    db.session.expire_all()
    return db.session.get(Event, event_id)


def test_the_plugin_registers_its_tasks_on_the_hosts_celery_app(app, celery_app):
    assert isinstance(queue.of(app), queue.CeleryBackend)
    assert {queue.CELERY_TASK, queue.CELERY_REMINDERS_TASK} <= set(celery_app.tasks)


def test_a_webhook_goes_through_the_celery_task(app, client, db, host, purchase, stripe_http, signals):
    completed = event("checkout.session.completed", checkout_session(
        purchase.id, status="complete", payment_status="paid", invoice="in_test_1", payment_intent="pi_test_1",
        customer="cus_test_lea"))
    response = post_webhook(client, completed, SECRET)
    assert response.json == {"status": "queued"}  # eager: the task has run by the time the view answers
    assert (_row(db).status, _row(db).attempts) == ("processed", 1)
    db.session.expire_all()
    assert db.session.get(Purchase, purchase.id).status == "paid" and host.calls == [("enroll", "u1", "c1")]
    assert post_webhook(client, completed, SECRET).json == {"status": "already handled"}
    assert len(signals["purchase_completed"]) == 1 and len(stripe_http.calls) == 0


def test_a_failing_event_is_retried_by_celery_then_kept_failed(app, client, db, purchase, stripe_http):
    url = re.compile(rf"{STRIPE}/v1/checkout/sessions/cs_test_{purchase.id:04d}(\?.*)?$")
    stripe_error(stripe_http, responses.GET, url, 503, "api_error", "Service unavailable")
    failed = event("checkout.session.async_payment_failed", checkout_session(
        purchase.id, status="complete", payment_status="unpaid", payment_intent="pi_test_1"))
    assert post_webhook(client, failed, SECRET).json == {"status": "queued"}
    row = _row(db)
    assert (row.status, row.attempts) == ("failed", 3) and "Service unavailable" in row.error  # 1 + 2 retries


def test_messages_go_through_the_celery_task(app, db, monkeypatch):
    sent = []
    monkeypatch.setattr(outbox, "_backend", lambda channel: type("R", (), {"send": lambda self, m: sent.append(m)})())
    messages.queue(db.session, channel="email", recipient="lea@example.com", subject="Payment request",
                   body="Please pay", idempotency_key="request-1-email")
    db.session.commit()
    assert [m.recipient for m in sent] == ["lea@example.com"]


def test_beat_can_run_the_reminders_by_the_tasks_name(app, celery_app, monkeypatch):
    ran = []
    monkeypatch.setattr(tasks, "send_due_reminders", lambda flask_app: ran.append(flask_app))
    result = celery_app.tasks[queue.CELERY_REMINDERS_TASK].apply()
    assert result.successful() and ran == [app]
