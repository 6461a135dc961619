"""The administrators' billing pages: a new invoice (written, then created and finalized at Stripe, each step
committed, "Issue it again" resuming where Stripe stopped), a payment request on an invoice, and the list of
requests with its CSV, "Send again" and "Cancel". A form that is refused answers 400 with each error beside
its field, in the administrator's language, all at once, and writes nothing."""
from __future__ import annotations

import csv
import html
import io
import re
from datetime import date, timedelta

import pytest
import responses
from sqlalchemy import func, select

from lms_stripe_plugin.core.models import (AuditEntry, Invoice, InvoiceLine, Message, PaymentAttempt, PaymentRequest,
                                           RequestLink, TaxRate)

from .conftest import STRIPE, as_user, stripe_object
from .refund_support import calls, csrf, idempotency_key, sent, text
from .request_stubs import LANDLINE, backend, open_attempt, stub_expire  # noqa: F401 - a fixture
from .request_support import open_invoice, open_request

NEW = "/payments/admin/invoices/new"
DUE = (date.today() + timedelta(days=20)).isoformat()
NEW_STRIPE_ID = "in_test_new_1"


@pytest.fixture
def admin(client, people, lessons, configured):
    """The administrator's CSRF token (one per client session)."""
    return csrf(client, NEW)


@pytest.fixture
def owed(db, host, people, configured):
    return open_invoice(db, host)


def _count(db, *models) -> tuple[int, ...]:
    db.session.expire_all()
    return tuple(db.session.scalar(select(func.count()).select_from(model)) for model in models)


def _field_errors(response) -> dict[str, str]:
    """Each error shown beside its field: {field id: message}."""
    page = response.get_data(as_text=True)
    return {name: html.unescape(message) for name, message in
            re.findall(r'<p class="error" id="([\w-]+)-error">([^<]*)</p>', page)}


# -- a new invoice: Stripe's side ---------------------------------------------------------------------------

def _draft(lines=()) -> dict:
    return stripe_object("invoice", id=NEW_STRIPE_ID, status="draft", number=None, collection_method="send_invoice",
                         amount_paid=0, amount_remaining=0, total=0, metadata={"lms_invoice_id": "1"},
                         lines={"object": "list", "data": list(lines), "has_more": False, "url": "/v1/invoices"})


def _finalized(total=30000, number="ABC-0200") -> dict:
    return stripe_object("invoice", id=NEW_STRIPE_ID, status="open", number=number, total=total, amount_due=total,
                         amount_paid=0, amount_remaining=total, collection_method="send_invoice",
                         invoice_pdf=f"https://pay.stripe.com/invoice/{NEW_STRIPE_ID}/pdf",
                         hosted_invoice_url=f"https://invoice.stripe.com/i/{NEW_STRIPE_ID}", metadata={})


def _stub_issuing(mock, *, finalize_status=200) -> None:
    invoices = f"{STRIPE}/v1/invoices"
    mock.add(responses.POST, f"{STRIPE}/v1/customers", json=stripe_object("customer", id="cus_test_new"))
    mock.add(responses.POST, f"{STRIPE}/v1/tax_rates",
             json=stripe_object("tax_rate", id="txr_test_20", percentage=20, inclusive=True))
    mock.add(responses.POST, invoices, json=_draft())
    mock.add(responses.GET, f"{invoices}/{NEW_STRIPE_ID}", json=_draft())
    mock.add(responses.POST, f"{invoices}/{NEW_STRIPE_ID}/add_lines", json=_draft(lines=[{"id": "il_1"}]))
    if finalize_status == 200:
        mock.add(responses.POST, f"{invoices}/{NEW_STRIPE_ID}/finalize", json=_finalized())
    else:
        mock.add(responses.POST, f"{invoices}/{NEW_STRIPE_ID}/finalize", status=finalize_status,
                 json={"error": {"type": "api_error", "message": "Something went wrong on Stripe's end."}})


def _new_invoice(client, token, **fields):
    data = {"csrf_token": token, "learner": "u1", "currency": "EUR", "due": DUE,
            "line-1-description": "Accompagnement VAE", "line-1-amount": "300.00", "line-1-vat_rate": "20", **fields}
    return client.post(NEW, data=data, headers=as_user("adm"))


