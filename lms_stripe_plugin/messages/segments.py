"""The length of an SMS as the network counts it, and texts fitted to one SMS.

An SMS carries 140 bytes: 160 characters of the GSM 03.38 alphabet (7 bits each), or 70 UTF-16 code units
(UCS-2) as soon as one character is outside that alphabet. The alphabet's extension table (``€ [ ] { } \\
^ ~ |`` and form feed) costs two septets, an escape and the character. A longer text goes in parts that
the phone joins, each losing room to the joining header: 153 septets or 67 units, and an extension
character or a surrogate pair is never split across two parts. Providers bill per part.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

#: GSM 03.38 default alphabet (the escape at 0x1B excluded: it introduces the extension table).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: The extension table: each costs two septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7, UCS2 = "GSM-7", "UCS-2"
#: Room in one SMS, and in each part of a longer one.
SINGLE = {GSM7: 160, UCS2: 70}
PART = {GSM7: 153, UCS2: 67}

#: Typographic characters and their GSM-7 look-alikes: a French amount ("49,90 €" with a no-break space)
#: or an apostrophe would otherwise make a UCS-2 SMS of 70 characters.
_PLAIN = str.maketrans({
    "\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2007": " ", "\u2018": "'", "\u2019": "'", "\u201a": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"', "\u2013": "-", "\u2014": "-",
    "\u2026": "...",
})
#: An optional part shortened below this many characters is left out rather than kept as a stub.
MIN_KEPT = 12
_ELLIPSIS = "..."


@dataclass(frozen=True)
class Segments:
    """How an SMS is sent: its encoding, its length in septets (GSM-7) or code units (UCS-2), its parts."""

    encoding: str
    units: int
    count: int


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def segments(text: str) -> Segments:
    """The encoding, length and number of parts of ``text`` sent as one SMS."""
    if is_gsm7(text):
        encoding, sizes = GSM7, [2 if c in GSM7_EXTENSION else 1 for c in text]
    else:
        encoding, sizes = UCS2, [len(c.encode("utf-16-le")) // 2 for c in text]
    units = sum(sizes)
    if units <= SINGLE[encoding]:
        return Segments(encoding, units, 1 if units else 0)
    return Segments(encoding, units, _parts(sizes, PART[encoding]))


def _parts(sizes: list[int], room: int) -> int:
    count, used = 1, 0
    for size in sizes:
        if used + size > room:
            count, used = count + 1, 0
        used += size
    return count


def plain_sms(text: str) -> str:
    """``text`` on one line, typographic spaces, quotes and dashes replaced by their GSM-7 look-alikes."""
    return " ".join(text.translate(_PLAIN).split())


def sms_text(template: str, /, *, fixed: Mapping[str, str], optional: Sequence[tuple[str, str]] = ()) -> str:
    """Fill ``template``'s ``%(name)s`` placeholders so that the SMS takes one part where it can.

    ``fixed`` values (the amount, the due date, the link) are never changed. ``optional`` values (the
    school's note, an invoice number) are shortened in the order given, the first one first, each as little
    as needed and at a word, ending with "..."; one that would keep fewer than `MIN_KEPT` characters is
    left out, so the template must read well without it. If the text is still longer than one part, it
    goes as it is, in several. The result is on one line, with GSM-7 look-alikes for typographic
    characters (`plain_sms`).
    """
    values = {name: plain_sms(value) for name, value in fixed.items()}
    values.update((name, plain_sms(value)) for name, value in optional)
    for name, _value in optional:
        if _fits(template, values):
            break
        values[name] = _shortened(template, values, name)
    return _fill(template, values)


def _fill(template: str, values: Mapping[str, str]) -> str:
    return plain_sms(template % values)


def _fits(template: str, values: Mapping[str, str]) -> bool:
    return segments(_fill(template, values)).count <= 1


def _shortened(template: str, values: dict[str, str], name: str) -> str:
    """The longest cut of ``values[name]`` with which the text fits (the full value does not)."""
    value = values[name]
    low, high = 0, len(value) - 1  # the cut keeps `n` characters; fitting shrinks as `n` grows
    while low < high:
        middle = (low + high + 1) // 2
        if _fits(template, {**values, name: _cut(value, middle)}):
            low = middle
        else:
            high = middle - 1
    kept = _cut(value, low)
    return kept if len(kept) - len(_ELLIPSIS) >= MIN_KEPT else ""


def shorten(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters: cut at a word where it can be, and "..." then."""
    return text if len(text) <= limit else _cut(text, limit - len(_ELLIPSIS))


def _cut(value: str, keep: int) -> str:
    """The first ``keep`` characters of ``value``, at a word when one ends in the second half, then "..."."""
    if keep <= 0:
        return ""
    head = value[:keep]
    if keep < len(value) and not value[keep].isspace():
        space = head.rfind(" ")
        if space >= keep // 2:
            head = head[:space]
    return head.rstrip(" ,;:.-") + _ELLIPSIS
