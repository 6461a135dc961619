"""Account Links (single use, expiring) and the hosted onboarding: the form, its errors, verification and what
it does to the account's requirements and events."""

from __future__ import annotations

import html
from html.parser import HTMLParser

import pytest
import requests
import stripe

from lms_stripe_plugin.sandbox import SandboxServer
from lms_stripe_plugin.sandbox.account_links import LINK_SECONDS
from lms_stripe_plugin.sandbox.connect import DOCUMENT_FIELD

REFRESH, RETURN = "https://lms.example/payments/onboarding/refresh", "https://lms.example/payments/onboarding/return"
IBAN = "FR14 2004 1010 0505 0001 3M02 606"
BUSINESS = {"step": "business", "company_name": "École Alpha", "activity": "8299",
            "description": "Data science courses, online and in class", "iban": IBAN}


class _Tags(HTMLParser):
    """Every start tag of a page with its attributes, and the text of each ``<label for>``."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.labels: dict[str, str] = {}
        self._label: str | None = None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "label":
            self._label = dict(attrs).get("for")
            self.labels.setdefault(self._label or "", "")

    def handle_endtag(self, tag):
        if tag == "label":
            self._label = None

    def handle_data(self, data):
        if self._label:
            self.labels[self._label] += data

    def by_id(self, element_id: str) -> dict[str, str | None]:
        return next(attrs for _tag, attrs in self.tags if attrs.get("id") == element_id)

    def has(self, element_id: str) -> bool:
        return any(attrs.get("id") == element_id for _tag, attrs in self.tags)


@pytest.fixture
def school(client):
    return client.v1.accounts.create(params={"country": "FR", "email": "school@example.com"}).id


@pytest.fixture
def link(client):
    def make(account: str, **params):
        return client.v1.account_links.create(params={"account": account, "type": "account_onboarding",
                                                      "refresh_url": REFRESH, "return_url": RETURN, **params})
    return make


def _open(url: str, browser: requests.Session | None = None, **headers: str) -> tuple[requests.Session, str]:
    """Open an Account Link as a browser; returns the browser and the onboarding page's URL."""
    browser = browser or requests.Session()
    response = browser.get(url, headers=headers, allow_redirects=False, timeout=10)
    assert response.status_code == 303, response.status_code
    return browser, requests.compat.urljoin(url, response.headers["Location"])


def _submit(browser: requests.Session, page_url: str, data: dict, **kwargs) -> requests.Response:
    return browser.post(page_url, data=data, allow_redirects=False, timeout=10, **kwargs)


def _onboard(browser: requests.Session, page_url: str) -> None:
    assert _submit(browser, page_url, BUSINESS).status_code == 303
    done = _submit(browser, page_url, {"step": "verification", "tos": "accepted"})
    assert done.status_code == 303 and done.headers["Location"] == RETURN


# -- links ------------------------------------------------------------------------------------------


def test_a_link_is_a_single_use_url_valid_five_minutes(link, school, sandbox):
    created = link(school)
    assert created.object == "account_link" and created.expires_at == created.created + LINK_SECONDS == created.created + 300
    assert created.url.startswith(f"{sandbox.url}/setup/c/{school}/")
    browser, page = _open(created.url)
    assert browser.get(page, timeout=10).status_code == 200
    again = requests.get(created.url, allow_redirects=False, timeout=10)
    assert again.status_code == 302 and again.headers["Location"] == REFRESH


def test_an_expired_link_sends_the_browser_to_refresh_url(link, school, control):
    created = link(school)
    control("/clock/advance", {"seconds": LINK_SECONDS})
    expired = requests.get(created.url, allow_redirects=False, timeout=10)
    assert expired.status_code == 302 and expired.headers["Location"] == REFRESH


def test_a_made_up_link_is_not_found(school, sandbox):
    assert requests.get(f"{sandbox.url}/setup/c/{school}/nope", timeout=10).status_code == 404


@pytest.mark.parametrize("params, param, code", [
    ({"refresh_url": None}, "refresh_url", "parameter_missing"),
    ({"return_url": None}, "return_url", "parameter_missing"),
    ({"return_url": "lms.example/return"}, "return_url", "url_invalid"),
    ({"type": "account_update"}, "type", "parameter_invalid"),
    ({"type": "payouts"}, "type", None),
    ({"collect": "eventually_due", "collection_options": {"fields": "eventually_due"}}, "collect", "parameter_invalid"),
])
def test_refused_links(client, school, params, param, code):
    sent = {"account": school, "type": "account_onboarding", "refresh_url": REFRESH, "return_url": RETURN, **params}
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.account_links.create(params={k: v for k, v in sent.items() if v is not None})
    assert raised.value.param == param and raised.value.code == code


def test_a_link_for_no_account_of_the_platform(client, link, school):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        link("acct_1NoSuchAccount00")
    assert raised.value.http_status == 400 and raised.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError) as raised:  # a connected account is no platform
        client.v1.account_links.create(params={"account": school, "type": "account_onboarding", "refresh_url": REFRESH,
                                               "return_url": RETURN}, options={"stripe_account": school})
    assert "Only Stripe Connect platforms" in raised.value.user_message


