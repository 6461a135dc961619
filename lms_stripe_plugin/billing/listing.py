"""The invoice lists learners and administrators see: filters, keyset pages, totals, CSV export."""
from __future__ import annotations

import base64
import csv
import io
import json
import re
from dataclasses import dataclass
from enum import StrEnum
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterator

from sqlalchemy import ColumnElement, and_, distinct, func, literal_column, or_, select, tuple_, union_all
from sqlalchemy.orm import aliased, selectinload

from ..core.enums import PAYABLE_INVOICE, InvoiceStatus, MessageStatus, PaymentRequestStatus, PurchaseStatus
from ..core.models import (CourseOffer, Invoice, InvoiceLine, InvoicePayment, Message, PaymentAttempt, PaymentRequest,
                           Purchase, RequestPart)
from ..money import Money
from . import paying, requests as payment_requests


def learner_invoices(session, user_id: str) -> list[Invoice]:
    return session.scalars(select(Invoice).where(Invoice.user_id == user_id)
                           .order_by(Invoice.issued_at.desc(), Invoice.id.desc())).all()


def learner_processing(session, user_id: str) -> list[Purchase]:
    """The learner's payments under way at their bank (a SEPA debit takes days), whose invoice comes once paid."""
    return list(session.scalars(select(Purchase).where(Purchase.user_id == user_id,
                                                       Purchase.status == PurchaseStatus.PROCESSING)
                                .order_by(Purchase.created_at.desc(), Purchase.id.desc())))


def learner_requests(session, user_id: str) -> list[PaymentRequest]:
    """What the learner is asked to pay: their open payment requests, the soonest due first. Their own choices
    of invoices to pay together are not among them: those invoices are listed as they are."""
    return list(session.scalars(select(PaymentRequest).where(PaymentRequest.user_id == user_id,
                                                             PaymentRequest.status == PaymentRequestStatus.OPEN,
                                                             PaymentRequest.selection_key.is_(None))
                                .options(selectinload(PaymentRequest.invoice),
                                         selectinload(PaymentRequest.parts).selectinload(RequestPart.invoice))
                                .order_by(PaymentRequest.due_at, PaymentRequest.id)))


def learner_open_invoices(session, user_id: str) -> list[Invoice]:
    """The learner's issued invoices that still owe something and that no open request asks for (the school's,
    or one of the learner's from a Pay button; not a choice of several to pay together): each gets its own Pay
    button in "My payments"."""
    asking = (PaymentRequest.selection_key.is_(None), PaymentRequest.status == PaymentRequestStatus.OPEN,
              PaymentRequest.amount_paid < PaymentRequest.amount)
    alone = select(PaymentRequest.id).where(PaymentRequest.invoice_id == Invoice.id, *asking)
    together = (select(RequestPart.id).join(PaymentRequest, PaymentRequest.id == RequestPart.request_id)
                .where(RequestPart.invoice_id == Invoice.id, *asking))
    asked = or_(alone.exists(), together.exists())
    return list(session.scalars(select(Invoice).where(
        Invoice.user_id == user_id, Invoice.status.in_(PAYABLE_INVOICE), Invoice.amount_remaining > 0,
        Invoice.stripe_invoice_id.is_not(None), ~asked)
        .order_by(Invoice.due_at, Invoice.id)))


def learner_invoice(session, user_id: str, invoice_id: int) -> Invoice | None:
    """The learner's own invoice, or None (another learner's id is not found, not forbidden)."""
    return session.scalar(select(Invoice).where(Invoice.id == invoice_id, Invoice.user_id == user_id))


@dataclass(frozen=True)
class InvoiceFilter:
    status: InvoiceStatus | None = None
    course_id: str | None = None
    user_id: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    q: str | None = None
    #: The courses whose title the search names (read from the LMS by the caller): searched by course too.
    titled: tuple[str, ...] = ()

    def conditions(self, dialect: str = "") -> list:
        cond = []
        if self.status:
            cond.append(Invoice.status == self.status)
        if self.course_id:
            cond.append(Invoice.course_id == self.course_id)
        if self.user_id:
            cond.append(Invoice.user_id == self.user_id)
        if self.date_from:
            cond.append(Invoice.issued_at >= datetime.combine(self.date_from, time.min, timezone.utc))
        if self.date_to:
            cond.append(Invoice.issued_at < datetime.combine(self.date_to + timedelta(days=1), time.min, timezone.utc))
        if self.q:
            cond.append(search(self.q, dialect, titled=self.titled))
        return cond


