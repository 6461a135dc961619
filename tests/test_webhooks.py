"""``POST /payments/webhook``: signatures, storing each event once, failures kept for replay, any order."""
import json
import re
import threading
import time

import pytest
import responses
import sqlalchemy
from sqlalchemy import func, select

from lms_stripe_plugin.accounts import settings as payment_settings
from lms_stripe_plugin.core.models import Event, Invoice, Purchase, utcnow
from lms_stripe_plugin.sync import webhooks
from lms_stripe_plugin.sync.handlers import HANDLERS, Handling
from lms_stripe_plugin.testing import post_webhook, sign_payload

from .conftest import KEYS, STRIPE
from .stripe_stubs import checkout_session, event, invoice, open_purchase, paid_session, payment_intent, stripe_error
from .test_catalog import sql_statements

SECRET = KEYS["webhook_secrets"][0]


_open_purchase = open_purchase
_paid_session = paid_session


def _serve(mock, url_pattern: str, obj: dict):
    """Stripe's GET of one object, answering whatever ``obj`` holds at the time of the call."""
    holder = {"obj": obj}
    mock.add_callback(responses.GET, re.compile(rf"{STRIPE}{url_pattern}(\?.*)?$"),
                      callback=lambda request: (200, {}, json.dumps(holder["obj"])), content_type="application/json")
    return holder


def _serve_session(mock, cs: dict):
    return _serve(mock, f"/v1/checkout/sessions/{cs['id']}", cs)


def _events(db):
    return db.session.scalars(select(Event).order_by(Event.received_at)).all()


def _event_row(db, event_id):
    db.session.expire_all()
    return db.session.get(Event, event_id)


def _completed(purchase, event_id="evt_test_1"):
    """As Stripe sends it: the session at the time, its invoice and payment intent as ids."""
    return event("checkout.session.completed", checkout_session(
        purchase.id, status="complete", payment_status="paid", invoice="in_test_1", payment_intent="pi_test_1",
        customer="cus_test_lea"), event_id)


def _async_failed(purchase, event_id="evt_test_1"):
    """A delayed payment that failed: the only checkout event whose handler reads Stripe (the reason)."""
    return event("checkout.session.async_payment_failed", checkout_session(
        purchase.id, status="complete", payment_status="unpaid", payment_intent="pi_test_1"), event_id)


def _failed_session(purchase):
    return _paid_session(purchase, payment_status="unpaid", invoice=None, payment_intent=payment_intent(
        status="requires_payment_method", error={"message": "The bank account has insufficient funds.",
                                                 "type": "card_error"}))


@pytest.fixture
def purchase(db, people, priced, configured):
    return _open_purchase(db)


# -- signatures ------------------------------------------------------------------------------------------

def test_a_signed_event_is_stored_and_handled(client, db, host, purchase, stripe_http):
    response = post_webhook(client, _completed(purchase), SECRET)
    assert response.status_code == 200 and response.json == {"status": "handled"}
    assert len(stripe_http.calls) == 0  # the event carries the session: nothing is read from Stripe
    row = _event_row(db, "evt_test_1")
    assert (row.type, row.status, row.attempts, row.error) == ("checkout.session.completed", "processed", 1, None)
    assert json.loads(row.payload)["id"] == "evt_test_1"
    assert db.session.get(Purchase, purchase.id).status == "paid"
    assert host.calls == [("enroll", "u1", "c1")]


def test_missing_signature_is_refused_and_nothing_stored(client, db, purchase, stripe_http):
    body = json.dumps(_completed(purchase)).encode()
    response = client.post("/payments/webhook", data=body, content_type="application/json")
    assert response.status_code == 400 and "Missing" in response.json["error"]["message"]
    assert _events(db) == [] and len(stripe_http.calls) == 0


