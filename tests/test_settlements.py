"""Settling debts (`billing.settlements`, `billing.paying`, the My payments choice, the administrators' page):
several open invoices of one learner in one Checkout payment; what cannot be settled is refused with its
reason and nothing written or charged; a second click is the same payment; each invoice's part is credited
once, from Stripe's events of its Payment Record, whatever their order."""
from __future__ import annotations

import re
import threading
from datetime import date, timedelta

import pytest
import responses
from sqlalchemy import func, select
from sqlalchemy import update as sa_update
from sqlalchemy.exc import IntegrityError

from lms_stripe_plugin.billing import paying, reminders, settlements
from lms_stripe_plugin.core.enums import AuditAction
from lms_stripe_plugin.core.models import (AuditEntry, Invoice, InvoicePayment, Message, PaymentAttempt,
                                           PaymentRequest, Reminder, RequestPart, TopUp, utcnow)
from lms_stripe_plugin.testing import post_webhook

from .conftest import KEYS, ON_POSTGRES, STRIPE, as_user, stripe_object, without_labels
from .refund_support import sent, text as page_text
from .request_stubs import CREATED, backend, invoice_payment  # noqa: F401 - the fixture
from .request_support import open_invoice, open_request
from .stripe_stubs import event

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
MY_PAYMENTS = "/payments/my-payments"


def _invoice(db, host, n: int, **changes) -> int:
    """The learner's n-th open invoice: 300 € + n €, its own Stripe id and number."""
    values = {"gross": 30000 + 100 * n, "vat": 5000, "stripe_id": f"in_test_open_{n}", "number": f"ABC-010{n}"}
    values.update(changes)
    return open_invoice(db, host, **values)


@pytest.fixture
def invoices(db, host, people, configured):
    return [_invoice(db, host, n) for n in (1, 2, 3)]


def _token(client, user="u1") -> str:
    return CSRF.search(client.get(MY_PAYMENTS, headers=as_user(user)).get_data(as_text=True)).group(1)


def _choose(client, ids, user="u1"):
    return client.post(f"{MY_PAYMENTS}/settle", headers=as_user(user),
                       data={"csrf_token": _token(client, user), "invoice": [str(i) for i in ids]})


def _written(db) -> tuple[int, int, int]:
    db.session.expire_all()
    return tuple(db.session.scalar(select(func.count()).select_from(model))
                 for model in (PaymentRequest, RequestPart, PaymentAttempt))


def _stub_create(mock, session_id="cs_test_settle_1"):
    return mock.add(responses.POST, f"{STRIPE}/v1/checkout/sessions", json=stripe_object(
        "checkout_session", id=session_id, url=f"https://checkout.stripe.com/c/pay/{session_id}"))


# -- My payments ----------------------------------------------------------------------------------------------

def test_my_payments_offers_a_choice_from_two_invoices(client, db, host, people, configured):
    _invoice(db, host, 1)
    page = client.get(MY_PAYMENTS, headers=as_user("u1")).get_data(as_text=True)
    assert 'id="settle"' not in page and 'name="invoice"' not in page
    _invoice(db, host, 2)
    page = client.get(MY_PAYMENTS, headers=as_user("u1")).get_data(as_text=True)
    boxes = re.findall(r'<input type="checkbox" name="invoice" value="(\d+)" form="settle">', page)
    assert len(boxes) == 2 and 'id="pay-chosen"' in page
    # Each box is named for a screen reader, and its cell for a phone's card.
    assert "Choose<span class=\"visually-hidden\"> invoice ABC-0101</span>" in page
    assert page.count('data-label="Pay together"') == 2
    assert 'id="settle"' in without_labels(page)


