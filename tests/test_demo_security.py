"""The demo is copied by hosts: its redirects stay on the site and malformed input is a 4xx, never a 500."""
from urllib.parse import quote

import pytest

from lms_stripe_plugin.demo.host import DemoHost
from lms_stripe_plugin.demo.models import Enrollment, User, db

from .test_demo import _csrf, _login, demo  # noqa: F401  (demo is a fixture)

#: Ids that int() or str.isdigit() take but that are not written plainly, or are out of the database's range.
NOT_IDS = ["01", "001", "0", "¹", "١", "１", "1_0", "+1", "-1", " 1", "1 ", "1\n", "1e3", "",
           "9" * 26, "2147483648"]


@pytest.mark.parametrize("target", [
    "/%09/evil.example/", "/%0A/evil.example/", "/%0D/evil.example/", "%0D", "%0A", "/a%0D%0ASet-Cookie:%20x=1",
    "//evil.example/", "/%5Cevil.example/", "/%5C%5Cevil.example/", "https://evil.example/", "http:/evil.example",
    "javascript:alert(1)", "evil.example", "", "/%00", "/%7F/evil.example/", "/%C2%85/evil.example/",
])
def test_login_goes_to_the_catalog_unless_next_is_a_path_of_this_site(demo, target):
    response = demo.test_client().get(f"/demo/login/learner?next={target}")
    assert response.status_code == 302 and response.headers["Location"] == "/catalog"


@pytest.mark.parametrize("target", ["/courses/2", "/catalog?price=free&price_max=10", "/payments/invoices"])
def test_login_returns_to_the_page_it_was_asked_from(demo, target):
    response = demo.test_client().get("/demo/login/learner", query_string={"next": target})
    assert response.status_code == 302 and response.headers["Location"] == target


@pytest.mark.parametrize("referrer, location", [
    ("http://localhost/courses/2?x=1", "/courses/2?x=1"),
    ("http://LOCALHOST/courses/2", "/courses/2"),
    ("http://localhost", "/"),
    ("http://localhost//evil.example/", "/catalog"),
    ("http://localhost/\t/evil.example/", "/catalog"),
    ("http://localhost/\\evil.example/", "/catalog"),
    ("http://localhost.evil.example/", "/catalog"),
    ("http://localhost@evil.example/", "/catalog"),
    ("https://localhost/courses/2", "/catalog"),
    ("http://evil.example/", "/catalog"),
    ("http://[localhost/", "/catalog"),
    ("/courses/2", "/catalog"),
    ("", "/catalog"),
])
def test_language_switcher_goes_back_only_to_a_page_of_this_site(demo, referrer, location):
    response = demo.test_client().get("/demo/lang/fr", headers={"Referer": referrer})
    assert response.status_code == 302 and response.headers["Location"] == location


@pytest.mark.parametrize("course_id", [i for i in NOT_IDS if i])
def test_course_urls_take_only_plain_ids(demo, course_id):
    client = demo.test_client()
    segment = quote(course_id, safe="")
    assert client.get(f"/courses/{segment}").status_code == 404
    _login(client, "admin")
    assert client.get(f"/courses/{segment}").status_code == 404
    assert client.get(f"/courses/{segment}/settings").status_code == 404
    assert client.post(f"/courses/{segment}/enroll").status_code == 404
    payment_page = client.get(f"/payments/courses/{segment}")  # the plugin asks DemoHost.get_course
    assert payment_page.status_code == 404 and "This course is free" not in payment_page.get_data(as_text=True)


def test_course_urls_take_ids_up_to_the_database_s_largest(demo):
    client = demo.test_client()
    assert client.get("/courses/1").status_code == 200
    assert client.get("/courses/2147483647").status_code == 404


@pytest.mark.parametrize("value", NOT_IDS + [1, None, True, b"1"])
def test_host_finds_no_user_or_course_for_an_id_not_written_plainly(demo, value):
    assert DemoHost().get_course(value) is None and DemoHost().get_user(value) is None


def test_host_finds_users_and_courses_by_plain_id(demo):
    assert DemoHost().get_course("2").title == "Advanced Flask"
    assert DemoHost().get_user("1").username == "admin"
    assert DemoHost().get_course("2147483647") is None


def test_backoffice_takes_only_plain_ids_for_the_course_and_members(demo):
    client = demo.test_client()
    _login(client, "manager")
    token = _csrf(client.get("/backoffice/enroll").get_data(as_text=True))
    learner = str(db.session.query(User).filter_by(username="learner").one().id)
    for course_id, user_id in [("9" * 26, learner), ("١", learner), ("02", learner),
                               ("2", "9" * 26), ("2", "0" + learner), ("2", "¹")]:
        response = client.post("/backoffice/enroll", data={"csrf_token": token, "course_id": course_id,
                                                           "user_ids": [user_id]})
        assert response.status_code == 302
        assert db.session.query(Enrollment).count() == 0


def test_session_cookie_is_same_site_lax_and_hidden_from_scripts(demo):
    cookie = demo.test_client().get("/demo/login/learner").headers["Set-Cookie"]
    assert "; SameSite=Lax" in cookie and "; HttpOnly" in cookie and "; Secure" not in cookie
