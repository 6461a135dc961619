"""Platform mode with two schools: every row is a school's, and school B's people never see nor touch school
A's. School A is the world of `test_authorization` (its learners, courses, invoices, requests, links, events);
school B has its own administrator and learner. Every route of the plugin is opened by B's administrator on A's
objects, as the authorization matrix does for roles."""
import io
import json
import re
import zipfile

import pytest
from blinker import signal
from sqlalchemy import func, select, update

from lms_stripe_plugin.accounts import settings as payment_settings
from lms_stripe_plugin.core import schools
from lms_stripe_plugin.core.models import (AuditEntry, Customer, Event, Invoice, InvoicePayment, PaymentLink,
                                           PaymentRequest, Purchase, Settings)
from lms_stripe_plugin.shop.offers import save_offer
from lms_stripe_plugin.tasks import send_due_reminders

from .conftest import KEYS, as_user
from .minimal_host import Lesson, Person
from .test_authorization import MATRIX, POSTS, world  # noqa: F401 - the fixture is used below

SCHOOL_A = ("u1", "u2", "emp", "par", "mgr", "adm", "blk", "c1", "c2", "c3", "c4")


@pytest.fixture
def platform(app, host, db):
    """The app as a platform whose host names two schools; what is set up next is school A's."""
    app.config["LMS_STRIPE_PLATFORM"] = True
    host.schools = {**dict.fromkeys(SCHOOL_A, "a"), "admb": "b", "lrnb": "b", "c9": "b"}
    db.session.add_all([Person(id="admb", email="boss@b.example", name="Bea B", role="admin", audience="internal"),
                        Person(id="lrnb", email="lrn@b.example", name="Luc B"), Lesson(id="c9", title="B's course")])
    db.session.commit()
    token = schools._forced.set("a")
    yield token
    app.config["LMS_STRIPE_PLATFORM"] = False


@pytest.fixture
def two_schools(platform, world, db):  # noqa: F811 - pytest's fixture by name
    """School A's world, then school B's settings and a course priced; requests are then each user's school."""
    schools._forced.reset(platform)
    with schools.scope("b"):
        payment_settings.save(db.session, {"enabled": True, "school_name": "École B"}, actor_id="admb")
        save_offer(db.session, "c9", {"is_paid": True, "amount": 3000, "currency": "EUR", "vat_rate": 2000,
                                      "audience": "public", "on_sale": True}, actor_id="admb")
        db.session.commit()
    return world


def _token(client, user: str) -> str:
    page = client.get("/payments/admin/invoices/new", headers=as_user(user)).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


#: What school B's administrator gets on each route when the objects are school A's (None: not opened here:
#: the outcome needs Stripe, and is tested with the feature). A link's token opens its school's page for
#: whoever holds it, signed in or not, in any school.
OTHER_SCHOOL = {
    "admin_home": 302, "admin_settings": 200, "admin_connect": 200, "admin_connect_activate": None,
    "admin_connect_return": 303, "admin_connect_refresh": 303, "pricing_preview": 200,
    "course_payment": 404, "checkout": 404, "checkout_success": 404, "checkout_cancel": 404,
    "choose_currency": 400, "my_invoices": 200, "invoice_pdf": 404, "admin_invoices": 200,
    "admin_invoices_csv": 200, "admin_invoices_xlsx": 200, "admin_invoice_totals": 200, "admin_invoice": 404,
    "admin_cancel": 404, "admin_refund": 404, "admin_retry_refund": 404, "admin_restore_access": 404,
    "admin_new_invoice": 200, "admin_issue_invoice": 404, "admin_request_payment": 404, "admin_requests": 200,
    "admin_requests_csv": 200, "admin_resend_request": 404, "admin_cancel_request": 404, "pay": 200,
    "my_payments": 200, "my_payment_pay": 404, "my_invoice_pay": 404, "my_payments_settle": 400,
    "admin_new_settlement": 200, "top_up": 303, "pay_from_balance": 404, "admin_balances": 200,
    "admin_balance": 404, "admin_refund_topup": 404, "admin_request_topup": 404, "admin_links": 200,
    "admin_new_link": 200, "admin_link": 404, "admin_disable_link": 404, "pay_link": 200, "link_button": 200,
    "admin_audit": 200, "admin_events": 200, "admin_handle_event": None, "admin_free_enrollments": 200,
    "webhook": 400, "unrouted": 404,
}
#: What school A's pages hold that no page of school B may show.
A_SECRETS = ("ABC-0001", "lea@example.com", "Léa", "pk_test_51Abcdefghijkl", "Python basics")


