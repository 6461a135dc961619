"""The gateway's Connect calls, through the real SDK against the sandbox: connected accounts, their onboarding
links, and every call made on a connected account (``for_account``) while plain calls stay the platform's."""
from __future__ import annotations

import json

import pytest
import requests
import stripe
from flask import request

from lms_stripe_plugin.errors import ConfigurationError, NotFound
from lms_stripe_plugin.gateway import StripeGateway
from lms_stripe_plugin.gateway.client import API_VERSION, CONNECTED_ACCOUNT_CONTROLLER
from lms_stripe_plugin.sandbox import SandboxServer

KEY = "sk_test_gateway_connect"
LINK = {"type": "account_onboarding", "refresh_url": "https://lms.example/refresh",
        "return_url": "https://lms.example/return"}


class _Headers:
    """The ``Stripe-Account`` header of every API request the sandbox receives."""

    def __init__(self) -> None:
        self.seen: list[str | None] = []
        self.keys: list[str | None] = []  # and its Idempotency-Key

    def __call__(self) -> None:
        if request.path.startswith("/v1/"):
            self.seen.append(request.headers.get("Stripe-Account"))
            self.keys.append(request.headers.get("Idempotency-Key"))


@pytest.fixture(scope="module")
def _server():
    server = SandboxServer(deliver_async=False)
    recorder = _Headers()
    server.app.before_request(recorder)  # before the first request, as Flask requires
    with server:
        yield server, recorder


@pytest.fixture
def sandbox(_server):
    _server[0].state.reset()
    return _server[0]


@pytest.fixture
def headers(_server, sandbox):
    _server[1].seen.clear()
    _server[1].keys.clear()
    return _server[1]


@pytest.fixture
def gateway(sandbox, headers):
    client = stripe.StripeClient(KEY, stripe_version=API_VERSION, base_addresses={"api": sandbox.url})
    return StripeGateway(client)


def _school(gateway, sandbox, *, onboard: bool = True, number: int = 1) -> str:
    account = gateway.create_connected_account({"country": "FR", "business_profile": {"name": "École Alpha"}},
                                               api_key=KEY, idempotency_key=f"school-{number}-account")
    if onboard:
        requests.post(f"{sandbox.url}/_sandbox/accounts/{account['id']}/onboarding", json={}, timeout=10)
    return account["id"]


def test_a_connected_account_is_created_with_the_platforms_controller(gateway, sandbox, headers):
    account = gateway.create_connected_account(
        {"country": "FR", "email": "school@example.com", "controller": {"stripe_dashboard": {"type": "express"}}},
        api_key=KEY, idempotency_key="school-1-account")
    assert isinstance(account, dict) and account["object"] == "account"
    controller = {k: v for k, v in account["controller"].items() if k in CONNECTED_ACCOUNT_CONTROLLER}
    assert controller == CONNECTED_ACCOUNT_CONTROLLER  # the caller's controller is not sent
    assert account["requirements"]["disabled_reason"] == "requirements.past_due"
    # Without a controller of its own the request is the same one (the key replays it): the gateway sent its own.
    again = gateway.create_connected_account({"country": "FR", "email": "school@example.com"}, api_key=KEY,
                                             idempotency_key="school-1-account")
    assert again["id"] == account["id"]
    assert headers.seen == [None, None]


def test_the_same_idempotency_key_gives_the_same_account(gateway):
    params = {"country": "FR", "email": "school@example.com"}
    first = gateway.create_connected_account(params, api_key=KEY, idempotency_key="school-2-account")
    assert gateway.create_connected_account(params, api_key=KEY, idempotency_key="school-2-account")["id"] == first["id"]


def test_retrieve_account_reads_the_status(gateway, sandbox):
    school = _school(gateway, sandbox)
    account = gateway.retrieve_account(school, api_key=KEY)
    assert account["charges_enabled"] and account["details_submitted"] and account["payouts_enabled"]


def test_each_account_link_is_a_new_one(gateway, sandbox):
    school = _school(gateway, sandbox, onboard=False)
    first = gateway.create_account_link({"account": school, **LINK}, api_key=KEY)
    second = gateway.create_account_link({"account": school, **LINK}, api_key=KEY)
    assert first["url"] != second["url"] and first["expires_at"] > first["created"]
    assert requests.get(first["url"], allow_redirects=False, timeout=10).status_code == 303


