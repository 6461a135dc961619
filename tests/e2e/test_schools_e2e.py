"""Many schools on one platform, through the real SDK and the sandbox: two schools each activate online payment
and onboard (A is asked for a document first), each sells a course on its own connected account, Stripe's
events reach the school whose account sent them, and neither school's administrator can open, refund or see
the other's invoices; when Stripe disables one school's charges, the other still sells."""
import re

import pytest
import requests
from sqlalchemy import select

from lms_stripe_plugin.accounts import settings as payment_settings
from lms_stripe_plugin.core import schools
from lms_stripe_plugin.core.models import Event, Invoice, Purchase, Refund
from lms_stripe_plugin.shop.offers import save_offer

from ..conftest import KEYS, as_user
from ..minimal_host import Lesson, Person
from .conftest import SECRET, pay, start_checkout

PAGE = "/payments/admin/online-payment"
EVERYWHERE = {schools.ALL_SCHOOLS: True}


@pytest.fixture
def platform(stripe_app, db, host):
    """The test app as a platform (its keys in the app config, the operator's) whose host names two schools: A
    (the usual people, c5) and B (its administrator, a learner, c9); each school priced its course."""
    stripe_app.config.update(LMS_STRIPE_PLATFORM=True, LMS_STRIPE_PUBLIC_URL="https://lms.example.org",
                             LMS_STRIPE_APPLICATION_FEE=lambda school: 250 if school == "a" else None,
                             LMS_STRIPE_PUBLISHABLE_KEY=KEYS["publishable_key"],
                             LMS_STRIPE_SECRET_KEY="sk_test_sandbox_e2e", LMS_STRIPE_WEBHOOK_SECRETS=[SECRET])
    host.schools = {**dict.fromkeys(("u1", "u2", "adm", "c5"), "a"), **dict.fromkeys(("admb", "lrnb", "c9"), "b")}
    db.session.add_all([Person(id="admb", email="boss@b.example", name="Bea B", role="admin", audience="internal"),
                        Person(id="lrnb", email="lrn@b.example", name="Luc B"), Lesson(id="c5", title="Weaving"),
                        Lesson(id="c9", title="Pottery")])
    for school, admin, course, name in (("a", "adm", "c5", "École A"), ("b", "admb", "c9", "École B")):
        with schools.scope(school):
            payment_settings.save(db.session, {"enabled": True, "school_name": name}, actor_id=admin)
            save_offer(db.session, course, {"is_paid": True, "amount": 4990, "currency": "EUR", "vat_rate": 2000,
                                            "audience": "public", "on_sale": True}, actor_id=admin)
    db.session.commit()
    yield stripe_app
    stripe_app.config.update(LMS_STRIPE_PLATFORM=False, LMS_STRIPE_PUBLISHABLE_KEY=None, LMS_STRIPE_SECRET_KEY=None,
                             LMS_STRIPE_WEBHOOK_SECRETS=None, LMS_STRIPE_APPLICATION_FEE=None)
    host.schools = {}


def _token(client, user: str, path: str = "/payments/admin/invoices/new") -> str:
    """A CSRF token of the client's session, from a page of ``user`` that has a form."""
    page = client.get(path, headers=as_user(user)).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _settings(db, school: str):
    db.session.expire_all()
    payment_settings.forget_cached()
    with schools.scope(school):
        return payment_settings.load(db.session)


def _onboard(client, db, sandbox, admin: str, school: str, *, document: bool) -> str:
    """The school's administrator activates online payment and completes Stripe's onboarding; its account id."""
    started = client.post(f"{PAGE}/activate", data={"csrf_token": _token(client, admin)}, headers=as_user(admin))
    assert started.status_code == 303 and started.headers["Location"].startswith(sandbox.url)
    account_id = _settings(db, school).stripe_account_id
    control = f"{sandbox.url}/_sandbox/accounts/{account_id}"
    outcome = "documents_required" if document else "verified"
    assert requests.post(f"{control}/verification", json={"outcome": outcome}, timeout=5).ok
    assert requests.post(f"{control}/onboarding", json={"company_name": f"School {school}"}, timeout=5).ok
    sandbox.state.wait_for_deliveries(10)
    assert client.get(f"{PAGE}/return", headers=as_user(admin)).status_code == 303
    if document:  # asked for more: the administrator sees it, then Stripe verifies the account
        assert "Stripe needs more information" in client.get(PAGE, headers=as_user(admin)).get_data(as_text=True)
        assert not _settings(db, school).charges_enabled
        assert requests.post(f"{control}/verification", json={"outcome": "verified"}, timeout=5).ok
        resumed = client.post(f"{PAGE}/activate", data={"csrf_token": _token(client, admin)}, headers=as_user(admin))
        browser = requests.Session()  # "Continue on Stripe": the document, on the onboarding's page
        onboarding = browser.get(resumed.headers["Location"], timeout=5)
        uploaded = browser.post(onboarding.url, data={"step": "document"}, allow_redirects=False, timeout=5,
                                files={"document": ("kbis.pdf", b"%PDF-1.4 registration", "application/pdf")})
        assert uploaded.status_code == 303
        sandbox.state.wait_for_deliveries(10)
    assert _settings(db, school).active
    return account_id


