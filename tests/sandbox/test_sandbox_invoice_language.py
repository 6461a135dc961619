"""Invoices as Stripe writes them for a French accountant: the account's public business details at the top,
the invoice's custom fields and footer, lines excluding tax when its rendering says so, the buyer's address,
all in the customer's language (its preferred_locales); and Stripe's limits on what Checkout's
invoice_creation[invoice_data] takes (at most 4 custom fields, a name of 40 characters, a value of 140)."""

from __future__ import annotations

import pytest
import requests
import stripe

FIELDS = [{"name": "Vendeur", "value": "École du Code SAS"}, {"name": "SIRET", "value": "732 829 320 00074"},
          {"name": "N° TVA intracommunautaire", "value": "FR44732829320"},
          {"name": "Forme juridique", "value": "SAS au capital de 10 000 €"}]
FOOTER = ("École du Code SAS – 12 rue des Écoles, 75005 Paris\n"
          "Retard de paiement : pénalités au taux de trois fois le taux d’intérêt légal, exigibles dès le lendemain de "
          "l’échéance sans rappel préalable (art. L441-10 du Code de commerce). Pas d’escompte pour paiement anticipé.")


@pytest.fixture
def french_school(control):
    response = control("/account", {"business_name": "École du Code",
                                    "business_address": ["12 rue des Écoles", "75005 Paris"]})
    assert response.status_code == 200, response.text


def _invoice_data(**changes):
    return {"enabled": True, "invoice_data": {"description": "Python", "custom_fields": FIELDS, "footer": FOOTER,
                                              "rendering_options": {"amount_tax_display": "exclude_tax"}, **changes}}


def _customer(client, locale):
    return client.v1.customers.create(params={
        "email": "lea@example.com", "name": "Léa Martin", "preferred_locales": [locale],
        "address": {"line1": "3 place du Marché", "postal_code": "69001", "city": "Lyon", "country": "FR"}})


def _paid_invoice(client, paid_session, locale):
    customer = _customer(client, locale)
    session = paid_session(customer=customer.id, customer_email=None, customer_creation=None,
                           invoice_creation=_invoice_data())
    return session.invoice


def test_checkouts_invoice_data_becomes_the_invoice(client, paid_session, french_school):
    invoice = _paid_invoice(client, paid_session, "fr")
    assert [(f.name, f.value) for f in invoice.custom_fields] == [(f["name"], f["value"]) for f in FIELDS]
    assert invoice.footer == FOOTER and invoice.account_name == "École du Code"
    assert invoice.rendering.amount_tax_display == "exclude_tax"


def test_a_french_customers_invoice_pdf_is_in_french_with_the_sellers_identity(client, paid_session, french_school):
    invoice = _paid_invoice(client, paid_session, "fr")
    body = requests.get(invoice.invoice_pdf, timeout=10).content
    for text in (b"Facture", b"Num\xe9ro de facture : SBX-0001", b"\xc9cole du Code", b"12 rue des \xc9coles",
                 b"Factur\xe9 \xe0 : L\xe9a Martin lea@example.com", b"3 place du March\xe9", b"69001 Lyon",
                 b"SIRET : 732 829 320 00074", b"N\xb0 TVA intracommunautaire : FR44732829320",
                 b"Forme juridique : SAS au capital de 10 000 \x80", b"Montant HT",
                 b"100,00\xa0\x80",  # the line, excluding its 19 % VAT (119,00 TTC)
                 b"Total HT", b"VAT \\(19 %\\) incluse", b"19,00\xa0\x80", b"Total TTC", b"119,00\xa0\x80",
                 b"Retard de paiement : p\xe9nalit\xe9s", b"art. L441-10 du Code de commerce"):
        assert text in body, text
    assert b"\xa0\x80119,00" not in body and b"?" not in body.split(b"stream")[1].split(b"endstream")[0]


def test_an_english_customers_invoice_pdf_is_in_english(client, paid_session, french_school):
    invoice = _paid_invoice(client, paid_session, "en")
    body = requests.get(invoice.invoice_pdf, timeout=10).content
    for text in (b"Invoice number: SBX-0001", b"Billed to: L\xe9a Martin", b"Amount excl. tax", b"\x80100.00",
                 b"Net", b"VAT \\(19 %\\) incl.", b"Gross total", b"Vendeur: \xc9cole du Code SAS"):
        assert text in body, text


