"""The pay page a request's link opens, and "My payments": whoever holds the link sees that invoice and pays
what the request allows (in the request's language when not signed in), never leaving the token in a Referer
nor in a search engine; an unknown link is not found; a paid, cancelled or void request's page says so and
takes no payment; a signed-in learner sees and pays only their own requests."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
import responses
from sqlalchemy import func, select, update

from lms_stripe_plugin.core.models import Invoice, Message, PaymentAttempt, PaymentRequest

from .conftest import STRIPE, as_user, stripe_object
from .refund_support import calls, idempotency_key, sent, text
from .request_stubs import admin_invoice, attempt_session, invoice_payment, open_attempt, stub_attach, stub_expire
from .request_support import open_invoice, open_request

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def owed(db, host, people, configured):
    return open_invoice(db, host)


@pytest.fixture
def link(db, owed):
    """A request of 90 € on the 300 € invoice, in French: (request id, its page)."""
    request_id, token = open_request(db, owed, locale="fr")
    return request_id, f"/payments/pay/{token}"


def _session(session_id="cs_test_pay_1"):
    return stripe_object("checkout_session", id=session_id, url=f"https://checkout.stripe.com/c/pay/{session_id}")


def _stub_create(mock, session_id="cs_test_pay_1"):
    return mock.add(responses.POST, f"{STRIPE}/v1/checkout/sessions", json=_session(session_id))


def _pay(client, path, headers=None, **fields):
    page = client.get(path, headers=headers or {})
    token = CSRF.search(page.get_data(as_text=True)).group(1)
    return client.post(path, data={"csrf_token": token, **fields}, headers=headers or {})


def _token(client, path) -> str:
    """The CSRF token of the client's session, read from a page with a form (the request's, while open)."""
    return CSRF.search(client.get(path).get_data(as_text=True)).group(1)


def _attempts(db) -> list[PaymentAttempt]:
    db.session.expire_all()
    return db.session.scalars(select(PaymentAttempt).order_by(PaymentAttempt.id)).all()


def _set(db, model, row_id, **values):
    row = db.session.get(model, row_id)
    for name, value in values.items():
        setattr(row, name, value)
    db.session.commit()


# -- who opens what ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("token", ["nope", "A" * 43, "A" * 129, "x" * 2000])
def test_an_unknown_or_overlong_link_is_not_found(client, link, token):
    assert client.get(f"/payments/pay/{token}").status_code == 404
    response = client.post(f"/payments/pay/{token}", data={"csrf_token": _token(client, link[1])})
    assert response.status_code == 404


def test_the_page_never_leaves_its_address_in_a_referer_nor_in_a_search_engine(client, link):
    response = client.get(link[1])
    assert response.status_code == 200
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Robots-Tag"] == "noindex, nofollow"
    assert response.headers["Cache-Control"] == "no-store"
    refused = _pay(client, link[1], amount="abc")
    assert refused.status_code == 400 and refused.headers["Referrer-Policy"] == "no-referrer"
    assert refused.headers["X-Robots-Tag"] == "noindex, nofollow"


def test_a_visitor_not_signed_in_reads_the_page_in_the_requests_language(client, host, link):
    host.locale = "en"
    page = text(client.get(link[1]))
    assert "Montant demandé : 90,00 €" in page and "300,00 €" in page and "Payer 90,00 €" in page
    assert "Accompagnement VAE" in page


def test_a_signed_in_learner_reads_it_in_their_own_language(client, host, link):
    host.locale = "en"
    page = text(client.get(link[1], headers=as_user("u1")))
    assert "Amount asked: €90.00" in page and "Pay €90.00" in page


def test_the_schools_note_is_shown_as_text(client, db, link):
    _set(db, PaymentRequest, link[0], message='<script>alert("x")</script> Merci')
    body = client.get(link[1]).get_data(as_text=True)
    assert "<script>alert" not in body and "&lt;script&gt;" in body and "Message de l’école" in body


def test_the_page_shows_that_invoice_and_nothing_else_of_the_learner(client, db, host, link):
    other = open_invoice(db, host, stripe_id="in_test_open_2", number="ABC-0999", gross=12000, vat=2000)
    open_request(db, other)
    page = text(client.get(link[1]))
    assert "ABC-0100" in page and "ABC-0999" not in page and "120,00" not in page


# -- paying ---------------------------------------------------------------------------------------------

def test_pay_opens_a_checkout_for_what_the_request_asks(client, db, link, stripe_http):
    _stub_create(stripe_http)
    response = _pay(client, link[1])
    assert response.status_code == 303
    assert response.headers["Location"] == "https://checkout.stripe.com/c/pay/cs_test_pay_1"
    (attempt,) = _attempts(db)
    (call,) = calls(stripe_http, "POST", "/v1/checkout/sessions")
    body = sent(call)
    assert (attempt.amount, attempt.status, attempt.stripe_checkout_session_id) == (9000, "open", "cs_test_pay_1")
    assert body["line_items[0][price_data][unit_amount]"] == "9000" and body["locale"] == "fr"
    assert body["cancel_url"] == f"http://lms.test{link[1]}"
    assert body["success_url"] == f"http://lms.test{link[1]}?session_id={{CHECKOUT_SESSION_ID}}"
    assert idempotency_key(call) == f"lms-request-{link[0]}-{attempt.id}"


def test_a_second_click_goes_back_to_the_same_checkout(client, db, link, stripe_http):
    create = _stub_create(stripe_http)
    first = _pay(client, link[1])
    second = _pay(client, link[1])
    assert first.headers["Location"] == second.headers["Location"] and create.call_count == 1
    assert len(_attempts(db)) == 1


def test_without_partial_payments_the_browser_cannot_choose_the_amount(client, db, link, stripe_http):
    body = client.get(link[1]).get_data(as_text=True)
    assert 'name="amount"' not in body
    response = _pay(client, link[1], amount="1,00")
    assert response.status_code == 400
    assert "Le montant doit être d’au moins 90,00 €." in text(response)
    assert _attempts(db) == [] and len(stripe_http.calls) == 0


@pytest.fixture
def partial(db, link):
    _set(db, PaymentRequest, link[0], partial_minimum=2000)
    return link


@pytest.mark.parametrize("typed, message", [
    ("10,00", "Le montant doit être d’au moins 20,00 €."),
    ("90,01", "Le montant ne doit pas dépasser 90,00 €."),
    ("12.50", "Écrivez le montant ainsi : 49,90"),
    # what it would leave could never be paid online (Stripe's least charge in euros is 0,50 €)
    ("89,80", "Payez 90,00 €, ou au plus 89,50 € : ce qui reste doit être d’au moins 0,50 €"),
    ("", None),  # nothing typed: what remains
])
def test_a_part_is_paid_within_the_limits_read_in_the_requests_language(client, db, partial, stripe_http, typed,
                                                                         message):
    _stub_create(stripe_http)
    body = client.get(partial[1]).get_data(as_text=True)
    assert 'name="amount"' in body and "De 20,00 € à 90,00 € : vous pouvez payer en plusieurs fois." in text(
        client.get(partial[1]))
    response = _pay(client, partial[1], amount=typed)
    if message is None:
        assert response.status_code == 303 and [a.amount for a in _attempts(db)] == [9000]
        return
    assert response.status_code == 400 and message in text(response)
    assert _attempts(db) == [] and len(stripe_http.calls) == 0


def test_a_part_may_leave_the_least_an_online_payment_can_be(client, db, partial, stripe_http):
    _stub_create(stripe_http)
    assert _pay(client, partial[1], amount="89,50").status_code == 303
    assert [a.amount for a in _attempts(db)] == [8950]


def test_what_is_left_below_the_least_online_payment_is_said_and_nothing_is_charged(client, db, owed, link,
                                                                                  stripe_http):
    """Paid otherwise down to 0,20 € (the hosted invoice page): no Checkout can take so little."""
    _set(db, Invoice, owed, amount_paid=29980, amount_remaining=20)
    response = _pay(client, link[1])
    assert response.status_code == 400 and "Ce qui reste à payer, 0,20 €, est inférieur au plus petit paiement " \
        "en ligne possible (0,50 €) : contactez l’école." in text(response)
    assert _attempts(db) == [] and len(stripe_http.calls) == 0


def test_a_part_then_another_amount_expires_the_first_checkout(client, db, partial, stripe_http):
    _stub_create(stripe_http, "cs_test_pay_1")
    _stub_create(stripe_http, "cs_test_pay_2")
    expire = stub_expire(stripe_http, "cs_test_pay_1")
    assert _pay(client, partial[1], amount="50,00").status_code == 303
    response = _pay(client, partial[1], amount="30,00")
    assert response.headers["Location"].endswith("cs_test_pay_2") and expire.call_count == 1
    assert [(a.amount, a.status) for a in _attempts(db)] == [(5000, "expired"), (3000, "open")]


def test_a_garbled_amount_is_refused_and_nothing_is_written(client, db, partial, stripe_http):
    for typed in ("abc", "1e9", "9" * 40, "-5", "NaN"):
        response = _pay(client, partial[1], amount=typed)
        assert response.status_code == 400, typed
        assert 'id="pay-error"' in response.get_data(as_text=True)
    assert _attempts(db) == [] and len(stripe_http.calls) == 0


def test_stripe_refusing_the_checkout_is_told_and_the_next_click_tries_again(client, db, link, stripe_http):
    stripe_http.add(responses.POST, f"{STRIPE}/v1/checkout/sessions", status=400, json={
        "error": {"type": "invalid_request_error", "message": "No such customer: 'cus_test_1'"}})
    _stub_create(stripe_http)
    refused = _pay(client, link[1])
    assert refused.status_code == 400 and 'id="pay-error"' in refused.get_data(as_text=True)
    assert [a.status for a in _attempts(db)] == ["failed"]
    assert _pay(client, link[1]).status_code == 303
    assert [a.status for a in _attempts(db)] == ["failed", "open"]


@pytest.mark.parametrize("taken", ["paid", "processing"])
def test_a_click_is_refused_when_the_checkout_it_replaces_is_paid_meanwhile(client, db, owed, stripe_http,
                                                                             monkeypatch, taken):
    """Tab 1 has a Checkout of 50 € open; tab 2 asks for the whole 90 €. Stripe's event for tab 1's payment is
    handled by another worker after the click read the open attempt and before it replaces it: the click is
    refused, nothing is charged twice, no second Checkout is opened."""
    request_id, token = open_request(db, owed, locale="en", partial_minimum=2000)
    first_id = open_attempt(db, request_id, amount=5000).id
    from lms_stripe_plugin.billing import paying

    real = paying._free_invoices

    def handled_meanwhile(state, request, amount):
        state.session.execute(update(PaymentAttempt).where(PaymentAttempt.id == first_id)
                              .values(status=taken, stripe_payment_intent_id="pi_first")
                              .execution_options(synchronize_session=False))
        return real(state, request, amount)

    monkeypatch.setattr(paying, "_free_invoices", handled_meanwhile)
    response = _pay(client, f"/payments/pay/{token}", amount="90.00")
    assert response.status_code == 400 and len(stripe_http.calls) == 0
    said = "it is being credited" if taken == "paid" else "Your payment is processing"
    assert said in text(response)
    assert [(a.amount, a.status) for a in _attempts(db)] == [(5000, taken)]


def test_two_requests_of_one_invoice_never_ask_together_more_than_it_owes(client, db, owed, stripe_http):
    """Two requests of 200 € each on the invoice of 300 €: the second click expires the first request's open
    Checkout (the latest click wins); once a payment of 200 € is taken, the other request may pay 100 € at most."""
    first, first_token = open_request(db, owed, amount=20000, locale="en")
    second, second_token = open_request(db, owed, amount=20000, locale="en", partial_minimum=2000)
    _stub_create(stripe_http, "cs_test_pay_1")
    _stub_create(stripe_http, "cs_test_pay_2")
    _stub_create(stripe_http, "cs_test_pay_3")
    expire = stub_expire(stripe_http, "cs_test_pay_1")
    assert _pay(client, f"/payments/pay/{first_token}").status_code == 303
    assert _pay(client, f"/payments/pay/{second_token}").headers["Location"].endswith("cs_test_pay_2")
    assert [(a.request_id, a.amount, a.status) for a in _attempts(db)] == [(first, 20000, "expired"),
                                                                            (second, 20000, "open")]
    assert expire.call_count == 1
    _set(db, PaymentAttempt, _attempts(db)[1].id, status="paid", stripe_payment_intent_id="pi_second")
    refused = _pay(client, f"/payments/pay/{first_token}")
    assert refused.status_code == 400 and "Invoice ABC-0100 owes €300.00, of which €200.00 is being paid: you may " \
        "pay at most €100.00 now, and nothing was charged." in text(refused)
    calls_before = len(stripe_http.calls)
    _set(db, PaymentRequest, first, partial_minimum=2000)
    assert _pay(client, f"/payments/pay/{first_token}", amount="100.00").headers["Location"].endswith("cs_test_pay_3")
    assert len(stripe_http.calls) == calls_before + 1
    assert [(a.amount, a.status) for a in _attempts(db)][2:] == [(10000, "open")]


# -- closed requests -----------------------------------------------------------------------------------------

def test_a_paid_requests_page_says_so_and_takes_no_payment(client, db, link, stripe_http):
    token = _token(client, link[1])
    _set(db, PaymentRequest, link[0], status="paid", amount_paid=9000)
    page = client.get(link[1])
    assert "Cette demande de paiement est réglée." in text(page) and 'id="pay"' not in page.get_data(as_text=True)
    assert page.headers["Referrer-Policy"] == "no-referrer"
    response = client.post(link[1], data={"csrf_token": token})
    assert response.status_code == 400 and _attempts(db) == [] and len(stripe_http.calls) == 0


def test_a_cancelled_requests_page_says_so_and_takes_no_payment(client, db, link, stripe_http):
    token = _token(client, link[1])
    _set(db, PaymentRequest, link[0], status="cancelled")
    page = client.get(link[1])
    assert "Cette demande de paiement a été annulée : il n’y a rien à payer." in text(page)
    assert 'id="pay"' not in page.get_data(as_text=True)
    response = client.post(link[1], data={"csrf_token": token})
    assert response.status_code == 400 and _attempts(db) == [] and len(stripe_http.calls) == 0


def test_a_paid_invoice_offers_its_pdf(client, db, owed, link):
    _set(db, Invoice, owed, status="paid", amount_paid=30000, amount_remaining=0)
    body = client.get(link[1]).get_data(as_text=True)
    assert "Cette facture est entièrement payée." in text(client.get(link[1]))
    assert 'id="download-pdf"' in body and "https://pay.stripe.com/invoice/in_test_open_1/pdf" in body


def test_a_void_invoice_is_not_said_paid(client, db, owed, link, stripe_http):
    token = _token(client, link[1])
    _set(db, Invoice, owed, status="void", amount_remaining=0)
    page = client.get(link[1])
    assert "Cette facture ne peut plus être payée." in text(page)
    assert "entièrement payée" not in text(page) and 'id="download-pdf"' not in page.get_data(as_text=True)
    response = client.post(link[1], data={"csrf_token": token})
    assert response.status_code == 400 and _attempts(db) == []


def test_a_payment_processing_is_said_and_not_taken_twice(client, db, link, stripe_http):
    token = _token(client, link[1])
    open_attempt(db, link[0], status="processing")
    page = client.get(link[1])
    assert "Votre paiement est en cours de traitement : il sera imputé dès sa confirmation." in text(page)
    assert 'id="pay"' not in page.get_data(as_text=True)
    response = client.post(link[1], data={"csrf_token": token})
    assert response.status_code == 400 and len(_attempts(db)) == 1 and len(stripe_http.calls) == 0


# -- back from Stripe -------------------------------------------------------------------------------------------

def test_back_from_stripe_the_payment_is_recorded_attached_and_thanked_for(client, db, owed, link, stripe_http):
    attempt = open_attempt(db, link[0])
    paid = attempt_session(attempt, intent=stripe_object("payment_intent", id="pi_test_req_1", status="succeeded"))
    stripe_http.add(responses.GET, re.compile(rf"{STRIPE}/v1/checkout/sessions/{attempt.stripe_checkout_session_id}"
                                              r"(\?.*)?$"), json=paid)
    attach = stub_attach(stripe_http, admin_invoice(owed, paid=9000, payments=[invoice_payment()]))
    page = client.get(f"{link[1]}?session_id={attempt.stripe_checkout_session_id}")
    assert page.status_code == 200 and "Merci : votre paiement est reçu." in text(page)
    assert attach.call_count == 1
    assert sent(attach.calls[0]) == {"payment_intent": "pi_test_req_1", "expand[0]": "payments"}
    db.session.expire_all()
    request = db.session.get(PaymentRequest, link[0])
    assert (request.status, request.amount_paid) == ("paid", 9000)
    assert db.session.get(Invoice, owed).amount_remaining == 21000
    assert _attempts(db)[0].status == "attached"


def test_back_with_another_requests_session_says_nothing(client, db, owed, link, stripe_http):
    other_id, _token = open_request(db, owed)
    attempt = open_attempt(db, other_id, session_id="cs_test_other")
    stripe_http.add(responses.GET, re.compile(rf"{STRIPE}/v1/checkout/sessions/cs_test_other(\?.*)?$"),
                    json=attempt_session(attempt, status="open", payment_status="unpaid", intent=None))
    page = client.get(f"{link[1]}?session_id=cs_test_other")
    assert page.status_code == 200 and "Merci" not in text(page)


@pytest.mark.parametrize("session_id", ["", "pi_123", "cs_" + "x" * 300])
def test_back_with_no_session_of_ours_asks_stripe_nothing(client, link, stripe_http, session_id):
    assert client.get(f"{link[1]}?session_id={session_id}").status_code == 200
    assert len(stripe_http.calls) == 0


# -- My payments --------------------------------------------------------------------------------------------------

def test_my_payments_lists_my_open_requests_overdue_first(client, db, host, owed, people):
    soon, _t = open_request(db, owed, due_in_days=10, amount=5000)
    late, _t = open_request(db, owed, due_in_days=-3, amount=7000)
    done, _t = open_request(db, owed, amount=4000)
    _set(db, PaymentRequest, done, status="paid", amount_paid=4000)
    sams = open_invoice(db, host, user_id="u2", stripe_id="in_test_open_2", number="ABC-0777")
    open_request(db, sams, amount=6000)
    page = text(client.get("/payments/my-payments", headers=as_user("u1")))
    assert page.index("€70.00") < page.index("€50.00") and "Overdue" in page
    assert "€40.00" not in page and "ABC-0777" not in page and "€60.00" not in page
    assert "ABC-0100" in text(client.get("/payments/my-payments", headers=as_user("u1")))


@pytest.mark.parametrize("status", ["processing", "paid"])
def test_my_payments_shows_a_payment_under_way_with_no_pay_button_and_not_overdue(client, db, owed, status):
    """A bank debit processing, or a payment taken and not yet credited: the learner has paid unless it fails."""
    late, _t = open_request(db, owed, due_in_days=-3, amount=7000)
    open_attempt(db, late, amount=7000, status=status)
    page = client.get("/payments/my-payments", headers=as_user("u1")).get_data(as_text=True)
    assert "€70.00" in page and "Payment processing" in page and "Overdue" not in page
    assert f"/payments/my-payments/{late}/pay" not in page


def test_my_payments_shows_nothing_to_pay_when_the_invoice_was_paid_otherwise(client, db, owed, link):
    _set(db, Invoice, owed, status="paid", amount_paid=30000, amount_remaining=0)  # on Stripe's own page, say
    page = text(client.get("/payments/my-payments", headers=as_user("u1")))
    assert "You have nothing to pay." in page and "€0.00" not in page


def test_my_payments_pays_my_request_and_comes_back_to_my_payments(client, db, link, stripe_http):
    create = _stub_create(stripe_http)
    token = _token(client, link[1])
    response = client.post(f"/payments/my-payments/{link[0]}/pay", data={"csrf_token": token}, headers=as_user("u1"))
    assert response.status_code == 303
    body = sent(create.calls[0])
    assert body["cancel_url"] == "http://lms.test/payments/my-payments"
    assert [a.amount for a in _attempts(db)] == [9000]


def test_another_learners_request_is_not_found_from_my_payments(client, db, link, stripe_http):
    token = _token(client, link[1])
    response = client.post(f"/payments/my-payments/{link[0]}/pay", data={"csrf_token": token}, headers=as_user("u2"))
    assert response.status_code == 404
    assert client.post("/payments/my-payments/999/pay", data={"csrf_token": token},
                       headers=as_user("u2")).status_code == 404
    assert _attempts(db) == [] and len(stripe_http.calls) == 0


def test_a_refused_amount_from_my_payments_shows_the_request_page(client, db, link, stripe_http):
    token = _token(client, link[1])
    _set(db, PaymentRequest, link[0], status="cancelled")
    response = client.post(f"/payments/my-payments/{link[0]}/pay", data={"csrf_token": token}, headers=as_user("u1"))
    assert response.status_code == 400 and "This payment request was cancelled" in text(response)
    assert db.session.scalar(select(func.count()).select_from(PaymentAttempt)) == 0



# -- an invoice no request asks for ----------------------------------------------------------------------------

def _my_token(client) -> str:
    """The CSRF token of the learner's session, read from My payments (which lists a Pay form)."""
    return CSRF.search(client.get("/payments/my-payments", headers=as_user("u1")).get_data(as_text=True)).group(1)


