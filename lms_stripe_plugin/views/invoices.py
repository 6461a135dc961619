"""Invoices: "My invoices" for learners; "Invoices" for administrators (filters, totals, CSV, one invoice's
page with its refunds, disputes and history)."""
from __future__ import annotations

from datetime import date
from typing import Any

from flask import Response, abort, current_app, redirect, request, stream_with_context, url_for

from ..billing import listing
from ..billing.issuing import payable
from ..core import audit, schools
from ..core.enums import InvoiceStatus, payment_method_label
from ..core.i18n import current_locale, gettext as _
from ..core.models import Invoice
from ..money import format_rate
from ..refunds import cancellation, credit_notes, disputes, lifecycle
from ..web import audit_text, exports
from ..web.rendering import render
from ._common import display_names, error_response, require_admin, require_user, state

FILTER_NAMES = ("status", "course", "learner", "from", "to", "q")
#: The list's sortable columns, as its headers name them.
SORTABLE = {"number": listing.SortKey.NUMBER, "date": listing.SortKey.DATE, "learner": listing.SortKey.LEARNER,
            "course": listing.SortKey.COURSE, "gross": listing.SortKey.AMOUNT, "status": listing.SortKey.STATUS}


def register(bp) -> None:
    bp.add_url_rule("/invoices", "my_invoices", my_invoices)
    bp.add_url_rule("/invoices/<lms_id:invoice_id>/pdf", "invoice_pdf", invoice_pdf)
    bp.add_url_rule("/admin/invoices", "admin_invoices", admin_invoices)
    bp.add_url_rule("/admin/invoices.csv", "admin_invoices_csv", admin_invoices_csv)
    bp.add_url_rule("/admin/invoices.xlsx", "admin_invoices_xlsx", admin_invoices_xlsx)
    bp.add_url_rule("/admin/invoices/totals", "admin_invoice_totals", admin_invoice_totals)
    bp.add_url_rule("/admin/invoices/<lms_id:invoice_id>", "admin_invoice", invoice_detail)


def my_invoices():
    user = require_user()
    st = state()
    user_id = st.host.user_id(user)
    rows = listing.learner_invoices(st.session, user_id)
    processing = [(purchase, _title(purchase.course_id)) for purchase in listing.learner_processing(st.session, user_id)]
    labels: dict[str, str | None] = {}
    paid_with = {invoice_id: _said(methods, labels)
                 for invoice_id, methods in listing.payment_methods(st.session, [row.id for row in rows]).items()}
    return render("lms_stripe/my_invoices.html", invoices=rows, processing=processing, paid_with=paid_with,
                  credit_notes=credit_notes.of_invoices(st.session, rows))


def _title(course_id: str) -> str:
    host = state().host
    course = host.get_course(course_id)
    return host.course_title(course) if course is not None else course_id


def invoice_or_404(invoice_id: int) -> Invoice:
    invoice = schools.get(state().session, Invoice, invoice_id)
    if invoice is None:
        abort(404)
    return invoice


def invoice_context(invoice: Invoice) -> dict:
    """What the invoice page (and its cancel and refund forms) show."""
    session = state().session
    purchase_id = invoice.purchase_id
    refunds = lifecycle.refunds_of(session, purchase_id) if purchase_id else []
    history = audit.invoice_history(session, purchase_id=purchase_id, invoice_id=invoice.id, user_id=invoice.user_id)
    notes = credit_notes.of_invoice(session, invoice)
    return {"invoice": invoice, "purchase": invoice.purchase, "refunds": refunds, "lines": invoice.lines,
            "credit_notes": notes, "credit_notes_by_id": {note.stripe_credit_note_id: note for note in notes},
            "requests": listing.invoice_requests(session, invoice.id), "payments": listing.invoice_payments(session, invoice.id),
            "paid_with": _said(listing.payment_methods(session, [invoice.id]).get(invoice.id, []), {}),
            "can_request": payable(invoice),
            "disputes": disputes.of_invoice(session, invoice.id, purchase_id), "history": history,
            "refundable": cancellation.refundable(invoice, session),
            "to_balance": cancellation.to_balance(invoice, session),
            "cancellable": cancellation.cancellable(invoice),
            "unconfirmed": cancellation.unconfirmed_request(session, invoice),
            "history_lines": audit_text.lines(session, state().host, history),
            "names": display_names({r.actor_id for r in refunds})}


def invoice_detail(invoice_id: int):
    require_admin()
    return render("lms_stripe/admin/invoice.html", **invoice_context(invoice_or_404(invoice_id)))


def invoice_pdf(invoice_id: int):
    """Redirect to the invoice's PDF at Stripe: only for its learner or a payments administrator."""
    user = require_user()
    st = state()
    invoice = schools.get(st.session, Invoice, invoice_id)
    if invoice is None or (invoice.user_id != st.host.user_id(user) and not st.host.can_manage_payments(user)):
        abort(404)
    if not invoice.pdf_url:
        return error_response(404, _("Stripe has not produced this invoice's PDF yet: try again in a minute."))
    return redirect(invoice.pdf_url)


