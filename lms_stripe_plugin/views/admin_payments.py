"""Administrators act on payments: invoice detail, cancel, partial refund, retry, audit log, free enrollments."""
from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone

from flask import abort, current_app, flash, redirect, request, url_for
from sqlalchemy import select

from .. import backoffice, cancellation
from ..errors import GatewayError
from ..i18n import gettext as _
from ..models import AuditEntry, Dispute, Invoice, Refund
from ..money import MoneyError, parse_money
from ..rendering import render
from ..schemas import money_message
from ._common import actor_id, require_admin, state

MAX_REASON = 500
MAX_ID = 2**31 - 1
AUDIT_FILTERS = ("action", "actor", "learner", "course", "from", "to")
AUDIT_ACTIONS = ("checkout_started", "paid", "payment_failed", "invoice_issued", "refund_requested",
                 "refund_succeeded", "refund_failed", "refund_retried", "access_revoked", "dispute_opened",
                 "dispute_updated", "free_enrollment", "settings_changed", "course_pricing_changed")


def register(bp) -> None:
    bp.add_url_rule("/admin/invoices/<lms_id:invoice_id>", "admin_invoice", invoice_detail)
    bp.add_url_rule("/admin/invoices/<lms_id:invoice_id>/cancel", "admin_cancel", cancel, methods=["GET", "POST"])
    bp.add_url_rule("/admin/invoices/<lms_id:invoice_id>/refund", "admin_refund", refund, methods=["GET", "POST"])
    bp.add_url_rule("/admin/refunds/<lms_id:refund_id>/retry", "admin_retry_refund", retry, methods=["POST"])
    bp.add_url_rule("/admin/audit", "admin_audit", audit_log)
    bp.add_url_rule("/admin/free-enrollments", "admin_free_enrollments", free_enrollments)


def _invoice_or_404(invoice_id: int) -> Invoice:
    invoice = state().session.get(Invoice, invoice_id)
    if invoice is None:
        abort(404)
    return invoice


def _detail_context(invoice: Invoice) -> dict:
    session = state().session
    refunds = session.scalars(select(Refund).where(Refund.purchase_id == invoice.purchase_id)
                              .order_by(Refund.created_at.desc(), Refund.id.desc())).all()
    disputes = session.scalars(select(Dispute).where(Dispute.purchase_id == invoice.purchase_id)).all()
    history = session.scalars(select(AuditEntry).where(AuditEntry.purchase_id == invoice.purchase_id)
                              .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())).all()
    return {"invoice": invoice, "purchase": invoice.purchase, "refunds": refunds, "disputes": disputes,
            "history": history, "refundable": cancellation.refundable(invoice, session),
            "unconfirmed": cancellation.unconfirmed_request(session, invoice),
            "names": _display_names({entry.actor_id for entry in history} | {r.actor_id for r in refunds})}


def _display_names(user_ids) -> dict[str, str]:
    host = state().host
    names = {}
    for user_id in filter(None, user_ids):
        user = host.get_user(user_id)
        names[user_id] = host.user_display_name(user) if user is not None else user_id
    return names


def invoice_detail(invoice_id: int):
    require_admin()
    return render("lms_stripe/admin/invoice.html", **_detail_context(_invoice_or_404(invoice_id)))


def _reason() -> tuple[str | None, str | None]:
    reason = (request.form.get("reason") or "").strip()
    if len(reason) > MAX_REASON:
        return None, _("At most %(n)s characters.", n=MAX_REASON)
    return reason or None, None


def cancel(invoice_id: int):
    user = require_admin()
    invoice = _invoice_or_404(invoice_id)
    error = None
    if request.method == "POST":
        reason, error = _reason()
        if error is None:
            try:
                refund = cancellation.cancel_invoice(state(), invoice, actor_id=actor_id(user), reason=reason)
            except cancellation.RefundRefused as err:
                error = err.message
            except GatewayError as err:
                error = _stripe_problem(err)
            else:
                _flash_outcome(refund)
                return redirect(url_for("lms_stripe.admin_invoice", invoice_id=invoice.id))
    context = _detail_context(_invoice_or_404(invoice_id))
    return render("lms_stripe/admin/cancel.html", error=error, **context), 409 if error else 200