def test_two_invoices_open_one_checkout_of_one_line_each(client, db, invoices, stripe_http):
    create = _stub_create(stripe_http)
    response = _choose(client, invoices[:2])
    assert response.status_code == 303 and response.headers["Location"].endswith("cs_test_settle_1")
    body = sent(create.calls[0])
    assert body["customer"] == "cus_test_1" and "invoice_creation[enabled]" not in body
    assert [(body[f"line_items[{i}][price_data][unit_amount]"],
             body[f"line_items[{i}][price_data][product_data][name]"]) for i in (0, 1)] == [
        ("30100", "Payment of invoice ABC-0101"), ("30200", "Payment of invoice ABC-0102")]
    assert body["metadata[lms_invoice_ids]"] == ",".join(str(i) for i in invoices[:2])
    request = db.session.scalar(select(PaymentRequest))
    assert (request.amount, request.currency, request.send_email, request.send_sms) == (60300, "EUR", False, False)
    assert [(p.invoice_id, p.amount) for p in request.parts] == [(invoices[0], 30100), (invoices[1], 30200)]
    attempt = db.session.scalar(select(PaymentAttempt))
    assert (attempt.amount, attempt.request_id) == (60300, request.id)
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == AuditAction.PAYMENT_REQUESTED)).all()
    assert len(entries) == 2  # one per invoice, for each invoice's history


def test_a_second_click_is_the_same_checkout(client, db, invoices, stripe_http):
    create = _stub_create(stripe_http)
    first = _choose(client, invoices[:2])
    second = _choose(client, list(reversed(invoices[:2])))
    assert first.headers["Location"] == second.headers["Location"]
    assert len(create.calls) == 1 and _written(db) == (1, 2, 1)


def test_the_database_keeps_one_open_request_per_choice(db, invoices):
    """Two clicks at once, past the application's checks: the second insert is refused by the database."""
    for _ in range(2):
        db.session.add(PaymentRequest(invoice_id=invoices[0], user_id="u1", amount=100, currency="EUR",
                                      due_at=utcnow(), selection_key="k" * 64))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_a_new_choice_cancels_the_learners_earlier_one_sharing_an_invoice(client, db, invoices, stripe_http):
    _stub_create(stripe_http, "cs_test_settle_1")
    _stub_create(stripe_http, "cs_test_settle_2")
    expire = stripe_http.add(responses.POST, f"{STRIPE}/v1/checkout/sessions/cs_test_settle_1/expire",
                             json=stripe_object("checkout_session", id="cs_test_settle_1", status="expired"))
    _choose(client, invoices[:2])
    response = _choose(client, invoices[1:])
    assert response.headers["Location"].endswith("cs_test_settle_2")
    db.session.expire_all()
    assert [r.status for r in db.session.scalars(select(PaymentRequest).order_by(PaymentRequest.id))] == [
        "cancelled", "open"]
    assert len(expire.calls) == 1  # the earlier Checkout can no longer be paid


@pytest.mark.parametrize("case, status, message", [
    ("paid", 409, "Invoice ABC-0102 is already paid."),
    ("void", 409, "Invoice ABC-0102 is void: it cannot be paid."),
    ("issuing", 409, "Invoice ABC-0102 cannot be paid online."),
    ("currency", 409, "different currencies (EUR, USD)"),
    ("customer", 409, "different Stripe customers"),
    ("another learner's", 404, "is not yours"),
    ("unknown", 404, "is not yours"),
    ("garbled", 400, "could not be read"),
    ("none", 400, "Choose the invoices to pay together."),
    ("too many", 409, "Choose at most 20 invoices"),
])
def test_a_choice_that_cannot_be_settled_is_refused_and_nothing_is_written(client, db, host, invoices, stripe_http,
                                                                          case, status, message):
    chosen: list = list(invoices)
    changes = {"paid": {"status": "paid", "amount_paid": 30200, "amount_remaining": 0},
               "void": {"status": "void", "amount_remaining": 0}, "issuing": {"status": "issuing"},
               "currency": {"currency": "USD"}, "customer": {"stripe_customer_id": "cus_other"},
               "another learner's": {"user_id": "u2"}}.get(case)
    if changes:
        row = db.session.get(Invoice, invoices[1])
        for name, value in changes.items():
            setattr(row, name, value)
        db.session.commit()
    elif case == "unknown":
        chosen.append(999999)
    elif case == "garbled":
        chosen.append("12abc")
    elif case == "none":
        chosen = []
    elif case == "too many":
        chosen += [_invoice(db, host, n, number=f"ABC-02{n:02d}") for n in range(4, 23)]
    response = _choose(client, chosen)
    text = response.get_data(as_text=True)
    assert response.status_code == status and message in text
    assert 'id="error-summary"' in text and "nothing was charged" in text
    assert _written(db) == (0, 0, 0) and not stripe_http.calls


