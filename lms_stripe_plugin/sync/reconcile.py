"""Reconciliation with Stripe: what a lost webhook, or a crash between Stripe's answer and our commit,
left behind is found by listing Stripe's objects of a period and comparing them with our tables.

Each finding is repaired by the same idempotent function the webhook uses, so reconciling twice, or while
webhooks arrive, changes nothing the second time. Each repair is a unit of work committed on its own.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from datetime import datetime

from sqlalchemy import select

from ..core.state import PluginState
from ..accounts import settings as payment_settings
from ..billing.invoices import purchase_of_invoice, record_invoice
from ..core.enums import PurchaseStatus, RefundStatus
from ..core.models import Dispute, Invoice, Purchase, Refund, parse_row_id
from ..errors import PaymentsError
from ..refunds.disputes import sync_dispute
from ..refunds.lifecycle import purchase_for_payment_intent, status_of, sync_refund
from ..shop.fulfilment import fulfil_from_stripe


@dataclass
class Finding:
    kind: str  # "checkout_session", "invoice", "refund", "dispute"
    stripe_id: str
    problem: str
    repaired: bool = False
    error: str | None = None


@dataclass
class Report:
    checked: dict[str, int] = field(default_factory=lambda: {"checkout_session": 0, "invoice": 0, "refund": 0,
                                                             "dispute": 0})
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
    return report


def _apply(state: PluginState, finding: Finding, repair, obj: dict) -> None:
    try:
        repair(state, obj)
        state.session.commit()
        finding.repaired = True
    except PaymentsError as err:
        state.session.rollback()
        finding.error = err.message


# -- checkout sessions --------------------------------------------------------------------------------

def _session_problem(state: PluginState, cs: dict) -> str | None:
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
    fulfil_from_stripe(state, cs["id"])


# -- invoices ------------------------------------------------------------------------------------------

def _invoice_problem(state: PluginState, invoice: dict) -> str | None:
    purchase = purchase_of_invoice(state.session, invoice)
    if purchase is None or purchase.status not in (PurchaseStatus.PAID, PurchaseStatus.CANCELLED) or \
            invoice.get("status") != "paid":
        return None
    exists = state.session.scalar(select(Invoice.id).where(Invoice.stripe_invoice_id == invoice["id"]))
    return None if exists else "paid invoice not recorded"


def _repair_invoice(state: PluginState, invoice: dict) -> None:
    purchase = purchase_of_invoice(state.session, invoice)
    if purchase is not None:
        record_invoice(state, invoice, purchase)


# -- refunds and disputes ---------------------------------------------------------------------------------

def _refund_problem(state: PluginState, stripe_refund: dict) -> str | None:
    if purchase_for_payment_intent(state.session, stripe_refund.get("payment_intent")) is None:
        return None
    ours = state.session.scalar(select(Refund).where(Refund.stripe_refund_id == stripe_refund["id"]))
    if ours is None:
        return "refund not recorded"
    expected = status_of(stripe_refund)
    if ours.status != expected and not (ours.status == RefundStatus.REPLACED and expected == RefundStatus.FAILED):
        return f"{expected} at Stripe, {ours.status} here"
    return None


def _repair_refund(state: PluginState, stripe_refund: dict) -> None:
    sync_refund(state, stripe_refund)


def _dispute_problem(state: PluginState, dispute: dict) -> str | None:
    if purchase_for_payment_intent(state.session, dispute.get("payment_intent")) is None:
        return None
    ours = state.session.scalar(select(Dispute).where(Dispute.stripe_dispute_id == dispute["id"]))
    if ours is None:
        return "dispute not recorded"
    return None if ours.status == dispute.get("status") else f"{dispute.get('status')} at Stripe, {ours.status} here"


def _repair_dispute(state: PluginState, dispute: dict) -> None:
    sync_dispute(state, dispute)
