"""What the demo accepts from a request before using it: redirect targets."""
from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit, urlunsplit


def same_site_path(target: str | None) -> str | None:
    """``target`` if it is a path on this site ("/catalog?price=free"), else None.

    Browsers drop tabs and newlines from a URL and read a backslash as a slash, so "/\\t/evil.example/"
    and "/\\evil.example/" both lead to another site: any control character or backslash is refused,
    as are a scheme, a host, and anything that does not start with exactly one "/".
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or _has_control_character(target):
        return None
    try:
        parts = urlsplit(target)
    except ValueError:
        return None
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return None
    return target


def same_site_path_of_url(url: str | None, host_url: str) -> str | None:
    """The path and query of ``url`` (a Referer) if it is a page of ``host_url``'s site, else None."""
    if not url or _has_control_character(url):
        return None
    try:
        parts, here = urlsplit(url), urlsplit(host_url)
    except ValueError:
        return None
    if (parts.scheme.lower(), parts.netloc.lower()) != (here.scheme.lower(), here.netloc.lower()):
        return None
    return same_site_path(urlunsplit(("", "", parts.path or "/", parts.query, "")))


def _has_control_character(value: str) -> bool:
    return any(unicodedata.category(char) == "Cc" for char in value)
