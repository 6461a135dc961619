"""Administrators invoice learners and ask them to pay: a new invoice, a payment request on an invoice, and
the list of every request (resend, cancel, CSV)."""
from __future__ import annotations

from typing import Any

from flask import Response, abort, current_app, flash, redirect, request, url_for

from ..accounts import settings as payment_settings
from ..billing import issuing, listing, requests as payment_requests, settlements
from ..core import schools
from ..core.i18n import current_locale, gettext as _
from ..core.enums import InvoiceStatus
from ..core.models import PaymentRequest, parse_row_id
from ..errors import GatewayError, PaymentsError, ValidationFailed
from ..web.billing_forms import LINE_ROWS, default_due, read_invoice, read_request, read_settlement
from ..web.forms import amount_input
from ..web.rendering import render
from ._common import actor_id, display_names, require_admin, state, step
from .invoices import invoice_or_404


def register(bp) -> None:
    bp.add_url_rule("/admin/invoices/new", "admin_new_invoice", new_invoice, methods=["GET", "POST"])
    bp.add_url_rule("/admin/invoices/<lms_id:invoice_id>/issue", "admin_issue_invoice", issue_again,
                    methods=["POST"])
    bp.add_url_rule("/admin/invoices/<lms_id:invoice_id>/request", "admin_request_payment", request_payment,
                    methods=["GET", "POST"])
    bp.add_url_rule("/admin/requests/new", "admin_new_settlement", new_settlement, methods=["GET", "POST"])
    bp.add_url_rule("/admin/requests", "admin_requests", request_list)
    bp.add_url_rule("/admin/requests.csv", "admin_requests_csv", request_csv)
    bp.add_url_rule("/admin/requests/<lms_id:request_id>/resend", "admin_resend_request", resend, methods=["POST"])
    bp.add_url_rule("/admin/requests/<lms_id:request_id>/cancel", "admin_cancel_request", cancel, methods=["POST"])


def new_invoice():
    user = require_admin()
    st = state()
    errors, form = {}, request.form
    if request.method == "POST":
        read = read_invoice(form, st.host)
        errors = read.errors
        if not errors:
            try:
                invoice = step(issuing.draft, st, user=read.user, currency=read.currency, due=read.due,
                               lines=read.lines, actor_id=actor_id(user))
            except ValidationFailed as err:
                errors = err.errors
            else:
                return _issue(invoice.id)
    return render("lms_stripe/admin/new_invoice.html", errors=errors, form=form, rows=range(1, LINE_ROWS + 1),
                  default_due=default_due(), currency=_default_currency()), 400 if errors else 200


def _default_currency() -> str:
    return payment_settings.load(state().session).default_currency


def _issue(invoice_id: int):
    """Create the invoice at Stripe and finalize it, each step committed; what failed is run again later."""
    st = state()
    try:
        invoice = invoice_or_404(invoice_id)
        if invoice.stripe_invoice_id is None:
            plan = step(issuing.stripe_draft, st, invoice, locale=current_locale())
            step(issuing.create_at_stripe, st, plan)
        step(issuing.finalize_at_stripe, st, step(issuing.stripe_lines, st, invoice_or_404(invoice_id)))
    except GatewayError as err:
        flash(_("The invoice is saved, but Stripe could not issue it: %(reason)s Issue it again from its page.",
                reason=err.message), "error")
    else:
        flash(_("The invoice is issued."), "success")
    return redirect(url_for("lms_stripe.admin_invoice", invoice_id=invoice_id))


def issue_again(invoice_id: int):
    require_admin()
    if invoice_or_404(invoice_id).status != InvoiceStatus.ISSUING:  # issued meanwhile (a second click)
        flash(_("The invoice is issued."), "success")
        return redirect(url_for("lms_stripe.admin_invoice", invoice_id=invoice_id))
    return _issue(invoice_id)


def request_payment(invoice_id: int):
    user = require_admin()
    st = state()
    invoice = invoice_or_404(invoice_id)
    errors = {}
    if request.method == "POST":
        read = read_request(request.form, invoice.currency)
        errors = read.errors
        if not errors and read.data is not None:
            try:
                step(payment_requests.create, st, invoice, read.data, actor_id=actor_id(user))
            except ValidationFailed as err:
                errors = err.errors
            except PaymentsError as err:
                errors = {"amount": err.message}
            else:
                flash(_("The payment request is sent."), "success")
                return redirect(url_for("lms_stripe.admin_invoice", invoice_id=invoice_id))
    values = request.form if request.method == "POST" else {
        "amount": amount_input(invoice.amount_remaining, invoice.currency),
        "due": (default_due(14)).isoformat(), "email": "on", "locale": current_locale()}
    return render("lms_stripe/admin/request_payment.html", invoice=invoice, errors=errors, values=values,
                  can_request=payment_requests.can_request(invoice)), 400 if errors else 200