def test_my_payments_lists_an_open_invoice_that_no_request_asks_for_with_its_pay_button(client, db, host, owed):
    _set(db, Invoice, owed, due_at=datetime(2026, 1, 1, tzinfo=timezone.utc))  # long past: overdue
    sams = open_invoice(db, host, user_id="u2", stripe_id="in_test_open_2", number="ABC-0777")
    page = client.get("/payments/my-payments", headers=as_user("u1")).get_data(as_text=True)
    assert "ABC-0100" in page and "€300.00" in page and "Overdue" in page and "ABC-0777" not in page
    assert f"/payments/my-payments/invoices/{owed}/pay" in page and f"/invoices/{sams}/pay" not in page


def test_an_invoice_a_request_asks_for_is_listed_once_by_its_request(client, db, owed, link):
    page = client.get("/payments/my-payments", headers=as_user("u1")).get_data(as_text=True)
    assert f"/payments/my-payments/{link[0]}/pay" in page and "/payments/my-payments/invoices/" not in page


def test_pay_on_an_open_invoice_asks_for_what_remains_without_sending_anything(client, db, owed, stripe_http):
    _set(db, Invoice, owed, amount_paid=10000, amount_remaining=20000)
    create = _stub_create(stripe_http)
    token = _my_token(client)
    response = client.post(f"/payments/my-payments/invoices/{owed}/pay", data={"csrf_token": token},
                           headers=as_user("u1"))
    assert response.status_code == 303
    assert sent(create.calls[0])["cancel_url"] == "http://lms.test/payments/my-payments"
    db.session.expire_all()
    (own,) = db.session.scalars(select(PaymentRequest)).all()
    assert (own.amount, own.user_id, own.created_by, own.send_email, own.send_sms) == (20000, "u1", "u1", False, False)
    assert [a.amount for a in _attempts(db)] == [20000]
    assert db.session.scalar(select(func.count()).select_from(Message)) == 0
    # A second click uses the same request and goes back to the same Checkout.
    again = client.post(f"/payments/my-payments/invoices/{owed}/pay", data={"csrf_token": token},
                        headers=as_user("u1"))
    assert again.status_code == 303 and again.location == response.location
    assert db.session.scalar(select(func.count()).select_from(PaymentRequest)) == 1 and len(create.calls) == 1


