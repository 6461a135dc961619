"""Payment links: an administrator creates one (its address, its button, its payments, disabling it), and
anyone pays it from its public page, through one Checkout Session per Pay click (Stripe's HTTP stubbed with
`responses`: any call not registered fails the test). Its uses are counted by the database: a Checkout under
way holds one, a payment counts one, and two payers racing for the last one cannot both pay."""
from __future__ import annotations

import json
import re
import threading
import uuid
from datetime import timedelta

import pytest
import responses
import sqlalchemy as sa
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from lms_stripe_plugin.billing import paying, payment_links
from lms_stripe_plugin.core.enums import AuditAction
from lms_stripe_plugin.core.models import (AuditEntry, Invoice, PaymentAttempt, PaymentLink, TaxRate, utcnow)
from lms_stripe_plugin.testing import post_webhook
from lms_stripe_plugin.web import link_button

from .conftest import KEYS, ON_POSTGRES, STRIPE, as_user, form_body, stripe_object
from .link_support import link_invoice, link_session, make_link, yesterday
from .stripe_stubs import event

SECRET = KEYS["webhook_secrets"][0]
SESSIONS = f"{STRIPE}/v1/checkout/sessions"


@pytest.fixture
def school(app, db, people, configured, stripe_http):
    """Payments on; Stripe's HTTP stubbed, so that a call a test did not register fails it."""
    return app


def _csrf(client, path: str, user: str | None = None) -> str:
    """The form token of this client's session, from ``path``'s page (or, where that page has no form, from the
    administrators' new-link page: the token belongs to the browser's session, whoever is signed in)."""
    page = client.get(path, headers=as_user(user) if user else {}).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if found is None:
        return _csrf(client, "/payments/admin/links/new", "adm")
    return found.group(1)


def _stub_session(stripe_http, session_id="cs_test_link_1"):
    return stripe_http.add(responses.POST, SESSIONS, json=stripe_object(
        "checkout_session", id=session_id, url=f"https://checkout.stripe.com/c/pay/{session_id}", status="open"))


def _stub_tax_rate(stripe_http, rate_id="txr_test_20"):
    return stripe_http.add(responses.POST, f"{STRIPE}/v1/tax_rates",
                           json=stripe_object("tax_rate", id=rate_id, percentage=20, inclusive=True, country="FR"))


def _pay(client, token: str, user: str | None = None, **fields):
    path = f"/payments/link/{token}"
    data = {"csrf_token": _csrf(client, path, user), **fields}
    return client.post(path, data=data, headers=as_user(user) if user else {})


def _plain(text: str) -> str:
    """Text with the spaces Babel writes in amounts (no-break, narrow no-break) as plain spaces."""
    return text.replace("\u00a0", " ").replace("\u202f", " ")


def _link(db, link_id: int) -> PaymentLink:
    db.session.expire_all()
    return db.session.get(PaymentLink, link_id)


def _attempts(db) -> int:
    return db.session.scalar(select(func.count()).select_from(PaymentAttempt))


def _send(client, event_type: str, obj: dict, event_id: str) -> None:
    response = post_webhook(client, event(event_type, obj, event_id), SECRET)
    assert response.status_code == 200, response.get_json()


# -- the administrators' pages ---------------------------------------------------------------------------------

