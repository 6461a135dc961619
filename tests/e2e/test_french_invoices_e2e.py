"""Invoices a French accountant accepts, end to end through the real SDK and the sandbox: the seller's identity
on the invoice PDF, in French for a French learner; a partial refund's credit note for the part, recorded with
its number and PDF; a refund made in the Dashboard credited too; the receipt after paying."""
import re

import pytest
import requests
import stripe
from sqlalchemy import select

from lms_stripe_plugin.accounts import settings as payment_settings
from lms_stripe_plugin.core.models import CreditNote, Customer, Invoice, Refund

from ..conftest import as_user
from .conftest import csrf, pay, start_checkout

IDENTITY = {"seller_legal_name": "École du Code SAS", "seller_address": "12 rue des Écoles\n75005 Paris",
            "seller_siret": "73282932000074", "seller_vat_number": "FR44732829320",
            "seller_legal_form": "SAS au capital de 10 000 €", "business_buyers": True}


@pytest.fixture
def school(stripe_app, db, sandbox):
    payment_settings.save(db.session, IDENTITY, actor_id="adm")
    db.session.commit()
    requests.post(f"{sandbox.url}/_sandbox/account", timeout=5, json={
        "business_name": "École du Code", "business_address": ["12 rue des Écoles", "75005 Paris"]})
    yield stripe_app
    requests.post(f"{sandbox.url}/_sandbox/account", timeout=5,
                  json={"business_name": "Stripe Sandbox", "business_address": []})


@pytest.fixture
def make_stripe_client(sandbox):
    """A StripeClient on the sandbox's account, as someone using the Stripe Dashboard acts on it."""
    return lambda: stripe.StripeClient("sk_test_sandbox_e2e", base_addresses={"api": sandbox.url})


def _bought(client, db, sandbox, host, *, user="u1", course="c1", locale="fr", **payment):
    host.locale = locale
    _response, session_id = start_checkout(client, user, course)
    assert pay(sandbox, session_id, **payment).status_code == 200
    db.session.expire_all()
    invoice = db.session.scalar(select(Invoice).where(Invoice.user_id == user).order_by(Invoice.id.desc()))
    return invoice, session_id


def _pdf(url: str) -> bytes:
    response = requests.get(url, timeout=10)
    assert response.status_code == 200 and response.content.startswith(b"%PDF-")
    return response.content


def test_a_french_learners_invoice_pdf_names_the_seller_in_french(school, client, db, sandbox, host):
    invoice, _session_id = _bought(client, db, sandbox, host)

    assert db.session.execute(select(Customer.locale)).scalar() == "fr"
    stripe_invoice = sandbox.state.get(invoice.stripe_invoice_id)
    assert sandbox.state.get(stripe_invoice["customer"])["preferred_locales"] == ["fr"]
    pdf_url = client.get(f"/payments/invoices/{invoice.id}/pdf", headers=as_user("u1")).headers["Location"]
    body = _pdf(pdf_url)
    for text in (b"Facture", b"\xc9cole du Code", b"12 rue des \xc9coles",  # the account's public details
                 invoice.number.encode(), b"Factur\xe9 \xe0 : L\xe9a",
                 b"Vendeur : \xc9cole du Code SAS", b"SIRET : 732 829 320 00074",
                 b"N\xb0 TVA intracommunautaire : FR44732829320", b"Forme juridique : SAS au capital de 10 000 \x80",
                 b"Montant HT", b"41,58\xa0\x80", b"TVA \\(20 %\\) incluse", b"8,32\xa0\x80", b"Total TTC",
                 b"49,90\xa0\x80", b"\xc9cole du Code SAS \x96 12 rue des \xc9coles, 75005 Paris",
                 b"Retard de paiement : p\xe9nalit\xe9s", b"indemnit\xe9 forfaitaire de 40,00\xa0\x80"):
        assert text in body, text
    hosted = requests.get(stripe_invoice["hosted_invoice_url"], timeout=10).text
    assert '<html lang="fr">' in hosted and "<dt>SIRET</dt><dd>732 829 320 00074</dd>" in hosted


def test_an_english_learners_invoice_speaks_english(school, client, db, sandbox, host):
    invoice, _session_id = _bought(client, db, sandbox, host, locale="en")
    body = _pdf(sandbox.state.get(invoice.stripe_invoice_id)["invoice_pdf"])
    assert b"Seller: \xc9cole du Code SAS" in body and b"VAT number: FR44732829320" in body
    assert b"Late payment: penalties at three times the French legal interest rate" in body


