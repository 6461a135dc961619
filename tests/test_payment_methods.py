"""How each payment was made (card, SEPA Direct Debit, Klarna, a wallet), from the charge's own events:
``charge.succeeded`` and a bank debit's ``charge.pending`` carry ``payment_method_details`` and, in their
metadata (Stripe copies the PaymentIntent's to its charge), the purchase or the Pay click they pay. Applied as
the event carries them, in any order, with no read from Stripe."""
import pytest
from sqlalchemy import select

from lms_stripe_plugin.core.enums import PaymentMethod, payment_method_label
from lms_stripe_plugin.core.models import Event, PaymentAttempt, Purchase
from lms_stripe_plugin.testing import post_webhook

from .conftest import KEYS, stripe_object
from .request_stubs import open_attempt
from .request_support import open_invoice, open_request
from .stripe_stubs import event, open_purchase

SECRET = KEYS["webhook_secrets"][0]

CARD = {"type": "card", "card": {"brand": "visa", "last4": "4242", "wallet": None}}
APPLE_PAY = {"type": "card", "card": {"brand": "visa", "last4": "4242",
                                      "wallet": {"apple_pay": {}, "dynamic_last4": "4242", "type": "apple_pay"}}}
SEPA = {"type": "sepa_debit", "sepa_debit": {"bank_code": "37040044", "country": "DE", "last4": "3000"}}
KLARNA = {"type": "klarna", "klarna": {"payment_method_category": "pay_in_installments"}}


def _charge(metadata: dict, details, *, charge_id="ch_test_1", intent="pi_test_1", status="succeeded") -> dict:
    return stripe_object("charge", id=charge_id, payment_intent=intent, metadata=metadata, status=status,
                         payment_method_details=details)


def _purchase_metadata(purchase) -> dict:
    """What Checkout's PaymentIntent carries for a purchase (``payment_intent_data.metadata``)."""
    return {"lms_purchase_id": str(purchase.id), "lms_user_id": purchase.user_id, "lms_course_id": purchase.course_id}


def _deliver(client, db, obj: dict, event_type="charge.succeeded", event_id="evt_charge_1") -> Event:
    response = post_webhook(client, event(event_type, obj, event_id), SECRET)
    assert response.status_code == 200, response.get_data(as_text=True)
    db.session.expire_all()
    return db.session.get(Event, event_id)


def _method(db, purchase) -> str | None:
    db.session.expire_all()
    return db.session.scalar(select(Purchase.payment_method).where(Purchase.id == purchase.id))


@pytest.mark.parametrize("details, expected", [
    pytest.param(CARD, "card", id="card"),
    pytest.param(APPLE_PAY, "apple_pay", id="a card in Apple Pay"),
    pytest.param(stripe_object("charge")["payment_method_details"], "link", id="Stripe's example: a card in Link"),
    pytest.param(KLARNA, "klarna", id="klarna"),
])
def test_a_charge_says_how_its_purchase_was_paid_with_no_call_to_stripe(client, db, people, priced, configured,
                                                                       stripe_http, details, expected):
    purchase = open_purchase(db)  # its PaymentIntent not known yet: the charge's event comes first
    row = _deliver(client, db, _charge(_purchase_metadata(purchase), details))
    assert row.status == "processed" and len(stripe_http.calls) == 0
    assert _method(db, purchase) == expected


def test_a_bank_debit_is_known_from_its_pending_charge_and_stays_so_when_it_succeeds(client, db, people, priced,
                                                                                     configured, stripe_http):
    purchase = open_purchase(db)
    _deliver(client, db, _charge(_purchase_metadata(purchase), SEPA, status="pending"), "charge.pending", "evt_1")
    assert _method(db, purchase) == "sepa_debit"
    _deliver(client, db, _charge(_purchase_metadata(purchase), SEPA), "charge.succeeded", "evt_2")
    assert _method(db, purchase) == "sepa_debit" and len(stripe_http.calls) == 0


def test_a_charge_of_another_payment_intent_than_the_purchases_changes_nothing(client, db, people, priced,
                                                                               configured, stripe_http):
    purchase = open_purchase(db)
    purchase.stripe_payment_intent_id = "pi_test_paid"
    db.session.commit()
    _deliver(client, db, _charge(_purchase_metadata(purchase), KLARNA, intent="pi_test_other"))
    assert _method(db, purchase) is None
    _deliver(client, db, _charge(_purchase_metadata(purchase), CARD, charge_id="ch_2", intent="pi_test_paid"),
             event_id="evt_charge_2")
    assert _method(db, purchase) == "card"


def test_a_charge_of_another_integration_is_acknowledged_and_left_alone(client, db, people, priced, configured,
                                                                         stripe_http):
    purchase = open_purchase(db)
    row = _deliver(client, db, _charge({"order": "42"}, CARD))
    assert row.status == "processed" and _method(db, purchase) is None and len(stripe_http.calls) == 0


def test_a_charge_names_how_a_pay_click_was_paid(client, db, host, people, configured, stripe_http):
    request_id, _token = open_request(db, open_invoice(db, host))
    attempt = open_attempt(db, request_id)
    metadata = {"lms_attempt_id": str(attempt.id), "lms_request_id": str(request_id), "lms_user_id": "u1"}
    _deliver(client, db, _charge(metadata, SEPA, status="pending", intent="pi_test_attempt"), "charge.pending")
    assert db.session.scalar(select(PaymentAttempt.payment_method)) == "sepa_debit"
    assert len(stripe_http.calls) == 0


@pytest.mark.parametrize("details", [
    pytest.param({"type": 42}, id="a type that is not text"),
    pytest.param({"type": "card", "card": {"wallet": {"type": ["apple_pay"]}}}, id="a wallet that is not text"),
    pytest.param("card", id="not an object"),
])
def test_a_charge_whose_payment_method_is_malformed_is_rejected(client, db, people, priced, configured, stripe_http,
                                                                details):
    purchase = open_purchase(db)
    row = _deliver(client, db, _charge(_purchase_metadata(purchase), details))
    assert row.status == "rejected" and row.reason == "malformed" and _method(db, purchase) is None


def test_payment_methods_are_named_in_the_readers_language(app, host):
    host.locale = "fr"
    with app.test_request_context():
        assert [payment_method_label(m) for m in ("card", "sepa_debit", "apple_pay")] == \
            ["Carte bancaire", "Prélèvement SEPA", "Apple Pay"]
    host.locale = "en"
    with app.test_request_context():
        assert PaymentMethod.SEPA_DEBIT.label == "SEPA Direct Debit"
        assert payment_method_label("wechat_pay") == "wechat_pay" and payment_method_label(None) is None