def test_an_administrator_creates_a_free_amount_link_and_gets_its_address_and_button(client, db, school):
    path = "/payments/admin/links/new"
    response = client.post(path, headers=as_user("adm"), data={
        "csrf_token": _csrf(client, path, "adm"), "title": "Voyage à Lyon", "purpose": "Frais du voyage d'étude",
        "kind": "free", "minimum": "10", "maximum": "500.00", "currency": "eur", "vat_rate": "5.5",
        "max_uses": "30", "expires_on": (utcnow().date() + timedelta(days=60)).isoformat()})
    assert response.status_code == 302, response.get_data(as_text=True)
    link = db.session.scalar(select(PaymentLink))
    assert (link.amount, link.minimum, link.maximum, link.currency, link.vat_rate, link.max_uses) == \
        (None, 1000, 50000, "EUR", 550, 30)
    page = client.get(response.headers["Location"], headers=as_user("adm")).get_data(as_text=True)
    address = re.search(r'id="link-url" readonly value="([^"]+)"', page).group(1)
    token = address.rsplit("/", 1)[1]
    assert re.fullmatch(rf"https?://lms\.test/payments/link/{token}", address) and len(token) == 43
    # Only a hash and a ciphertext are stored: the database alone opens no page.
    assert token not in (link.token_hash, link.token_encrypted)
    snippet = re.search(r'<textarea id="button-snippet"[^>]*>([^<]+)</textarea>', page).group(1)
    assert f'&lt;a href=&#34;{address}&#34;' in snippet and "style=&#34;display:inline-block" in snippet
    assert f"{address}/button.js" in page
    assert client.get(f"/payments/link/{token}").status_code == 200
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == AuditAction.PAYMENT_LINK_CREATED))
    assert entry.actor_id == "adm"
    audit = _plain(client.get("/payments/admin/audit", headers=as_user("adm")).get_data(as_text=True))
    assert "The payment link “Voyage à Lyon” was created, for €10.00 to €500.00." in audit


@pytest.mark.parametrize("fields, field, message", [
    ({"kind": "free", "minimum": "50", "maximum": "10"}, "maximum", "The maximum must be at least the minimum."),
    ({"kind": "fixed", "amount": "12.345"}, "amount", "EUR takes at most 2 decimals."),
    ({"kind": "fixed", "amount": "0.20"}, "amount", "Stripe&#39;s minimum for EUR is €0.50."),
    ({"kind": "fixed", "amount": "abc"}, "amount", "Write the amount like"),
    ({"kind": "fixed", "amount": "10", "currency": "XXX"}, "currency", "Choose a currency Stripe supports"),
    ({"kind": "fixed", "amount": "10", "learner": "nobody"}, "learner", "Enter the id of a learner"),
    ({"kind": "fixed", "amount": "10", "max_uses": "0"}, "max_uses", "Enter a number of uses from 1"),
    ({"kind": "fixed", "amount": "10", "max_uses": "٣"}, "max_uses", "Enter a number of uses from 1"),
    ({"kind": "fixed", "amount": "10", "expires_on": "2001-01-01"}, "expires_on", "The end date is in the past."),
    ({"kind": "fixed", "amount": "10", "vat_rate": "120"}, "vat_rate", "Enter a VAT rate between 0 and 100"),
    ({"kind": "fixed", "amount": "10", "title": ""}, "title", "Enter a title."),
])
def test_a_link_refused_says_why_on_its_field_and_writes_nothing(client, db, school, fields, field, message):
    path = "/payments/admin/links/new"
    data = {"csrf_token": _csrf(client, path, "adm"), "title": "Cotisation", "purpose": "Cotisation annuelle",
            "currency": "EUR", "vat_rate": "20", **fields}
    response = client.post(path, headers=as_user("adm"), data=data)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert re.search(rf'id="{field}-error" role="alert">[^<]*{re.escape(message)}', page), page
    assert db.session.scalar(select(func.count()).select_from(PaymentLink)) == 0


def test_the_service_checks_again_and_the_table_refuses_what_slips_past(app, db, school):
    state = app.extensions["lms_stripe"]
    with pytest.raises(payment_links.ValidationFailed) as refused:
        payment_links.create(state, payment_links.LinkInput(title="x", purpose="y", currency="EUR", vat_rate=2000,
                                                            minimum=5000, maximum=1000), actor_id="adm")
    assert "maximum" in refused.value.errors
    db.session.rollback()
    for bad in ({"amount": 1000, "minimum": 500, "maximum": 2000}, {"amount": None, "minimum": 5000, "maximum": 10},
                {"amount": 0}, {"amount": 1000, "max_uses": 0}, {"amount": 1000, "held": -1}):
        values = {"token_hash": f"h{len(str(bad))}{sorted(bad)}", "token_encrypted": "x", "title": "t", "purpose": "p",
                  "currency": "EUR", "vat_rate": 0, "uses": 0, "held": 0, "status": "active", "created_at": utcnow(),
                  "minimum": None, "maximum": None, **bad}
        with pytest.raises(IntegrityError):
            with db.session.begin_nested():
                db.session.execute(sa.insert(PaymentLink).values(**values))
    db.session.rollback()


