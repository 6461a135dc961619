"""Buying a course with the prepaid balance: no Checkout. The course's invoice is issued at Stripe to the
learner's customer; finalizing it applies their credit balance (billing/balances.py), and an invoice the
balance covers is paid at once: the learner is enrolled. One the balance covers in part stays open for the
rest, paid by card from My payments; its payment enrolls the learner the same way (`invoice_changed`).

Three steps, each committed by the view: `reserve` checks and writes the purchase and its invoice; `issue`
creates the invoice at Stripe, then finalizes it (each call with a key derived from our invoice), and gives
the course once the invoice is paid.
"""
from __future__ import annotations

from sqlalchemy import select

from .. import signals
from ..accounts import settings as payment_settings
from ..billing import balances, issuing
from ..core import audit
from ..core.enums import AuditAction, InvoiceSource, InvoiceStatus, PaymentPlan, PurchaseStatus
from ..core.i18n import current_locale, gettext as _, normalize_locale
from ..core.models import Invoice, Purchase, utcnow
from ..core.state import PluginState
from ..core.txn import send_after_commit, transition
from ..errors import NotPurchasable
from ..money import Money
from . import checkout


def usable(state: PluginState, user_id: str, offer) -> Money | None:
    """The learner's balance that can pay this offer (in its currency, above zero), or None: prepaid balances
    off, a course sold with a deposit, or nothing to spend."""
    settings = payment_settings.load(state.session)
    if not settings.prepaid_enabled or offer is None or offer.price is None or offer.payment_plan != PaymentPlan.FULL:
        return None
    have = balances.available(state.session, user_id, offer.currency)
    return have if have.amount > 0 else None


def reserve(state: PluginState, user, course, currency: str | None = None) -> int:
    """Check the learner may buy with their balance, then write the purchase and its invoice (to be issued):
    the purchase's id. A Checkout of the same course left open is retired."""
    session, host = state.session, state.host
    user_id, course_id = host.user_id(user), host.course_id(course)
    settings = payment_settings.load(session)
    offer = checkout.offer_for(state, settings, user, course_id, currency)
    checkout.check_purchasable(state, user, course, settings, offer)
    checkout.check_not_bought(session, user_id, course_id)
    if offer is None or offer.amount is None or offer.currency is None or usable(state, user_id, offer) is None:
        raise NotPurchasable(_("Your balance cannot pay for this course."))
    current = checkout.live_purchase(session, user_id, course_id)
    if current is not None:
        checkout.retire(state, current)
    purchase = Purchase(user_id=user_id, course_id=course_id, status=PurchaseStatus.OPEN, amount=offer.amount,
                        currency=offer.currency, vat_rate=offer.vat_rate, livemode=settings.livemode,
                        locale=current_locale())
    session.add(purchase)
    session.flush()
    line = issuing.LineInput(description=host.course_title(course), gross=offer.amount, vat_rate=offer.vat_rate,
                             course_id=course_id)
    invoice = issuing.draft(state, user=user, currency=offer.currency, due=utcnow().date(), lines=[line],
                            actor_id=None)
    invoice.purchase_id, invoice.source = purchase.id, InvoiceSource.BALANCE
    audit.record(session, AuditAction.CHECKOUT_STARTED, user_id=user_id, course_id=course_id,
                 purchase_id=purchase.id, amount=offer.amount, currency=offer.currency, balance=True)
    return purchase.id


def invoice_of(session, purchase_id: int) -> Invoice | None:
    return session.scalar(select(Invoice).where(Invoice.purchase_id == purchase_id))


def create(state: PluginState, purchase_id: int) -> issuing.StripeDraft | None:
    """The invoice's creation at Stripe, planned (None when it is created already)."""
    purchase = state.session.get(Purchase, purchase_id)
    invoice = invoice_of(state.session, purchase_id)
    if invoice is None or invoice.stripe_invoice_id is not None:
        return None
    return issuing.stripe_draft(state, invoice, locale=normalize_locale(purchase.locale or "en"))


def issue(state: PluginState, purchase_id: int) -> Purchase:
    """Finalize the purchase's invoice at Stripe (its lines added first), which applies the learner's credit,
    then give the course if that paid it."""
    invoice = invoice_of(state.session, purchase_id)
    if invoice is not None and invoice.status == InvoiceStatus.ISSUING:
        invoice = issuing.finalize_at_stripe(state, issuing.stripe_lines(state, invoice))
    invoice_changed(state, invoice)
    return state.session.get(Purchase, purchase_id)


def invoice_changed(state: PluginState, invoice: Invoice | None) -> None:
    """An invoice of a purchase paid from the balance is paid (by the credit alone, or the rest by card): the
    purchase is paid and the learner enrolled, once (a conditional write). One voided before it was paid
    (the credit it used goes back to the balance: `balances.record_unapplied`) closes its purchase, which gave
    no access, so that the learner may buy the course again."""
    if invoice is None or invoice.source != InvoiceSource.BALANCE or invoice.purchase_id is None:
        return
    session = state.session
    if invoice.status == InvoiceStatus.VOID:
        purchase = session.get(Purchase, invoice.purchase_id)
        if purchase is not None and transition(session, purchase, (PurchaseStatus.OPEN,), PurchaseStatus.CANCELLED,
                                               cancelled_at=utcnow()):
            audit.record(session, AuditAction.CHECKOUT_WITHDRAWN, user_id=purchase.user_id,
                         course_id=purchase.course_id, purchase_id=purchase.id, invoice=invoice.id, voided=True)
        return
    if invoice.status != InvoiceStatus.PAID or \
            invoice.amount_paid + balances.paid_from_balance(session, invoice.id) < invoice.gross:
        return  # not paid, or "paid" by a credit note that cancels it (its pre-payment part): nothing to give
    purchase = session.get(Purchase, invoice.purchase_id)
    if purchase is None or not transition(session, purchase, (PurchaseStatus.OPEN,),
                                          PurchaseStatus.PAID, paid_at=utcnow(), amount_paid=invoice.gross,
                                          stripe_customer_id=invoice.stripe_customer_id):
        return
    host = state.host
    user, course = host.get_user(purchase.user_id), host.get_course(purchase.course_id)
    if user is not None and course is not None:
        host.enroll(user, course)
    audit.record(session, AuditAction.PAID, user_id=purchase.user_id, course_id=purchase.course_id,
                 purchase_id=purchase.id, amount=invoice.gross, currency=purchase.currency, invoice=invoice.id,
                 balance=True)
    send_after_commit(session, signals.purchase_completed, purchase=purchase, user_id=purchase.user_id,
                      course_id=purchase.course_id)
