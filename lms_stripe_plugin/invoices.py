"""Our records of Stripe's invoices, and the lists learners and administrators see."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from flask import current_app
from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from . import audit, signals
from .errors import PaymentsError
from .models import Invoice, Purchase, parse_row_id
from .txn import after_commit


def invoice_taxes(invoice: dict) -> int:
    """The tax amount of a Stripe invoice (``total_taxes`` since 2025, ``total_tax_amounts`` before)."""
    taxes = invoice.get("total_taxes")
    if taxes is None:
        taxes = invoice.get("total_tax_amounts") or []
    return sum(int(t.get("amount") or 0) for t in taxes)


def _timestamp(value) -> datetime | None:
    return datetime.fromtimestamp(int(value), timezone.utc) if value else None


def purchase_of_invoice(session, invoice: dict) -> Purchase | None:
    purchase_id = parse_row_id((invoice.get("metadata") or {}).get("lms_purchase_id"))
    return session.get(Purchase, purchase_id) if purchase_id is not None else None


def record_invoice(state, invoice: dict, purchase: Purchase) -> Invoice:
    """Insert or refresh our record of a Stripe invoice for a paid purchase (idempotent, no commit)."""
    session, host = state.session, state.host
    existing = session.scalar(select(Invoice).where(Invoice.stripe_invoice_id == invoice["id"]))
    if existing is not None:
        _refresh(existing, invoice)
        return existing
    if (invoice.get("metadata") or {}).get("lms_purchase_id") not in (None, str(purchase.id)):
        raise PaymentsError(f"Invoice {invoice['id']} belongs to another purchase.")
    gross, vat = int(invoice.get("total") or 0), invoice_taxes(invoice)
    user = host.get_user(purchase.user_id)
    course = host.get_course(purchase.course_id)
    record = Invoice(
        stripe_invoice_id=invoice["id"], purchase_id=purchase.id, user_id=purchase.user_id,
        course_id=purchase.course_id, currency=(invoice.get("currency") or purchase.currency).upper(),
        gross=gross, vat=vat, net=gross - vat, status="paid",
        user_email=invoice.get("customer_email") or (host.user_email(user) if user is not None else None),
        user_name=host.user_display_name(user) if user is not None else invoice.get("customer_name"),
        course_title=host.course_title(course) if course is not None else invoice.get("description"),
        issued_at=_timestamp((invoice.get("status_transitions") or {}).get("finalized_at") or invoice.get("created")),
    )
    _refresh(record, invoice)
    try:
        with session.begin_nested():
            session.add(record)
    except IntegrityError:
        return session.scalar(select(Invoice).where(Invoice.purchase_id == purchase.id))
    audit.record(session, "invoice_issued", user_id=purchase.user_id, course_id=purchase.course_id,
                 purchase_id=purchase.id, invoice=invoice["id"], number=record.number)
    after_commit(session, lambda: signals.invoice_issued.send(current_app._get_current_object(), invoice=record))
    return record


def _refresh(record: Invoice, invoice: dict) -> None:
    record.number = invoice.get("number") or record.number
    record.pdf_url = invoice.get("invoice_pdf") or record.pdf_url
    record.hosted_url = invoice.get("hosted_invoice_url") or record.hosted_url


def sync_invoice(state, invoice: dict) -> Invoice | None:
    """Handle an invoice event: record it if it belongs to one of our paid purchases."""
    purchase = purchase_of_invoice(state.session, invoice)
    if purchase is None or purchase.status not in ("paid", "cancelled"):
        return None  # fulfilment records it once the purchase is paid
    record = record_invoice(state, invoice, purchase)
    state.session.commit()
    return record


# -- lists -------------------------------------------------------------------------------------------

def learner_invoices(session, user_id: str) -> list[Invoice]:
    return session.scalars(select(Invoice).where(Invoice.user_id == user_id)
                           .order_by(Invoice.issued_at.desc(), Invoice.id.desc())).all()


def learner_invoice(session, user_id: str, invoice_id: int) -> Invoice | None:
    """The learner's own invoice, or None (another learner's id is not found, not forbidden)."""
    return session.scalar(select(Invoice).where(Invoice.id == invoice_id, Invoice.user_id == user_id))


@dataclass(frozen=True)
class InvoiceFilter:
    status: str | None = None
    course_id: str | None = None
    user_id: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    q: str | None = None

    def conditions(self) -> list:
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
            pattern = f"%{self.q.lower()}%"
            cond.append(or_(func.lower(Invoice.number).like(pattern), func.lower(Invoice.user_email).like(pattern)))
        return cond


def admin_page(session, flt: InvoiceFilter, *, after: tuple[datetime, int] | None, limit: int):
    """One page of invoices, newest first, continuing after the (issued_at, id) cursor (keyset pagination)."""
    query = select(Invoice).where(*flt.conditions())
    if after is not None:
        issued, last_id = after
        query = query.where(or_(Invoice.issued_at < issued, and_(Invoice.issued_at == issued, Invoice.id < last_id)))
    query = query.options(selectinload(Invoice.purchase)).order_by(Invoice.issued_at.desc(), Invoice.id.desc())
    rows = session.scalars(query.limit(limit + 1)).all()
    return rows[:limit], len(rows) > limit


def totals(session, flt: InvoiceFilter) -> list[tuple[str, int, int, int, int, int]]:
    """(currency, count, net, vat, gross, refunded) per currency for the filtered invoices."""
    query = (select(Invoice.currency, func.count(), func.sum(Invoice.net), func.sum(Invoice.vat),
                    func.sum(Invoice.gross), func.sum(Invoice.amount_refunded))
             .where(*flt.conditions()).group_by(Invoice.currency).order_by(Invoice.currency))
    return [tuple(row) for row in session.execute(query)]


CSV_COLUMNS = ("number", "issued_at", "status", "user_email", "user_name", "course_title", "currency",
               "net", "vat", "gross", "amount_refunded", "stripe_invoice_id", "credit_note_number")


def export_csv(session, flt: InvoiceFilter, fmt_amount) -> str:
    """CSV of the filtered invoices; amounts in major units as text (``fmt_amount(amount, currency)``)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    query = select(Invoice).where(*flt.conditions()).order_by(Invoice.issued_at.desc(), Invoice.id.desc())
    for inv in session.scalars(query).yield_per(500):
        row = [getattr(inv, name) for name in CSV_COLUMNS]
        for index in (7, 8, 9, 10):
            row[index] = fmt_amount(row[index], inv.currency)
        row[1] = inv.issued_at.isoformat() if inv.issued_at else ""
        writer.writerow([_csv_safe(value) for value in row])
    return out.getvalue()


def _csv_safe(value) -> str:
    """Neutralise spreadsheet formulas in text cells (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
