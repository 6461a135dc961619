"""Invoices an administrator creates for a learner: lines (a course of the catalog or free text), tax-inclusive
amounts with their VAT rate, a currency and a due date. Each is a Stripe invoice (sent, not charged
automatically, finalized: its number and PDF are Stripe's), recorded in our tables like Checkout's.

Three steps, each in a transaction of the caller's: `draft` writes our invoice and its lines (status
"issuing"); `create_at_stripe` creates the learner's customer, the VAT rates and the invoice at Stripe, then
records their ids; `finalize_at_stripe` adds the lines and finalizes it, then records its number, PDF and
amounts. Each Stripe call has a key derived from our invoice, and a step that failed is run again from
where it stopped ("Issue again").
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timezone

from ..accounts import settings as payment_settings
from ..core import audit
from ..core.enums import AuditAction, InvoiceSource, InvoiceStatus
from ..core.i18n import gettext as _
from ..core.models import Invoice, InvoiceLine, utcnow
from ..core.state import PluginState
from ..core.txn import send_after_commit
from ..errors import PaymentsError, ValidationFailed
from ..gateway.types import InvoiceAddLinesParamsLine, InvoiceCreateParams
from ..money import Money, check_chargeable, vat_split
from .. import signals
from . import balances, customers, legal, taxes

MAX_LINES = 20


class NotIssued(PaymentsError):
    status_code = 409


@dataclass(frozen=True)
class LineInput:
    description: str
    gross: int  # tax-inclusive, minor units of the invoice's currency
    vat_rate: int  # basis points
    course_id: str | None = None


def draft(state: PluginState, *, user, currency: str, due: date, lines: list[LineInput],
          actor_id: str | None) -> Invoice:
    """Check and write an invoice for ``user`` with its lines, to be issued at Stripe."""
    host = state.host
    _check(currency, due, lines)
    invoice = Invoice(
        source=InvoiceSource.ADMIN, status=InvoiceStatus.ISSUING, user_id=host.user_id(user),
        user_email=host.user_email(user), user_name=host.user_display_name(user), currency=currency,
        course_id=next((line.course_id for line in lines if line.course_id), None),
        course_title=lines[0].description[:500], due_at=_end_of(due), created_by=actor_id, issued_at=utcnow(),
        net=0, vat=0, gross=0, amount_paid=0, amount_remaining=0)
    for position, line in enumerate(lines, start=1):
        net, vat = vat_split(Money(line.gross, currency), line.vat_rate)
        invoice.lines.append(InvoiceLine(position=position, description=line.description[:500],
                                         course_id=line.course_id, gross=line.gross, vat_rate=line.vat_rate,
                                         net=net.amount, vat=vat.amount))
        invoice.net, invoice.vat, invoice.gross = invoice.net + net.amount, invoice.vat + vat.amount, \
            invoice.gross + line.gross
    invoice.amount_remaining = invoice.gross
    state.session.add(invoice)
    state.session.flush()
    audit.record(state.session, AuditAction.INVOICE_CREATED, actor_id=actor_id, user_id=invoice.user_id,
                 course_id=invoice.course_id, invoice=invoice.id, amount=invoice.gross, currency=currency)
    return invoice


def _check(currency: str, due: date, lines: list[LineInput]) -> None:
    errors = {}
    if not lines:
        errors["lines"] = _("Add at least one line.")
    elif len(lines) > MAX_LINES:
        errors["lines"] = _("At most %(n)s lines.", n=MAX_LINES)
    if due < utcnow().date():
        errors["due"] = _("The due date is in the past.")
    if not errors:
        try:
            check_chargeable(Money(sum(line.gross for line in lines), currency))
        except ValueError:
            errors["lines"] = _("The total is not an amount Stripe can charge in %(currency)s.", currency=currency)
    if errors:
        raise ValidationFailed(errors, _("The invoice was not created."))


def _end_of(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), timezone.utc)


@dataclass(frozen=True)
class StripeDraft:
    """What `create_at_stripe` needs, as plain values (it calls Stripe before reading anything)."""

    invoice_id: int
    user_id: str
    email: str | None
    name: str | None
    locale: str
    currency: str
    due_at: datetime
    customer: str | None  # known
    rates: dict[int, str | None]  # VAT rate (basis points) -> Stripe tax rate, None when to create
    mentions: legal.InvoiceMentions  # in the language of the customer's invoices


def stripe_draft(state: PluginState, invoice: Invoice, *, locale: str) -> StripeDraft:
    """Read what creating the invoice at Stripe needs (in the step before, so that the next one calls Stripe
    first). The invoice is in the language of the learner's customer at Stripe, or ``locale`` for a learner
    who has none yet (their customer is created in it)."""
    settings = payment_settings.load(state.session)
    if invoice.user_id is None:  # only an invoice of a payment link's payment has no learner: Checkout issued it
        raise NotIssued(_("This invoice is issued by Stripe already."))
    rates = {line.vat_rate: (taxes.known(state.session, taxes.wanted(line.vat_rate), livemode=settings.livemode)
                             if line.vat_rate else None) for line in invoice.lines}
    customer = customers.known_customer(state.session, invoice.user_id, livemode=settings.livemode)
    language = (customer.locale if customer else None) or locale
    return StripeDraft(invoice.id, invoice.user_id, invoice.user_email, invoice.user_name, language,
                       invoice.currency, invoice.due_at or _end_of(utcnow().date()),
                       customer.stripe_id if customer else None, rates, legal.mentions(settings, language))


def create_at_stripe(state: PluginState, plan: StripeDraft) -> None:
    """Create (or find, by their keys) the customer, the VAT rates and the invoice at Stripe, then record."""
    settings = payment_settings.load(state.session)
    customer = plan.customer or customers.create(state, settings, customers.CustomerWanted(
        plan.user_id, plan.email, plan.name, plan.locale))
    created_rates = {rate: taxes.create(state, settings, taxes.wanted(rate))
                     for rate, known in plan.rates.items() if rate and known is None}
    params: InvoiceCreateParams = {
        "customer": customer, "collection_method": "send_invoice", "currency": plan.currency.lower(),
        "due_date": int(plan.due_at.timestamp()), "auto_advance": False, "pending_invoice_items_behavior": "exclude",
        "metadata": {"lms_invoice_id": str(plan.invoice_id), "lms_user_id": plan.user_id},
        **legal.invoice_params(plan.mentions)}
    created = state.gateway.create_invoice(params, api_key=settings.secret_key,
                                           idempotency_key=f"lms-invoice-{plan.invoice_id}")
    session = state.session
    if plan.customer is None:
        customers.remember(session, plan.user_id, customer, livemode=settings.livemode, locale=plan.locale)
    for rate, stripe_id in created_rates.items():
        taxes.remember(session, taxes.wanted(rate), stripe_id, livemode=settings.livemode)
    invoice = session.get(Invoice, plan.invoice_id)
    invoice.stripe_invoice_id, invoice.stripe_customer_id = created["id"], customer


@dataclass(frozen=True)
class StripeLines:
    invoice_id: int
    stripe_invoice_id: str
    lines: tuple[InvoiceAddLinesParamsLine, ...]


def stripe_lines(state: PluginState, invoice: Invoice) -> StripeLines:
    """The lines to add to the Stripe invoice, with their VAT rates' ids (recorded by the step before)."""
    settings = payment_settings.load(state.session)
    if invoice.stripe_invoice_id is None:
        raise NotIssued(_("The invoice is not created at Stripe yet: issue it again."))
    lines: list[InvoiceAddLinesParamsLine] = []
    for line in invoice.lines:
        metadata = {"lms_invoice_line": str(line.position)}
        if line.course_id:
            metadata["lms_course_id"] = line.course_id
        params: InvoiceAddLinesParamsLine = {"amount": line.gross, "description": line.description[:500],
                                             "metadata": metadata}
        if line.vat_rate:
            rate = taxes.known(state.session, taxes.wanted(line.vat_rate), livemode=settings.livemode)
            params["tax_rates"] = [rate] if rate else []
        lines.append(params)
    return StripeLines(invoice.id, invoice.stripe_invoice_id, tuple(lines))