@pytest.mark.parametrize("secret, age", [("whsec_someoneelse12345", 0), (SECRET, 400), (SECRET, 301)])
def test_wrong_or_stale_signature_is_refused_and_nothing_stored(client, db, purchase, stripe_http, secret, age):
    response = post_webhook(client, _completed(purchase), secret, timestamp=int(time.time()) - age)
    assert response.status_code == 400
    assert "signature" in response.json["error"]["message"]
    assert _events(db) == [] and len(stripe_http.calls) == 0
    assert db.session.get(Purchase, purchase.id).status == "open"


@pytest.mark.parametrize("age", [-301, -400, -10**6])
def test_a_signature_dated_in_the_future_beyond_the_tolerance_is_refused(client, db, purchase, stripe_http, age,
                                                                         monkeypatch):
    """The SDK refuses only signatures older than the tolerance; one dated ahead would stay replayable. The
    clock is held still: a second turning between signing and checking would bring 301 s within it."""
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now)
    response = post_webhook(client, _completed(purchase), SECRET, timestamp=int(now) - age)
    assert response.status_code == 400 and "future" in response.json["error"]["message"]
    assert _events(db) == [] and len(stripe_http.calls) == 0


def test_a_signature_slightly_ahead_of_our_clock_is_accepted(client, db, purchase, stripe_http):
    response = post_webhook(client, _completed(purchase), SECRET, timestamp=int(time.time()) + 250)
    assert response.status_code == 200


@pytest.mark.parametrize("header", ["t=1,v1=\u00e9", "t=\u00e9,v1=abc", "t={now},v1={sig}\u00e9"])
def test_a_signature_header_that_is_not_ascii_is_refused_like_any_bad_signature(client, db, purchase, stripe_http,
                                                                                 header):
    body = json.dumps(_completed(purchase)).encode()
    genuine = sign_payload(body, SECRET)
    header = header.format(now=int(time.time()), sig=genuine.split("v1=")[1])
    response = client.post("/payments/webhook", data=body, content_type="application/json",
                           headers={"Stripe-Signature": header})
    assert response.status_code == 400 and "signature" in response.json["error"]["message"]
    assert _events(db) == []


def test_a_signature_for_another_body_is_refused(client, db, purchase, stripe_http):
    genuine = json.dumps(_completed(purchase)).encode()
    forged = json.dumps(_completed(purchase, event_id="evt_forged")).encode()
    response = client.post("/payments/webhook", data=forged, content_type="application/json",
                           headers={"Stripe-Signature": sign_payload(genuine, SECRET)})
    assert response.status_code == 400 and _events(db) == []


def test_a_recent_signature_within_the_tolerance_is_accepted(client, db, purchase, stripe_http):
    response = post_webhook(client, _completed(purchase), SECRET, timestamp=int(time.time()) - 250)
    assert response.status_code == 200


def test_a_second_signing_secret_is_accepted_during_rotation(client, db, purchase, stripe_http):
    payment_settings.save(db.session, {"webhook_secrets": [SECRET, "whsec_rotatednewsecret1"]}, actor_id="adm")
    db.session.commit()
    assert post_webhook(client, _completed(purchase), "whsec_rotatednewsecret1").status_code == 200
    assert post_webhook(client, _completed(purchase, "evt_test_2"), SECRET).status_code == 200
    assert [row.status for row in _events(db)] == ["processed", "processed"]


def test_no_signing_secret_configured_is_a_configuration_error(client, db, people, priced, stripe_http):
    response = post_webhook(client, {"id": "evt_test_1", "type": "checkout.session.completed"}, SECRET)
    assert response.status_code == 503 and "signing secret" in response.json["error"]["message"]
    assert _events(db) == []


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"id": 12, "type": "x"}', b'"evt"'])
def test_malformed_bodies_are_refused(client, db, purchase, stripe_http, body):
    response = post_webhook(client, body, SECRET)
    assert response.status_code == 400
    assert _events(db) == []


def test_an_oversized_body_is_refused(client, db, purchase, stripe_http):
    big = _completed(purchase)
    big["padding"] = "x" * (600 * 1024)
    response = post_webhook(client, big, SECRET)
    assert response.status_code == 413
    assert _events(db) == [] and len(stripe_http.calls) == 0


