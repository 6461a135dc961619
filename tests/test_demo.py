"""The demo LMS: it runs, seeds every kind of user and course, and uses the plugin through the host contract."""
import re

import pytest

from lms_stripe_plugin.demo import create_app
from lms_stripe_plugin.demo.models import Course, Enrollment, User, db
from lms_stripe_plugin.core.models import CourseOffer, FreeEnrollment


@pytest.fixture
def demo(tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'demo.sqlite'}", "TESTING": True,
                      "LMS_STRIPE_API_BASE": "http://127.0.0.1:9"})  # the sandbox is not needed to render
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
    assert "€49.90" in page and "¥8,000" in page and "Free" in page and 'name="price_max"' in page
    filtered = client.get("/catalog?price=free").get_data(as_text=True)
    assert "€49.90" not in filtered and "Workplace safety" in filtered


def test_course_page_offers_buy_or_asks_to_sign_in(demo):
    client = demo.test_client()
    assert "Sign in to buy" in client.get("/courses/1").get_data(as_text=True)
    _login(client, "learner")
    page = client.get("/courses/1").get_data(as_text=True)
    assert "€49.90" in page and "/payments/checkout/1" in page


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


def test_user_switcher_is_development_only(tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'd.sqlite'}", "DEMO_USER_SWITCHER": False})
    assert app.test_client().get("/demo/login/admin").status_code == 404


def test_the_demo_speaks_french_too(demo):
    from lms_stripe_plugin.demo.text import TEXT

    assert set(TEXT["fr"]) == set(TEXT["en"])
    client = demo.test_client()
    _login(client, "manager")
    client.get("/demo/lang/fr")
    page = client.get("/backoffice/enroll").get_data(as_text=True)
    assert "Back-office : inscrire des membres" in page and "Inscriptions" in page and "enroll members" not in page
    token = _csrf(page)
    members = [u.id for u in db.session.query(User).filter_by(username="learner")]
    client.post("/backoffice/enroll", data={"csrf_token": token, "course_id": 3, "user_ids": members})
    assert "1 membre(s) inscrit(s) à « Workplace safety », gratuitement." in client.get("/catalog").get_data(as_text=True)
    assert "Aucun cours ne correspond." in client.get("/catalog?price=paid&price_max=0,01").get_data(as_text=True)
