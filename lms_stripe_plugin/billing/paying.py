"""Pay clicks: each makes one Checkout Session for an amount (a `PaymentAttempt`). A payment request's payment
is then attached to the Stripe invoice (Stripe's partial payments on invoices), whose events move our amounts;
a payment link's session issues an invoice of its own (Checkout's ``invoice_creation``), which is recorded.

A click is two steps, each in a transaction of the caller's: `reserve` (or `payment_links.reserve`) checks the
amount and writes the attempt (or reuses the open one), `open_session` calls Stripe first and then records the
session. Once Stripe says the session is paid (its webhook, or the payer's return), `sync_session` records it
and, for a request, defers `attach` until that commits: attaching is a call to Stripe, made after the writes,
with its own key.

A settlement (a request with parts, `settlements`) is paid the same way, whole, in one session of one line per
invoice; Stripe applies a payment to one invoice only, so its payment is credited to each invoice by a Payment
Record of the part (`attach`, one step per unit of work). While one of its invoices has a payment under way
elsewhere, a click is refused; an open Checkout of another request on the same invoices is expired. A payment,
or a settlement's part, that its invoice no longer owes (paid another way meanwhile, voided) goes on the
learner's balance (`unattachable`; `_after_refusal`, `_after_part_refusal`); the other parts are credited to
their invoices.

A top-up request or link (`PaymentRequest.topup`, `PaymentLink.topup`) has no invoice: its session is a payment
on account, as a top-up from My payments is (no ``invoice_creation``); once paid, it puts the amount on the
learner's prepaid balance (`balances.credit_attempt`) instead of attaching it to an invoice.

A payment link's attempt holds one of the link's uses while it is live (open, or processing a bank debit):
`hold_use` takes it by a conditional UPDATE of the link's row, and the attempt's end gives it back, or counts
it as used when paid (`_move`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, cast

from flask import current_app
from sqlalchemy import ColumnElement, Table, and_, bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..accounts import connect, settings as payment_settings
from ..accounts import wallets
from ..core import audit, jobs, schools
from ..core.enums import (LIVE_ATTEMPT, PAYING_ATTEMPT, AttemptStatus, AuditAction, InvoiceSource, InvoiceStatus,
                          PaymentLinkStatus, PaymentRequestStatus)
from ..core.i18n import current_locale, gettext as _
from ..core.models import (Invoice, InvoicePayment, PaymentAttempt, PaymentLink, PaymentRequest, Purchase,
                           RequestPart, TopUp, parse_row_id, utcnow)
from ..core.state import PluginState
from ..core.txn import transition
from ..errors import GatewayError, NotPurchasable, PaymentsError
from ..gateway.types import InvoicePaymentListParamsPayment, PaymentRecordReportPaymentParams, SessionCreateParams
from ..money import Money, minimum_amount
from . import balances, customers, issuing, taxes, unattachable
from .invoices import record_link_invoice

REUSE_MARGIN = timedelta(minutes=5)
#: An open attempt whose session was not recorded this long after the click is taken as lost (see `opening`).
OPENING_MARGIN = timedelta(minutes=1)
#: An open attempt this long past its session's expiry is taken as expired (its expiry event was lost).
STALE_MARGIN = timedelta(minutes=5)


class NotPayable(NotPurchasable):
    """This request cannot be paid now (paid, cancelled, an amount out of its limits…)."""


def remaining(request: PaymentRequest) -> int:
    """What the request still asks: its amount minus what was paid, never more than the invoice owes. A
    settlement asks its parts not yet paid (whether they can still be paid together: `blocked`)."""
    if request.parts or request.invoice is None:  # a settlement, or a top-up
        return max(0, request.amount - request.amount_paid)
    return max(0, min(request.amount - request.amount_paid, request.invoice.amount_remaining))


def problem(invoice: Invoice, part: int | None = None) -> str | None:
    """Why this invoice cannot be paid now as one of several (``part`` of it, when that was asked), or None."""
    number = invoice.number or str(invoice.id)
    if invoice.status == InvoiceStatus.PAID or (invoice.status == InvoiceStatus.OPEN and invoice.amount_remaining <= 0):
        return _("Invoice %(number)s is already paid.", number=number)
    if invoice.status == InvoiceStatus.VOID:
        return _("Invoice %(number)s is void: it cannot be paid.", number=number)
    if invoice.status != InvoiceStatus.OPEN or not invoice.stripe_invoice_id:
        return _("Invoice %(number)s cannot be paid online.", number=number)
    if part is not None and part > invoice.amount_remaining:
        locale = current_locale()
        return _("Invoice %(number)s now owes %(left)s, less than the %(part)s asked: part of it was paid meanwhile.",
                 number=number, left=Money(invoice.amount_remaining, invoice.currency).format(locale),
                 part=Money(part, invoice.currency).format(locale))
    return None


def blocked(request: PaymentRequest) -> str | None:
    """Why a settlement cannot be paid as asked any more (one of its invoices was paid, voided or paid in part
    otherwise meanwhile), or None: its parts are paid together or not at all."""
    for part in request.parts:
        if part.paid_at is None:
            found = problem(part.invoice, part.amount)
            if found is not None:
                return found + " " + _("The invoices cannot be paid together as asked: nothing was charged.")
    return None


def overdue(request: PaymentRequest) -> bool:
    """An open request past its due date."""
    return request.status == PaymentRequestStatus.OPEN and _past(request.due_at)


def invoice_overdue(invoice: Invoice) -> bool:
    """An issued invoice that still owes something after its due date."""
    return invoice.status == InvoiceStatus.OPEN and invoice.amount_remaining > 0 and _past(invoice.due_at)


def _past(moment: datetime | None) -> bool:
    if moment is None:
        return False
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)) < utcnow()


def limits(request: PaymentRequest) -> tuple[int, int]:
    """The smallest and largest amount the learner may pay now (equal unless partial payments are on)."""
    most = remaining(request)
    if request.partial_minimum is None or request.parts or request.topup:  # a settlement, a top-up: whole
        return most, most
    least = max(request.partial_minimum, minimum_amount(request.currency).amount)
    return min(least, most), most


def check_payable(request: PaymentRequest, amount: int) -> None:
    """Raise `NotPayable` with a message for the learner unless ``amount`` may be paid now."""
    if request.status == PaymentRequestStatus.CANCELLED:
        raise NotPayable(_("This payment request was cancelled: there is nothing to pay."))
    if request.status == PaymentRequestStatus.PAID or remaining(request) <= 0:
        raise NotPayable(_("This payment request is paid: there is nothing left to pay."))
    if request.parts:
        found = blocked(request)
        if found is not None:
            raise NotPayable(found)
    elif request.invoice is not None and request.invoice.status != InvoiceStatus.OPEN:
        raise NotPayable(_("This invoice cannot be paid any more."))
    least, most = limits(request)
    locale = current_locale()
    floor = minimum_amount(request.currency).amount
    if most < floor:  # left by a payment made otherwise: no payment page can take so little
        raise NotPayable(_("What is left to pay, %(left)s, is less than the least an online payment can be "
                           "(%(min)s): please contact the school.", left=Money(most, request.currency).format(locale),
                           min=Money(floor, request.currency).format(locale)))
    if amount > most:
        raise NotPayable(_("The amount must be at most %(max)s.", max=Money(most, request.currency).format(locale)))
    if amount < least:
        raise NotPayable(_("The amount must be at least %(min)s.", min=Money(least, request.currency).format(locale)))
    if 0 < most - amount < floor:  # what it leaves could never be paid online
        raise NotPayable(_("Pay %(all)s, or at most %(part)s: what is left must be at least %(min)s, the least an "
                           "online payment can be.", all=Money(most, request.currency).format(locale),
                           part=Money(most - floor, request.currency).format(locale),
                           min=Money(floor, request.currency).format(locale)))


@dataclass(frozen=True)
class PayPlan:
    """What `open_session` needs, as plain values: it runs after the caller's commit, and calls Stripe before
    touching the database."""

    attempt_id: int
    key: str  # the session's idempotency key, derived from the attempt
    url: str | None  # the open session's page, when it can be reused
    params: SessionCreateParams
    tax_rate: taxes.TaxRateWanted | None = None  # an inclusive VAT rate to create at Stripe first
    customer: customers.CustomerWanted | None = None  # the learner's customer, to create first (a top-up's)


def live_attempt(session, request_id: int) -> PaymentAttempt | None:
    return session.scalar(select(PaymentAttempt).where(PaymentAttempt.request_id == request_id,
                                                       PaymentAttempt.status.in_(LIVE_ATTEMPT)))


def paused_message() -> str:
    """What a payment page says while the school cannot take payments (turned off, or paused by Stripe)."""
    return _("Online payment is paused for now: try again later, or contact the school.")


def reserve(state: PluginState, request: PaymentRequest, amount: int, *, return_url: str) -> PayPlan:
    """Check the amount, then reuse the open attempt for it or write a new one. ``return_url`` is the page
    the learner comes back to (the pay page of their link, or My payments). The request's invoices are locked
    first (in the order of their ids, as every locker of several does), so that two clicks, or a click and
    Stripe's event, apply one after the other."""
    session = state.session
    if not payment_settings.load(session).active:
        raise NotPayable(paused_message())
    lock_invoices(session, [invoice.id for invoice in request.invoices])
    current = live_attempt(session, request.id)
    if current is not None and current.status == AttemptStatus.PROCESSING:
        raise NotPayable(_("Your payment is processing: it will be credited as soon as it is confirmed."))
    if current is not None and opening(current):
        raise NotPayable(_("Your payment page is being opened: try again in a minute."))
    if not request.topup and paid_unattached(session, request.id):
        raise NotPayable(_("Your payment is received: it is being credited to the invoice."))
    check_payable(request, amount)
    if request.topup:
        refusal = balances.topup_refusal(payment_settings.load(session), Money(amount, request.currency), asked=True)
        if refusal:
            raise NotPayable(refusal)
    else:
        _free_invoices(state, request, amount)
    key = f"lms-request-{request.id}-{{}}"
    if current is not None and current.amount == amount and still_open(current):
        return PayPlan(current.id, key.format(current.id), current.checkout_url, {})
    if current is not None and not retire(state, current):
        _refuse_if_taken(session, current, _("Your payment is received: it is being credited to the invoice."))
    attempt = _insert(state, request, amount)
    if request.topup:
        return _topup_plan(state, request, attempt, key.format(attempt.id), return_url)
    return PayPlan(attempt.id, key.format(attempt.id), None, _session_params(state, request, attempt, return_url))


