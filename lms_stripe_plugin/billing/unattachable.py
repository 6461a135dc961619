"""A payment request's payment that Stripe took but will not attach to its invoice, because the invoice no
longer owes it: paid in the meantime another way (on Stripe's hosted invoice page, say), voided, or owing less
than the payment now.

Stripe applies a payment whole, to one invoice ("you can only apply an entire payment towards an invoice",
docs.stripe.com/invoicing/payment-application), and only up to what it still owes ("any amount up to the amount
remaining on the invoice", docs.stripe.com/invoicing/partial-payments). So that money is the learner's, on no
invoice. It goes on the learner's prepaid balance, as Stripe itself does with what a payment pays beyond an
invoice's total (its ``invoice_overpaid`` credit): a top-up of the Pay click (`balances.credit_attempt`),
mirrored to the Stripe customer's credit balance, which applies to the learner's next invoice, and which the
school can refund from the learner's balance page while it is unspent. The learner is told by e-mail.

A settlement's part is credited to its invoice by a Payment Record of its share, which Stripe attaches on the same
terms: a part whose invoice no longer owes it goes on the balance the same way (`put_part_on_balance`), as a
top-up of its own of that share (refunded, it refunds that share only), while the other parts are credited to
their invoices as asked.

A deposit is attached to the invoice of its course's full price once the deposit is paid (`shop.deposits`). If
that invoice was paid otherwise or voided before the deposit could be attached, the deposit goes on the balance
the same way (`put_deposit_on_balance`), as a top-up of its own.
"""
from __future__ import annotations

from sqlalchemy import select

from .. import messages
from ..accounts import settings as payment_settings
from ..core.enums import AttemptStatus, Channel
from ..core.i18n import in_locale
from ..core.logs import get_logger
from ..core.models import Invoice, InvoicePayment, PaymentAttempt, PaymentRequest, Purchase, RequestPart
from ..core.state import PluginState
from ..core.txn import transition
from ..money import Money
from . import balances

log = get_logger(__name__)

#: Why an invoice no longer takes a payment: paid, closed (void), or owing less than the payment.
PAID, CLOSED, LESS = "paid", "closed", "less"


def why_refused(stripe_invoice: dict, amount: int) -> str | None:
    """Why Stripe's invoice, as it is now, cannot take a payment of ``amount`` (`PAID`, `CLOSED` or `LESS`); None
    when it can, and the refusal had another cause. Stripe attaches payments to open or uncollectible invoices."""
    status = stripe_invoice.get("status")
    if status == "paid":
        return PAID
    if status not in ("open", "uncollectible"):
        return CLOSED
    remaining = stripe_invoice.get("amount_remaining")
    return LESS if isinstance(remaining, int) and remaining < amount else None


def put_on_balance(state: PluginState, attempt: PaymentAttempt, stripe_invoice: dict, why: str) -> bool:
    """Put the attempt's payment on the learner's balance (once: a conditional write of the attempt) and tell
    the learner; False when it was done already, or the attempt is no longer a payment waiting to be attached."""
    request = attempt.request
    if request is None or request.topup or not transition(state.session, attempt, (AttemptStatus.PAID,),
                                                          AttemptStatus.CREDITED):
        return False
    number = (request.invoice.number if request.invoice else None) or stripe_invoice.get("number") or ""
    balances.credit_attempt(state, attempt, user_id=request.user_id,
                            checkout_session=attempt.stripe_checkout_session_id or "",
                            reason=_reason(request.locale, number), request=request.id, number=number, refused=why)
    _tell_learner(state, request.user_id, request.locale, Money(attempt.amount, attempt.currency), number, why,
                  int(stripe_invoice.get("amount_remaining") or 0), key=f"attempt-{attempt.id}-on-balance",
                  request_id=request.id)
    return True


def put_part_on_balance(state: PluginState, attempt: PaymentAttempt, part: RequestPart, stripe_invoice: dict,
                        why: str) -> bool:
    """Put a settlement's part, whose invoice no longer owes it, on the learner's balance (once per part: its
    top-up's unique column) and tell the learner, an e-mail per part; False when it was done already."""
    request = part.request
    number = part.invoice.number or stripe_invoice.get("number") or ""
    topup = balances.credit_part(state, part, attempt, user_id=request.user_id, reason=_reason(request.locale, number),
                                 request=request.id, invoice=part.invoice_id, number=number, refused=why,
                                 settlement=True)
    if topup is None:
        return False
    _tell_learner(state, request.user_id, request.locale, Money(part.amount, request.currency), number, why,
                  int(stripe_invoice.get("amount_remaining") or 0), key=f"request-part-{part.id}-on-balance",
                  request_id=request.id)
    return True


def put_deposit_on_balance(state: PluginState, purchase: Purchase, invoice: Invoice, stripe_invoice: dict,
                           why: str) -> bool:
    """Put a purchase's deposit, whose invoice no longer owes it, on the learner's balance (once per purchase: its
    top-up's unique column) and tell the learner; False when it was done already."""
    number = invoice.number or stripe_invoice.get("number") or ""
    locale = purchase.locale or "en"
    topup = balances.credit_deposit(state, purchase, reason=_reason(locale, number), course_id=purchase.course_id,
                                    purchase_id=purchase.id, invoice=invoice.id, number=number, refused=why,
                                    deposit=True)
    if topup is None:
        return False
    _tell_learner(state, purchase.user_id, locale, topup.money, number, why,
                  int(stripe_invoice.get("amount_remaining") or 0), key=f"purchase-{purchase.id}-deposit-on-balance")
    return True


def deposit_settled(session, purchase: Purchase) -> bool:
    """Whether a purchase's deposit is attached to an invoice (its own, or one it was attached to in the Dashboard)
    or went on the learner's balance, its invoice no longer owing it."""
    return session.scalar(select(InvoicePayment.id).where(
        InvoicePayment.stripe_payment_intent_id == purchase.stripe_payment_intent_id).limit(1)) is not None \
        or balances.deposit_on_balance(session, purchase.id)


def _reason(locale: str, number: str) -> str:
    """The ledger line's reason, in the learner's language (the request's, the purchase's)."""
    return in_locale(locale).gettext("Paid for invoice %(number)s, which no longer owed it.", number=number)


def _tell_learner(state: PluginState, user_id: str, locale: str, amount: Money, number: str, why: str,
                  remaining: int, *, key: str, request_id: int | None = None) -> None:
    """The learner's e-mail saying where their payment of ``amount`` went, in their language, sent after the
    commit (once: ``key``)."""
    host = state.host
    user = host.get_user(user_id)
    email = host.user_email(user) if user is not None else None
    if not email:
        return
    try:
        subject, body = messages.payment_on_balance_email(
            locale=locale, school_name=payment_settings.school_name(state.session),
            learner_name=host.user_display_name(user), amount=amount, invoice_number=number, why=why,
            remaining=Money(remaining, amount.currency))
        messages.queue(state.session, channel=Channel.EMAIL, recipient=email, subject=subject, body=body,
                       idempotency_key=key, request_id=request_id)
    except messages.MessageError as err:  # the credit stands; the balance page and the audit log still say it
        log.warning("The e-mail %s about a payment put on the balance was not written: %s", key, err)