def search(q: str, dialect: str, *, titled: tuple[str, ...] = ()):
    """What the administrators' search box finds, each case served by an index on PostgreSQL (migration
    0005): an e-mail address or its start ("lea@", "lea@example.org"); an invoice or credit note number or its
    start ("INV-0042", "ABC-00"), for text with a digit and no space; otherwise the start of each word of the
    learner's name ("mart", "léa mar"), or the start of an e-mail address, or the invoices of the courses
    ``titled`` (those whose title the words start, found by the caller). Whatever the case."""
    text = q.strip()
    email = func.lower(Invoice.user_email).startswith(text.lower(), autoescape=True)
    if "@" in text:
        return email
    if any(c.isdigit() for c in text) and " " not in text:
        return func.upper(Invoice.number).startswith(text.upper(), autoescape=True)
    words = re.findall(r"\w+", text.lower())
    if not words:
        return email
    named: ColumnElement[bool]
    if dialect == "postgresql":
        query = " & ".join(f"{word}:*" for word in words)
        vector = func.to_tsvector(literal_column("'simple'::regconfig"), func.coalesce(Invoice.user_name, ""))
        named = vector.op("@@")(func.to_tsquery(literal_column("'simple'::regconfig"), query))
    else:
        named = and_(*(func.lower(Invoice.user_name).contains(word, autoescape=True) for word in words))
    if titled:
        return or_(named, email, Invoice.course_id.in_(titled))
    return or_(named, email)


def title_matches(q: str, title: str) -> bool:
    """Whether each word of the search starts a word of the title ("adv fla" finds "Advanced Flask")."""
    words = re.findall(r"\w+", q.casefold())
    said = re.findall(r"\w+", title.casefold())
    return bool(words) and all(any(w.startswith(word) for w in said) for word in words)


#: At most so many priced courses are offered by title in the course filter (beyond, it takes an id).
COURSE_CHOICES = 500


def priced_course_ids(session) -> list[str]:
    """The courses the plugin has a price for (up to `COURSE_CHOICES` + 1): the course filter's choices."""
    return list(session.scalars(select(CourseOffer.course_id).order_by(CourseOffer.id).limit(COURSE_CHOICES + 1)))


def _dialect(session) -> str:
    return session.get_bind().dialect.name


#: Newest first: the order of the composite indexes (issued_at, id), (status, issued_at, id)…
_NEWEST_FIRST = (Invoice.issued_at.desc(), Invoice.id.desc())


class SortKey(StrEnum):
    """The columns the administrators' list sorts on."""

    DATE = "date"
    NUMBER = "number"
    LEARNER = "learner"
    COURSE = "course"
    AMOUNT = "amount"
    STATUS = "status"


def _text(*columns) -> ColumnElement:
    """The first of these text columns that is set, or "": never null, so that a keyset cursor can continue
    after it (a comparison with null is never true)."""
    return func.coalesce(*columns, literal_column("''"))


#: What each sort orders by before the id, exactly as the indexes of migration 0016 (and 0005: the date, the
#: status) have it, so that a page reads an index in order from where the cursor left off: names and titles
#: whatever their case; amounts by currency, then amount (minor units of different currencies do not compare);
#: statuses grouped, by date within each.
_SORTED_BY: dict[SortKey, tuple[Any, ...]] = {
    SortKey.DATE: (Invoice.issued_at,),
    SortKey.NUMBER: (_text(Invoice.number),),
    SortKey.LEARNER: (func.lower(_text(Invoice.user_name, Invoice.user_email)),),
    SortKey.COURSE: (func.lower(_text(Invoice.course_title)),),
    SortKey.AMOUNT: (Invoice.currency, Invoice.gross),
    SortKey.STATUS: (Invoice.status, Invoice.issued_at),
}
#: How a cursor's values are read back, for each sort (then the id).
_CURSOR_KINDS: dict[SortKey, tuple[type, ...]] = {
    SortKey.DATE: (datetime,), SortKey.NUMBER: (str,), SortKey.LEARNER: (str,), SortKey.COURSE: (str,),
    SortKey.AMOUNT: (str, int), SortKey.STATUS: (str, datetime),
}
#: The columns a first click sorts from the top down: the latest and the largest first (names and numbers
#: from A to Z, the others).
_FIRST_DESCENDING = frozenset({SortKey.DATE, SortKey.AMOUNT})