def test_the_new_invoice_page_offers_five_lines_in_the_default_currency(client, admin):
    page = client.get(NEW, headers=as_user("adm"))
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert 'name="line-5-amount"' in body and 'name="line-6-amount"' not in body
    assert 'id="currency" name="currency" maxlength="3" value="EUR"' in body


def test_a_new_invoice_is_written_then_created_and_finalized_at_stripe(client, db, admin, stripe_http, signals):
    _stub_issuing(stripe_http)
    response = _new_invoice(client, admin, **{"line-2-course": "c1", "line-2-amount": "49.90",
                                              "line-2-vat_rate": "5.5"})
    assert response.status_code == 302
    invoice = db.session.scalar(select(Invoice))
    assert response.headers["Location"].endswith(f"/payments/admin/invoices/{invoice.id}")
    assert (invoice.status, invoice.number, invoice.stripe_invoice_id) == ("open", "ABC-0200", NEW_STRIPE_ID)
    assert (invoice.source, invoice.user_id, invoice.user_email, invoice.created_by) == \
        ("admin", "u1", "lea@example.com", "adm")
    assert (invoice.gross, invoice.course_id, invoice.stripe_customer_id) == (34990, "c1", "cus_test_new")
    lines = db.session.scalars(select(InvoiceLine).order_by(InvoiceLine.position)).all()
    assert [(line.description, line.gross, line.vat_rate, line.net + line.vat) for line in lines] == \
        [("Accompagnement VAE", 30000, 2000, 30000), ("Python basics", 4990, 550, 4990)]
    created = sent(calls(stripe_http, "POST", "/v1/invoices")[0])
    assert (created["collection_method"], created["currency"], created["auto_advance"]) == \
        ("send_invoice", "eur", "false")
    assert created["metadata[lms_invoice_id]"] == str(invoice.id) and created["customer"] == "cus_test_new"
    added = sent(calls(stripe_http, "POST", f"/v1/invoices/{NEW_STRIPE_ID}/add_lines")[0])
    assert (added["lines[0][amount]"], added["lines[1][amount]"], added["lines[1][metadata][lms_course_id]"]) == \
        ("30000", "4990", "c1")
    assert [idempotency_key(c) for c in calls(stripe_http, "POST", f"/v1/invoices/{NEW_STRIPE_ID}/finalize")] == \
        [f"lms-invoice-{invoice.id}-finalize"]
    assert len(signals["invoice_issued"]) == 1
    assert "The invoice is issued." in text(client.get(response.headers["Location"], headers=as_user("adm")))


def test_amounts_and_rates_are_read_in_the_administrators_language(client, db, host, admin, stripe_http):
    host.locale = "fr"
    _stub_issuing(stripe_http)
    response = _new_invoice(client, admin, **{"line-1-amount": "1 234,50", "line-1-vat_rate": "5,5"})
    assert response.status_code == 302
    line = db.session.scalar(select(InvoiceLine))
    assert (line.gross, line.vat_rate) == (123450, 550)


@pytest.mark.parametrize("locale, typed, message", [
    ("fr", "12.50", "Écrivez le montant ainsi : 49,90"),
    ("en", "12,50", "Write the amount like 49.90"),
])
def test_an_amount_written_the_other_way_is_refused_in_the_administrators_language(client, db, host, admin,
                                                                                  stripe_http, locale, typed,
                                                                                  message):
    host.locale = locale
    response = _new_invoice(client, admin, **{"line-1-amount": typed})
    assert response.status_code == 400
    assert _field_errors(response)["line-1-amount"].startswith(message)
    assert _count(db, Invoice, InvoiceLine, AuditEntry) == (0, 0, 1)  # the settings' entry only
    assert len(stripe_http.calls) == 0


