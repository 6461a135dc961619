"""The administrators' "Stripe events" page: failed and rejected events beside each other, with why, a page
at a time, and "Handle again" for the failed ones. Administrators only."""
import re

import pytest
import responses
from sqlalchemy import select

from lms_stripe_plugin.core.models import Event, Purchase
from lms_stripe_plugin.testing import post_webhook

from .conftest import KEYS, STRIPE, as_user
from .refund_support import csrf, text
from .stripe_stubs import checkout_session, event, open_purchase, paid_session, payment_intent, stripe_error

SECRET = KEYS["webhook_secrets"][0]
PAGE = "/payments/admin/events"


@pytest.fixture
def purchase(db, people, priced, configured):
    return open_purchase(db)


def _async_failed(purchase, event_id):
    return event("checkout.session.async_payment_failed", checkout_session(
        purchase.id, status="complete", payment_status="unpaid", payment_intent="pi_test_1"), event_id)


def _session_url(purchase):
    return re.compile(rf"{STRIPE}/v1/checkout/sessions/cs_test_{purchase.id:04d}(\?.*)?$")


def _one_of_each(client, purchase, stripe_http):
    """A failed event (Stripe down), a rejected one (live mode), a handled one and an ignored one."""
    stripe_error(stripe_http, responses.GET, _session_url(purchase), 500, "api_error", "An unknown error occurred")
    assert post_webhook(client, _async_failed(purchase, "evt_failed"), SECRET).status_code == 500
    live = event("checkout.session.completed", checkout_session(purchase.id), "evt_live") | {"livemode": True}
    assert post_webhook(client, live, SECRET).json == {"status": "rejected"}
    assert post_webhook(client, event("customer.created", {"id": "cus_1", "object": "customer"}, "evt_ignored"),
                        SECRET).json == {"status": "ignored"}
    foreign = dict(checkout_session(999, session_id="cs_test_foreign", status="expired"), metadata={})
    assert post_webhook(client, event("checkout.session.expired", foreign, "evt_ok"), SECRET).json == \
        {"status": "handled"}
    stripe_http.reset()


def test_failed_and_rejected_events_are_listed_with_why_and_nothing_else(client, db, purchase, stripe_http):
    _one_of_each(client, purchase, stripe_http)
    page = client.get(PAGE, headers=as_user("adm"))
    assert page.status_code == 200
    body, shown = page.get_data(as_text=True), text(page)
    assert re.findall(r'data-event="([^"]+)"', body) == ["evt_live", "evt_failed"]  # newest first
    assert "Failed" in shown and "Rejected" in shown
    assert "Live or test mode differs from the secret key's" in shown and "live mode event" in shown
    assert "GatewayError: Stripe could not be reached" in shown and "Traceback" not in shown
    assert "checkout.session.async_payment_failed" in shown and "checkout.session.completed" in shown
    assert body.count("Handle again") == 1  # only the failed one
    assert "lms_purchase_id" not in body  # the payload is not shown


def test_the_page_is_linked_from_the_administration_menu_and_in_french(client, host, db, purchase, stripe_http):
    _one_of_each(client, purchase, stripe_http)
    assert 'href="/payments/admin/events"' in client.get("/payments/admin/audit", headers=as_user("adm")) \
        .get_data(as_text=True)
    host.locale = "fr"
    shown = text(client.get(PAGE, headers=as_user("adm")))
    assert "Événements Stripe" in shown and "Traiter à nouveau" in shown and "Rejeté" in shown
    assert "Mode réel ou test différent de celui de la clé secrète" in shown


@pytest.mark.parametrize("user, status", [(None, 401), ("u1", 403), ("mgr", 403)])
def test_only_administrators_see_the_page_or_handle_an_event(client, db, purchase, stripe_http, user, status):
    _one_of_each(client, purchase, stripe_http)
    headers = as_user(user) if user else {}
    assert client.get(PAGE, headers=headers).status_code == status
    token = csrf(client, PAGE)
    response = client.post(f"{PAGE}/handle", data={"csrf_token": token, "event_id": "evt_failed"}, headers=headers)
    assert response.status_code == status
    db.session.expire_all()
    assert db.session.get(Event, "evt_failed").status == "failed" and len(stripe_http.calls) == 0


