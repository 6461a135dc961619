"""Fulfilment: the webhook and the success page, in any order, bring a purchase in line with Stripe."""
import json
import re
from datetime import timedelta
from urllib.parse import parse_qsl, urlparse

import pytest
import responses
from blinker import signal
from sqlalchemy import func, select

from lms_stripe_plugin.shop.fulfilment import sync_checkout_session
from lms_stripe_plugin.core.models import Customer, Event, Invoice, Purchase, utcnow
from lms_stripe_plugin.testing import post_webhook

from .conftest import KEYS, STRIPE, as_user
from .minimal_host import Seat
from .stripe_stubs import checkout_session, event, invoice, open_purchase, paid_session, payment_intent, stub_customers

SECRET = KEYS["webhook_secrets"][0]


_open_purchase = open_purchase
_session = paid_session


class StripeSession:
    """Stripe's GET /v1/checkout/sessions/<id>, answering the session as it stands at the time of the call."""

    def __init__(self, mock, cs: dict):
        self.cs, self.mock = cs, mock
        pattern = re.compile(rf"{STRIPE}/v1/checkout/sessions/{cs['id']}(\?.*)?$")
        mock.add_callback(responses.GET, pattern, callback=lambda request: (200, {}, json.dumps(self.cs)),
                          content_type="application/json")

    @property
    def calls(self):
        return [c for c in self.mock.calls if c.request.url.startswith(f"{STRIPE}/v1/checkout/sessions/{self.cs['id']}")]


def _success(client, session_id, user="u1"):
    return client.get(f"/payments/checkout/success?session_id={session_id}", headers=as_user(user) if user else {})


def _id(value):
    return value.get("id") if isinstance(value, dict) else value


def _completed(cs, event_id="evt_completed", event_type="checkout.session.completed"):
    """The event as Stripe sends it: the session at the time, not expanded (its invoice and payment intent
    are ids)."""
    return event(event_type, dict(cs, invoice=_id(cs["invoice"]), payment_intent=_id(cs["payment_intent"])),
                 event_id)


def _invoice_paid(purchase, event_id="evt_invoice"):
    """``invoice.paid``: the whole invoice, with its metadata (Checkout's ``invoice_creation``)."""
    return event("invoice.paid", invoice(purchase.id), event_id)


def _count(db, model, **where):
    return db.session.scalar(select(func.count()).select_from(model).filter_by(**where))


def _reload(db, purchase) -> Purchase:
    db.session.expire_all()
    return db.session.get(Purchase, purchase.id)


def _assert_fulfilled_once(db, host, signals, purchase):
    purchase = _reload(db, purchase)
    assert (purchase.status, purchase.amount_paid, purchase.stripe_payment_intent_id) == \
        ("paid", 4990, payment_intent()["id"])
    assert purchase.stripe_customer_id == "cus_test_lea" and purchase.paid_at is not None
    assert _count(db, Purchase, status="paid") == 1
    assert host.calls == [("enroll", "u1", "c1")] and _count(db, Seat, person_id="u1", lesson_id="c1") == 1
    [record] = db.session.scalars(select(Invoice)).all()
    assert (record.stripe_invoice_id, record.purchase_id, record.number, record.status) == \
        ("in_test_1", purchase.id, "ABC-0001", "paid")
    assert (record.gross, record.vat, record.net, record.currency) == (4990, 832, 4158, "EUR")
    assert (record.user_id, record.course_id, record.user_email, record.user_name, record.course_title) == \
        ("u1", "c1", "lea@example.com", "Léa", "Python basics")
    assert record.pdf_url == "https://pay.stripe.com/invoice/in_test_1/pdf"
    assert db.session.scalar(select(Customer.stripe_customer_id).where(Customer.user_id == "u1")) == "cus_test_lea"
    assert len(signals["purchase_completed"]) == 1 and len(signals["invoice_issued"]) == 1
    completed = signals["purchase_completed"][0]
    assert (completed["user_id"], completed["course_id"], completed["purchase"].id) == ("u1", "c1", purchase.id)
    assert signals["invoice_issued"][0]["invoice"].stripe_invoice_id == "in_test_1"


@pytest.fixture
def purchase(db, people, priced, configured):
    return _open_purchase(db)


# -- both paths, both orders ---------------------------------------------------------------------------------

