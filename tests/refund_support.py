"""Helpers of the cancellation, refund and audit tests: a paid purchase in the database, Stripe stubs for
credit notes, refunds, charges and disputes, the CSRF token of a rendered page, and what the SDK sent.

Stubbed objects are Stripe's example objects (tests/fixtures/stripe) with only the fields a test is about.
"""
from __future__ import annotations

import html
import re
from datetime import datetime, timezone

import responses
from sqlalchemy import select

from lms_stripe_plugin.core.models import Invoice, Purchase, Refund
from lms_stripe_plugin.testing import post_webhook

from .conftest import KEYS, STRIPE, as_user, form_body, stripe_object
from .stripe_stubs import event

PAID_AT = datetime(2026, 1, 1, 10, 0, tzinfo=timezone.utc)


def paid_purchase(db, host, *, user_id="u1", course_id="c1", amount=4990, vat=832, currency="EUR",
                  payment_intent="pi_test_1", invoice_id="in_test_1", number="ABC-0001") -> tuple[int, int]:
    """A paid purchase and its invoice row, written directly, and the learner enrolled through the host.

    Returns (purchase id, invoice id): tests re-read rows, so that they see what the database kept.
    """
    user, course = host.get_user(user_id), host.get_course(course_id)
    purchase = Purchase(user_id=user_id, course_id=course_id, status="paid", amount=amount, currency=currency,
                        vat_rate=2000, amount_paid=amount, stripe_payment_intent_id=payment_intent,
                        stripe_checkout_session_id=f"cs_test_{invoice_id}", paid_at=PAID_AT)
    db.session.add(purchase)
    db.session.flush()
    invoice = Invoice(stripe_invoice_id=invoice_id, purchase_id=purchase.id, number=number, user_id=user_id,
                      course_id=course_id, user_email=user.email, user_name=user.name, course_title=course.title,
                      currency=currency, net=amount - vat, vat=vat, gross=amount, status="paid", issued_at=PAID_AT,
                      pdf_url=f"https://pay.stripe.com/invoice/{invoice_id}/pdf")
    db.session.add(invoice)
    host.enroll(user, course)
    db.session.commit()
    return purchase.id, invoice.id


def rows(db, model, *where):
    db.session.expire_all()
    return db.session.scalars(select(model).where(*where).order_by(model.id)).all()


def purchase_and_invoice(db, purchase_id: int) -> tuple[Purchase, Invoice]:
    db.session.expire_all()
    purchase = db.session.get(Purchase, purchase_id)
    invoice = db.session.scalar(select(Invoice).where(Invoice.purchase_id == purchase_id))
    return purchase, invoice


def refunds_of(db, purchase_id: int) -> list[Refund]:
    return rows(db, Refund, Refund.purchase_id == purchase_id)


def enrolled(host, user_id="u1", course_id="c1") -> bool:
    return host.is_enrolled(host.get_user(user_id), host.get_course(course_id))


def unenrolls(host, user_id="u1", course_id="c1") -> int:
    return host.calls.count(("unenroll", user_id, course_id))


# -- Stripe objects --------------------------------------------------------------------------------

def credit_note(*, cn_id="cn_test_1", invoice_id="in_test_1", amount=4990, refund_id="re_test_1",
                number="ABC-0001-CN-01", memo=None) -> dict:
    return stripe_object(
        "credit_note", id=cn_id, invoice=invoice_id, amount=amount, subtotal=amount, total=amount, currency="eur",
        number=number, memo=memo, reason="order_change", type="post_payment", voided_at=None,
        pdf=f"https://pay.stripe.com/credit_notes/{cn_id}/pdf",
        refunds=[{"amount_refunded": amount, "refund": refund_id, "type": "refund", "payment_record_refund": None}])


def refund(*, refund_id="re_test_1", amount=4990, status="succeeded", failure_reason=None,
           payment_intent="pi_test_1", charge="ch_test_1", reason=None) -> dict:
    obj = stripe_object("refund", id=refund_id, amount=amount, currency="eur", status=status,
                        payment_intent=payment_intent, charge=charge, reason=reason)
    if failure_reason:
        obj["failure_reason"] = failure_reason
    return obj


def charge(*, charge_id="ch_test_1", payment_intent="pi_test_1", amount=4990, amount_refunded=4990) -> dict:
    return stripe_object("charge", id=charge_id, payment_intent=payment_intent, amount=amount, currency="eur",
                         amount_captured=amount, captured=True, amount_refunded=amount_refunded,
                         refunded=amount_refunded >= amount)


def dispute(*, dispute_id="dp_test_1", status="needs_response", amount=4990, payment_intent="pi_test_1",
            reason="fraudulent") -> dict:
    return stripe_object("dispute", id=dispute_id, status=status, amount=amount, currency="eur",
                         payment_intent=payment_intent, charge="ch_test_1", reason=reason)


def paid_twice(db) -> tuple[Purchase, dict]:
    """Léa (u1) paid "Python basics" (c1), and an older Checkout of hers for it, expired here, is paid too: its
    purchase, and its paid session as its event carries it (the invoice and PaymentIntent by id)."""
    from .stripe_stubs import open_purchase, paid_session

    old = open_purchase(db)
    old.status = "expired"
    db.session.add(Purchase(user_id="u1", course_id="c1", status="paid", amount=4990, currency="EUR", vat_rate=2000,
                            amount_paid=4990, stripe_payment_intent_id="pi_other",
                            stripe_checkout_session_id="cs_other"))
    db.session.commit()
    session = paid_session(old)
    return old, dict(session, invoice=session["invoice"]["id"], payment_intent=session["payment_intent"]["id"])