def test_every_field_at_fault_is_named_at_once_and_nothing_is_written(client, db, admin, stripe_http):
    response = _new_invoice(client, admin, learner="nobody", currency="XYZ", due="2020-01-01", **{
        "line-1-description": "", "line-1-amount": "", "line-1-vat_rate": "",
        "line-2-course": "no-such-course", "line-2-amount": "10",
        "line-3-description": "Frais", "line-3-amount": "10", "line-3-vat_rate": "120"})
    assert response.status_code == 400
    errors = _field_errors(response)
    assert errors == {
        "learner": "Enter the id of a learner of the LMS.",
        "currency": "Choose a currency Stripe supports, as a three-letter code (EUR, USD, JPY…).",
        "due": "The due date is in the past.",
        "line-2-course": "No course of the LMS has this id.",
        "line-2-description": "Describe the line, or choose a course.",
        "line-2-vat_rate": "Enter a VAT rate between 0 and 100, 0 if none applies.",
        "line-3-vat_rate": "Enter a VAT rate between 0 and 100, 0 if none applies.",
    }
    assert "Some fields need your attention; nothing was saved." in text(response)
    assert 'value="nobody"' in response.get_data(as_text=True)  # what was typed is kept
    assert _count(db, Invoice, InvoiceLine) == (0, 0) and len(stripe_http.calls) == 0


def test_a_filled_line_is_not_said_missing_when_the_currency_is_wrong(client, db, admin, stripe_http):
    response = _new_invoice(client, admin, currency="EURO")
    assert response.status_code == 400
    assert set(_field_errors(response)) == {"currency"}


@pytest.mark.parametrize("fields, field, message", [
    ({"line-1-description": "", "line-1-amount": "", "line-1-vat_rate": ""}, "line-1-description",
     "Add at least one line."),
    ({"line-1-amount": "abc"}, "line-1-amount", "Write the amount like 49.90."),
    ({"line-1-amount": "12.345"}, "line-1-amount", "EUR takes at most 2 decimals."),
    ({"due": "tomorrow"}, "due", "Choose a date."),
    ({"due": ""}, "due", "Choose a date."),
    ({"learner": ""}, "learner", "Enter the id of a learner of the LMS."),
    ({"line-1-amount": "0.10"}, "lines", "The total is not an amount Stripe can charge in EUR."),
    ({"line-1-amount": "999999.99", "line-2-description": "More", "line-2-amount": "999999.99",
      "line-2-vat_rate": "20"}, "lines", "The total is not an amount Stripe can charge in EUR."),
])
def test_each_refusal_of_the_invoice_form_is_shown_beside_its_field(client, db, admin, stripe_http, fields, field,
                                                                    message):
    response = _new_invoice(client, admin, **fields)
    assert response.status_code == 400
    assert _field_errors(response) == {field: message}
    assert _count(db, Invoice) == (0,) and len(stripe_http.calls) == 0


def test_hostile_input_is_refused_not_a_server_error(client, db, admin, stripe_http):
    for fields in ({"learner": "u1\x01"}, {"due": "9" * 40}, {"due": "0000-01-01"}, {"line-1-amount": "1" * 5000},
                   {"line-1-vat_rate": "NaN"}, {"line-1-amount": "Infinity"}, {"currency": "€" * 100}):
        response = _new_invoice(client, admin, **fields)
        assert response.status_code == 400, (fields, response.status_code)
    assert _count(db, Invoice) == (0,) and len(stripe_http.calls) == 0


