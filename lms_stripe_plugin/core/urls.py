"""Addresses that leave the site (sent to Stripe, put in messages): built from the configured public URL,
never from the request's Host header, which anyone can set.

``LMS_STRIPE_PUBLIC_URL`` is where people reach the LMS (``https://lms.example.org``); without it, the
app's ``SERVER_NAME`` with ``PREFERRED_URL_SCHEME``. Behind a proxy, the host configures Werkzeug's
``ProxyFix`` for its own pages; these addresses do not depend on it.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, url_for

from ..errors import ConfigurationError


def public_base() -> str:
    """``scheme://host[:port]`` of the LMS as people reach it (ConfigurationError if it is not set)."""
    config = current_app.config
    configured = (config.get("LMS_STRIPE_PUBLIC_URL") or "").strip()
    if configured:
        parts = urlsplit(configured)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(
                "LMS_STRIPE_PUBLIC_URL must be an absolute http(s) address, such as https://lms.example.org.")
        return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
    if config.get("SERVER_NAME"):
        return f"{config.get('PREFERRED_URL_SCHEME') or 'https'}://{config['SERVER_NAME']}"
    raise ConfigurationError(
        "Set LMS_STRIPE_PUBLIC_URL (or SERVER_NAME) to the address people reach the LMS at: the addresses "
        "sent to Stripe are never built from a request's Host header.")


def public_url(endpoint: str, **values) -> str:
    """The absolute address of an endpoint, on the public base (see `public_base`). A public URL with a
    path names where the app is mounted; the path the app builds is added once."""
    base = public_base()
    path = url_for(endpoint, _external=False, **values)
    mount = urlsplit(base).path
    if mount and path.startswith(mount + "/"):
        path = path[len(mount):]
    return base + path
