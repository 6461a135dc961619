"""Who may open what: every route of the plugin, for every role, on every object (a learner's own, another
learner's). A route added without a row here fails `test_every_route_is_in_the_matrix`."""
import re

import pytest
from sqlalchemy import func, select

from lms_stripe_plugin.core.models import Invoice, Message, PaymentAttempt, PaymentLink, PaymentRequest, Refund

from .conftest import as_user
from .link_support import make_link
from .refund_support import paid_purchase
from .request_support import open_invoice, open_request

ROLES = ("anonymous", "u1", "u2", "mgr", "adm")  # u1 bought the course; u2 is another learner


@pytest.fixture
def world(app, client, db, host, people, priced, configured):
    purchase_id, invoice_id = paid_purchase(db, host)
    refund = Refund(purchase_id=purchase_id, amount=4990, currency="EUR", status="failed", origin="admin",
                    idempotency_key="lms-refund-test")
    db.session.add(refund)
    db.session.commit()
    owed = open_invoice(db, host)
    request_id, pay_token = open_request(db, owed)
    link_id, link_token = make_link(db)
    page = client.get("/payments/admin/settings", headers=as_user("adm")).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return {"purchase": purchase_id, "invoice": invoice_id, "refund": refund.id, "token": token,
            "session": "cs_test_in_test_1", "owed": owed, "request": request_id, "pay_token": pay_token,
            "link": link_id, "link_token": link_token}


def _everyone(anonymous, **roles):
    return {"anonymous": anonymous, **{role: roles.get(role, roles.get("others")) for role in ROLES[1:]}}


ADMIN_ONLY = _everyone(401, others=403, adm=200)
ADMIN_POST = _everyone(401, others=403, adm=None)  # None: the administrator's outcome is tested elsewhere
SIGNED_IN = _everyone(401, others=200)

