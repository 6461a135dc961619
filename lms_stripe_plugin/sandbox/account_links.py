"""Account Links: single-use URLs to a connected account's hosted onboarding.

``POST /v1/account_links`` (the platform only) takes ``account``, ``type=account_onboarding`` (``account_update``
is only for accounts whose platform collects requirements: refused for full-Dashboard accounts, as Stripe's
reference says), ``refresh_url`` and ``return_url`` (required; http or https) and ``collect`` or
``collection_options``. The link's ``url`` expires after :data:`LINK_SECONDS` and opens the onboarding once
(``onboarding.py``); opened again or late, it sends the browser to ``refresh_url``, where the platform makes a
new link. Creating a link starts onboarding: from then on the platform can no longer change what Stripe
collects (``connect.update_account``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from .connect import facts, not_a_platform
from .errors import invalid_param, missing_param, unsupported_param
from .ids import random_string
from .params import Params
from .state import SandboxState, locked

#: Account Links expire five minutes after they are created (the API reference's example: 300 seconds).
LINK_SECONDS = 300
#: How long a browser that opened a link has to complete onboarding.
ONBOARDING_SECONDS = 3600


@locked
def create_account_link(state: SandboxState, params: Params, base_url: str) -> dict[str, Any]:
    """``POST /v1/account_links``: a single-use URL to the hosted onboarding of one of the platform's accounts."""
    if state.current_account() is not None:
        raise not_a_platform()
    account = state.require(params.string("account"), "account", param="account", status=400)
    if params.string("type") == "account_update":
        raise invalid_param("type", (
            "You can create Account Links of type account_update only for connected accounts where your platform "
            "is responsible for collecting requirements; this account has a Stripe-hosted Dashboard."))
    urls = {name: _url(params, name) for name in ("refresh_url", "return_url")}
    fields = _collected_fields(params)
    token = random_string(32)
    now = state.now()
    link = {"account": account["id"], "created": now, "expires_at": now + LINK_SECONDS, "used": False,
            "fields": fields, **urls}
    state.registries.setdefault("account_links", {})[token] = link
    facts(state, account["id"]).linked = True
    return {"object": "account_link", "created": now, "expires_at": link["expires_at"],
            "url": f"{base_url}/setup/c/{account['id']}/{token}"}


def _url(params: Params, name: str) -> str:
    value = params.string(name)
    if value is None:
        raise missing_param(name)  # required for account_onboarding, as Stripe's reference lists them
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid_param(name, "Not a valid URL", code="url_invalid")
    return value


def _collected_fields(params: Params) -> str:
    options = params.sub("collection_options")
    if params.has("collect") and options.data:
        raise invalid_param("collect", "You may only specify one of these parameters: collect, collection_options.")
    options.reject_unimplemented({"fields", "future_requirements"})
    if options.string("future_requirements") == "include":
        raise unsupported_param("collection_options[future_requirements]")  # the sandbox has no future requirements
    return params.string("collect") or options.string("fields") or "currently_due"


def open_link(state: SandboxState, account_id: str, token: str) -> tuple[str, str | None]:
    """What opening an Account Link's URL does: ``("onboarding", session token)`` the first time within its
    life, ``("refresh", refresh_url)`` when it was opened already or has expired, ``("unknown", None)``."""
    with state.lock:
        link = state.registries.get("account_links", {}).get(token)
        if link is None or link["account"] != account_id:
            return "unknown", None
        if link["used"] or state.now() >= link["expires_at"]:
            return "refresh", link["refresh_url"]
        link["used"] = True
        session = random_string(40)
        state.registries.setdefault("onboarding", {})[session] = {
            "account": account_id, "return_url": link["return_url"], "refresh_url": link["refresh_url"],
            "expires_at": state.now() + ONBOARDING_SECONDS, "fields": link["fields"],
        }
        return "onboarding", session


def onboarding_session(state: SandboxState, session: str) -> dict[str, Any] | None:
    """The onboarding session a browser holds once it opened a link (an hour to complete it)."""
    return state.registries.get("onboarding", {}).get(session)
