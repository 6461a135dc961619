"""The demo is copied by hosts: its redirects stay on the site and malformed input is a 4xx, never a 500."""
import pytest

from .test_demo import _login, demo  # noqa: F401  (demo is a fixture)


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
