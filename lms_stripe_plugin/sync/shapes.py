"""What a signed Stripe event must be for us to use it, checked before anything is written.

Stripe signs what it sends, but a signature does not make an event usable: one whose object is missing or
of another shape, whose text PostgreSQL cannot store (NUL), whose id does not fit our column, or that belongs
to the other mode (live or test) than the secret key's would fail the same way at every retry. Such an event
is rejected: stored with its reason, acknowledged, never handled (`sync.webhooks`).

The checks follow what the handlers read and what our columns hold: Stripe ids up to 255 characters,
amounts in minor units, three-letter currencies, statuses and reasons of a few dozen characters.
"""
from __future__ import annotations

import hashlib
import re
from typing import Any, Callable

from ..core.enums import RejectReason
from ..errors import PaymentsError

MAX_ID = 255
MAX_TYPE = 128
#: Larger than any amount Stripe charges (12 digits), far below our BIGINT columns' limit.
MAX_AMOUNT = 10**14
#: Unix seconds up to the year 2242: any date Stripe writes, and one Python's datetime can hold.
MAX_TIMESTAMP = 2**33
_CURRENCY = re.compile(r"[A-Za-z]{3}")
#: How JSON text can write what `storable` refuses: NUL and surrogates only as escapes, since the body was
#: decoded as UTF-8 (no raw surrogate) and parsed strictly (no raw control character in a string).
_ESCAPED_UNSTORABLE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


class Rejection(PaymentsError):
    """A signed event that cannot be used, and why (a retry would not change it)."""

    status_code = 200

    def __init__(self, reason: RejectReason, message: str):
        super().__init__(message, code=str(reason))
        self.reason = reason


def storable(text: str) -> bool:
    """Whether PostgreSQL can store ``text``: no NUL, nothing that is not UTF-8 (lone surrogates)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def stored_id(event_id: str) -> str:
    """The key an event is stored under: its id, or for an id that does not fit (longer than 255
    characters, or holding what PostgreSQL cannot store) ``sha256:`` and the hex digest of the id, the
    same at every delivery, so that a second delivery is found (a truncated id could name two events)."""
    if len(event_id) <= MAX_ID and storable(event_id):
        return event_id
    return "sha256:" + hashlib.sha256(event_id.encode("utf-8", "surrogatepass")).hexdigest()


def stored_type(event_type: str) -> str:
    """An event's type as stored: as it is, or cut to the column and with what cannot be stored replaced."""
    if len(event_type) <= MAX_TYPE and storable(event_type):
        return event_type
    clean = "".join(c if c != "\x00" and storable(c) else "\ufffd" for c in event_type)
    return clean if len(clean) <= MAX_TYPE else clean[:MAX_TYPE - 1] + "…"


def check_event(event: dict, *, livemode: bool, handled: bool, payload: str | None = None) -> None:
    """Raise `Rejection` if ``event`` cannot be used; ``handled``: its type has a handler, whose object
    must have the fields `check_object` is then given. ``payload``, the JSON text ``event`` was parsed from,
    spares looking at every string of an event whose text holds no escape of NUL or of a surrogate."""
    if len(event["id"]) > MAX_ID or len(event["type"]) > MAX_TYPE:
        raise Rejection(RejectReason.TOO_LONG, f"The event's id ({len(event['id'])} characters) or type "
                                               f"({len(event['type'])}) is longer than we store.")
    path = _unstorable_text(event) if payload is None or _ESCAPED_UNSTORABLE.search(payload) else None
    if path is not None:
        raise Rejection(RejectReason.UNSTORABLE_TEXT, f"{path} holds a NUL character or text that is not UTF-8.")
    if not isinstance(event.get("livemode"), bool):
        raise Rejection(RejectReason.MALFORMED, "livemode is not true or false.")
    if event["livemode"] != livemode:
        mode, ours = ("live", "test") if event["livemode"] else ("test", "live")
        raise Rejection(RejectReason.WRONG_MODE, f"A {mode} mode event, and the secret key in force is a {ours} "
                                                 "mode key.")
    if handled:
        _check_envelope(event)