def new_settlement():
    """Ask a learner to pay several of their invoices in one payment: the learner (``learner``), then the
    invoices ticked, a due date, a message and the channels, as for a request of one invoice."""
    user = require_admin()
    st = state()
    learner_id = (request.values.get("learner") or "").strip()[:64]
    learner = schools.member(st.host, learner_id) if learner_id else None
    errors: dict[str, str] = {}
    if learner_id and learner is None:
        errors["learner"] = _("Enter the id of a learner of the LMS.")
    if request.method == "POST" and learner is not None:
        read = read_settlement(request.form)
        errors = read.errors
        if not errors and read.data is not None:
            try:
                step(settlements.create, st, learner_id, read.invoice_ids, read.data, actor_id=actor_id(user))
            except ValidationFailed as err:
                errors = err.errors
            except PaymentsError as err:
                errors = {"invoices": err.message}
            else:
                flash(_("The payment request is sent."), "success")
                return redirect(url_for("lms_stripe.admin_requests", learner=learner_id))
    chosen = set(read.invoice_ids) if request.method == "POST" and learner is not None else None
    values = request.form if request.method == "POST" else {
        "due": default_due(14).isoformat(), "email": "on", "locale": current_locale()}
    invoices = settlements.open_invoices(st.session, learner_id) if learner is not None else []
    return render("lms_stripe/admin/new_settlement.html", learner=learner, learner_id=learner_id,
                  learner_name=st.host.user_display_name(learner) if learner is not None else "",
                  invoices=invoices, chosen=chosen, errors=errors, values=values), 400 if errors else 200


def _request_or_404(request_id: int) -> PaymentRequest:
    found = schools.get(state().session, PaymentRequest, request_id)
    if found is None:
        abort(404)
    return found


def resend(request_id: int):
    user = require_admin()
    found = _request_or_404(request_id)
    try:
        step(payment_requests.resend, state(), found, actor_id=actor_id(user))
    except PaymentsError as err:
        flash(err.message, "error")
    else:
        flash(_("The payment request is sent again."), "success")
    return redirect(request.form.get("next_invoice") and _back_to(found) or url_for("lms_stripe.admin_requests"))


def cancel(request_id: int):
    user = require_admin()
    found = _request_or_404(request_id)
    try:
        step(payment_requests.cancel, state(), found, actor_id=actor_id(user))
    except PaymentsError as err:
        flash(err.message, "error")
    else:
        flash(_("The payment request is cancelled."), "success")
    return redirect(_back_to(found))


def _back_to(found: PaymentRequest) -> str:
    """The page a request's action returns to: its invoice's, or a top-up's learner's balance page."""
    if found.invoice_id is None:
        return url_for("lms_stripe.admin_balance", user_id=found.user_id)
    return url_for("lms_stripe.admin_invoice", invoice_id=found.invoice_id)


def request_list():
    require_admin()
    flt = listing.RequestFilter.from_args(request.args)
    before_id = parse_row_id(request.args.get("after"))
    if before_id is None and "after" in request.args:
        abort(400)
    rows, more = listing.admin_requests(state().session, flt, before_id=before_id,
                                        limit=current_app.config["LMS_STRIPE_PAGE_SIZE"])
    args: dict[str, Any] = {k: v for k, v in request.args.items() if k in listing.RequestFilter.NAMES}
    names = display_names({view.request.user_id for view in rows if view.request.invoice is None})
    return render("lms_stripe/admin/requests.html", rows=rows, args=args, views=listing.RequestView, names=names,
                  next_url=url_for("lms_stripe.admin_requests", after=rows[-1].request.id, **args)
                  if more and rows else None, csv_url=url_for("lms_stripe.admin_requests_csv", **args))


def request_csv():
    require_admin()
    flt = listing.RequestFilter.from_args(request.args)
    body = listing.requests_csv(state().session, flt)
    return Response(body, mimetype="text/csv", headers={"Content-Disposition": "attachment; filename=requests.csv"})