def test_a_partial_refund_issues_a_credit_note_for_the_part(school, client, db, sandbox, host):
    invoice, _session_id = _bought(client, db, sandbox, host)
    host.locale = "en"  # the administrator's language; the credit note speaks the learner's
    url = f"/payments/admin/invoices/{invoice.id}/refund"
    response = client.post(url, data={"csrf_token": csrf(client, "adm", url), "amount": "12.50",
                                      "reason": "Two sessions missed"}, headers=as_user("adm"))
    assert response.status_code == 302
    sandbox.state.wait_for_deliveries(10)

    [stripe_note] = sandbox.state.all("credit_note")
    assert (stripe_note["invoice"], stripe_note["total"], stripe_note["memo"]) == (
        invoice.stripe_invoice_id, 1250, "Two sessions missed")
    assert [r["amount"] for r in sandbox.state.all("refund")] == [1250]
    db.session.expire_all()
    [note] = db.session.scalars(select(CreditNote)).all()
    assert (note.stripe_credit_note_id, note.number, note.pdf_url, note.amount, note.status) == (
        stripe_note["id"], stripe_note["number"], stripe_note["pdf"], 1250, "issued")
    refund = db.session.scalar(select(Refund))
    assert (refund.status, refund.stripe_credit_note_id) == ("succeeded", stripe_note["id"])
    invoice = db.session.get(Invoice, invoice.id)
    assert (invoice.status, invoice.amount_refunded) == ("partially_refunded", 1250)

    body = _pdf(note.pdf_url)
    for text in (b"Avoir", note.number.encode(), b"Num\xe9ro de facture : " + invoice.number.encode(),
                 b"\xc9cole du Code", b"Note : Two sessions missed", b"12,50\xa0\x80",
                 b"Rembours\xe9 sur le moyen de paiement d\x92origine : 12,50\xa0\x80"):
        assert text in body, text
    page = client.get(f"/payments/admin/invoices/{invoice.id}", headers=as_user("adm")).get_data(as_text=True)
    assert note.number in page and f'href="{note.pdf_url}"' in page
    mine = client.get("/payments/invoices", headers=as_user("u1")).get_data(as_text=True)
    assert f'href="{note.pdf_url}"' in mine


def test_a_refund_made_in_the_dashboard_gets_its_credit_note(school, client, db, sandbox, host):
    invoice, _session_id = _bought(client, db, sandbox, host)
    charge = sandbox.state.all("charge")[0]["id"]
    requests.post(f"{sandbox.url}/_sandbox/charges/{charge}/refund", json={"amount": 1000}, timeout=5)
    sandbox.state.wait_for_deliveries(10)

    [stripe_refund] = sandbox.state.all("refund")
    [stripe_note] = sandbox.state.all("credit_note")
    assert [link["refund"] for link in stripe_note["refunds"]] == [stripe_refund["id"]]
    assert stripe_note["total"] == 1000 and len(sandbox.state.all("refund")) == 1  # linked, not refunded twice
    db.session.expire_all()
    refund = db.session.scalar(select(Refund))
    assert (refund.origin, refund.status, refund.stripe_credit_note_id) == ("dashboard", "succeeded",
                                                                            stripe_note["id"])
    assert db.session.scalar(select(CreditNote.number)) == stripe_note["number"]
    assert db.session.get(Invoice, invoice.id).amount_refunded == 1000


def test_a_credit_note_made_with_its_refund_in_the_dashboard_is_recorded_once(school, client, db, sandbox, host,
                                                                             make_stripe_client):
    invoice, _session_id = _bought(client, db, sandbox, host)
    made = make_stripe_client().v1.credit_notes.create(params={  # someone in the Dashboard
        "invoice": invoice.stripe_invoice_id, "amount": 2000, "refund_amount": 2000, "reason": "order_change"})
    sandbox.state.wait_for_deliveries(10)

    assert len(sandbox.state.all("credit_note")) == 1  # the plugin found it, and issued none
    db.session.expire_all()
    assert [(n.stripe_credit_note_id, n.amount) for n in db.session.scalars(select(CreditNote))] == [(made.id, 2000)]
    assert db.session.scalar(select(Refund.stripe_credit_note_id)) == made.id
    assert db.session.get(Invoice, invoice.id).amount_refunded == 2000


def test_the_receipt_after_paying_with_a_voucher(school, client, db, sandbox, host):
    host.locale = "en"
    invoice, session_id = _bought(client, db, sandbox, host, locale="en", promotion_code="WELCOME10")
    shown = client.get(f"/payments/checkout/success?session_id={session_id}", headers=as_user("u1"))
    body = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", shown.get_data(as_text=True)))
    assert f"Price €49.90 Discount -€4.99 Amount paid €44.91 incl. VAT Invoice {invoice.number} · PDF" in body
    assert invoice.gross == 4491