def test_an_invoice_stripe_could_not_finalize_is_kept_and_issued_again_where_it_stopped(client, db, admin,
                                                                                        stripe_http, signals):
    _stub_issuing(stripe_http, finalize_status=500)
    response = _new_invoice(client, admin)
    assert response.status_code == 302
    invoice = db.session.scalar(select(Invoice))
    assert (invoice.status, invoice.stripe_invoice_id) == ("issuing", NEW_STRIPE_ID)
    page = client.get(response.headers["Location"], headers=as_user("adm"))
    assert "The invoice is saved, but Stripe could not issue it" in text(page) and 'id="issue-again"' in \
        page.get_data(as_text=True)
    assert signals.get("invoice_issued") is None
    stripe_http.replace(responses.GET, f"{STRIPE}/v1/invoices/{NEW_STRIPE_ID}", json=_draft(lines=[{"id": "il_1"}]))
    stripe_http.replace(responses.POST, f"{STRIPE}/v1/invoices/{NEW_STRIPE_ID}/finalize", json=_finalized())
    again = client.post(f"/payments/admin/invoices/{invoice.id}/issue", data={"csrf_token": admin},
                        headers=as_user("adm"))
    assert again.status_code == 302
    db.session.expire_all()
    assert db.session.get(Invoice, invoice.id).status == "open"
    assert len(calls(stripe_http, "POST", "/v1/invoices")) == 1  # not created twice
    assert len(calls(stripe_http, "POST", f"/v1/invoices/{NEW_STRIPE_ID}/add_lines")) == 1  # its lines not twice
    assert [idempotency_key(c) for c in calls(stripe_http, "POST", f"/v1/invoices/{NEW_STRIPE_ID}/finalize")] == \
        [f"lms-invoice-{invoice.id}-finalize"] * 2
    assert len(signals["invoice_issued"]) == 1 and _count(db, TaxRate) == (1,)


def test_issuing_again_an_issued_invoice_asks_stripe_nothing(client, db, admin, owed, stripe_http, signals):
    response = client.post(f"/payments/admin/invoices/{owed}/issue", data={"csrf_token": admin},
                           headers=as_user("adm"))
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/admin/invoices/{owed}")
    assert len(stripe_http.calls) == 0 and signals.get("invoice_issued") is None


def test_issuing_an_unknown_invoice_is_not_found(client, admin):
    response = client.post("/payments/admin/invoices/999/issue", data={"csrf_token": admin}, headers=as_user("adm"))
    assert response.status_code == 404


# -- a payment request ---------------------------------------------------------------------------------------

def _ask(client, token, invoice_id, **fields):
    data = {"csrf_token": token, "amount": "90.00", "due": DUE, "email": "on", "locale": "fr", **fields}
    return client.post(f"/payments/admin/invoices/{invoice_id}/request", data=data, headers=as_user("adm"))


def test_the_request_form_proposes_what_remains_in_the_administrators_language(client, host, admin, owed):
    host.locale = "fr"
    body = client.get(f"/payments/admin/invoices/{owed}/request", headers=as_user("adm")).get_data(as_text=True)
    assert 'name="amount" inputmode="decimal" value="300,00"' in body
    assert f'value="{(date.today() + timedelta(days=14)).isoformat()}"' in body
    assert '<option value="fr" selected>' in body


def test_a_request_is_sent_and_the_invoice_page_lists_it(client, db, admin, owed, backend):
    response = _ask(client, admin, owed, message="Merci de régler avant la session.")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/admin/invoices/{owed}")
    request = db.session.scalar(select(PaymentRequest))
    assert (request.amount, request.locale, request.created_by, request.status) == (9000, "fr", "adm", "open")
    assert [m.recipient for m in backend.sent] == ["lea@example.com"]
    page = client.get(response.headers["Location"], headers=as_user("adm"))
    assert "The payment request is sent." in text(page) and 'data-state="open"' in page.get_data(as_text=True)


@pytest.mark.parametrize("locale, typed, message", [
    ("fr", "12.50", "Écrivez le montant ainsi : 49,90"),
    ("en", "12,50", "Write the amount like 49.90"),
])
def test_a_requested_amount_written_the_other_way_is_refused_in_the_administrators_language(
        client, db, host, admin, owed, backend, locale, typed, message):
    host.locale = locale
    response = _ask(client, admin, owed, amount=typed)
    assert response.status_code == 400
    assert _field_errors(response)["amount"].startswith(message)
    assert f'value="{typed}"' in response.get_data(as_text=True)
    assert _count(db, PaymentRequest, RequestLink, Message) == (0, 0, 0)


@pytest.mark.parametrize("locale, typed", [("fr", "12,50"), ("en", "12.50")])
def test_a_requested_amount_written_the_administrators_way_is_read(client, db, host, admin, owed, backend, locale,
                                                                   typed):
    host.locale = locale
    assert _ask(client, admin, owed, amount=typed).status_code == 302
    assert db.session.scalar(select(PaymentRequest.amount)) == 1250