def test_disabling_a_link_expires_its_open_checkouts_and_its_page_says_so(client, db, school, stripe_http):
    link_id, token = make_link(db)
    _stub_tax_rate(stripe_http)
    _stub_session(stripe_http)
    assert _pay(client, token, amount="25", name="Zoé", email="zoe@example.org").status_code == 303
    expire = stripe_http.add(responses.POST, f"{SESSIONS}/cs_test_link_1/expire",
                             json=stripe_object("checkout_session", id="cs_test_link_1", status="expired"))
    path = f"/payments/admin/links/{link_id}"
    response = client.post(f"{path}/disable", headers=as_user("adm"), data={"csrf_token": _csrf(client, path, "adm")})
    assert response.status_code == 302
    assert len(expire.calls) == 1  # after the commit
    link = _link(db, link_id)
    assert (link.status, link.held, link.disabled_by) == ("disabled", 0, "adm")
    assert db.session.scalar(select(PaymentAttempt.status)) == "expired"
    page = client.get(f"/payments/link/{token}").get_data(as_text=True)
    assert "This payment link is disabled" in page and 'name="amount"' not in page
    audit = client.get("/payments/admin/audit", headers=as_user("adm")).get_data(as_text=True)
    assert "The payment link “Voyage d&#39;étude à Lyon” was disabled." in audit
    again = client.post(f"{path}/disable", headers=as_user("adm"), data={"csrf_token": _csrf(client, path, "adm")})
    assert "This payment link is disabled already." in client.get(again.headers["Location"],
                                                                headers=as_user("adm")).get_data(as_text=True)


# -- paying from the public page -----------------------------------------------------------------------------------

def test_someone_not_signed_in_pays_a_free_amount_typed_in_french(client, db, host, school, stripe_http):
    link_id, token = make_link(db)
    host.locale = "fr"
    page = _plain(client.get(f"/payments/link/{token}").get_data(as_text=True))
    assert "De 10,00 € à 500,00 € TTC." in page and 'id="name"' in page and 'id="email"' in page
    rate, created = _stub_tax_rate(stripe_http), _stub_session(stripe_http)
    response = _pay(client, token, amount="1 234,50", name="Zoé Dupont", email="zoe@example.org")
    assert response.status_code == 400 and "Le montant ne doit pas dépasser 500,00 €." in _plain(response.get_data(as_text=True))
    response = _pay(client, token, amount="49,90", name="Zoé Dupont", email="zoe@example.org")
    assert response.status_code == 303 and response.headers["Location"] == "https://checkout.stripe.com/c/pay/cs_test_link_1"
    attempt = db.session.scalar(select(PaymentAttempt))
    sent = form_body(created.calls[0].request)
    assert created.calls[0].request.headers["Idempotency-Key"] == f"lms-link-{link_id}-{attempt.id}"
    assert form_body(rate.calls[0].request)["inclusive"] == "true"
    assert {key: sent[key] for key in (
        "mode", "line_items[0][price_data][unit_amount]", "line_items[0][price_data][currency]",
        "line_items[0][price_data][tax_behavior]", "line_items[0][tax_rates][0]", "invoice_creation[enabled]",
        "invoice_creation[invoice_data][custom_fields][0][name]", "invoice_creation[invoice_data][custom_fields][0][value]",
        "invoice_creation[invoice_data][metadata][lms_link_id]", "metadata[lms_attempt_id]", "client_reference_id",
        "customer_email", "customer_creation", "locale")} == {
        "mode": "payment", "line_items[0][price_data][unit_amount]": "4990",
        "line_items[0][price_data][currency]": "eur", "line_items[0][price_data][tax_behavior]": "inclusive",
        "line_items[0][tax_rates][0]": "txr_test_20", "invoice_creation[enabled]": "true",
        "invoice_creation[invoice_data][custom_fields][0][name]": "Payé par",
        "invoice_creation[invoice_data][custom_fields][0][value]": "Zoé Dupont",
        "invoice_creation[invoice_data][metadata][lms_link_id]": str(link_id),
        "metadata[lms_attempt_id]": str(attempt.id), "client_reference_id": f"lms-attempt-{attempt.id}",
        "customer_email": "zoe@example.org", "customer_creation": "always", "locale": "fr"}
    assert "customer" not in sent
    assert re.fullmatch(rf"https?://lms\.test/payments/link/{token}\?session_id=\{{CHECKOUT_SESSION_ID\}}",
                        sent["success_url"])
    assert (attempt.amount, attempt.payer_name, attempt.payer_email, attempt.payer_user_id) == \
        (4990, "Zoé Dupont", "zoe@example.org", None)
    assert _link(db, link_id).held == 1
    assert db.session.scalar(select(TaxRate.stripe_tax_rate_id)) == "txr_test_20"  # created once, remembered