@pytest.mark.parametrize("order", [("completed", "invoice"), ("invoice", "completed")])
def test_webhook_then_success_page(client, db, host, purchase, stripe_http, signals, order):
    stripe = StripeSession(stripe_http, _session(purchase))
    deliveries = {"completed": _completed(stripe.cs), "invoice": _invoice_paid(purchase)}
    for name in order:
        assert post_webhook(client, deliveries[name], SECRET).json["status"] == "handled"
    assert len(stripe_http.calls) == 0  # the events carry what they say: nothing is read from Stripe
    page = _success(client, stripe.cs["id"])
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Thank you, your payment is confirmed" in text and 'href="/lessons/c1"' in text
    assert len(stripe_http.calls) == 0  # already paid: the page asks Stripe nothing
    _assert_fulfilled_once(db, host, signals, purchase)


def test_success_page_then_webhook(client, db, host, purchase, stripe_http, signals):
    stripe = StripeSession(stripe_http, _session(purchase))
    page = _success(client, stripe.cs["id"])
    assert page.status_code == 200 and "Thank you, your payment is confirmed" in page.get_data(as_text=True)
    [call] = stripe.calls
    query = parse_qsl(urlparse(call.request.url).query)
    assert sorted(value for key, value in query if key.startswith("expand")) == ["invoice", "payment_intent"]
    assert post_webhook(client, _completed(stripe.cs), SECRET).status_code == 200
    assert db.session.get(Event, "evt_completed").status == "processed"
    _assert_fulfilled_once(db, host, signals, purchase)


def test_every_path_many_times_still_fulfils_once(app, client, db, host, purchase, stripe_http, signals):
    stripe = StripeSession(stripe_http, _session(purchase))
    for _ in range(2):
        assert _success(client, stripe.cs["id"]).status_code == 200
    assert post_webhook(client, _completed(stripe.cs, "evt_1"), SECRET).status_code == 200
    assert post_webhook(client, _completed(stripe.cs, "evt_2", "checkout.session.async_payment_succeeded"),
                        SECRET).status_code == 200
    for _ in range(3):
        sync_checkout_session(app.extensions["lms_stripe"], stripe.cs)
        db.session.commit()
    _assert_fulfilled_once(db, host, signals, purchase)


def test_a_session_without_its_invoice_yet_is_paid_and_the_invoice_event_records_it(client, db, host, purchase,
                                                                                  stripe_http, signals):
    stripe = StripeSession(stripe_http, _session(purchase, invoice="in_test_1"))
    assert post_webhook(client, _completed(stripe.cs), SECRET).status_code == 200
    assert _reload(db, purchase).status == "paid" and _count(db, Invoice) == 0
    stripe_http.add(responses.GET, f"{STRIPE}/v1/invoices/in_test_1", json=invoice(purchase.id))
    assert post_webhook(client, event("invoice.paid", invoice(purchase.id), "evt_invoice"), SECRET).status_code == 200
    _assert_fulfilled_once(db, host, signals, purchase)


# -- forged or mismatching sessions -----------------------------------------------------------------------------

def _forge(purchase, **changes):
    cs = _session(purchase)
    for key, value in changes.items():
        if key.startswith("meta_"):
            cs["metadata"] = dict(cs["metadata"], **{f"lms_{key[5:]}": value})
        else:
            cs[key] = value
    return cs


FORGERIES = [
    pytest.param({"client_reference_id": "lms-purchase-999"}, "does not name one of our purchases", id="reference"),
    pytest.param({"meta_purchase_id": "abc"}, "does not name one of our purchases", id="purchase-id"),
    pytest.param({"meta_user_id": "u2"}, "(user)", id="user"),
    pytest.param({"meta_course_id": "c2"}, "(course)", id="course"),
    pytest.param({"amount_subtotal": 100, "amount_total": 100}, "(amount)", id="amount"),
    pytest.param({"currency": "usd"}, "(currency)", id="currency"),
]


@pytest.mark.parametrize("changes, error", FORGERIES)
def test_a_mismatching_session_pays_nothing_and_the_event_is_rejected(client, db, host, purchase, stripe_http,
                                                                     signals, changes, error):
    """Acknowledged (a retry would not change it) and kept with the reason, so Stripe stops retrying."""
    stripe = StripeSession(stripe_http, _forge(purchase, **changes))
    response = post_webhook(client, _completed(stripe.cs), SECRET)
    assert response.status_code == 200 and response.json["status"] == "rejected"
    row = db.session.get(Event, "evt_completed")
    assert row.status == "rejected" and "SessionMismatch" in row.error and error in row.error
    assert _reload(db, purchase).status == "open"
    assert host.calls == [] and _count(db, Invoice) == 0 and _count(db, Customer) == 0
    assert not signals.get("purchase_completed") and not signals.get("invoice_issued")