def test_a_choice_is_refused_when_the_checkout_it_expires_is_paid_meanwhile(client, db, invoices, stripe_http,
                                                                            monkeypatch):
    """A request of invoice ABC-0101 alone has its Checkout open; the learner chooses to settle ABC-0101 and
    ABC-0102 together. Stripe's event for the first Checkout's payment is handled by another worker after the
    click read it open, before the click expires it: the choice is refused and nothing is charged twice."""
    from .request_stubs import open_attempt
    from .request_support import open_request

    request_id, _token_ = open_request(db, invoices[0], locale="en")
    first_id = open_attempt(db, request_id, amount=9000).id
    real = paying.under_way

    def paid_meanwhile(session, invoice_ids, **kwargs):
        found = real(session, invoice_ids, **kwargs)
        if kwargs.get("besides") is None:
            return found  # the choice's own check, before the request is written
        session.execute(sa_update(PaymentAttempt).where(PaymentAttempt.id == first_id)
                        .values(status="paid", stripe_payment_intent_id="pi_first")
                        .execution_options(synchronize_session=False))
        return found

    monkeypatch.setattr(paying, "under_way", paid_meanwhile)
    response = _choose(client, invoices[:2])
    assert response.status_code == 409 and "A payment of invoice ABC-0101 is under way" in response.get_data(
        as_text=True)
    assert not stripe_http.calls
    db.session.expire_all()
    assert [(a.request_id, a.status) for a in db.session.scalars(select(PaymentAttempt))] == [(request_id, "paid")]


def test_in_french(client, db, host, invoices, stripe_http):
    host.locale = "fr"
    db.session.get(Invoice, invoices[1]).status = "void"
    db.session.commit()
    text = _choose(client, invoices).get_data(as_text=True)
    assert "La facture ABC-0102 est annulée : elle ne peut pas être payée." in text
    assert "Payer les factures choisies" in text and "Ces factures ne peuvent pas être payées ensemble" in text


# -- the pay page of a settlement ---------------------------------------------------------------------------------

@pytest.fixture
def settlement(db, invoices):
    """The school's request for the three invoices, with a link, in English: (request id, its page)."""
    from lms_stripe_plugin.billing import links
    rows = [db.session.get(Invoice, i) for i in invoices]
    request = settlements._request(rows, user_id="u1", actor_id="adm", due_at=utcnow() + timedelta(days=9),
                                   locale="en", email=True, sms=False, message=None)
    db.session.add(request)
    db.session.flush()
    token = links.new(db.session, request)
    db.session.commit()
    return request.id, f"/payments/pay/{token}"


def test_the_page_lists_each_invoice_and_pays_the_total(client, db, settlement, stripe_http):
    page = client.get(settlement[1]).get_data(as_text=True)
    assert "Invoices to pay in one payment" in page and "Pay €906.00" in page
    for number in ("ABC-0101", "ABC-0102", "ABC-0103"):
        assert number in page
    create = _stub_create(stripe_http)
    token = CSRF.search(page).group(1)
    response = client.post(settlement[1], data={"csrf_token": token, "amount": "1.00"})  # no amount is read
    assert response.status_code == 303
    assert sent(create.calls[0])["line_items[2][price_data][unit_amount]"] == "30300"
    assert db.session.scalar(select(PaymentAttempt)).amount == 90600