# -- the hosted pages ---------------------------------------------------------------------------------


@pytest.mark.parametrize("language, lang, labels", [
    ("fr-FR,fr;q=0.9", "fr", ("Nom de l’entreprise", "Activité", "Vos produits ou services",
                               "IBAN du compte qui reçoit vos virements", "Étape 1 sur 2", "Continuer")),
    ("en-GB", "en", ("Company name", "Activity", "Your products or services",
                     "IBAN of the account that receives your payouts", "Step 1 of 2", "Continue")),
])
def test_the_form_speaks_the_browsers_language_and_labels_every_field(link, school, language, lang, labels):
    browser, page_url = _open(link(school).url)
    page = html.unescape(browser.get(page_url, headers={"Accept-Language": language}, timeout=10).text)
    tags = _Tags(page)
    assert tags.by_id("step-title") and f'<html lang="{lang}">' in page
    for label in labels:
        assert label in page, label
    for field in ("company-name", "activity", "description", "iban"):
        assert tags.labels.get(field, "").strip(), f"no label for #{field}"
    assert tags.by_id("exit")["href"] == RETURN
    assert tags.by_id("iban")["aria-describedby"] == "iban-hint"


def test_a_wrong_form_comes_back_with_its_errors_and_nothing_saved(link, school, client, connect_webhooks):
    browser, page_url = _open(link(school).url)
    response = _submit(browser, page_url, {**BUSINESS, "company_name": " ", "activity": "0000", "description": "",
                                           "iban": "FR14 2004 1010 0505 0001 3M02 607"},
                       headers={"Accept-Language": "fr"})
    assert response.status_code == 400
    page = html.unescape(response.text)
    tags = _Tags(page)
    assert tags.by_id("form-errors")["role"] == "alert"
    for field, message in (("company-name", "Saisissez le nom de votre entreprise."),
                           ("activity", "Choisissez votre activité."),
                           ("description", "Décrivez vos produits ou services."),
                           ("iban", "Votre IBAN n'est pas valide.")):
        attrs = tags.by_id(field)
        assert attrs["aria-invalid"] == "true" and f"{field}-error" in attrs["aria-describedby"].split()
        assert message in page and tags.by_id(f"{field}-error")
        assert any(a.get("href") == f"#{field}" for t, a in tags.tags if t == "a")  # the summary links to the field
    assert client.v1.accounts.retrieve(school).company.name is None and connect_webhooks.calls == []


def test_onboarding_saves_the_business_then_verifies(link, school, client, connect_webhooks, webhooks):
    browser, page_url = _open(link(school).url)
    saved = _submit(browser, page_url, BUSINESS)
    assert saved.status_code == 303 and requests.compat.urljoin(page_url, saved.headers["Location"]) == page_url
    account = client.v1.accounts.retrieve(school)
    assert account.company.name == "École Alpha" and account.business_profile.mcc == "8299"
    assert account.business_profile.product_description == BUSINESS["description"]
    [bank] = account.external_accounts.data
    assert (bank.last4, bank.country, bank.currency, bank.object) == ("2606", "FR", "eur", "bank_account")
    assert account.requirements.currently_due == ["tos_acceptance.date", "tos_acceptance.ip"]
    assert account.details_submitted is False
    step_two = _Tags(html.unescape(browser.get(page_url, timeout=10).text))
    assert step_two.has("tos") and step_two.has("summary-bank") and not step_two.has("iban")

    refused = _submit(browser, page_url, {"step": "verification"})
    assert refused.status_code == 400 and _Tags(refused.text).by_id("tos")["aria-invalid"] == "true"
    done = _submit(browser, page_url, {"step": "verification", "tos": "accepted"})
    assert done.status_code == 303 and done.headers["Location"] == RETURN

    account = client.v1.accounts.retrieve(school)
    assert (account.details_submitted, account.charges_enabled, account.payouts_enabled) == (True, True, True)
    assert account.requirements.to_dict() == {
        "alternatives": [], "current_deadline": None, "currently_due": [], "disabled_reason": None, "errors": [],
        "eventually_due": [], "past_due": [], "pending_verification": []}
    assert account.capabilities.card_payments == "active" and account.tos_acceptance.date
    assert connect_webhooks.types() == ["account.external_account.created", "account.updated", "account.updated",
                                        "account.updated"]
    assert {event["account"] for event in connect_webhooks.events} == {school} and webhooks.calls == []
    submitted, verified = connect_webhooks.events[2], connect_webhooks.events[3]
    assert submitted["data"]["object"]["requirements"]["disabled_reason"] == "requirements.pending_verification"
    assert submitted["data"]["object"]["requirements"]["pending_verification"] == ["company.name", "external_account"]
    assert verified["data"]["previous_attributes"]["charges_enabled"] is False
    status = _Tags(browser.get(page_url, timeout=10).text)
    assert status.has("status") and not status.has("onboarding-form")