def test_a_session_claiming_another_learners_purchase_pays_nothing(client, db, host, purchase, stripe_http):
    other = _open_purchase(db, user_id="u2")
    # u1's session, claiming u2's purchase
    forged = _session(other, user_id="u2", session_id=purchase.stripe_checkout_session_id)
    StripeSession(stripe_http, forged)
    assert post_webhook(client, _completed(forged), SECRET).json["status"] == "rejected"
    assert f"does not match purchase {other.id} (session)" in db.session.get(Event, "evt_completed").error
    assert {p.status for p in db.session.scalars(select(Purchase))} == {"open"} and host.calls == []


@pytest.mark.parametrize("changes, error", FORGERIES[2:])
def test_the_success_page_of_a_mismatching_session_is_not_found(client, db, host, purchase, stripe_http, changes,
                                                                error):
    stripe = StripeSession(stripe_http, _forge(purchase, **changes))
    assert _success(client, stripe.cs["id"]).status_code == 404
    assert _reload(db, purchase).status == "open" and host.calls == []


# -- delayed payment methods -------------------------------------------------------------------------------------

def _detail_status(app, db, course_id="c1", user_id="u1"):
    from .minimal_host import Lesson, Person

    with app.test_request_context():
        [html] = [value for receiver, value in signal("lms.course.detail_rendering").send(
            app, course=db.session.get(Lesson, course_id), user=db.session.get(Person, user_id))
            if receiver.__module__.startswith("lms_stripe_plugin")]
    return re.search(r'data-status="([a-z_]+)"', html).group(1)


def _delayed(purchase):
    return _session(purchase, payment_status="unpaid", invoice=None,
                    payment_intent=payment_intent(status="processing"))


def test_a_delayed_payment_is_processing_then_paid(app, client, db, host, purchase, stripe_http, signals):
    stripe = StripeSession(stripe_http, _delayed(purchase))
    assert post_webhook(client, _completed(stripe.cs), SECRET).status_code == 200
    assert _reload(db, purchase).status == "processing"
    assert host.calls == [] and _count(db, Seat) == 0 and not signals.get("purchase_completed")
    page = _success(client, stripe.cs["id"])
    assert page.status_code == 200 and "Payment processing" in page.get_data(as_text=True)
    assert _detail_status(app, db) == "pending"

    stripe.cs = _session(purchase)  # the bank debit settled
    succeeded = _completed(stripe.cs, "evt_succeeded", "checkout.session.async_payment_succeeded")
    assert post_webhook(client, succeeded, SECRET).status_code == 200
    assert post_webhook(client, _invoice_paid(purchase), SECRET).status_code == 200
    _assert_fulfilled_once(db, host, signals, purchase)
    assert _detail_status(app, db) == "enrolled"
    assert "Thank you, your payment is confirmed" in _success(client, stripe.cs["id"]).get_data(as_text=True)


def test_the_payment_page_does_not_offer_to_pay_again_while_a_payment_is_processing(client, db, purchase,
                                                                                    stripe_http):
    stripe = StripeSession(stripe_http, _delayed(purchase))
    assert post_webhook(client, _completed(stripe.cs), SECRET).status_code == 200
    assert _reload(db, purchase).status == "processing"
    page = client.get("/payments/courses/c1", headers=as_user("u1")).get_data(as_text=True)
    assert 'action="/payments/checkout/c1"' not in page  # the Buy button would only answer 409
    assert "already bought" in page or "processing" in page


def test_a_delayed_payment_that_fails(client, db, host, purchase, stripe_http, signals):
    stripe = StripeSession(stripe_http, _delayed(purchase))
    assert post_webhook(client, _completed(stripe.cs), SECRET).status_code == 200
    stripe.cs = _session(purchase, payment_status="unpaid", invoice=None, payment_intent=payment_intent(
        status="requires_payment_method", error={"message": "The bank account has insufficient funds.",
                                                 "type": "card_error"}))
    failed = _completed(stripe.cs, "evt_failed", "checkout.session.async_payment_failed")
    assert post_webhook(client, failed, SECRET).status_code == 200
    purchase = _reload(db, purchase)
    assert purchase.status == "failed" and purchase.failure_reason == "The bank account has insufficient funds."
    assert host.calls == [] and _count(db, Invoice) == 0 and not signals.get("purchase_completed")
    [sent] = signals["payment_failed"]
    assert sent["purchase"].id == purchase.id and sent["reason"] == "The bank account has insufficient funds."

    calls = len(stripe.calls)
    page = _success(client, stripe.cs["id"])
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "The payment failed" in text
    assert "The bank account has insufficient funds." in text
    assert len(stripe.calls) == calls  # a failed purchase is final: no Stripe call


