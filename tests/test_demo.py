"""The demo LMS: it runs, seeds every kind of user and course, and uses the plugin through the host contract."""
import re
from contextlib import contextmanager

import pytest
from sqlalchemy import event, insert

from lms_stripe_plugin.demo import SANDBOX_KEYS, create_app
from lms_stripe_plugin.demo.members import LATEST_ENROLLMENTS, SHOWN
from lms_stripe_plugin.demo.models import Course, Enrollment, User, db
from lms_stripe_plugin.core.models import CourseOffer, FreeEnrollment, Invoice, PaymentRequest
from lms_stripe_plugin.demo.seed import ROLE_USERNAMES, seed_payment_requests
from lms_stripe_plugin.sandbox import SandboxServer
from lms_stripe_plugin.core.enums import Channel
from lms_stripe_plugin.messages import Outgoing
from lms_stripe_plugin.messages.mail import mail_backend
from lms_stripe_plugin.messages.sms import sms_backend


@pytest.fixture
def demo(tmp_path, new_demo_database):
    app = create_app({"SQLALCHEMY_DATABASE_URI": new_demo_database, "TESTING": True,
                      "LMS_STRIPE_API_BASE": "http://127.0.0.1:9",  # the sandbox is not needed to render
                      "LMS_STRIPE_MAIL_FILE": str(tmp_path / "mail.mbox"), "LMS_STRIPE_SMS_FILE": str(tmp_path / "sms.jsonl")})
    with app.app_context():
        yield app


def _login(client, username):
    assert client.get(f"/demo/login/{username}").status_code == 302


def _csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_seed_has_every_role_audience_and_currency(demo):
    users = {u.username: u for u in db.session.query(User)}
    assert set(users) == {"admin", "manager", "learner", "employee", "partner"}
    assert {u.audience for u in users.values()} == {"internal", "partner", "public"}
    offers = db.session.query(CourseOffer).all()
    assert {o.currency for o in offers} >= {"EUR", "JPY"}
    assert db.session.query(Course).count() > len(offers)  # some courses are free


def test_catalog_shows_prices_and_filters(demo):
    client = demo.test_client()
    page = client.get("/catalog").get_data(as_text=True)
    assert "€49.90" in page and "Not sold in EUR" in page and "Free" in page and 'name="price_max"' in page
    filtered = client.get("/catalog?price=free").get_data(as_text=True)
    assert "€49.90" not in filtered and "Workplace safety" in filtered
    # The demo school accepts four currencies: a visitor switches to yen, then to dollars.
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    switched = client.post("/payments/currency", data={"csrf_token": token, "currency": "JPY", "next": "/catalog"})
    assert switched.status_code == 303 and switched.headers["Location"] == "/catalog"
    page = client.get("/catalog").get_data(as_text=True)
    assert "¥8,000" in page and "Not sold in JPY" in page and "€49.90" not in page
    client.post("/payments/currency", data={"csrf_token": token, "currency": "USD", "next": "/catalog"})
    page = client.get("/catalog").get_data(as_text=True)
    assert "$54.00" in page and "$19.90" in page and "$139.00" in page


def test_course_page_offers_buy_or_asks_to_sign_in(demo):
    client = demo.test_client()
    page = client.get("/courses/1").get_data(as_text=True)
    # The demo's host adapter names its sign-in page (Host.sign_in_url), which brings the visitor back.
    [sign_in] = re.findall(r'<a class="button lms-stripe-sign-in" href="([^"]+)">Sign in to buy', page)
    assert sign_in == "/demo/sign-in?next=/courses/1"
    accounts = client.get(sign_in).get_data(as_text=True)
    assert 'href="/demo/login/learner?next=/courses/1"' in accounts
    assert client.get("/demo/login/learner?next=/courses/1").headers["Location"] == "/courses/1"
    page = client.get("/courses/1").get_data(as_text=True)
    assert "Buy for €49.90" in page and "/payments/checkout/1" in page