@dataclass(frozen=True)
class Order:
    """How the administrators' list is sorted: a column, and its direction."""

    key: SortKey = SortKey.DATE
    descending: bool = True

    @classmethod
    def parse(cls, raw: str | None) -> "Order":
        """``amount`` (ascending), ``-amount`` (descending)…; anything else is the default, newest first
        (an unknown column is ignored: it never reaches the query)."""
        text = (raw or "").strip()
        try:
            key = SortKey(text.removeprefix("-"))
        except ValueError:
            return cls()
        return cls(key, text.startswith("-"))

    @property
    def param(self) -> str:
        """The order as a URL parameter says it (the inverse of `parse`)."""
        return f"-{self.key}" if self.descending else self.key.value

    def clicked(self, key: SortKey) -> "Order":
        """The order a click on the header of ``key`` asks for: the other direction of the current column,
        or another column in its first direction."""
        if key == self.key:
            return Order(key, not self.descending)
        return Order(key, key in _FIRST_DESCENDING)

    @property
    def columns(self) -> tuple[Any, ...]:
        return (*_SORTED_BY[self.key], Invoice.id)

    def order_by(self) -> list:
        return [column.desc() if self.descending else column.asc() for column in self.columns]

    def after(self, cursor: tuple) -> ColumnElement[bool]:
        """The rows after ``cursor`` (the sort's values of the last row shown, and its id), in this order."""
        key = tuple_(*self.columns)
        return key < tuple_(*cursor) if self.descending else key > tuple_(*cursor)

    def token(self, cursor: tuple) -> str:
        """``cursor`` as a URL parameter (`read_token` reads it back)."""
        values = [value.isoformat() if isinstance(value, datetime) else str(value) if isinstance(value, StrEnum)
                  else value for value in cursor]
        return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")

    def read_token(self, raw: str) -> tuple:
        """The cursor of a `token` of this order; ValueError if it is not one (forged, or of another order)."""
        try:
            values = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        except (ValueError, TypeError) as err:  # binascii.Error and JSONDecodeError are ValueErrors
            raise ValueError("not a cursor") from err
        kinds = (*_CURSOR_KINDS[self.key], int)
        if not isinstance(values, list) or len(values) != len(kinds):
            raise ValueError("not a cursor of this order")
        cursor = tuple(_read_value(kind, value) for kind, value in zip(kinds, values))
        if not 0 < cursor[-1] < 2**31:
            raise ValueError("not an invoice id")
        return cursor


def _read_value(kind: type, value):
    if kind is datetime and isinstance(value, str):
        return datetime.fromisoformat(value)
    if kind is str and isinstance(value, str) and len(value) <= 1000 and "\x00" not in value:
        return value
    if kind is int and type(value) is int and -2**63 <= value < 2**63:
        return value
    raise ValueError("not a cursor value")


def admin_page(session, flt: InvoiceFilter, *, order: Order = Order(), after: tuple | None, limit: int):
    """One page of invoices in ``order``, continuing after the ``after`` cursor: a keyset page that reads an
    index in order from where the cursor left off, however deep, in either direction. Returns the page's
    invoices and the cursor of the next page (None on the last one)."""
    query = select(Invoice, *_SORTED_BY[order.key]).where(*flt.conditions(_dialect(session)))
    if after is not None:
        query = query.where(order.after(after))
    query = query.options(selectinload(Invoice.purchase)).order_by(*order.order_by())
    rows = session.execute(query.limit(limit + 1)).all()
    if len(rows) <= limit:
        return [row[0] for row in rows], None
    last = rows[limit - 1]
    return [row[0] for row in rows[:limit]], (*last[1:], last[0].id)


def totals(session, flt: InvoiceFilter) -> list[tuple[str, int, int, int, int, int]]:
    """(currency, count, net, vat, gross, refunded) per currency for the filtered invoices."""
    query = (select(Invoice.currency, func.count(), func.sum(Invoice.net), func.sum(Invoice.vat),
                    func.sum(Invoice.gross), func.sum(Invoice.amount_refunded))
             .where(*flt.conditions(_dialect(session))).group_by(Invoice.currency).order_by(Invoice.currency))
    return [tuple(row) for row in session.execute(query)]


