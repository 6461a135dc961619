"""Payment requests as a service (`billing.requests`) and the rules of paying one (`billing.paying`): a
request is written with one link per message, its messages go out after the commit, every refusal is
complete and writes nothing; resending makes new links and keeps the old ones, and is refused once nothing
remains to be paid; cancelling expires the Checkout under way; the learner may pay only what the request's
limits allow, and a second click reuses the Checkout Session of the first."""
from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta

import pytest
import responses
from sqlalchemy import func, select

from lms_stripe_plugin.accounts import settings as payment_settings
from lms_stripe_plugin.billing import links, paying, requests as payment_requests
from lms_stripe_plugin.billing.requests import RequestInput, RequestRefused
from lms_stripe_plugin.core.enums import AttemptStatus, AuditAction, MessageStatus
from lms_stripe_plugin.core.models import (AuditEntry, Invoice, Message, PaymentAttempt, PaymentRequest, RequestLink,
                                           utcnow)
from lms_stripe_plugin.errors import GatewayError, ValidationFailed
from lms_stripe_plugin.messages import DeliveryFailed, outbox

from .conftest import STRIPE, as_user, stripe_object
from .refund_support import calls, csrf, idempotency_key, sent, text
from .request_stubs import LANDLINE, MOBILE, backend, open_attempt, stub_expire  # noqa: F401 - a fixture
from .request_support import open_invoice, open_request
from .test_catalog import sql_statements

RETURN = "https://lms.test/payments/pay/tok"


@pytest.fixture
def state(app):
    return app.extensions["lms_stripe"]


@pytest.fixture
def phones(host, monkeypatch):
    """The host's mobile numbers (`Host.user_phone`, optional): Léa has one, Sam a landline."""
    numbers = {"u1": MOBILE, "u2": LANDLINE}
    monkeypatch.setattr(host, "user_phone", lambda user: numbers.get(user.id), raising=False)
    return numbers


@pytest.fixture
def owed(db, host, people, configured):
    """An issued invoice of 300 € that nothing has paid yet: its id."""
    return open_invoice(db, host)


def _input(**changes) -> RequestInput:
    values = dict(amount=9000, due=date.today() + timedelta(days=14), message=None, email=True, sms=False,
                  locale="fr")
    values.update(changes)
    return RequestInput(**values)


def _create(db, state, invoice_id: int, **changes) -> PaymentRequest:
    request = payment_requests.create(state, db.session.get(Invoice, invoice_id), _input(**changes), actor_id="adm")
    db.session.commit()
    return request


def _count(db, model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def _token(outgoing) -> str:
    return re.search(r"/payments/pay/([A-Za-z0-9_-]+)", outgoing.body).group(1)


def _audit(db, action) -> list[dict]:
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))
    return [json.loads(entry.details) for entry in entries]


# -- creating a request -------------------------------------------------------------------------------------

def test_a_request_is_written_with_its_link_and_its_message_goes_out_after_the_commit(db, state, owed, backend):
    request = payment_requests.create(state, db.session.get(Invoice, owed), _input(message="Merci !"), actor_id="adm")
    assert backend.sent == []  # written in the caller's transaction, not sent yet
    db.session.commit()
    assert [(m.channel, m.recipient) for m in backend.sent] == [("email", "lea@example.com")]
    db.session.expire_all()
    stored = db.session.get(PaymentRequest, request.id)
    assert (stored.status, stored.amount, stored.amount_paid, stored.currency) == ("open", 9000, 0, "EUR")
    assert (stored.user_id, stored.locale, stored.message, stored.created_by) == ("u1", "fr", "Merci !", "adm")
    assert (stored.send_email, stored.send_sms, stored.partial_minimum) == (True, False, None)
    due = stored.due_at.replace(tzinfo=None)
    assert (due.date(), due.time()) == (date.today() + timedelta(days=14), datetime.max.time().replace(microsecond=0))
    assert links.request_of(db.session, _token(backend.sent[0])).id == request.id
    assert _count(db, RequestLink) == 1
    message = db.session.scalar(select(Message))
    assert (message.idempotency_key, message.request_id, message.status) == \
        (f"request-{request.id}-sent-email", request.id, MessageStatus.SENT)
    assert _audit(db, AuditAction.PAYMENT_REQUESTED) == [{"amount": 9000, "channels": ["email"], "currency": "EUR",
                                                          "invoice": owed, "request": request.id}]