def refund(invoice_id: int):
    user = require_admin()
    invoice = _invoice_or_404(invoice_id)
    error, amount_text = None, ""
    if request.method == "POST":
        amount_text = (request.form.get("amount") or "").strip()[:32]
        reason, error = _reason()
        revoke = request.form.get("revoke_access") in ("on", "1", "true")
        if error is None:
            try:
                amount = parse_money(amount_text, invoice.currency, minimum=False).amount  # no refund minimum
                cancellation.refund_part(state(), invoice, amount=amount, revoke=revoke, actor_id=actor_id(user),
                                         reason=reason)
            except MoneyError as err:
                error = money_message(err, invoice.currency)
            except cancellation.RefundRefused as err:
                error = err.message
            except GatewayError as err:
                error = _stripe_problem(err)
            else:
                flash(_("The refund is requested from Stripe."), "success")
                return redirect(url_for("lms_stripe.admin_invoice", invoice_id=invoice.id))
    context = _detail_context(_invoice_or_404(invoice_id))
    return render("lms_stripe/admin/refund.html", error=error, amount_text=amount_text, **context), \
        400 if error else 200


def retry(refund_id: int):
    user = require_admin()
    session = state().session
    failed = session.get(Refund, refund_id)
    if failed is None:
        abort(404)
    invoice = session.scalar(select(Invoice).where(Invoice.purchase_id == failed.purchase_id))
    try:
        cancellation.retry_refund(state(), failed, actor_id=actor_id(user))
    except cancellation.RefundRefused as err:
        flash(err.message, "error")
    except GatewayError as err:
        flash(_stripe_problem(err), "error")
    else:
        flash(_("The refund is requested from Stripe again."), "success")
    return redirect(url_for("lms_stripe.admin_invoice", invoice_id=invoice.id) if invoice else
                    url_for("lms_stripe.admin_invoices"))


def _flash_outcome(refund: Refund) -> None:
    from ..refunds import failure_text

    if refund.status == "succeeded":
        flash(_("The purchase is cancelled: the credit note is issued and the learner is refunded."), "success")
    elif refund.status == "failed":
        flash(_("The credit note is issued and access revoked, but Stripe could not refund: %(reason)s "
                "Retry the refund below.", reason=failure_text(refund.failure_reason)), "error")
    else:
        flash(_("The purchase is cancelled: the credit note is issued and the refund is on its way."), "success")


def _stripe_problem(err: GatewayError) -> str:
    if err.retryable:
        return _("Stripe could not be reached: nothing was changed. Try again in a moment.")
    return _("Stripe refused the refund: %(reason)s", reason=err.message)


def audit_log():
    require_admin()
    args = request.args
    query = select(AuditEntry)
    action = args.get("action") or None
    if action in AUDIT_ACTIONS:
        query = query.where(AuditEntry.action == action)
    for name, column in (("learner", AuditEntry.user_id), ("actor", AuditEntry.actor_id),
                         ("course", AuditEntry.course_id)):
        value = (args.get(name) or "").strip()[:64]
        if value:
            query = query.where(column == value)
    start, end = _day(args.get("from")), _day(args.get("to"))
    if start:
        query = query.where(AuditEntry.created_at >= datetime.combine(start, time.min, timezone.utc))
    if end:
        query = query.where(AuditEntry.created_at < datetime.combine(end + timedelta(days=1), time.min, timezone.utc))
    after = args.get("after", type=int)
    if after and 0 < after <= MAX_ID:
        query = query.where(AuditEntry.id < after)
    limit = current_app.config["LMS_STRIPE_PAGE_SIZE"]
    rows = state().session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    keep = {k: v for k, v in args.items() if k in AUDIT_FILTERS}
    return render("lms_stripe/admin/audit.html", entries=[(e, json.loads(e.details) if e.details else {}) for e in rows],
                  actions=AUDIT_ACTIONS, args=keep,
                  next_url=url_for("lms_stripe.admin_audit", after=rows[-1].id, **keep) if more and rows else None)


def _day(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def free_enrollments():
    require_admin()
    host = state().host
    rows = backoffice.free_enrollments(state().session, limit=500)

    def name(user_id):
        user = host.get_user(user_id)
        return host.user_display_name(user) if user is not None else user_id

    def title(course_id):
        course = host.get_course(course_id)
        return host.course_title(course) if course is not None else course_id

    return render("lms_stripe/admin/free_enrollments.html",
                  rows=[(row, name(row.user_id), name(row.actor_id), title(row.course_id)) for row in rows])
