"""The seller's legal identity that French law asks on an invoice (Code de commerce, art. L441-9 and R123-237;
CGI, art. 242 nonies A): checks and layout of a SIREN or SIRET and of a French VAT number.

A SIREN (9 digits) and a SIRET (the SIREN and 5 more digits) carry a Luhn check digit, except the SIRETs of
La Poste (SIREN 356 000 000), whose digits add up to a multiple of 5 instead (INSEE). A French VAT number is
"FR", a 2-character key and the SIREN; a key of 2 digits is (12 + 3 × (SIREN mod 97)) mod 97, while the
newer keys holding letters have no published check.
"""
from __future__ import annotations

import re

LA_POSTE_SIREN = "356000000"
_SEPARATORS = re.compile(r"[\s.\-\u00a0\u202f]")
_VAT = re.compile(r"FR([0-9A-HJ-NP-Z]{2})([0-9]{9})")


def compact(text: str) -> str:
    """The text without the spaces, dots and dashes people type between groups of digits, upper-cased."""
    return _SEPARATORS.sub("", text).upper()


def luhn_valid(digits: str) -> bool:
    """Whether the digits pass the Luhn check (every second digit from the right doubled)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        number = int(char) * (2 if position % 2 else 1)
        total += number - 9 if number > 9 else number
    return total % 10 == 0


def valid_siren_or_siret(digits: str) -> bool:
    """A SIREN (9 digits) or a SIRET (14 digits) whose check digit is right."""
    if not digits.isascii() or not digits.isdigit() or len(digits) not in (9, 14):
        return False
    if len(digits) == 14 and digits.startswith(LA_POSTE_SIREN) and sum(map(int, digits)) % 5 == 0:
        return True
    return luhn_valid(digits)


def vat_key(siren: str) -> str:
    """The 2-digit key of the French VAT number of a SIREN."""
    return f"{(12 + 3 * (int(siren) % 97)) % 97:02d}"


def valid_french_vat(number: str) -> bool:
    """A French VAT number (compacted): FR, a key, and a SIREN that passes its check; a key of digits checked."""
    found = _VAT.fullmatch(number)
    if found is None:
        return False
    key, siren = found.groups()
    if not valid_siren_or_siret(siren):
        return False
    return not key.isdigit() or key == vat_key(siren)


def vat_siren(number: str) -> str:
    """The SIREN inside a French VAT number (compacted)."""
    return number[4:]


def format_siret(digits: str) -> str:
    """A SIREN or SIRET grouped as INSEE writes it: ``732 829 320`` or ``732 829 320 00074``."""
    siren = f"{digits[:3]} {digits[3:6]} {digits[6:9]}"
    return f"{siren} {digits[9:]}" if len(digits) == 14 else siren