@pytest.mark.parametrize("fields, field, message", [
    ({"amount": "300.01"}, "amount", "At most what remains to be paid: €300.00."),
    ({"amount": "0.20"}, "amount", "Stripe cannot charge this amount in EUR."),
    ({"amount": ""}, "amount", "Enter an amount."),
    ({"due": "2020-01-01"}, "due", "The due date is in the past."),
    ({"due": "31/12/2030"}, "due", "Choose a date."),
    ({"message": "x" * 1001}, "message", "At most 1000 characters."),
    ({"message": "Bonjour\x07"}, "message", "Remove the control characters."),
    ({"email": ""}, "channels", "Choose how to send the request: e-mail, SMS or both."),
    ({"email": "", "sms": "on"}, "channels",
     "The LMS has no mobile phone number for this learner: send the request by e-mail."),
])
def test_each_refusal_of_the_request_form_is_shown_beside_its_field(client, db, admin, owed, backend, fields, field,
                                                                    message):
    response = _ask(client, admin, owed, **fields)
    assert response.status_code == 400
    assert _field_errors(response) == {field: message}
    assert "Some fields need your attention; nothing was sent." in text(response)
    assert _count(db, PaymentRequest, RequestLink, Message) == (0, 0, 0) and backend.sent == []


def test_every_refusal_of_the_request_form_is_shown_at_once(client, db, admin, owed, backend):
    response = _ask(client, admin, owed, amount="abc", due="2020-01-01", message="x\x07", email="")
    assert response.status_code == 400
    assert set(_field_errors(response)) == {"amount", "due", "message", "channels"}
    assert _count(db, PaymentRequest) == (0,)


def test_a_learner_whose_number_is_a_landline_is_refused_by_sms_and_nothing_is_kept(client, db, host, admin, owed,
                                                                                   backend, monkeypatch):
    """The host gives a number, but a landline: the form says so on its field (400, not a server error), and
    no request, link or e-mail is kept for a request that could not be sent as asked."""
    monkeypatch.setattr(host, "user_phone", lambda user: LANDLINE, raising=False)
    response = _ask(client, admin, owed, sms="on")
    assert response.status_code == 400
    assert _field_errors(response) == {
        "channels": "The LMS has no mobile phone number for this learner: send the request by e-mail."}
    assert _count(db, PaymentRequest, RequestLink, Message) == (0, 0, 0) and backend.sent == []


def test_nothing_is_asked_on_an_invoice_that_owes_nothing(client, db, admin, owed, backend):
    invoice = db.session.get(Invoice, owed)
    invoice.status, invoice.amount_paid, invoice.amount_remaining = "paid", 30000, 0
    db.session.commit()
    page = client.get(f"/payments/admin/invoices/{owed}/request", headers=as_user("adm"))
    assert page.status_code == 200 and "Nothing remains to be paid on this invoice." in text(page)
    assert 'id="send-request"' not in page.get_data(as_text=True)
    response = _ask(client, admin, owed)
    assert response.status_code == 400 and "Nothing remains to be paid on this invoice." in text(response)
    assert _count(db, PaymentRequest) == (0,)


def test_a_request_on_an_unknown_invoice_is_not_found(client, admin):
    assert client.get("/payments/admin/invoices/999/request", headers=as_user("adm")).status_code == 404


# -- the list of requests -------------------------------------------------------------------------------------

@pytest.fixture
def several(db, host, owed):
    """Four requests: Léa's open one, her paid one, her cancelled one, and Sam's overdue one."""
    sam_invoice = open_invoice(db, host, user_id="u2", stripe_id="in_test_open_2", number="ABC-0101")
    open_id, _t = open_request(db, owed)
    paid_id, _t = open_request(db, owed)
    cancelled_id, _t = open_request(db, owed)
    overdue_id, _t = open_request(db, sam_invoice, due_in_days=-2)
    for request_id, status in ((paid_id, "paid"), (cancelled_id, "cancelled")):
        db.session.get(PaymentRequest, request_id).status = status
    db.session.get(PaymentRequest, paid_id).amount_paid = 9000
    db.session.commit()
    return {"open": open_id, "paid": paid_id, "cancelled": cancelled_id, "overdue": overdue_id}