def test_the_message_speaks_the_requests_language_not_the_administrators(db, state, host, owed, backend):
    host.locale = "en"
    _create(db, state, owed, locale="fr-FR")
    assert db.session.scalar(select(PaymentRequest.locale)) == "fr"
    body = backend.sent[0].body
    assert "vous demande de régler 90,00\u00a0€" in body and "€90.00" not in body


def test_by_email_and_sms_each_message_has_a_link_of_its_own(db, state, owed, backend, phones):
    request = _create(db, state, owed, sms=True)
    assert sorted((m.channel, m.recipient) for m in backend.sent) == [("email", "lea@example.com"), ("sms", MOBILE)]
    tokens = {_token(m) for m in backend.sent}
    assert len(tokens) == 2 and _count(db, RequestLink) == 2
    assert {links.request_of(db.session, token).id for token in tokens} == {request.id}


def test_partial_payments_in_the_settings_give_the_request_its_smallest_part(db, state, owed, backend):
    payment_settings.save(db.session, {"partial_payments_enabled": True, "partial_minimum": 2000}, actor_id="adm")
    db.session.commit()
    assert _create(db, state, owed).partial_minimum == 2000
    payment_settings.save(db.session, {"partial_minimum": None}, actor_id="adm")
    db.session.commit()
    assert _create(db, state, owed).partial_minimum == 0  # on, without a smallest part: Stripe's minimum rules


@pytest.mark.parametrize("changes, field, message", [
    ({"amount": 30001}, "amount", "At most what remains to be paid: €300.00."),
    ({"amount": 49}, "amount", "Stripe cannot charge this amount in EUR."),
    ({"due": date.today() - timedelta(days=1)}, "due", "The due date is in the past."),
    ({"message": "x" * 1001}, "message", "At most 1000 characters."),
    ({"email": False, "sms": False}, "channels", "Choose how to send the request: e-mail, SMS or both."),
    ({"email": False, "sms": True}, "channels",
     "The LMS has no mobile phone number for this learner: send the request by e-mail."),
])
def test_each_refusal_names_its_field_and_writes_nothing(db, state, host, owed, backend, changes, field, message):
    with pytest.raises(ValidationFailed) as refused:
        payment_requests.create(state, db.session.get(Invoice, owed), _input(**changes), actor_id="adm")
    db.session.commit()
    assert refused.value.errors == {field: message}
    assert refused.value.message == "The payment request was not sent."
    assert (_count(db, PaymentRequest), _count(db, RequestLink), _count(db, Message), backend.sent) == (0, 0, 0, [])


def test_every_refusal_is_given_at_once(db, state, owed, backend):
    with pytest.raises(ValidationFailed) as refused:
        payment_requests.create(state, db.session.get(Invoice, owed), _input(
            amount=40000, due=date(2020, 1, 1), message="x" * 1001, email=False), actor_id="adm")
    assert set(refused.value.errors) == {"amount", "due", "message", "channels"}


def test_the_refusals_speak_the_administrators_language(db, state, host, owed, backend):
    host.locale = "fr"
    with pytest.raises(ValidationFailed) as refused:
        payment_requests.create(state, db.session.get(Invoice, owed), _input(amount=30001), actor_id="adm")
    assert refused.value.errors == {"amount": "Au plus ce qui reste à payer : 300,00\u00a0€."}


def test_a_learner_without_an_email_address_is_asked_by_sms_only(db, state, people, owed, backend, phones):
    people["u1"].email = ""
    db.session.commit()
    with pytest.raises(ValidationFailed) as refused:
        payment_requests.create(state, db.session.get(Invoice, owed), _input(sms=True), actor_id="adm")
    assert refused.value.errors == {"channels": "This learner has no e-mail address: send the request by SMS."}
    db.session.rollback()
    _create(db, state, owed, email=False, sms=True)
    assert [(m.channel, m.recipient) for m in backend.sent] == [("sms", MOBILE)]


def test_a_learner_the_lms_no_longer_knows_is_refused(db, state, people, owed, backend):
    db.session.delete(people["u1"])
    db.session.commit()
    with pytest.raises(ValidationFailed) as refused:
        payment_requests.create(state, db.session.get(Invoice, owed), _input(), actor_id="adm")
    assert refused.value.errors == {"channels": "The LMS no longer knows this learner."}


