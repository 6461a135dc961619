"""With an RQ queue on a real Redis: the webhook stores the event and answers at once, a worker handles it the
way a replay does (once, whatever the duplicates; a failure kept failed and retried), and messages, follow-up
work and the reminders run go to the queue too. Without Redis at hand the tests are skipped (see
tests/queue_support.py); the rest of the suite runs without a queue, in-process, as before."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
import responses
import sqlalchemy as sa
from flask import Flask

from lms_stripe_plugin import StripePayments, messages, tasks
from lms_stripe_plugin.core import jobs, queue
from lms_stripe_plugin.core.enums import Channel, MessageStatus
from lms_stripe_plugin.core.models import Event, Message, Purchase, utcnow
from lms_stripe_plugin.errors import ConfigurationError
from lms_stripe_plugin.messages import outbox
from lms_stripe_plugin.testing import post_webhook

from .conftest import KEYS, STRIPE, _wipe
from .minimal_host import MinimalHost, create_host_app, db as host_db
from .queue_support import free_port, redis_url, rq, rq_queue  # noqa: F401 - fixtures
from .stripe_stubs import checkout_session, event, open_purchase, paid_session, payment_intent, stripe_error
from .test_catalog import sql_statements

SECRET = KEYS["webhook_secrets"][0]


@pytest.fixture
def app(_schema, redis_url, rq_queue):
    """The test host with an RQ queue of its own (LMS_STRIPE_RQ_REDIS_URL); failed events retried twice at
    once (no scheduler needed)."""
    app, host = create_host_app({"SQLALCHEMY_DATABASE_URI": _schema, "LMS_STRIPE_MAX_NETWORK_RETRIES": 0,
                                 "LMS_STRIPE_RQ_REDIS_URL": redis_url, "LMS_STRIPE_RQ_QUEUE": rq_queue.name,
                                 "LMS_STRIPE_QUEUE_RETRY_DELAYS": (0, 0)})
    app.config["TEST_HOST"] = host
    with app.app_context():
        _wipe(host_db.engine)
        yield app
        host_db.session.remove()


@pytest.fixture
def purchase(db, people, priced, configured):
    return open_purchase(db)


def _completed(purchase, event_id="evt_test_1"):
    return event("checkout.session.completed", checkout_session(
        purchase.id, status="complete", payment_status="paid", invoice="in_test_1", payment_intent="pi_test_1",
        customer="cus_test_lea"), event_id)


def _async_failed(purchase, event_id="evt_test_1"):
    """The one checkout event whose handler reads Stripe (the reason of the failure)."""
    return event("checkout.session.async_payment_failed", checkout_session(
        purchase.id, status="complete", payment_status="unpaid", payment_intent="pi_test_1"), event_id)


def _work(app, db) -> None:
    """An RQ worker in burst mode, through the plugin's command, in this process: it runs every job queued,
    then stops. The test's own session ends its transaction first and reads afresh afterwards."""
    db.session.rollback()
    result = app.test_cli_runner().invoke(args=["lms-stripe", "worker", "--burst", "--no-scheduler"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()


def _row(db, event_id="evt_test_1") -> Event:
    db.session.expire_all()
    return db.session.get(Event, event_id)


# -- webhooks ------------------------------------------------------------------------------------------------

def test_a_webhook_is_stored_queued_and_answered_before_it_is_handled(app, client, db, host, purchase, rq_queue,
                                                                      stripe_http, signals):
    response = post_webhook(client, _completed(purchase), SECRET)
    assert response.status_code == 200 and response.json == {"status": "queued"}
    row = _row(db)
    assert (row.status, row.attempts, row.processed_at) == ("received", 0, None)
    assert db.session.get(Purchase, purchase.id).status == "open" and host.calls == []
    assert rq_queue.count == 1 and rq_queue.jobs[0].args == ("lms_stripe_plugin.sync.webhooks:handle_queued",
                                                             "evt_test_1")

    _work(app, db)
    row = _row(db)
    assert (row.status, row.attempts, row.error) == ("processed", 1, None) and row.processed_at is not None
    assert db.session.get(Purchase, purchase.id).status == "paid"
    assert host.calls == [("enroll", "u1", "c1")] and len(signals["purchase_completed"]) == 1
    assert rq_queue.count == 0 and rq_queue.failed_job_registry.count == 0
    assert len(stripe_http.calls) == 0

    again = post_webhook(client, _completed(purchase), SECRET)
    assert again.json == {"status": "already handled"} and rq_queue.count == 0


def test_duplicates_delivered_while_the_event_waits_make_one_handling(app, client, db, host, purchase, rq_queue,
                                                                      signals):
    answers = [post_webhook(client, _completed(purchase), SECRET).json["status"] for _ in range(3)]
    assert answers == ["queued"] * 3
    assert rq_queue.count == 3  # each delivery sends the job again, in case a worker lost the first one

    _work(app, db)
    assert (_row(db).status, _row(db).attempts) == ("processed", 1)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Event)) == 1
    assert host.calls == [("enroll", "u1", "c1")] and len(signals["purchase_completed"]) == 1
    assert rq_queue.failed_job_registry.count == 0


