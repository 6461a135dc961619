"""Invoice and credit note PDFs, hosted invoice and receipt pages, the standalone command."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import requests

from lms_stripe_plugin.sandbox.pdf import TextLine, build_pdf

REPO = Path(__file__).resolve().parents[2]


def assert_valid_pdf(body: bytes) -> None:
    """Header, trailer, and an xref table whose offsets point at the objects it lists."""
    assert body.startswith(b"%PDF-1.")
    assert body.rstrip().endswith(b"%%EOF")
    xref_at = int(re.search(rb"startxref\s+(\d+)\s+%%EOF", body).group(1))
    assert body[xref_at:xref_at + 4] == b"xref"
    count = int(re.match(rb"xref\s+0 (\d+)", body[xref_at:]).group(1))
    entries = re.findall(rb"(\d{10}) 00000 n ", body[xref_at:])
    assert len(entries) == count - 1
    for number, offset in enumerate(entries, start=1):
        assert body[int(offset):].startswith(b"%d 0 obj" % number)
    length = int(re.search(rb"/Length (\d+)", body).group(1))
    stream_start = body.index(b"stream\n") + len(b"stream\n")
    assert body[stream_start + length:].startswith(b"\nendstream")


def test_invoice_pdf_is_a_valid_pdf_with_the_invoice_details(paid_session):
    invoice = paid_session().invoice
    response = requests.get(invoice.invoice_pdf, timeout=10)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/pdf"
    body = response.content
    assert_valid_pdf(body)
    for text in (b"SBX-0001", b"learner@example.com", b"Python for Data Science", b"VAT \\(19 %\\)", b"EUR",
                 b"\x80100.00", b"\x8019.00", b"\x80119.00", b"Net", b"Gross total"):
        assert text in body, text


def test_credit_note_pdf(paid_session, client):
    invoice = paid_session().invoice
    note = client.v1.credit_notes.create(params={"invoice": invoice.id, "refund_amount": 2380, "memo": "Partial (refund)"})
    body = requests.get(note.pdf, timeout=10).content

    assert_valid_pdf(body)
    for text in (b"Credit note", b"SBX-0001-CN-01", b"SBX-0001", b"\x8023.80", b"Partial \\(refund\\)"):
        assert text in body, text


def test_pdf_builder_escapes_text_and_stays_valid():
    body = build_pdf([TextLine(50, 800, "a (tricky) \\ line — with ünïcode and €"), TextLine(50, 780, "日本")], "t")
    assert_valid_pdf(body)
    assert b"a \\(tricky\\) \\\\ line \x97 with \xfcn\xefcode and \x80" in body


def test_hosted_invoice_page_links_the_pdf(paid_session, client):
    invoice = paid_session().invoice
    client.v1.credit_notes.create(params={"invoice": invoice.id, "refund_amount": 1000})
    page = requests.get(invoice.hosted_invoice_url, timeout=10)

    assert page.status_code == 200
    assert 'id="invoice-number">SBX-0001<' in page.text
    assert f'id="download-pdf" href="{invoice.invoice_pdf}"' in page.text
    assert "SBX-0001-CN-01" in page.text


def test_receipt_page_and_missing_documents(paid_session, sandbox):
    charge = paid_session().payment_intent.latest_charge
    receipt = requests.get(charge.receipt_url, timeout=10)
    assert receipt.status_code == 200 and "€119.00" in receipt.text
    assert requests.get(f"{sandbox.url}/files/invoices/in_missing.pdf", timeout=10).status_code == 404
    assert requests.get(f"{sandbox.url}/files/credit_notes/cn_missing.pdf", timeout=10).status_code == 404
    assert requests.get(f"{sandbox.url}/c/pay/cs_test_missing", timeout=10).status_code == 404


def test_public_url_is_used_for_links(session_params, make_client):
    from lms_stripe_plugin.sandbox import SandboxServer

    with SandboxServer(deliver_async=False, public_url="https://stripe.sandbox.test/") as server:
        params = session_params(consent_collection=None)
        params["line_items"][0].pop("tax_rates")
        session = make_client(server.url).v1.checkout.sessions.create(params=params)
    assert session.url == f"https://stripe.sandbox.test/c/pay/{session.id}"


def test_standalone_command_serves_the_api():
    process = subprocess.Popen(
        [sys.executable, "-m", "lms_stripe_plugin.sandbox", "--port", "0", "--webhook-secret", "whsec_cli"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        first_line = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", first_line).group(0)
        response = requests.post(f"{url}/v1/customers", data={"email": "cli@example.com"},
                                 headers={"Authorization": "Bearer sk_test_cli"}, timeout=10)
        assert response.status_code == 200 and response.json()["email"] == "cli@example.com"
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()