def _paid_invoice(db, sandbox, client, user: str, course: str, account: str) -> Invoice:
    response, session_id = start_checkout(client, user, course)
    assert response.status_code == 303 and sandbox.state.owner_of(session_id) == account
    assert pay(sandbox, session_id).status_code == 200
    db.session.expire_all()
    invoice = db.session.scalar(select(Invoice).where(Invoice.user_id == user, Invoice.course_id == course)
                                .execution_options(**EVERYWHERE))
    assert invoice is not None and invoice.status == "paid"
    assert sandbox.state.owner_of(invoice.stripe_invoice_id) == account
    return invoice


def test_two_schools_sell_on_their_own_accounts_and_never_see_each_other(platform, client, db, sandbox):
    account_a = _onboard(client, db, sandbox, "adm", "a", document=True)
    account_b = _onboard(client, db, sandbox, "admb", "b", document=False)
    assert account_a != account_b and len(sandbox.state.all("account")) == 2
    assert "École A" not in client.get(PAGE, headers=as_user("admb")).get_data(as_text=True)

    # Each school sells its own course, on its own account; each event reached the school it came from.
    invoice_a = _paid_invoice(db, sandbox, client, "u1", "c5", account_a)
    invoice_b = _paid_invoice(db, sandbox, client, "lrnb", "c9", account_b)
    assert (invoice_a.school_id, invoice_b.school_id) == ("a", "b")
    # The platform takes its share of A's payments (2.5 %, rounded half up), none of B's.
    fees = {}
    for invoice in (invoice_a, invoice_b):
        intent = db.session.scalar(select(Purchase.stripe_payment_intent_id).where(Purchase.id == invoice.purchase_id)
                                   .execution_options(**EVERYWHERE))
        fees[invoice.school_id] = sandbox.state.get(intent)["application_fee_amount"]
    assert fees == {"a": 125, "b": None}
    events = db.session.execute(select(Event.school_id, Event.status).execution_options(**EVERYWHERE)).all()
    assert {school for school, status in events if status == "processed"} == {"a", "b"}
    assert {status for school, status in events if school == ""} == {"ignored"}  # the platform's own (its fees)
    # A school's course is not for sale in another school.
    assert client.get("/payments/courses/c5", headers=as_user("lrnb")).status_code == 404
    assert client.post("/payments/checkout/c5", data={"csrf_token": _token(client, "admb")},
                       headers=as_user("lrnb")).status_code == 404

    # B's administrator gets 404 on each of A's invoice pages and cannot refund it; A's list shows A's only.
    for path in ("", "/cancel", "/refund"):
        assert client.get(f"/payments/admin/invoices/{invoice_a.id}{path}", headers=as_user("admb")).status_code == 404
    refused = client.post(f"/payments/admin/invoices/{invoice_a.id}/refund", headers=as_user("admb"),
                          data={"csrf_token": _token(client, "admb"), "amount": "10.00", "reason": "x"})
    assert refused.status_code == 404
    listed_b = client.get("/payments/admin/invoices", headers=as_user("admb")).get_data(as_text=True)
    listed_a = client.get("/payments/admin/invoices", headers=as_user("adm")).get_data(as_text=True)
    assert invoice_b.user_email in listed_b and invoice_a.user_email not in listed_b
    assert invoice_a.user_email in listed_a and invoice_b.user_email not in listed_a
    assert client.get(f"/payments/invoices/{invoice_a.id}/pdf", headers=as_user("lrnb")).status_code == 404

    # A's administrator refunds A's invoice: the refund lives on A's account.
    page = client.get(f"/payments/admin/invoices/{invoice_a.id}/refund", headers=as_user("adm"))
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    done = client.post(f"/payments/admin/invoices/{invoice_a.id}/refund", headers=as_user("adm"),
                       data={"csrf_token": token, "amount": "10.00", "reason": "goodwill"})
    assert done.status_code in (302, 303), done.get_data(as_text=True)
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    refund = db.session.scalar(select(Refund).execution_options(**EVERYWHERE))
    assert refund.school_id == "a" and sandbox.state.owner_of(refund.stripe_refund_id) == account_a

    # Stripe disables B's charges: B stops selling at once, A goes on.
    assert requests.post(f"{sandbox.url}/_sandbox/accounts/{account_b}/disable", json={"reason": "under_review"},
                         timeout=5).ok
    sandbox.state.wait_for_deliveries(10)
    assert not _settings(db, "b").active and _settings(db, "a").active
    page = client.get("/payments/courses/c9", headers=as_user("lrnb"))
    assert page.status_code == 200 and "not available at the moment" in page.get_data(as_text=True)
    assert client.post("/payments/checkout/c9", data={"csrf_token": _token(client, "admb")},
                       headers=as_user("lrnb")).status_code == 409
    response, session_id = start_checkout(client, "u2", "c5")
    assert response.status_code == 303 and sandbox.state.owner_of(session_id) == account_a
    purchases = db.session.scalars(select(Purchase.school_id).execution_options(**EVERYWHERE)).all()
    assert sorted(purchases) == ["a", "a", "b"]