def _parse_filter(args) -> tuple[listing.InvoiceFilter, listing.Order, dict]:
    errors = {}

    def day(name):
        raw = (args.get(name) or "").strip()
        if not raw:
            return None
        try:
            return date.fromisoformat(raw)
        except ValueError:
            errors[name] = _("Use a date like 2026-01-31.")
            return None

    def text(name, limit=200):
        raw = (args.get(name) or "").strip()
        if len(raw) > limit:
            errors[name] = _("At most %(n)s characters.", n=limit)
            return None
        return raw or None

    status = text("status")
    if status and status not in InvoiceStatus.values():
        errors["status"] = _("Unknown status.")
        status = None
    date_from, date_to = day("from"), day("to")
    if date_from and date_to and date_from > date_to:
        errors["to"] = _("The end date is before the start date.")
        date_from = date_to = None
    older = text("order", 16)  # the order of links made before the list was sortable by column
    if older not in (None, "newest", "oldest"):
        errors["order"] = _("Unknown order.")
    order = listing.Order.parse(args.get("sort")) if args.get("sort") \
        else listing.Order(listing.SortKey.DATE, descending=older != "oldest")
    q = text("q")
    flt = listing.InvoiceFilter(status=InvoiceStatus(status) if status else None, course_id=text("course", 64),
                                user_id=text("learner", 64), date_from=date_from, date_to=date_to, q=q,
                                titled=_titled(q))
    return flt, order, errors


def _listed_args(args, order: listing.Order) -> dict[str, Any]:
    """The filters asked for, and the order unless it is the default: what every link of the list keeps (its
    pages, its column headers, its totals and its exports)."""
    kept: dict[str, Any] = {k: v for k, v in args.items() if k in FILTER_NAMES}
    if order != listing.Order():
        kept["sort"] = order.param
    return kept


def _courses() -> list[tuple[str, str]]:
    """(id, title) of the priced courses the LMS still has, by title: what the course filter offers, and the
    titles the search box looks in."""
    st = state()
    found = []
    for course_id in listing.priced_course_ids(st.session):
        course = st.host.get_course(course_id)
        if course is not None:
            found.append((course_id, st.host.course_title(course)))
    return sorted(found, key=lambda pair: pair[1].casefold())


def _titled(q: str | None) -> tuple[str, ...]:
    """The priced courses whose title the search's words start, for a search by name (not by number or
    e-mail address)."""
    if not q or "@" in q or (any(c.isdigit() for c in q) and " " not in q.strip()):
        return ()
    return tuple(course_id for course_id, title in _courses() if listing.title_matches(q, title))


def _parse_cursor(raw: str | None, order: listing.Order):
    if not raw:
        return None
    try:
        return order.read_token(raw)
    except ValueError:
        abort(400)


def admin_invoices():
    require_admin()
    st = state()
    flt, order, errors = _parse_filter(request.args)
    limit = current_app.config["LMS_STRIPE_PAGE_SIZE"]
    rows, cursor = listing.admin_page(st.session, flt, order=order,
                                      after=_parse_cursor(request.args.get("after"), order), limit=limit)
    args = _listed_args(request.args, order)
    filters = {k: v for k, v in args.items() if k != "sort"}
    courses = _courses()
    headers = {name: {"url": url_for("lms_stripe.admin_invoices", **filters, sort=order.clicked(key).param),
                      "sort": ("descending" if order.descending else "ascending") if key == order.key else None}
               for name, key in SORTABLE.items()}
    return render("lms_stripe/admin/invoices.html", invoices=rows, statuses=list(InvoiceStatus),
                  courses=courses if len(courses) <= listing.COURSE_CHOICES else None,
                  totals_url=url_for("lms_stripe.admin_invoice_totals", **args), errors=errors, args=args,
                  order=order, sorts=_sort_choices(), headers=headers,
                  next_url=url_for("lms_stripe.admin_invoices", after=order.token(cursor), **args) if cursor else None,
                  csv_url=url_for("lms_stripe.admin_invoices_csv", **args),
                  xlsx_url=url_for("lms_stripe.admin_invoices_xlsx", **args),
                  first_url=url_for("lms_stripe.admin_invoices", **args) if request.args.get("after") else None), \
        (400 if errors else 200)


def _sort_choices() -> list[tuple[str, str]]:
    """The orders the list's "Sort by" box offers (its column headers, on a phone, are hidden)."""
    key = listing.SortKey
    return [(f"-{key.DATE}", _("Newest first")), (key.DATE, _("Oldest first")),
            (key.NUMBER, _("Number, ascending")), (f"-{key.NUMBER}", _("Number, descending")),
            (key.LEARNER, _("Learner, A to Z")), (f"-{key.LEARNER}", _("Learner, Z to A")),
            (key.COURSE, _("Course, A to Z")), (f"-{key.COURSE}", _("Course, Z to A")),
            (f"-{key.AMOUNT}", _("Amount, highest first")), (key.AMOUNT, _("Amount, lowest first")),
            (key.STATUS, _("Status")), (f"-{key.STATUS}", _("Status, reversed"))]