def _text(response) -> str:
    """A page's text; a spreadsheet's, from its XML parts."""
    body = response.get_data()
    if body.startswith(b"PK"):
        with zipfile.ZipFile(io.BytesIO(body)) as book:
            return "".join(book.read(name).decode() for name in book.namelist() if name.endswith(".xml"))
    return body.decode()


def test_the_table_covers_every_route():
    assert set(OTHER_SCHOOL) == set(MATRIX)


@pytest.mark.parametrize("endpoint", list(MATRIX))
def test_school_b_never_sees_nor_touches_school_a(client, two_schools, db, endpoint):
    expected = OTHER_SCHOOL[endpoint]
    if expected is None:
        pytest.skip("needs Stripe: tested with the feature")
    method, path, _roles = MATRIX[endpoint]
    data = {"csrf_token": _token(client, "admb"), "reason": "x", "amount": "1.00"} if method == "POST" else None
    response = client.open(path.format(**two_schools), method=method, data=data, headers=as_user("admb"))
    assert response.status_code == expected, (endpoint, response.status_code)
    page = _text(response)
    if endpoint not in ("pay", "pay_link", "link_button"):  # a link's page is its school's, for its holder
        assert not [secret for secret in A_SECRETS if secret in page], endpoint
    db.session.expire_all()
    with schools.scope("a"):  # nothing of A's changed
        assert [r.status for r in db.session.scalars(select(PaymentRequest))] == ["open"]
        assert [link.status for link in db.session.scalars(select(PaymentLink))] == ["active"]
        assert db.session.scalar(select(func.count()).select_from(Invoice)) == 2


@pytest.mark.parametrize("endpoint", sorted(POSTS))
def test_school_b_posts_change_nothing_of_school_a(client, two_schools, db, endpoint):
    data = {"csrf_token": _token(client, "admb"), "reason": "x", "amount": "1.00", "learner": "u1",
            "description": "x", "line-0-description": "x", "line-0-amount": "10", "line-0-course": "c1"}
    client.post(POSTS[endpoint].format(**two_schools), data=data, headers=as_user("admb"))
    db.session.expire_all()
    with schools.scope("a"):
        assert db.session.scalar(select(func.count()).select_from(Invoice)) == 2
        assert [r.status for r in db.session.scalars(select(PaymentRequest))] == ["open"]
        settings = payment_settings.load(db.session)
        assert settings.enabled and settings.publishable_key == KEYS["publishable_key"]
    with schools.scope("b"):  # B's new rows, if any, are B's, and never about A's learner or course
        assert db.session.scalar(select(func.count()).select_from(Invoice).where(Invoice.user_id == "u1")) == 0


def test_every_row_carries_its_school_and_queries_see_their_own(two_schools, db):
    everywhere = {schools.ALL_SCHOOLS: True}
    rows = db.session.execute(select(Settings.school_id, Settings.school_name).order_by(Settings.school_id)
                              .execution_options(**everywhere)).all()
    assert rows == [("a", None), ("b", "École B")]
    purchases = db.session.scalars(select(Purchase.school_id).execution_options(**everywhere)).all()
    assert purchases and set(purchases) == {"a"}
    audit = db.session.execute(select(AuditEntry.school_id, func.count()).group_by(AuditEntry.school_id)
                               .execution_options(**everywhere)).all()
    assert {school for school, _count in audit} == {"a", "b"}
    with schools.scope("b"):
        assert db.session.scalar(select(func.count()).select_from(Purchase)) == 0
        assert db.session.get(Invoice, two_schools["invoice"]) is None
        assert payment_settings.load(db.session).school_name == "École B"
    with schools.scope("a"):
        assert db.session.get(Invoice, two_schools["invoice"]) is not None


