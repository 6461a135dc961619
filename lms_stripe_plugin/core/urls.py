"""Addresses that leave the site (sent to Stripe, put in messages): built from the configured public URL,
never from the request's Host header, which anyone can set.

``LMS_STRIPE_PUBLIC_URL`` is where people reach the LMS (``https://lms.example.org``); without it, the
app's ``SERVER_NAME`` with ``PREFERRED_URL_SCHEME``. Behind a proxy, the host configures Werkzeug's
``ProxyFix`` for its own pages; these addresses do not depend on it.
"""
from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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


def sign_in_url(host, next_url: str) -> str | None:
    """Where "Sign in to buy" leads, back to ``next_url`` after: the host's optional ``sign_in_url(next_url)``,
    else ``LMS_STRIPE_SIGN_IN_URL`` with ``next`` added to its query, else None (no link). Only a
    root-relative or http(s) address is used: anything else (``javascript:``) gives no link."""
    method = getattr(host, "sign_in_url", None)
    if callable(method):
        return _safe_link(method(next_url))
    configured = _safe_link(current_app.config.get("LMS_STRIPE_SIGN_IN_URL"))
    if configured is None:
        return None
    parts = urlsplit(configured)
    query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), ("next", next_url)])
    return urlunsplit(parts._replace(query=query))


def _safe_link(url) -> str | None:
    if not isinstance(url, str) or not url.strip():
        return None
    url = url.strip()
    if url.startswith("/") and not url.startswith("//"):
        return url
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def local_path(url) -> str | None:
    """``url`` if it is a path of this site (``/catalog?page=2``), else None: never another site's address."""
    if not isinstance(url, str) or len(url) > 2048:
        return None
    url = url.strip()
    if not url.startswith("/") or url.startswith("//") or "\\" in url or any(ord(ch) < 32 for ch in url):
        return None
    return url if not urlsplit(url).netloc else None
