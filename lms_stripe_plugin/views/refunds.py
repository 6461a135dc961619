"""Administrators cancel a purchase, refund part of it, or retry a refund that failed."""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for

from ..core import schools
from ..core.enums import RefundStatus
from ..core.i18n import current_locale, gettext as _
from ..core.models import Refund
from ..errors import GatewayError
from ..money import Money, MoneyError
from ..refunds import access, cancellation
from ..refunds.lifecycle import failure_text
from ..web.forms import money_message, read_amount
from ..web.rendering import render
from ._common import actor_id, require_admin, state, step
from .invoices import invoice_context, invoice_or_404

MAX_REASON = 500


def register(bp) -> None:
    bp.add_url_rule("/admin/invoices/<lms_id:invoice_id>/cancel", "admin_cancel", cancel, methods=["GET", "POST"])
    bp.add_url_rule("/admin/invoices/<lms_id:invoice_id>/refund", "admin_refund", refund, methods=["GET", "POST"])
    bp.add_url_rule("/admin/refunds/<lms_id:refund_id>/retry", "admin_retry_refund", retry, methods=["POST"])
    bp.add_url_rule("/admin/invoices/<lms_id:invoice_id>/restore-access", "admin_restore_access", restore,
                    methods=["POST"])


def _reason(errors: dict[str, str]) -> str | None:
    """The reason typed (None if blank); a reason too long is an error of the field "reason"."""
    reason = (request.form.get("reason") or "").strip()
    if len(reason) > MAX_REASON:
        errors["reason"] = _("At most %(n)s characters.", n=MAX_REASON)
    return reason or None


def _request_and_send(request_step, *args, **kwargs) -> Refund:
    """The refund request is committed first, so that Stripe's answer, however it ends, finds it."""
    plan = step(request_step, state(), *args, **kwargs)
    return step(cancellation.send, state(), plan)


def cancel(invoice_id: int):
    user = require_admin()
    invoice = invoice_or_404(invoice_id)
    errors: dict[str, str] = {}
    if request.method == "POST":
        reason = _reason(errors)
        if not errors:
            try:
                refund = _request_and_send(cancellation.request_cancel, invoice, actor_id=actor_id(user),
                                           reason=reason)
            except cancellation.RefundRefused as err:
                errors["_schema"] = err.message
            except GatewayError as err:
                errors["_schema"] = _stripe_problem(err)
            else:
                _flash_outcome(refund)
                return redirect(url_for("lms_stripe.admin_invoice", invoice_id=invoice_id))
    context = invoice_context(invoice_or_404(invoice_id))
    return render("lms_stripe/admin/cancel.html", errors=errors, values=request.form, **context), \
        409 if errors else 200


def refund(invoice_id: int):
    """A partial refund: every error of the form at once (the amount, the reason), then Stripe's answer."""
    user = require_admin()
    invoice = invoice_or_404(invoice_id)
    errors: dict[str, str] = {}
    if request.method == "POST":
        amount = _refund_amount(invoice, errors)
        reason = _reason(errors)
        if not errors and amount is not None:
            try:
                _request_and_send(cancellation.request_part, invoice, amount=amount, actor_id=actor_id(user),
                                  revoke=request.form.get("revoke_access") in ("on", "1", "true"), reason=reason)
            except cancellation.RefundRefused as err:
                errors["amount"] = err.message
            except GatewayError as err:
                errors["_schema"] = _stripe_problem(err)
            else:
                flash(_("The refund is requested from Stripe."), "success")
                return redirect(url_for("lms_stripe.admin_invoice", invoice_id=invoice_id))
    context = invoice_context(invoice_or_404(invoice_id))
    return render("lms_stripe/admin/refund.html", errors=errors, values=request.form, **context), \
        400 if errors else 200


def _refund_amount(invoice, errors: dict[str, str]) -> int | None:
    """The amount typed, read in the administrator's locale (no minimum for a refund); None if refused."""
    try:
        return read_amount((request.form.get("amount") or "").strip()[:32], invoice.currency, minimum=False).amount
    except MoneyError as err:
        errors["amount"] = money_message(err, invoice.currency)
        return None


def retry(refund_id: int):
    user = require_admin()
    st = state()
    failed = schools.get(st.session, Refund, refund_id)
    if failed is None:
        abort(404)
    invoice_id = failed.purchase.invoice.id if failed.purchase.invoice is not None else None
    try:
        _request_and_send(cancellation.request_retry, failed, actor_id=actor_id(user))
    except cancellation.RefundRefused as err:
        flash(err.message, "error")
    except GatewayError as err:
        flash(_stripe_problem(err), "error")
    else:
        flash(_("The refund is requested from Stripe again."), "success")
    return redirect(url_for("lms_stripe.admin_invoice", invoice_id=invoice_id) if invoice_id else
                    url_for("lms_stripe.admin_invoices"))


def restore(invoice_id: int):
    """Give the learner their access back (after a cancellation whose refund failed)."""
    user = require_admin()
    invoice = invoice_or_404(invoice_id)
    try:
        step(access.restore_access, state(), invoice.purchase, actor_id=actor_id(user))
    except access.AccessNotRestored as err:
        flash(err.message, "error")
    else:
        flash(_("The learner's access is restored."), "success")
    return redirect(url_for("lms_stripe.admin_invoice", invoice_id=invoice_id))


def _flash_outcome(refund: Refund) -> None:
    if refund.status == RefundStatus.SUCCEEDED and refund.balance_amount >= refund.amount:
        flash(_("The purchase is cancelled: the credit note is issued and %(amount)s is back on the learner's "
                "prepaid balance.", amount=Money(refund.balance_amount, refund.currency).format(current_locale())),
              "success")
    elif refund.status == RefundStatus.SUCCEEDED:
        flash(_("The purchase is cancelled: the credit note is issued and the learner is refunded."), "success")
    elif refund.status == RefundStatus.FAILED:
        flash(_("The credit note is issued and access revoked, but Stripe could not refund: %(reason)s "
                "Retry the refund below.", reason=failure_text(refund.failure_reason)), "error")
    else:
        flash(_("The purchase is cancelled: the credit note is issued and the refund is on its way."), "success")


def _stripe_problem(err: GatewayError) -> str:
    if err.retryable:
        return _("Stripe could not be reached: nothing was changed. Try again in a moment.")
    return _("Stripe refused the refund: %(reason)s", reason=err.message)