def test_a_course_of_another_school_is_neither_priced_nor_sold_there(client, two_schools, host, db):
    course = host.get_course("c9")
    with client.application.test_request_context(headers=as_user("u1")):  # school A's learner, B's course
        answers = signal("lms.course.detail_rendering").send(client.application, course=course,
                                                             user=host.get_user("u1"))
        assert all(value is None for _receiver, value in answers)
        decisions = [value for _r, value in signal("lms.enrollment.requested").send(
            client.application, course=course, user=host.get_user("u1")) if value is not None]
        assert decisions and not decisions[0].allowed and decisions[0].reason == "other_school"
    assert client.post("/payments/checkout/c9", data={"csrf_token": _token(client, "adm")},
                       headers=as_user("u1")).status_code == 404
    assert client.get("/payments/courses/c9", headers=as_user("lrnb")).status_code == 200


def test_a_learner_of_two_schools_is_a_customer_of_each(two_schools, db):
    with schools.scope("b"):
        db.session.add(Customer(user_id="u1", stripe_customer_id="cus_in_b"))
        db.session.commit()
    with schools.scope("a"):
        db.session.add(Customer(user_id="u1", stripe_customer_id="cus_in_a"))
        db.session.commit()
        assert db.session.scalars(select(Customer.stripe_customer_id)).all() == ["cus_in_a"]


def test_events_stored_for_a_school_are_listed_only_on_its_page(client, two_schools, db):
    with schools.scope("a"):
        db.session.add(Event(id="evt_of_a", type="invoice.paid", livemode=False, payload="{}", status="failed",
                             attempts=1, error="boom"))
        db.session.commit()
    assert "evt_of_a" in client.get("/payments/admin/events", headers=as_user("adm")).get_data(as_text=True)
    assert "evt_of_a" not in client.get("/payments/admin/events", headers=as_user("admb")).get_data(as_text=True)


def test_the_reminders_run_goes_over_every_school(app, two_schools, db):
    report = send_due_reminders(app, dry_run=True)
    assert report.sent == 0 and report.due == []  # nothing due, but each school's rules were read
    assert payment_settings.every_school(db.session) == ["a", "b"]


def test_a_schools_settings_page_never_shows_the_platforms_keys(app, client, host, people):
    keys = {"LMS_STRIPE_PUBLISHABLE_KEY": "pk_test_platform9Zq1", "LMS_STRIPE_SECRET_KEY": "sk_test_platform9Zq2",
            "LMS_STRIPE_WEBHOOK_SECRETS": ["whsec_platform9Zq3"]}
    app.config.update(LMS_STRIPE_PLATFORM=True, **keys)
    host.schools = {"adm": "a"}
    try:
        page = client.get("/payments/admin/settings", headers=as_user("adm")).get_data(as_text=True)
    finally:
        app.config.update(LMS_STRIPE_PLATFORM=False, **dict.fromkeys(keys))
    assert 'id="platform-keys"' in page and "/payments/admin/online-payment" in page
    assert "9Zq" not in page and "sk_test" not in page and "whsec" not in page and 'name="secret_key"' not in page


