"""The invoice lists learners and administrators see: filters, keyset pages, totals, CSV export."""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterator

from sqlalchemy import ColumnElement, and_, distinct, func, literal_column, or_, select, tuple_
from sqlalchemy.orm import aliased, selectinload

from ..core.enums import PAYABLE_INVOICE, InvoiceStatus, MessageStatus, PaymentRequestStatus, PurchaseStatus
from ..core.models import (CourseOffer, Invoice, InvoiceLine, InvoicePayment, Message, PaymentAttempt, PaymentRequest,
                           Purchase, RequestPart)
from ..money import Money


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
    oldest_first: bool = False

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


def admin_page(session, flt: InvoiceFilter, *, after: tuple[datetime, int] | None, limit: int):
    """One page of invoices, newest first (or oldest first), continuing after the (issued_at, id) cursor: a
    keyset page that reads from the composite index where the cursor left off, however deep, in either
    direction."""
    query = select(Invoice).where(*flt.conditions(_dialect(session)))
    key = tuple_(Invoice.issued_at, Invoice.id)
    if after is not None:
        query = query.where(key > tuple_(*after) if flt.oldest_first else key < tuple_(*after))
    order = (Invoice.issued_at.asc(), Invoice.id.asc()) if flt.oldest_first else _NEWEST_FIRST
    query = query.options(selectinload(Invoice.purchase)).order_by(*order)
    rows = session.scalars(query.limit(limit + 1)).all()
    return rows[:limit], len(rows) > limit


def totals(session, flt: InvoiceFilter) -> list[tuple[str, int, int, int, int, int]]:
    """(currency, count, net, vat, gross, refunded) per currency for the filtered invoices."""
    query = (select(Invoice.currency, func.count(), func.sum(Invoice.net), func.sum(Invoice.vat),
                    func.sum(Invoice.gross), func.sum(Invoice.amount_refunded))
             .where(*flt.conditions(_dialect(session))).group_by(Invoice.currency).order_by(Invoice.currency))
    return [tuple(row) for row in session.execute(query)]


#: Rows read per round trip of the exports (a server-side cursor on PostgreSQL).
EXPORT_BATCH = 500


def _request_methods(dialect: str):
    """How the payments of Pay clicks credited to the invoice (payment requests, a deposit's balance) were
    made: their distinct payment methods, comma-separated (None: no such payment)."""
    method = PaymentAttempt.payment_method
    joined = (func.string_agg(distinct(method), literal_column("','")) if dialect == "postgresql"
              else func.group_concat(distinct(method)))
    return (select(joined).select_from(InvoicePayment)
            .join(PaymentAttempt, PaymentAttempt.id == InvoicePayment.attempt_id)
            .where(InvoicePayment.invoice_id == Invoice.id, InvoicePayment.status == "paid")
            .correlate(Invoice).scalar_subquery())


def export_rows(session, flt: InvoiceFilter) -> Iterator:
    """The filtered invoices for the exports, newest first, as they are read (memory stays flat whatever
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
             .where(*flt.conditions(dialect)).order_by(*_NEWEST_FIRST)
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


_STATE_CONDITIONS = {
    "open": lambda: and_(PaymentRequest.status == PaymentRequestStatus.OPEN, PaymentRequest.amount_paid == 0),
    "partly_paid": lambda: and_(PaymentRequest.status == PaymentRequestStatus.OPEN, PaymentRequest.amount_paid > 0),
    "overdue": lambda: and_(PaymentRequest.status == PaymentRequestStatus.OPEN,
                            PaymentRequest.due_at < datetime.now(timezone.utc)),
    "paid": lambda: PaymentRequest.status == PaymentRequestStatus.PAID,
    "cancelled": lambda: PaymentRequest.status == PaymentRequestStatus.CANCELLED,
    "delivery_failed": _failed_message,
}


@dataclass(frozen=True)
class RequestView:
    """A request as the administrators' list shows it."""

    request: PaymentRequest
    delivery_failed: bool

    @property
    def state(self) -> str:
        req = self.request
        if req.status != PaymentRequestStatus.OPEN:
            return str(req.status)
        due = req.due_at if req.due_at.tzinfo else req.due_at.replace(tzinfo=timezone.utc)
        if due < datetime.now(timezone.utc):
            return "overdue"
        return "partly_paid" if req.amount_paid else "open"


def invoice_requests(session, invoice_id: int) -> list[RequestView]:
    """An invoice's payment requests (and the settlements it is part of), newest first."""
    rows = list(session.scalars(select(PaymentRequest).where(PaymentRequest.covering(invoice_id))
                                .order_by(PaymentRequest.id.desc())))
    failed = set(session.scalars(select(Message.request_id).where(
        Message.request_id.in_([r.id for r in rows]), Message.status == MessageStatus.FAILED)))
    return [RequestView(r, r.id in failed) for r in rows]


def invoice_payments(session, invoice_id: int) -> list[InvoicePayment]:
    """The payments Stripe credited to an invoice (not its own default payment)."""
    return list(session.scalars(select(InvoicePayment).where(InvoicePayment.invoice_id == invoice_id)
                                .order_by(InvoicePayment.id)))


def admin_requests(session, flt: RequestFilter, *, before_id: int | None, limit: int) -> tuple[list[RequestView], bool]:
    """One page of requests, newest first, older than ``before_id``; and whether more follow."""
    query = select(PaymentRequest).where(*flt.conditions()).options(
        selectinload(PaymentRequest.invoice), selectinload(PaymentRequest.parts).selectinload(RequestPart.invoice))
    if before_id:
        query = query.where(PaymentRequest.id < before_id)
    rows = list(session.scalars(query.order_by(PaymentRequest.id.desc()).limit(limit + 1)))
    failed = set(session.scalars(select(Message.request_id).where(
        Message.request_id.in_([r.id for r in rows]), Message.status == MessageStatus.FAILED)))
    return [RequestView(r, r.id in failed) for r in rows[:limit]], len(rows) > limit


REQUEST_CSV_COLUMNS = ("request", "invoice", "learner", "currency", "asked", "paid", "due", "status", "created")


def requests_csv(session, flt: RequestFilter) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(REQUEST_CSV_COLUMNS)
    query = (select(PaymentRequest).where(*flt.conditions())
             .options(selectinload(PaymentRequest.invoice),
                      selectinload(PaymentRequest.parts).selectinload(RequestPart.invoice))
             .order_by(PaymentRequest.id.desc()))
    for req in session.scalars(query).yield_per(500):
        row = [req.id, req.invoice_numbers, (req.invoice.user_name if req.invoice else None) or req.user_id, req.currency,
               str(Money(req.amount, req.currency).major), str(Money(req.amount_paid, req.currency).major),
               req.due_at.date().isoformat(), RequestView(req, False).state, req.created_at.isoformat()]
        writer.writerow([safe_cell(value) for value in row])
    return out.getvalue()
