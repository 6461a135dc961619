"""Small single-page PDFs for invoices and credit notes, written by hand (Helvetica, WinAnsi)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from .amounts import format_amount

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
    raw = text.encode("cp1252", errors="replace")
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
    return _date(timestamp)


def _date(timestamp: int | None) -> str:
    if not timestamp:
        return "-"
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d")


def _vat_label(taxes: list[dict[str, Any]], rates: dict[str, dict[str, Any]]) -> str:
    percentages = sorted({rates[t["tax_rate_details"]["tax_rate"]]["percentage"] for t in taxes
                          if t["tax_rate_details"]["tax_rate"] in rates})
    names = ", ".join(f"{p:g} %" for p in percentages)
    return f"VAT ({names})" if names else "VAT"


def invoice_pdf(invoice: dict[str, Any], rates: dict[str, dict[str, Any]],
                payments: list[dict[str, Any]] | None = None) -> bytes:
    """The PDF of a finalized invoice; ``rates`` maps tax rate ids to tax rates, ``payments`` are its received ones."""
    currency = invoice["currency"]
    page = _Page()
    page.text("Stripe sandbox - test mode", size=9, step=24)
    page.text("Invoice", size=20, bold=True, step=30)
    page.text(f"Invoice number: {invoice['number']}")
    page.text(f"Date of issue: {_date(invoice['effective_at'] or invoice['status_transitions']['finalized_at'] or invoice['created'])}")
    if invoice["due_date"]:
        page.text(f"Date due: {_date(invoice['due_date'])}")
    page.text(f"Date paid: {_date(invoice['status_transitions']['paid_at'])}")
    page.text(f"Billed to: {invoice['customer_name'] or ''} {invoice['customer_email'] or ''}".strip())
    if invoice["description"]:
        page.text(invoice["description"])
    for field in invoice["custom_fields"] or []:
        page.text(f"{field['name']}: {field['value']}")
    page.gap()
    _line_table(page, invoice["lines"]["data"], currency)
    _totals(page, invoice, rates, currency)
    if invoice["pre_payment_credit_notes_amount"]:
        page.row([(300, "Credit notes"), (420, format_amount(-invoice["pre_payment_credit_notes_amount"], currency))])
    page.row([(300, "Amount paid"), (420, format_amount(invoice["amount_paid"], currency))], bold=True)
    page.row([(300, "Amount remaining"), (420, format_amount(invoice["amount_remaining"], currency))], bold=True)
    if payments:
        page.gap()
        page.text("Payments", bold=True)
        for payment in payments:
            when = _date(payment["status_transitions"]["paid_at"] or payment["created"])
            page.row([(50, when), (160, payment["status"]),
                      (420, format_amount(payment["amount_paid"] or payment["amount_requested"], currency))])
    if invoice["footer"]:
        page.gap()
        page.text(invoice["footer"], size=9)
    return build_pdf(page.lines, f"Invoice {invoice['number']}")


def _line_table(page: _Page, lines: list[dict[str, Any]], currency: str) -> None:
    page.row([(50, "Description"), (360, "Qty"), (420, "Amount")], bold=True)
    for line in lines:
        page.row([(50, line["description"] or ""), (360, str(line["quantity"] or 1)),
                  (420, format_amount(line["amount"], currency))])
        for discount in line.get("discount_amounts") or []:
            page.row([(60, "Discount"), (420, format_amount(-discount["amount"], currency))])
    page.gap()


def _totals(page: _Page, document: dict[str, Any], rates: dict[str, dict[str, Any]], currency: str) -> None:
    page.row([(300, "Net"), (420, format_amount(document["total_excluding_tax"], currency))])
    taxes = document["total_taxes"] or []
    if not taxes:
        page.row([(300, _vat_label([], rates)), (420, format_amount(0, currency))])
    for tax in taxes:
        included = " incl." if tax["tax_behavior"] == "inclusive" else ""
        page.row([(300, _vat_label([tax], rates) + included), (420, format_amount(tax["amount"], currency))])
    page.row([(300, "Gross total"), (420, format_amount(document["total"], currency))], bold=True)
    page.row([(300, "Currency"), (420, currency.upper())])
    page.gap()


def credit_note_pdf(note: dict[str, Any], invoice: dict[str, Any], rates: dict[str, dict[str, Any]]) -> bytes:
    """The PDF of an issued credit note."""
    currency = note["currency"]
    page = _Page()
    page.text("Stripe sandbox - test mode", size=9, step=24)
    page.text("Credit note", size=20, bold=True, step=30)
    page.text(f"Credit note number: {note['number']}")
    page.text(f"Invoice number: {invoice['number']}")
    page.text(f"Date of issue: {_date(note['created'])}")
    page.text(f"Customer: {invoice['customer_name'] or ''} {invoice['customer_email'] or ''}".strip())
    if note["reason"]:
        page.text(f"Reason: {note['reason'].replace('_', ' ')}")
    if note["memo"]:
        page.text(f"Memo: {note['memo']}")
    page.gap()
    _line_table(page, note["lines"]["data"], currency)
    _totals(page, note, rates, currency)
    refunded = sum(r["amount_refunded"] for r in note["refunds"])
    page.text(f"Refunded to the original payment method: {format_amount(refunded, currency)}", bold=True)
    return build_pdf(page.lines, f"Credit note {note['number']}")