def test_without_exclude_tax_lines_show_their_amount_with_tax(client, paid_session, french_school):
    customer = _customer(client, "fr")
    session = paid_session(customer=customer.id, customer_email=None, customer_creation=None,
                           invoice_creation=_invoice_data(rendering_options=None))
    assert session.invoice.rendering is None
    body = requests.get(session.invoice.invoice_pdf, timeout=10).content
    assert b"Montant HT" not in body and b"Montant" in body and b"119,00\xa0\x80" in body


def test_the_hosted_invoice_page_says_what_the_pdf_says(client, paid_session, french_school):
    invoice = _paid_invoice(client, paid_session, "fr-FR")
    page = requests.get(invoice.hosted_invoice_url, timeout=10).text
    assert '<html lang="fr">' in page and 'id="seller-name">École du Code<' in page
    assert "<dt>N° TVA intracommunautaire</dt><dd>FR44732829320</dd>" in page
    assert "Montant HT" in page and "100,00\xa0€" in page and 'id="invoice-status">payée<' in page
    assert "École du Code SAS – 12 rue des Écoles, 75005 Paris<br>Retard de paiement" in page


def test_a_french_customers_credit_note_pdf_is_in_french(client, paid_session, french_school):
    invoice = _paid_invoice(client, paid_session, "fr")
    note = client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 2380, "refund_amount": 2380,
                                                 "reason": "order_change"})
    body = requests.get(note.pdf, timeout=10).content
    for text in (b"Avoir", b"Num\xe9ro d\x92avoir : SBX-0001-CN-01", b"Num\xe9ro de facture : SBX-0001",
                 b"\xc9cole du Code", b"Motif : modification de la commande", b"23,80\xa0\x80",
                 b"Rembours\xe9 sur le moyen de paiement d\x92origine : 23,80\xa0\x80"):
        assert text in body, text


def test_markup_in_custom_fields_and_footer_is_shown_as_text(client, paid_session):
    customer = _customer(client, "fr")
    session = paid_session(customer=customer.id, customer_email=None, customer_creation=None,
                           invoice_creation=_invoice_data(custom_fields=[{"name": "<b>x</b>", "value": "<script>"}],
                                                          footer="<img src=x onerror=alert(1)>"))
    page = requests.get(session.invoice.hosted_invoice_url, timeout=10).text
    assert "<script>" not in page and "<img src=x" not in page and "&lt;img src=x" in page


# -- Stripe's limits ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("invoice_data, param", [
    ({"custom_fields": FIELDS + [{"name": "Fifth", "value": "5"}]}, "invoice_creation[invoice_data][custom_fields]"),
    ({"custom_fields": [{"name": "N" * 41, "value": "v"}]}, "invoice_creation[invoice_data][custom_fields][0][name]"),
    ({"custom_fields": [{"name": "n", "value": "V" * 141}]}, "invoice_creation[invoice_data][custom_fields][0][value]"),
    ({"custom_fields": [{"name": "n"}]}, "invoice_creation[invoice_data][custom_fields][0][value]"),
    ({"footer": "F" * 5001}, "invoice_creation[invoice_data][footer]"),
    ({"rendering_options": {"amount_tax_display": "without_tax"}},
     "invoice_creation[invoice_data][rendering_options][amount_tax_display]"),
    ({"rendering_options": {"template": "inrtem_123"}}, "invoice_creation[invoice_data][rendering_options][template]"),
])
def test_checkout_refuses_what_stripe_refuses_in_invoice_data(create_session, invoice_data, param):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        create_session(invoice_creation={"enabled": True, "invoice_data": invoice_data})
    assert raised.value.param == param


def test_invoices_have_no_rendering_options(client):
    """The pinned API's invoices take ``rendering``; ``rendering_options`` is refused as Stripe refuses a
    parameter it does not know."""
    customer = client.v1.customers.create(params={"email": "x@example.com"})
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.invoices.create(params={"customer": customer.id, "collection_method": "send_invoice",
                                          "days_until_due": 10,
                                          "rendering_options": {"amount_tax_display": "exclude_tax"}})
    assert raised.value.code == "parameter_unknown" and raised.value.param == "rendering_options"
