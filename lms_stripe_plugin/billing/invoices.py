"""Our records of Stripe's invoices: recorded when Stripe issues them, refreshed by its events."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..core.state import PluginState
from .. import signals
from ..core import audit
from ..core.enums import AuditAction, InvoiceSource, InvoiceStatus, PurchaseStatus, RefundStatus
from ..core.models import Invoice, InvoiceLine, PaymentAttempt, Purchase, Refund, parse_row_id, utcnow
from ..core.txn import send_after_commit
from ..errors import PaymentsError


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


def record_invoice(state: PluginState, invoice: dict, purchase: Purchase) -> Invoice:
    """Insert or refresh our record of a Stripe invoice for a paid purchase (idempotent)."""
    session, host = state.session, state.host
    existing = session.scalar(select(Invoice).where(Invoice.stripe_invoice_id == invoice["id"]))
    if existing is not None:
        _refresh(existing, invoice)
        return existing
    if (invoice.get("metadata") or {}).get("lms_purchase_id") not in (None, str(purchase.id)):
        raise PaymentsError(f"Invoice {invoice['id']} belongs to another purchase.")
    # The purchase's row locked and read again: a refund handled at the same moment (its event and the
    # invoice's arrive together) either committed before, and is counted here, or waits for this invoice
    # and then finds it to update.
    session.flush()
    session.refresh(purchase, with_for_update=True)
    gross, vat = int(invoice.get("total") or 0), invoice_taxes(invoice)
    status = _status_after_refunds(session, purchase)
    user = host.get_user(purchase.user_id)
    course = host.get_course(purchase.course_id)
    record = Invoice(
        stripe_invoice_id=invoice["id"], purchase_id=purchase.id, user_id=purchase.user_id,
        course_id=purchase.course_id, currency=(invoice.get("currency") or purchase.currency).upper(),
        gross=gross, vat=vat, net=gross - vat, status=status, source=InvoiceSource.CHECKOUT,
        amount_refunded=purchase.amount_refunded, cancelled_at=utcnow() if status == InvoiceStatus.CANCELLED else None,
        amount_paid=int(invoice.get("amount_paid") or gross), amount_remaining=0,
        stripe_customer_id=_id(invoice.get("customer")),
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
    audit.record(session, AuditAction.INVOICE_ISSUED, user_id=purchase.user_id, course_id=purchase.course_id,
                 purchase_id=purchase.id, invoice=invoice["id"], number=record.number)
    send_after_commit(session, signals.invoice_issued, invoice=record)
    return record


def record_link_invoice(state: PluginState, invoice: dict, attempt: PaymentAttempt) -> Invoice:
    """Insert (once) our record of the invoice Checkout issued for a payment link's payment: billed to the
    payer (a learner, or the name and e-mail address typed on the link's page), one line of the link's title
    at its VAT rate, paid; the attempt then names it."""
    session = state.session
    record = session.scalar(select(Invoice).where(Invoice.stripe_invoice_id == invoice["id"]))
    if record is None:
        record = _link_invoice(invoice, attempt)
        try:
            with session.begin_nested():
                session.add(record)
        except IntegrityError:  # recorded meanwhile by a concurrent event
            record = session.scalar(select(Invoice).where(Invoice.stripe_invoice_id == invoice["id"]))
        else:
            audit.record(session, AuditAction.INVOICE_ISSUED, user_id=attempt.payer_user_id, invoice=record.id,
                         number=record.number, link=attempt.link_id, title=record.course_title,
                         payer=record.user_name)
            send_after_commit(session, signals.invoice_issued, invoice=record)
    if attempt.invoice_id is None:
        attempt.invoice_id = record.id
    return record


def _link_invoice(invoice: dict, attempt: PaymentAttempt) -> Invoice:
    link = attempt.link
    if link is None:
        raise PaymentsError(f"Invoice {invoice['id']} names an attempt that is not a payment link's.")
    gross, vat = int(invoice.get("total") or 0), invoice_taxes(invoice)
    record = Invoice(
        stripe_invoice_id=invoice["id"], source=InvoiceSource.LINK, user_id=attempt.payer_user_id,
        user_email=attempt.payer_email or invoice.get("customer_email"),
        user_name=attempt.payer_name or invoice.get("customer_name"), course_title=link.title,
        currency=(invoice.get("currency") or attempt.currency).upper(), gross=gross, vat=vat, net=gross - vat,
        status=InvoiceStatus.PAID, amount_paid=int(invoice.get("amount_paid") or gross), amount_remaining=0,
        stripe_customer_id=_id(invoice.get("customer")),
        issued_at=_timestamp((invoice.get("status_transitions") or {}).get("finalized_at") or invoice.get("created"))
        or utcnow())
    record.lines = [InvoiceLine(position=1, description=link.title[:500], gross=gross, vat_rate=link.vat_rate,
                                net=gross - vat, vat=vat)]
    _refresh(record, invoice)
    return record


def _status_after_refunds(session, purchase: Purchase) -> InvoiceStatus:
    """The status an invoice is born with: paid, unless refunds of its payment were handled before it was
    recorded (events come in any order; the invoice's own may come after a refund's), in which case it
    starts as the refunds left it, as it would have become had it been there."""
    latest = session.scalar(select(Refund.status).where(Refund.purchase_id == purchase.id)
                            .order_by(Refund.id.desc()).limit(1))
    if latest is None:
        return InvoiceStatus.PAID
    if purchase.amount_refunded >= (purchase.amount_paid or purchase.amount):
        return InvoiceStatus.CANCELLED
    if latest in (RefundStatus.REQUESTED, RefundStatus.PENDING):
        return InvoiceStatus.REFUND_PENDING
    if latest == RefundStatus.FAILED:
        return InvoiceStatus.REFUND_FAILED
    return InvoiceStatus.PARTIALLY_REFUNDED if purchase.amount_refunded else InvoiceStatus.PAID


def _refresh(record: Invoice, invoice: dict) -> None:
    record.number = invoice.get("number") or record.number
    record.pdf_url = invoice.get("invoice_pdf") or record.pdf_url
    record.hosted_url = invoice.get("hosted_invoice_url") or record.hosted_url


def sync_invoice(state: PluginState, invoice: dict, purchase: Purchase | None = None) -> Invoice | None:
    """Handle an invoice event: record it if it belongs to one of our paid purchases. ``purchase``: the
    purchase its metadata names, when the caller has read it already (else it is read here)."""
    purchase = purchase if purchase is not None else purchase_of_invoice(state.session, invoice)
    if purchase is None or purchase.status not in (PurchaseStatus.PAID, PurchaseStatus.CANCELLED):
        return None  # fulfilment records it once the purchase is paid
    return record_invoice(state, invoice, purchase)


def _id(value) -> str | None:
    """A Stripe id, whether the field holds it or the object it names (expanded)."""
    return value.get("id") if isinstance(value, dict) else value