#: Rows read per round trip of the exports (a server-side cursor on PostgreSQL).
EXPORT_BATCH = 500


#: How a payment credited to an invoice was made: as its Pay click says, or as it was read for it (a payment on
#: Stripe's hosted invoice page).
_CREDITED_METHOD = func.coalesce(InvoicePayment.payment_method, PaymentAttempt.payment_method)


def _request_methods(dialect: str):
    """How the payments credited to the invoice (payment requests, a deposit's balance, a payment on Stripe's
    hosted invoice page) were made: their distinct payment methods, comma-separated (None: no such payment)."""
    joined = (func.string_agg(distinct(_CREDITED_METHOD), literal_column("','")) if dialect == "postgresql"
              else func.group_concat(distinct(_CREDITED_METHOD)))
    return (select(joined).select_from(InvoicePayment)
            .outerjoin(PaymentAttempt, PaymentAttempt.id == InvoicePayment.attempt_id)
            .where(InvoicePayment.invoice_id == Invoice.id, InvoicePayment.status == "paid")
            .correlate(Invoice).scalar_subquery())


def payment_methods(session, invoice_ids: list[int]) -> dict[int, list[str]]:
    """How each of these invoices was paid, as the exports say it: the stored payment methods of its purchase,
    of its payment link's payment, and of the payments credited to it (`_request_methods`), distinct, sorted;
    an invoice paid no known way is left out."""
    if not invoice_ids:
        return {}
    bought = (select(Invoice.id, Purchase.payment_method).join(Purchase, Purchase.id == Invoice.purchase_id)
              .where(Invoice.id.in_(invoice_ids)))
    linked = select(PaymentAttempt.invoice_id, PaymentAttempt.payment_method).where(
        PaymentAttempt.invoice_id.in_(invoice_ids))
    credited = (select(InvoicePayment.invoice_id, _CREDITED_METHOD).select_from(InvoicePayment)
                .outerjoin(PaymentAttempt, PaymentAttempt.id == InvoicePayment.attempt_id)
                .where(InvoicePayment.invoice_id.in_(invoice_ids), InvoicePayment.status == "paid"))
    found: dict[int, set[str]] = {}
    for invoice_id, method in session.execute(union_all(bought, linked, credited)):
        if method:
            found.setdefault(invoice_id, set()).add(method)
    return {invoice_id: sorted(methods) for invoice_id, methods in found.items()}


def export_rows(session, flt: InvoiceFilter, order: Order = Order()) -> Iterator:
    """The filtered invoices for the exports, in the list's ``order``, as they are read (memory stays flat whatever
    the number): each row with its amounts in minor units, the VAT rate of a purchase or the lowest and
    highest of an administrator's invoice's lines, the price a purchase was sold at (for its discount), and
    how it was paid: the purchase's payment method, the payment link's, and those of the payments credited
    to it by Pay clicks (`_request_methods`)."""
    dialect = _dialect(session)
    link = aliased(PaymentAttempt)
    lowest = (select(func.min(InvoiceLine.vat_rate)).where(InvoiceLine.invoice_id == Invoice.id)
              .correlate(Invoice).scalar_subquery())
    highest = (select(func.max(InvoiceLine.vat_rate)).where(InvoiceLine.invoice_id == Invoice.id)
               .correlate(Invoice).scalar_subquery())
    query = (select(Invoice.number, Invoice.issued_at, Invoice.status, Invoice.source, Invoice.user_email,
                    Invoice.user_name, Invoice.course_title, Invoice.currency, Invoice.net, Invoice.vat, Invoice.gross,
                    Purchase.vat_rate.label("purchase_rate"), lowest.label("lowest_rate"),
                    highest.label("highest_rate"), Purchase.amount.label("price"),
                    Purchase.amount_paid.label("purchase_paid"), Invoice.amount_refunded, Invoice.amount_paid,
                    Invoice.amount_remaining, Invoice.due_at, Invoice.stripe_invoice_id, Invoice.credit_note_number,
                    Purchase.payment_method.label("purchase_method"), link.payment_method.label("link_method"),
                    _request_methods(dialect).label("request_methods"))
             .outerjoin(Purchase, Purchase.id == Invoice.purchase_id)
             .outerjoin(link, link.invoice_id == Invoice.id)
             .where(*flt.conditions(dialect)).order_by(*order.order_by())
             .execution_options(yield_per=EXPORT_BATCH))
    yield from session.execute(query)


