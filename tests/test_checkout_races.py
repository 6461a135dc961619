"""Two Buy clicks of one purchase at Stripe at once (a double click, a second tab): both send the purchase's
idempotency key, Stripe makes one session and answers the other click with an error. Whichever answer our
database records first, the learner pays at most once, and a payment taken is fulfilled."""
import json
import re

import pytest
import responses
from sqlalchemy import select

from lms_stripe_plugin.core.models import Purchase
from lms_stripe_plugin.testing import post_webhook

from .conftest import KEYS, STRIPE, as_user, form_body
from .minimal_host import Seat
from .stripe_stubs import checkout_session, event, paid_session, stub_customers, stub_tax_rate

SESSIONS = f"{STRIPE}/v1/checkout/sessions"
#: Stripe's answer to a request whose idempotency key another request is still using (it keeps nothing for it:
#: the same key may be sent again).
KEY_IN_USE = 409, {"error": {"type": "idempotency_error", "code": "idempotency_key_in_use",
                             "message": "There is currently another in-progress request using this Idempotent Key "
                                        "(that probably means you submitted twice, and the other request is still "
                                        "going through): lms-checkout-1. Please try again later."}}
#: Stripe's final answer to a key sent again with other parameters (the offer changed between the clicks).
KEY_REUSED = 400, {"error": {"type": "idempotency_error",
                             "message": "Keys for idempotent requests can only be used with the same parameters they "
                                        "were first used with. Try using a key other than 'lms-checkout-1' if you "
                                        "meant to execute a different request."}}


def _token(client) -> str:
    page = client.get("/payments/courses/c1", headers=as_user("u1")).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _buy(client, token):
    return client.post("/payments/checkout/c1", data={"csrf_token": token}, headers=as_user("u1"))


def _purchases(db):
    db.session.expire_all()
    return db.session.scalars(select(Purchase).order_by(Purchase.id)).all()


def _pay(client, purchase, event_id):
    """Stripe's ``checkout.session.completed`` for the purchase's session, paid (ids, as events carry them)."""
    cs = paid_session(purchase)
    cs.update(invoice=cs["invoice"]["id"], payment_intent=f"pi_test_{purchase.id}")
    response = post_webhook(client, event("checkout.session.completed", cs, event_id), KEYS["webhook_secrets"][0])
    assert response.status_code == 200, response.get_data(as_text=True)


class Stripe:
    """Stripe's session endpoints. The first click's call to create the session lets a second click of the same
    learner run whole before it answers: the second click's answer reaches our database first.
    ``second_gets_session`` says which of the two calls Stripe answers with the session; the other is answered
    ``refusal``. Later calls get a session, as a click of a new purchase does."""

    def __init__(self, mock, client, token, *, second_gets_session: bool, refusal=KEY_IN_USE):
        self.client, self.token, self.second_gets_session = client, token, second_gets_session
        self.refusal = refusal
        self.second, self.created, self.mock = None, 0, mock
        stub_tax_rate(mock)
        stub_customers(mock)
        mock.add_callback(responses.POST, SESSIONS, callback=self._create, content_type="application/json")
        mock.add_callback(responses.POST, re.compile(rf"{SESSIONS}/cs_test_\d+/expire$"), callback=self._expire,
                          content_type="application/json")

    def _create(self, request):
        self.created += 1
        first = self.created == 1
        if first:
            self.second = _buy(self.client, self.token)  # the other click, while this one is at Stripe
        gets_session = self.second_gets_session != first if self.created <= 2 else True
        if not gets_session:
            status, body = self.refusal
            return status, {}, json.dumps(body)
        purchase_id = int(form_body(request)["metadata[lms_purchase_id]"])
        return 200, {}, json.dumps(checkout_session(purchase_id))

    def _expire(self, request):
        session_id = request.url.split("?")[0].rsplit("/", 2)[1]
        purchase_id = int(session_id.rsplit("_", 1)[1])
        return 200, {}, json.dumps(checkout_session(purchase_id, status="expired"))

    @property
    def expired(self) -> list[str]:
        return [call.request.url.split("?")[0].rsplit("/", 2)[1] for call in self.mock.calls
                if call.request.url.split("?")[0].endswith("/expire")]