def test_ignored_and_rejected_events_are_settled_by_the_webhook_itself(app, client, db, purchase, rq_queue):
    ignored = event("customer.created", {"id": "cus_x", "object": "customer"}, "evt_ignored")
    assert post_webhook(client, ignored, SECRET).json == {"status": "ignored"}
    live = dict(_completed(purchase, "evt_live"), livemode=True)  # a live event for a test-mode key
    assert post_webhook(client, live, SECRET).json == {"status": "rejected"}
    assert (_row(db, "evt_ignored").status, _row(db, "evt_live").status) == ("ignored", "rejected")
    assert rq_queue.count == 0


@pytest.mark.parametrize("outcome", ["ignored", "rejected"])
def test_the_answer_settles_a_new_event_that_no_handler_takes_by_one_statement_after_the_read(
        app, client, db, purchase, rq_queue, outcome):
    """With a queue, an event to ignore or to reject, delivered for the first time, costs the answer what a
    queued one does: the read of the settings, then one statement (its row, with its outcome), and no job."""
    delivery = (event("customer.created", {"id": "cus_x", "object": "customer"}) if outcome == "ignored"
                else dict(_completed(purchase), livemode=True))  # a live event for a test-mode key
    db.session.rollback()  # no transaction under way, as at the start of a request
    with sql_statements(host_db) as statements:
        response = post_webhook(client, delivery, SECRET)
    assert response.status_code == 200 and response.json == {"status": outcome}
    assert len(statements) == 2 and statements[1].startswith("INSERT INTO lms_stripe_events")
    assert (_row(db).status, _row(db).attempts) == (outcome, 1) and rq_queue.count == 0


def test_a_failure_in_the_worker_is_kept_failed_retried_by_the_queue_then_replayed(app, client, db, purchase,
                                                                                   rq_queue, stripe_http, signals):
    url = re.compile(rf"{STRIPE}/v1/checkout/sessions/cs_test_{purchase.id:04d}(\?.*)?$")
    stripe_error(stripe_http, responses.GET, url, 503, "api_error", "Service unavailable")
    assert post_webhook(client, _async_failed(purchase), SECRET).json == {"status": "queued"}

    _work(app, db)  # the first attempt and the two retries (delays of 0 s), all failing
    row = _row(db)
    assert (row.status, row.attempts) == ("failed", 3) and "Service unavailable" in row.error
    assert db.session.get(Purchase, purchase.id).status == "open"
    assert rq_queue.failed_job_registry.count == 1 and rq_queue.count == 0

    stripe_http.reset()  # Stripe is back: the administrators' replay handles it, as without a queue
    stripe_http.add(responses.GET, url, json=paid_session(purchase, payment_status="unpaid", invoice=None,
                    payment_intent=payment_intent(status="requires_payment_method",
                                                  error={"message": "Insufficient funds.", "type": "card_error"})))
    result = app.test_cli_runner().invoke(args=["lms-stripe", "events", "replay"])
    assert result.exit_code == 0 and "evt_test_1: handled" in result.output
    assert _row(db).status == "processed" and db.session.get(Purchase, purchase.id).status == "failed"
    assert len(signals["payment_failed"]) == 1