def test_an_invoice_paid_otherwise_meanwhile_stops_the_whole(client, db, settlement, invoices, stripe_http):
    row = db.session.get(Invoice, invoices[2])
    row.amount_paid, row.amount_remaining = 10000, 20300  # the learner paid part of it on Stripe's page
    db.session.commit()
    page = client.get(settlement[1]).get_data(as_text=True)
    assert "Invoice ABC-0103 now owes €203.00, less than the €303.00 asked" in page
    assert 'id="pay"' not in page
    token = CSRF.search(client.get("/payments/my-payments", headers=as_user("u1")).get_data(as_text=True)).group(1)
    refused = client.post(settlement[1], data={"csrf_token": token})
    assert refused.status_code == 400 and "nothing was charged" in refused.get_data(as_text=True)
    assert not stripe_http.calls and _written(db)[2] == 0
    # Its reminders stop too: it cannot be paid as asked.
    reminder = Reminder(request_id=settlement[0], step=1)
    db.session.add(reminder)
    db.session.flush()
    assert reminders.send(client.application.extensions["lms_stripe"], reminder) is False


def _resend_offered(client, settlement, invoice_id) -> tuple[bool, str]:
    """Whether an invoice's page offers to send the settlement again, and the page's text."""
    page = client.get(f"/payments/admin/invoices/{invoice_id}", headers=as_user("adm"))
    return f"/payments/admin/requests/{settlement[0]}/resend" in page.get_data(as_text=True), page_text(page)


def _resend(client, settlement, invoice_id) -> str:
    """Send the settlement again from an invoice's page (opened before it was blocked): what the page then says."""
    page = f"/payments/admin/invoices/{invoice_id}"
    token = CSRF.search(client.get(page, headers=as_user("adm")).get_data(as_text=True)).group(1)
    answer = client.post(f"/payments/admin/requests/{settlement[0]}/resend", headers=as_user("adm"),
                         data={"csrf_token": token, "next_invoice": "1"})
    assert answer.status_code == 302 and answer.headers["Location"].endswith(page)
    return page_text(client.get(page, headers=as_user("adm")))


@pytest.mark.parametrize("changes, why", [
    ({"amount_paid": 10000, "amount_remaining": 20300},
     "Invoice ABC-0103 now owes €203.00, less than the €303.00 asked: part of it was paid meanwhile."),
    ({"status": "void", "amount_remaining": 0}, "Invoice ABC-0103 is void: it cannot be paid."),
    ({"status": "paid", "amount_paid": 30300, "amount_remaining": 0}, "Invoice ABC-0103 is already paid."),
])
def test_a_settlement_that_cannot_be_paid_as_asked_is_not_sent_again(client, db, settlement, invoices, backend,
                                                                       changes, why):
    """One of its invoices paid in part, voided or paid otherwise: its page refuses the payment, so the school's
    invoice pages do not offer to send it again, and say why; sending it all the same is refused."""
    assert _resend_offered(client, settlement, invoices[0])[0]
    row = db.session.get(Invoice, invoices[2])
    for name, value in changes.items():
        setattr(row, name, value)
    db.session.commit()
    refusal = why + " The invoices cannot be paid together as asked: the payment request is not sent again."
    for invoice_id in invoices:
        offered, shown = _resend_offered(client, settlement, invoice_id)
        assert not offered and refusal in shown
    assert "The payment request is sent again." not in _resend(client, settlement, invoices[0])
    assert backend.sent == [] and db.session.scalar(select(func.count()).select_from(Message)) == 0