@pytest.fixture
def token(client, people, priced, configured):
    return _token(client)


def _enrolled_once(db, host, signals):
    assert host.calls == [("enroll", "u1", "c1")]
    assert db.session.scalar(select(Seat).where(Seat.person_id == "u1", Seat.lesson_id == "c1")) is not None
    assert len(signals.get("purchase_completed", [])) == 1


def test_a_click_answered_with_the_session_after_the_other_gave_up_sends_no_one_to_pay(client, db, host, token,
                                                                                        stripe_http, signals):
    """The click Stripe answered with a final error gives up first: its purchase failed. The session the other
    click then gets belongs to a failed purchase: the learner is not sent to pay it, and it is expired at
    Stripe; the next click starts afresh, and its payment enrolls the learner."""
    stripe = Stripe(stripe_http, client, token, second_gets_session=False, refusal=KEY_REUSED)
    first = _buy(client, token)
    assert stripe.second.status_code == 502  # "Stripe refused the request: ..."
    [purchase] = _purchases(db)
    assert purchase.status == "failed"
    assert first.status_code == 409, first.headers.get("Location")  # not sent to pay a failed purchase
    assert "go back to the course and buy it again" in first.get_data(as_text=True)
    assert purchase.stripe_checkout_session_id == f"cs_test_{purchase.id:04d}"  # recorded, should it be paid
    assert stripe.expired == [purchase.stripe_checkout_session_id]

    again = _buy(client, token)
    assert again.status_code == 303
    failed, new = _purchases(db)
    assert (failed.status, new.status) == ("failed", "open")
    assert again.headers["Location"] == new.checkout_url
    _pay(client, new, "evt_paid")
    _enrolled_once(db, host, signals)
    assert [p.status for p in _purchases(db)] == ["failed", "paid"]


@pytest.mark.parametrize("refusal", [KEY_IN_USE, KEY_REUSED], ids=["key in use", "key reused"])
def test_a_click_that_gives_up_after_the_other_got_the_session_leaves_the_purchase_payable(client, db, host, token,
                                                                                           stripe_http, signals,
                                                                                           refusal):
    """The click that got the session records it and sends the learner to pay it; the click Stripe refused
    records its error after that: the purchase stays open, its payment enrolls the learner, and the course
    cannot be bought a second time."""
    stripe = Stripe(stripe_http, client, token, second_gets_session=True, refusal=refusal)
    first = _buy(client, token)
    assert first.status_code == 502  # the click Stripe refused
    [purchase] = _purchases(db)
    assert stripe.second.status_code == 303
    assert stripe.second.headers["Location"] == f"https://checkout.stripe.com/c/pay/cs_test_{purchase.id:04d}"
    assert (purchase.status, purchase.checkout_url) == ("open", stripe.second.headers["Location"])

    _pay(client, purchase, "evt_paid")
    _enrolled_once(db, host, signals)
    assert [p.status for p in _purchases(db)] == ["paid"]
    refused = _buy(client, token)
    assert refused.status_code == 409 and "You are already enrolled in this course." in refused.get_data(as_text=True)
    assert [p.status for p in _purchases(db)] == ["paid"]


def test_a_click_told_the_key_is_in_use_leaves_the_purchase_to_the_other(client, db, host, token, stripe_http,
                                                                          signals):
    """Stripe's 409 for a key in use is no answer for the key: the click told so asks the learner to try again
    and leaves the purchase open, the other click sends the learner to pay, and a click again reuses that
    session."""
    stripe = Stripe(stripe_http, client, token, second_gets_session=False, refusal=KEY_IN_USE)
    first = _buy(client, token)
    assert stripe.second.status_code == 502
    assert "Stripe is still handling the same request: try again in a minute." in stripe.second.get_data(as_text=True)
    [purchase] = _purchases(db)
    assert (purchase.status, first.status_code, first.headers["Location"]) == ("open", 303, purchase.checkout_url)
    again = _buy(client, token)
    assert (again.status_code, again.headers["Location"]) == (303, purchase.checkout_url)
    assert stripe.created == 2 and stripe.expired == []
    _pay(client, purchase, "evt_paid")
    _enrolled_once(db, host, signals)