def test_a_stripe_retry_of_a_failed_event_sends_it_to_the_queue_again(app, client, db, purchase, rq_queue,
                                                                      stripe_http):
    url = re.compile(rf"{STRIPE}/v1/checkout/sessions/cs_test_{purchase.id:04d}(\?.*)?$")
    stripe_error(stripe_http, responses.GET, url, 503, "api_error", "Service unavailable")
    post_webhook(client, _async_failed(purchase), SECRET)
    _work(app, db)
    assert _row(db).status == "failed"

    stripe_http.reset()
    stripe_http.add(responses.GET, url, json=paid_session(purchase, payment_status="unpaid", invoice=None,
                    payment_intent=payment_intent(status="requires_payment_method",
                                                  error={"message": "Insufficient funds.", "type": "card_error"})))
    assert post_webhook(client, _async_failed(purchase), SECRET).json == {"status": "queued"}
    _work(app, db)
    assert (_row(db).status, _row(db).attempts) == ("processed", 4)


def test_an_event_whose_job_was_lost_is_replayed_after_a_while(app, client, db, host, purchase, rq_queue):
    post_webhook(client, _completed(purchase), SECRET)
    rq_queue.empty()  # the job is gone (Redis flushed, a worker killed mid-job): the event waits, received
    fresh = app.test_cli_runner().invoke(args=["lms-stripe", "events", "replay"])
    assert "0 replayed" in fresh.output and _row(db).status == "received"  # it may still be in a queue

    db.session.execute(sa.update(Event).values(received_at=utcnow() - timedelta(minutes=11)))
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["lms-stripe", "events", "replay"])
    assert "evt_test_1: handled" in result.output and _row(db).status == "processed"
    assert host.calls == [("enroll", "u1", "c1")]


