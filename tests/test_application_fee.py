"""The platform's share of a school's payments (``LMS_STRIPE_APPLICATION_FEE``): on each payment-mode Checkout
Session of the school (a direct charge), and in the course form's "you receive" estimate."""
import pytest

from lms_stripe_plugin.accounts import connect
from lms_stripe_plugin.core import schools
from lms_stripe_plugin.errors import ConfigurationError
from lms_stripe_plugin.money import Money

from .conftest import as_user


def _params(*amounts, mode="payment"):
    return {"mode": mode, "payment_intent_data": {"metadata": {"lms_purchase_id": "7"}},
            "line_items": [{"quantity": 1, "price_data": {"currency": "eur", "unit_amount": amount}}
                           for amount in amounts]}


@pytest.fixture
def platform(app):
    app.config.update(LMS_STRIPE_PLATFORM=True, LMS_STRIPE_APPLICATION_FEE=lambda school: {"a": 250}.get(school))
    yield app
    app.config.update(LMS_STRIPE_PLATFORM=False, LMS_STRIPE_APPLICATION_FEE=None)


def test_the_fee_is_the_schools_share_of_the_payment_rounded_half_up(platform):
    with schools.scope("a"):
        params = connect.with_application_fee(_params(4990, 1000))
        assert params["payment_intent_data"] == {"metadata": {"lms_purchase_id": "7"}, "application_fee_amount": 150}
        rate = connect.application_fee_rate()
        assert connect.application_fee(Money(4990, "EUR"), rate) == Money(125, "EUR")  # 124.75
        assert connect.application_fee(Money(10, "EUR"), rate) is None  # 0.25 of a cent: nothing
        assert connect.with_application_fee(_params(4990, mode="setup")) == _params(4990, mode="setup")
    with schools.scope("b"):  # no fee for this school
        assert connect.with_application_fee(_params(4990)) == _params(4990)


def test_no_fee_outside_platform_mode(app):
    app.config["LMS_STRIPE_APPLICATION_FEE"] = 250
    try:
        assert connect.with_application_fee(_params(4990)) == _params(4990)
    finally:
        app.config["LMS_STRIPE_APPLICATION_FEE"] = None


@pytest.mark.parametrize("wrong", [-1, 10001, "2.5", 2.5, True])
def test_a_wrong_fee_is_refused_with_what_to_write(platform, wrong):
    platform.config["LMS_STRIPE_APPLICATION_FEE"] = wrong
    with pytest.raises(ConfigurationError, match="basis points"):
        connect.application_fee_rate()


def test_the_course_form_estimate_deducts_the_platform_fee(platform, client, host, people):
    host.schools = {"adm": "a"}
    page = client.get("/payments/admin/pricing-preview?price=49.90&currency=EUR&vat_rate=20", headers=as_user("adm"))
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Platform fee (2.5" in text and "1.25" in text
    # The card fee (1.5 % + 0.25 = 1.00) and the platform's 1.25 leave 47.65.
    assert "47.65" in text
    host.schools = {"adm": "b"}
    other = client.get("/payments/admin/pricing-preview?price=49.90&currency=EUR&vat_rate=20", headers=as_user("adm"))
    assert "Platform fee" not in other.get_data(as_text=True)
