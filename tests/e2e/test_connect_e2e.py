"""Platform mode through the real SDK and the sandbox: the school's administrator activates online payment,
onboards on the sandbox's hosted onboarding (asked for more documents, then verified), a learner buys a course
and the session, the invoice and a refund live on the school's connected account; when Stripe disables the
account's charges, the course cannot be bought any more."""
import re

import pytest
import requests
from sqlalchemy import select

from lms_stripe_plugin.accounts import settings as payment_settings
from lms_stripe_plugin.core.models import Event, Invoice, Purchase, Refund, Settings
from lms_stripe_plugin.testing import post_webhook

from ..conftest import as_user
from .conftest import SECRET, pay, start_checkout

PAGE = "/payments/admin/online-payment"


@pytest.fixture
def platform(stripe_app, db):
    """The test app as a platform: its keys are the platform's; the school has no connected account yet."""
    stripe_app.config["LMS_STRIPE_PLATFORM"] = True
    stripe_app.config["LMS_STRIPE_PUBLIC_URL"] = "https://lms.example.org"
    yield stripe_app
    stripe_app.config["LMS_STRIPE_PLATFORM"] = False


def _settings(db):
    db.session.expire_all()
    payment_settings.forget_cached()
    return payment_settings.load(db.session)


def _token(client) -> str:
    page = client.get(PAGE, headers=as_user("adm")).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _buy(client, user: str, course: str):
    """A Buy click sent as the course page would (its form may not be shown: the token is the session's)."""
    return client.post(f"/payments/checkout/{course}", data={"csrf_token": _token(client)}, headers=as_user(user))


def test_a_school_onboards_sells_and_stops_when_stripe_disables_it(platform, client, db, sandbox):
    page = client.get(PAGE, headers=as_user("adm"))
    assert page.status_code == 200 and "Activate online payment" in page.get_data(as_text=True)
    assert not _settings(db).active  # no account connected: nobody can buy
    assert _buy(client, "u1", "c1").status_code == 409

    # Activate: the account is created once, and the administrator is sent to Stripe's onboarding.
    token = _token(client)
    started = client.post(f"{PAGE}/activate", data={"csrf_token": token}, headers=as_user("adm"))
    assert started.status_code == 303 and started.headers["Location"].startswith(sandbox.url)
    account_id = _settings(db).stripe_account_id
    assert account_id.startswith("acct_")
    account = sandbox.state.get(account_id)
    assert account["controller"]["stripe_dashboard"]["type"] == "full"
    again = client.post(f"{PAGE}/activate", data={"csrf_token": token}, headers=as_user("adm"))
    assert again.status_code == 303 and _settings(db).stripe_account_id == account_id
    assert len(sandbox.state.all("account")) == 1

    # A link opened twice sends the browser to the refresh route, which makes a new one.
    link = started.headers["Location"]
    refresh = "https://lms.example.org/payments/admin/online-payment/refresh"
    opened = requests.get(link, timeout=5, allow_redirects=False)
    assert opened.status_code in (200, 302, 303) and opened.headers.get("Location") != refresh
    reopened = requests.get(link, timeout=5, allow_redirects=False)
    assert reopened.status_code in (302, 303)
    assert reopened.headers["Location"] == refresh
    fresh = client.get(f"{PAGE}/refresh", headers=as_user("adm"))
    assert fresh.status_code == 303 and fresh.headers["Location"] != link

    # Onboarding: details submitted, then Stripe asks for a document.
    control = f"{sandbox.url}/_sandbox/accounts/{account_id}"
    assert requests.post(f"{control}/verification", json={"outcome": "documents_required"}, timeout=5).ok
    assert requests.post(f"{control}/onboarding", json={"company_name": "École Lumière"}, timeout=5).ok
    sandbox.state.wait_for_deliveries(10)
    back = client.get(f"{PAGE}/return", headers=as_user("adm"))
    assert back.status_code == 303
    page = client.get(PAGE, headers=as_user("adm")).get_data(as_text=True)
    status = _settings(db).account
    assert status["details_submitted"] and not status["charges_enabled"] and status["currently_due"]
    assert "Stripe needs more information" in page and "Continue on Stripe" in page
    assert _buy(client, "u1", "c1").status_code == 409

    # "Continue on Stripe": a new link, where the document is uploaded; then verified, which account.updated
    # says; learners can buy.
    assert requests.post(f"{control}/verification", json={"outcome": "verified"}, timeout=5).ok
    resumed = client.post(f"{PAGE}/activate", data={"csrf_token": _token(client)}, headers=as_user("adm"))
    assert resumed.status_code == 303
    browser = requests.Session()
    onboarding = browser.get(resumed.headers["Location"], timeout=5)
    assert onboarding.status_code == 200 and 'name="document"' in onboarding.text
    uploaded = browser.post(onboarding.url, data={"step": "document"}, allow_redirects=False, timeout=5,
                            files={"document": ("kbis.pdf", b"%PDF-1.4 company registration", "application/pdf")})
    assert uploaded.status_code == 303 and uploaded.headers["Location"].endswith("/online-payment/return")
    sandbox.state.wait_for_deliveries(10)
    settings = _settings(db)
    assert settings.charges_enabled and settings.active
    assert "complete and verified" in client.get(PAGE, headers=as_user("adm")).get_data(as_text=True)

    # A purchase: the session, its invoice and a refund are the school's, on its account.
    response, session_id = start_checkout(client, "u1", "c1")
    assert response.status_code == 303 and sandbox.state.owner_of(session_id) == account_id
    assert pay(sandbox, session_id).status_code == 200
    db.session.expire_all()
    purchase = db.session.scalar(select(Purchase).where(Purchase.user_id == "u1"))
    assert purchase.status == "paid"
    invoice = db.session.scalar(select(Invoice).where(Invoice.purchase_id == purchase.id))
    assert sandbox.state.owner_of(invoice.stripe_invoice_id) == account_id
    charge = sandbox.state.get(purchase.stripe_payment_intent_id)["latest_charge"]
    refunded = requests.post(f"{sandbox.url}/_sandbox/charges/{charge}/refund", json={"amount": 1000}, timeout=5)
    assert refunded.ok, refunded.text
    sandbox.state.wait_for_deliveries(10)
    db.session.expire_all()
    refund = db.session.scalar(select(Refund).where(Refund.purchase_id == purchase.id))
    assert refund is not None and sandbox.state.owner_of(refund.stripe_refund_id) == account_id

    # Stripe disables the account's charges: the course page says so, and Buy is refused, without an error page.
    assert requests.post(f"{control}/disable", json={"reason": "under_review"}, timeout=5).ok
    sandbox.state.wait_for_deliveries(10)
    assert not _settings(db).active
    page = client.get("/payments/courses/c2", headers=as_user("par"))
    assert page.status_code == 200 and "not available at the moment" in page.get_data(as_text=True)
    refused = _buy(client, "par", "c2")
    assert refused.status_code == 409 and "not available at the moment" in refused.get_data(as_text=True)
    assert "paused payments" in client.get(PAGE, headers=as_user("adm")).get_data(as_text=True)