def _check_envelope(event: dict) -> None:
    data = event.get("data")
    problems = []
    if not timestamp(event.get("created")):
        problems.append("created is not a timestamp")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        problems.append("data.object is missing or not an object")
    elif not _is_id(data["object"].get("id")):
        problems.append("data.object.id is missing or not a Stripe id")
    if problems:
        raise Rejection(RejectReason.MALFORMED, "; ".join(problems) + ".")


def check_object(obj: dict, fields: dict[str, Callable[[Any], bool]], kind: str) -> None:
    """Raise `Rejection` unless ``obj`` is a ``kind`` whose fields pass their checks (see `SHAPES`)."""
    wrong = [name for name, valid in fields.items() if not valid(obj.get(name))]
    if obj.get("object") != kind:
        wrong.insert(0, "object")
    if wrong:
        raise Rejection(RejectReason.MALFORMED, f"The event's {kind} has missing or malformed fields: "
                                                f"{', '.join(wrong)}.")


def _unstorable_text(value: Any) -> str | None:
    """Where ``value`` (parsed JSON) holds text that cannot be stored, or None. Iterative: JSON may nest
    deeper than Python's recursion limit allows a recursive walk."""
    stack: list[tuple[str, Any]] = [("the event", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if not storable(item):
                return path
        elif isinstance(item, dict):
            for key, sub in item.items():
                if not storable(key):
                    return f"a key of {path}"
                stack.append((f"{path}.{key}"[:200], sub))
        elif isinstance(item, list):
            stack.extend((f"{path}[]"[:200], sub) for sub in item)
    return None


# -- field checks ----------------------------------------------------------------------------------------

def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_id(value) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID


def optional_id(value) -> bool:
    """A Stripe id, or the expanded object (with its id), or null."""
    return value is None or _is_id(value) or (isinstance(value, dict) and _is_id(value.get("id")))


def text(max_length: int, *, required: bool = False) -> Callable[[Any], bool]:
    def valid(value) -> bool:
        return (value is None and not required) or (isinstance(value, str) and len(value) <= max_length)
    return valid


def amount(*, required: bool = False, positive: bool = False) -> Callable[[Any], bool]:
    def valid(value) -> bool:
        if value is None:
            return not required
        return _is_int(value) and (1 if positive else 0) <= value <= MAX_AMOUNT
    return valid


def signed_amount(value) -> bool:
    """An amount that may be negative (a customer's balance: a credit is negative), or null."""
    return value is None or (_is_int(value) and -MAX_AMOUNT <= value <= MAX_AMOUNT)


def currency(*, required: bool = False) -> Callable[[Any], bool]:
    def valid(value) -> bool:
        return (value is None and not required) or (isinstance(value, str) and bool(_CURRENCY.fullmatch(value)))
    return valid


def timestamp(value) -> bool:
    return _is_int(value) and 0 <= value <= MAX_TIMESTAMP


def optional_timestamp(value) -> bool:
    return value is None or timestamp(value)


def transitions(value) -> bool:
    return value is None or (isinstance(value, dict) and optional_timestamp(value.get("finalized_at")))


def mapping(value) -> bool:
    return value is None or isinstance(value, dict)


def tax_list(value) -> bool:
    return value is None or (isinstance(value, list) and all(
        isinstance(t, dict) and (t.get("amount") is None or _is_int(t.get("amount"))) for t in value))


def optional_bool(value) -> bool:
    return value is None or isinstance(value, bool)


def paid_transitions(value) -> bool:
    return value is None or (isinstance(value, dict) and optional_timestamp(value.get("paid_at")))


def payment_ref(value) -> bool:
    """An invoice payment's ``payment``: what paid it (a PaymentIntent or a Payment Record, by id or expanded),
    or null."""
    return value is None or (isinstance(value, dict) and optional_id(value.get("payment_intent"))
                             and optional_id(value.get("payment_record")))


def payment_list(value) -> bool:
    """An invoice's ``payments`` when expanded: a list whose items are invoice payments (null otherwise)."""
    if value is None:
        return True
    data = value.get("data") if isinstance(value, dict) else None
    return isinstance(data, list) and all(
        isinstance(p, dict) and _is_id(p.get("id")) and amount()(p.get("amount_paid"))
        and amount()(p.get("amount_requested")) and payment_ref(p.get("payment"))
        and paid_transitions(p.get("status_transitions")) for p in data)


def refund_links(value) -> bool:
    """A credit note's ``refunds``: the refunds it pays back, each named by id (or expanded)."""
    return value is None or (isinstance(value, list) and all(
        isinstance(r, dict) and optional_id(r.get("refund")) and amount()(r.get("amount_refunded")) for r in value))


def discount_details(value) -> bool:
    """A session's ``total_details``: its ``amount_discount`` an amount, when given."""
    return value is None or (isinstance(value, dict) and amount()(value.get("amount_discount")))


def method_details(value) -> bool:
    """A charge's ``payment_method_details``: its ``type`` (and a card's wallet's) short text, when given."""
    if value is None:
        return True
    if not isinstance(value, dict) or not text(32)(value.get("type")):
        return False
    card = value.get("card")
    wallet = card.get("wallet") if isinstance(card, dict) else None
    return card is None or (isinstance(card, dict) and (wallet is None or (
        isinstance(wallet, dict) and text(32)(wallet.get("type")))))


def anything(_value) -> bool:
    return True


#: What each kind of object a handler applies must hold: the fields it reads, and what each must be.
SHAPES: dict[str, dict[str, Callable[[Any], bool]]] = {
    "account": {
        "details_submitted": optional_bool, "charges_enabled": optional_bool, "payouts_enabled": optional_bool,
        "requirements": anything,
    },
    "checkout.session": {
        "status": text(32), "payment_status": text(32), "metadata": mapping, "currency": currency(),
        "amount_total": amount(), "amount_subtotal": amount(), "customer": optional_id,
        "payment_intent": optional_id, "invoice": optional_id, "client_reference_id": anything,
        "total_details": discount_details,
    },
    "charge": {
        "metadata": mapping, "payment_intent": optional_id, "status": text(32),
        "payment_method_details": method_details,
    },
    "invoice": {
        "metadata": mapping, "total": amount(), "currency": currency(), "number": text(64),
        "customer_email": text(320), "customer_name": text(255), "description": text(500),
        "invoice_pdf": text(2048), "hosted_invoice_url": text(2048), "total_taxes": tax_list,
        "total_tax_amounts": tax_list, "status_transitions": transitions, "created": optional_timestamp,
        "status": text(32), "amount_paid": amount(), "amount_remaining": amount(), "customer": optional_id,
        "payments": payment_list, "starting_balance": signed_amount, "ending_balance": signed_amount,
        "amount_overpaid": amount(),
    },
    "invoice_payment": {
        "invoice": optional_id, "status": text(32), "amount_paid": amount(), "amount_requested": amount(),
        "currency": currency(), "payment": payment_ref, "is_default": optional_bool,
        "status_transitions": paid_transitions,
    },
    "refund": {
        "amount": amount(required=True, positive=True), "currency": currency(required=True),
        "status": text(32), "payment_intent": text(MAX_ID), "failure_reason": text(500), "reason": text(500),
    },
    "credit_note": {
        "invoice": optional_id, "number": text(64), "pdf": text(2048), "total": amount(), "amount": amount(),
        "currency": currency(), "status": text(32), "reason": text(32), "refunds": refund_links,
        "created": optional_timestamp, "post_payment_amount": amount(), "out_of_band_amount": amount(),
        "customer_balance_transaction": optional_id,
    },
    "dispute": {
        "amount": amount(required=True), "currency": currency(required=True), "status": text(32, required=True),
        "payment_intent": text(MAX_ID), "reason": text(64),
    },
}
