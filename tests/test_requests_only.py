"""A school that sells no course in the catalog ("Invoices, payment requests and payment links only"): course
prices are neither shown nor asked, Buy is refused with a message, enrollment is the host's alone, and the
invoices, requests and links work as before."""
import re

import pytest
from werkzeug.datastructures import MultiDict

from lms_stripe_plugin.accounts import settings as payment_settings

from .conftest import as_user
from .link_support import make_link
from .request_support import open_invoice, open_request
from .test_catalog import send, sql_statements


@pytest.fixture
def requests_only(app, client, db, people, priced, configured):
    page = client.get("/payments/admin/settings", headers=as_user("adm")).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = {"csrf_token": token, "enabled": "on", "requests_only": "on", "default_currency": "EUR",
            "default_vat_rate": "20", "reminder_days": "-3, 1, 7", "reminder_max": "3", "balance_grace_days": "7",
            "topup_minimum": "10", "topup_maximum": "1000"}
    saved = client.post("/payments/admin/settings", data=form, headers=as_user("adm"), follow_redirects=True)
    text = saved.get_data(as_text=True)
    assert saved.status_code == 200 and "no course is sold in the catalog" in text, text
    db.session.expire_all()
    payment_settings.forget_cached()
    assert payment_settings.load(db.session).requests_only
    return token


def test_the_catalog_and_the_course_pages_show_no_price(app, requests_only, priced, people):
    with app.test_request_context(headers=as_user("u1")):
        assert send(app, "lms.catalog.rendering", courses=list(priced.values()), user=people["u1"]) is None
        assert send(app, "lms.catalog.filtering", courses=list(priced.values()),
                    args=MultiDict({"price": "paid"})) is None
        assert send(app, "lms.course.detail_rendering", course=priced["c1"], user=people["u1"]) is None
        assert send(app, "lms.course.settings_form", course=priced["c1"]) is None
        assert send(app, "lms.course.settings_saved", course=priced["c1"], form=MultiDict()) is None
        # Enrolling is the host's alone: no payment asked, even for a course priced before.
        assert send(app, "lms.enrollment.requested", course=priced["c1"], user=people["u1"]) is None


def test_the_catalog_of_a_school_selling_nothing_reads_no_offers(app, db, requests_only, priced, people):
    app.extensions["lms_stripe"].catalog_snapshots.clear()  # offers not kept: a page selling would read them
    for user in (people["u1"], None):
        with app.test_request_context(headers=as_user("u1") if user else {}), sql_statements(db) as statements:
            assert send(app, "lms.catalog.rendering", courses=list(priced.values()), user=user) is None
        plugin = [statement for statement in statements if "lms_stripe_" in statement]
        assert len(plugin) == 1 and "lms_stripe_settings" in plugin[0], plugin
        assert "lms_stripe_course_offers" not in plugin[0]


def test_buy_is_refused_with_a_message(client, requests_only):
    refused = client.post("/payments/checkout/c1", data={"csrf_token": requests_only}, headers=as_user("u1"))
    assert refused.status_code == 409 and "does not sell its courses online" in refused.get_data(as_text=True)


def test_requests_and_links_still_open(client, db, host, requests_only):
    _request_id, token = open_request(db, open_invoice(db, host))
    page = client.get(f"/payments/pay/{token}", headers=as_user("u1"))
    assert page.status_code == 200 and 'type="submit"' in page.get_data(as_text=True)
    _link_id, link_token = make_link(db)
    assert client.get(f"/payments/link/{link_token}").status_code == 200


def test_the_choice_is_shown_in_french(client, requests_only, host):
    host.locale = "fr"
    page = client.get("/payments/admin/settings", headers=as_user("adm")).get_data(as_text=True)
    assert "aucun cours n’est vendu" in page