def test_events_handled_as_school_b_write_nothing_of_school_a(app, two_schools, db):
    """The plain statements of the webhook handlers (a charge's payment method, an invoice event's lock on its
    purchase, an invoice payment's lock on its invoice) name the school in force: an event of school B naming a purchase of A's changes nothing of A's."""
    from lms_stripe_plugin.sync import handlers

    from .request_stubs import invoice_payment
    from .stripe_stubs import invoice

    purchase_id = two_schools["purchase"]
    with schools.scope("a"):
        before = db.session.get(Purchase, purchase_id)
        intent, method = before.stripe_payment_intent_id, before.payment_method
    state = app.extensions["lms_stripe"]
    charge = {"id": "ch_b", "object": "charge", "metadata": {"lms_purchase_id": str(purchase_id)},
              "payment_intent": intent, "payment_method_details": {"type": "sepa_debit"}}
    with schools.scope("b"):
        handlers.apply_charge(state, charge, {}, None)
        handlers.apply_invoice(state, invoice(purchase_id, invoice_id="in_of_b", number="B-0001"), {}, None)
        handlers.apply_invoice_payment(state, invoice_payment("inpay_of_b", invoice="in_test_open_1"), {}, None)
        db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(InvoicePayment)
                             .execution_options(**{schools.ALL_SCHOOLS: True})) == 0
    db.session.expire_all()
    with schools.scope("a"):
        after = db.session.get(Purchase, purchase_id)
        assert (after.stripe_payment_intent_id, after.payment_method) == (intent, method) and method != "sepa_debit"
        with schools.scope("a"):
            handlers.apply_charge(state, charge, {}, None)  # the same event as A's: applied
            db.session.commit()
        db.session.expire_all()
        assert db.session.get(Purchase, purchase_id).payment_method == "sepa_debit"
    everywhere = {schools.ALL_SCHOOLS: True}
    assert db.session.scalar(select(Invoice.id).where(Invoice.stripe_invoice_id == "in_of_b")
                             .execution_options(**everywhere)) is None


def test_a_catalog_page_reads_its_own_schools_settings_and_standing(app, two_schools, db):
    course, learner = db.session.get(Lesson, "c9"), db.session.get(Person, "lrnb")

    def label() -> str:
        with app.test_request_context(headers=as_user("lrnb")):
            answers = [value for _receiver, value in signal("lms.catalog.rendering").send(app, courses=[course],
                                                                                         user=learner)
                       if value is not None]
        return str(answers[0].labels["c9"])

    with schools.scope("a"):  # a row of school A's naming B's learner and course: not B's standing
        db.session.add(Purchase(user_id="lrnb", course_id="c9", status="paid", amount=3000, currency="EUR"))
        db.session.commit()
    assert "data-price" in label() and "Purchased" not in label()
    purchases = Purchase.__table__
    db.session.execute(purchases.update().where(purchases.c.user_id == "lrnb").values(school_id="b"))
    db.session.commit()  # the same row, now school B's
    assert "Purchased" in label()


def test_a_stored_event_delivered_again_is_handled_as_the_school_it_was_stored_for(app, client, two_schools, db):
    """A Connect event stored failed for school A, delivered again once its account is school B's: handled as
    A's, as a replay would handle it (A no longer holds the account: ignored), not answered "already handled"
    while it stays failed."""
    from lms_stripe_plugin.testing import post_webhook

    from .refund_support import dispute
    from .stripe_stubs import event

    body = dict(event("charge.dispute.created", dispute(), "evt_of_a"), account="acct_moved")
    with schools.scope("a"):
        db.session.add(Event(id="evt_of_a", type="charge.dispute.created", livemode=False, payload=json.dumps(body),
                             status="failed", attempts=1, error="boom"))
        db.session.commit()
    with schools.scope("b"):
        db.session.execute(update(Settings).values(stripe_account_id="acct_moved"))
        db.session.commit()
    app.config["LMS_STRIPE_WEBHOOK_SECRETS"] = ["whsec_platform_1"]  # a platform's endpoint: the platform's secret
    response = post_webhook(client, body, "whsec_platform_1")
    assert (response.status_code, response.get_json()) == (200, {"status": "ignored"})
    row = db.session.scalar(select(Event).execution_options(**{schools.ALL_SCHOOLS: True}))
    db.session.refresh(row)
    assert (row.id, row.school_id, row.status, row.attempts) == ("evt_of_a", "a", "ignored", 2)