def admin_invoice_totals():
    """Totals per currency of the filtered invoices: asked for, not computed with every page of the list."""
    require_admin()
    flt, order, errors = _parse_filter(request.args)
    if errors:
        return error_response(400, "; ".join(errors.values()))
    args = _listed_args(request.args, order)
    return render("lms_stripe/admin/invoice_totals.html", totals=listing.totals(state().session, flt), args=args,
                  list_url=url_for("lms_stripe.admin_invoices", **args))


def _export_columns(zone: str) -> list[exports.Column]:
    return [exports.Column(_("Number"), 16), exports.Column(_("Issued (%(zone)s)", zone=zone), 18),
            exports.Column(_("Status"), 16), exports.Column(_("Origin"), 18), exports.Column(_("E-mail"), 28),
            exports.Column(_("Learner"), 22), exports.Column(_("Description"), 30), exports.Column(_("Currency"), 9),
            exports.Column(_("Net (excl. VAT)")), exports.Column(_("VAT")), exports.Column(_("Total incl. VAT")),
            exports.Column(_("VAT rate (%)"), 12), exports.Column(_("Discount")), exports.Column(_("Payment method"), 18),
            exports.Column(_("Refunded")),
            exports.Column(_("Paid")), exports.Column(_("Remaining")), exports.Column(_("Due date"), 12),
            exports.Column(_("Stripe invoice"), 30), exports.Column(_("Credit note"), 16)]


def _export_cells(rows):
    """Each exported invoice as typed cells, its status and origin in the reader's language."""
    labels: dict[Any, str] = {}  # a status's or an origin's words, looked up once per export
    methods: dict[str, str | None] = {}  # a payment method's words, likewise

    def label(value) -> str:
        if value not in labels:
            labels[value] = getattr(value, "label", value)
        return labels[value]

    for row in rows:
        currency = row.currency

        def amount(minor):
            return exports.Amount(int(minor or 0), currency)

        if row.purchase_rate is not None:
            rate: object = exports.Rate(row.purchase_rate)
        elif row.lowest_rate is not None and row.lowest_rate == row.highest_rate:
            rate = exports.Rate(row.lowest_rate)
        elif row.lowest_rate is not None:
            rate = f"{format_rate(row.lowest_rate, current_locale())} – {format_rate(row.highest_rate, current_locale())}"
        else:
            rate = None
        discount = amount(row.price - row.purchase_paid) if row.price is not None and row.purchase_paid is not None \
            else None
        yield (row.number, row.issued_at, label(row.status), label(row.source), row.user_email, row.user_name, row.course_title, currency,
               amount(row.net), amount(row.vat), amount(row.gross), rate, discount, _methods(row, methods),
               amount(row.amount_refunded), amount(row.amount_paid), amount(row.amount_remaining),
               row.due_at.date() if row.due_at else None, row.stripe_invoice_id, row.credit_note_number)


def _methods(row, labels: dict[str, str | None]) -> str | None:
    """How an exported invoice was paid, in the reader's language: "Card", or "Card, SEPA Direct Debit" when
    its payments were made in several ways (a deposit, then its balance)."""
    return _said({row.purchase_method, row.link_method, *(row.request_methods or "").split(",")}, labels)


def _said(methods, labels: dict[str, str | None]) -> str | None:
    """Stored payment methods in the reader's language, sorted, comma-separated (None: none); ``labels``
    keeps the words of each method already looked up."""
    found = set(methods) - {None, ""}
    if not found:
        return None
    for method in found - labels.keys():
        labels[method] = payment_method_label(method)
    return ", ".join(sorted(labels[method] or method for method in found))


def admin_invoices_csv():
    """The filtered invoices as CSV for the reader's spreadsheet, streamed as they are read."""
    require_admin()
    flt, order, errors = _parse_filter(request.args)
    if errors:
        return error_response(400, "; ".join(errors.values()))
    zone = audit_text.time_zone()
    chunks = exports.csv_chunks(_export_columns(zone), _export_cells(listing.export_rows(state().session, flt, order)),
                                zone=zone)
    return Response(stream_with_context(chunks), mimetype="text/csv", content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": "attachment; filename=invoices.csv"})


def admin_invoices_xlsx():
    """The filtered invoices as an Excel workbook (typed cells)."""
    require_admin()
    flt, order, errors = _parse_filter(request.args)
    if errors:
        return error_response(400, "; ".join(errors.values()))
    zone = audit_text.time_zone()
    workbook = exports.xlsx_file(_export_columns(zone), _export_cells(listing.export_rows(state().session, flt, order)),
                                 zone=zone, sheet=_("Invoices"))
    return Response(exports.file_chunks(workbook),
                    mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": "attachment; filename=invoices.xlsx"})
