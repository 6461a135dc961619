"""IBANs as Stripe reads them: on Checkout's SEPA Direct Debit form and in Connect onboarding (payouts)."""

from __future__ import annotations

import re

from .errors import invalid_param

_SHAPE = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{10,30}")


def read_iban(text: str | None, param: str = "iban") -> str:
    """The IBAN without spaces, upper-cased; Stripe's "incomplete" or "invalid" error otherwise (the shape,
    then the ISO 13616 check digits: the number read with letters as 10-35 is 1 modulo 97)."""
    iban = re.sub(r"\s", "", text or "").upper()
    if not iban:
        raise invalid_param(param, "Your IBAN is incomplete.", code="invalid_bank_account_iban")
    if not _SHAPE.fullmatch(iban) or not _checksum_ok(iban):
        raise invalid_param(param, "Your IBAN is invalid.", code="invalid_bank_account_iban")
    return iban


def _checksum_ok(iban: str) -> bool:
    rearranged = iban[4:] + iban[:4]
    digits = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(digits) % 97 == 1
