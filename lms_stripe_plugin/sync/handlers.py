"""What each Stripe event does: small handlers in a dispatch table, each safe to run twice.

Handlers read the object again from Stripe rather than trusting the order in which events arrive, then
apply it in the delivery's transaction; they never call Stripe after writing (work that must call Stripe
afterwards is deferred until the delivery commits).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..core.state import PluginState
from ..accounts import settings as payment_settings
from ..billing.invoices import sync_invoice
from ..core.models import Purchase, parse_row_id
from ..refunds.disputes import sync_dispute
from ..refunds.lifecycle import purchase_for_payment_intent, sync_refund
from ..shop.fulfilment import EXPAND_SESSION, fulfil_from_stripe, sync_checkout_session

Handler = Callable[[Any, dict, dict], None]


def refresh_checkout_session(state: PluginState, obj: dict, event: dict) -> None:
    settings = payment_settings.load(state.session)
    cs = state.gateway.retrieve_checkout_session(obj["id"], api_key=settings.secret_key, expand=EXPAND_SESSION)
    if (cs.get("metadata") or {}).get("lms_purchase_id") is None:
        return  # a session another integration created on the same account
    sync_checkout_session(state, cs)


def refresh_invoice(state: PluginState, obj: dict, event: dict) -> None:
    if (obj.get("metadata") or {}).get("lms_purchase_id") is None:
        return
    settings = payment_settings.load(state.session)
    sync_invoice(state, state.gateway.retrieve_invoice(obj["id"], api_key=settings.secret_key))


def refresh_refund(state: PluginState, obj: dict, event: dict) -> None:
    settings = payment_settings.load(state.session)
    stripe_refund = state.gateway.retrieve_refund(obj["id"], api_key=settings.secret_key)
    sync_refund(state, stripe_refund, purchase=purchase_paid_by(state, stripe_refund.get("payment_intent")))


def refresh_charge_refunds(state: PluginState, obj: dict, event: dict) -> None:
    payer = find_payer(state, obj.get("payment_intent"))
    if payer is None:
        return  # not a payment of ours
    settings = payment_settings.load(state.session)
    stripe_refunds = list(state.gateway.list_refunds({"charge": obj["id"], "limit": 100}, api_key=settings.secret_key))
    purchase = payer.purchase(state)
    for stripe_refund in stripe_refunds:
        sync_refund(state, stripe_refund, purchase=purchase)


def refresh_dispute(state: PluginState, obj: dict, event: dict) -> None:
    settings = payment_settings.load(state.session)
    dispute = state.gateway.retrieve_dispute(obj["id"], api_key=settings.secret_key)
    purchase = purchase_paid_by(state, dispute.get("payment_intent"))
    if purchase is not None:
        sync_dispute(state, dispute, purchase=purchase)


@dataclass(frozen=True)
class Payer:
    """Who paid a PaymentIntent: a purchase already recorded as paid by it, or the Checkout Session of
    one whose payment is not recorded yet (its refund or dispute came first: events come in any order)."""

    payment_intent: str
    recorded: Purchase | None = None
    session_to_fulfil: str | None = None

    def purchase(self, state) -> Purchase | None:
        """The purchase, its payment recorded first if need be (reads the session from Stripe, then writes)."""
        if self.recorded is not None or self.session_to_fulfil is None:
            return self.recorded
        fulfil_from_stripe(state, self.session_to_fulfil)
        return purchase_for_payment_intent(state.session, self.payment_intent)


def find_payer(state: PluginState, payment_intent: str | None) -> Payer | None:
    """The `Payer` of a PaymentIntent, reading it from Stripe only if we have not recorded its payment;
    None if the payment is not ours. Writes nothing."""
    if not payment_intent:
        return None
    recorded = purchase_for_payment_intent(state.session, payment_intent)
    if recorded is not None:
        return Payer(payment_intent, recorded=recorded)
    settings = payment_settings.load(state.session)
    intent = state.gateway.retrieve_payment_intent(payment_intent, api_key=settings.secret_key)
    purchase_id = parse_row_id((intent.get("metadata") or {}).get("lms_purchase_id"))
    purchase = state.session.get(Purchase, purchase_id) if purchase_id is not None else None
    if purchase is None or not purchase.stripe_checkout_session_id:
        return None
    return Payer(payment_intent, session_to_fulfil=purchase.stripe_checkout_session_id)


def purchase_paid_by(state: PluginState, payment_intent: str | None) -> Purchase | None:
    """Our purchase paid by this PaymentIntent (fulfilled first if need be); None if the payment is not ours."""
    payer = find_payer(state, payment_intent)
    return payer.purchase(state) if payer is not None else None


#: Event type → handler. Types not listed are acknowledged and ignored.
HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": refresh_checkout_session,
    "checkout.session.async_payment_succeeded": refresh_checkout_session,
    "checkout.session.async_payment_failed": refresh_checkout_session,
    "checkout.session.expired": refresh_checkout_session,
    "invoice.finalized": refresh_invoice,
    "invoice.paid": refresh_invoice,
    "refund.created": refresh_refund,
    "refund.updated": refresh_refund,
    "refund.failed": refresh_refund,
    "charge.refund.updated": refresh_refund,
    "charge.refunded": refresh_charge_refunds,
    "charge.dispute.created": refresh_dispute,
    "charge.dispute.updated": refresh_dispute,
    "charge.dispute.closed": refresh_dispute,
}
