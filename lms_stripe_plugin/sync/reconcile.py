"""Reconciliation with Stripe: what a lost webhook, or a crash between Stripe's answer and our commit,
left behind is found by listing Stripe's objects of a period and comparing them with our tables.

Each finding is repaired by the same idempotent function the webhook uses, so reconciling twice, or while
webhooks arrive, changes nothing the second time. Each repair is a unit of work committed on its own.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from datetime import datetime, timedelta

from sqlalchemy import select

from ..core.state import PluginState
from ..accounts import settings as payment_settings
from ..billing import balances, paying
from ..billing.invoices import purchase_of_invoice, record_invoice
from ..core.enums import AttemptStatus, InvoiceSource, InvoiceStatus, PurchaseStatus, RefundOrigin, RefundStatus
from ..core.models import Dispute, Invoice, PaymentAttempt, PaymentRequest, Purchase, Refund, parse_row_id, utcnow
from ..errors import PaymentsError
from ..refunds import credit_notes
from ..refunds.cancellation import refund_plan, send as send_refund
from ..refunds.disputes import sync_dispute
from ..refunds.lifecycle import of_balance, purchase_for_payment_intent, status_of, sync_refund
from ..shop import deposits, prepaid
from ..shop.fulfilment import fulfil_from_stripe


#: A paid attempt is attached right after its payment; one still unattached after this is repaired.
ATTACH_GRACE = timedelta(minutes=10)


@dataclass
class Finding:
    kind: str  # "checkout_session", "invoice", "refund", "dispute", "attempt", "deposit", "balance_entry", "topup"
    stripe_id: str
    problem: str
    repaired: bool = False
    error: str | None = None


@dataclass
class Report:
    checked: dict[str, int] = field(default_factory=lambda: {"checkout_session": 0, "invoice": 0, "refund": 0,
                                                             "dispute": 0, "attempt": 0})
    findings: list[Finding] = field(default_factory=list)

    def lines(self, dry_run: bool) -> list[str]:
        out = ["checked: " + ", ".join(f"{count} {kind.replace('_', ' ')}s" for kind, count in self.checked.items())]
        for f in self.findings:
            outcome = "would repair" if dry_run else ("repaired" if f.repaired else f"NOT repaired: {f.error}")
            out.append(f"{f.kind} {f.stripe_id}: {f.problem} — {outcome}")
        out.append(f"{len(self.findings)} finding(s)" + (" (dry run: nothing changed)" if dry_run else ""))
        return out


def reconcile(state: PluginState, *, since: datetime, dry_run: bool = False) -> Report:
    """Compare Stripe's objects created since ``since`` with our tables; repair unless ``dry_run``."""
    settings = payment_settings.load(state.session)
    # The four list endpoints take the same filter by creation time and page size.
    created: Any = {"created": {"gte": int(since.timestamp())}, "limit": 100}
    report = Report()
    gateway = state.gateway
    steps = (("checkout_session", gateway.list_checkout_sessions, _session_problem, _repair_session),
             ("invoice", gateway.list_invoices, _invoice_problem, _repair_invoice),
             ("refund", gateway.list_refunds, _refund_problem, _repair_refund),
             ("dispute", gateway.list_disputes, _dispute_problem, _repair_dispute))
    for kind, list_objects, problem_of, repair in steps:
        for obj in list_objects(created, api_key=settings.secret_key):
            report.checked[kind] += 1
            problem = problem_of(state, obj)
            if problem is None:
                continue
            finding = Finding(kind, obj["id"], problem)
            report.findings.append(finding)
            if not dry_run:
                _apply(state, finding, repair, obj)
    _unattached(state, report, dry_run)
    _refunds_unsent(state, report, dry_run)
    _credit_notes_missing(state, report, dry_run)
    _deposits_unfinished(state, report, dry_run)
    _balance_unmirrored(state, report, dry_run)
    _topups_refunding(state, report, dry_run)
    return report


def _apply(state: PluginState, finding: Finding, repair, obj: Any) -> None:
    try:
        repair(state, obj)
        state.session.commit()
        finding.repaired = True
    except PaymentsError as err:
        state.session.rollback()
        finding.error = err.message


# -- checkout sessions --------------------------------------------------------------------------------