def safe_cell(value) -> str:
    """Neutralise spreadsheet formulas in text cells (CSV injection): a cell whose first character, once
    leading spaces and control characters are skipped (spreadsheets skip them too), starts a formula is
    prefixed with a quote. Numbers (amounts) are left as they are."""
    text = "" if value is None else str(value)
    head = text[:1]
    if not head or (head not in _FORMULA and not head.isspace() and head >= " "):
        return text  # the common case, read at once: nothing before its first character
    if _is_number(text):
        return text
    first = next((c for c in text if not (c.isspace() or ord(c) < 32)), "")
    if first in _FORMULA or text[:1] in ("\t", "\r", "\n"):
        return "'" + text
    return text


#: What starts a formula in a spreadsheet.
_FORMULA = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")  # and their full-width forms


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip() == text and text[:1] not in ("+",) and text.lower() not in ("nan", "inf", "-inf", "infinity")


# -- payment requests, for administrators ------------------------------------------------------------------

#: The statuses administrators filter requests on: stored ones, and those read from amounts, due dates and
#: messages.
REQUEST_STATES = ("open", "partly_paid", "overdue", "paid", "cancelled", "delivery_failed")


@dataclass(frozen=True)
class RequestFilter:
    status: str | None = None
    user_id: str | None = None
    invoice_number: str | None = None

    NAMES = ("status", "learner", "invoice")

    @classmethod
    def from_args(cls, args) -> "RequestFilter":
        status = (args.get("status") or "").strip()
        return cls(status=status if status in REQUEST_STATES else None,
                   user_id=(args.get("learner") or "").strip()[:64] or None,
                   invoice_number=(args.get("invoice") or "").strip()[:64] or None)

    def conditions(self) -> list:
        cond: list = []
        if self.user_id:
            cond.append(PaymentRequest.user_id == self.user_id)
        if self.invoice_number:
            numbered = select(Invoice.id).where(Invoice.number == self.invoice_number)
            cond.append(or_(PaymentRequest.invoice_id.in_(numbered),
                            PaymentRequest.id.in_(select(RequestPart.request_id)
                                                  .where(RequestPart.invoice_id.in_(numbered)))))
        if self.status:
            cond.append(_STATE_CONDITIONS[self.status]())
        return cond


def _failed_message():
    return PaymentRequest.id.in_(select(Message.request_id).where(Message.status == MessageStatus.FAILED))


def _paying() -> ColumnElement[bool]:
    """SQL: a payment of the request is under way (`paying.paying_now`): the learner has paid unless it fails."""
    return paying.paying_now(PaymentRequest.id)


_STATE_CONDITIONS = {
    "open": lambda: and_(PaymentRequest.status == PaymentRequestStatus.OPEN, PaymentRequest.amount_paid == 0),
    "partly_paid": lambda: and_(PaymentRequest.status == PaymentRequestStatus.OPEN, PaymentRequest.amount_paid > 0),
    "overdue": lambda: and_(PaymentRequest.status == PaymentRequestStatus.OPEN,
                            PaymentRequest.due_at < datetime.now(timezone.utc), paying.asks_something(), ~_paying()),
    "paid": lambda: PaymentRequest.status == PaymentRequestStatus.PAID,
    "cancelled": lambda: PaymentRequest.status == PaymentRequestStatus.CANCELLED,
    "delivery_failed": _failed_message,
}


@dataclass(frozen=True)
class RequestView:
    """A request as the administrators' lists show it. An open one is "overdue" past its due date only while it
    asks for something: not when nothing remains to be paid on it ("nothing_left": its invoice paid otherwise,
    say), nor while the learner's payment of it is under way ("paying")."""

    request: PaymentRequest
    delivery_failed: bool
    #: A payment of it is under way (`_paying`): a bank debit processing, or a payment not yet credited.
    paying: bool = False
    #: Why it is not sent again now (`requests.resend_refusal`), None when it may be: on an invoice's page.
    refusal: str | None = None

    @property
    def state(self) -> str:
        req = self.request
        if req.status != PaymentRequestStatus.OPEN:
            return str(req.status)
        if paying.remaining(req) <= 0:
            return "nothing_left"
        if self.paying:
            return "paying"
        due = req.due_at if req.due_at.tzinfo else req.due_at.replace(tzinfo=timezone.utc)
        if due < datetime.now(timezone.utc):
            return "overdue"
        return "partly_paid" if req.amount_paid else "open"