def test_a_second_click_of_the_same_payer_reuses_the_open_checkout(client, db, school, stripe_http):
    link_id, token = make_link(db, vat_rate=0)
    created = _stub_session(stripe_http)
    for _ in range(2):
        response = _pay(client, token, amount="30", name="Zoé", email="zoe@example.org")
        assert response.headers["Location"] == "https://checkout.stripe.com/c/pay/cs_test_link_1"
    assert len(created.calls) == 1 and _attempts(db) == 1 and _link(db, link_id).held == 1
    assert "line_items[0][tax_rates][0]" not in form_body(created.calls[0].request)


def test_the_paid_session_counts_a_use_and_records_the_invoice_in_either_order(client, db, school):
    link_id, token = make_link(db, max_uses=5)
    for order, (session_first, suffix) in enumerate(((True, "a"), (False, "b"))):
        attempt = _open_attempt(db, link_id, email=f"payer{suffix}@example.org", name=f"Payer {suffix}",
                                session_id=f"cs_test_link_{suffix}")
        stripe_invoice = link_invoice(attempt, invoice_id=f"in_test_link_{suffix}", number=f"ABC-020{order}")
        session = link_session(attempt, invoice=stripe_invoice["id"])
        steps = [("checkout.session.completed", session), ("invoice.paid", stripe_invoice)]
        for number, (event_type, obj) in enumerate(steps if session_first else steps[::-1]):
            _send(client, event_type, obj, f"evt_{suffix}_{number}")
        _send(client, "checkout.session.completed", session, f"evt_{suffix}_again")  # doubled: nothing more
        db.session.expire_all()
        invoice = db.session.scalar(select(Invoice).where(Invoice.stripe_invoice_id == stripe_invoice["id"]))
        assert (invoice.source, invoice.user_id, invoice.user_name, invoice.user_email, invoice.status) == \
            ("link", None, f"Payer {suffix}", f"payer{suffix}@example.org", "paid")
        assert (invoice.gross, invoice.vat, invoice.net, invoice.course_title) == (4990, 832, 4158, "Voyage d'étude à Lyon")
        assert [(line.vat_rate, line.gross) for line in invoice.lines] == [(2000, 4990)]
        assert db.session.get(PaymentAttempt, attempt.id).invoice_id == invoice.id
    link = _link(db, link_id)
    assert (link.uses, link.held) == (2, 0)
    page = client.get(f"/payments/admin/links/{link_id}", headers=as_user("adm")).get_data(as_text=True)
    assert "Payer a" in page and "ABC-0200" in page and "ABC-0201" in page and "2 of 5" in page
    # The administrators see its invoices among every invoice, billed to whoever paid.
    invoice_page = client.get(f"/payments/admin/invoices/{invoice.id}", headers=as_user("adm"))
    assert invoice_page.status_code == 200 and "Payer b" in invoice_page.get_data(as_text=True)
    listing = client.get("/payments/admin/invoices", headers=as_user("adm")).get_data(as_text=True)
    assert "ABC-0200" in listing and "Payer a" in listing
    export = client.get("/payments/admin/invoices.csv", headers=as_user("adm")).get_data(as_text=True)
    assert re.search(r"ABC-0201,[^\n]*Payment link,payerb@example\.org,Payer b,Voyage d'étude à Lyon,EUR", export), export
    audit = client.get("/payments/admin/audit", headers=as_user("adm")).get_data(as_text=True)
    assert "Payer a paid €49.90 through the payment link “Voyage d&#39;étude à Lyon”." in _plain(audit)


