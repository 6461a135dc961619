"""Payment requests: ask a learner to pay all or part of what an invoice owes, by e-mail, SMS or both.

Each message carries a link of its own to our pay page (`RequestLink`: a random token, stored hashed); every
link of a request works while it is open. Messages are written with the request, in the caller's
transaction, and sent once it commits; a message that fails is kept, shown and retried, and never undoes
the request.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from .. import messages
from ..accounts import settings as payment_settings
from ..core import audit
from ..core.enums import AttemptStatus, AuditAction, Channel, InvoiceStatus, MessageStatus, PaymentRequestStatus
from ..core.i18n import current_locale, gettext as _, normalize_locale
from ..core.models import Invoice, Message, PaymentAttempt, PaymentRequest, utcnow
from ..core.state import PluginState
from ..core.txn import transition
from ..core.urls import public_url
from ..errors import PaymentsError, ValidationFailed
from ..money import Money, check_chargeable, minimum_amount
from . import balances, issuing, links, paying

MAX_MESSAGE = 1000


class RequestRefused(PaymentsError):
    status_code = 409


def can_request(invoice: Invoice) -> bool:
    """Whether a payment can be asked for on this invoice: issued, and an amount remains."""
    return issuing.payable(invoice)


@dataclass(frozen=True)
class RequestInput:
    amount: int
    due: date
    message: str | None
    email: bool
    sms: bool
    locale: str


def create(state: PluginState, invoice: Invoice, data: RequestInput, *, actor_id: str | None) -> PaymentRequest:
    """Check and write a request for ``invoice``, and its messages (sent after the commit)."""
    if not can_request(invoice) or invoice.user_id is None:
        raise RequestRefused(_("Nothing remains to be paid on this invoice."))
    user = state.host.get_user(invoice.user_id)
    _check(state, invoice, user, data)
    settings = payment_settings.load(state.session)
    request = PaymentRequest(
        invoice_id=invoice.id, user_id=invoice.user_id, amount=data.amount, currency=invoice.currency,
        due_at=datetime.combine(data.due, time(23, 59, 59), timezone.utc), message=data.message or None,
        locale=normalize_locale(data.locale), send_email=data.email, send_sms=data.sms, created_by=actor_id,
        partial_minimum=settings.partial_minimum or 0 if settings.partial_payments_enabled else None)
    request.invoice = invoice
    state.session.add(request)
    state.session.flush()
    audit.record(state.session, AuditAction.PAYMENT_REQUESTED, actor_id=actor_id, user_id=request.user_id,
                 course_id=invoice.course_id, invoice=invoice.id, request=request.id, amount=data.amount,
                 currency=invoice.currency, channels=[c for c, on in (("email", data.email), ("sms", data.sms)) if on])
    notify(state, request, purpose="sent")
    return request


def create_topup(state: PluginState, user_id: str, data: RequestInput, *, actor_id: str | None) -> PaymentRequest:
    """Check and write a request that the learner top up their prepaid balance by ``data.amount`` (in the
    school's currency, within its top-up limits), and its messages (sent after the commit). It has no invoice:
    a top-up is a payment on account, invoiced with its VAT when the balance pays a course."""
    settings = payment_settings.load(state.session)
    if not settings.active or not settings.prepaid_enabled:
        raise RequestRefused(_("Topping up a balance is not available at the moment."))
    user = state.host.get_user(user_id)
    errors = {}
    amount_error = balances.topup_amount_error(settings, Money(data.amount, settings.default_currency))
    if amount_error:
        errors["amount"] = amount_error
    errors.update(delivery_errors(state, user, data))
    if errors:
        raise ValidationFailed(errors, _("The payment request was not sent."))
    request = PaymentRequest(
        invoice_id=None, topup=True, user_id=user_id, amount=data.amount, currency=settings.default_currency,
        due_at=datetime.combine(data.due, time(23, 59, 59), timezone.utc), message=data.message or None,
        locale=normalize_locale(data.locale), send_email=data.email, send_sms=data.sms, created_by=actor_id,
        partial_minimum=None)
    state.session.add(request)
    state.session.flush()
    audit.record(state.session, AuditAction.PAYMENT_REQUESTED, actor_id=actor_id, user_id=user_id,
                 request=request.id, amount=data.amount, currency=request.currency, topup=True,
                 channels=[c for c, on in (("email", data.email), ("sms", data.sms)) if on])
    notify(state, request, purpose="sent")
    return request


def topups_asked(session, user_id: str) -> list[PaymentRequest]:
    """The learner's top-up requests, newest first (the administrators' balance page)."""
    return list(session.scalars(select(PaymentRequest).where(PaymentRequest.user_id == user_id,
                                                             PaymentRequest.topup.is_(True))
                                .order_by(PaymentRequest.id.desc()).limit(50)))


def for_learner(state: PluginState, invoice: Invoice, *, actor_id: str | None) -> PaymentRequest:
    """The learner's own request to pay what remains of ``invoice``, from "My payments": no message is sent.
    An open request of the invoice that still asks for something is used instead (a second click, or a
    request the school sent), so that one invoice never has two Pay buttons racing for the same amount."""
    state.session.execute(select(Invoice.id).where(Invoice.id == invoice.id).with_for_update())
    state.session.refresh(invoice)
    if not can_request(invoice):
        raise RequestRefused(_("Nothing remains to be paid on this invoice."))
    existing = state.session.scalar(
        select(PaymentRequest).where(PaymentRequest.invoice_id == invoice.id, PaymentRequest.single(),
                                     PaymentRequest.status == PaymentRequestStatus.OPEN,
                                     PaymentRequest.amount_paid < PaymentRequest.amount)
        .order_by(PaymentRequest.id.desc()).limit(1))
    if existing is not None:
        return existing
    settings = payment_settings.load(state.session)
    request = PaymentRequest(
        invoice_id=invoice.id, user_id=invoice.user_id, amount=invoice.amount_remaining, currency=invoice.currency,
        due_at=invoice.due_at or utcnow(), locale=normalize_locale(current_locale()), send_email=False,
        send_sms=False, created_by=actor_id,
        partial_minimum=settings.partial_minimum or 0 if settings.partial_payments_enabled else None)
    request.invoice = invoice
    state.session.add(request)
    state.session.flush()
    audit.record(state.session, AuditAction.PAYMENT_REQUESTED, actor_id=actor_id, user_id=request.user_id,
                 course_id=invoice.course_id, invoice=invoice.id, request=request.id, amount=request.amount,
                 currency=invoice.currency, channels=[], by_learner=True)
    return request


def _check(state: PluginState, invoice: Invoice, user, data: RequestInput) -> None:
    errors = {}
    locale = current_locale()
    if data.amount > invoice.amount_remaining:
        errors["amount"] = _("At most what remains to be paid: %(max)s.",
                             max=Money(invoice.amount_remaining, invoice.currency).format(locale))
    else:
        try:
            check_chargeable(Money(data.amount, invoice.currency))
        except ValueError:
            errors["amount"] = _("Stripe cannot charge this amount in %(currency)s.", currency=invoice.currency)
    errors.update(delivery_errors(state, user, data))
    if errors:
        raise ValidationFailed(errors, _("The payment request was not sent."))


def delivery_errors(state: PluginState, user, data) -> dict[str, str]:
    """What is wrong with how a request is to be sent: ``data``'s due date, message and channels (e-mail, SMS)
    for ``user`` (the host's learner, None when it no longer knows them)."""
    errors = {}
    if data.due < utcnow().date():
        errors["due"] = _("The due date is in the past.")
    if data.message and len(data.message) > MAX_MESSAGE:
        errors["message"] = _("At most %(n)s characters.", n=MAX_MESSAGE)
    if not (data.email or data.sms):
        errors["channels"] = _("Choose how to send the request: e-mail, SMS or both.")
    elif user is None:
        errors["channels"] = _("The LMS no longer knows this learner.")
    elif data.email and not _reachable(Channel.EMAIL, state.host.user_email(user)):
        errors["channels"] = _("This learner has no e-mail address: send the request by SMS.")
    elif data.sms and not _reachable(Channel.SMS, messages.host_phone(state.host, user)):
        errors["channels"] = _("The LMS has no mobile phone number for this learner: send the request by e-mail.")
    return errors


def _reachable(channel: Channel, recipient: str | None) -> bool:
    """Whether a message can be written to ``recipient``: `messages.queue` refuses an address that is not one,
    or a landline, and a refusal after the request was written would leave it half sent."""
    try:
        if channel == Channel.SMS:
            messages.normalize_phone(recipient or "", region=messages.default_region(current_app.config))
        else:
            messages.check_email(recipient or "")
    except messages.InvalidRecipient:
        return False
    return True


def notify(state: PluginState, request: PaymentRequest, *, purpose: str, reminder_id: int | None = None,
           reminder: bool = False, sms: bool = True) -> int:
    """Write the request's messages (one per channel it was sent by, each with a link of its own; no SMS when
    ``sms`` is false), asking what it still asks, sent after the commit; ``purpose`` makes their keys (sent,
    resent-2, reminder+7…). How many were written: none when nothing remains to be paid."""
    host, session = state.host, state.session
    amount = paying.remaining(request)
    user = host.get_user(request.user_id)
    if user is None or amount <= 0:
        return 0
    written = 0
    for channel, wanted, recipient in ((Channel.EMAIL, request.send_email, host.user_email(user)),
                                       (Channel.SMS, request.send_sms and sms, messages.host_phone(host, user))):
        if not (wanted and recipient and _reachable(channel, recipient)):
            continue  # e.g. a number that became a landline since: the other channel, or a reminder, still goes
        link = public_url("lms_stripe.pay", token=links.new(session, request))
        subject, body, html = _compose(state, request, user, channel, link, amount, reminder)
        if messages.queue(session, channel=channel, recipient=recipient, subject=subject, body=body, html=html,
                          idempotency_key=f"request-{request.id}-{purpose}-{channel}", request_id=request.id,
                          reminder_id=reminder_id) is not None:
            written += 1
    return written


def _compose(state: PluginState, request: PaymentRequest, user, channel: Channel, link: str, amount: int,
             reminder: bool) -> tuple[str, str, str | None]:
    values: dict[str, Any] = dict(locale=request.locale, school_name=school_name(state),
                  amount=Money(amount, request.currency),
                  due=request.due_at.date(), link=link, invoice_number=request.invoice_numbers,
                  invoices=len(request.invoices), topup=request.topup,
                  message=request.message, reminder=reminder, overdue=reminder and _aware(request.due_at) < utcnow())
    if channel == Channel.EMAIL:
        return messages.payment_request_email(learner_name=state.host.user_display_name(user), **values)
    return "", messages.payment_request_sms(**values), None


def school_name(state: PluginState) -> str:
    """The school's name in messages: the payment settings', else the app's."""
    settings = payment_settings.load(state.session)
    return settings.school_name or current_app.name


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def resend(state: PluginState, request: PaymentRequest, *, actor_id: str | None) -> int:
    """Send the request again (new messages, new links; the old links keep working), if it still asks for
    something that can be paid now (`resend_refusal`)."""
    refusal = resend_refusal(state.session, request)
    if refusal is not None:
        raise RequestRefused(refusal)
    count = state.session.scalar(select(func.count()).select_from(Message).where(Message.request_id == request.id))
    written = notify(state, request, purpose=f"resent-{count + 1}")
    audit.record(state.session, AuditAction.PAYMENT_REQUEST_RESENT, actor_id=actor_id, user_id=request.user_id,
                 invoice=request.invoice_id, request=request.id)
    return written


def resend_refusal(session, request: PaymentRequest, *, under_way: bool | None = None,
                   around: list[PaymentAttempt] | None = None) -> str | None:
    """Why the request is not sent again now, for the administrator, or None (`cannot_ask_now`; ``under_way``
    and ``around`` when the caller read them already)."""
    found = cannot_ask_now(session, request, under_way=under_way, around=around)
    return found.reason if found is not None else None


@dataclass(frozen=True)
class CannotAsk:
    """Why a request is not asked for now (`cannot_ask_now`): ``reason``, for the administrator; ``waits`` when
    a payment under way stands in the way (the request's own, or another request's of one of its invoices):
    it ends, credited or failed, and the request may be asked for then. Otherwise the request will not be
    payable as asked whatever happens: closed, nothing left, an invoice voided or paid otherwise, what is left
    less than an online payment can take."""

    reason: str
    waits: bool = False


def cannot_ask_now(session, request: PaymentRequest, *, under_way: bool | None = None,
                   around: list[PaymentAttempt] | None = None) -> CannotAsk | None:
    """Why the learner is not asked to pay the request now, or None: a message (sent again by the school, or a
    reminder) sends them to a page that must take their payment. Not when the request is closed; nor when
    nothing remains (its invoice paid otherwise: Stripe's hosted invoice page, another request); nor while the
    learner's payment of it is under way (they have paid unless it fails; ``under_way`` when the caller read it
    already); nor when its page refuses a payment now (a settlement one of whose invoices was paid or voided
    meanwhile, another payment of one of its invoices under way, what is left less than an online payment can
    take). ``around``: the payments under way of requests of its invoices (`paying.under_way` of them, or of more
    invoices), when the caller read them for several requests at once."""
    if request.status != PaymentRequestStatus.OPEN:
        return CannotAsk(_("Only an open payment request is sent again."))
    if paying.remaining(request) <= 0:
        return CannotAsk(_("Nothing remains to be paid: the payment request is not sent again."))
    if paying.payment_under_way(session, request.id) if under_way is None else under_way:
        return CannotAsk(_("The learner's payment of this request is under way: the payment request is not sent "
                           "again."), waits=True)
    found = _unpayable(request)
    if found is not None:
        return CannotAsk(found)
    found = _paid_elsewhere(session, request, around)
    if found is not None:
        return CannotAsk(found, waits=True)
    found = _too_little(request)
    return CannotAsk(found) if found is not None else None


def _unpayable(request: PaymentRequest) -> str | None:
    """Why one of the request's invoices cannot be paid as asked now (`paying.problem`), or None."""
    if request.parts:
        for part in request.parts:
            found = paying.problem(part.invoice, part.amount) if part.paid_at is None else None
            if found is not None:
                return found + " " + _("The invoices cannot be paid together as asked: the payment request is "
                                       "not sent again.")
        return None
    found = paying.problem(request.invoice) if request.invoice is not None else None
    return found + " " + _("The payment request is not sent again.") if found is not None else None


def _paid_elsewhere(session, request: PaymentRequest, around: list[PaymentAttempt] | None = None) -> str | None:
    """Another request's payment of one of its invoices, processing or being credited, for which a click on
    this one is refused until it is credited or fails (`paying._free_invoices`): any, when a settlement is
    concerned (this request or the other); when two requests of one invoice each are (which may be paid at
    once, in parts), those that leave the invoice owing less than this one asks."""
    ids = [invoice.id for invoice in request.invoices]
    if around is None:
        around = paying.under_way(session, ids, besides=request.id) if ids else []
    else:  # read for several requests: this one's own, and those of none of its invoices, left out
        around = [attempt for attempt in around if attempt.request_id != request.id and attempt.request is not None
                  and any(invoice.id in ids for invoice in attempt.request.invoices)]
    busy = [attempt for attempt in around
            if attempt.status != AttemptStatus.OPEN]  # a top-up asks for no invoice; an open Checkout is expired
    for attempt in busy:
        if request.parts or (attempt.request is not None and attempt.request.parts):
            return _another_under_way(attempt, ids)
    taken = sum(attempt.amount for attempt in busy)  # left: other requests' payments of its one invoice alone
    if busy and paying.remaining(request) + taken > request.invoices[0].amount_remaining:
        return _another_under_way(busy[0], ids)
    return None


def _another_under_way(attempt: PaymentAttempt, invoice_ids: list[int]) -> str:
    other = attempt.request
    shared = [invoice for invoice in (other.invoices if other is not None else []) if invoice.id in invoice_ids]
    number = (shared[0].number or str(shared[0].id)) if shared else ""
    return _("Another payment of invoice %(number)s is under way: the payment request is not sent again.",
             number=number)


def _too_little(request: PaymentRequest) -> str | None:
    """What is left is less than Stripe charges in its currency: no payment page can take it."""
    left, floor = paying.remaining(request), minimum_amount(request.currency).amount
    if left >= floor:
        return None
    locale = current_locale()
    return _("What is left to pay, %(left)s, is less than the least an online payment can be (%(min)s): the "
             "payment request is not sent again.", left=Money(left, request.currency).format(locale),
             min=Money(floor, request.currency).format(locale))


def cancel(state: PluginState, request: PaymentRequest, *, actor_id: str | None) -> None:
    """Cancel an open request: its links then say so; a Checkout under way is expired at Stripe. Not while the
    learner's payment of it is under way (a bank debit processing, a payment being credited): that money comes
    to the invoice all the same, and the request would read cancelled though paid."""
    if request.status == PaymentRequestStatus.OPEN and paying.payment_under_way(state.session, request.id):
        raise RequestRefused(_("The learner's payment of this request is under way: it cannot be cancelled now. "
                               "Should that payment fail, you may cancel it then."))
    if not transition(state.session, request, (PaymentRequestStatus.OPEN,), PaymentRequestStatus.CANCELLED,
                      cancelled_at=utcnow()):
        raise RequestRefused(_("Only an open payment request can be cancelled."))
    current = paying.live_attempt(state.session, request.id)
    if current is not None:
        paying.retire(state, current)
    audit.record(state.session, AuditAction.PAYMENT_REQUEST_CANCELLED, actor_id=actor_id, user_id=request.user_id,
                 invoice=request.invoice_id, request=request.id)


def open_of_invoice(session, invoice: Invoice) -> list[PaymentRequest]:
    """The open requests that ask payment of ``invoice``: its own, and the settlements it is part of."""
    return list(session.scalars(select(PaymentRequest).where(PaymentRequest.covering(invoice.id),
                                                             PaymentRequest.status == PaymentRequestStatus.OPEN)
                                .order_by(PaymentRequest.id)))


def delivery_failed(session, request: PaymentRequest) -> bool:
    """Whether the request's last message of each channel failed to go out."""
    return session.scalar(select(Message.id).where(Message.request_id == request.id,
                                                    Message.status == MessageStatus.FAILED).limit(1)) is not None