def opening(attempt: PaymentAttempt) -> bool:
    """Whether another click is opening this attempt's Checkout Session right now (written, its session not
    recorded yet): a second click then waits, rather than open a second session that could be paid too. Past
    `OPENING_MARGIN` the opening is taken as lost (Stripe's answer never came), and a click replaces it."""
    created = attempt.created_at if attempt.created_at.tzinfo else attempt.created_at.replace(tzinfo=timezone.utc)
    return attempt.status == AttemptStatus.OPEN and not attempt.checkout_url and created > utcnow() - OPENING_MARGIN


def lock_invoices(session, invoice_ids: list[int]) -> list[Invoice]:
    """Lock these invoices' rows, in the order of their ids, and read them again: what they owe now."""
    return list(session.scalars(select(Invoice).where(Invoice.id.in_(invoice_ids)).order_by(Invoice.id)
                                .with_for_update().execution_options(populate_existing=True)))


def paid_unattached(session, request_id: int) -> bool:
    """Whether a payment of the request was taken and is not yet credited to its invoices (being attached)."""
    return session.scalar(select(PaymentAttempt.id).where(PaymentAttempt.request_id == request_id,
                                                          PaymentAttempt.status == AttemptStatus.PAID)
                          .limit(1)) is not None


def asks_something() -> ColumnElement[bool]:
    """SQL: the request (an enclosing query's) still asks for something, as `remaining` reads it: not all of
    its amount paid, and the invoice it asks for alone (not a settlement's first, nor a top-up's none) still
    owing."""
    owing = select(Invoice.id).where(Invoice.id == PaymentRequest.invoice_id, Invoice.amount_remaining > 0).exists()
    return and_(PaymentRequest.amount_paid < PaymentRequest.amount,
                or_(PaymentRequest.invoice_id.is_(None), ~PaymentRequest.single(), owing))


def paying_now(request_id: Any) -> ColumnElement[bool]:
    """SQL: a payment of the request ``request_id`` (a column, such as an enclosing query's
    ``PaymentRequest.id``, or an id) is under way (`PAYING_ATTEMPT`): no reminder, no "overdue", no resend."""
    return select(PaymentAttempt.id).where(PaymentAttempt.request_id == request_id,
                                           PaymentAttempt.status.in_(PAYING_ATTEMPT)).exists()


def payment_under_way(session, request_id: int) -> bool:
    """Whether a payment of the request is under way (`paying_now`)."""
    return bool(session.scalar(select(paying_now(request_id))))


def paying_requests(session, request_ids: list[int]) -> set[int]:
    """Which of these requests have a payment under way (`PAYING_ATTEMPT`), in one query."""
    if not request_ids:
        return set()
    return set(session.scalars(select(PaymentAttempt.request_id).where(
        PaymentAttempt.request_id.in_(request_ids), PaymentAttempt.status.in_(PAYING_ATTEMPT))))


def under_way(session, invoice_ids: list[int], *, besides: int | None = None) -> list[PaymentAttempt]:
    """The Pay clicks of requests (other than ``besides``) that ask payment of one of these invoices and whose
    payment is open, processing, or taken and not yet credited."""
    covering = [PaymentRequest.covering(invoice_id) for invoice_id in invoice_ids]
    query = (select(PaymentAttempt).join(PaymentRequest, PaymentRequest.id == PaymentAttempt.request_id)
             .where(PaymentAttempt.status.in_((*LIVE_ATTEMPT, AttemptStatus.PAID)), or_(*covering))
             .order_by(PaymentAttempt.id))
    if besides is not None:
        query = query.where(PaymentRequest.id != besides)
    return list(session.scalars(query))


def busy_message(attempt: PaymentAttempt, invoice_ids: list[int]) -> str:
    """What a click is told when another payment of one of its invoices is processing or being credited."""
    request = attempt.request
    shared = [invoice for invoice in (request.invoices if request is not None else []) if invoice.id in invoice_ids]
    number = shared[0].number or str(shared[0].id) if shared else ""
    return _("A payment of invoice %(number)s is under way: it will be credited as soon as it is confirmed, and "
             "nothing was charged now.", number=number)


def _free_invoices(state: PluginState, request: PaymentRequest, amount: int) -> None:
    """The other requests' Pay clicks on the same invoices, when a settlement is concerned (this click's
    request or another's): an open Checkout is expired (the latest click wins, so that no invoice is paid
    twice), a payment processing or being credited refuses this click. Two requests of one invoice each may
    be paid at once (two parts of it), as long as what their payments ask together is no more than the invoice
    owes: past that, the other's open Checkout is expired too, and its payment processing or being credited
    refuses this click, saying what may still be paid."""
    invoice_ids = [invoice.id for invoice in request.invoices]
    under = under_way(state.session, invoice_ids, besides=request.id)
    others = [attempt for attempt in under
              if request.parts or (attempt.request is not None and attempt.request.parts)]
    if not request.parts and request.invoice is not None:
        parts = [attempt for attempt in under if attempt not in others]
        if amount + sum(attempt.amount for attempt in parts) > request.invoice.amount_remaining:
            _refuse_beyond_owed(request.invoice, amount, [a for a in parts if a.status != AttemptStatus.OPEN])
            others += [attempt for attempt in parts if attempt.status == AttemptStatus.OPEN]
    for attempt in others:  # refused before anything is written
        if attempt.status != AttemptStatus.OPEN:
            raise NotPayable(busy_message(attempt, invoice_ids))
    for attempt in others:
        if not retire(state, attempt):
            _refuse_if_taken(state.session, attempt, busy_message(attempt, invoice_ids))