def test_a_newer_change_of_the_links_invoice_records_it_when_the_older_paid_event_comes_late(client, db, school):
    link_id, _token = make_link(db)
    attempt = _open_attempt(db, link_id)
    stripe_invoice = link_invoice(attempt)
    _send(client, "checkout.session.completed", link_session(attempt, invoice=stripe_invoice["id"]), "evt_session")
    for event_type, event_id, created in (("invoice.updated", "evt_updated", 300), ("invoice.paid", "evt_paid", 200)):
        body = event(event_type, stripe_invoice, event_id)
        body["created"] = created
        response = post_webhook(client, body, SECRET)
        assert response.status_code == 200, response.get_json()
        assert response.json["status"] == ("handled" if event_type == "invoice.updated" else "outdated")
    db.session.expire_all()
    (invoice,) = db.session.scalars(select(Invoice)).all()
    assert (invoice.stripe_invoice_id, invoice.number, invoice.source) == ("in_test_link_1", "ABC-0200", "link")
    assert db.session.get(PaymentAttempt, attempt.id).invoice_id == invoice.id


def _open_attempt(db, link_id: int, *, amount=4990, email="zoe@example.org", name="Zoé", user_id=None,
                  session_id="cs_test_link_1", expires_in=timedelta(hours=1)) -> PaymentAttempt:
    """A Pay click on the link, its use held, as `payment_links.reserve` and `paying.open_session` leave it."""
    link = _link(db, link_id)
    assert paying.hold_use(db.session, link, amount)
    attempt = PaymentAttempt(link_id=link_id, amount=amount, currency="EUR", status="open",
                             stripe_checkout_session_id=session_id, payer_name=name, payer_email=email,
                             payer_user_id=user_id, checkout_url=f"https://checkout.stripe.com/c/pay/{session_id}",
                             expires_at=utcnow().replace(microsecond=0) + expires_in)
    db.session.add(attempt)
    db.session.commit()
    return attempt


def test_a_click_while_the_payers_checkout_is_being_opened_waits_for_it(client, db, school, stripe_http):
    """The payer's first click is opening its Checkout (Stripe has not answered yet): a second click, another
    tab, is asked to wait rather than retire it, whose session would then be payable with nothing to expire it;
    past a minute (Stripe's answer was lost) it replaces it."""
    link_id, token = make_link(db, vat_rate=0)
    first = _open_attempt(db, link_id, amount=3000, session_id=None)
    first.checkout_url = None
    db.session.commit()
    waiting = _pay(client, token, amount="40", name="Zoé", email="zoe@example.org")
    assert waiting.status_code == 409 and "Your payment page is being opened: try again in a minute." in \
        waiting.get_data(as_text=True)
    assert not stripe_http.calls and db.session.get(PaymentAttempt, first.id).status == "open"
    first = db.session.get(PaymentAttempt, first.id)
    first.created_at = utcnow() - paying.OPENING_MARGIN - timedelta(seconds=1)
    db.session.commit()
    _stub_session(stripe_http)
    assert _pay(client, token, amount="40", name="Zoé", email="zoe@example.org").status_code == 303
    db.session.expire_all()
    assert db.session.get(PaymentAttempt, first.id).status == "expired" and _link(db, link_id).held == 1