def test_the_sign_in_page_brings_back_only_to_this_site(demo):
    client = demo.test_client()
    page = client.get("/demo/sign-in?next=https://evil.example/").get_data(as_text=True)
    assert "evil.example" not in page and 'href="/demo/login/learner?next=/catalog"' in page


def test_self_enrollment_in_a_paid_course_goes_to_the_payment_page(demo):
    client = demo.test_client()
    _login(client, "learner")
    token = _csrf(client.get("/courses/1").get_data(as_text=True))
    response = client.post("/courses/1/enroll", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].endswith("/payments/courses/1")
    assert db.session.query(Enrollment).count() == 0


def test_course_settings_form_saves_a_price_and_refuses_bad_input(demo):
    client = demo.test_client()
    _login(client, "admin")
    page = client.get("/courses/3/settings").get_data(as_text=True)
    assert 'name="lms_stripe-price"' in page
    base = {"csrf_token": _csrf(page), "title": "Workplace safety", "description": "d", "lms_stripe-paid": "on",
            "lms_stripe-currency": "EUR", "lms_stripe-vat_rate": "20", "lms_stripe-audience": "internal",
            "lms_stripe-on_sale": "on"}
    bad = client.post("/courses/3/settings", data={**base, "lms_stripe-price": "douze", "title": "Renamed"})
    assert bad.status_code == 400 and 'id="lms_stripe-price-error"' in bad.get_data(as_text=True)
    assert db.session.get(Course, 3).title == "Workplace safety"
    client.get("/demo/lang/fr")  # a French administrator types a decimal comma
    ok = client.post("/courses/3/settings", data={**base, "lms_stripe-price": "19,90"})
    assert ok.status_code == 302
    offer = db.session.query(CourseOffer).filter_by(course_id="3").one()
    assert (offer.amount, offer.audience) == (1990, "internal")


def test_backoffice_enrolls_members_for_free(demo):
    client = demo.test_client()
    _login(client, "manager")
    token = _csrf(client.get("/backoffice/enroll").get_data(as_text=True))
    members = [u.id for u in db.session.query(User).filter(User.username.in_(["learner", "partner"]))]
    response = client.post("/backoffice/enroll", data={"csrf_token": token, "course_id": 2, "user_ids": members})
    assert response.status_code == 302
    assert db.session.query(Enrollment).filter_by(course_id=2).count() == 2
    assert db.session.query(FreeEnrollment).filter_by(course_id="2").count() == 2


def test_learners_cannot_reach_the_backoffice_or_admin_pages(demo):
    client = demo.test_client()
    _login(client, "learner")
    assert client.get("/backoffice/enroll").status_code == 403
    assert client.get("/payments/admin/settings").status_code == 403
    assert client.get("/courses/1/settings").status_code == 403


def test_user_switcher_is_development_only(new_demo_database):
    app = create_app({"SQLALCHEMY_DATABASE_URI": new_demo_database, "DEMO_USER_SWITCHER": False})
    assert app.test_client().get("/demo/login/admin").status_code == 404


def test_the_demo_speaks_french_too(demo):
    from lms_stripe_plugin.demo.text import TEXT

    assert set(TEXT["fr"]) == set(TEXT["en"])
    client = demo.test_client()
    _login(client, "manager")
    client.get("/demo/lang/fr")
    page = client.get("/backoffice/enroll").get_data(as_text=True)
    assert "Back-office : inscrire des membres" in page and "Inscriptions" in page and "enroll members" not in page
    assert '<button type="submit">Inscrire</button>' in page  # a manager enrolls others: not « S'inscrire »
    token = _csrf(page)
    members = [u.id for u in db.session.query(User).filter_by(username="learner")]
    client.post("/backoffice/enroll", data={"csrf_token": token, "course_id": 3, "user_ids": members})
    assert "1 membre(s) inscrit(s) à « Workplace safety », gratuitement." in client.get("/catalog").get_data(as_text=True)
    assert "Aucun cours ne correspond." in client.get("/catalog?price=paid&price_max=0,01").get_data(as_text=True)


