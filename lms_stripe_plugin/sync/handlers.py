"""What each Stripe event does: small handlers in a dispatch table, each safe to run twice.

A handler applies the object the verified event carries (``data.object``, the object as it was when the
event was created), in the delivery's transaction; `sync.versions` skips a snapshot older than one already
applied. It reads from Stripe only what the event lacks, and says so in `HANDLERS` (``reads``): that read
(``read``) runs before the delivery's transaction and writes nothing, so no transaction is held across a
call to Stripe, and work that must call Stripe after writing is deferred until the delivery commits.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, cast

from sqlalchemy import Table, bindparam, select

from ..accounts import connect, settings as payment_settings
from ..billing import balances, paying
from ..billing.invoices import record_link_invoice, sync_invoice
from ..core import audit, schools
from ..core.enums import AttemptStatus, PurchaseStatus
from ..core.models import Invoice, PaymentAttempt, Purchase, parse_row_id
from ..core.state import PluginState
from ..refunds import credit_notes
from ..refunds.disputes import sync_dispute
from ..refunds.lifecycle import note_pay_click_refund, of_topup, purchase_for_payment_intent, sync_refund
from ..shop import deposits, prepaid
from ..shop.fulfilment import EXPAND_SESSION, record_payment_method, sync_checkout_session
from . import versions


@dataclass(frozen=True)
class Handling:
    """How one type of event is handled.

    ``apply(state, obj, event, extra)`` writes, in the delivery's transaction; ``read(state, obj)``, when
    set, first returns ``extra``: what the event lacks, read from Stripe only when needed (it writes
    nothing, and ends any transaction before it calls Stripe); ``reads`` says what, and when, to readers.
    ``kind`` is the ``object`` of ``data.object``, whose fields are checked first (`shapes.SHAPES`).
    """

    kind: str
    apply: Callable[[PluginState, dict, dict, Any], None]
    read: Callable[[PluginState, dict], Any] | None = None
    reads: str = "nothing"

    def __post_init__(self) -> None:
        object.__setattr__(self, "apply", _as_stripe(self.apply))


def _as_stripe(apply: Callable[[PluginState, dict, dict, Any], None]) -> Callable[[PluginState, dict, dict, Any], None]:
    """What a handler records without an actor, Stripe did (the audit log says so)."""
    @functools.wraps(apply)
    def applied(state: PluginState, obj: dict, event: dict, extra: Any) -> None:
        with audit.acting(audit.VIA_STRIPE):
            apply(state, obj, event, extra)
    return applied


def _ours(obj: dict) -> int | None:
    """Our purchase id in an object's metadata (None: an object of another integration on the account)."""
    return parse_row_id((obj.get("metadata") or {}).get("lms_purchase_id"))


def _no_transaction(state: PluginState) -> None:
    """End the read-only transaction of a delivery before it calls Stripe (the delivery is the edge)."""
    state.session.commit()


# -- Checkout Sessions ------------------------------------------------------------------------------------

def apply_checkout_session(state: PluginState, cs: dict, event: dict, fresh: dict | None) -> None:
    if (cs.get("metadata") or {}).get("lms_topup_id") is not None:  # a learner topping up their balance
        balances.sync_topup_session(state, cs)
        return
    if (cs.get("metadata") or {}).get("lms_attempt_id") is not None:  # a Pay click of a request or a link
        attempt = paying.sync_session(state, cs, failed=event.get("type") == "checkout.session.async_payment_failed")
        if attempt is not None and attempt.link_id is not None:
            _record_link_invoice(state, attempt, cs.get("invoice"))
        return
    if (cs.get("metadata") or {}).get("lms_purchase_id") is None:
        return  # a session another integration created on the same account (one naming a purchase badly
        # is ours, and is refused by `sync_checkout_session`)
    purchase = sync_checkout_session(state, fresh or cs)
    _record_named_invoice(state, purchase, cs.get("invoice"))