def test_a_checkout_opened_for_a_click_replaced_meanwhile_is_expired(client, db, school, stripe_http):
    """Stripe answers a click after a newer click replaced it: its session is recorded, expired at Stripe, and
    the payer is told to reload; only the newer Checkout can be paid."""
    link_id, token = make_link(db, vat_rate=0)

    def replaced_while_stripe_answers(request):
        db.session.execute(update(PaymentAttempt).values(status="expired").execution_options(
            synchronize_session=False))
        return 200, {}, json.dumps(stripe_object("checkout_session", id="cs_test_link_1", status="open",
                                                 url="https://checkout.stripe.com/c/pay/cs_test_link_1"))

    stripe_http.add_callback(responses.POST, SESSIONS, callback=replaced_while_stripe_answers)
    expire = stripe_http.add(responses.POST, f"{SESSIONS}/cs_test_link_1/expire", json=stripe_object(
        "checkout_session", id="cs_test_link_1", status="expired"))
    response = _pay(client, token, amount="30", name="Zoé", email="zoe@example.org")
    assert response.status_code == 409 and "This payment page was replaced by a newer one: reload the page." in \
        response.get_data(as_text=True)
    assert expire.call_count == 1
    db.session.expire_all()
    (attempt,) = db.session.scalars(select(PaymentAttempt)).all()
    assert (attempt.status, attempt.stripe_checkout_session_id) == ("expired", "cs_test_link_1")


def test_an_expired_checkout_gives_its_use_back(client, db, school):
    link_id, _token = make_link(db, max_uses=1)
    attempt = _open_attempt(db, link_id)
    assert _link(db, link_id).held == 1
    _send(client, "checkout.session.expired", link_session(attempt, status="expired", payment_status="unpaid",
                                                           intent=None), "evt_expired")
    link = _link(db, link_id)
    assert (link.uses, link.held, db.session.get(PaymentAttempt, attempt.id).status) == (0, 0, "expired")


def test_the_last_use_goes_to_one_payer_only(client, db, school, stripe_http):
    link_id, token = make_link(db, max_uses=1, vat_rate=0)
    created = _stub_session(stripe_http)
    assert _pay(client, token, amount="30", name="Zoé", email="zoe@example.org").status_code == 303
    second = _pay(client, token, amount="30", name="Yann", email="yann@example.org")
    assert second.status_code == 409 and "Every use of this payment link is taken" in second.get_data(as_text=True)
    assert len(created.calls) == 1 and _attempts(db) == 1
    # The database decides, whatever a page checked: with its last use held, no other hold is taken.
    assert not paying.hold_use(db.session, _link(db, link_id), 3000)


def test_a_checkout_expired_without_its_event_frees_its_use_for_the_next_payer(client, db, school, stripe_http):
    link_id, token = make_link(db, max_uses=1, vat_rate=0)
    stale = _open_attempt(db, link_id, amount=3000, expires_in=-timedelta(minutes=10))
    _stub_session(stripe_http, "cs_test_link_2")
    response = _pay(client, token, amount="30", name="Yann", email="yann@example.org")
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(PaymentAttempt, stale.id).status == "expired"
    assert (_link(db, link_id).held, _attempts(db)) == (1, 2)


def test_a_session_paid_after_its_use_was_let_go_is_still_counted(client, db, school):
    link_id, _token = make_link(db, max_uses=1)
    attempt = _open_attempt(db, link_id)
    _send(client, "checkout.session.expired", link_session(attempt, status="expired", payment_status="unpaid",
                                                           intent=None), "evt_1")
    _send(client, "checkout.session.completed", link_session(attempt), "evt_2")  # Stripe took the money
    link = _link(db, link_id)
    assert (link.uses, link.held, db.session.get(PaymentAttempt, attempt.id).status) == (1, 0, "paid")


@pytest.mark.parametrize("typed, message", [
    ("5", "The amount must be at least €10.00."),
    ("500.01", "The amount must be at most €500.00."),
    ("49.999", "EUR takes at most 2 decimals."),
    ("49,90", "Write the amount like"),  # English: a comma groups thousands, so this is not an amount
    ("-20", "Write the amount like"),
    ("1e3", "Write the amount like"),
    ("abc", "Write the amount like"),
    ("<script>alert(1)</script>", "Write the amount like"),
    ("9" * 400, "Stripe's maximum for one payment is €999,999.99."),
    ("", "Enter an amount."),
    ("¥30", "is not the symbol of EUR"),
])
def test_a_free_amount_outside_the_limits_or_not_an_amount_is_refused_clearly(client, db, school, typed, message):
    _link_id, token = make_link(db)
    response = _pay(client, token, amount=typed, name="Zoé", email="zoe@example.org")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert re.search(r'id="amount-error" role="alert">[^<]*' + re.escape(message.replace("'", "&#39;")), page), page
    assert "<script>alert" not in page and _attempts(db) == 0  # and no call to Stripe: none is stubbed


