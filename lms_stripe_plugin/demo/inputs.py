"""What the demo accepts from a request before using it: row ids, typed texts and redirect targets."""
from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit, urlunsplit

from werkzeug.routing import BaseConverter, ValidationError

#: The largest id the demo's tables hold (a 32-bit INTEGER, as in PostgreSQL; SQLite stops at 2**63 - 1).
MAX_ID = 2**31 - 1
_ID = r"[1-9][0-9]{0,9}"


def parse_id(value) -> int | None:
    """``value`` as a row id if it is one written plainly ("42"), else None.

    Only ASCII digits without a leading zero, 1 to `MAX_ID`: ``int()`` also reads "01", " 1" and
    "١" (an Arabic-Indic digit) as 1, and the plugin keys its rows by the id *string*, so "01" would be
    course 1 to the demo but a course without a price to the plugin.
    """
    if not isinstance(value, str) or not re.fullmatch(_ID, value):
        return None
    number = int(value)
    return number if number <= MAX_ID else None


class IdConverter(BaseConverter):
    """A row id in a URL (``<demo_id:course_id>``): `parse_id`'s plain ids only, anything else is a 404.

    Werkzeug's ``int`` converter matches ``\\d+``, which takes "01" and "١" and ids larger than the database's.
    """

    regex = _ID

    def to_python(self, value: str) -> int:
        number = parse_id(value)
        if number is None:
            raise ValidationError()
        return number

    def to_url(self, value) -> str:
        return str(int(value))


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


def clean_text(value: str | None, max_length: int, *, multiline: bool = False) -> str | None:
    """``value`` stripped ("" if absent); None if longer than ``max_length`` or with a control character.

    Nobody types one (a ``multiline`` text keeps its tabs and line breaks), and PostgreSQL refuses NUL.
    """
    text = (value or "").strip()
    if len(text) > max_length or _has_control_character(text, allowed="\t\r\n" if multiline else ""):
        return None
    return text


def _has_control_character(value: str, allowed: str = "") -> bool:
    return any(unicodedata.category(char) == "Cc" and char not in allowed for char in value)