def _refuse_beyond_owed(invoice: Invoice, amount: int, busy: list[PaymentAttempt]) -> None:
    """Refuse a click whose ``amount``, with the other payments of the invoice processing or being credited
    (``busy``), is more than the invoice owes: it says how much may still be paid, if anything."""
    taken = sum(attempt.amount for attempt in busy)
    if amount + taken <= invoice.amount_remaining:
        return
    left = invoice.amount_remaining - taken
    if left < minimum_amount(invoice.currency).amount:  # ``busy`` is not empty: ``amount`` fits what is owed
        raise NotPayable(busy_message(busy[0], [invoice.id]))
    locale = current_locale()
    raise NotPayable(_("Invoice %(number)s owes %(owed)s, of which %(taken)s is being paid: you may pay at most "
                       "%(left)s now, and nothing was charged.", number=invoice.number or str(invoice.id),
                       owed=Money(invoice.amount_remaining, invoice.currency).format(locale),
                       taken=Money(taken, invoice.currency).format(locale),
                       left=Money(left, invoice.currency).format(locale)))


def _refuse_if_taken(session, attempt: PaymentAttempt, paid_message: str) -> None:
    """An open attempt a click was retiring left the open state meanwhile (Stripe's event, handled by another
    worker after the click read it): if its payment was taken or is processing, the click is refused (with
    ``paid_message`` for one taken), so that what it owes is not asked for twice. One that expired is no
    obstacle."""
    session.refresh(attempt)
    if attempt.status == AttemptStatus.PROCESSING:
        raise NotPayable(_("Your payment is processing: it will be credited as soon as it is confirmed."))
    if attempt.status == AttemptStatus.PAID:
        raise NotPayable(paid_message)


def still_open(attempt: PaymentAttempt) -> bool:
    """Whether the attempt's Checkout Session can still be sent to (it stays open a while yet)."""
    expires = attempt.expires_at
    if expires is not None and expires.tzinfo is None:
        expires = expires.replace(tzinfo=timezone.utc)
    return bool(attempt.checkout_url) and expires is not None and expires > utcnow() + REUSE_MARGIN


def retire(state: PluginState, attempt: PaymentAttempt) -> bool:
    """Close an open attempt; once that is committed, its Checkout Session is expired at Stripe. False if it
    was no longer open (paid, processing or expired meanwhile): nothing is done."""
    if not _move(state.session, attempt, (AttemptStatus.OPEN,), AttemptStatus.EXPIRED):
        return False
    # Read again: the click that opens it may have recorded its session since this attempt was loaded.
    session_id = state.session.scalar(select(PaymentAttempt.stripe_checkout_session_id)
                                      .where(PaymentAttempt.id == attempt.id))
    if session_id:
        jobs.defer(state.session, expire_sessions, [session_id])
    return True


def expire_sessions(state: PluginState, session_ids: list[str]) -> None:
    settings = payment_settings.load(state.session)
    for session_id in session_ids:
        try:
            state.gateway.expire_checkout_session(session_id, api_key=settings.secret_key)
        except PaymentsError:
            continue  # already expired or complete: if it was paid, its payment is still attached


def expiry() -> datetime:
    """When a Checkout Session opened now expires (``LMS_STRIPE_CHECKOUT_EXPIRY``)."""
    return (utcnow() + timedelta(seconds=current_app.config["LMS_STRIPE_CHECKOUT_EXPIRY"])).replace(microsecond=0)


def _insert(state: PluginState, request: PaymentRequest, amount: int) -> PaymentAttempt:
    attempt = PaymentAttempt(request_id=request.id, amount=amount, currency=request.currency,
                             status=AttemptStatus.OPEN, expires_at=expiry())
    try:
        with state.session.begin_nested():
            state.session.add(attempt)
    except IntegrityError:
        raise NotPayable(_("A payment of this request is already under way: reload the page.")) from None
    return attempt


def _session_params(state: PluginState, request: PaymentRequest, attempt: PaymentAttempt,
                    return_url: str) -> SessionCreateParams:
    """The Pay click's session of a request: its payment is attached to the request's invoice afterwards."""
    if request.parts:
        return _settlement_params(state, request, attempt, return_url)
    invoice = request.invoice
    if invoice is None:
        raise NotPayable(_("This payment request asks for no invoice's payment."))
    metadata = {"lms_attempt_id": str(attempt.id), "lms_request_id": str(request.id),
                "lms_invoice_id": str(invoice.id), "lms_user_id": request.user_id}
    label = _("Payment of invoice %(number)s", number=invoice.number or invoice.id)
    params = session_params(state, attempt, metadata, return_url)
    params["customer"] = invoice.stripe_customer_id or ""
    params["line_items"] = [{"quantity": 1, "price_data": {
        "currency": request.currency.lower(), "unit_amount": attempt.amount,
        "product_data": {"name": label[:250], "metadata": {"lms_invoice_id": str(invoice.id)}}}}]
    params["payment_intent_data"] = {"metadata": metadata, "description": label[:1000]}
    return params


def _topup_plan(state: PluginState, request: PaymentRequest, attempt: PaymentAttempt, key: str,
                return_url: str) -> PayPlan:
    """The Pay click's session of a top-up request: a payment on account of the learner's customer (created
    first if the learner has none yet), no invoice; paid, it goes on their balance."""
    metadata = {"lms_attempt_id": str(attempt.id), "lms_request_id": str(request.id), "lms_user_id": request.user_id}
    params = topup_params(state, attempt, metadata, return_url)
    settings = payment_settings.load(state.session)
    known = customers.known(state.session, request.user_id, livemode=settings.livemode)
    if known:
        params["customer"] = known
        return PayPlan(attempt.id, key, None, params)
    user = state.host.get_user(request.user_id)
    if user is None:
        raise NotPayable(_("The LMS no longer knows this learner."))
    return PayPlan(attempt.id, key, None, params, customer=customers.CustomerWanted(
        request.user_id, state.host.user_email(user), state.host.user_display_name(user), request.locale))


def topup_params(state: PluginState, attempt: PaymentAttempt, metadata: dict[str, str],
                 return_url: str) -> SessionCreateParams:
    """A top-up's session, of a request or a link: one line, "Top-up of your prepaid balance", and no invoice
    (Checkout's ``invoice_creation`` stays off: the course the balance pays is invoiced, with its VAT)."""
    label = _("Top-up of your prepaid balance")
    params = session_params(state, attempt, metadata, return_url)
    params["line_items"] = [{"quantity": 1, "price_data": {
        "currency": attempt.currency.lower(), "unit_amount": attempt.amount, "product_data": {"name": label[:250]}}}]
    params["payment_intent_data"] = {"metadata": metadata, "description": label[:1000]}
    return params