def _record_named_invoice(state: PluginState, purchase: Purchase, invoice: Any) -> None:
    """The event's session names its invoice by id (Stripe does not expand it in events). The invoice is
    recorded from its own events (``invoice.finalized``, ``invoice.paid``), which carry it whole; one that
    was handled before the payment was recorded is recorded now, from the snapshot that event carried."""
    if not isinstance(invoice, str) or purchase.status not in (PurchaseStatus.PAID, PurchaseStatus.CANCELLED):
        return
    session = state.session
    if session.scalar(select(Invoice.id).where(Invoice.purchase_id == purchase.id)) is not None:
        return
    snapshot = versions.latest_snapshot(session, invoice)
    if snapshot is not None:
        sync_invoice(state, snapshot)


def _record_link_invoice(state: PluginState, attempt: PaymentAttempt, invoice: Any) -> None:
    """A payment link's session names the invoice Checkout issued by id: it is recorded from the invoice's own
    events, or now from the snapshot the first of them carried, if it was handled before the payment."""
    if not isinstance(invoice, str) or attempt.status != AttemptStatus.PAID or attempt.invoice_id is not None:
        return
    snapshot = versions.latest_snapshot(state.session, invoice)
    if snapshot is not None:
        record_link_invoice(state, snapshot, attempt)


def read_failed_session(state: PluginState, cs: dict) -> dict | None:
    """The session with its PaymentIntent, whose last error is the reason the learner is shown; read only
    while the purchase still waits for that payment."""
    purchase_id = _ours(cs)
    purchase = state.session.get(Purchase, purchase_id) if purchase_id is not None else None
    if purchase is None or purchase.status not in (PurchaseStatus.OPEN, PurchaseStatus.PROCESSING):
        return None
    api_key = payment_settings.load(state.session).secret_key
    _no_transaction(state)
    return state.gateway.retrieve_checkout_session(cs["id"], api_key=api_key, expand=EXPAND_SESSION)


# -- charges ---------------------------------------------------------------------------------------------

def apply_charge(state: PluginState, charge: dict, event: dict, extra: None) -> None:
    """A charge of one of our payments, succeeded or pending (a bank debit): how it was paid, recorded on the
    purchase or the Pay click its metadata names (Stripe copies the PaymentIntent's metadata to its charge)."""
    metadata = charge.get("metadata") or {}
    if metadata.get("lms_attempt_id") is not None:
        paying.record_payment_method(state, charge)
    elif metadata.get("lms_purchase_id") is not None:
        record_payment_method(state, charge)


# -- invoices -------------------------------------------------------------------------------------------

def apply_invoice(state: PluginState, invoice: dict, event: dict, extra: None) -> None:
    if (invoice.get("metadata") or {}).get("lms_link_id") is not None:  # issued for a payment link's payment
        paying.apply_link_invoice(state, invoice)
        return
    purchase_id = _ours(invoice)
    if purchase_id is None:
        # An administrator's invoice, a deposit's or one paid from the balance (or none of ours: nothing).
        _invoice_changed(state, paying.apply_invoice(state, invoice))
        return
    # Locked, so that the payment's recording, if it runs now, either sees this invoice's version or has
    # committed the payment before this reads it (see `_record_named_invoice`). Its status alone is read
    # first: an invoice whose purchase is not paid yet is recorded with the payment.
    session = state.session
    status = schools.execute(session, Purchase, _LOCKED_STATUS, {"purchase": purchase_id}).scalar()
    if status in (PurchaseStatus.PAID, PurchaseStatus.CANCELLED):
        sync_invoice(state, invoice, session.get(Purchase, purchase_id, populate_existing=True))


_PURCHASES = cast(Table, Purchase.__table__)
#: A purchase's status, its row locked: a Core statement built once, as every invoice event of a purchase runs it.
_LOCKED_STATUS = select(_PURCHASES.c.status).where(
    _PURCHASES.c.id == bindparam("purchase"), schools.its_own(_PURCHASES)).with_for_update()


