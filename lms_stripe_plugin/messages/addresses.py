"""Who a message goes to: e-mail addresses and header text checked, phone numbers read as E.164.

Everything here refuses rather than repairs: a recipient or subject with a line break would let text become
a header of its own (``Bcc: …``), so it never reaches a message; a phone number that is not a valid mobile
number is refused when the message is queued, where the caller can still tell someone.
"""
from __future__ import annotations

import re
from email.errors import HeaderParseError
from email.headerregistry import Address
from typing import Any

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from ..core.i18n import gettext as _
from .errors import InvalidMessage, InvalidRecipient

#: Control characters, and the Unicode line and paragraph separators: none belongs in a header.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")
#: The longest address SMTP carries (RFC 5321: 64 + 1 + 255, less the brackets of a path).
MAX_EMAIL = 254
#: Longer text is not a phone number anyone types; refusing it early bounds the parser's work.
_MAX_PHONE_TEXT = 40
#: Numbers that cannot receive an SMS whatever the provider (a landline, a premium or toll-free number).
_NOT_FOR_SMS = frozenset({PhoneNumberType.FIXED_LINE, PhoneNumberType.TOLL_FREE, PhoneNumberType.PREMIUM_RATE,
                          PhoneNumberType.SHARED_COST, PhoneNumberType.UAN, PhoneNumberType.VOICEMAIL})


def check_header(text: str) -> str:
    """``text`` if it may be the value of a header: no line break, no control character."""
    if _CONTROL.search(text):
        raise InvalidMessage(_("A subject, sender or recipient cannot contain a line break."), code="header")
    return text


def check_email(address: str) -> str:
    """The address (``lea@example.org``) if it is one single, plain address; `InvalidRecipient` otherwise.

    A display name, a list of addresses, a line break or a non-ASCII local part (which needs SMTPUTF8, that
    many servers lack) is refused.
    """
    text = (address or "").strip()
    if not text or len(text) > MAX_EMAIL or _CONTROL.search(text) or any(c.isspace() for c in text):
        raise _not_an_email()
    try:
        parsed = Address(addr_spec=text)
    except (ValueError, IndexError, HeaderParseError) as err:
        raise _not_an_email() from err
    if not parsed.username or not parsed.domain or parsed.addr_spec != text:
        raise _not_an_email()
    return text


def _not_an_email() -> InvalidRecipient:
    return InvalidRecipient(_("Enter one e-mail address, like lea@example.org."), code="email")


def normalize_phone(raw: str, *, region: str | None = None) -> str:
    """A mobile number in E.164 (``+33612345678``), read from what a person typed.

    A number without its country code (``06 12 34 56 78``) is read in ``region`` (an ISO country code, "FR");
    without a region only international numbers are accepted. Invalid numbers, and numbers that cannot
    receive an SMS (landlines, toll-free and premium numbers), are refused with `InvalidRecipient`.
    """
    text = (raw or "").strip()
    if not text or len(text) > _MAX_PHONE_TEXT or _CONTROL.search(text):
        raise _not_a_phone()
    try:
        number = phonenumbers.parse(text, (region or "").upper() or None)
    except NumberParseException as err:
        raise _not_a_phone() from err
    if not phonenumbers.is_valid_number(number):
        raise InvalidRecipient(_("This phone number is not valid: check its digits and its country code."),
                               code="phone_invalid")
    if phonenumbers.number_type(number) in _NOT_FOR_SMS:
        raise InvalidRecipient(_("This number cannot receive SMS (a landline, toll-free or premium number)."),
                               code="phone_not_mobile")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _not_a_phone() -> InvalidRecipient:
    return InvalidRecipient(_("Enter a mobile number, like +33 6 12 34 56 78."), code="phone")


def host_phone(host: Any, user: Any) -> str | None:
    """The learner's phone number as the host gives it (`Host.user_phone`, optional), or None.

    None when the host does not implement the method, or has no number for this learner.
    """
    method = getattr(host, "user_phone", None)
    if not callable(method):
        return None
    value = method(user)
    return (str(value).strip() or None) if value else None