def _with_paying(query):
    """``query`` of requests, each with whether a payment of it is under way (one EXISTS per row)."""
    return query.add_columns(_paying().label("paying")).options(
        selectinload(PaymentRequest.invoice), selectinload(PaymentRequest.parts).selectinload(RequestPart.invoice))


def _failed(session, rows) -> set[int]:
    return set(session.scalars(select(Message.request_id).where(
        Message.request_id.in_([row.id for row in rows]), Message.status == MessageStatus.FAILED)))


def invoice_requests(session, invoice_id: int) -> list[RequestView]:
    """An invoice's payment requests (and the settlements it is part of), newest first, each open one with
    why it is not sent again, if it is not."""
    rows = session.execute(_with_paying(select(PaymentRequest)).where(PaymentRequest.covering(invoice_id))
                           .order_by(PaymentRequest.id.desc())).all()
    failed = _failed(session, [row[0] for row in rows])
    # The payments under way on the open requests' invoices, read once for all of them
    invoice_ids = sorted({invoice.id for req, _paying in rows if req.status == PaymentRequestStatus.OPEN
                          for invoice in req.invoices})
    around = paying.under_way(session, invoice_ids) if invoice_ids else []
    return [RequestView(req, req.id in failed, under_way,
                        payment_requests.resend_refusal(session, req, under_way=bool(under_way), around=around)
                        if req.status == PaymentRequestStatus.OPEN else None)
            for req, under_way in rows]


def invoice_payments(session, invoice_id: int) -> list[tuple[InvoicePayment, str | None]]:
    """The payments Stripe credited to an invoice (its default payment once paid, on the hosted invoice page),
    each with how it was made when known: as it was read for it, or its Pay click's or its purchase's (a
    deposit's) method."""
    bought = (select(Purchase.payment_method).where(Purchase.stripe_payment_intent_id == InvoicePayment.stripe_payment_intent_id)
              .limit(1).correlate(InvoicePayment).scalar_subquery())
    method = func.coalesce(InvoicePayment.payment_method, PaymentAttempt.payment_method, bought)
    return [(payment, said) for payment, said in session.execute(
        select(InvoicePayment, method).outerjoin(PaymentAttempt, PaymentAttempt.id == InvoicePayment.attempt_id)
        .where(InvoicePayment.invoice_id == invoice_id).order_by(InvoicePayment.id))]


def admin_requests(session, flt: RequestFilter, *, before_id: int | None, limit: int) -> tuple[list[RequestView], bool]:
    """One page of requests, newest first, older than ``before_id``; and whether more follow."""
    query = _with_paying(select(PaymentRequest)).where(*flt.conditions())
    if before_id:
        query = query.where(PaymentRequest.id < before_id)
    rows = session.execute(query.order_by(PaymentRequest.id.desc()).limit(limit + 1)).all()
    failed = _failed(session, [row[0] for row in rows[:limit]])
    return [RequestView(req, req.id in failed, under_way) for req, under_way in rows[:limit]], len(rows) > limit


REQUEST_CSV_COLUMNS = ("request", "invoice", "learner", "currency", "asked", "paid", "due", "status", "created")


def requests_csv(session, flt: RequestFilter) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(REQUEST_CSV_COLUMNS)
    query = _with_paying(select(PaymentRequest)).where(*flt.conditions()).order_by(PaymentRequest.id.desc())
    for req, under_way in session.execute(query.execution_options(yield_per=500)):
        row = [req.id, req.invoice_numbers, (req.invoice.user_name if req.invoice else None) or req.user_id, req.currency,
               str(Money(req.amount, req.currency).major), str(Money(req.amount_paid, req.currency).major),
               req.due_at.date().isoformat(), RequestView(req, False, under_way).state, req.created_at.isoformat()]
        writer.writerow([safe_cell(value) for value in row])
    return out.getvalue()