@pytest.mark.parametrize("status", ["processing", "paid"])
def test_a_settlement_is_not_sent_again_while_another_payment_of_its_invoice_is_under_way(
        client, db, host, settlement, invoices, backend, status):
    """The learner is paying invoice ABC-0102 alone (a bank debit processing, or a payment being credited): a
    click on the settlement is refused meanwhile, so it is not asked again; once that payment fails, it is."""
    request_id, _token_ = open_request(db, invoices[1], amount=30200)
    attempt = PaymentAttempt(request_id=request_id, amount=30200, currency="EUR", status=status,
                             stripe_checkout_session_id="cs_test_alone_1")
    db.session.add(attempt)
    db.session.commit()
    refusal = "Another payment of invoice ABC-0102 is under way: the payment request is not sent again."
    offered, shown = _resend_offered(client, settlement, invoices[0])
    assert not offered and refusal in shown
    assert refusal in _resend(client, settlement, invoices[0])
    assert backend.sent == []
    attempt.status = "failed"
    db.session.commit()
    assert _resend_offered(client, settlement, invoices[0])[0]
    assert "The payment request is sent again." in _resend(client, settlement, invoices[0])
    assert [mail.recipient for mail in backend.sent] == ["lea@example.com"]


def test_a_request_of_one_invoice_waits_for_a_settlements_payment_under_way(client, db, settlement, invoices,
                                                                            backend):
    """The settlement's bank debit is processing: the school's request of one of its invoices is not asked
    again meanwhile (its click would be refused)."""
    request_id, _token_ = open_request(db, invoices[1], amount=30200)
    db.session.add(PaymentAttempt(request_id=settlement[0], amount=90600, currency="EUR", status="processing",
                                  stripe_checkout_session_id="cs_test_settle_debit"))
    db.session.commit()
    page = client.get(f"/payments/admin/invoices/{invoices[1]}", headers=as_user("adm"))
    assert f"/payments/admin/requests/{request_id}/resend" not in page.get_data(as_text=True)
    assert "Another payment of invoice ABC-0102 is under way: the payment request is not sent again." in \
        page_text(page)


def test_my_payments_lists_an_invoice_besides_the_schools_settlement(client, db, host, invoices):
    rows = [db.session.get(Invoice, i) for i in invoices[:2]]
    db.session.add(settlements._request(rows, user_id="u1", actor_id="adm", due_at=utcnow(), locale="en",
                                        email=True, sms=False, message=None))
    db.session.commit()
    page = client.get(MY_PAYMENTS, headers=as_user("u1")).get_data(as_text=True)
    assert "Invoices ABC-0101, ABC-0102" in page and f"/my-payments/invoices/{invoices[2]}/pay" in page
    assert f"/my-payments/invoices/{invoices[0]}/pay" not in page  # asked for already, with the other


def test_my_payments_shows_the_schools_settlement_as_one_row(client, db, settlement):
    page = client.get(MY_PAYMENTS, headers=as_user("u1")).get_data(as_text=True)
    assert "Invoices ABC-0101, ABC-0102, ABC-0103" in page and "€906.00" in page
    assert 'name="invoice"' not in page  # its invoices are asked for already, together


# -- Stripe's events of the parts -------------------------------------------------------------------------------

@pytest.fixture
def paid(db, settlement):
    """The settlement paid by one Checkout payment; its first two parts reported as records."""
    request = db.session.get(PaymentRequest, settlement[0])
    attempt = PaymentAttempt(request_id=request.id, amount=request.amount, currency="EUR", status="paid",
                             stripe_checkout_session_id="cs_test_settle_1", stripe_payment_intent_id="pi_settle_1",
                             paid_at=utcnow())
    db.session.add(attempt)
    request.parts[0].stripe_payment_record_id = "pr_part_1"
    request.parts[1].stripe_payment_record_id = "pr_part_2"
    db.session.commit()
    return request.id, attempt.id


def _record_payment(payment_id: str, record: str, amount: int, invoice: str) -> dict:
    payment = invoice_payment(payment_id, amount=amount, invoice=invoice)
    payment["payment"] = {"type": "payment_record", "payment_record": record}
    return payment


def _send(client, obj: dict, event_id: str) -> None:
    body = event("invoice_payment.paid", obj, event_id)
    body["created"] = CREATED
    response = post_webhook(client, body, KEYS["webhook_secrets"][0])
    assert response.status_code == 200, response.get_json()