#: endpoint -> (method, path with {placeholders}, expected status by role)
MATRIX = {
    "admin_home": ("GET", "/payments/admin/", _everyone(401, others=403, adm=302)),
    "admin_settings": ("GET", "/payments/admin/settings", ADMIN_ONLY),
    # Online payment through a platform (Stripe Connect): none of it on a school with its own keys (404).
    "admin_connect": ("GET", "/payments/admin/online-payment", _everyone(401, others=403, adm=404)),
    "admin_connect_activate": ("POST", "/payments/admin/online-payment/activate", _everyone(401, others=403, adm=404)),
    "admin_connect_return": ("GET", "/payments/admin/online-payment/return", _everyone(401, others=403, adm=404)),
    "admin_connect_refresh": ("GET", "/payments/admin/online-payment/refresh", _everyone(401, others=403, adm=404)),
    "pricing_preview": ("GET", "/payments/admin/pricing-preview?price=49.90&currency=EUR&vat_rate=20", ADMIN_ONLY),
    "course_payment": ("GET", "/payments/courses/c1", SIGNED_IN),
    "checkout": ("POST", "/payments/checkout/c3", _everyone(401, others=409)),  # c3 is free: nothing to pay
    "checkout_success": ("GET", "/payments/checkout/success?session_id={session}", _everyone(401, others=404, u1=200)),
    "checkout_cancel": ("GET", "/payments/checkout/cancel/{purchase}", _everyone(401, others=404, u1=200)),
    # Anyone may choose a currency, visitors included; this school accepts one: refused with a message.
    "choose_currency": ("POST", "/payments/currency", _everyone(400, others=400)),
    "my_invoices": ("GET", "/payments/invoices", SIGNED_IN),
    "invoice_pdf": ("GET", "/payments/invoices/{invoice}/pdf", _everyone(401, others=404, u1=302, adm=302)),
    "admin_invoices": ("GET", "/payments/admin/invoices", ADMIN_ONLY),
    "admin_invoices_csv": ("GET", "/payments/admin/invoices.csv", ADMIN_ONLY),
    "admin_invoices_xlsx": ("GET", "/payments/admin/invoices.xlsx", ADMIN_ONLY),
    "admin_invoice_totals": ("GET", "/payments/admin/invoices/totals", ADMIN_ONLY),
    "admin_invoice": ("GET", "/payments/admin/invoices/{invoice}", ADMIN_ONLY),
    "admin_cancel": ("GET", "/payments/admin/invoices/{invoice}/cancel", ADMIN_ONLY),
    "admin_refund": ("GET", "/payments/admin/invoices/{invoice}/refund", ADMIN_ONLY),
    "admin_retry_refund": ("POST", "/payments/admin/refunds/{refund}/retry", ADMIN_POST),
    "admin_restore_access": ("POST", "/payments/admin/invoices/{invoice}/restore-access", ADMIN_POST),
    "admin_new_invoice": ("GET", "/payments/admin/invoices/new", ADMIN_ONLY),
    "admin_issue_invoice": ("POST", "/payments/admin/invoices/{owed}/issue", ADMIN_POST),
    "admin_request_payment": ("GET", "/payments/admin/invoices/{owed}/request", ADMIN_ONLY),
    "admin_requests": ("GET", "/payments/admin/requests", ADMIN_ONLY),
    "admin_requests_csv": ("GET", "/payments/admin/requests.csv", ADMIN_ONLY),
    "admin_resend_request": ("POST", "/payments/admin/requests/{request}/resend", ADMIN_POST),
    "admin_cancel_request": ("POST", "/payments/admin/requests/{request}/cancel", ADMIN_POST),
    # Whoever holds a link pays without signing in (the link was sent to the learner only).
    "pay": ("GET", "/payments/pay/{pay_token}", _everyone(200, others=200)),
    "my_payments": ("GET", "/payments/my-payments", SIGNED_IN),
    "my_payment_pay": ("POST", "/payments/my-payments/{request}/pay", _everyone(401, others=404, u1=None)),
    "my_invoice_pay": ("POST", "/payments/my-payments/invoices/{owed}/pay", _everyone(401, others=404, u1=None)),
    # Signed in, with no invoice chosen: the page says to choose some (another learner's: test_settlements).
    "my_payments_settle": ("POST", "/payments/my-payments/settle", _everyone(401, others=400)),
    "admin_new_settlement": ("GET", "/payments/admin/requests/new", ADMIN_ONLY),
    # A learner's own balance only: topping it up (off in these settings: said, then back to My payments), a
    # course paid from it (u1 bought c1 already; no one else has a balance).
    "top_up": ("POST", "/payments/my-payments/top-up", _everyone(401, others=303)),
    "pay_from_balance": ("POST", "/payments/checkout/c1/balance", _everyone(401, others=409)),
    "admin_balances": ("GET", "/payments/admin/balances", ADMIN_ONLY),
    "admin_balance": ("GET", "/payments/admin/balances/u1", ADMIN_ONLY),
    "admin_refund_topup": ("POST", "/payments/admin/balances/top-ups/999/refund", _everyone(401, others=403, adm=404)),
    "admin_request_topup": ("GET", "/payments/admin/balances/u1/request", ADMIN_ONLY),
    "admin_links": ("GET", "/payments/admin/links", ADMIN_ONLY),
    "admin_new_link": ("GET", "/payments/admin/links/new", ADMIN_ONLY),
    "admin_link": ("GET", "/payments/admin/links/{link}", ADMIN_ONLY),
    "admin_disable_link": ("POST", "/payments/admin/links/{link}/disable", ADMIN_POST),
    # A payment link's page and its button's script are for anyone holding the address (a school's website).
    "pay_link": ("GET", "/payments/link/{link_token}", _everyone(200, others=200)),
    "link_button": ("GET", "/payments/link/{link_token}/button.js", _everyone(200, others=200)),
    "admin_audit": ("GET", "/payments/admin/audit", ADMIN_ONLY),
    "admin_events": ("GET", "/payments/admin/events", ADMIN_ONLY),
    "admin_handle_event": ("POST", "/payments/admin/events/handle", ADMIN_POST),
    "admin_free_enrollments": ("GET", "/payments/admin/free-enrollments", ADMIN_ONLY),
    "webhook": ("POST", "/payments/webhook", _everyone(400, others=400)),  # no signature: refused for anyone
    "unrouted": ("GET", "/payments/no-such-page", _everyone(404, others=404)),
}
#: Routes that change something, and their forms: each is also refused without a CSRF token.
POSTS = {"admin_settings": "/payments/admin/settings", "admin_cancel": "/payments/admin/invoices/{invoice}/cancel",
         "admin_refund": "/payments/admin/invoices/{invoice}/refund", "admin_new_invoice": "/payments/admin/invoices/new",
         "admin_request_payment": "/payments/admin/invoices/{owed}/request", "pay": "/payments/pay/{pay_token}",
         "admin_new_link": "/payments/admin/links/new", "pay_link": "/payments/link/{link_token}",
         "admin_balance": "/payments/admin/balances/u1", "admin_request_topup": "/payments/admin/balances/u1/request"}


