"""Small single-page PDFs for invoices and credit notes, written by hand (Helvetica, WinAnsi), in the language
of the customer's invoices (``locales.document_locale``)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .amounts import format_amount, line_taxes
from .locales import dates, labelled, language, money, translator

_PAGE_WIDTH, _PAGE_HEIGHT = 595, 842  # A4 in points


@dataclass(frozen=True)
class TextLine:
    """One run of text at a position on the page."""

    x: float
    y: float
    text: str
    size: float = 10
    bold: bool = False


def _escape(text: str) -> bytes:
    # WinAnsi covers the euro sign and Western European letters; anything else becomes "?".
    # Babel writes French amounts with a narrow no-break space (U+202F), which WinAnsi lacks: a no-break space.
    raw = text.replace("\u202f", "\u00a0").encode("cp1252", errors="replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _content(lines: list[TextLine]) -> bytes:
    parts = [b"BT"]
    for line in lines:
        font = b"/F2" if line.bold else b"/F1"
        parts.append(font + b" %g Tf 1 0 0 1 %g %g Tm (" % (line.size, line.x, line.y) + _escape(line.text) + b") Tj")
    parts.append(b"ET")
    return b"\n".join(parts)


def build_pdf(lines: list[TextLine], title: str) -> bytes:
    """A valid one-page PDF 1.4 document showing ``lines``."""
    stream = _content(lines)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources << /Font << /F1 4 0 R /F2 5 0 R >> >> "
        b"/Contents 6 0 R >>" % (_PAGE_WIDTH, _PAGE_HEIGHT),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Title (" + _escape(title) + b") /Producer (Stripe sandbox) >>",
    ]
    return _assemble(objects)


def _assemble(objects: list[bytes]) -> bytes:
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, len(objects), xref_at)
    return bytes(out)


class _Page:
    """Writes lines top-down with a running cursor."""

    def __init__(self) -> None:
        self.lines: list[TextLine] = []
        self.y = _PAGE_HEIGHT - 60

    def text(self, text: str, x: float = 50, size: float = 10, bold: bool = False, step: float = 16) -> None:
        self.lines.append(TextLine(x, self.y, text, size, bold))
        self.y -= step

    def row(self, cells: list[tuple[float, str]], bold: bool = False) -> None:
        for x, text in cells:
            self.lines.append(TextLine(x, self.y, text, 10, bold))
        self.y -= 16

    def gap(self, points: float = 10) -> None:
        self.y -= points


def date_text(timestamp: int | None) -> str:
    """A date as ``2026-05-04`` (UTC), or ``-``."""
    return dates("en")(timestamp)


@dataclass(frozen=True)
class Seller:
    """The account's public business details (Dashboard, Settings, Business), printed at the top of its documents."""

    name: str
    address: tuple[str, ...] = ()


@dataclass(frozen=True)
class Wording:
    """How one document is written: its language's labels, amounts in its currency, dates, ``label: value``."""

    _: Callable[..., str]
    money: Callable[[int], str]
    date: Callable[[int | None], str]
    labelled: Callable[[str, str], str]

    @classmethod
    def of(cls, locale: str, currency: str) -> "Wording":
        if language(locale) == "en":
            return cls(translator(locale), lambda amount: format_amount(amount, currency), dates(locale),
                       labelled(locale))
        return cls(translator(locale), money(locale, currency), dates(locale), labelled(locale))


def tax_label(taxes: list[dict[str, Any]], rates: dict[str, dict[str, Any]], _: Callable[..., str]) -> str:
    """``VAT (20 %)``: the tax rates' display name, as Stripe prints it, and their percentages."""
    found = [rates[t["tax_rate_details"]["tax_rate"]] for t in taxes if t["tax_rate_details"]["tax_rate"] in rates]
    name = found[0].get("display_name") if found and found[0].get("display_name") else _("VAT")
    percentages = ", ".join(f"{p:g} %" for p in sorted({rate["percentage"] for rate in found}))
    return _("%(name)s (%(rates)s)", name=name, rates=percentages) if percentages else name


