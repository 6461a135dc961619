"""Credit notes: every one Stripe issues on one of our invoices is recorded, with its number and PDF.

A cancellation and a partial refund are credit notes with their refund (`cancellation`); one made in Stripe's
Dashboard comes in its events (``credit_note.created``, ``.updated``, ``.voided``). A refund made in the
Dashboard without one (a refund of the payment only) leaves the invoice without the document an accountant
needs for it: the plugin then issues the credit note itself, linking that refund (``refunds[]``), once the
refund is recorded (`issue_for_refund`, run after the event's commit).

Rows are keyed by Stripe's ids, so that a credit note's events may come before or after those of its invoice
and its refund; an older snapshot never makes a void credit note issued again. While its invoice is open, a
credit note takes its amount off what remains, and gives it back when voided (`billing.issuing`, which says how
in any order of the events).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..accounts import settings as payment_settings
from ..billing import balances, issuing
from ..core import audit
from ..core.enums import AuditAction, CreditNoteStatus
from ..core.models import CreditNote, Invoice, Refund
from ..core.state import PluginState
from ..errors import GatewayError
from ..gateway.types import CreditNoteCreateParams

#: Stripe's credit note reasons, for the reason of a refund made in the Dashboard.
_REASONS = {"duplicate": "duplicate", "fraudulent": "fraudulent"}


def record(state: PluginState, credit_note: dict, *, actor_id: str | None = None) -> CreditNote | None:
    """Record a credit note of one of our invoices (None for another integration's), in the caller's
    transaction; once, whoever comes first: the answer to our request (``actor_id``: the administrator who
    asked) or one of its events."""
    session = state.session
    # The invoice locked first, as a cancellation's answer and the invoice's events lock it before they write:
    # the credit note's row, and the ledger's entry (whose key on the invoice PostgreSQL checks with a share
    # lock of its row), are then written by one of them after the other, never in a deadlock.
    invoice = session.scalar(select(Invoice).where(Invoice.stripe_invoice_id == _id(credit_note.get("invoice")))
                             .with_for_update())
    if invoice is None:
        return None
    row = session.scalar(select(CreditNote).where(CreditNote.stripe_credit_note_id == credit_note["id"]))
    if row is None:
        row = _insert(state, invoice, credit_note, actor_id)
    voided = _apply(state, row, invoice, credit_note)
    _link_refund(session, row)
    # A credit note voided (only while its invoice is open) gives back to what remains what it took off.
    issuing.credit_note_changed(session, invoice, given_back=row.amount if voided else 0)
    balances.record_credit_note(session, invoice, credit_note)  # its credit to the learner's balance, if any
    return row


def _insert(state: PluginState, invoice: Invoice, credit_note: dict, actor_id: str | None) -> CreditNote:
    session = state.session
    row = CreditNote(stripe_credit_note_id=credit_note["id"], stripe_invoice_id=invoice.stripe_invoice_id,
                     amount=int(credit_note.get("total") or credit_note.get("amount") or 0),
                     currency=str(credit_note.get("currency") or invoice.currency).upper(),
                     status=CreditNoteStatus.ISSUED, issued_at=_moment(credit_note.get("created")))
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # recorded meanwhile by a concurrent event or answer
        return session.scalar(select(CreditNote).where(CreditNote.stripe_credit_note_id == credit_note["id"]))
    audit.record(session, AuditAction.CREDIT_NOTE_ISSUED, actor_id=actor_id, user_id=invoice.user_id,
                 course_id=invoice.course_id,
                 purchase_id=invoice.purchase_id, invoice=invoice.id, amount=row.amount, currency=row.currency,
                 credit_note=credit_note["id"], credit_note_number=credit_note.get("number"))
    return row


def _apply(state: PluginState, row: CreditNote, invoice: Invoice, credit_note: dict) -> bool:
    """Bring the row in line with Stripe's credit note; True if this made it void (once: never back)."""
    row.number = credit_note.get("number") or row.number
    row.pdf_url = credit_note.get("pdf") or row.pdf_url
    row.reason = credit_note.get("reason") or row.reason
    refunds = credit_note.get("refunds") or []
    if refunds and row.stripe_refund_id is None:
        row.stripe_refund_id = _id(refunds[0].get("refund"))
    if credit_note.get("status") == CreditNoteStatus.VOID and row.status != CreditNoteStatus.VOID:
        row.status = CreditNoteStatus.VOID  # never back: a void credit note stays void
        audit.record(state.session, AuditAction.CREDIT_NOTE_VOIDED, user_id=invoice.user_id,
                     course_id=invoice.course_id, purchase_id=invoice.purchase_id, invoice=invoice.id,
                     amount=row.amount, currency=row.currency, credit_note=row.stripe_credit_note_id,
                     credit_note_number=row.number)
        return True
    return False


def _link_refund(session, row: CreditNote) -> None:
    """Our refund row learns its credit note (a refund made in the Dashboard, then credited)."""
    if row.stripe_refund_id is None:
        return
    refund = session.scalar(select(Refund).where(Refund.stripe_refund_id == row.stripe_refund_id))
    if refund is not None and refund.stripe_credit_note_id is None:
        refund.stripe_credit_note_id = row.stripe_credit_note_id


def of_invoice(session, invoice: Invoice) -> list[CreditNote]:
    """The invoice's credit notes, oldest first."""
    if not invoice.stripe_invoice_id:
        return []
    return list(session.scalars(select(CreditNote).where(CreditNote.stripe_invoice_id == invoice.stripe_invoice_id)
                                .order_by(CreditNote.issued_at, CreditNote.id)))


def of_invoices(session, invoices) -> dict[str, list[CreditNote]]:
    """The credit notes of several invoices, by Stripe invoice id (one query), oldest first."""
    ids = [invoice.stripe_invoice_id for invoice in invoices if invoice.stripe_invoice_id]
    found: dict[str, list[CreditNote]] = {}
    if ids:
        for row in session.scalars(select(CreditNote).where(CreditNote.stripe_invoice_id.in_(ids))
                                   .order_by(CreditNote.issued_at, CreditNote.id)):
            found.setdefault(row.stripe_invoice_id, []).append(row)
    return found


# -- a credit note for a refund made in the Dashboard ----------------------------------------------------------

@dataclass(frozen=True)
class CreditNoteWanted:
    """A credit note to issue for a refund made in the Dashboard, as plain values (a job's argument)."""

    refund_id: int  # our row
    stripe_invoice_id: str
    stripe_refund_id: str
    amount: int
    reason: str | None


def wanted_for(refund: Refund) -> CreditNoteWanted | None:
    """What `issue_for_refund` needs for this refund, if its payment's invoice is known."""
    invoice = refund.purchase.invoice if refund.purchase is not None else None
    if invoice is None or not invoice.stripe_invoice_id or not refund.stripe_refund_id:
        return None
    return CreditNoteWanted(refund.id, invoice.stripe_invoice_id, refund.stripe_refund_id, refund.amount,
                            refund.reason)


def issue_for_refund(state: PluginState, wanted: CreditNoteWanted) -> None:
    """Follow-up of a refund made in Stripe's Dashboard on an invoiced payment: the credit note that links it,
    unless one does already (made with it in the Dashboard, or by the plugin's own request). Stripe is asked
    first, then the answer is recorded.

    The credit note is asked for at once, with a key of the refund's (a retry gets the same answer): no read
    in the usual case. Stripe refuses it when the refund is on a credit note already, as no more of it is left
    to link ("The amount … is more than what of refund … is not yet on a credit note"); only then are the
    invoice's credit notes read, to record the one that links it."""
    api_key = payment_settings.load(state.session).secret_key
    params: CreditNoteCreateParams = {
        "invoice": wanted.stripe_invoice_id, "amount": wanted.amount,
        "refunds": [{"type": "refund", "refund": wanted.stripe_refund_id, "amount_refunded": wanted.amount}],
        "reason": _REASONS.get(wanted.reason or "", "order_change"),
        "metadata": {"lms_refund_id": str(wanted.refund_id)}}
    try:
        credit_note = state.gateway.create_credit_note(params, api_key=api_key,
                                                       idempotency_key=f"lms-credit-note-{wanted.refund_id}")
    except GatewayError as err:
        found = None if err.retryable else _crediting(state, wanted, api_key)
        if found is None:
            raise
        credit_note = found
    record(state, credit_note)


def _crediting(state: PluginState, wanted: CreditNoteWanted, api_key: str | None) -> dict | None:
    """A credit note of the invoice that links the refund already, if any."""
    for credit_note in state.gateway.list_credit_notes({"invoice": wanted.stripe_invoice_id, "limit": 100},
                                                       api_key=api_key):
        if any(_id(entry.get("refund")) == wanted.stripe_refund_id for entry in credit_note.get("refunds") or []):
            return credit_note
    return None


def _id(value) -> str | None:
    return value.get("id") if isinstance(value, dict) else value


def _moment(timestamp) -> datetime:
    if isinstance(timestamp, int) and not isinstance(timestamp, bool) and timestamp > 0:
        return datetime.fromtimestamp(timestamp, timezone.utc)
    return datetime.now(timezone.utc)