def _settlement_params(state: PluginState, request: PaymentRequest, attempt: PaymentAttempt,
                       return_url: str) -> SessionCreateParams:
    """The session of a settlement: one line per invoice for its part, the learner's customer (that of the
    invoices); its payment is credited to each invoice afterwards, a Payment Record per part."""
    parts = [part for part in request.parts if part.paid_at is None]
    numbers = ", ".join(part.invoice.number or str(part.invoice_id) for part in parts)
    metadata = {"lms_attempt_id": str(attempt.id), "lms_request_id": str(request.id),
                "lms_invoice_ids": ",".join(str(part.invoice_id) for part in parts), "lms_user_id": request.user_id}
    params = session_params(state, attempt, metadata, return_url)
    params["customer"] = parts[0].invoice.stripe_customer_id or ""
    params["line_items"] = [{"quantity": 1, "price_data": {
        "currency": request.currency.lower(), "unit_amount": part.amount,
        "product_data": {"name": _("Payment of invoice %(number)s", number=part.invoice.number or part.invoice_id)[:250],
                         "metadata": {"lms_invoice_id": str(part.invoice_id)}}}} for part in parts]
    params["payment_intent_data"] = {"metadata": metadata,
                                     "description": _("Payment of invoices %(numbers)s", numbers=numbers)[:1000]}
    return params


def session_params(state: PluginState, attempt: PaymentAttempt, metadata: dict[str, str],
                   return_url: str) -> SessionCreateParams:
    """What every Pay click's session has: a payment of the attempt (``metadata`` names it, and its client
    reference), in the payer's language, expiring with the attempt, back to ``return_url``; card (and SEPA in
    euros), listed, or through the wallets' Payment Method Configuration when the settings turn wallets on and
    it is known (this step has written: a configuration still to create is created once this step commits,
    for the next click)."""
    settings = payment_settings.load(state.session)
    methods = ["card", "sepa_debit"] if settings.sepa_debit_enabled and attempt.currency == "EUR" else ["card"]
    params: SessionCreateParams = {
        "mode": "payment",
        "metadata": metadata,
        "client_reference_id": f"lms-attempt-{attempt.id}",
        "locale": "fr" if current_locale() == "fr" else "en",
        "expires_at": int(attempt.expires_at.timestamp()) if attempt.expires_at else 0,
        "success_url": _with_query(return_url, "session_id={CHECKOUT_SESSION_ID}"),
        "cancel_url": return_url,
    }
    params.update(wallets.method_params(methods, wallets.configuration_or_later(state, settings)))
    return params