def test_a_landline_is_refused_before_anything_is_written(db, state, host, owed, backend, phones):
    """The host's number for Sam is a landline, which cannot receive an SMS: the form says so on its field,
    and no request is kept (and no e-mail goes out) for a message that could never be sent."""
    invoice_id = open_invoice(db, host, user_id="u2", stripe_id="in_test_open_2", number="ABC-0101")
    with pytest.raises(ValidationFailed) as refused:
        payment_requests.create(state, db.session.get(Invoice, invoice_id), _input(sms=True), actor_id="adm")
    db.session.commit()
    assert refused.value.errors == {
        "channels": "The LMS has no mobile phone number for this learner: send the request by e-mail."}
    assert (_count(db, PaymentRequest), _count(db, RequestLink), _count(db, Message), backend.sent) == (0, 0, 0, [])


def test_an_unusable_email_address_is_refused_before_anything_is_written(db, state, people, owed, backend):
    people["u1"].email = "lea at example.com"
    db.session.commit()
    with pytest.raises(ValidationFailed) as refused:
        payment_requests.create(state, db.session.get(Invoice, owed), _input(), actor_id="adm")
    db.session.commit()
    assert refused.value.errors == {"channels": "This learner has no e-mail address: send the request by SMS."}
    assert (_count(db, PaymentRequest), _count(db, Message)) == (0, 0)


@pytest.mark.parametrize("changes", [{"status": "paid", "amount_remaining": 0, "amount_paid": 30000},
                                     {"status": "issuing", "stripe_invoice_id": None},
                                     {"status": "void", "amount_remaining": 0},
                                     {"amount_remaining": 0, "amount_paid": 30000}])
def test_nothing_is_asked_on_an_invoice_that_owes_nothing(db, state, owed, backend, changes):
    invoice = db.session.get(Invoice, owed)
    for name, value in changes.items():
        setattr(invoice, name, value)
    db.session.commit()
    assert not payment_requests.can_request(invoice)
    with pytest.raises(RequestRefused, match="Nothing remains to be paid on this invoice."):
        payment_requests.create(state, invoice, _input(), actor_id="adm")
    assert _count(db, PaymentRequest) == 0


def test_the_amount_asked_is_checked_against_what_remains_now(db, state, host, people, configured, backend):
    invoice_id = open_invoice(db, host, paid=25000)
    with pytest.raises(ValidationFailed) as refused:
        payment_requests.create(state, db.session.get(Invoice, invoice_id), _input(amount=9000), actor_id="adm")
    assert refused.value.errors == {"amount": "At most what remains to be paid: €50.00."}
    assert _create(db, state, invoice_id, amount=5000).amount == 5000


def test_zero_and_three_decimal_currencies_follow_stripes_rules(db, state, host, people, configured, backend):
    yen = open_invoice(db, host, gross=8000, vat=727, currency="JPY", stripe_id="in_test_jpy", number="JPY-1")
    dinar = open_invoice(db, host, gross=50000, vat=0, currency="KWD", stripe_id="in_test_kwd", number="KWD-1")
    assert _create(db, state, yen, amount=8000).amount == 8000
    with pytest.raises(ValidationFailed) as refused:
        payment_requests.create(state, db.session.get(Invoice, dinar), _input(amount=12345), actor_id="adm")
    assert refused.value.errors == {"amount": "Stripe cannot charge this amount in KWD."}


# -- sending again, cancelling ---------------------------------------------------------------------------------

def test_sending_again_makes_new_links_and_keeps_the_old_ones(db, state, owed, backend):
    request = _create(db, state, owed)
    first = _token(backend.sent[0])
    assert payment_requests.resend(state, request, actor_id="adm") == 1
    db.session.commit()
    assert payment_requests.resend(state, db.session.get(PaymentRequest, request.id), actor_id="adm") == 1
    db.session.commit()
    tokens = [_token(m) for m in backend.sent]
    assert len(set(tokens)) == 3 and tokens[0] == first
    assert all(links.request_of(db.session, token).id == request.id for token in tokens)
    keys = db.session.scalars(select(Message.idempotency_key).order_by(Message.id)).all()
    assert keys == [f"request-{request.id}-sent-email", f"request-{request.id}-resent-2-email",
                    f"request-{request.id}-resent-3-email"]
    assert len(_audit(db, AuditAction.PAYMENT_REQUEST_RESENT)) == 2