def _add_members(count: int) -> None:
    if not count:
        return
    db.session.execute(insert(User), [{"username": f"member{i:05}", "name": f"Member {i:05}", "role": "learner",
                                       "email": f"member{i:05}@demo.test", "audience": "public"}
                                      for i in range(count)])
    db.session.commit()


@contextmanager
def _reads():
    """The SQL statements run and the users loaded meanwhile (from rows, not from the session's identity map)."""
    statements, users = [], []

    def on_execute(_conn, _cursor, statement, *_args):
        statements.append(statement)

    def on_load(user, _context):
        users.append(user)

    db.session.expunge_all()
    event.listen(db.engine, "before_cursor_execute", on_execute)
    event.listen(User, "load", on_load)
    try:
        yield statements, users
    finally:
        event.remove(db.engine, "before_cursor_execute", on_execute)
        event.remove(User, "load", on_load)


def _options(page: str, select_id: str) -> list[str]:
    select = re.search(rf'<select id="{select_id}".*?</select>', page, re.S).group(0)
    return re.findall(r"<option value=\"([^\"]+)\"", select)


@pytest.mark.parametrize("username", [None, "learner", "admin"])
def test_pages_load_the_switcher_s_role_accounts_only_however_many_users(demo, username):
    client = demo.test_client()
    if username:
        _login(client, username)
    counts = []
    for added in (0, 2000):
        _add_members(added)
        for url in ("/catalog", "/courses/1"):
            client.get(url)  # caches warm
            with _reads() as (statements, users):
                page = client.get(url).get_data(as_text=True)
            assert len(users) <= len(ROLE_USERNAMES) + 1  # + the signed-in user
            assert len(_options(page, "demo-user")) == len(ROLE_USERNAMES)
            counts.append(len(statements))
    assert counts[:2] == counts[2:]  # as many queries with 2,005 users as with 5


def test_switcher_off_loads_no_user_list(new_demo_database):
    app = create_app({"SQLALCHEMY_DATABASE_URI": new_demo_database, "DEMO_USER_SWITCHER": False,
                      "LMS_STRIPE_API_BASE": "http://127.0.0.1:9"})
    with app.app_context(), _reads() as (_statements, users):
        page = app.test_client().get("/catalog").get_data(as_text=True)
    assert 'id="demo-user"' not in page and users == []


def test_backoffice_lists_a_bounded_number_of_members_and_enrollments(demo):
    _add_members(2000)
    db.session.execute(insert(Enrollment), [{"user_id": user_id, "course_id": 3} for user_id in range(6, 106)])
    db.session.commit()
    client = demo.test_client()
    _login(client, "manager")
    with _reads() as (_statements, users):
        page = client.get("/backoffice/enroll").get_data(as_text=True)
    assert len(_options(page, "user_ids")) == SHOWN
    assert "Only the first 50 matches are listed" in page
    assert page.count("<td>Workplace safety</td>") == LATEST_ENROLLMENTS
    assert len(users) <= SHOWN + LATEST_ENROLLMENTS + len(ROLE_USERNAMES) + 1


def test_backoffice_search_finds_members_by_name_email_or_username(demo):
    _add_members(2000)
    client = demo.test_client()
    _login(client, "manager")
    ids = {u.username: str(u.id) for u in db.session.query(User).filter(User.username.like("member0199%"))}
    for text in ("Member 01999", "MEMBER01999@DEMO", "member01999"):
        assert _options(client.get("/backoffice/enroll", query_string={"q": text}).get_data(as_text=True),
                        "user_ids") == [ids["member01999"]]
    found = _options(client.get("/backoffice/enroll?q=Member+0199").get_data(as_text=True), "user_ids")
    assert sorted(found) == sorted(ids.values())
    for wildcard in ("%", "_", "\\"):  # LIKE's wildcards and escape are plain characters
        assert _options(client.get("/backoffice/enroll", query_string={"q": wildcard}).get_data(as_text=True),
                        "user_ids") == []