def _session_problem(state: PluginState, cs: dict) -> str | None:
    if (cs.get("metadata") or {}).get("lms_attempt_id") is not None:
        return _attempt_session_problem(state, cs)
    purchase_id = parse_row_id((cs.get("metadata") or {}).get("lms_purchase_id"))
    if purchase_id is None:
        return None
    purchase = state.session.get(Purchase, purchase_id)
    if purchase is None:
        return "names a purchase we do not have"
    paid = cs.get("status") == "complete" and cs.get("payment_status") in ("paid", "no_payment_required")
    if paid and purchase.status not in (PurchaseStatus.PAID, PurchaseStatus.CANCELLED):
        return f"paid at Stripe, {purchase.status} here: fulfil"
    if cs.get("status") == "expired" and purchase.status == PurchaseStatus.OPEN:
        return "expired at Stripe, open here"
    if cs.get("status") == "complete" and cs.get("payment_status") == "unpaid" and purchase.status == PurchaseStatus.OPEN:
        return "payment processing at Stripe, open here"
    if purchase.stripe_checkout_session_id is None:
        return "session not recorded on its purchase"
    return None


def _repair_session(state: PluginState, cs: dict) -> None:
    if (cs.get("metadata") or {}).get("lms_attempt_id") is not None:
        paying.sync_session(state, cs)  # a paid one's payment is attached once this commits
        return
    fulfil_from_stripe(state, cs["id"])


def _attempt_session_problem(state: PluginState, cs: dict) -> str | None:
    """A Pay click of a payment request whose outcome at Stripe we missed."""
    attempt = paying.attempt_of_session(state.session, cs)
    if attempt is None:
        return None
    if cs.get("status") == "complete" and cs.get("payment_status") == "paid" and \
            attempt.status not in (AttemptStatus.PAID, AttemptStatus.ATTACHED, AttemptStatus.CREDITED):
        then = ("put it on the learner's balance" if attempt.request is not None and attempt.request.topup
                else "attach the payment to its invoice" if attempt.request_id else "record the payment of the link")
        return f"paid at Stripe, {attempt.status} here: {then}"
    if cs.get("status") == "expired" and attempt.status == AttemptStatus.OPEN:
        return "expired at Stripe, open here"
    return None


def _unattached(state: PluginState, report: Report, dry_run: bool) -> None:
    """Payments of requests that Stripe took but that are not attached to their invoice (the attaching
    failed or was cut short): attached again, with the same idempotency key."""
    stale = utcnow() - ATTACH_GRACE
    attempts = state.session.scalars(select(PaymentAttempt).where(
        PaymentAttempt.status == AttemptStatus.PAID, PaymentAttempt.paid_at < stale,
        PaymentAttempt.request_id.in_(select(PaymentRequest.id).where(PaymentRequest.topup.is_(False))))
        .order_by(PaymentAttempt.id)).all()
    plans = [paying.attach_plan(a, a.request) for a in attempts if a.request is not None]
    state.session.commit()  # no transaction held across the calls to Stripe
    for plan in plans:
        report.checked["attempt"] += 1
        finding = Finding("attempt", plan.payment_intent, f"paid, not attached to invoice {plan.stripe_invoice_id}")
        report.findings.append(finding)
        if not dry_run:
            _apply(state, finding, lambda st, p: paying.attach(st, p), plan)


def _refunds_unsent(state: PluginState, report: Report, dry_run: bool) -> None:
    """The plugin's own refunds (a duplicate payment's) that Stripe never confirmed: the call after the
    payment's event failed (Stripe unreachable) or was cut short, and nobody else asks for it again. Asked
    again, with the key it had. A refund Stripe made meanwhile is matched by Stripe's list above (its metadata
    names our row), and is not asked twice."""
    stale = utcnow() - ATTACH_GRACE
    rows = state.session.execute(select(Refund, Purchase.stripe_payment_intent_id)
                                 .join(Purchase, Purchase.id == Refund.purchase_id)
                                 .where(Refund.origin == RefundOrigin.SYSTEM, Refund.status == RefundStatus.REQUESTED,
                                        Refund.stripe_refund_id.is_(None), Refund.created_at < stale,
                                        Purchase.stripe_payment_intent_id.is_not(None))
                                 .order_by(Refund.id)).all()
    plans = [refund_plan(refund, intent) for refund, intent in rows]
    state.session.commit()  # no transaction held across the calls to Stripe
    for plan in plans:
        report.checked["refund"] += 1
        finding = Finding("refund", f"refund {plan.refund_id}", "a duplicate payment's refund, not made at Stripe")
        report.findings.append(finding)
        if not dry_run:
            _apply(state, finding, send_refund, plan)