def _with_query(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


def open_session(state: PluginState, plan: PayPlan) -> str:
    """Create the attempt's Checkout Session at Stripe (and the VAT rate it needs, if new), then record it."""
    settings = payment_settings.load(state.session)
    params, created_rate, created_customer = plan.params, None, None
    try:
        if plan.customer is not None:
            created_customer = customers.create(state, settings, plan.customer)
            params = {**params, "customer": created_customer}
        if plan.tax_rate is not None:
            created_rate = taxes.create(state, settings, plan.tax_rate)
            params = taxes.with_tax_rate(params, created_rate)
        created = state.gateway.create_checkout_session(connect.with_application_fee(params),
                                                        api_key=settings.secret_key, idempotency_key=plan.key)
    except GatewayError as err:
        _remember_rate(state, settings, plan, created_rate)
        _remember_customer(state, settings, plan, created_customer)
        if err.answered or not err.retryable:
            attempt = state.session.get(PaymentAttempt, plan.attempt_id)
            _move(state.session, attempt, (AttemptStatus.OPEN,), AttemptStatus.FAILED, failure_reason=err.message)
        raise
    _remember_rate(state, settings, plan, created_rate)
    _remember_customer(state, settings, plan, created_customer)
    attempt = state.session.get(PaymentAttempt, plan.attempt_id, with_for_update=True, populate_existing=True)
    attempt.stripe_checkout_session_id, attempt.checkout_url = created["id"], created["url"]
    if attempt.status != AttemptStatus.OPEN:
        # Replaced by a newer click while Stripe answered (past `OPENING_MARGIN`): this session is expired
        # at Stripe too, so that only the newer one can be paid; recorded, should it be paid before.
        jobs.defer(state.session, expire_sessions, [created["id"]])
        raise NotPayable(_("This payment page was replaced by a newer one: reload the page."))
    return created["url"]


def _remember_rate(state: PluginState, settings, plan: PayPlan, created: str | None) -> None:
    if created is not None and plan.tax_rate is not None:
        taxes.remember(state.session, plan.tax_rate, created, livemode=settings.livemode)


def _remember_customer(state: PluginState, settings, plan: PayPlan, created: str | None) -> None:
    if created is not None and plan.customer is not None:
        customers.remember(state.session, plan.customer.user_id, created, livemode=settings.livemode,
                           locale=plan.customer.locale)


# -- the uses of a payment link ------------------------------------------------------------------------------


def hold_use(session, link: PaymentLink, amount: int) -> bool:
    """Take one of the link's uses for a Pay click of ``amount``, if the database agrees that the link is
    active, not past its end, not used up (its uses and those held together) and the amount within its limits:
    one conditional UPDATE of the link's row, so that of two payers racing for its last use one only gets it,
    whatever the page checked before."""
    result = session.execute(update(PaymentLink).where(
        PaymentLink.id == link.id, PaymentLink.status == PaymentLinkStatus.ACTIVE,
        or_(PaymentLink.expires_at.is_(None), PaymentLink.expires_at > utcnow()),
        or_(PaymentLink.max_uses.is_(None), PaymentLink.uses + PaymentLink.held < PaymentLink.max_uses),
        or_(PaymentLink.amount == amount,
            and_(PaymentLink.amount.is_(None), PaymentLink.minimum <= amount, PaymentLink.maximum >= amount)),
    ).values(held=PaymentLink.held + 1).execution_options(synchronize_session=False))
    return result.rowcount == 1


def _settle_use(session, link_id: int, *, released: bool, used: bool) -> None:
    if released:
        session.execute(update(PaymentLink).where(PaymentLink.id == link_id, PaymentLink.held > 0)
                        .values(held=PaymentLink.held - 1).execution_options(synchronize_session=False))
    if used:
        # A payment Stripe took is counted, even past the limit (a session paid in the moment before its hold
        # was let go): the money is there, and the link's page then says it is used up.
        session.execute(update(PaymentLink).where(PaymentLink.id == link_id)
                        .values(uses=PaymentLink.uses + 1).execution_options(synchronize_session=False))


def _move(session, attempt: PaymentAttempt, from_states, to_state: AttemptStatus, **values) -> bool:
    """`transition` of an attempt. A link's attempt that leaves the live states gives back the use it held,
    and one that is paid counts a use: the attempt's transition and its link's counts are written together."""
    if attempt.link_id is None:
        return transition(session, attempt, from_states, to_state, **values)
    for group in ([s for s in from_states if s in LIVE_ATTEMPT], [s for s in from_states if s not in LIVE_ATTEMPT]):
        if group and transition(session, attempt, group, to_state, **values):
            _settle_use(session, attempt.link_id, released=group[0] in LIVE_ATTEMPT and to_state not in LIVE_ATTEMPT,
                        used=to_state == AttemptStatus.PAID)
            return True
    return False


def release_stale(state: PluginState, link: PaymentLink) -> None:
    """Let go of the uses held by the link's attempts whose Checkout expired without our hearing of it (a lost
    webhook): Stripe expires a session at its ``expires_at``, so past it (and a margin) it can no longer be
    paid."""
    stale = state.session.scalars(select(PaymentAttempt).where(
        PaymentAttempt.link_id == link.id, PaymentAttempt.status == AttemptStatus.OPEN,
        PaymentAttempt.expires_at < utcnow() - STALE_MARGIN)).all()
    for attempt in stale:
        _move(state.session, attempt, (AttemptStatus.OPEN,), AttemptStatus.EXPIRED)


# -- after Stripe says the session is paid ---------------------------------------------------------------


def attempt_of_session(session, cs: dict) -> PaymentAttempt | None:
    """Our attempt paid by this Checkout Session, if the session is one of ours for a payment request or a
    payment link (its metadata and client reference name the attempt, and the request or link it is for)."""
    metadata = cs.get("metadata") or {}
    attempt_id = parse_row_id(metadata.get("lms_attempt_id"))
    if attempt_id is None or cs.get("client_reference_id") != f"lms-attempt-{metadata.get('lms_attempt_id')}":
        return None
    attempt = session.get(PaymentAttempt, attempt_id)
    if attempt is None or attempt.stripe_checkout_session_id not in (None, cs.get("id")):
        return None
    if attempt.link_id is not None and parse_row_id(metadata.get("lms_link_id")) != attempt.link_id:
        return None
    return attempt


def sync_session(state: PluginState, cs: dict, *, failed: bool = False) -> PaymentAttempt | None:
    """Apply a Checkout Session of a Pay attempt: paid defers attaching a request's payment to its invoice
    (Stripe attaches only a succeeded payment), and records a link's invoice when the session carries it whole;
    processing (a SEPA debit) waits for the debit; expired, or ``failed`` (its debit failed:
    ``checkout.session.async_payment_failed``), closes the attempt."""
    session = state.session
    attempt = attempt_of_session(session, cs)
    if attempt is None:
        return None
    if attempt.stripe_checkout_session_id is None:
        attempt.stripe_checkout_session_id = cs["id"]  # our commit after Stripe's answer was lost
    intent = cs.get("payment_intent")
    intent_id = intent.get("id") if isinstance(intent, dict) else intent
    status, payment = cs.get("status"), cs.get("payment_status")
    if status == "expired":
        _move(session, attempt, (AttemptStatus.OPEN,), AttemptStatus.EXPIRED)
    elif status == "complete" and payment == "paid":
        if _move(session, attempt, (AttemptStatus.OPEN, AttemptStatus.PROCESSING, AttemptStatus.EXPIRED),
                 AttemptStatus.PAID, paid_at=utcnow(), stripe_payment_intent_id=intent_id):
            _paid(state, attempt, cs)
        if attempt.link_id is not None and isinstance(cs.get("invoice"), dict):
            record_link_invoice(state, cs["invoice"], attempt)
    elif status == "complete" and (failed or _failed(cs)):
        reason = ((intent if isinstance(intent, dict) else {}).get("last_payment_error") or {}).get("message")
        _move(session, attempt, (AttemptStatus.OPEN, AttemptStatus.PROCESSING), AttemptStatus.FAILED,
              failure_reason=reason or _("The bank debit failed."))
    elif status == "complete":
        _move(session, attempt, (AttemptStatus.OPEN,), AttemptStatus.PROCESSING, stripe_payment_intent_id=intent_id)
    return attempt


def _paid(state: PluginState, attempt: PaymentAttempt, cs: dict) -> None:
    """What follows a Pay attempt's payment, once: a request's is attached to its invoice (a top-up request's
    goes on the learner's balance); a link's is told (a top-up link's goes on the balance too)."""
    request = attempt.request
    if request is not None and request.topup:
        _request_topped_up(state, attempt, request, cs)
        return
    if request is not None:
        _attach_later(state, attempt, request)
        return
    link, customer = attempt.link, cs.get("customer")
    customer = customer.get("id") if isinstance(customer, dict) else customer
    if attempt.payer_user_id and customer:  # the learner's customer, made by this Checkout: their next one's
        customers.remember(state.session, attempt.payer_user_id, customer, livemode=cs.get("livemode") is True)
    audit.record(state.session, AuditAction.LINK_PAYMENT_RECEIVED, user_id=attempt.payer_user_id,
                 link=attempt.link_id, title=link.title if link else None, payer=attempt.payer_name,
                 amount=attempt.amount, currency=attempt.currency, checkout_session=cs.get("id"))
    if link is not None and link.topup and link.user_id:
        balances.credit_attempt(state, attempt, user_id=link.user_id, checkout_session=cs["id"], link=link.id,
                                title=link.title)


def _request_topped_up(state: PluginState, attempt: PaymentAttempt, request: PaymentRequest, cs: dict) -> None:
    """A top-up request's payment: on the learner's balance, and the request paid (once: `_paid` runs once)."""
    session = state.session
    balances.credit_attempt(state, attempt, user_id=request.user_id, checkout_session=cs["id"], request=request.id)
    session.execute(update(PaymentRequest).where(PaymentRequest.id == request.id)
                    .values(amount_paid=PaymentRequest.amount_paid + attempt.amount)
                    .execution_options(synchronize_session=False))
    session.refresh(request)
    if request.amount_paid >= request.amount:
        transition(session, request, (PaymentRequestStatus.OPEN,), PaymentRequestStatus.PAID, paid_at=utcnow())


def link_attempt_of_invoice(session, stripe_invoice: dict) -> PaymentAttempt | None:
    """The payment link's attempt whose Checkout issued this invoice (its metadata names both), locked: the
    session's event and the invoice's apply one after the other, so that whichever comes second records it."""
    metadata = stripe_invoice.get("metadata") or {}
    attempt_id, link_id = parse_row_id(metadata.get("lms_attempt_id")), parse_row_id(metadata.get("lms_link_id"))
    if attempt_id is None or link_id is None:
        return None
    attempt = session.get(PaymentAttempt, attempt_id, with_for_update=True, populate_existing=True)
    return attempt if attempt is not None and attempt.link_id == link_id else None


def apply_link_invoice(state: PluginState, stripe_invoice: dict) -> Invoice | None:
    """Record the invoice of a payment link's payment, if the payment is recorded (otherwise the session's
    event records it, from this invoice's snapshot)."""
    attempt = link_attempt_of_invoice(state.session, stripe_invoice)
    if attempt is None or attempt.status != AttemptStatus.PAID:
        return None
    return record_link_invoice(state, stripe_invoice, attempt)


def payment_method_of(charge: dict) -> str | None:
    """How a charge was paid: its ``payment_method_details.type`` ("card", "sepa_debit", "klarna"…), or for a
    card paid from a wallet the wallet's type ("apple_pay", "google_pay", "link"…)."""
    details = charge.get("payment_method_details") or {}
    if details.get("type") == "card":
        wallet = ((details.get("card") or {}).get("wallet") or {}).get("type")
        if wallet:
            return wallet
    return details.get("type") or None


def record_payment_method(state: PluginState, charge: dict) -> None:
    """How a Pay click's payment was made, from its charge (succeeded, or pending for a bank debit), whose
    metadata Stripe copied from the PaymentIntent: the attempt it names takes it, unless the attempt is known
    to have been paid by another PaymentIntent."""
    attempt_id = parse_row_id((charge.get("metadata") or {}).get("lms_attempt_id"))
    intent = charge.get("payment_intent")
    intent = intent.get("id") if isinstance(intent, dict) else intent
    method = payment_method_of(charge)
    if attempt_id is None or not intent or method is None:
        return
    state.session.execute(update(PaymentAttempt).where(
        PaymentAttempt.id == attempt_id,
        or_(PaymentAttempt.stripe_payment_intent_id.is_(None), PaymentAttempt.stripe_payment_intent_id == intent))
        .values(payment_method=method).execution_options(synchronize_session=False))


def _failed(cs: dict) -> bool:
    intent = cs.get("payment_intent")
    return isinstance(intent, dict) and intent.get("status") in ("requires_payment_method", "canceled")


@dataclass(frozen=True)
class PartPlan:
    """One part of a settlement to credit to its invoice: a Payment Record of ``amount``, attached."""

    part_id: int
    invoice_id: int
    stripe_invoice_id: str
    amount: int


@dataclass(frozen=True)
class AttachPlan:
    attempt_id: int
    stripe_invoice_id: str
    payment_intent: str
    #: A settlement's parts (none for a request of one invoice), with what the records need.
    parts: tuple[PartPlan, ...] = ()
    currency: str = ""
    customer: str = ""
    paid_at: int = 0


def _attach_later(state: PluginState, attempt: PaymentAttempt, request: PaymentRequest) -> None:
    if request.invoice is not None and request.invoice.stripe_invoice_id and attempt.stripe_payment_intent_id:
        jobs.defer(state.session, attach, attach_plan(attempt, request))


def attach_plan(attempt: PaymentAttempt, request: PaymentRequest) -> AttachPlan:
    parts = tuple(PartPlan(part.id, part.invoice_id, part.invoice.stripe_invoice_id or "", part.amount)
                  for part in sorted(request.parts, key=lambda part: part.invoice_id) if part.attached_at is None)
    paid_at = attempt.paid_at or utcnow()
    invoice = request.invoice
    return AttachPlan(attempt.id, invoice.stripe_invoice_id or "" if invoice else "",
                      attempt.stripe_payment_intent_id or "", parts=parts, currency=request.currency,
                      customer=invoice.stripe_customer_id or "" if invoice else "",
                      paid_at=int((paid_at if paid_at.tzinfo else paid_at.replace(tzinfo=timezone.utc)).timestamp()))


def attach(state: PluginState, plan: AttachPlan) -> None:
    """Attach an attempt's payment to the Stripe invoice (once: its key), then apply the invoice Stripe
    returns; a settlement's, a Payment Record per part, one step per run (`_settle_step`), the next step
    deferred until this one commits. Follow-up work: a failure leaves the attempt unattached, for
    reconciliation to find."""
    settings = payment_settings.load(state.session)
    if plan.parts:
        if _settle_step(state, plan, settings.secret_key):
            jobs.defer(state.session, attach, plan)
            return
        if _all_on_balance(state, plan):
            return
    else:
        try:
            updated = state.gateway.attach_payment(plan.stripe_invoice_id, {"payment_intent": plan.payment_intent,
                                                                            "expand": ["payments"]},
                                                   api_key=settings.secret_key,
                                                   idempotency_key=f"lms-attach-{plan.attempt_id}")
        except GatewayError as err:
            if err.retryable:
                raise
            found = _after_refusal(state, plan, settings.secret_key, err)
            if found is None:
                return
            updated = found
        apply_invoice(state, updated)
    attempt = state.session.get(PaymentAttempt, plan.attempt_id)
    if attempt.attached_at is None:
        attempt.attached_at = utcnow()
        transition(state.session, attempt, (AttemptStatus.PAID,), AttemptStatus.ATTACHED)


def _after_refusal(state: PluginState, plan: AttachPlan, api_key: str | None, err: GatewayError) -> dict | None:
    """Stripe refused to attach the payment. Either it is attached already (our record of that was lost, and
    Stripe keeps an idempotency key's answer only 24 hours): the invoice it is attached to, to apply. Or the
    invoice no longer owes it (paid another way meanwhile, voided, owing less now): the payment goes on the
    learner's balance (`unattachable`), and None. Any other refusal is raised again, for reconcile to report."""
    attached = invoice_attached_to(state, {"type": "payment_intent", "payment_intent": plan.payment_intent}, api_key)
    if attached is not None:
        return attached
    stripe_invoice = state.gateway.retrieve_invoice(plan.stripe_invoice_id, api_key=api_key, expand=["payments"])
    attempt = state.session.get(PaymentAttempt, plan.attempt_id)
    why = unattachable.why_refused(stripe_invoice, attempt.amount)
    if why is None:
        raise err
    apply_invoice(state, stripe_invoice)  # locks the invoice first, as its events' handlers do
    unattachable.put_on_balance(state, attempt, stripe_invoice, why)
    return None


def invoice_attached_to(state: PluginState, payment: InvoicePaymentListParamsPayment,
                        api_key: str | None) -> dict | None:
    """The Stripe invoice (its payments expanded) that a payment (a PaymentIntent, a Payment Record) is attached
    to already, read after Stripe refused to attach it; None if it is attached to none."""
    payments = state.gateway.list_invoice_payments({"payment": payment}, api_key=api_key)
    attached = next((found for found in payments if found.get("status") != "canceled"), None)
    if attached is None:
        return None
    return state.gateway.retrieve_invoice(_id(attached["invoice"]) or "", api_key=api_key, expand=["payments"])


def _settle_step(state: PluginState, plan: AttachPlan, api_key: str | None) -> bool:
    """One step of crediting a settlement's parts to their invoices; False once every part is attached, or on
    the learner's balance.

    Stripe applies a payment whole to one invoice only, so the Checkout payment cannot be attached to several:
    each part is reported as a Payment Record of its share (its reference: the PaymentIntent), then that record
    is attached to the part's invoice. Each step is one call to Stripe, then its writes, committed before the
    next (so that what Stripe did is never forgotten here, even past the idempotency keys' 24 hours); each call
    has a key derived from the attempt and the part. The invoices in the order of their ids. A part whose
    invoice no longer owes it (paid otherwise while the Checkout was open) goes on the learner's balance
    (`_after_part_refusal`), and the other parts are credited as asked."""
    session = state.session
    for planned in plan.parts:
        part = session.get(RequestPart, planned.part_id)
        if part is None or part.attached_at is not None or _part_on_balance(session, part.id):
            continue
        key = f"lms-settle-{plan.attempt_id}-{planned.part_id}"
        if part.stripe_payment_record_id is None:
            record = state.gateway.report_payment_record(_record_params(plan, planned), api_key=api_key,
                                                         idempotency_key=f"{key}-record")
            part.stripe_payment_record_id = record["id"]
            return True
        try:
            updated = state.gateway.attach_payment(
                planned.stripe_invoice_id, {"payment_record": part.stripe_payment_record_id, "expand": ["payments"]},
                api_key=api_key, idempotency_key=f"{key}-attach")
        except GatewayError as err:
            if err.retryable:
                raise
            found = _after_part_refusal(state, plan, part, api_key, err)
            if found is None:
                return True  # on the learner's balance: the next step goes on with the other parts
            updated = found
        apply_invoice(state, updated)  # locks the invoice first, as its events' handlers do, then the part
        part.attached_at = utcnow()
        return True
    return False


def _after_part_refusal(state: PluginState, plan: AttachPlan, part: RequestPart, api_key: str | None,
                        err: GatewayError) -> dict | None:
    """Stripe refused to attach a part's Payment Record, as `_after_refusal` reads a request's refusal. Either
    the record is attached already (our record of that was lost): the invoice it is attached to, to apply. Or
    the part's invoice no longer owes it (paid on Stripe's hosted invoice page while the settlement's Checkout
    was open, voided, owing less now): the part's share goes on the learner's balance (`unattachable`), the
    request counts it paid, and None. Any other refusal is raised again, for reconcile to report."""
    attached = invoice_attached_to(
        state, {"type": "payment_record", "payment_record": part.stripe_payment_record_id or ""}, api_key)
    if attached is not None:
        return attached
    stripe_invoice = state.gateway.retrieve_invoice(part.invoice.stripe_invoice_id or "", api_key=api_key,
                                                    expand=["payments"])
    why = unattachable.why_refused(stripe_invoice, part.amount)
    if why is None:
        raise err
    apply_invoice(state, stripe_invoice)  # locks the invoice first, as its events' handlers do
    attempt = state.session.get(PaymentAttempt, plan.attempt_id)
    if unattachable.put_part_on_balance(state, attempt, part, stripe_invoice, why):
        _paid_from_balance(state, part)
    return None


def _paid_from_balance(state: PluginState, part: RequestPart) -> None:
    """A part put on the learner's balance is paid, as far as its request goes: the learner paid all of it, and
    a request paid in full asks nothing more (no reminder, no Pay button). Its invoice, paid otherwise, counts
    its own payments. Once: its caller wrote the part's top-up just now."""
    session = state.session
    session.execute(update(PaymentRequest).where(PaymentRequest.id == part.request_id)
                    .values(amount_paid=PaymentRequest.amount_paid + part.amount)
                    .execution_options(synchronize_session=False))
    request = part.request
    session.refresh(request)
    if request.amount_paid >= request.amount:
        transition(session, request, (PaymentRequestStatus.OPEN,), PaymentRequestStatus.PAID, paid_at=utcnow())


def _part_on_balance(session, part_id: int) -> bool:
    """Whether a settlement's part went on the learner's balance (its invoice no longer owed it)."""
    return session.scalar(select(TopUp.id).where(TopUp.request_part_id == part_id)) is not None


def _all_on_balance(state: PluginState, plan: AttachPlan) -> bool:
    """Every part of a settlement done and none on an invoice: its payment is all on the learner's balance, and
    its Pay click "credited" (once some part is on an invoice, it is "attached", each part on the balance
    saying so by its top-up)."""
    session = state.session
    attempt = session.get(PaymentAttempt, plan.attempt_id)
    if attempt is None or session.scalar(select(RequestPart.id).where(
            RequestPart.request_id == attempt.request_id, RequestPart.attached_at.is_not(None)).limit(1)) is not None:
        return False
    transition(session, attempt, (AttemptStatus.PAID,), AttemptStatus.CREDITED)
    return True


def _record_params(plan: AttachPlan, part: PartPlan) -> PaymentRecordReportPaymentParams:
    """A part's share of the Checkout payment, as a Payment Record: guaranteed when the payment was (Stripe
    took it), of the invoices' customer, its reference the PaymentIntent that carries the money."""
    return {
        "amount_requested": {"currency": plan.currency.lower(), "value": part.amount},
        "initiated_at": plan.paid_at, "outcome": "guaranteed", "guaranteed": {"guaranteed_at": plan.paid_at},
        "customer_details": {"customer": plan.customer}, "customer_presence": "on_session",
        "description": f"Part of the Checkout payment {plan.payment_intent} that settled several invoices",
        "payment_method_details": {"type": "custom", "custom": {"display_name": "Stripe Checkout"}},
        "processor_details": {"type": "custom", "custom": {"payment_reference": plan.payment_intent}},
        "metadata": {"lms_attempt_id": str(plan.attempt_id), "lms_part_id": str(part.part_id),
                     "lms_invoice_id": str(part.invoice_id), "lms_payment_intent": plan.payment_intent},
    }


def apply_invoice(state: PluginState, stripe_invoice: dict) -> Invoice | None:
    """Bring one of our invoices in line with Stripe's (its amounts paid and remaining, its status), and
    its payments when the invoice carries them. The row is locked: the events of one invoice (updated, paid,
    its payments) apply one after another."""
    invoice = _our_invoice(state.session, stripe_invoice)
    if invoice is None:
        return None
    issuing.apply_stripe_invoice(state, invoice, stripe_invoice)
    for payment in ((stripe_invoice.get("payments") or {}).get("data") or []):
        apply_invoice_payment(state, payment, invoice=invoice)
    return invoice


def _our_invoice(session, stripe_invoice: dict) -> Invoice | None:
    """Our invoice for Stripe's: by its id, or by the id in its metadata while ours does not know it yet."""
    found = session.scalar(select(Invoice).where(Invoice.stripe_invoice_id == stripe_invoice.get("id"))
                           .with_for_update())
    if found is not None:
        return found
    invoice_id = parse_row_id((stripe_invoice.get("metadata") or {}).get("lms_invoice_id"))
    found = session.get(Invoice, invoice_id, with_for_update=True) if invoice_id is not None else None
    if found is None or found.stripe_invoice_id not in (None, stripe_invoice.get("id")):
        return None  # another invoice of the same metadata (a copy, another platform): not ours
    if found.stripe_invoice_id is None:
        # Our commit after Stripe's answer was lost: ours by its id from now on, so that its payments (which
        # name it by id) are recorded, and a Pay click has its customer.
        customer = stripe_invoice.get("customer")
        found.stripe_invoice_id = stripe_invoice.get("id")
        found.stripe_customer_id = found.stripe_customer_id or (
            customer.get("id") if isinstance(customer, dict) else customer)
    return found


def apply_invoice_payment(state: PluginState, payment: dict, *, invoice: Invoice | None = None) -> None:
    """Record a payment Stripe credited to one of our invoices; the first time it is paid and known to be a
    Pay click's (a Payment Record's event may come before the record is known here), credit the payment
    request it pays (once: a conditional write of its row). How it was paid, when nothing of ours says it
    (`unexplained_payment_intent`), is read from Stripe after the commit (`record_method_of_payment`)."""
    session = state.session
    if payment.get("is_default") and payment.get("status") != "paid":
        return  # Stripe's own payment of the whole remainder: a payment once paid (on the hosted invoice page)
    invoice = invoice or _invoice_of_payment(session, payment)
    if invoice is None or (payment.get("is_default") and invoice.source in ISSUED_PAID):
        return  # not ours, or the payment of an invoice Checkout issued paid: recorded from its session
    row = _payment_row(session, invoice, payment)
    linked = _link_attempt(session, row, payment)
    if payment.get("status") == "paid" and row.status != "paid":
        row.status, row.paid_at = "paid", _timestamp((payment.get("status_transitions") or {}).get("paid_at"))
        row.amount = int(payment.get("amount_paid") or payment.get("amount_requested") or row.amount)
        session.flush()
        _credit_request(state, row)
    elif row.status == "paid" and linked:
        _credit_request(state, row)
    elif payment.get("status") == "canceled" and row.status == "open":
        row.status = "canceled"
    intent = unexplained_payment_intent(session, payment, invoice, row)
    if intent is not None:
        jobs.defer(session, record_method_of_payment, row.id, intent)


def pay_click_payment(session, payment_intent: str) -> bool:
    """Whether a PaymentIntent is a Pay click's (a request's, a payment link's) or a top-up's, as recorded: never a
    purchase's (one statement)."""
    return bool(session.scalar(select(
        select(PaymentAttempt.id).where(PaymentAttempt.stripe_payment_intent_id == payment_intent).exists()
        | select(TopUp.id).where(TopUp.stripe_payment_intent_id == payment_intent).exists())))


def pay_click_of(session, payment_intent: str | None) -> PaymentAttempt | None:
    """The Pay click (of a payment request or link) whose payment this PaymentIntent is, if it is recorded."""
    if not payment_intent:
        return None
    return session.scalar(select(PaymentAttempt).where(PaymentAttempt.stripe_payment_intent_id == payment_intent)
                          .order_by(PaymentAttempt.id).limit(1))


def invoices_paid_by(attempt: PaymentAttempt) -> list[int]:
    """The invoices a Pay click's payment paid: its request's (one, or a settlement's), or its link's."""
    if attempt.request is not None:
        return [invoice.id for invoice in attempt.request.invoices]
    return [attempt.invoice_id] if attempt.invoice_id is not None else []


def record_method_of_payment(state: PluginState, payment_id: int, payment_intent: str) -> None:
    """Follow-up of a payment of one of our invoices that nothing of ours explains (made on Stripe's hosted
    invoice page, or attached in the Dashboard): how it was paid, from its PaymentIntent's latest charge, read
    from Stripe once; kept unless something said it meanwhile."""
    session = state.session
    api_key = payment_settings.load(session).secret_key
    charge = state.gateway.retrieve_payment_intent(payment_intent, api_key=api_key).get("latest_charge")
    method = payment_method_of(charge) if isinstance(charge, dict) else None
    if method is not None:
        session.execute(update(InvoicePayment).where(InvoicePayment.id == payment_id,
                                                     InvoicePayment.payment_method.is_(None))
                        .values(payment_method=method).execution_options(synchronize_session=False))


#: The invoices Checkout issues paid (``invoice_creation``): their payment is the purchase's or the payment
#: link's, recorded from its Checkout Session, not from the invoice's default payment.
ISSUED_PAID = (InvoiceSource.CHECKOUT, InvoiceSource.LINK)


def unexplained_payment_intent(session, payment: dict, invoice: Invoice, row: InvoicePayment) -> str | None:
    """The PaymentIntent of a paid payment (``row``) of one of our invoices whose charge must be read to know
    how it was paid, or None. Such is a payment made on Stripe's hosted invoice page (the invoice's default
    payment) or attached from the Dashboard: its charge's events name no invoice (the API has no
    ``Charge.invoice``) and carry none of our metadata, and this event names the PaymentIntent but not how it
    was paid. Not read: a Pay click's or a purchase's payment (their charges' events say it, by their
    metadata), a payment whose method is known, and the payment of an invoice Checkout issued paid (a
    purchase's, a payment link's)."""
    made_with = payment.get("payment") or {}
    intent = _id(made_with.get("payment_intent"))
    if (payment.get("status") != "paid" or made_with.get("type") != "payment_intent" or not intent
            or invoice.source in ISSUED_PAID or row.payment_method is not None or row.attempt_id is not None):
        return None
    known = (select(PaymentAttempt.id).where(PaymentAttempt.stripe_payment_intent_id == intent).exists(),
             select(Purchase.id).where(Purchase.stripe_payment_intent_id == intent).exists())
    return None if session.scalar(select(or_(*known))) else intent


def _invoice_of_payment(session, payment: dict) -> Invoice | None:
    """The invoice a payment is of, its row locked; loaded only when there is more to do than to find it is
    not ours, or that Checkout issued it paid (a purchase's payment: its default payment is left alone)."""
    invoice_id = _id(payment.get("invoice"))
    if not invoice_id:
        return None
    found = schools.execute(session, Invoice, _LOCKED_INVOICE, {"stripe_invoice": invoice_id}).first()
    if found is None or (payment.get("is_default") and found.source in ISSUED_PAID):
        return None
    return session.get(Invoice, found.id, populate_existing=True)


_INVOICES = cast(Table, Invoice.__table__)
#: `_invoice_of_payment`'s lock: a Core statement built once, as every invoice payment event runs it.
_LOCKED_INVOICE = select(_INVOICES.c.id, _INVOICES.c.source).where(
    _INVOICES.c.stripe_invoice_id == bindparam("stripe_invoice"), schools.its_own(_INVOICES)).with_for_update()


def _id(value) -> str | None:
    return value.get("id") if isinstance(value, dict) else value


def _attempt_of(session, payment: dict) -> tuple[PaymentAttempt | None, str | None]:
    """The Pay click a payment of an invoice comes from, and its PaymentIntent: the PaymentIntent attached, or
    for a Payment Record, the settlement's part it was reported for and that settlement's paid click."""
    made_with = payment.get("payment") or {}
    if made_with.get("type") == "payment_record":
        record_id = _id(made_with.get("payment_record"))
        part = session.scalar(select(RequestPart).where(RequestPart.stripe_payment_record_id == record_id)) \
            if record_id else None
        if part is None:
            return None, None
        attempt = session.scalar(select(PaymentAttempt).where(
            PaymentAttempt.request_id == part.request_id,
            PaymentAttempt.status.in_((AttemptStatus.PAID, AttemptStatus.ATTACHED)))
            .order_by(PaymentAttempt.id.desc()).limit(1))
        return attempt, attempt.stripe_payment_intent_id if attempt is not None else None
    intent = _id(made_with.get("payment_intent"))
    attempt = session.scalar(select(PaymentAttempt).where(PaymentAttempt.stripe_payment_intent_id == intent)) \
        if intent else None
    return attempt, intent


def _payment_row(session, invoice: Invoice, payment: dict) -> InvoicePayment:
    row = session.scalar(select(InvoicePayment).where(InvoicePayment.stripe_invoice_payment_id == payment["id"])
                         .with_for_update())
    if row is not None:
        return row
    attempt, intent = _attempt_of(session, payment)
    row = InvoicePayment(invoice_id=invoice.id, stripe_invoice_payment_id=payment["id"],
                         stripe_payment_intent_id=intent, attempt_id=attempt.id if attempt else None,
                         amount=int(payment.get("amount_requested") or 0), currency=invoice.currency,
                         status="open")
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # recorded meanwhile by a concurrent event
        return session.scalar(select(InvoicePayment).where(
            InvoicePayment.stripe_invoice_payment_id == payment["id"]).with_for_update())
    return row


def _link_attempt(session, row: InvoicePayment, payment: dict) -> bool:
    """Name the Pay click of a payment recorded before it was known (a Payment Record's event that came before
    the record's id was written here); whether it was named now."""
    if row.attempt_id is not None:
        return False
    attempt, intent = _attempt_of(session, payment)
    if attempt is None:
        return False
    row.attempt_id, row.stripe_payment_intent_id = attempt.id, row.stripe_payment_intent_id or intent
    return True


def _credit_request(state: PluginState, row: InvoicePayment) -> None:
    session = state.session
    attempt = session.get(PaymentAttempt, row.attempt_id) if row.attempt_id else None
    request = attempt.request if attempt is not None else None
    if request is None:
        return  # a payment made otherwise (the hosted invoice page, the dashboard, a link): the invoice counts it
    if attempt is not None and attempt.status == AttemptStatus.CREDITED:
        _attached_after_credit(state, attempt, row)
        return
    session.execute(update(PaymentRequest).where(PaymentRequest.id == request.id)
                    .values(amount_paid=PaymentRequest.amount_paid + row.amount)
                    .execution_options(synchronize_session=False))
    session.refresh(request)
    for part in request.parts:  # a settlement's: this invoice's part is paid (its row is locked: once)
        if part.invoice_id == row.invoice_id and part.paid_at is None:
            part.paid_at = utcnow()
    if request.amount_paid >= request.amount:
        transition(session, request, (PaymentRequestStatus.OPEN,), PaymentRequestStatus.PAID, paid_at=utcnow())
    details: dict[str, Any] = {"settlement": True} if request.parts else {}
    audit.record(session, AuditAction.PAYMENT_RECEIVED, user_id=request.user_id, invoice=row.invoice_id,
                 request=request.id, amount=row.amount, currency=row.currency, **details)


def _attached_after_credit(state: PluginState, attempt: PaymentAttempt, row: InvoicePayment) -> None:
    """A payment put on the learner's balance (its invoice no longer owed it), then attached to an invoice all
    the same, from Stripe's Dashboard: it is not its request's payment, and it pays that invoice now, so it is
    taken off the balance (`balances.attached_elsewhere`). What the learner had spent of it counts twice, on
    what it paid and on that invoice: the audit log says how much, once per invoice payment, for the school to
    refund it on the invoice or ask the learner for it."""
    request = attempt.request
    payment_intent = row.stripe_payment_intent_id or attempt.stripe_payment_intent_id
    moved = balances.attached_elsewhere(state, payment_intent, row.amount,
                                        invoice_payment=row.stripe_invoice_payment_id)
    said: dict[str, Any] = {}
    if moved is not None:
        said = {"taken": moved[0], "spent": moved[1]}
    elif balances.refunded_from_balance(state.session, payment_intent):
        said = {"refunded": True}  # refunded from the balance page, and now paying an invoice: the school checks
    else:
        return  # its top-up attached already
    audit.record(state.session, AuditAction.CREDITED_PAYMENT_ATTACHED, user_id=request.user_id if request else None,
                 invoice=row.invoice_id, request=attempt.request_id, attempt=attempt.id, amount=row.amount,
                 currency=row.currency, invoice_payment=row.stripe_invoice_payment_id, **said)


def _timestamp(value) -> datetime | None:
    return datetime.fromtimestamp(int(value), timezone.utc) if value else utcnow()