def test_backoffice_keeps_members_chosen_across_searches_and_enrolls_them(demo):
    _add_members(2000)
    client = demo.test_client()
    _login(client, "manager")
    token = _csrf(client.get("/backoffice/enroll").get_data(as_text=True))
    first, second = (str(db.session.query(User).filter_by(username=name).one().id)
                     for name in ("member00007", "member01500"))
    page = client.post("/backoffice/enroll", data={"csrf_token": token, "course_id": "3", "user_ids": [first],
                                                   "q": "Member 01500", "search": "Search"})
    assert page.status_code == 200
    page = page.get_data(as_text=True)
    assert _options(page, "user_ids") == [first, second]
    assert f'<option value="{first}" selected>' in page and f'<option value="{second}">' in page
    assert '<option value="3" selected>' in page
    assert db.session.query(Enrollment).count() == 0
    response = client.post("/backoffice/enroll", data={"csrf_token": token, "course_id": "3",
                                                       "user_ids": [first, second], "q": "Member 01500"})
    assert response.status_code == 302
    assert {e.user_id for e in db.session.query(Enrollment).filter_by(course_id=3)} == {int(first), int(second)}


def test_backoffice_refuses_too_many_members_or_a_bad_search(demo):
    client = demo.test_client()
    _login(client, "manager")
    token = _csrf(client.get("/backoffice/enroll").get_data(as_text=True))
    too_many = client.post("/backoffice/enroll", data={"csrf_token": token, "course_id": "3",
                                                       "user_ids": [str(i) for i in range(1, 202)]})
    assert too_many.status_code == 400 and "at most 200 members" in too_many.get_data(as_text=True)
    for text in ("x" * 101, "a\x00b", "a\x1bb"):
        assert client.get("/backoffice/enroll", query_string={"q": text}).status_code == 400
    assert db.session.query(Enrollment).count() == 0


def test_the_inbox_shows_a_user_the_messages_sent_to_them_with_this_lms_links_only(demo):
    """The demo's inbox reads the plugin's file backends: a learner sees their e-mail and SMS, the pay link
    of this LMS as a link and any other address as text; another user sees none of it."""
    base = demo.config["LMS_STRIPE_PUBLIC_URL"].rstrip("/")
    with demo.test_request_context():
        mail = mail_backend(demo)
        sms = sms_backend(demo)
    mail.send(Outgoing(message_id=1, channel=Channel.EMAIL, recipient="learner@demo.test", subject="Demande de paiement",
                       body=f"Payez ici : {base}/payments/pay/tok1 ou http://evil.test/x", html=None))
    sms.send(Outgoing(message_id=2, channel=Channel.SMS, recipient="+33612345678", subject="",
                      body=f"Demo School: 90,00 EUR. {base}/payments/pay/tok2", html=None))
    client = demo.test_client()
    _login(client, "learner")
    page = client.get("/inbox").get_data(as_text=True)
    assert f'<a href="{base}/payments/pay/tok1">' in page and f'<a href="{base}/payments/pay/tok2">' in page
    assert "http://evil.test/x" in page and 'href="http://evil.test' not in page
    _login(client, "employee")
    page = client.get("/inbox").get_data(as_text=True)
    assert "tok1" not in page and "tok2" not in page
    assert "pay/" not in client.get("/inbox").get_data(as_text=True)


def test_the_learner_has_a_mobile_number_for_requests_by_sms(demo):
    learner = db.session.query(User).filter_by(username="learner").one()
    assert demo.extensions["lms_stripe"].host.user_phone(learner) == "+33612345678"