def _credit_notes_missing(state: PluginState, report: Report, dry_run: bool) -> None:
    """Refunds made in Stripe's Dashboard on an invoiced payment whose credit note was not issued (the
    follow-up failed, or the invoice was recorded after the refund): issued, with the key the follow-up had;
    one the Dashboard made is found and recorded instead (`credit_notes.issue_for_refund`)."""
    stale = utcnow() - ATTACH_GRACE
    refunds = state.session.scalars(select(Refund).where(
        Refund.origin == RefundOrigin.DASHBOARD, Refund.stripe_refund_id.is_not(None),
        Refund.stripe_credit_note_id.is_(None),
        Refund.status.in_((RefundStatus.REQUESTED, RefundStatus.PENDING, RefundStatus.SUCCEEDED)),
        Refund.created_at < stale).order_by(Refund.id)).all()
    wanted = [found for found in map(credit_notes.wanted_for, refunds) if found is not None]
    state.session.commit()  # no transaction held across the calls to Stripe
    for item in wanted:
        report.checked["refund"] += 1
        finding = Finding("refund", item.stripe_refund_id, "refunded in the Dashboard, no credit note")
        report.findings.append(finding)
        if not dry_run:
            _apply(state, finding, credit_notes.issue_for_refund, item)


def _deposits_unfinished(state: PluginState, report: Report, dry_run: bool) -> None:
    """Paid deposits whose invoice, attachment or balance request was not finished (the follow-up failed or
    was cut short): finished, each Stripe call with the key it had."""
    purchase_ids = deposits.unfinished(state.session)  # `issue` skips what is done: running it twice is safe
    state.session.commit()  # no transaction held across the calls to Stripe
    for purchase_id in purchase_ids:
        report.checked["deposit"] = report.checked.get("deposit", 0) + 1
        finding = Finding("deposit", f"purchase {purchase_id}", "deposit paid, invoice or balance request unfinished")
        report.findings.append(finding)
        if not dry_run:
            _apply(state, finding, deposits.issue, purchase_id)


def _balance_unmirrored(state: PluginState, report: Report, dry_run: bool) -> None:
    """Ledger movements the school or a payment made that are not copied to the Stripe customer's balance yet
    (the follow-up failed or was cut short): copied, with the key derived from the entry (once at Stripe)."""
    entry_ids = balances.unmirrored(state.session)
    state.session.commit()  # no transaction held across the calls to Stripe
    for entry_id in entry_ids:
        report.checked["balance_entry"] = report.checked.get("balance_entry", 0) + 1
        finding = Finding("balance_entry", f"entry {entry_id}", "on the learner's balance here, not at Stripe")
        report.findings.append(finding)
        if not dry_run:
            _apply(state, finding, balances.mirror, entry_id)


def _topups_refunding(state: PluginState, report: Report, dry_run: bool) -> None:
    """Top-ups taken off the balance whose refund was not finished (its mirror at Stripe, or the refund of its
    payment): finished, each call with the key it had."""
    pending = balances.refunding(state.session)
    state.session.commit()
    for topup_id, entry_id in pending:
        report.checked["topup"] = report.checked.get("topup", 0) + 1
        finding = Finding("topup", f"top-up {topup_id}", "taken off the balance, its payment not refunded")
        report.findings.append(finding)
        if not dry_run:
            _apply(state, finding, lambda st, ids: balances.finish_refund(st, *ids), (topup_id, entry_id))


# -- invoices ------------------------------------------------------------------------------------------

def _invoice_problem(state: PluginState, invoice: dict) -> str | None:
    if (invoice.get("metadata") or {}).get("lms_invoice_id") is not None:
        return _billed_invoice_problem(state, invoice)
    if (invoice.get("metadata") or {}).get("lms_link_id") is not None:
        return _link_invoice_problem(state, invoice)
    purchase = purchase_of_invoice(state.session, invoice)
    if purchase is None or purchase.status not in (PurchaseStatus.PAID, PurchaseStatus.CANCELLED) or \
            invoice.get("status") != "paid":
        return None
    exists = state.session.scalar(select(Invoice.id).where(Invoice.stripe_invoice_id == invoice["id"]))
    return None if exists else "paid invoice not recorded"