def test_handle_again_handles_a_failed_event_once_stripe_is_back(client, db, purchase, stripe_http, signals):
    _one_of_each(client, purchase, stripe_http)
    stripe_http.add(responses.GET, _session_url(purchase), json=paid_session(
        purchase, payment_status="unpaid", invoice=None, payment_intent=payment_intent(
            status="requires_payment_method", error={"message": "Insufficient funds.", "type": "card_error"})))
    token = csrf(client, PAGE)

    response = client.post(f"{PAGE}/handle", data={"csrf_token": token, "event_id": "evt_failed"},
                           headers=as_user("adm"), follow_redirects=True)

    assert "The event is handled." in text(response)
    assert re.findall(r'data-event="([^"]+)"', response.get_data(as_text=True)) == ["evt_live"]
    db.session.expire_all()
    row = db.session.get(Event, "evt_failed")
    assert (row.status, row.attempts, row.error) == ("processed", 2, None)
    assert db.session.get(Purchase, purchase.id).failure_reason == "Insufficient funds."
    again = client.post(f"{PAGE}/handle", data={"csrf_token": token, "event_id": "evt_failed"},
                        headers=as_user("adm"), follow_redirects=True)
    assert "has not failed" in text(again) and len(stripe_http.calls) == 1 and len(signals["payment_failed"]) == 1


def test_handle_again_when_stripe_is_still_down_keeps_it_failed(client, db, purchase, stripe_http):
    _one_of_each(client, purchase, stripe_http)
    stripe_error(stripe_http, responses.GET, _session_url(purchase), 503, "api_error", "Service unavailable")
    response = client.post(f"{PAGE}/handle", data={"csrf_token": csrf(client, PAGE), "event_id": "evt_failed"},
                           headers=as_user("adm"), follow_redirects=True)
    assert response.status_code == 200 and "failed again" in text(response)
    db.session.expire_all()
    assert (db.session.get(Event, "evt_failed").status, db.session.get(Event, "evt_failed").attempts) == ("failed", 2)


@pytest.mark.parametrize("event_id", ["evt_live", "evt_ok", "evt_ignored", "evt_unknown", ""])
def test_only_failed_events_are_handled_again(client, db, purchase, stripe_http, event_id):
    _one_of_each(client, purchase, stripe_http)
    response = client.post(f"{PAGE}/handle", data={"csrf_token": csrf(client, PAGE), "event_id": event_id},
                           headers=as_user("adm"), follow_redirects=True)
    assert "has not failed" in text(response) and len(stripe_http.calls) == 0


def test_handle_again_needs_the_forms_csrf_token(client, db, purchase, stripe_http):
    _one_of_each(client, purchase, stripe_http)
    response = client.post(f"{PAGE}/handle", data={"event_id": "evt_failed"}, headers=as_user("adm"))
    assert response.status_code == 400 and db.session.get(Event, "evt_failed").status == "failed"


def test_the_list_is_paged_by_keyset_without_gaps_or_doubles(app, client, db, purchase, stripe_http):
    app.config["LMS_STRIPE_PAGE_SIZE"] = 3
    for i in range(8):
        body = event("checkout.session.completed", checkout_session(purchase.id), f"evt_{i:02d}")
        assert post_webhook(client, body | {"livemode": True}, SECRET).json == {"status": "rejected"}
    seen, url, pages = [], PAGE, 0
    while url:
        page = client.get(url, headers=as_user("adm"))
        body = page.get_data(as_text=True)
        seen += re.findall(r'data-event="([^"]+)"', body)
        found = re.search(r'href="(/payments/admin/events\?[^"]+)"[^>]*>Older', body)
        url = found.group(1).replace("&amp;", "&") if found else None
        pages += 1
    assert pages == 3 and seen == [f"evt_{i:02d}" for i in reversed(range(8))]
    expected = db.session.scalars(select(Event.id).order_by(Event.received_at.desc(), Event.id.desc())).all()
    assert seen == expected


@pytest.mark.parametrize("query", ["?before=yesterday&before_id=evt_1", "?before=2026-01-01", "?before_id=x",
                                   "?before=2026-01-01T00:00:00&before_id=" + "x" * 300])
def test_a_bad_cursor_shows_the_first_page(client, db, purchase, stripe_http, query):
    _one_of_each(client, purchase, stripe_http)
    page = client.get(PAGE + query, headers=as_user("adm"))
    assert page.status_code == 200 and "evt_live" in page.get_data(as_text=True)