@pytest.mark.parametrize("fields, field, message", [
    ({"name": "", "email": "zoe@example.org"}, "name", "Enter your name."),
    ({"name": "Zoé", "email": ""}, "email", "Enter your e-mail address"),
    ({"name": "Zoé", "email": "zoe@"}, "email", "Enter an e-mail address such as"),
    ({"name": "Zoé", "email": "a@b.c, d@e.f"}, "email", "Enter an e-mail address such as"),
    ({"name": "Zo\x07é", "email": "zoe@example.org"}, "name", "Remove the control characters."),
    ({"name": "Z" * 141, "email": "zoe@example.org"}, "name", "At most 140 characters."),
])
def test_someone_not_signed_in_must_say_who_pays(client, db, school, fields, field, message):
    _link_id, token = make_link(db, amount=2500)
    response = _pay(client, token, **fields)
    assert response.status_code == 400
    assert re.search(rf'id="{field}-error" role="alert">[^<]*{re.escape(message)}', response.get_data(as_text=True))
    assert _attempts(db) == 0


@pytest.mark.parametrize("changes, message", [
    ({"status": "disabled"}, "This payment link is disabled"),
    ({"expires_at": "yesterday"}, "This payment link has expired"),
    ({"max_uses": 2, "uses": 2}, "This payment link has been used as many times as it allows"),
])
def test_a_disabled_expired_or_used_up_link_says_so_and_takes_nothing(client, db, school, changes, message):
    changes = {k: yesterday() if v == "yesterday" else v for k, v in changes.items()}
    link_id, token = make_link(db, **changes)
    page = client.get(f"/payments/link/{token}")
    assert page.status_code == 200 and message in page.get_data(as_text=True)
    assert 'name="amount"' not in page.get_data(as_text=True)
    response = _pay(client, token, amount="30", name="Zoé", email="zoe@example.org")
    assert response.status_code == 409 and message in response.get_data(as_text=True)
    assert _attempts(db) == 0 and _link(db, link_id).held == 0
    # Written twice: the database takes no hold on it either.
    assert not paying.hold_use(db.session, _link(db, link_id), 3000)


def test_the_database_refuses_an_amount_outside_the_links_limits(db, school):
    link_id, _token = make_link(db)
    link = _link(db, link_id)
    assert not paying.hold_use(db.session, link, 999) and not paying.hold_use(db.session, link, 50001)
    assert paying.hold_use(db.session, link, 50000)
    fixed_id, _ = make_link(db, amount=2500)
    assert not paying.hold_use(db.session, _link(db, fixed_id), 2600)


def test_an_unknown_or_malformed_token_is_not_found(client, db, school):
    make_link(db)
    for token in ("nope", "A" * 43, "x" * 300):
        assert client.get(f"/payments/link/{token}").status_code == 404
        assert client.get(f"/payments/link/{token}/button.js").status_code == 404
    assert client.get("/payments/link/%00").status_code == 400  # refused before any lookup


def test_a_link_for_one_learner_is_paid_by_that_learner_signed_in_only(client, db, school, stripe_http):
    link_id, token = make_link(db, user_id="u1", amount=12000, vat_rate=0)
    anonymous = client.get(f"/payments/link/{token}").get_data(as_text=True)
    assert "sign in to pay" in anonymous and 'id="pay"' not in anonymous
    assert _pay(client, token).status_code == 401
    other = client.get(f"/payments/link/{token}", headers=as_user("u2"))
    assert other.status_code == 403 and "for another learner" in other.get_data(as_text=True)
    assert _pay(client, token, "u2").status_code == 403 and _attempts(db) == 0
    created = _stub_session(stripe_http)
    page = client.get(f"/payments/link/{token}", headers=as_user("u1")).get_data(as_text=True)
    assert "You pay as Léa." in page and 'id="email"' not in page
    assert _pay(client, token, "u1").status_code == 303
    sent = form_body(created.calls[0].request)
    assert (sent["customer_email"], sent["metadata[lms_user_id]"], sent["line_items[0][price_data][unit_amount]"]) == \
        ("lea@example.com", "u1", "12000")
    attempt = db.session.scalar(select(PaymentAttempt))
    assert (attempt.payer_user_id, attempt.payer_name) == ("u1", "Léa")