def test_calls_on_a_connected_account_carry_its_header(gateway, sandbox, headers):
    school = _school(gateway, sandbox)
    headers.seen.clear()
    on_school = gateway.for_account(school)
    customer = on_school.create_customer({"email": "ada@example.com"}, api_key=KEY, idempotency_key="customer-7")
    assert on_school.update_customer(customer["id"], {"name": "Ada"}, api_key=KEY)["name"] == "Ada"
    with pytest.raises(NotFound):
        gateway.update_customer(customer["id"], {"name": "Platform"}, api_key=KEY)  # not the platform's customer
    assert headers.seen == [school, school, None]
    assert sandbox.state.owner_of(customer["id"]) == school


def test_list_pages_stay_on_the_connected_account(gateway, sandbox, headers):
    school = _school(gateway, sandbox)
    on_school = gateway.for_account(school)
    line = [{"price_data": {"currency": "eur", "unit_amount": 5000, "product_data": {"name": "Course"}}, "quantity": 1}]
    for number in range(3):
        on_school.create_checkout_session({"mode": "payment", "line_items": line, "success_url": "https://lms.example/s"},
                                          api_key=KEY, idempotency_key=f"session-{number}")
    gateway.create_checkout_session({"mode": "payment", "line_items": line, "success_url": "https://lms.example/s"},
                                    api_key=KEY, idempotency_key="platform-session")
    headers.seen.clear()
    sessions = list(on_school.list_checkout_sessions({"limit": 1}, api_key=KEY))
    assert len(sessions) == 3 and headers.seen == [school] * 3  # three pages, each on the school's account
    assert len(list(gateway.list_checkout_sessions({"limit": 100}, api_key=KEY))) == 1


def test_plain_calls_are_unchanged(gateway, sandbox, headers):
    customer = gateway.create_customer({"email": "own@example.com"}, api_key=KEY, idempotency_key="customer-1")
    assert headers.seen == [None] and sandbox.state.owner_of(customer["id"]) is None
    assert gateway.stripe_account is None and gateway.for_account("acct_1X").stripe_account == "acct_1X"


def test_the_platforms_own_calls_refuse_a_gateway_made_for_an_account(gateway, sandbox):
    school = _school(gateway, sandbox, onboard=False)
    on_school = gateway.for_account(school)
    with pytest.raises(ConfigurationError):
        on_school.create_connected_account({"country": "FR"}, api_key=KEY, idempotency_key="x")
    with pytest.raises(ConfigurationError):
        on_school.create_account_link({"account": school, **LINK}, api_key=KEY)
    with pytest.raises(ConfigurationError):
        gateway.for_account("cus_123")


def test_an_account_stripe_no_longer_gives_access_to(gateway):
    with pytest.raises(ConfigurationError) as raised:
        gateway.for_account("acct_1Disconnected0").create_customer({"email": "a@example.com"}, api_key=KEY,
                                                                   idempotency_key="c")
    assert raised.value.code == "account_invalid" and "Connect the school's account again" in raised.value.message


def test_the_connect_endpoint_gets_the_accounts_events():
    received: list[dict] = []
    with SandboxServer(deliver_async=False, connect_webhook_secret="whsec_connect",
                       connect_webhook_sink=lambda payload, headers: received.append(
                           StripeGateway.verify_event(payload, headers["Stripe-Signature"], ["whsec_connect"], 300))
                       or 200) as server:
        client = stripe.StripeClient(KEY, stripe_version=API_VERSION, base_addresses={"api": server.url})
        gateway = StripeGateway(client)
        school = gateway.create_connected_account({"country": "FR"}, api_key=KEY, idempotency_key="s")["id"]
        requests.post(f"{server.url}/_sandbox/accounts/{school}/onboarding", json={}, timeout=10)
    assert received and {event["account"] for event in received} == {school}
    assert received[-1]["type"] == "account.updated" and received[-1]["data"]["object"]["charges_enabled"]
    assert json.dumps(received)  # plain JSON, as the plugin stores events


def test_one_key_on_two_connected_accounts_makes_one_object_on_each(gateway, sandbox, headers):
    """A learner of two schools: the same row-derived key asks for their customer on each school's account;
    the key sent names the account, so that each school gets its own customer."""
    first, second = _school(gateway, sandbox), _school(gateway, sandbox, number=2)
    headers.keys.clear()
    made = [gateway.for_account(school).create_customer({"email": "ada@example.com"}, api_key=KEY,
                                                        idempotency_key="lms-customer-0-u1")
            for school in (first, second)]
    assert made[0]["id"] != made[1]["id"]
    assert [sandbox.state.owner_of(customer["id"]) for customer in made] == [first, second]
    assert headers.keys == [f"{first}-lms-customer-0-u1", f"{second}-lms-customer-0-u1"]
    again = gateway.for_account(first).create_customer({"email": "ada@example.com"}, api_key=KEY,
                                                       idempotency_key="lms-customer-0-u1")
    assert again["id"] == made[0]["id"]  # a retry on the same account is the same request