# -- stubs -----------------------------------------------------------------------------------------

def stub_credit_note(mock, body, status=200):
    """POST /v1/credit_notes answers ``body`` (a dict, or an exception such as ConnectionError)."""
    if isinstance(body, Exception):
        return mock.add(responses.POST, f"{STRIPE}/v1/credit_notes", body=body)
    return mock.add(responses.POST, f"{STRIPE}/v1/credit_notes", json=body, status=status)


def stub_credit_notes(mock, existing=()):
    """Stripe's GET /v1/credit_notes?invoice=... (answering ``existing``) and POST /v1/credit_notes answering
    the credit note it was asked for: numbered after the invoice, linking the refunds sent; refused (400) for a
    refund one of ``existing`` links already."""
    import json

    envelope = {"object": "list", "data": list(existing), "has_more": False, "url": "/v1/credit_notes"}
    mock.add(responses.GET, re.compile(rf"{STRIPE}/v1/credit_notes\?.*"), json=envelope)
    made = []

    def create(request):
        params = form_body(request)
        credited = {link["refund"] for note in existing for link in note.get("refunds") or []}
        if any(params[key] in credited for key in params if key.endswith("][refund]")):
            # Stripe's answer when a refund is on a credit note already: none of it is left to link.
            return 400, {}, json.dumps({"error": {
                "type": "invalid_request_error", "code": "amount_too_large", "param": "refunds[0][amount_refunded]",
                "message": "The amount is more than what of the refund is not yet on a credit note."}})
        made.append(params)
        links = [{"amount_refunded": int(params.get(f"refunds[{i}][amount_refunded]", params["amount"])),
                  "refund": params[f"refunds[{i}][refund]"], "type": "refund", "payment_record_refund": None}
                 for i in range(len([k for k in params if k.endswith("][refund]")]))]
        note = credit_note(cn_id=f"cn_test_{len(made)}", amount=int(params["amount"]),
                           number=f"ABC-0001-CN-{len(made):02d}")
        note.update(refunds=links, invoice=params["invoice"], reason=params.get("reason"))
        return 200, {}, json.dumps(note)

    mock.add_callback(responses.POST, f"{STRIPE}/v1/credit_notes", callback=create, content_type="application/json")
    return made


def stub_get_refund(mock, obj: dict):
    return mock.add(responses.GET, f"{STRIPE}/v1/refunds/{obj['id']}", json=obj)


def stub_create_refund(mock, body, status=200):
    if isinstance(body, Exception):
        return mock.add(responses.POST, f"{STRIPE}/v1/refunds", body=body)
    return mock.add(responses.POST, f"{STRIPE}/v1/refunds", json=body, status=status)


def stub_empty_lists(mock, *paths: str):
    """Stripe's lists at these paths (``invoices``, ``checkout/sessions``…), each answering no object."""
    for path in paths:
        mock.add(responses.GET, re.compile(rf"{STRIPE}/v1/{path}\?.*"),
                 json={"object": "list", "data": [], "has_more": False, "url": f"/v1/{path}"})


def stub_list_refunds(mock, refunds: list[dict]):
    envelope = {"object": "list", "data": refunds, "has_more": False, "url": "/v1/refunds"}
    return mock.add(responses.GET, re.compile(rf"{STRIPE}/v1/refunds\?.*"), json=envelope)


def stub_get_dispute(mock, obj: dict):
    return mock.add(responses.GET, f"{STRIPE}/v1/disputes/{obj['id']}", json=obj)


def replace_get_refund(mock, obj: dict):
    mock.replace(responses.GET, f"{STRIPE}/v1/refunds/{obj['id']}", json=obj)


def replace_get_dispute(mock, obj: dict):
    mock.replace(responses.GET, f"{STRIPE}/v1/disputes/{obj['id']}", json=obj)


def calls(mock, method: str, path: str) -> list:
    """Recorded calls to one endpoint (path without query string)."""
    found = []
    for call in mock.calls:
        url = call.request.url.split("?")[0]
        if call.request.method == method and url == f"{STRIPE}{path}":
            found.append(call)
    return found


def sent(call) -> dict:
    return form_body(call.request)


def idempotency_key(call) -> str | None:
    return call.request.headers.get("Idempotency-Key")


def send_event(client, event_type: str, obj: dict, event_id: str):
    """Deliver one signed Stripe event to the webhook; returns the response."""
    return post_webhook(client, event(event_type, obj, event_id), KEYS["webhook_secrets"][0])


# -- pages -----------------------------------------------------------------------------------------

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf(client, url: str, user: str = "adm") -> str:
    """The CSRF token of a rendered page (the token belongs to the client's session, not to the user)."""
    page = client.get(url, headers=as_user(user))
    assert page.status_code == 200, (url, page.status_code)
    return _CSRF.search(page.get_data(as_text=True)).group(1)


def text(response) -> str:
    """A page's text with tags removed and whitespace collapsed, for assertions on what a person reads."""
    body = re.sub(r"<style.*?</style>", " ", response.get_data(as_text=True), flags=re.S)
    body = re.sub(r"<[^>]+>", " ", body)
    return re.sub(r"\s+", " ", html.unescape(body))