def apply_billed_invoice(state: PluginState, invoice: dict, event: dict, extra: None) -> None:
    """An invoice changed (paid in part, void, overdue): an administrator's is brought in line. A purchase's
    or a payment link's, which Checkout issues paid, is recorded from this snapshot as from the events above
    if it is not yet: this event takes the invoice's version, so an older ``invoice.paid`` delivered after
    it is skipped, and would otherwise leave the paid purchase without its invoice."""
    if _ours(invoice) is not None:
        apply_invoice(state, invoice, event, extra)
        return
    if (invoice.get("metadata") or {}).get("lms_link_id") is not None:
        paying.apply_link_invoice(state, invoice)
    _invoice_changed(state, paying.apply_invoice(state, invoice))


def _invoice_changed(state: PluginState, invoice: Invoice | None) -> None:
    """What follows an invoice of a purchase paid in several parts: the deposit's, or the balance's."""
    deposits.invoice_changed(state, invoice)
    prepaid.invoice_changed(state, invoice)


def apply_invoice_payment(state: PluginState, payment: dict, event: dict, extra: None) -> None:
    """A payment Stripe credited to one of our invoices: recorded, and the request it pays credited once."""
    paying.apply_invoice_payment(state, payment)


# -- refunds and disputes -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Payer:
    """Who paid a PaymentIntent: a purchase whose payment is recorded (read in the delivery's transaction,
    as no call to Stripe ended it), or else the Checkout Session, read from Stripe, of one of ours whose
    payment is not recorded yet (its refund or dispute came first)."""

    payment_intent: str
    checkout_session: dict | None = None
    purchase: Purchase | None = None


def read_payer(state: PluginState, obj: dict) -> Payer | None:
    """Nothing is read when the payment is recorded: a purchase's, or a Pay click's or top-up's (None: no
    purchase's). Otherwise the PaymentIntent (its metadata names our purchase), then that purchase's Checkout
    Session, to record the payment first; None: not ours."""
    payment_intent = obj.get("payment_intent")
    if not payment_intent:
        return None
    session = state.session
    recorded = purchase_for_payment_intent(session, payment_intent)
    if recorded is not None:
        return Payer(payment_intent, purchase=recorded)
    if paying.pay_click_payment(session, payment_intent):
        return None  # known, and no purchase's: nothing to read
    api_key = payment_settings.load(session).secret_key
    _no_transaction(state)
    intent = state.gateway.retrieve_payment_intent(payment_intent, api_key=api_key)
    purchase_id = _ours(intent)
    purchase = session.get(Purchase, purchase_id) if purchase_id is not None else None
    if purchase is None or not purchase.stripe_checkout_session_id:
        return None
    session_id = purchase.stripe_checkout_session_id
    _no_transaction(state)
    return Payer(payment_intent, state.gateway.retrieve_checkout_session(session_id, api_key=api_key,
                                                                         expand=EXPAND_SESSION))


def _purchase_of(state: PluginState, payer: Payer | None) -> Purchase | None:
    """The purchase ``payer`` paid, its payment recorded first if need be."""
    if payer is None:
        return None
    if payer.purchase is not None:
        return payer.purchase
    if payer.checkout_session is not None:
        sync_checkout_session(state, payer.checkout_session)
    return purchase_for_payment_intent(state.session, payer.payment_intent)


def apply_refund(state: PluginState, stripe_refund: dict, event: dict, payer: Payer | None) -> None:
    """A refund of a purchase's payment; of a top-up's (a deposit put on the balance is one) or a Pay click's, one
    made outside the plugin is taken off the learner's balance (a top-up's) or noted in its invoices' history.
    A top-up's that failed, the plugin's or not, gives back to the balance what it took."""
    purchase = _purchase_of(state, payer)
    if purchase is not None and not balances.deposit_on_balance(state.session, purchase.id):
        sync_refund(state, stripe_refund, purchase=purchase)
    elif of_topup(stripe_refund):
        balances.refund_failed(state, stripe_refund)
    elif not balances.refunded_outside(state, stripe_refund):
        note_pay_click_refund(state, stripe_refund)


def apply_credit_note(state: PluginState, credit_note: dict, event: dict, extra: None) -> None:
    """A credit note of one of our invoices: recorded (its number and PDF), or marked void."""
    credit_notes.record(state, credit_note)