def test_online_payment_pages_exist_only_on_a_platform(stripe_app, client, db):
    assert client.get(PAGE, headers=as_user("adm")).status_code == 404
    assert client.get(PAGE, headers=as_user("u1")).status_code == 403


def test_another_accounts_events_are_ignored(platform, client, db, sandbox):
    """A Connect endpoint receives every connected account's events: only the school's own are handled."""
    token = _token(client)
    client.post(f"{PAGE}/activate", data={"csrf_token": token}, headers=as_user("adm"))
    ours = _settings(db).stripe_account_id
    for event_id, account in (("evt_other_account", "acct_someoneelse"), ("evt_platform_own", None)):
        event = {"id": event_id, "object": "event", "type": "account.updated", "api_version": "2026-10-28.endive",
                 "created": 1_790_000_000, "livemode": False, "account": account,
                 "data": {"object": {"id": account or ours, "object": "account", "charges_enabled": True,
                                     "details_submitted": True, "payouts_enabled": True, "requirements": {}}}}
        if account is None:
            del event["account"]
        response = post_webhook(client, event, SECRET)
        assert response.status_code == 200 and response.get_json()["status"] == "ignored"
        assert db.session.get(Event, event_id).status == "ignored"
    assert not _settings(db).charges_enabled


def test_an_event_of_the_same_second_that_disagrees_has_stripe_asked_again(platform, client, db, sandbox, sink):
    """``created`` counts seconds: of two different snapshots of one second, which is the newer cannot be told,
    so the account is read from Stripe once the delivery commits, and Stripe's answer is what is recorded."""
    client.post(f"{PAGE}/activate", data={"csrf_token": _token(client)}, headers=as_user("adm"))
    account_id = _settings(db).stripe_account_id
    recorded = db.session.scalar(select(Settings.account_checked))
    sink.drop = True  # the onboarding's own events are lost: Stripe now says more than the LMS knows
    control = f"{sandbox.url}/_sandbox/accounts/{account_id}"
    assert requests.post(f"{control}/verification", json={"outcome": "verified"}, timeout=5).ok
    assert requests.post(f"{control}/onboarding", json={"company_name": "École Lumière"}, timeout=5).ok
    sandbox.state.wait_for_deliveries(10)
    sink.drop = False
    assert not _settings(db).charges_enabled
    # An event of the second the account was recorded in, saying something else again.
    event = {"id": "evt_same_second", "object": "event", "type": "account.updated", "created": recorded,
             "api_version": "2026-10-28.endive", "livemode": False, "account": account_id,
             "data": {"object": {"id": account_id, "object": "account", "charges_enabled": False,
                                 "details_submitted": True, "payouts_enabled": False, "requirements": {}}}}
    response = post_webhook(client, event, SECRET)
    assert response.status_code == 200 and response.get_json()["status"] == "handled"
    settings = _settings(db)
    assert settings.charges_enabled and settings.account["payouts_enabled"]  # as Stripe says now
    assert db.session.scalar(select(Settings.account_checked)) >= recorded
