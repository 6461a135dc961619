"""Settling debts: several open invoices of one learner paid in one Checkout payment, each credited its part.

Stripe cannot attach one payment to several invoices: "You can only apply an entire payment towards an invoice,
which means you can't apply a payment across multiple invoices" (docs.stripe.com/invoicing/payment-application),
and a PaymentIntent attached to an invoice is for at most what it owes (docs.stripe.com/invoicing/partial-payments).
So a settlement is a payment request with parts (`RequestPart`, one per invoice, for what it owed when asked),
paid as any request is (its page, links, messages, reminders, `paying.reserve` and `paying.open_session`) in one
Checkout Session of one line per invoice. Once paid, each part is reported to Stripe as a Payment Record of its
share ("a payment that occurs on- or off-Stripe … to mark an Invoice as paid", docs.stripe.com/api/payment-record),
whose reference is the PaymentIntent that carries the money, and attached to its invoice (`paying.attach`); each
invoice's paid and remaining amounts then follow Stripe's events, as for any payment attached to it.

Its parts are paid together or not at all: one invoice paid, voided or paid in part otherwise meanwhile stops the
whole (`paying.blocked`), with nothing charged. Once paid, a part whose invoice was paid another way while the
Checkout was open goes on the learner's balance, the other parts to their invoices (`paying._after_part_refusal`).
A learner chooses invoices on "My payments" (`for_learner`): one
open request per choice (its ``selection_key``, unique while open), so a second click pays the same Checkout
Session; an administrator asks a learner for several invoices (`create`), sent like any request.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, time, timezone

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..core import audit
from ..core.enums import AttemptStatus, AuditAction, PaymentRequestStatus
from ..core.i18n import current_locale, gettext as _, normalize_locale
from ..core.models import Invoice, PaymentRequest, RequestPart, utcnow
from ..core.state import PluginState
from ..errors import PaymentsError, ValidationFailed
from ..money import Money, MoneyError, check_chargeable
from . import paying, requests as payment_requests

#: The most invoices settled in one payment.
MAX_INVOICES = 20


class SettlementRefused(PaymentsError):
    """These invoices cannot be settled together now; the message says why, and what to do."""

    status_code = 409


class NotTheirs(SettlementRefused):
    status_code = 404


@dataclass(frozen=True)
class SettlementInput:
    """How an administrator's settlement is sent: as a request of one invoice, without an amount (each
    invoice's part is what it owes)."""

    due: date
    message: str | None
    email: bool
    sms: bool
    locale: str


def open_invoices(session, user_id: str) -> list[Invoice]:
    """A learner's invoices that can be settled: issued, open, with an amount remaining, soonest due first."""
    found = session.scalars(select(Invoice).where(Invoice.user_id == user_id, Invoice.stripe_invoice_id.is_not(None))
                            .order_by(Invoice.due_at, Invoice.id))
    return [invoice for invoice in found if paying.problem(invoice) is None]


def checked(session, user_id: str, invoice_ids: list[int], *, not_theirs: str) -> list[Invoice]:
    """Lock and check the invoices chosen to settle for ``user_id``: at least two, at most `MAX_INVOICES`, all
    theirs (else `NotTheirs` with ``not_theirs``), each open and owing something, in one currency, of one Stripe
    customer, their sum one that Stripe charges. In the order they are asked: soonest due first."""
    ids = sorted(set(invoice_ids))
    if len(ids) < 2:
        raise SettlementRefused(_("Choose at least two invoices to pay them together."))
    if len(ids) > MAX_INVOICES:
        raise SettlementRefused(_("Choose at most %(n)s invoices to pay together.", n=MAX_INVOICES))
    invoices = paying.lock_invoices(session, ids)
    if len(invoices) != len(ids) or any(invoice.user_id != user_id for invoice in invoices):
        raise NotTheirs(not_theirs)
    for invoice in invoices:
        found = paying.problem(invoice)
        if found is not None:
            raise SettlementRefused(found + " " + _("Choose the invoices to pay again."))
    currencies = sorted({invoice.currency for invoice in invoices})
    if len(currencies) > 1:
        raise SettlementRefused(_("These invoices are in different currencies (%(currencies)s): choose invoices of "
                                  "one currency to pay them together.", currencies=", ".join(currencies)))
    if len({invoice.stripe_customer_id for invoice in invoices}) > 1:
        raise SettlementRefused(_("These invoices were issued to different Stripe customers: pay them one by one."))
    total = Money(sum(invoice.amount_remaining for invoice in invoices), currencies[0])
    try:
        check_chargeable(total)
    except MoneyError:
        raise SettlementRefused(_("Stripe cannot charge %(amount)s in one payment: choose fewer invoices.",
                                  amount=total.format(current_locale()))) from None
    return sorted(invoices, key=lambda invoice: (_aware(invoice.due_at) or _FAR, invoice.id))


_FAR = datetime.max.replace(tzinfo=timezone.utc)


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=timezone.utc) if moment is not None and moment.tzinfo is None else moment


def _refuse_under_way(session, invoices: list[Invoice]) -> None:
    """Another payment of one of these invoices is processing or being credited: nothing is written."""
    ids = [invoice.id for invoice in invoices]
    for attempt in paying.under_way(session, ids):
        if attempt.status != AttemptStatus.OPEN:
            raise SettlementRefused(paying.busy_message(attempt, ids))