def excluding_tax(amount: int, line: dict[str, Any], rates: dict[str, dict[str, Any]]) -> int:
    """An amount of a line without the tax its inclusive rates contain (``rendering.amount_tax_display`` =
    ``exclude_tax``: "exclude all tax (inclusive and exclusive alike) from invoice PDF amounts")."""
    line_rates = [rates[t["tax_rate_details"]["tax_rate"]] for t in line.get("taxes") or []
                  if t["tax_rate_details"]["tax_rate"] in rates]
    return amount - sum(share.amount for share in line_taxes(amount, line_rates) if share.rate.get("inclusive"))


def _wrapped(page: _Page, text: str, *, size: float = 9, width: int = 100, bold: bool = False) -> None:
    """Lines of text cut to the page's width (a PDF does not wrap text); blank lines kept as gaps."""
    for paragraph in text.split("\n"):
        for part in textwrap.wrap(paragraph, width) or [""]:
            page.text(part, size=size, bold=bold, step=size + 3)


def _seller(page: _Page, seller: Seller) -> None:
    page.text(seller.name, bold=True, step=13)
    for line in seller.address:
        page.text(line, size=9, step=12)
    page.gap(8)


def invoice_pdf(invoice: dict[str, Any], rates: dict[str, dict[str, Any]],
                payments: list[dict[str, Any]] | None = None, *, seller: Seller | None = None,
                wording: Wording | None = None) -> bytes:
    """The PDF of a finalized invoice, as Stripe lays one out: the account's details, the invoice's number and
    dates, the buyer, its custom fields, lines and taxes (excluding tax when its ``rendering`` says so),
    payments and footer, in ``wording``'s language. ``rates`` maps tax rate ids to tax rates."""
    w = wording or Wording.of("en", invoice["currency"])
    _ = w._
    page = _Page()
    page.text(_("Stripe sandbox - test mode"), size=9, step=24)
    page.text(_("Invoice"), size=20, bold=True, step=30)
    _seller(page, seller or Seller(invoice["account_name"] or ""))
    page.text(w.labelled(_("Invoice number"), invoice["number"]))
    issued = invoice["effective_at"] or invoice["status_transitions"]["finalized_at"] or invoice["created"]
    page.text(w.labelled(_("Date of issue"), w.date(issued)))
    if invoice["due_date"]:
        page.text(w.labelled(_("Date due"), w.date(invoice["due_date"])))
    page.text(w.labelled(_("Date paid"), w.date(invoice["status_transitions"]["paid_at"])))
    _buyer(page, invoice, w)
    if invoice["description"]:
        _wrapped(page, invoice["description"], size=10)
    for field in invoice["custom_fields"] or []:
        _wrapped(page, w.labelled(field["name"], field["value"]), size=10)
    page.gap()
    exclude = ((invoice.get("rendering") or {}).get("amount_tax_display") == "exclude_tax")
    _line_table(page, invoice["lines"]["data"], rates, w, exclude=exclude)
    _totals(page, invoice, rates, w)
    if invoice["pre_payment_credit_notes_amount"]:
        page.row([(300, _("Credit notes")), (440, w.money(-invoice["pre_payment_credit_notes_amount"]))])
    page.row([(300, _("Amount paid")), (440, w.money(invoice["amount_paid"]))], bold=True)
    page.row([(300, _("Amount remaining")), (440, w.money(invoice["amount_remaining"]))], bold=True)
    _payments(page, payments or [], w)
    if invoice["footer"]:
        page.gap()
        _wrapped(page, invoice["footer"], size=8, width=115)
    return build_pdf(page.lines, _("Invoice %(number)s", number=invoice["number"]))


def _buyer(page: _Page, invoice: dict[str, Any], w: Wording) -> None:
    buyer = " ".join(part for part in (invoice["customer_name"], invoice["customer_email"]) if part)
    page.text(w.labelled(w._("Billed to"), buyer))
    address = invoice.get("customer_address") or {}
    lines = [address.get("line1"), address.get("line2"),
             " ".join(part for part in (address.get("postal_code"), address.get("city")) if part),
             address.get("country")]
    for line in filter(None, lines):
        page.text(line, x=70, size=9, step=12)