def _listed(client, query="") -> list[str]:
    body = client.get(f"/payments/admin/requests{query}", headers=as_user("adm")).get_data(as_text=True)
    return re.findall(r'data-state="(\w+)"', body)


def test_the_list_shows_each_request_with_its_state_newest_first(client, admin, several):
    assert _listed(client) == ["overdue", "cancelled", "paid", "open"]


@pytest.mark.parametrize("query, states", [
    ("?status=paid", ["paid"]),
    ("?status=overdue", ["overdue"]),
    ("?status=open", ["overdue", "open"]),
    ("?status=cancelled", ["cancelled"]),
    ("?status=nonsense", ["overdue", "cancelled", "paid", "open"]),
    ("?learner=u2", ["overdue"]),
    ("?invoice=ABC-0100", ["cancelled", "paid", "open"]),
    ("?invoice=ABC-9999", []),
])
def test_the_list_filters(client, admin, several, query, states):
    assert _listed(client, query) == states


def test_the_list_pages_older_requests(client, app, admin, several):
    app.config["LMS_STRIPE_PAGE_SIZE"] = 3
    body = client.get("/payments/admin/requests", headers=as_user("adm")).get_data(as_text=True)
    assert re.findall(r'data-state="(\w+)"', body) == ["overdue", "cancelled", "paid"]
    older = html.unescape(re.search(r'href="([^"]+)">Older', body).group(1))
    assert re.findall(r'data-state="(\w+)"', client.get(older, headers=as_user("adm")).get_data(as_text=True)) == \
        ["open"]


@pytest.mark.parametrize("after", ["99999999999999999999999", "-1", "x", "1.5"])
def test_a_cursor_that_is_not_a_request_id_is_refused(client, admin, several, after):
    response = client.get(f"/payments/admin/requests?after={after}", headers=as_user("adm"))
    assert response.status_code == 400


def test_the_csv_has_every_request_of_the_filter(client, db, admin, several):
    response = client.get("/payments/admin/requests.csv?learner=u1", headers=as_user("adm"))
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["request", "invoice", "learner", "currency", "asked", "paid", "due", "status", "created"]
    assert [(r[0], r[1], r[2], r[4], r[5], r[7]) for r in rows[1:]] == [
        (str(several["cancelled"]), "ABC-0100", "Léa", "90.00", "0.00", "cancelled"),
        (str(several["paid"]), "ABC-0100", "Léa", "90.00", "90.00", "paid"),
        (str(several["open"]), "ABC-0100", "Léa", "90.00", "0.00", "open")]


def test_the_csv_never_holds_a_formula(client, db, admin, owed):
    db.session.get(Invoice, owed).user_name = "=HYPERLINK(\"https://evil.test\")"
    db.session.commit()
    open_request(db, owed)
    rows = list(csv.reader(io.StringIO(client.get("/payments/admin/requests.csv", headers=as_user("adm"))
                                       .get_data(as_text=True))))
    assert rows[1][2].startswith("'=")


@pytest.fixture
def late(db, host, owed):
    """Five requests of Léa's past their due date, oldest first: one whose invoice was paid otherwise (the
    request still open), one paid in full and still open, one whose payment was taken and is being credited,
    one whose bank debit is processing, and one that still asks for its 90 €."""
    ids = {}
    for n, name in enumerate(("paid_otherwise", "paid_in_full", "being_credited", "processing", "asking")):
        invoice_id = open_invoice(db, host, stripe_id=f"in_test_late_{n}", number=f"LATE-000{n}")
        ids[name], _t = open_request(db, invoice_id, due_in_days=-3)
    invoice = db.session.get(Invoice, db.session.get(PaymentRequest, ids["paid_otherwise"]).invoice_id)
    invoice.status, invoice.amount_paid, invoice.amount_remaining = "paid", invoice.gross, 0
    db.session.get(PaymentRequest, ids["paid_in_full"]).amount_paid = 9000
    db.session.commit()
    open_attempt(db, ids["being_credited"], session_id="cs_test_late_taken", status="paid")
    open_attempt(db, ids["processing"], session_id="cs_test_late_debit", status="processing")
    return ids