def test_pay_on_another_learners_or_a_paid_invoice_takes_nothing(client, db, host, owed, stripe_http):
    sams = open_invoice(db, host, user_id="u2", stripe_id="in_test_open_2", number="ABC-0777")
    token = _my_token(client)
    assert client.post(f"/payments/my-payments/invoices/{sams}/pay", data={"csrf_token": token},
                       headers=as_user("u1")).status_code == 404
    _set(db, Invoice, owed, status="paid", amount_paid=30000, amount_remaining=0)
    refused = client.post(f"/payments/my-payments/invoices/{owed}/pay", data={"csrf_token": token},
                          headers=as_user("u1"), follow_redirects=True)
    assert refused.status_code == 200 and "Nothing remains to be paid on this invoice." in text(refused)
    assert db.session.scalar(select(func.count()).select_from(PaymentRequest)) == 0 and len(stripe_http.calls) == 0


def test_pay_on_an_open_invoice_needs_a_signed_in_learner_and_the_form_token(client, owed, stripe_http):
    assert client.post(f"/payments/my-payments/invoices/{owed}/pay").status_code in (400, 401)
    assert client.post(f"/payments/my-payments/invoices/{owed}/pay", headers=as_user("u1")).status_code == 400
    assert len(stripe_http.calls) == 0


def test_while_payments_are_off_the_page_says_they_are_paused_and_pay_changes_nothing(client, db, link, stripe_http):
    from lms_stripe_plugin.accounts import settings as payment_settings

    payment_settings.save(db.session, {"enabled": False}, actor_id="adm")  # or paused by Stripe, as a platform
    db.session.commit()
    _request_id, path = link
    page = client.get(path)
    assert page.status_code == 200 and 'id="paused"' in page.get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    clicked = client.post(path, data={"csrf_token": token})
    assert clicked.status_code == 400 and "suspendu pour le moment" in clicked.get_data(as_text=True)  # in French
    assert db.session.scalar(select(func.count()).select_from(PaymentAttempt)) == 0
    assert len(stripe_http.calls) == 0