@pytest.mark.parametrize("status", ["paid", "cancelled"])
def test_only_an_open_request_is_sent_again(db, state, owed, backend, status):
    request_id, _token_ = open_request(db, owed)
    request = db.session.get(PaymentRequest, request_id)
    request.status = status
    db.session.commit()
    with pytest.raises(RequestRefused, match="Only an open payment request is sent again."):
        payment_requests.resend(state, request, actor_id="adm")
    db.session.commit()
    assert (_count(db, Message), _count(db, RequestLink), backend.sent) == (0, 1, [])


def _paid_otherwise(db, invoice_id: int, **changes) -> None:
    """The invoice paid whole otherwise (Stripe's hosted invoice page, another request): it owes nothing more."""
    invoice = db.session.get(Invoice, invoice_id)
    for name, value in ({"status": "paid", "amount_paid": invoice.gross, "amount_remaining": 0} | changes).items():
        setattr(invoice, name, value)
    db.session.commit()


@pytest.mark.parametrize("changes", [{}, {"status": "open"}])
def test_a_request_whose_invoice_was_paid_otherwise_is_not_sent_again(db, state, owed, backend, changes):
    """The request is still open, but asks nothing more: the learner is not asked to pay what they paid."""
    request_id, _token_ = open_request(db, owed)
    _paid_otherwise(db, owed, **changes)
    request = db.session.get(PaymentRequest, request_id)
    with pytest.raises(RequestRefused, match="Nothing remains to be paid: the payment request is not sent again."):
        payment_requests.resend(state, request, actor_id="adm")
    db.session.commit()
    assert (_count(db, Message), _count(db, RequestLink), backend.sent) == (0, 1, [])
    assert _audit(db, AuditAction.PAYMENT_REQUEST_RESENT) == []


def test_a_request_paid_in_full_but_still_open_is_not_sent_again(db, state, owed, backend):
    request_id, _token_ = open_request(db, owed)
    request = db.session.get(PaymentRequest, request_id)
    request.amount_paid = request.amount
    db.session.commit()
    with pytest.raises(RequestRefused, match="Nothing remains to be paid: the payment request is not sent again."):
        payment_requests.resend(state, request, actor_id="adm")
    db.session.commit()
    assert (_count(db, Message), backend.sent) == (0, [])


def test_sending_again_asks_what_remains_after_a_payment_made_otherwise(db, state, host, people, configured,
                                                                         backend):
    """The invoice owes 40 € of the 90 € asked (paid in part on Stripe's page): the message asks 40 €."""
    invoice_id = open_invoice(db, host, paid=26000)
    request_id, _token_ = open_request(db, invoice_id, amount=9000, locale="en")
    assert payment_requests.resend(state, db.session.get(PaymentRequest, request_id), actor_id="adm") == 1
    db.session.commit()
    (message,) = backend.sent
    assert "€40.00" in message.body and "€90.00" not in message.body


@pytest.mark.parametrize("status", ["processing", "paid"])
def test_a_request_whose_payment_is_under_way_is_not_sent_again(client, db, state, owed, backend, status):
    """A bank debit processing, or a payment taken and not yet credited to the invoice: the learner has paid
    unless it fails, and its page refuses a second payment. Neither the invoice page nor the service asks again
    (its reminders wait too)."""
    request_id, _token_ = open_request(db, owed)
    open_attempt(db, request_id, status=status)
    page = client.get(f"/payments/admin/invoices/{owed}", headers=as_user("adm"))
    assert f"/payments/admin/requests/{request_id}/resend" not in page.get_data(as_text=True)
    assert "The learner's payment of this request is under way: the payment request is not sent again." in text(page)
    with pytest.raises(RequestRefused, match="The learner's payment of this request is under way: the payment "
                                             "request is not sent again."):
        payment_requests.resend(state, db.session.get(PaymentRequest, request_id), actor_id="adm")
    db.session.commit()
    assert (_count(db, Message), backend.sent, _audit(db, AuditAction.PAYMENT_REQUEST_RESENT)) == (0, [], [])


def test_a_top_up_request_is_sent_again_until_its_payment_is_under_way(db, state, people, configured, backend):
    """A top-up asks for no invoice: nothing of an invoice stops it, its own payment under way does."""
    request = PaymentRequest(invoice_id=None, topup=True, user_id="u1", amount=5000, currency="EUR",
                             due_at=utcnow() + timedelta(days=7), locale="en", send_email=True, created_by="adm")
    db.session.add(request)
    db.session.commit()
    assert payment_requests.resend(state, request, actor_id="adm") == 1
    db.session.commit()
    open_attempt(db, request.id, amount=5000, status="processing")
    with pytest.raises(RequestRefused, match="The learner's payment of this request is under way"):
        payment_requests.resend(state, db.session.get(PaymentRequest, request.id), actor_id="adm")
    assert len(backend.sent) == 1


