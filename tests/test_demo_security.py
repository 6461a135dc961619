"""The demo is copied by hosts: its redirects stay on the site and malformed input is a 4xx, never a 500."""
import os
import zlib
from contextlib import contextmanager
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import HealthCheck, given, seed, settings, strategies as st
from sqlalchemy import event
from werkzeug.datastructures import MultiDict

from lms_stripe_plugin.demo import create_app
from lms_stripe_plugin.demo.host import DemoHost
from lms_stripe_plugin.demo.models import Course, Enrollment, User, db
from lms_stripe_plugin.demo.seed import ROLE_USERNAMES

from .test_demo import _csrf, _login, demo  # noqa: F401  (demo is a fixture)

#: Ids that int() or str.isdigit() take but that are not written plainly, or are out of the database's range.
NOT_IDS = ["01", "001", "0", "¹", "١", "１", "1_0", "+1", "-1", " 1", "1 ", "1\n", "1e3", "",
           "9" * 26, "2147483648"]


@contextmanager
def _nul_parameters(engine):
    """The query parameters holding a NUL, meanwhile: SQLite takes them, PostgreSQL refuses them (a 500)."""
    found = []

    def check(_conn, _cursor, _statement, parameters, _context, _executemany):
        for row in parameters if isinstance(parameters, list) else [parameters]:
            values = row.values() if isinstance(row, dict) else row or ()
            found.extend(value for value in values if isinstance(value, str) and "\x00" in value)

    event.listen(engine, "before_cursor_execute", check)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", check)


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


@pytest.mark.parametrize("fields", [{"title": "Safety\x00"}, {"title": "Safety\x1b[31m"}, {"title": "x" * 256},
                                    {"title": " "}, {"description": "A\x00B"}, {"description": "A\x07B"},
                                    {"description": "x" * 10_001}], ids=repr)
def test_course_settings_refuse_control_characters_and_overlong_texts(demo, fields):
    client = demo.test_client()
    _login(client, "admin")
    token = _csrf(client.get("/courses/8/settings").get_data(as_text=True))
    response = client.post("/courses/8/settings", data={"csrf_token": token, "title": "Welcome",
                                                        "description": "A free tour.", **fields})
    assert response.status_code == 400 and 'class="error"' in response.get_data(as_text=True)
    assert (db.session.get(Course, 8).title, db.session.get(Course, 8).description) == ("Welcome to the platform",
                                                                                         "A free tour.")


def test_course_descriptions_keep_their_tabs_and_line_breaks(demo):
    client = demo.test_client()
    _login(client, "admin")
    token = _csrf(client.get("/courses/8/settings").get_data(as_text=True))
    response = client.post("/courses/8/settings", data={"csrf_token": token, "title": " Welcome ",
                                                        "description": "Step 1:\tlog in.\r\nStep 2:\tread.\n"})
    assert response.status_code == 302
    assert (db.session.get(Course, 8).title, db.session.get(Course, 8).description) == (
        "Welcome", "Step 1:\tlog in.\r\nStep 2:\tread.")


@pytest.mark.parametrize("username", ["%00", "admin%00", "a" * 65, "%0D%0A", "%20"])
def test_user_switcher_answers_404_for_a_username_no_account_can_have(demo, username):
    with _nul_parameters(db.engine) as nul_parameters:
        assert demo.test_client().get(f"/demo/login/{username}").status_code == 404
    assert not nul_parameters


# -- any input, any role: a 4xx at worst ------------------------------------------------------------

#: Known-bad strings, mixed into every random draw.
HOSTILE = ["", " ", "\x00", "a\x00b", "\r\n", "a\rb", "\t", "\x1b[31m", "\x85", "\u202e", "\\",
           "//evil.example/", "/\t/evil.example/", "/\\evil.example", "https://evil.example/", "http://[",
           "<script>alert(1)</script>", "{{7*7}}", "%", "_", "../", "x" * 300, "-1", "1e3", "NaN", "9" * 26, "١٢",
           "¹", "49,90", "fr", "en", "free", "paid", "0,01", "on", "EUR", "JPY", "public", "partner", "search",
           "/catalog"]
#: Ids of the seeded rows, and strings that int() or str.isdigit() read as ids.
IDS = ["1", "2", "3", "5", "8", "9", "01", "0", "¹", "١", "１", "9" * 26, "2147483647", "2147483648", "-1", " 1"]
#: Characters slipped into a valid value: controls (NUL above all), a bidi override, a backslash, "%".
INSERTED = ["\x00", "\x00", "\x00", "\r\n", "\x1b", "\x7f", "\x85", "\u202e", "\\", "%", "/\t/"]
VALUE = st.one_of(st.sampled_from(HOSTILE), st.sampled_from(HOSTILE), st.sampled_from(IDS), st.text(max_size=30),
                  st.integers(-(10 ** 30), 10 ** 30).map(str))
#: A Referer or Accept-Language header (no newline: an HTTP server refuses a header split across lines).
HEADER = st.one_of(st.none(), st.sampled_from(["http://localhost/courses/1", "http://localhost//evil.example/",
                                               "http://localhost/\t/x", "http://evil.example/", "http://[",
                                               "fr;q=nan", "*;q=1e999", "fr-" + "x" * 300, "en;q=0.5, fr;q=x"]),
                   st.text(st.characters(min_codepoint=0, max_codepoint=0xFF, exclude_characters="\r\n"),
                           max_size=40))


def _segment(*likely: str):
    """A path segment, escaped: mostly one of ``likely``, else a known-bad string, any text, or not UTF-8."""
    escaped = st.one_of(*[st.sampled_from(likely)] * 3, st.sampled_from([*IDS, *HOSTILE[1:]]),
                        st.text(min_size=1, max_size=30)).map(lambda value: quote(value, safe=""))
    return st.one_of(*[escaped] * 5, st.sampled_from(["%FF", "%C0%AF", "%ED%A0%80", "%"]))


