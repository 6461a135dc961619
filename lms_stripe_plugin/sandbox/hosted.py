"""What a learner's browser sees: the hosted checkout page, invoice pages, PDFs and receipts."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, current_app, g, redirect, render_template, request
from markupsafe import Markup, escape

from . import connect, pdf
from .amounts import format_amount
from .checkout import apply_promotion_code, checked_session, priced_lines, remove_promotion_code
from .errors import StripeError
from .invoice_paying import pay_invoice, payable_intent, processing_intent
from .locales import document_locale, language, money, page_locale, translator
from .payments import PaymentAttempt, pay_session, success_redirect
from .state import SandboxState

bp = Blueprint("stripe_sandbox_hosted", __name__)

METHOD_LABELS = {
    "card": ("Card", "Visa, Mastercard, American Express"),
    "klarna": ("Klarna", "Pay in instalments"),
    "sepa_debit": ("SEPA Direct Debit", "Paid from your bank account; takes a few days to confirm"),
}
WALLET_LABELS = {"apple_pay": "Apple Pay", "google_pay": "Google Pay"}


_MARKDOWN_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")


def custom_text_html(text: str) -> Markup:
    """Custom text as Checkout shows it: escaped, with Markdown links ``[label](https://...)`` as links."""
    escaped = str(escape(text))
    return Markup(_MARKDOWN_LINK.sub(r'<a href="\2" target="_blank" rel="noopener">\1</a>', escaped))


def _state() -> SandboxState:
    return current_app.extensions["stripe_sandbox"]


@bp.before_request
def _act_as_owner() -> None:
    """A page about an object (a session, an invoice, a charge) acts as the account that owns it: a connected
    account's Checkout Session is paid on that account, its invoice shows that account's details."""
    for value in (request.view_args or {}).values():
        scope = connect.scope_of(_state(), value)
        if scope is not connect.EVERY_ACCOUNT:
            g.hosted_scope = _state().enter_account(scope)  # type: ignore[arg-type]
            return


@bp.teardown_request
def _leave_scope(_exc: BaseException | None) -> None:
    scope = g.pop("hosted_scope", None)
    if scope is not None:
        _state().leave_account(scope)


def _message(title: str, message: str, status: int = 200, link: tuple[str, str] | None = None,
             locale: str = "en") -> tuple[str, int]:
    """A page with one message; ``title``, ``message`` and the link's label are translated into ``locale``."""
    _ = translator(locale)
    link = (_(link[0]), link[1]) if link else None
    return render_template("message.html", title=_(title), message=_(message), link=link, lang=language(locale),
                           _=_), status


def _browser_locale() -> str:
    return page_locale(None, request.accept_languages)


# -- checkout page ------------------------------------------------------------------------------


def _open_session(state, session_id: str, closed_status: int) -> tuple[dict | None, Any]:
    """The session if it is open, else (None, the page to show instead)."""
    session = state.get(session_id, "checkout.session")
    if session is None:
        return None, _message("Not found", "This checkout session does not exist.", 404, locale=_browser_locale())
    checked_session(state, session_id)
    if session["status"] != "open":
        return None, _closed_page(state, session, status=closed_status)
    return session, None


@bp.get("/c/pay/<session_id>")
def checkout_page(session_id: str) -> Any:
    """The payment page of an open session, or a message when it is no longer open."""
    state = _state()
    session, page = _open_session(state, session_id, 200)
    return page if session is None else _render_checkout(state, session, {}, status=200)


@bp.post("/c/pay/<session_id>")
def submit_checkout(session_id: str) -> Any:
    """Apply or remove a promotion code, or pay; redirects to ``success_url`` once paid."""
    state = _state()
    session, page = _open_session(state, session_id, 400)
    if session is None:
        return page
    form = request.form
    action = form.get("action", "pay")
    try:
        if action == "apply_promo":
            apply_promotion_code(state, session, form.get("promotion_code", ""))
            return _render_checkout(state, session, form, status=200)
        if action == "remove_promo":
            remove_promotion_code(state, session)
            return _render_checkout(state, session, {**form, "promotion_code": ""}, status=200)
        pay_session(state, session_id, attempt_from_form(form))
    except StripeError as error:
        return _show_error(state, session, form, error)
    return redirect(success_redirect(state, session), code=303)


def attempt_from_form(form: Any) -> PaymentAttempt:
    """Read the checkout form's fields (see the package docstring for their names)."""
    wallet = form.get("wallet")  # a wallet button: the wallet hands over the card, nothing typed is read
    return PaymentAttempt(
        method="card" if wallet else form.get("method", "card"),
        card_number="" if wallet else form.get("card_number", ""),
        card_expiry=form.get("card_expiry", ""), card_cvc=form.get("card_cvc", ""), iban=form.get("iban", ""),
        email=form.get("email"), name=(form.get("billing_name") or "").strip() or None,
        promotion_code=form.get("promotion_code"),
        terms_accepted=form.get("terms") in ("accepted", "on", "true", "1"),
        country=(form.get("billing_country") or "").strip() or None,
        wallet=form.get("wallet") or None,
    )


def _show_error(state: SandboxState, session: dict[str, Any], form: Any, error: StripeError) -> Any:
    if session["status"] != "open":
        return _closed_page(state, session, status=400)
    _ = translator(_session_locale(session))
    if error.param == "promotion_code":
        return _render_checkout(state, session, form, status=400, promo_error=_(error.message))
    status = 402 if error.type == "card_error" else 400
    return _render_checkout(state, session, form, status=status, error=_(error.message))


def _session_locale(session: dict[str, Any]) -> str:
    return page_locale(session["locale"], request.accept_languages)


def _closed_page(state: SandboxState, session: dict[str, Any], status: int = 200) -> Any:
    locale = _session_locale(session)
    if session["status"] == "expired":
        link = ("← Back", session["cancel_url"]) if session["cancel_url"] else None
        return _message("Session expired", "This checkout session has expired.", status, link, locale)
    return _message("Payment complete", "This checkout session is already complete.", status,
                    ("Continue", success_redirect(state, session)), locale)


def _render_checkout(state: SandboxState, session: dict[str, Any], form: Any, *, status: int,
                     error: str | None = None, promo_error: str | None = None) -> Any:
    with state.lock:
        context = _checkout_context(state, session, form)
    return render_template("checkout.html", error=error, promo_error=promo_error, **context), status


def _checkout_context(state: SandboxState, session: dict[str, Any], form: Any) -> dict[str, Any]:
    """What ``checkout.html`` shows, in the session's locale (see ``locales.py``)."""
    locale = _session_locale(session)
    _ = translator(locale)
    private = state.private[session["id"]]
    customer = state.get(session["customer"], "customer") or {}
    promo = state.get(private.get("promotion_code_id"), "promotion_code")
    methods = [(m, _(METHOD_LABELS[m][0]), _(METHOD_LABELS[m][1])) for m in session["payment_method_types"]]
    consent = session["consent_collection"] or {}
    terms = (session["custom_text"].get("terms_of_service_acceptance") or {}).get("message")
    write = money(locale, session["currency"])
    return {
        "session": session, "lines": _display_lines(state, session), "money": write, "_": _,
        "lang": language(locale), "locale": locale, "methods": methods,
        "wallets": [(wallet, WALLET_LABELS[wallet]) for wallet in private.get("wallets", [])],
        "selected_method": form.get("method") or methods[0][0],
        "fixed_email": customer.get("email") or session["customer_email"], "form": form,
        "promo_allowed": bool(session["allow_promotion_codes"]), "promo_code": promo["code"] if promo else None,
        "discount_label": _discount_label(state, private, _, write), "terms_required": consent.get("terms_of_service") == "required",
        "terms_text": custom_text_html(terms or _("I agree to the Terms of Service.")),
        "collect_country": session["automatic_tax"]["status"] == "requires_location_inputs"
        or "klarna" in session["payment_method_types"],
    }


def _display_lines(state: SandboxState, session: dict[str, Any]) -> list[dict[str, Any]]:
    lines = []
    for line, priced in zip(state.private[session["id"]]["lines"], priced_lines(state, session)):
        lines.append({"name": line["name"], "description": line["description"], "quantity": line["quantity"],
                      "amount": priced.subtotal,
                      "inclusive_tax": any(s.rate.get("inclusive") for s in priced.taxes)})
    return lines


def _discount_label(state: SandboxState, private: dict[str, Any], _: Any, write: Any) -> str | None:
    coupon = state.get(private.get("coupon_id"), "coupon")
    if coupon is None:
        return None
    if coupon["percent_off"] is not None:
        return _("%(percent)s%% off", percent=f"{coupon['percent_off']:g}")
    return coupon["name"] or _("Discount of %(amount)s", amount=write(coupon["amount_off"] or 0))


@bp.get("/c/complete/<session_id>")
def complete_page(session_id: str) -> Any:
    """Shown after paying when the session has no ``success_url``."""
    session = _state().get(session_id, "checkout.session")
    if session is None:
        return _message("Not found", "This checkout session does not exist.", 404, locale=_browser_locale())
    locale = _session_locale(session)
    status = translator(locale)("Payment status: %(status)s.", status=session["payment_status"])
    return _message("Thank you", status, locale=locale)


# -- invoices, credit notes and receipts ------------------------------------------------------------


def _rates(state: SandboxState, documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    ids = {t["tax_rate_details"]["tax_rate"] for d in documents for t in d["total_taxes"] or []}
    return {rate_id: state.get(rate_id) for rate_id in ids if state.get(rate_id)}


def _finalized_invoice(state: SandboxState, invoice_id: str) -> dict[str, Any] | None:
    invoice = state.get(invoice_id, "invoice")
    return invoice if invoice is not None and invoice["number"] else None


def _received(state: SandboxState, invoice_id: str) -> list[dict[str, Any]]:
    """The payments received or awaited on an invoice (its default payment aside), oldest first."""
    payments = [p for p in state.all("invoice_payment") if p["invoice"] == invoice_id and not p["is_default"]]
    return [state.render(p) for p in reversed(payments)]


def tax_rows(invoice: dict[str, Any], rates: dict[str, dict[str, Any]],
             _: Any = None) -> list[tuple[str, int]]:
    """One row per tax rate: ``("TVA 20 % (included)", 5000)``, the rate's display name as Stripe prints it."""
    _ = _ or translator("en")
    rows = []
    for tax in invoice["total_taxes"] or []:
        rate = rates.get(tax["tax_rate_details"]["tax_rate"]) or {}
        name = rate.get("display_name") or "Tax"
        percentage = f" {rate['percentage']:g} %" if rate.get("percentage") is not None else ""
        included = f" ({_('included')})" if tax["tax_behavior"] == "inclusive" else ""
        rows.append((f"{name}{percentage}{included}", tax["amount"]))
    return rows


def _seller(state: SandboxState) -> pdf.Seller:
    details = connect.public_details(state)
    return pdf.Seller(details.name, details.address)


def _wording(state: SandboxState, invoice: dict[str, Any]) -> pdf.Wording:
    """The language of the invoice's customer (its ``preferred_locales``), the invoice's currency."""
    return pdf.Wording.of(document_locale(state.get(invoice["customer"], "customer")), invoice["currency"])


@bp.get("/files/invoices/<invoice_id>.pdf")
def invoice_file(invoice_id: str) -> Any:
    """The invoice PDF linked from ``invoice_pdf``."""
    state = _state()
    with state.lock:
        invoice = _finalized_invoice(state, invoice_id)
        if invoice is None:
            return _message("Not found", "This invoice does not exist.", 404, locale=_browser_locale())
        body = pdf.invoice_pdf(state.render(invoice), _rates(state, [invoice]), _received(state, invoice_id),
                               seller=_seller(state), wording=_wording(state, invoice))
    return _pdf_response(body, f"{invoice['number']}.pdf")


@bp.get("/files/credit_notes/<note_id>.pdf")
def credit_note_file(note_id: str) -> Any:
    """The credit note PDF linked from ``pdf``."""
    state = _state()
    with state.lock:
        note = state.get(note_id, "credit_note")
        if note is None:
            return _message("Not found", "This credit note does not exist.", 404)
        invoice = state.require(note["invoice"], "invoice")
        body = pdf.credit_note_pdf(state.render(note), state.render(invoice), _rates(state, [note, invoice]),
                                   seller=_seller(state), wording=_wording(state, invoice))
    return _pdf_response(body, f"{note['number']}.pdf")


def _pdf_response(body: bytes, filename: str) -> Response:
    response = Response(body, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


@bp.get("/i/<invoice_id>")
def invoice_page(invoice_id: str) -> Any:
    """The hosted invoice page linked from ``hosted_invoice_url``: what its PDF says (the account's details, the
    invoice's custom fields, lines, taxes, what was paid and what remains, its footer), in the customer's
    language; while it is open, a form that pays what remains (see ``invoice_paying``)."""
    return _render_invoice(_state(), invoice_id, {}, status=200)


@bp.post("/i/<invoice_id>")
def pay_invoice_page(invoice_id: str) -> Any:
    """Pay what remains of the invoice; back to its page once paid (or submitted, for a bank debit)."""
    state = _state()
    if _finalized_invoice(state, invoice_id) is None:
        return _message("Not found", "This invoice does not exist.", 404, locale=_browser_locale())
    try:
        pay_invoice(state, invoice_id, attempt_from_form(request.form))
    except StripeError as error:
        return _render_invoice(state, invoice_id, request.form, status=402 if error.type == "card_error" else 400,
                               error=error.message)
    return redirect(request.path, code=303)


def _render_invoice(state: SandboxState, invoice_id: str, form: Any, *, status: int, error: str | None = None) -> Any:
    with state.lock:
        invoice = _finalized_invoice(state, invoice_id)
        if invoice is None:
            return _message("Not found", "This invoice does not exist.", 404, locale=_browser_locale())
        context = _invoice_context(state, invoice)
    _ = context["_"]
    return render_template("invoice.html", form=form, error=_(error) if error else None, **context), status


def _invoice_context(state: SandboxState, invoice: dict[str, Any]) -> dict[str, Any]:
    """What ``invoice.html`` shows, in the language of the invoice's customer (else the browser's)."""
    invoice_id = invoice["id"]
    notes = [n for n in state.all("credit_note") if n["invoice"] == invoice_id]
    customer = state.get(invoice["customer"], "customer") or {}
    locale = (customer.get("preferred_locales") or [None])[0] or _browser_locale()
    wording = pdf.Wording.of(locale, invoice["currency"])
    rates = _rates(state, [invoice])
    exclude = (invoice.get("rendering") or {}).get("amount_tax_display") == "exclude_tax"
    lines = [{"description": line["description"], "quantity": line["quantity"],
              "amount": pdf.excluding_tax(line["amount"], line, rates) if exclude else line["amount"]}
             for line in invoice["lines"]["data"]]
    intent = payable_intent(state, invoice)
    methods = [(m, wording._(METHOD_LABELS[m][0]), wording._(METHOD_LABELS[m][1]))
               for m in (intent["payment_method_types"] if intent else [])]
    return {"invoice": state.render(invoice), "credit_notes": [state.render(n) for n in reversed(notes)],
            "payments": _received(state, invoice_id), "taxes": tax_rows(invoice, rates, wording._),
            "lines": lines, "exclude_tax": exclude, "seller": _seller(state), "money": wording.money,
            "date": wording.date, "_": wording._, "labelled": wording.labelled, "lang": language(locale),
            "methods": methods, "processing": processing_intent(state, invoice) is not None}


@bp.get("/receipts/<charge_id>")
def receipt_page(charge_id: str) -> Any:
    """The receipt linked from a charge's ``receipt_url``, in the browser's language."""
    state = _state()
    charge = state.get(charge_id, "charge")
    locale = _browser_locale()
    if charge is None:
        return _message("Not found", "This receipt does not exist.", 404, locale=locale)
    _ = translator(locale)
    write = money(locale, charge["currency"])
    text = _("Payment %(charge)s: %(amount)s, status %(status)s, refunded %(refunded)s.", charge=charge_id,
             amount=write(charge["amount"]), status=_(charge["status"]), refunded=write(charge["amount_refunded"]))
    return _message("Receipt", text, locale=locale)