def test_the_balance_page_offers_neither_send_again_nor_cancel_for_a_top_up_being_paid(client, db, people,
                                                                                        configured):
    request = PaymentRequest(invoice_id=None, topup=True, user_id="u1", amount=5000, currency="EUR",
                             due_at=utcnow() + timedelta(days=7), locale="en", send_email=True, created_by="adm")
    db.session.add(request)
    db.session.commit()
    page = client.get("/payments/admin/balances/u1", headers=as_user("adm")).get_data(as_text=True)
    assert f"/payments/admin/requests/{request.id}/resend" in page
    assert f"/payments/admin/requests/{request.id}/cancel" in page
    open_attempt(db, request.id, amount=5000, status="processing")
    page = client.get("/payments/admin/balances/u1", headers=as_user("adm")).get_data(as_text=True)
    assert f"/payments/admin/requests/{request.id}/resend" not in page
    assert f"/payments/admin/requests/{request.id}/cancel" not in page
    assert "The learner&#39;s payment of this request is under way" in page


def test_a_request_whose_invoice_cannot_be_paid_online_any_more_is_not_sent_again(db, state, owed, backend):
    """The invoice was cancelled with what it owed still on its row: its request's page refuses a payment."""
    request_id, _token_ = open_request(db, owed)
    db.session.get(Invoice, owed).status = "cancelled"
    db.session.commit()
    with pytest.raises(RequestRefused, match="Invoice ABC-0100 cannot be paid online. The payment request is not "
                                             "sent again."):
        payment_requests.resend(state, db.session.get(PaymentRequest, request_id), actor_id="adm")
    db.session.commit()
    assert (_count(db, Message), backend.sent) == (0, [])


def test_what_no_online_payment_can_take_is_not_asked_again(client, db, state, host, people, configured, backend):
    """30 cents left on the invoice (paid otherwise): Stripe charges no less than 50 cents in euros, so the
    request's page refuses to take it; asking the learner again for it would send them to that refusal."""
    invoice_id = open_invoice(db, host, paid=29970)
    request_id, _token_ = open_request(db, invoice_id)
    refusal = ("What is left to pay, €0.30, is less than the least an online payment can be (€0.50): the payment "
               "request is not sent again.")
    page = client.get(f"/payments/admin/invoices/{invoice_id}", headers=as_user("adm"))
    assert f"/payments/admin/requests/{request_id}/resend" not in page.get_data(as_text=True)
    assert refusal in text(page)
    with pytest.raises(RequestRefused, match=re.escape(refusal)):
        payment_requests.resend(state, db.session.get(PaymentRequest, request_id), actor_id="adm")
    db.session.commit()
    assert (_count(db, Message), backend.sent) == (0, [])


def test_no_message_asks_for_anything_when_nothing_remains(db, state, owed, backend):
    request_id, _token_ = open_request(db, owed)
    _paid_otherwise(db, owed)
    request = db.session.get(PaymentRequest, request_id)
    assert payment_requests.notify(state, request, purpose="reminder+1", reminder=True) == 0
    db.session.commit()
    assert (_count(db, Message), _count(db, RequestLink), backend.sent) == (0, 1, [])


def test_the_invoice_page_offers_to_send_again_only_a_request_that_asks_something(client, db, owed, backend):
    request_id, _token_ = open_request(db, owed)
    page = f"/payments/admin/invoices/{owed}"
    resend = f"/payments/admin/requests/{request_id}/resend"
    assert resend in client.get(page, headers=as_user("adm")).get_data(as_text=True)
    _paid_otherwise(db, owed)
    shown = client.get(page, headers=as_user("adm"))
    assert resend not in shown.get_data(as_text=True)
    assert f"/payments/admin/requests/{request_id}/cancel" in shown.get_data(as_text=True)
    assert "Nothing remains to be paid on this invoice." in text(shown)
    # Sent from a page opened before the payment: refused, and said so.
    answer = client.post(resend, data={"csrf_token": csrf(client, page), "next_invoice": "1"},
                         headers=as_user("adm"))
    assert answer.status_code == 302 and answer.headers["Location"].endswith(page)
    assert "Nothing remains to be paid: the payment request is not sent again." in \
        text(client.get(page, headers=as_user("adm")))
    assert backend.sent == [] and _count(db, Message) == 0