def test_the_button_script_opens_the_page_built_from_the_public_address(app, client, db, school):
    app.config["LMS_STRIPE_PUBLIC_URL"] = "https://ecole.example.org"
    _link_id, token = make_link(db)
    response = client.get(f"/payments/link/{token}/button.js", headers={"Host": "evil.example.com"})
    assert response.status_code == 200 and response.mimetype == "text/javascript"
    body = response.get_data(as_text=True)
    assert f'"https://ecole.example.org/payments/link/{token}"' in body and "evil" not in body
    assert "window.open" in body and response.headers["Cache-Control"] == "public, max-age=300"


def test_the_pay_page_fits_a_phone_and_keeps_its_address_out_of_referers(client, db, school):
    _link_id, token = make_link(db)
    response = client.get(f"/payments/link/{token}")
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in response.get_data(as_text=True)


def test_the_button_escapes_a_title_and_needs_nothing_of_ours(client, db, school):
    link_id, token = make_link(db, title='Sortie "ski" <script>alert(1)</script> & co')
    page = client.get(f"/payments/admin/links/{link_id}", headers=as_user("adm")).get_data(as_text=True)
    assert "<script>alert(1)" not in page
    snippet = payment_links_snippet(db, link_id)
    assert snippet.startswith(f'<a href="http://lms.test/payments/link/{token}" target="_blank" rel="noopener" style="')
    assert snippet.endswith('>Pay: Sortie "ski" &lt;script&gt;alert(1)&lt;/script&gt; &amp; co</a>')
    assert "class=" not in snippet and "<script" not in snippet  # inline style, no script of ours needed


def payment_links_snippet(db, link_id: int) -> str:
    link = _link(db, link_id)
    return link_button.snippet(payment_links.page_url(link), f"Pay: {link.title}")


@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="two payers racing on one row need PostgreSQL")
def test_two_payers_clicking_at_once_for_the_last_use_cannot_both_pay(app, db, school, stripe_http):
    """Two Pay clicks at the same moment (two requests, two connections) on a link with one use left: the
    conditional UPDATE of the link's row lets one hold it; the other is told, and opens no Checkout."""
    _link_id, token = make_link(db, max_uses=3, uses=2, vat_rate=0)
    created = stripe_http.add_callback(responses.POST, SESSIONS, content_type="application/json",
                                       callback=lambda request: (200, {}, json.dumps(stripe_object(
                                           "checkout_session", id=f"cs_test_race_{uuid.uuid4().hex[:8]}",
                                           url="https://checkout.stripe.com/c/pay/cs_test_race", status="open"))))
    ready, statuses, failures = threading.Barrier(2, timeout=30), [], []

    def click(name):
        try:
            with app.app_context():
                client = app.test_client()
                token_value = _csrf(client, f"/payments/link/{token}")
                ready.wait()
                statuses.append(client.post(f"/payments/link/{token}", data={
                    "csrf_token": token_value, "amount": "30", "name": name, "email": f"{name}@example.org"}).status_code)
        except Exception as err:  # noqa: BLE001 - reported below
            failures.append(err)

    db.session.commit()
    threads = [threading.Thread(target=click, args=(name,)) for name in ("zoe", "yann")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == [] and sorted(statuses) == [303, 409]
    assert len(created.calls) == 1 and _attempts(db) == 1
    link = db.session.scalar(select(PaymentLink))
    db.session.refresh(link)
    assert (link.uses, link.held) == (2, 1)


def test_with_payments_off_the_page_says_so_and_a_click_pays_nothing(client, db, people, stripe_http):
    _link_id, token = make_link(db)  # payments never enabled (no "configured")
    assert "Online payment is not available at the moment." in client.get(f"/payments/link/{token}").get_data(
        as_text=True)
    response = _pay(client, token, amount="30", name="Zoé", email="zoe@example.org")
    assert response.status_code == 409 and _attempts(db) == 0