def test_the_webhook_needs_no_csrf_token(client, db, purchase, stripe_http):
    response = post_webhook(client, _completed(purchase), SECRET)  # no csrf_token, no session cookie
    assert response.status_code == 200


# -- once, and failures kept for Stripe's retries ----------------------------------------------------------------

def test_an_event_already_processed_is_acknowledged_without_handling_it_again(client, db, host, purchase,
                                                                               stripe_http, signals):
    assert post_webhook(client, _completed(purchase), SECRET).status_code == 200
    again = post_webhook(client, _completed(purchase), SECRET)
    assert again.status_code == 200 and again.json == {"status": "already handled"}
    assert len(stripe_http.calls) == 0
    assert len(_events(db)) == 1 and _event_row(db, "evt_test_1").attempts == 1
    assert host.calls == [("enroll", "u1", "c1")] and len(signals["purchase_completed"]) == 1


def test_a_second_delivery_is_answered_after_one_query(app, client, db, purchase, stripe_http):
    """The settings (the signing secrets) and the stored status of the event the body names are one query."""
    delivery = _completed(purchase)
    assert post_webhook(client, delivery, SECRET).status_code == 200
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    sqlalchemy.event.listen(db.engine, "before_cursor_execute", listener)
    try:
        again = post_webhook(client, delivery, SECRET)
    finally:
        sqlalchemy.event.remove(db.engine, "before_cursor_execute", listener)
    assert again.json == {"status": "already handled"}
    assert len(statements) == 1 and "lms_stripe_settings" in statements[0] and "lms_stripe_events" in statements[0]


def test_a_stored_events_status_is_of_no_use_to_a_forged_body(client, db, purchase, stripe_http):
    """The status read with the settings counts only once the signature is checked: a forged body naming a
    handled event is refused as any other."""
    assert post_webhook(client, _completed(purchase), SECRET).status_code == 200
    forged = json.dumps(_completed(purchase)).encode()
    response = client.post("/payments/webhook", data=forged, content_type="application/json",
                           headers={"Stripe-Signature": sign_payload(forged, "whsec_someoneelse12345")})
    assert response.status_code == 400 and "signature" in response.json["error"]["message"]
    assert _event_row(db, "evt_test_1").attempts == 1


@pytest.mark.parametrize("second", ["applies", "fails"])
def test_two_handlings_of_one_stored_event_at_once_apply_it_once(app, db, host, purchase, monkeypatch, second):
    """Two workers (or a worker and a replay) take the same stored event together: the second reads it not
    handled while the first is still applying it. When it comes to write (on SQLite as on PostgreSQL) it finds
    it taken, and applies nothing; or, when its own handling failed, it leaves the first one's success."""
    handling = HANDLERS["checkout.session.completed"]
    applied = []

    def slow(state, obj, event_, extra):
        applied.append(obj["id"])
        time.sleep(0.5)  # the other handling reads the row meanwhile
        handling.apply(state, obj, event_, extra)

    def read(state, obj):
        if threading.current_thread() is threads[1]:
            raise RuntimeError("Stripe could not be reached")

    monkeypatch.setitem(HANDLERS, "checkout.session.completed",
                        Handling(handling.kind, slow, read if second == "fails" else None, reads=handling.reads))
    body = _completed(purchase)
    assert webhooks.store_received(db.session, "evt_test_1", body, json.dumps(body))
    db.session.commit()
    outcomes = []

    def work():
        with app.app_context():
            state = app.extensions["lms_stripe"]
            row = state.session.get(Event, "evt_test_1")
            outcomes.append(webhooks.handle(state, row).message)

    threads = [threading.Thread(target=work) for _ in range(2)]
    threads[0].start()
    time.sleep(0.2)
    threads[1].start()
    for thread in threads:
        thread.join(60)
    other = "already handled" if second == "applies" else "handler failed"
    assert sorted(outcomes) == sorted(["handled", other]) and len(applied) == 1
    assert host.calls == [("enroll", "u1", "c1")]
    row = _event_row(db, "evt_test_1")
    assert (row.status, row.attempts, row.error) == ("processed", 1, None)