def test_cancelling_closes_the_request_and_expires_its_checkout_after_the_commit(db, state, owed, stripe_http):
    request_id, token = open_request(db, owed)
    attempt = open_attempt(db, request_id, session_id="cs_test_under_way")
    expire = stub_expire(stripe_http, "cs_test_under_way")
    payment_requests.cancel(state, db.session.get(PaymentRequest, request_id), actor_id="adm")
    assert expire.call_count == 0  # no call to Stripe inside the transaction
    db.session.commit()
    assert expire.call_count == 1
    db.session.expire_all()
    request = db.session.get(PaymentRequest, request_id)
    assert request.status == "cancelled" and request.cancelled_at is not None
    assert db.session.get(PaymentAttempt, attempt.id).status == "expired"
    assert links.request_of(db.session, token).id == request_id  # its link still opens: the page says so
    assert len(_audit(db, AuditAction.PAYMENT_REQUEST_CANCELLED)) == 1
    with pytest.raises(RequestRefused, match="Only an open payment request can be cancelled."):
        payment_requests.cancel(state, request, actor_id="adm")


@pytest.mark.parametrize("status", ["processing", "paid"])
def test_a_request_whose_payment_is_under_way_is_not_cancelled(client, db, state, owed, stripe_http, status):
    """A bank debit processing, or a payment taken and being credited: that money comes to the invoice all the
    same, so the request is not cancelled (it would read cancelled though paid), and its page offers no Cancel."""
    request_id, _token = open_request(db, owed)
    open_attempt(db, request_id, session_id="cs_test_under_way", status=status)
    page = client.get(f"/payments/admin/invoices/{owed}", headers=as_user("adm")).get_data(as_text=True)
    assert f"/payments/admin/requests/{request_id}/cancel" not in page and "Payment processing" in page
    answer = client.post(f"/payments/admin/requests/{request_id}/cancel", headers=as_user("adm"),
                         data={"csrf_token": csrf(client, "/payments/admin/invoices/new")})
    assert answer.status_code == 302
    shown = client.get(answer.headers["Location"], headers=as_user("adm"))
    assert "it cannot be cancelled now" in text(shown)
    db.session.expire_all()
    assert db.session.get(PaymentRequest, request_id).status == "open"
    assert _audit(db, AuditAction.PAYMENT_REQUEST_CANCELLED) == [] and len(stripe_http.calls) == 0


def test_a_checkout_stripe_already_closed_does_not_fail_the_cancellation(db, state, owed, stripe_http):
    request_id, _token_ = open_request(db, owed)
    open_attempt(db, request_id, session_id="cs_test_done")
    stripe_http.add(responses.POST, f"{STRIPE}/v1/checkout/sessions/cs_test_done/expire", status=400, json={
        "error": {"type": "invalid_request_error", "message": "Only Checkout Sessions with a status of open can be "
                                                              "expired."}})
    payment_requests.cancel(state, db.session.get(PaymentRequest, request_id), actor_id="adm")
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(PaymentRequest, request_id).status == "cancelled"


def test_a_failed_delivery_is_told(db, state, owed, monkeypatch):
    class Refusing:
        def send(self, outgoing):
            raise DeliveryFailed("550 No such mailbox")

    monkeypatch.setattr(outbox, "_backend", lambda channel: Refusing())
    request = _create(db, state, owed)
    assert payment_requests.delivery_failed(db.session, request)
    assert db.session.get(PaymentRequest, request.id).status == "open"  # the request stands


def test_no_sms_is_written_when_the_caller_says_so(db, state, owed, backend, phones):
    request = _create(db, state, owed, sms=True)
    backend.sent.clear()
    assert payment_requests.notify(state, request, purpose="reminder+1", reminder=True, sms=False) == 1
    db.session.commit()
    assert [m.channel for m in backend.sent] == ["email"]


# -- the limits of a payment -----------------------------------------------------------------------------------

def _request(db, owed, **changes) -> PaymentRequest:
    request_id, _token_ = open_request(db, owed, **changes)
    return db.session.get(PaymentRequest, request_id)


def test_without_partial_payments_the_learner_pays_exactly_what_is_asked(db, owed):
    request = _request(db, owed)
    assert paying.limits(request) == (9000, 9000)
    paying.check_payable(request, 9000)
    with pytest.raises(paying.NotPayable, match=r"at least €90.00"):
        paying.check_payable(request, 5000)
    with pytest.raises(paying.NotPayable, match=r"at most €90.00"):
        paying.check_payable(request, 9001)


