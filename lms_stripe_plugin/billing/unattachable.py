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
"""
from __future__ import annotations

from .. import messages
from ..accounts import settings as payment_settings
from ..core.enums import AttemptStatus, Channel
from ..core.i18n import in_locale
from ..core.logs import get_logger
from ..core.models import PaymentAttempt, PaymentRequest
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
    reason = in_locale(request.locale).gettext("Paid for invoice %(number)s, which no longer owed it.", number=number)
    balances.credit_attempt(state, attempt, user_id=request.user_id,
                            checkout_session=attempt.stripe_checkout_session_id or "", reason=reason,
                            request=request.id, number=number, refused=why)
    _tell_learner(state, attempt, request, number, why, int(stripe_invoice.get("amount_remaining") or 0))
    return True


def _tell_learner(state: PluginState, attempt: PaymentAttempt, request: PaymentRequest, number: str, why: str,
                  remaining: int) -> None:
    """The learner's e-mail saying where their payment went, in their language, sent after the commit."""
    host = state.host
    user = host.get_user(request.user_id)
    email = host.user_email(user) if user is not None else None
    if not email:
        return
    try:
        subject, body = messages.payment_on_balance_email(
            locale=request.locale, school_name=payment_settings.school_name(state.session),
            learner_name=host.user_display_name(user), amount=Money(attempt.amount, attempt.currency),
            invoice_number=number, why=why, remaining=Money(remaining, attempt.currency))
        messages.queue(state.session, channel=Channel.EMAIL, recipient=email, subject=subject, body=body,
                       idempotency_key=f"attempt-{attempt.id}-on-balance", request_id=request.id)
    except messages.MessageError as err:  # the credit stands; the balance page and the audit log still say it
        log.warning("The e-mail about attempt %s's payment put on the balance was not written: %s", attempt.id, err)