def _billed_invoice_problem(state: PluginState, invoice: dict) -> str | None:
    """An administrator's invoice whose payments or status at Stripe are not ours."""
    ours = state.session.scalar(select(Invoice).where(Invoice.stripe_invoice_id == invoice["id"],
                                                      Invoice.source.in_((InvoiceSource.ADMIN, InvoiceSource.DEPOSIT,
                                                                          InvoiceSource.BALANCE))))
    if ours is None or ours.status not in (InvoiceStatus.ISSUING, InvoiceStatus.OPEN):
        return None
    status = invoice.get("status")
    if status in ("paid", "void"):
        return f"{status} at Stripe, {ours.status} here"
    if status == "open" and int(invoice.get("amount_paid") or 0) > ours.amount_paid:
        return f"{invoice.get('amount_paid')} paid at Stripe, {ours.amount_paid} here"
    return None


def _link_invoice_problem(state: PluginState, invoice: dict) -> str | None:
    """The invoice Checkout issued for a payment link's payment that we know is paid, not recorded."""
    attempt = paying.link_attempt_of_invoice(state.session, invoice)
    if attempt is None or attempt.status != AttemptStatus.PAID or invoice.get("status") != "paid":
        return None
    exists = state.session.scalar(select(Invoice.id).where(Invoice.stripe_invoice_id == invoice["id"]))
    return None if exists else "paid invoice of a payment link not recorded"


def _repair_invoice(state: PluginState, invoice: dict) -> None:
    if (invoice.get("metadata") or {}).get("lms_invoice_id") is not None:
        ours = paying.apply_invoice(state, invoice)
        deposits.invoice_changed(state, ours)
        prepaid.invoice_changed(state, ours)
        return
    if (invoice.get("metadata") or {}).get("lms_link_id") is not None:
        paying.apply_link_invoice(state, invoice)
        return
    purchase = purchase_of_invoice(state.session, invoice)
    if purchase is not None:
        record_invoice(state, invoice, purchase)


# -- refunds and disputes ---------------------------------------------------------------------------------

def _refund_problem(state: PluginState, stripe_refund: dict) -> str | None:
    if of_balance(state.session, stripe_refund) or \
            purchase_for_payment_intent(state.session, stripe_refund.get("payment_intent")) is None:
        # A top-up's, or no purchase's: one made in the Dashboard is taken off the balance, one that failed given back
        if balances.refund_not_given_back(state.session, stripe_refund):
            return "refund failed, not given back to the balance"
        return "refund not taken off the balance" if balances.refund_not_taken(state.session, stripe_refund) \
            else None
    ours = state.session.scalar(select(Refund).where(Refund.stripe_refund_id == stripe_refund["id"]))
    if ours is None:
        return "refund not recorded"
    expected = status_of(stripe_refund)
    if ours.status != expected and not (ours.status == RefundStatus.REPLACED and expected == RefundStatus.FAILED):
        return f"{expected} at Stripe, {ours.status} here"
    return None


def _repair_refund(state: PluginState, stripe_refund: dict) -> None:
    if balances.refund_not_given_back(state.session, stripe_refund):
        balances.give_back_failed(state, stripe_refund)
        return
    if balances.refund_not_taken(state.session, stripe_refund):
        balances.refunded_outside(state, stripe_refund)
        return
    sync_refund(state, stripe_refund)


def _dispute_problem(state: PluginState, dispute: dict) -> str | None:
    payment_intent = dispute.get("payment_intent")
    if purchase_for_payment_intent(state.session, payment_intent) is None and \
            paying.pay_click_of(state.session, payment_intent) is None and \
            balances.topup_of(state.session, payment_intent) is None:
        return None
    ours = state.session.scalar(select(Dispute).where(Dispute.stripe_dispute_id == dispute["id"]))
    if ours is None:
        return "dispute not recorded"
    return None if ours.status == dispute.get("status") else f"{dispute.get('status')} at Stripe, {ours.status} here"


def _repair_dispute(state: PluginState, dispute: dict) -> None:
    sync_dispute(state, dispute)