COURSE = _segment("1", "2", "3", "8")
#: A valid course settings form, which each example spoils in a few fields.
SETTINGS = {"title": "Workplace safety", "description": "Mandatory.\r\nFor everyone.", "lms_stripe-paid": "on",
            "lms_stripe-price": "19,90", "lms_stripe-currency": "EUR", "lms_stripe-vat_rate": "20",
            "lms_stripe-audience": "internal", "lms_stripe-on_sale": "on"}
#: Each route of the demo (and the plugin's payment page, which asks DemoHost for the course): its path
#: segment, and valid fields for its query string or form.
ROUTES = [("GET", "/", None, {}), ("GET", "/catalog", None, {"price": "paid", "price_max": "100"}),
          ("GET", "/courses/{}", COURSE, {}), ("POST", "/courses/{}/enroll", COURSE, {}),
          ("GET", "/courses/{}/settings", COURSE, {}), ("POST", "/courses/{}/settings", COURSE, SETTINGS),
          ("POST", "/courses/{}/settings", COURSE, {"title": "Welcome", "description": "A free tour.\n"}),
          ("GET", "/backoffice/enroll", None, {"q": "Learner", "course_id": "3", "user_ids": "3"}),
          ("POST", "/backoffice/enroll", None, {"q": "a", "course_id": "3", "user_ids": "3", "search": "Search"}),
          ("POST", "/backoffice/enroll", None, {"course_id": "3", "user_ids": "4"}),
          ("GET", "/demo/login/{}", _segment(*ROLE_USERNAMES), {"next": "/courses/1"}),
          ("GET", "/demo/logout", None, {}), ("GET", "/demo/lang/{}", _segment("fr", "en"), {}),
          ("GET", "/terms", None, {}), ("GET", "/payments/courses/{}", COURSE, {})]


def demo_requests(route):
    """Requests to ``route`` whose valid fields are spoilt in one or two places, with a few extra fields."""
    method, path, segment, valid = route
    spoil = st.one_of(st.tuples(st.just("replace"), VALUE), st.tuples(st.just("insert"), st.sampled_from(INSERTED)),
                      st.tuples(st.just("drop"), st.none()), st.tuples(st.just("repeat"), VALUE))
    spoilt = st.just([])
    if valid:
        spoilt = st.lists(st.tuples(st.sampled_from(sorted(valid)), spoil), min_size=1, max_size=2)

    @st.composite
    def draw_request(draw):
        fields = MultiDict(valid)
        for name, (how, value) in draw(spoilt):
            if how == "replace":
                fields.setlist(name, [value])
            elif how == "insert":
                fields.setlist(name, [fields.get(name, "")[:1] + value + fields.get(name, "")[1:]])
            elif how == "drop":
                fields.poplist(name)
            else:
                fields.add(name, value)
        for name, value in draw(st.lists(st.tuples(st.text(max_size=10), VALUE), max_size=2)):
            fields.add(name, value)
        query, form = (fields, MultiDict()) if method == "GET" else (MultiDict(), fields)
        return path.format(draw(segment)) if segment is not None else path, query, form

    return draw_request()


@pytest.fixture(scope="module")
def shared_demo(tmp_path_factory):
    """One demo for all the fuzzing below, its engine, and a client per role with its CSRF token.

    Whatever a request changes, the next finds a working demo. The tokens are read while every role can still
    enroll in course 1 (the course page's form carries one).
    """
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'demo.sqlite'}",
                      "TESTING": True, "LMS_STRIPE_API_BASE": "http://127.0.0.1:9"})
    clients = {None: (app.test_client(), "not-a-token")}
    for username in ROLE_USERNAMES:
        client = app.test_client()
        _login(client, username)
        clients[username] = client, _csrf(client.get("/courses/1").get_data(as_text=True))
    with app.app_context():
        return db.engine, clients


#: Examples per route and role; DEMO_FUZZ_EXAMPLES=1000 searches longer.
FUZZ = settings(max_examples=int(os.environ.get("DEMO_FUZZ_EXAMPLES", "30")), deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("username", [None, *ROLE_USERNAMES], ids=lambda username: username or "anonymous")
@pytest.mark.parametrize("route", ROUTES, ids=[f"{r[0]} {r[1]} {' '.join(r[3])}".strip() for r in ROUTES])
def test_any_request_to_the_demo_answers_below_500_and_stays_on_the_site(shared_demo, route, username):
    method = route[0]
    engine, clients = shared_demo
    client, token = clients[username]
    with _nul_parameters(engine) as nul_parameters:  # each request in an app context of its own, as served

        @FUZZ
        @seed(zlib.crc32(f"{route[:2]} {sorted(route[3])} {username}".encode()))  # the same requests on every run
        @given(request=demo_requests(route), with_token=st.sampled_from([True, True, False]), referrer=HEADER,
               language=HEADER)
        def answers(request, with_token, referrer, language):
            path, query, form = request
            nul_parameters.clear()
            if with_token and method == "POST":
                form["csrf_token"] = token
            headers = {"Referer": referrer, "Accept-Language": language}
            response = client.open(path, method=method, query_string=query, data=form,
                                   headers={name: value for name, value in headers.items() if value})
            assert response.status_code < 500
            assert not nul_parameters, "PostgreSQL refuses a NUL in a query: it would answer 500"
            if 300 <= response.status_code < 400:
                location = response.headers["Location"]
                assert urlsplit(location).netloc in ("", "localhost") and location.isprintable()
            client.get(f"/demo/login/{username}" if username else "/demo/logout")  # as the role again

        answers()