def test_without_redis_the_webhook_handles_the_event_in_process(_schema, db, people, priced, configured, host):
    """Redis unreachable (a closed loopback port): the delivery is not lost, it is handled here, as without
    a queue."""
    down, _host = create_host_app({"SQLALCHEMY_DATABASE_URI": _schema, "LMS_STRIPE_MAX_NETWORK_RETRIES": 0,
                                   "LMS_STRIPE_RQ_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    purchase = open_purchase(db)
    response = post_webhook(down.test_client(), _completed(purchase), SECRET)
    assert response.status_code == 200 and response.json == {"status": "handled"}
    assert (_row(db).status, _row(db).attempts) == ("processed", 1)
    assert db.session.get(Purchase, purchase.id).status == "paid" and _host.calls == [("enroll", "u1", "c1")]


# -- messages, follow-up work, reminders ---------------------------------------------------------------------

class Recorder:
    def __init__(self):
        self.sent: list[messages.Outgoing] = []

    def send(self, outgoing):
        self.sent.append(outgoing)


@pytest.fixture
def backend(monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(outbox, "_backend", lambda channel: recorder)
    return recorder


def _queue_message(db, key="request-1-email"):
    return messages.queue(db.session, channel=Channel.EMAIL, recipient="lea@example.com", subject="Payment request",
                          body="Please pay: https://lms.test/payments/pay/tok", idempotency_key=key)


def _message(db, key="request-1-email") -> Message:
    db.session.expire_all()
    return db.session.scalar(sa.select(Message).where(Message.idempotency_key == key))


def test_messages_are_delivered_by_a_worker_after_the_commit(app, db, backend, rq_queue):
    _queue_message(db)
    _queue_message(db, "request-1-sms-title")
    db.session.commit()
    assert backend.sent == [] and _message(db).status == MessageStatus.PENDING
    assert rq_queue.count == 1  # the transaction's messages, one job
    assert rq_queue.jobs[0].args[0] == "lms_stripe_plugin.messages.outbox:_deliver_all"

    _work(app, db)
    assert [m.subject for m in backend.sent] == ["Payment request", "Payment request"]
    assert _message(db).status == MessageStatus.SENT and _message(db).attempts == 1


def test_a_rolled_back_transaction_sends_no_job(app, db, backend, rq_queue):
    _queue_message(db)
    db.session.rollback()
    assert rq_queue.count == 0 and backend.sent == []


def _rename(state, user_id, name):  # a job of the tests: not a module of the plugin, so it stays in-process
    state.host.get_user(user_id).name = name


def test_only_the_plugins_module_level_functions_go_to_the_queue(app, db, rq_queue, people):
    """A worker imports a job by its name: a function of another package, or a nested one, runs here."""
    jobs.defer(db.session, _rename, "u2", "Samuel")
    db.session.commit()
    db.session.expire_all()
    assert rq_queue.count == 0 and db.session.get(type(people["u2"]), "u2").name == "Samuel"
    assert jobs.job_path(_rename) is None
    assert jobs.job_path(outbox.deliver) == "lms_stripe_plugin.messages.outbox:deliver"


def test_the_reminders_run_is_sent_to_the_queue_and_a_worker_runs_it(app, db, backend, rq_queue):
    """The run retries a failed message too: the worker runs the reminders job, whose message delivery is
    a job of its own."""
    _queue_message(db)
    db.session.commit()
    db.session.execute(sa.update(Message).values(status=MessageStatus.FAILED, attempts=1, last_error="down",
                                                 created_at=utcnow() - timedelta(minutes=6)))
    db.session.commit()
    rq_queue.empty()

    result = app.test_cli_runner().invoke(args=["lms-stripe", "reminders", "run"])
    assert result.exit_code == 0 and "sent to the queue" in result.output
    assert rq_queue.jobs[0].args == ("lms_stripe_plugin.cli:reminders_job",) and backend.sent == []

    _work(app, db)
    assert len(backend.sent) == 1 and _message(db).status == MessageStatus.SENT and _message(db).attempts == 2
    assert rq_queue.failed_job_registry.count == 0


def test_reminders_run_here_when_asked(app, db, rq_queue, monkeypatch):
    ran = []
    monkeypatch.setattr(tasks, "send_due_reminders", lambda app_, **kw: ran.append(kw) or tasks.ReminderReport())
    result = app.test_cli_runner().invoke(args=["lms-stripe", "reminders", "run", "--here"])
    assert result.exit_code == 0 and "0 reminder(s) sent" in result.output
    assert ran == [{"dry_run": False}] and rq_queue.count == 0


# -- set up --------------------------------------------------------------------------------------------------

def test_the_host_may_pass_its_own_rq_queue(_schema, redis_url, rq_queue):
    app = Flask("host_with_queue")
    app.config.update(SECRET_KEY="x", SERVER_NAME="lms.test", SQLALCHEMY_DATABASE_URI=_schema)
    host_db.init_app(app)
    StripePayments(app, db=host_db, host=MinimalHost(), queue=rq_queue)
    backend = queue.of(app)
    assert isinstance(backend, queue.RQBackend) and backend.queue is rq_queue


def test_no_queue_is_the_default_and_the_worker_command_says_what_to_set(_schema):
    app, _host = create_host_app({"SQLALCHEMY_DATABASE_URI": _schema})
    assert queue.of(app) is None
    result = app.test_cli_runner().invoke(args=["lms-stripe", "worker", "--burst"])
    assert result.exit_code == 2 and "LMS_STRIPE_RQ_REDIS_URL" in result.output


def test_a_queue_of_another_kind_is_refused_at_init_app(_schema):
    app = Flask("host_with_a_list")
    app.config.update(SECRET_KEY="x", SQLALCHEMY_DATABASE_URI=_schema)
    host_db.init_app(app)
    with pytest.raises(ConfigurationError, match="rq.Queue or a Celery app"):
        StripePayments(app, db=host_db, host=MinimalHost(), queue=[])


def test_a_job_outside_the_app_says_how_to_run_the_worker():
    with pytest.raises(RuntimeError, match="flask lms-stripe worker"):
        jobs.perform("lms_stripe_plugin.cli:reminders_job")


def test_a_job_name_outside_the_plugin_is_refused(app):
    with pytest.raises(ValueError, match="Not a job of the plugin"):
        jobs.perform("os:system", "true")