# -- the learner's own choice, from "My payments" ---------------------------------------------------------------


def selection_key(user_id: str, invoices: list[Invoice]) -> str:
    """The choice of ``invoices`` by ``user_id``, each for what it owes now, as one key."""
    chosen = ",".join(f"{invoice.id}:{invoice.amount_remaining}" for invoice in sorted(invoices, key=lambda i: i.id))
    return hashlib.sha256(f"{user_id}|{chosen}".encode()).hexdigest()


def for_learner(state: PluginState, invoice_ids: list[int], *, user_id: str) -> PaymentRequest:
    """The learner's request to pay these invoices of theirs in one payment, from "My payments" (no message is
    sent). The same choice made again (a second click) is the same request while it is open; an earlier choice
    of theirs that shares an invoice with this one is cancelled (its Checkout expired), so that no invoice is
    paid twice."""
    session = state.session
    invoices = checked(session, user_id, invoice_ids,
                       not_theirs=_("One of the invoices chosen is not yours, or no longer exists: reload the page."))
    key = selection_key(user_id, invoices)
    existing = _open_selection(session, key)
    if existing is not None:
        return existing
    _refuse_under_way(session, invoices)
    _supersede(state, user_id, invoices)
    dues = [moment for moment in (_aware(invoice.due_at) for invoice in invoices) if moment is not None]
    request = _request(invoices, user_id=user_id, actor_id=user_id, due_at=min(dues, default=utcnow()),
                       locale=normalize_locale(current_locale()), email=False, sms=False, message=None,
                       selection_key=key)
    try:
        with session.begin_nested():
            session.add(request)
    except IntegrityError:  # the same choice, made at the same moment by a second click
        found = _open_selection(session, key)
        if found is None:
            raise
        return found
    _audit(session, request, actor_id=user_id, by_learner=True)
    return request


def _open_selection(session, key: str) -> PaymentRequest | None:
    return session.scalar(select(PaymentRequest).where(PaymentRequest.selection_key == key,
                                                       PaymentRequest.status == PaymentRequestStatus.OPEN))


def _supersede(state: PluginState, user_id: str, invoices: list[Invoice]) -> None:
    session = state.session
    ids = [invoice.id for invoice in invoices]
    earlier = session.scalars(select(PaymentRequest).where(
        PaymentRequest.user_id == user_id, PaymentRequest.selection_key.is_not(None),
        PaymentRequest.status == PaymentRequestStatus.OPEN,
        PaymentRequest.id.in_(select(RequestPart.request_id).where(RequestPart.invoice_id.in_(ids))))).all()
    for request in earlier:
        payment_requests.cancel(state, request, actor_id=user_id)


def _request(invoices: list[Invoice], *, user_id: str, actor_id: str | None, due_at: datetime, locale: str,
             email: bool, sms: bool, message: str | None, selection_key: str | None = None) -> PaymentRequest:
    """A request for what each invoice owes now, one part each, in the order given."""
    request = PaymentRequest(
        invoice_id=invoices[0].id, user_id=user_id, amount=sum(invoice.amount_remaining for invoice in invoices),
        currency=invoices[0].currency, due_at=due_at, locale=locale, send_email=email, send_sms=sms,
        message=message, created_by=actor_id, partial_minimum=None, selection_key=selection_key)
    request.invoice = invoices[0]
    for position, invoice in enumerate(invoices, start=1):
        part = RequestPart(position=position, invoice_id=invoice.id, amount=invoice.amount_remaining)
        part.invoice = invoice
        request.parts.append(part)
    return request


def _audit(session, request: PaymentRequest, *, actor_id: str | None, **details) -> None:
    """One entry per invoice, so that each invoice's history says it was asked with the others."""
    numbers = [invoice.number or str(invoice.id) for invoice in request.invoices]
    for part in request.parts:
        others = [number for invoice, number in zip(request.invoices, numbers) if invoice.id != part.invoice_id]
        audit.record(session, AuditAction.PAYMENT_REQUESTED, actor_id=actor_id, user_id=request.user_id,
                     course_id=part.invoice.course_id, invoice=part.invoice_id, request=request.id,
                     amount=part.amount, currency=request.currency, settlement=True, with_invoices=others,
                     total=request.amount, **details)


# -- an administrator's request for several invoices -------------------------------------------------------------


def create(state: PluginState, user_id: str, invoice_ids: list[int], data: SettlementInput, *,
           actor_id: str | None) -> PaymentRequest:
    """Ask ``user_id`` to pay these invoices of theirs in one payment: a request with a part per invoice (what
    it owes now), sent by its channels, reminded as any request."""
    session = state.session
    invoices = checked(session, user_id, invoice_ids,
                       not_theirs=_("One of the invoices chosen is not this learner's, or no longer exists."))
    errors = payment_requests.delivery_errors(state, state.host.get_user(user_id), data)
    if errors:
        raise ValidationFailed(errors, _("The payment request was not sent."))
    request = _request(invoices, user_id=user_id, actor_id=actor_id,
                       due_at=datetime.combine(data.due, time(23, 59, 59), timezone.utc),
                       locale=normalize_locale(data.locale), email=data.email, sms=data.sms,
                       message=data.message or None)
    session.add(request)
    session.flush()
    _audit(session, request, actor_id=actor_id,
           channels=[c for c, on in (("email", data.email), ("sms", data.sms)) if on])
    payment_requests.notify(state, request, purpose="sent")
    return request