def apply_dispute(state: PluginState, dispute: dict, event: dict, payer: Payer | None) -> None:
    """A dispute of a purchase's payment, or of a Pay click's (``payer`` None: `sync_dispute` finds it)."""
    sync_dispute(state, dispute, purchase=_purchase_of(state, payer))


_SESSION = Handling("checkout.session", apply_checkout_session,
                    reads="nothing: the session is applied as the event carries it; its invoice, named by id, is "
                          "recorded from the invoice's own events")
_FAILED_SESSION = Handling("checkout.session", apply_checkout_session, read_failed_session,
                           reads="the session with its PaymentIntent (the reason the payment failed), while the "
                                 "purchase still waits for it")
_CHARGE = Handling("charge", apply_charge,
                   reads="nothing: the event carries how the charge was paid (payment_method_details) and, in its "
                         "metadata, our purchase or Pay click")
_INVOICE = Handling("invoice", apply_invoice, reads="nothing: the event carries the whole invoice and its metadata")
_BILLED_INVOICE = Handling("invoice", apply_billed_invoice,
                           reads="nothing: the event carries the invoice's amounts paid and remaining, and status")
_INVOICE_PAYMENT = Handling("invoice_payment", apply_invoice_payment,
                            reads="nothing: the event carries the payment, its amount and its PaymentIntent's id (a "
                                  "Pay click's or a purchase's charge events say how it was paid); for another paid "
                                  "payment of one of our invoices (on Stripe's hosted invoice page), its "
                                  "PaymentIntent with its latest charge is read once, after the commit, as "
                                  "follow-up work: how it was paid")
_PAYER_READS = ("nothing once the payment is recorded (a purchase's, a Pay click's, a top-up's); before that (events "
                "come in any order), the PaymentIntent, whose metadata names our purchase, and its Checkout Session, "
                "to record the payment first")
_REFUND = Handling("refund", apply_refund, read_payer, reads=_PAYER_READS)
_DISPUTE = Handling("dispute", apply_dispute, read_payer, reads=_PAYER_READS)
def apply_account(state: PluginState, account: dict, event: dict, extra: None) -> None:
    """The school's connected account changed (platform mode): what Stripe says of it is recorded, unless an
    event newer than this one said it already."""
    connect.apply_account(state.session, account, seen_at=int(event.get("created") or 0))


_ACCOUNT = Handling("account", apply_account, reads="nothing: the event carries the whole account")
_CREDIT_NOTE = Handling("credit_note", apply_credit_note,
                        reads="nothing: the event carries the credit note, its invoice's id, number, PDF and refunds")

#: Event type → handling. Types not listed are acknowledged and ignored; among them ``charge.refunded``,
#: whose charge no longer carries its refunds (API 2022-11-15): each refund comes in its own ``refund.*``
#: events, which are handled.
HANDLERS: dict[str, Handling] = {
    "account.updated": _ACCOUNT,
    "checkout.session.completed": _SESSION,
    "checkout.session.async_payment_succeeded": _SESSION,
    "checkout.session.async_payment_failed": _FAILED_SESSION,
    "checkout.session.expired": _SESSION,
    "charge.succeeded": _CHARGE,
    "charge.pending": _CHARGE,
    "invoice.finalized": _INVOICE,
    "invoice.paid": _INVOICE,
    "invoice.updated": _BILLED_INVOICE,
    "invoice.voided": _BILLED_INVOICE,
    "invoice.overdue": _BILLED_INVOICE,
    "invoice.marked_uncollectible": _BILLED_INVOICE,
    "invoice_payment.paid": _INVOICE_PAYMENT,
    "refund.created": _REFUND,
    "refund.updated": _REFUND,
    "refund.failed": _REFUND,
    "charge.refund.updated": _REFUND,
    "credit_note.created": _CREDIT_NOTE,
    "credit_note.updated": _CREDIT_NOTE,
    "credit_note.voided": _CREDIT_NOTE,
    "charge.dispute.created": _DISPUTE,
    "charge.dispute.updated": _DISPUTE,
    "charge.dispute.closed": _DISPUTE,
}