def test_an_expired_session_lets_the_learner_start_again(client, db, purchase, stripe_http):
    stripe = StripeSession(stripe_http, _session(purchase, status="expired", payment_status="unpaid", invoice=None,
                                                 payment_intent=None, customer=None))
    assert post_webhook(client, _completed(stripe.cs, "evt_expired", "checkout.session.expired"),
                        SECRET).status_code == 200
    assert _reload(db, purchase).status == "expired"

    page = client.get("/payments/courses/c1", headers=as_user("u1")).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    stripe_http.add(responses.POST, f"{STRIPE}/v1/tax_rates", json={"id": "txr_test_20", "object": "tax_rate"})
    stub_customers(stripe_http)
    stripe_http.add(responses.POST, f"{STRIPE}/v1/checkout/sessions", json=checkout_session(
        purchase.id + 1, session_id="cs_test_again"))
    response = client.post("/payments/checkout/c1", data={"csrf_token": token}, headers=as_user("u1"))
    assert response.status_code == 303 and response.headers["Location"].endswith("cs_test_again")
    assert [p.status for p in db.session.scalars(select(Purchase).order_by(Purchase.id))] == ["expired", "open"]


# -- the success page ------------------------------------------------------------------------------------------

def test_the_success_page_of_another_learner_is_not_found(client, db, host, purchase, stripe_http):
    stripe = StripeSession(stripe_http, _session(purchase))
    assert _success(client, stripe.cs["id"], user="u2").status_code == 404
    assert len(stripe_http.calls) == 0
    assert _reload(db, purchase).status == "open" and host.calls == []


@pytest.mark.parametrize("session_id", ["cs_test_unknown", "nope", "", "cs_" + "x" * 300])
def test_unknown_sessions_are_not_found(client, purchase, stripe_http, session_id):
    assert _success(client, session_id).status_code == 404
    assert len(stripe_http.calls) == 0


def test_the_success_page_needs_a_signed_in_learner(client, purchase, stripe_http):
    assert _success(client, purchase.stripe_checkout_session_id, user=None).status_code == 401


@pytest.mark.parametrize("status", [None, 500])
def test_stripe_unreachable_during_the_success_page_says_processing(client, db, host, purchase, stripe_http, status):
    if status:
        stripe_http.add(responses.GET, re.compile(rf"{STRIPE}/v1/checkout/sessions/.*"), status=status,
                        json={"error": {"type": "api_error", "message": "An unknown error occurred"}})
    page = _success(client, purchase.stripe_checkout_session_id)
    assert page.status_code == 200
    assert "Payment processing" in page.get_data(as_text=True)
    assert _reload(db, purchase).status == "open" and host.calls == []


def test_paying_the_old_tab_of_a_replaced_purchase_still_enrolls_the_learner(client, db, host, purchase, stripe_http,
                                                                              signals):
    """The learner's open session was about to expire, a new Buy click replaced it, then the old tab was paid.

    Stripe took the money for the old session (it stays payable at Stripe until its own expiry): the learner
    must get the course, and only one purchase may stay live.
    """
    purchase.expires_at = utcnow() + timedelta(minutes=3)
    db.session.commit()
    page = client.get("/payments/courses/c1", headers=as_user("u1")).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    stripe_http.add(responses.POST, f"{STRIPE}/v1/tax_rates", json={"id": "txr_test_20", "object": "tax_rate"})
    stub_customers(stripe_http)
    stripe_http.add(responses.POST, f"{STRIPE}/v1/checkout/sessions",
                    json=checkout_session(purchase.id + 1, session_id="cs_test_new"))
    assert client.post("/payments/checkout/c1", data={"csrf_token": token}, headers=as_user("u1")).status_code == 303
    assert _reload(db, purchase).status == "expired"

    old_tab = StripeSession(stripe_http, _session(purchase))  # paid at Stripe
    assert post_webhook(client, _completed(old_tab.cs), SECRET).status_code == 200
    assert host.calls == [("enroll", "u1", "c1")]
    assert _reload(db, purchase).status == "paid"
    assert [p.status for p in db.session.scalars(select(Purchase).order_by(Purchase.id))] == ["paid", "expired"]
    assert len(signals.get("purchase_completed", [])) == 1