def test_partial_payments_go_from_the_smallest_part_to_what_remains(db, owed):
    request = _request(db, owed, partial_minimum=2000)
    assert paying.limits(request) == (2000, 9000)
    request.amount_paid = 5000
    assert paying.limits(request) == (2000, 4000)
    request.amount_paid = 8000
    assert paying.limits(request) == (1000, 1000)  # less than the smallest part remains: that, and only that
    request.amount_paid = 0
    request.partial_minimum = 0
    assert paying.limits(request) == (50, 9000)  # never below Stripe's minimum


def test_what_remains_is_never_more_than_the_invoice_owes(db, host, people, configured):
    invoice_id = open_invoice(db, host, paid=25000)
    request = _request(db, invoice_id)
    assert paying.remaining(request) == 5000 and paying.limits(request) == (5000, 5000)


@pytest.mark.parametrize("changes, message", [
    ({"status": "cancelled"}, "This payment request was cancelled: there is nothing to pay."),
    ({"status": "paid", "amount_paid": 9000}, "This payment request is paid: there is nothing left to pay."),
    ({"amount_paid": 9000}, "This payment request is paid: there is nothing left to pay."),
])
def test_a_closed_request_is_not_payable(db, owed, changes, message):
    request = _request(db, owed)
    for name, value in changes.items():
        setattr(request, name, value)
    with pytest.raises(paying.NotPayable, match=re.escape(message)):
        paying.check_payable(request, 9000)


def test_a_void_invoices_request_is_not_payable(db, owed):
    request = _request(db, owed)
    request.invoice.status = "void"
    with pytest.raises(paying.NotPayable, match="This invoice cannot be paid any more."):
        paying.check_payable(request, 9000)


def test_overdue_is_an_open_request_past_its_due_date(db, owed):
    assert paying.overdue(_request(db, owed, due_in_days=-1))
    assert not paying.overdue(_request(db, owed, due_in_days=1))
    late_but_paid = _request(db, owed, due_in_days=-1)
    late_but_paid.status = "paid"
    assert not paying.overdue(late_but_paid)


# -- a Pay click: reserve, then open the session ------------------------------------------------------------------

def _session(session_id="cs_test_pay_1"):
    return stripe_object("checkout_session", id=session_id, url=f"https://checkout.stripe.com/c/pay/{session_id}")


def _click(db, state, request: PaymentRequest, amount: int) -> paying.PayPlan:
    plan = paying.reserve(state, request, amount, return_url=RETURN)
    db.session.commit()
    return plan


def test_a_second_click_reuses_the_open_session(db, state, owed, stripe_http):
    create = stripe_http.add(responses.POST, f"{STRIPE}/v1/checkout/sessions", json=_session())
    request = _request(db, owed)
    plan = _click(db, state, request, 9000)
    assert plan.url is None
    url = paying.open_session(state, plan)
    db.session.commit()
    again = _click(db, state, db.session.get(PaymentRequest, request.id), 9000)
    assert (again.attempt_id, again.url) == (plan.attempt_id, url) and create.call_count == 1
    assert _count(db, PaymentAttempt) == 1


def test_the_session_asks_for_the_amount_and_names_our_attempt(db, state, owed, stripe_http):
    stripe_http.add(responses.POST, f"{STRIPE}/v1/checkout/sessions", json=_session())
    request = _request(db, owed)
    plan = _click(db, state, request, 9000)
    paying.open_session(state, plan)
    db.session.commit()
    (call,) = calls(stripe_http, "POST", "/v1/checkout/sessions")
    body = sent(call)
    attempt = str(plan.attempt_id)
    assert idempotency_key(call) == f"lms-request-{request.id}-{attempt}"
    assert body["line_items[0][price_data][unit_amount]"] == "9000"
    assert body["line_items[0][price_data][currency]"] == "eur"
    assert (body["metadata[lms_attempt_id]"], body["client_reference_id"]) == (attempt, f"lms-attempt-{attempt}")
    assert body["payment_intent_data[metadata][lms_attempt_id]"] == attempt
    assert (body["customer"], body["mode"]) == ("cus_test_1", "payment")
    assert body["success_url"] == RETURN + "?session_id={CHECKOUT_SESSION_ID}" and body["cancel_url"] == RETURN
    stored = db.session.get(PaymentAttempt, plan.attempt_id)
    assert (stored.status, stored.stripe_checkout_session_id) == ("open", "cs_test_pay_1")