def _credit(db, request_id):
    db.session.expire_all()
    request = db.session.get(PaymentRequest, request_id)
    return (request.status, request.amount_paid, [p.paid_at is not None for p in request.parts],
            db.session.scalar(select(func.count()).where(AuditEntry.action == AuditAction.PAYMENT_RECEIVED)))


def test_each_parts_record_credits_its_invoice_once(client, db, paid, stripe_http):
    request_id, attempt_id = paid
    first = _record_payment("inpay_part_1", "pr_part_1", 30100, "in_test_open_1")
    _send(client, first, "evt_1")
    _send(client, first, "evt_1b")  # the same payment again, in another event
    assert _credit(db, request_id) == ("open", 30100, [True, False, False], 1)
    row = db.session.scalar(select(InvoicePayment))
    assert (row.attempt_id, row.stripe_payment_intent_id, row.amount) == (attempt_id, "pi_settle_1", 30100)
    _send(client, _record_payment("inpay_part_2", "pr_part_2", 30200, "in_test_open_2"), "evt_2")
    assert _credit(db, request_id) == ("open", 60300, [True, True, False], 2)
    assert not stripe_http.calls  # the handlers read nothing from Stripe


def test_a_records_event_before_the_record_is_known_is_credited_when_it_is(client, app, db, paid, stripe_http):
    request_id, attempt_id = paid
    early = _record_payment("inpay_part_3", "pr_part_3", 30300, "in_test_open_3")
    _send(client, early, "evt_3")  # the part's record id is not written here yet
    assert _credit(db, request_id)[1:] == (0, [False, False, False], 0)
    assert db.session.scalar(select(InvoicePayment)).attempt_id is None
    part = db.session.get(PaymentRequest, request_id).parts[2]
    part.stripe_payment_record_id = "pr_part_3"
    db.session.commit()
    state = app.extensions["lms_stripe"]
    for _ in range(2):  # the attaching's answer, then the same payment again
        paying.apply_invoice_payment(state, early)
        db.session.commit()
    assert _credit(db, request_id) == ("open", 30300, [False, False, True], 1)


# -- the administrators' page ---------------------------------------------------------------------------------

NEW = "/payments/admin/requests/new"


def _post(client, **fields):
    token = CSRF.search(client.get(f"{NEW}?learner=u1", headers=as_user("adm")).get_data(as_text=True)).group(1)
    return client.post(NEW, headers=as_user("adm"), data={"csrf_token": token, "learner": "u1", **fields})


def test_the_administrators_page_lists_the_learners_open_invoices(client, db, invoices):
    page = client.get(f"{NEW}?learner=u1", headers=as_user("adm")).get_data(as_text=True)
    assert len(re.findall(r'name="invoice" value="\d+" checked', page)) == 3
    assert 'id="send-request"' in page
    unknown = client.get(f"{NEW}?learner=nobody", headers=as_user("adm"))
    assert unknown.status_code == 400 and "Enter the id of a learner" in unknown.get_data(as_text=True)
    asking = client.get(NEW, headers=as_user("adm")).get_data(as_text=True)
    assert 'id="choose-learner"' in asking


def test_the_administrators_errors_are_shown_at_once_and_nothing_is_sent(client, db, invoices, backend):
    response = _post(client, invoice=[str(invoices[0])], due=(date.today() - timedelta(days=1)).isoformat())
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    for message in ("Choose at least two invoices", "The due date is in the past.", "Choose how to send"):
        assert message in text
    assert _written(db) == (0, 0, 0) and not backend.sent