def test_a_failed_handler_answers_500_keeps_the_error_and_succeeds_when_stripe_retries(client, db, host, purchase,
                                                                                      stripe_http, signals):
    url = re.compile(rf"{STRIPE}/v1/checkout/sessions/cs_test_{purchase.id:04d}(\?.*)?$")
    stripe_error(stripe_http, responses.GET, url, 500, "api_error", "An unknown error occurred")
    response = post_webhook(client, _async_failed(purchase), SECRET)
    assert response.status_code == 500
    row = _event_row(db, "evt_test_1")
    assert row.status == "failed" and row.attempts == 1 and row.reason is None
    assert "GatewayError" in row.error and "Stripe could not be reached" in row.error
    assert db.session.get(Purchase, purchase.id).status == "open" and not signals

    stripe_http.reset()
    _serve_session(stripe_http, _failed_session(purchase))
    retry = post_webhook(client, _async_failed(purchase), SECRET)
    assert retry.status_code == 200
    row = _event_row(db, "evt_test_1")
    assert (row.status, row.attempts, row.error) == ("processed", 2, None)
    assert db.session.get(Purchase, purchase.id).failure_reason == "The bank account has insufficient funds."
    assert len(signals["payment_failed"]) == 1 and host.calls == []


def test_unknown_event_types_are_acknowledged_and_ignored(client, db, purchase, stripe_http):
    response = post_webhook(client, event("customer.created", {"id": "cus_x", "object": "customer"}), SECRET)
    assert response.status_code == 200 and response.json == {"status": "ignored"}
    assert _event_row(db, "evt_test_1").status == "ignored"
    again = post_webhook(client, event("customer.created", {"id": "cus_x", "object": "customer"}), SECRET)
    assert again.status_code == 200 and again.json == {"status": "already handled"}
    assert len(stripe_http.calls) == 0


@pytest.mark.parametrize("outcome", ["ignored", "rejected"])
def test_a_new_event_that_no_handler_takes_is_stored_by_one_statement_after_the_read(client, db, purchase,
                                                                                    stripe_http, outcome):
    """An event to ignore or to reject, delivered for the first time, is inserted with its outcome at once: after
    the read of the settings, one statement, not an update that finds no row, a read and an insert."""
    delivery = (event("customer.created", {"id": "cus_x", "object": "customer"}) if outcome == "ignored"
                else dict(_completed(purchase), livemode=True))  # a live event for a test-mode key
    with sql_statements(db) as statements:
        response = post_webhook(client, delivery, SECRET)
    assert response.status_code == 200 and response.json == {"status": outcome}
    assert len(statements) == 2 and statements[1].startswith("INSERT INTO lms_stripe_events")
    row = _event_row(db, "evt_test_1")
    assert (row.status, row.attempts, row.reason is None) == (outcome, 1, outcome == "ignored")


def test_a_failure_leaves_alone_the_success_of_a_delivery_that_stored_the_event_meanwhile(client, db, purchase,
                                                                                          stripe_http, monkeypatch):
    """The event was not stored when this delivery read it; another delivery handles it and commits while this
    one's handler fails: the failure is not stored over that success."""
    handling = HANDLERS["checkout.session.completed"]

    def read(state, obj):
        with db.engine.begin() as other:  # the other delivery's transaction
            other.execute(sqlalchemy.insert(Event).values(
                id="evt_test_1", type="checkout.session.completed", livemode=False, payload="{}",
                status="processed", attempts=1, processed_at=utcnow()))
        raise RuntimeError("Stripe could not be reached")

    monkeypatch.setitem(HANDLERS, "checkout.session.completed",
                        Handling(handling.kind, handling.apply, read, reads=handling.reads))
    response = post_webhook(client, _completed(purchase), SECRET)
    assert response.status_code == 500 and response.json == {"status": "handler failed"}
    row = _event_row(db, "evt_test_1")
    assert (row.status, row.attempts, row.error) == ("processed", 1, None)