def _payments(page: _Page, payments: list[dict[str, Any]], w: Wording) -> None:
    if not payments:
        return
    page.gap()
    page.text(w._("Payments"), bold=True)
    for payment in payments:
        when = w.date(payment["status_transitions"]["paid_at"] or payment["created"])
        page.row([(50, when), (160, w._(payment["status"])),
                  (440, w.money(payment["amount_paid"] or payment["amount_requested"]))])


def _line_table(page: _Page, lines: list[dict[str, Any]], rates: dict[str, dict[str, Any]], w: Wording, *,
                exclude: bool = False) -> None:
    _ = w._
    page.row([(50, _("Description")), (330, _("Qty")), (370, _("VAT")),
              (440, _("Amount excl. tax") if exclude else _("Amount"))], bold=True)
    for line in lines:
        amount = excluding_tax(line["amount"], line, rates) if exclude else line["amount"]
        vat = ", ".join(f"{rates[t['tax_rate_details']['tax_rate']]['percentage']:g} %" for t in line["taxes"]
                        if t["tax_rate_details"]["tax_rate"] in rates)
        page.row([(50, (line["description"] or "")[:60]), (330, str(line["quantity"] or 1)), (370, vat),
                  (440, w.money(amount))])
        discounts = [d["amount"] for d in line.get("discount_amounts") or []]
        if exclude and discounts:
            # The discount without tax: what takes the line's amount without tax down to its net after the
            # discount (its taxes are those of the discounted amount), so that the lines add up to the net.
            contained = sum(t["amount"] for t in line["taxes"] if t["tax_behavior"] == "inclusive")
            discounts = [amount - (line["amount"] - sum(discounts) - contained)]
        for off in discounts:
            page.row([(60, _("Discount")), (440, w.money(-off))])
    page.gap()


def _totals(page: _Page, document: dict[str, Any], rates: dict[str, dict[str, Any]], w: Wording) -> None:
    _ = w._
    page.row([(300, _("Net")), (440, w.money(document["total_excluding_tax"]))])
    taxes = document["total_taxes"] or []
    if not taxes:
        page.row([(300, tax_label([], rates, _)), (440, w.money(0))])
    for tax in taxes:
        label = tax_label([tax], rates, _)
        if tax["tax_behavior"] == "inclusive":
            label = _("%(tax)s incl.", tax=label)
        page.row([(300, label), (440, w.money(tax["amount"]))])
    page.row([(300, _("Gross total")), (440, w.money(document["total"]))], bold=True)
    page.row([(300, _("Currency")), (440, document["currency"].upper())])
    page.gap()


def credit_note_pdf(note: dict[str, Any], invoice: dict[str, Any], rates: dict[str, dict[str, Any]], *,
                    seller: Seller | None = None, wording: Wording | None = None) -> bytes:
    """The PDF of an issued credit note, in the language of its invoice's customer."""
    w = wording or Wording.of("en", note["currency"])
    _ = w._
    page = _Page()
    page.text(_("Stripe sandbox - test mode"), size=9, step=24)
    page.text(_("Credit note"), size=20, bold=True, step=30)
    _seller(page, seller or Seller(invoice["account_name"] or ""))
    page.text(w.labelled(_("Credit note number"), note["number"]))
    page.text(w.labelled(_("Invoice number"), invoice["number"]))
    page.text(w.labelled(_("Date of issue"), w.date(note["created"])))
    customer = " ".join(part for part in (invoice["customer_name"], invoice["customer_email"]) if part)
    page.text(w.labelled(_("Customer"), customer))
    if note["reason"]:
        page.text(w.labelled(_("Reason"), _(note["reason"].replace("_", " "))))
    if note["memo"]:
        _wrapped(page, w.labelled(_("Memo"), note["memo"]), size=10)
    page.gap()
    exclude = ((invoice.get("rendering") or {}).get("amount_tax_display") == "exclude_tax")
    _line_table(page, note["lines"]["data"], rates, w, exclude=exclude)
    _totals(page, note, rates, w)
    refunded = sum(r["amount_refunded"] for r in note["refunds"])
    page.text(_("Refunded to the original payment method: %(amount)s", amount=w.money(refunded)), bold=True)
    return build_pdf(page.lines, f"{_('Credit note')} {note['number']}")