def test_another_amount_expires_the_open_session_and_opens_a_new_one(db, state, owed, stripe_http):
    stripe_http.add(responses.POST, f"{STRIPE}/v1/checkout/sessions", json=_session("cs_test_pay_1"))
    stripe_http.add(responses.POST, f"{STRIPE}/v1/checkout/sessions", json=_session("cs_test_pay_2"))
    expire = stub_expire(stripe_http, "cs_test_pay_1")
    request = _request(db, owed, partial_minimum=2000)
    first = _click(db, state, request, 9000)
    paying.open_session(state, first)
    db.session.commit()
    second = _click(db, state, db.session.get(PaymentRequest, request.id), 5000)
    assert second.attempt_id != first.attempt_id and second.url is None and expire.call_count == 1
    assert db.session.get(PaymentAttempt, first.attempt_id).status == "expired"


def test_a_session_about_to_expire_is_not_reused(db, state, owed, stripe_http):
    stripe_http.add(responses.POST, f"{STRIPE}/v1/checkout/sessions/cs_test_attempt_1/expire",
                    json=_session("cs_test_attempt_1"))
    request_id, _token_ = open_request(db, owed)
    attempt = open_attempt(db, request_id)
    attempt.expires_at = utcnow() + timedelta(minutes=2)
    db.session.commit()
    plan = _click(db, state, db.session.get(PaymentRequest, request_id), 9000)
    assert plan.attempt_id != attempt.id and plan.url is None


def test_a_payment_processing_refuses_another_click(db, state, owed):
    request_id, _token_ = open_request(db, owed)
    open_attempt(db, request_id, status="processing")
    with pytest.raises(paying.NotPayable, match="Your payment is processing"):
        paying.reserve(state, db.session.get(PaymentRequest, request_id), 9000, return_url=RETURN)


def test_a_session_stripe_refused_fails_its_attempt_and_the_next_click_starts_afresh(db, state, owed, stripe_http):
    stripe_http.add(responses.POST, f"{STRIPE}/v1/checkout/sessions", status=400, json={
        "error": {"type": "invalid_request_error", "message": "No such customer: 'cus_test_1'"}})
    stripe_http.add(responses.POST, f"{STRIPE}/v1/checkout/sessions", json=_session())
    request = _request(db, owed)
    plan = _click(db, state, request, 9000)
    with pytest.raises(GatewayError):
        paying.open_session(state, plan)
    db.session.commit()
    failed = db.session.get(PaymentAttempt, plan.attempt_id)
    assert failed.status == AttemptStatus.FAILED and "No such customer" in failed.failure_reason
    again = _click(db, state, db.session.get(PaymentRequest, request.id), 9000)
    assert again.attempt_id != plan.attempt_id
    assert paying.open_session(state, again) == "https://checkout.stripe.com/c/pay/cs_test_pay_1"


def test_the_return_address_keeps_its_own_query(db, state, owed, stripe_http):
    stripe_http.add(responses.POST, f"{STRIPE}/v1/checkout/sessions", json=_session())
    request = _request(db, owed)
    plan = paying.reserve(state, request, 9000, return_url="https://lms.test/payments/my-payments?tab=owed")
    assert plan.params["success_url"] == \
        "https://lms.test/payments/my-payments?tab=owed&session_id={CHECKOUT_SESSION_ID}"


def _plugin_statements(db, fetch) -> int:
    """The SQL statements ``fetch()`` runs on the plugin's tables (the host's own are its business)."""
    with sql_statements(db) as statements:
        fetch()
    return sum("lms_stripe_" in statement for statement in statements)


def test_the_invoice_page_reads_whether_a_request_is_being_paid_once(client, db, host, people, configured):
    """The invoice's page reads, for each open request, whether its payment is under way with the list, and the
    other requests' payments of their invoices once for all of them: why each is not sent again is then worked
    out from those reads, whatever the number of requests."""
    invoice_id = open_invoice(db, host)
    open_request(db, invoice_id, amount=3000)
    page = f"/payments/admin/invoices/{invoice_id}"

    def fetch():
        assert client.get(page, headers=as_user("adm")).status_code == 200

    fetch()
    one = _plugin_statements(db, fetch)
    for _ in range(3):
        open_request(db, invoice_id, amount=3000)
    four = _plugin_statements(db, fetch)
    assert four == one
    assert text(client.get(page, headers=as_user("adm"))).count("Send again") == 4