def test_every_route_is_in_the_matrix(app):
    endpoints = {rule.endpoint.removeprefix("lms_stripe.") for rule in app.url_map.iter_rules()
                 if rule.endpoint.startswith("lms_stripe.")}
    assert endpoints == set(MATRIX)


@pytest.mark.parametrize("endpoint", list(MATRIX))
@pytest.mark.parametrize("role", ROLES)
def test_who_may_open_what(client, world, endpoint, role):
    method, path, expected = MATRIX[endpoint]
    if expected[role] is None:
        pytest.skip("the administrator's outcome is tested with the feature")
    url = path.format(**world)
    headers = {} if role == "anonymous" else as_user(role)
    data = {"csrf_token": world["token"]} if method == "POST" else None
    response = client.open(url, method=method, data=data, headers=headers)
    assert response.status_code == expected[role], (endpoint, role, response.status_code)


def test_another_learners_invoice_never_shows_in_my_invoices(client, world, db):
    number = db.session.scalar(select(Invoice.number))
    assert number in client.get("/payments/invoices", headers=as_user("u1")).get_data(as_text=True)
    assert number not in client.get("/payments/invoices", headers=as_user("u2")).get_data(as_text=True)


@pytest.mark.parametrize("endpoint", list(POSTS) + ["admin_retry_refund", "admin_restore_access", "checkout",
                                                    "admin_issue_invoice", "admin_resend_request",
                                                    "admin_cancel_request", "my_payment_pay", "my_invoice_pay",
                                                    "my_payments_settle", "admin_new_settlement",
                                                    "admin_handle_event", "admin_disable_link", "choose_currency",
                                                    "admin_connect_activate"])
def test_every_form_is_refused_without_its_csrf_token(client, world, db, endpoint):
    path = POSTS.get(endpoint) or MATRIX[endpoint][1]
    user = "u1" if endpoint in ("pay", "my_payment_pay", "my_invoice_pay", "my_payments_settle", "pay_link") else "adm"
    response = client.post(path.format(**world), data={"reason": "x", "amount": "1.00"}, headers=as_user(user))
    assert response.status_code == 400 and "expired" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.scalar(select(Refund).where(Refund.status != "failed")) is None
    assert db.session.scalar(select(func.count()).select_from(PaymentAttempt)) == 0
    assert db.session.scalar(select(func.count()).select_from(Message)) == 0
    assert [r.status for r in db.session.scalars(select(PaymentRequest))] == ["open"]
    assert db.session.scalar(select(func.count()).select_from(Invoice)) == 2
    assert [(link.status, link.held) for link in db.session.scalars(select(PaymentLink))] == [("active", 0)]