def test_a_late_request_with_nothing_left_to_ask_is_not_overdue(client, admin, late):
    """Only the request that still asks for something reads "Overdue" (and is reminded of, from its invoice's
    page): the others have nothing left to pay, or the learner's payment is under way."""
    page = client.get("/payments/admin/requests", headers=as_user("adm"))
    assert re.findall(r'data-state="(\w+)"', page.get_data(as_text=True)) == \
        ["overdue", "paying", "paying", "nothing_left", "nothing_left"]
    assert text(page).count("Overdue") == 2  # the filter's choice, and the one request's badge
    assert "Nothing left to pay" in text(page) and "Payment processing" in text(page)
    assert _listed(client, "?status=overdue") == ["overdue"]
    rows = list(csv.reader(io.StringIO(client.get("/payments/admin/requests.csv", headers=as_user("adm"))
                                       .get_data(as_text=True))))
    assert [(row[1], row[7]) for row in rows[1:]] == [
        ("LATE-0004", "overdue"), ("LATE-0003", "paying"), ("LATE-0002", "paying"), ("LATE-0001", "nothing_left"),
        ("LATE-0000", "nothing_left")]


# -- sending again, cancelling -------------------------------------------------------------------------------

def test_sending_again_from_the_list_writes_new_messages(client, db, admin, several, backend):
    response = client.post(f"/payments/admin/requests/{several['open']}/resend", data={"csrf_token": admin},
                           headers=as_user("adm"))
    assert response.status_code == 302 and response.headers["Location"].endswith("/payments/admin/requests")
    assert [m.recipient for m in backend.sent] == ["lea@example.com"]
    assert "The payment request is sent again." in text(client.get("/payments/admin/requests",
                                                                   headers=as_user("adm")))


def test_sending_again_from_the_invoice_goes_back_to_the_invoice(client, admin, owed, several, backend):
    response = client.post(f"/payments/admin/requests/{several['open']}/resend",
                           data={"csrf_token": admin, "next_invoice": "1"}, headers=as_user("adm"))
    assert response.headers["Location"].endswith(f"/payments/admin/invoices/{owed}")


def test_a_closed_request_is_not_sent_again(client, db, admin, several, backend):
    response = client.post(f"/payments/admin/requests/{several['cancelled']}/resend", data={"csrf_token": admin},
                           headers=as_user("adm"))
    assert response.status_code == 302 and backend.sent == []
    assert "Only an open payment request is sent again." in text(client.get("/payments/admin/requests",
                                                                           headers=as_user("adm")))
    assert _count(db, Message) == (0,)


def test_cancelling_expires_the_checkout_under_way(client, db, admin, owed, several, stripe_http):
    attempt = open_attempt(db, several["open"], session_id="cs_test_under_way")
    expire = stub_expire(stripe_http, "cs_test_under_way")
    response = client.post(f"/payments/admin/requests/{several['open']}/cancel", data={"csrf_token": admin},
                           headers=as_user("adm"))
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/admin/invoices/{owed}")
    db.session.expire_all()
    assert db.session.get(PaymentRequest, several["open"]).status == "cancelled"
    assert db.session.get(PaymentAttempt, attempt.id).status == "expired" and expire.call_count == 1
    page = client.get(response.headers["Location"], headers=as_user("adm"))
    assert "The payment request is cancelled." in text(page)


def test_cancelling_twice_says_so(client, db, admin, several):
    response = client.post(f"/payments/admin/requests/{several['paid']}/cancel", data={"csrf_token": admin},
                           headers=as_user("adm"))
    assert response.status_code == 302
    page = client.get(response.headers["Location"], headers=as_user("adm"))
    assert "Only an open payment request can be cancelled." in text(page)
    db.session.expire_all()
    assert db.session.get(PaymentRequest, several["paid"]).status == "paid"


@pytest.mark.parametrize("action", ["resend", "cancel"])
def test_an_unknown_request_is_not_found(client, admin, action):
    response = client.post(f"/payments/admin/requests/999/{action}", data={"csrf_token": admin},
                           headers=as_user("adm"))
    assert response.status_code == 404
