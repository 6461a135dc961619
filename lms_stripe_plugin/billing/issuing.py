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

from sqlalchemy import func, select

from ..accounts import settings as payment_settings
from ..core import audit
from ..core.enums import AuditAction, CreditNoteStatus, InvoiceSource, InvoiceStatus
from ..core.i18n import gettext as _
from ..core.models import CreditNote, Invoice, InvoiceLine, utcnow
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
    """Bring our invoice in line with Stripe's: number, documents, amounts paid and remaining, status.

    While the invoice is open, snapshots of one second may come in any order (an older one across seconds is
    skipped before this, `sync.versions`), so what was paid only grows, and what remains only shrinks but for
    one change: a pre-payment credit note voided. Stripe's amount_remaining is what remains before credit notes
    (the total, less the credit balance applied at finalization, less what was paid) less the pre-payment credit
    notes in force. A credit note of an open invoice is wholly pre-payment (its ``pre_payment_amount`` is its
    amount: one that would take what remains below zero makes the invoice paid), and voiding one, which Stripe
    allows only while the invoice is open, gives its amount back. Its events and the invoice's come in any
    order, so what remains is the lesser of two bounds, each made of amounts that move one way only:

    - what remains before credit notes (``amount_remaining_before_credit``: the least any snapshot said, as
      payments only lower it), less the credit notes known to be issued and not void (a void one stays void);
    - the least any snapshot said remains, plus the credit notes known to be void.

    The first is exact once every credit note's events are in, whatever the order; the second keeps what a
    snapshot knows of credit notes whose events have not come yet. ``amount_remaining`` holds their lesser,
    kept step by step: a snapshot lowers it to both as they now stand (`_follow_amounts`); a credit note's
    event lowers it to the first, and its void, once (the row's move to void), raises the second by its amount,
    and the first too when it was known issued (`credit_note_changed`). Once every event is in, what remains is
    Stripe's, in any order.
    """
    invoice.number = stripe_invoice.get("number") or invoice.number
    invoice.pdf_url = stripe_invoice.get("invoice_pdf") or invoice.pdf_url
    invoice.hosted_url = stripe_invoice.get("hosted_invoice_url") or invoice.hosted_url
    status = stripe_invoice.get("status")
    if status in ("open", "paid") and invoice.status in (InvoiceStatus.ISSUING, InvoiceStatus.OPEN):
        _follow_amounts(state.session, invoice, stripe_invoice)
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


# -- what remains: payments and pre-payment credit notes ------------------------------------------------------

@dataclass(frozen=True)
class _Credited:
    """The invoice's credit notes we know, by status: the sum of those issued and of those voided."""

    issued: int
    voided: int


def _credited(session, stripe_invoice_id: str | None) -> _Credited:
    """What the invoice's credit notes recorded so far add up to, issued and voided."""
    if not stripe_invoice_id:
        return _Credited(0, 0)
    sums = dict(session.execute(
        select(CreditNote.status, func.sum(CreditNote.amount))
        .where(CreditNote.stripe_invoice_id == stripe_invoice_id).group_by(CreditNote.status)).all())
    return _Credited(int(sums.get(CreditNoteStatus.ISSUED) or 0), int(sums.get(CreditNoteStatus.VOID) or 0))


def _follow_amounts(session, invoice: Invoice, stripe_invoice: dict) -> None:
    """What was paid and what remains, from a snapshot of Stripe's invoice while ours is being issued or open
    (`apply_stripe_invoice` says why): what remains shrinks to what this snapshot says plus the credit notes
    known to be void (which it may count still), and to what remains before credit notes less those in force."""
    paid, left = _amount(stripe_invoice, "amount_paid"), _amount(stripe_invoice, "amount_remaining")
    issuing, known = invoice.status == InvoiceStatus.ISSUING, invoice.amount_remaining_before_credit
    before_credit = left + _amount(stripe_invoice, "pre_payment_credit_notes_amount")
    invoice.amount_remaining_before_credit = before_credit if issuing or known is None else min(known, before_credit)
    invoice.amount_paid = paid if issuing else max(invoice.amount_paid, paid)
    if stripe_invoice.get("status") == "paid":  # nothing remains, whatever credit notes were voided before
        invoice.amount_remaining = left
        return
    credited = _credited(session, invoice.stripe_invoice_id or stripe_invoice.get("id"))
    said = left + credited.voided
    invoice.amount_remaining = _at_most(invoice, said if issuing else min(invoice.amount_remaining, said), credited)


def credit_note_changed(session, invoice: Invoice, *, given_back: int) -> None:
    """One of the invoice's credit notes was recorded or changed (its row written, in the caller's transaction,
    the invoice locked): while the invoice is open, what remains follows (`apply_stripe_invoice` says how).
    ``given_back``: the amount of a credit note that this event made void (once: its row's move to void), which
    comes back to what remains, at most to what remains before credit notes less the others in force."""
    if invoice.status != InvoiceStatus.OPEN:
        return
    credited = _credited(session, invoice.stripe_invoice_id)
    invoice.amount_remaining = _at_most(invoice, invoice.amount_remaining + given_back, credited)


def _at_most(invoice: Invoice, remaining: int, credited: _Credited) -> int:
    """``remaining``, at most what remains before credit notes less the credit notes known issued (before any
    snapshot says what remains before them, the invoice's total less what was paid), and never below zero."""
    before_credit = invoice.amount_remaining_before_credit
    if before_credit is None:
        before_credit = invoice.gross - invoice.amount_paid
    return max(0, min(remaining, before_credit - credited.issued))


def _amount(stripe_object: dict, key: str) -> int:
    """An amount of a Stripe object, 0 when it has none."""
    value = stripe_object.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