def finalize_at_stripe(state: PluginState, plan: StripeLines) -> Invoice:
    """Add the lines (unless the invoice already has them: a step run again) and finalize, then record."""
    settings = payment_settings.load(state.session)
    gateway, key, api_key = state.gateway, f"lms-invoice-{plan.invoice_id}", settings.secret_key
    current = gateway.retrieve_invoice(plan.stripe_invoice_id, api_key=api_key)
    if current.get("status") == "draft" and not (current.get("lines") or {}).get("data"):
        current = gateway.add_invoice_lines(plan.stripe_invoice_id, {"lines": list(plan.lines)}, api_key=api_key,
                                            idempotency_key=f"{key}-lines")
    if current.get("status") == "draft":
        current = gateway.finalize_invoice(plan.stripe_invoice_id, api_key=api_key, idempotency_key=f"{key}-finalize")
    invoice = state.session.get(Invoice, plan.invoice_id)
    apply_stripe_invoice(state, invoice, current)
    send_after_commit(state.session, signals.invoice_issued, invoice=invoice)
    return invoice


def payable(invoice: Invoice) -> bool:
    """Whether a payment can be asked for on this invoice: issued, and an amount remains."""
    return invoice.status == InvoiceStatus.OPEN and invoice.amount_remaining > 0 and bool(invoice.stripe_invoice_id)


def apply_stripe_invoice(state: PluginState, invoice: Invoice, stripe_invoice: dict) -> None:
    """Bring our invoice in line with Stripe's: number, documents, amounts paid and remaining, status."""
    invoice.number = stripe_invoice.get("number") or invoice.number
    invoice.pdf_url = stripe_invoice.get("invoice_pdf") or invoice.pdf_url
    invoice.hosted_url = stripe_invoice.get("hosted_invoice_url") or invoice.hosted_url
    status = stripe_invoice.get("status")
    if status in ("open", "paid") and invoice.status in (InvoiceStatus.ISSUING, InvoiceStatus.OPEN):
        # Never back: what was paid only grows and what remains only shrinks (snapshots of one second
        # may come in any order), until the invoice is paid or void.
        paid, left = int(stripe_invoice.get("amount_paid") or 0), int(stripe_invoice.get("amount_remaining") or 0)
        if invoice.status == InvoiceStatus.ISSUING:
            invoice.amount_paid, invoice.amount_remaining = paid, left
        else:
            invoice.amount_paid = max(invoice.amount_paid, paid)
            invoice.amount_remaining = min(invoice.amount_remaining, left)
    if status == "open" and invoice.status == InvoiceStatus.ISSUING:
        invoice.status = InvoiceStatus.OPEN
    elif status == "paid" and invoice.status in (InvoiceStatus.ISSUING, InvoiceStatus.OPEN):
        invoice.status = InvoiceStatus.PAID
    elif status == "void" and invoice.status in (InvoiceStatus.ISSUING, InvoiceStatus.OPEN):
        invoice.status, invoice.amount_remaining = InvoiceStatus.VOID, 0
    if status in ("open", "paid", "void"):
        balances.record_spent(state.session, invoice, stripe_invoice)
    if status == "void":
        balances.record_unapplied(state.session, invoice, stripe_invoice)
    balances.record_overpaid(state.session, invoice, stripe_invoice)