def test_verification_can_ask_for_a_document(link, school, client, control, connect_webhooks):
    assert control(f"/accounts/{school}/verification", {"outcome": "documents_required"}).status_code == 200
    browser, page_url = _open(link(school).url)
    _onboard(browser, page_url)
    account = client.v1.accounts.retrieve(school)
    assert account.details_submitted and not account.charges_enabled and not account.payouts_enabled
    assert account.requirements.currently_due == account.requirements.past_due == [DOCUMENT_FIELD]
    assert account.requirements.disabled_reason == "requirements.past_due"
    assert connect_webhooks.events[-1]["data"]["object"]["requirements"]["currently_due"] == [DOCUMENT_FIELD]

    browser, page_url = _open(link(school).url)  # "Continue on Stripe": a new link
    tags = _Tags(browser.get(page_url, timeout=10).text)
    assert tags.has("document") and tags.labels["document"].strip() and not tags.has("company-name")
    empty = _submit(browser, page_url, {"step": "document"}, files={"document": ("kbis.pdf", b"")})
    assert empty.status_code == 400 and _Tags(empty.text).by_id("document")["aria-invalid"] == "true"
    wrong = _submit(browser, page_url, {"step": "document"}, files={"document": ("kbis.exe", b"MZ")})
    assert wrong.status_code == 400 and "PDF, JPEG or PNG" in html.unescape(wrong.text)
    uploaded = _submit(browser, page_url, {"step": "document"}, files={"document": ("kbis.pdf", b"%PDF-1.4 sandbox")})
    assert uploaded.status_code == 303 and uploaded.headers["Location"] == RETURN
    account = client.v1.accounts.retrieve(school)
    assert account.charges_enabled and account.requirements.currently_due == [] and account.company.verification.document.front


def test_a_pending_verification_waits_for_stripe(make_client):
    with SandboxServer(deliver_async=False, account_verification="pending") as server:
        platform = make_client(server.url)
        school = platform.v1.accounts.create(params={"country": "FR"}).id
        requests.post(f"{server.url}/_sandbox/accounts/{school}/onboarding", json={}, timeout=10)
        account = platform.v1.accounts.retrieve(school)
        assert account.details_submitted and not account.charges_enabled
        assert account.requirements.pending_verification == ["company.name", "external_account"]
        assert account.requirements.disabled_reason == "requirements.pending_verification"
        assert account.capabilities.card_payments == "pending"
        decided = requests.post(f"{server.url}/_sandbox/accounts/{school}/verification", json={"outcome": "verified"},
                                timeout=10).json()
        assert decided["charges_enabled"] and decided["requirements"]["pending_verification"] == []


def test_an_enabled_account_asked_for_a_document_keeps_charging_until_the_deadline(client, school, control,
                                                                                    connect_webhooks):
    control(f"/accounts/{school}/onboarding", {})
    asked = control(f"/accounts/{school}/verification", {"outcome": "documents_required"}).json()
    assert asked["charges_enabled"] and asked["requirements"]["currently_due"] == [DOCUMENT_FIELD]
    assert asked["requirements"]["past_due"] == [] and asked["requirements"]["disabled_reason"] is None
    deadline = asked["requirements"]["current_deadline"]
    assert deadline and deadline > client.v1.accounts.retrieve(school).created
    control("/clock/advance", {"seconds": 14 * 86400})
    account = client.v1.accounts.retrieve(school)
    assert not account.charges_enabled and account.requirements.past_due == [DOCUMENT_FIELD]
    assert account.requirements.disabled_reason == "requirements.past_due"
    last = connect_webhooks.events[-1]
    assert last["type"] == "account.updated" and last["data"]["previous_attributes"]["charges_enabled"] is True


def test_stripe_can_disable_charges_later(client, school, control, connect_webhooks):
    control(f"/accounts/{school}/onboarding", {})
    assert control(f"/accounts/{school}/disable", {"reason": "because"}).status_code == 400
    disabled = control(f"/accounts/{school}/disable", {"reason": "under_review"}).json()
    assert not disabled["charges_enabled"] and disabled["requirements"]["disabled_reason"] == "under_review"
    event = connect_webhooks.events[-1]
    assert event["account"] == school and event["data"]["previous_attributes"]["charges_enabled"] is True
    assert control(f"/accounts/{school}/verification", {"outcome": "verified"}).json()["charges_enabled"]
    control(f"/accounts/{school}/disable", {"reason": "rejected.fraud"})
    assert control(f"/accounts/{school}/verification", {"outcome": "verified"}).status_code == 400
    assert client.v1.accounts.retrieve(school).requirements.disabled_reason == "rejected.fraud"


def test_an_onboarding_session_expires(link, school, control):
    browser, page_url = _open(link(school).url)
    control("/clock/advance", {"seconds": 3600})
    expired = browser.get(page_url, allow_redirects=False, timeout=10)
    assert expired.status_code == 302 and expired.headers["Location"] == REFRESH