def test_an_administrator_asks_for_two_invoices_by_email(client, db, invoices, backend):
    response = _post(client, invoice=[str(i) for i in invoices[:2]], email="on", locale="fr",
                     due=(date.today() + timedelta(days=9)).isoformat())
    assert response.status_code == 302
    request = db.session.scalar(select(PaymentRequest))
    assert (request.amount, request.created_by, request.selection_key, len(request.parts)) == (60300, "adm", None, 2)
    [mail] = backend.sent
    assert "Factures : ABC-0101, ABC-0102" in mail.body and "603,00" in mail.body
    assert db.session.scalar(select(func.count()).select_from(Message)) == 1
    listed = client.get("/payments/admin/requests", headers=as_user("adm")).get_data(as_text=True)
    assert "ABC-0101" in listed and "ABC-0102" in listed and "In one payment" in listed
    invoice_page = client.get(f"/payments/admin/invoices/{invoices[1]}", headers=as_user("adm")).get_data(as_text=True)
    assert "In one payment with invoices ABC-0101, ABC-0102" in invoice_page
    assert "€302.00 asked of Léa on invoice ABC-0102, in one payment with invoices ABC-0101, by e-mail." in invoice_page


# -- two clicks at once (PostgreSQL) ----------------------------------------------------------------------------

@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="two clicks racing on one choice need PostgreSQL")
def test_two_clicks_at_once_open_one_checkout(app, db, invoices, stripe_http):
    """Two workers take the same choice at the same moment: the invoices' row locks (and the open choice's
    unique key) make one request, one attempt and one Checkout Session; both clicks land on it."""
    create = _stub_create(stripe_http)
    client = app.test_client()
    token = _token(client)
    locations, failures = [], []
    ready = threading.Barrier(2, timeout=30)

    def click():
        try:
            with app.app_context():
                ready.wait()
                response = client.post(f"{MY_PAYMENTS}/settle", headers=as_user("u1"),
                                       data={"csrf_token": token, "invoice": [str(i) for i in invoices[:2]]})
                locations.append((response.status_code, response.headers.get("Location")))
        except Exception as err:  # noqa: BLE001 - reported below
            failures.append(err)

    db.session.commit()
    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # The second lands on the same Checkout, or, while the first is still opening it, is asked to wait.
    assert failures == [] and 303 in [status for status, _ in locations] and len(create.calls) == 1
    assert all(location == next(loc for status, loc in locations if status == 303) or status == 409
               for status, location in locations)
    assert _written(db) == (1, 2, 1)


def test_a_click_while_another_opens_the_checkout_waits_for_it(client, db, invoices, stripe_http):
    """A click whose Checkout Session is not recorded yet (another click is opening it): the next click is
    asked to wait rather than open a second session; past a minute (Stripe's answer was lost), it replaces it."""
    from .request_stubs import open_attempt
    from .request_support import open_request
    request_id, token = open_request(db, invoices[0], amount=30100)
    attempt = open_attempt(db, request_id, amount=30100, session_id=None)
    page = f"/payments/pay/{token}"
    csrf_token = CSRF.search(client.get(page).get_data(as_text=True)).group(1)
    waiting = client.post(page, data={"csrf_token": csrf_token})
    assert waiting.status_code == 400 and "en cours d’ouverture" in waiting.get_data(as_text=True)  # in French
    assert not stripe_http.calls
    attempt = db.session.get(PaymentAttempt, attempt.id)
    attempt.created_at = utcnow() - paying.OPENING_MARGIN - timedelta(seconds=1)
    db.session.commit()
    _stub_create(stripe_http)
    assert client.post(page, data={"csrf_token": csrf_token}).status_code == 303


def test_a_part_on_the_learners_balance_says_so_on_the_settlements_page(client, db, settlement):
    """A part whose invoice was paid another way while the settlement's Checkout was open went on the learner's
    balance (its top-up names the part): its row and, back from Stripe, the notice say where that money is."""
    request_id, page = settlement
    request = db.session.get(PaymentRequest, request_id)
    part = request.parts[0]
    part.invoice.status, part.invoice.amount_remaining = "paid", 0
    db.session.add(TopUp(user_id="u1", amount=part.amount, currency="EUR", status="paid", request_part_id=part.id,
                         paid_at=utcnow()))
    db.session.commit()
    shown = client.get(page).get_data(as_text=True)
    row = shown[shown.index(f'id="part-{part.invoice_id}"'):]
    assert "Your payment of it is on your balance" in row[:row.index("</tr>")]
    assert shown.count("Your payment of it is on your balance") == 1