def test_the_demo_starts_with_invoices_and_requests_in_the_learners_inbox(tmp_path, new_demo_database):
    """With the sandbox up, the demo's administrator has invoiced two learners through the plugin's pages:
    the invoices are issued at Stripe, the requests' e-mails and SMS wait in their inbox with pay links."""
    with SandboxServer(webhook_sink=lambda payload, headers: 503,
                       webhook_secret=SANDBOX_KEYS["webhook_secret"]) as sandbox:
        app = create_app({"SQLALCHEMY_DATABASE_URI": new_demo_database, "TESTING": True,
                          "LMS_STRIPE_API_BASE": sandbox.url, "LMS_STRIPE_MAIL_FILE": str(tmp_path / "mail.mbox"),
                          "LMS_STRIPE_SMS_FILE": str(tmp_path / "sms.jsonl")})
        with app.app_context():
            seed_payment_requests(app)
            invoices = db.session.query(Invoice).order_by(Invoice.id).all()
            assert [(i.status, i.gross, i.amount_remaining) for i in invoices] == [("open", 30000, 30000),
                                                                                   ("open", 12000, 12000),
                                                                                   ("open", 8000, 8000)]
            assert all(i.stripe_invoice_id and i.number for i in invoices)
            assert [r.amount for r in db.session.query(PaymentRequest).order_by(PaymentRequest.id)] == [9000, 12000]
            client = app.test_client()
            _login(client, "learner")
            page = client.get("/inbox").get_data(as_text=True)
            link = re.search(r'<a href="(http://127\.0\.0\.1:5000/payments/pay/[^"]+)"', page).group(1)
            assert "90.00" in client.get(link.removeprefix("http://127.0.0.1:5000")).get_data(as_text=True)


@pytest.fixture
def platform_demo(tmp_path, new_demo_database):
    """The demo as a platform of two schools (``python -m lms_stripe_plugin.demo --platform``)."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": new_demo_database, "TESTING": True,
                      "LMS_STRIPE_API_BASE": "http://127.0.0.1:9", "LMS_STRIPE_PLATFORM": True,
                      "LMS_STRIPE_PUBLISHABLE_KEY": SANDBOX_KEYS["publishable_key"],
                      "LMS_STRIPE_SECRET_KEY": SANDBOX_KEYS["secret_key"],
                      "LMS_STRIPE_WEBHOOK_SECRETS": [SANDBOX_KEYS["webhook_secret"]],
                      "LMS_STRIPE_MAIL_FILE": str(tmp_path / "mail.mbox"), "LMS_STRIPE_SMS_FILE": str(tmp_path / "sms.jsonl")})
    with app.app_context():
        yield app


def test_the_demo_as_a_platform_has_two_schools_each_with_its_own_catalog_and_settings(platform_demo):
    from lms_stripe_plugin.core import schools
    from lms_stripe_plugin.core.models import Settings

    client = platform_demo.test_client()
    visitor = client.get("/catalog").get_data(as_text=True)
    assert "École Lumière" in visitor and "Python for beginners" in visitor and "Pottery" not in visitor
    client.get("/demo/school/nord")
    nord = client.get("/catalog").get_data(as_text=True)
    assert "Atelier Nord" in nord and "Pottery for beginners" in nord and "Python for beginners" not in nord
    assert "60.00" in nord or "60,00" in nord  # priced in its own school
    _login(client, "nord-admin")
    settings = client.get("/payments/admin/settings").get_data(as_text=True)
    assert 'value="Atelier Nord"' in settings and "École Lumière" not in settings
    online = client.get("/payments/admin/online-payment").get_data(as_text=True)
    assert "Activate online payment" in online
    _login(client, "admin")
    assert 'value="École Lumière"' in client.get("/payments/admin/settings").get_data(as_text=True)
    rows = db.session.query(Settings.school_id, Settings.school_name).execution_options(
        **{schools.ALL_SCHOOLS: True}).order_by(Settings.school_id).all()
    assert rows == [("lumiere", "École Lumière"), ("nord", "Atelier Nord")]
    offers = db.session.query(CourseOffer.school_id).execution_options(**{schools.ALL_SCHOOLS: True}).all()
    assert {school for (school,) in offers} == {"lumiere", "nord"}