def test_a_session_of_another_integration_is_left_alone(client, db, purchase, stripe_http):
    foreign = dict(checkout_session(999, session_id="cs_test_foreign", status="complete", payment_status="paid"),
                   metadata={}, client_reference_id=None)
    response = post_webhook(client, event("checkout.session.completed", foreign), SECRET)
    assert response.status_code == 200 and _event_row(db, "evt_test_1").status == "processed"
    assert db.session.get(Purchase, purchase.id).status == "open"


# -- order does not matter --------------------------------------------------------------------------------------

def _state(db, host, signals):
    db.session.expire_all()
    purchase = db.session.scalar(select(Purchase))
    invoices = db.session.scalars(select(Invoice)).all()
    return (purchase.status, [(i.stripe_invoice_id, i.number, i.gross, i.vat, i.purchase_id) for i in invoices],
            list(host.calls), len(signals.get("purchase_completed", [])), len(signals.get("invoice_issued", [])),
            sorted(row.status for row in _events(db)))


@pytest.mark.parametrize("order", [("completed", "invoice"), ("invoice", "completed")])
def test_out_of_order_events_end_in_the_same_state(client, db, host, purchase, stripe_http, signals, order):
    stripe_invoice = invoice(purchase.id)
    deliveries = {"completed": _completed(purchase, "evt_completed"),
                  "invoice": event("invoice.paid", stripe_invoice, "evt_invoice")}
    for name in order:
        assert post_webhook(client, deliveries[name], SECRET).status_code == 200
    assert _state(db, host, signals) == (
        "paid", [("in_test_1", "ABC-0001", 4990, 832, purchase.id)], [("enroll", "u1", "c1")], 1, 1,
        ["processed", "processed"])
    assert len(stripe_http.calls) == 0


def test_invoice_events_of_other_integrations_are_not_fetched(client, db, purchase, stripe_http):
    foreign = dict(invoice(purchase.id), metadata={})
    assert post_webhook(client, event("invoice.paid", foreign), SECRET).status_code == 200
    assert len(stripe_http.calls) == 0 and db.session.scalar(select(func.count()).select_from(Invoice)) == 0


# -- replay ------------------------------------------------------------------------------------------------------

def test_cli_replays_failed_events(app, client, db, host, purchase, stripe_http, signals):
    url = re.compile(rf"{STRIPE}/v1/checkout/sessions/cs_test_{purchase.id:04d}(\?.*)?$")
    stripe_error(stripe_http, responses.GET, url, 503, "api_error", "Service unavailable")
    assert post_webhook(client, _async_failed(purchase), SECRET).status_code == 500
    ignored = event("customer.created", {"id": "cus_x", "object": "customer"}, "evt_ignored")
    assert post_webhook(client, ignored, SECRET).status_code == 200

    still_down = app.test_cli_runner().invoke(args=["lms-stripe", "events", "replay"])
    assert still_down.exit_code == 1
    assert "evt_test_1: handler failed" in still_down.output and "1 replayed, 1 still failing." in still_down.output
    assert _event_row(db, "evt_test_1").status == "failed"

    stripe_http.reset()
    _serve_session(stripe_http, _failed_session(purchase))
    result = app.test_cli_runner().invoke(args=["lms-stripe", "events", "replay"])
    assert result.exit_code == 0, result.output
    assert "evt_test_1: handled" in result.output and "1 replayed, 0 still failing." in result.output
    assert _event_row(db, "evt_test_1").status == "processed"
    assert _event_row(db, "evt_ignored").status == "ignored"
    db.session.expire_all()
    assert db.session.get(Purchase, purchase.id).status == "failed" and len(signals["payment_failed"]) == 1

    calls = len(stripe_http.calls)
    nothing = app.test_cli_runner().invoke(args=["lms-stripe", "events", "replay"])
    assert nothing.exit_code == 0 and "0 replayed, 0 still failing." in nothing.output
    assert len(stripe_http.calls) == calls
