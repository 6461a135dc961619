"""What French law asks an invoice to say, sent with every invoice the plugin has Stripe make: the seller's
identity as custom fields and in the footer, the late-payment terms (and the 40 € compensation for business
buyers), lines excluding VAT then VAT per rate, all in the language of the learner's invoices. Stripe is
stubbed at the HTTP boundary; the real SDK builds every request."""
from __future__ import annotations

import pytest
import responses
from sqlalchemy import select

from lms_stripe_plugin.accounts import settings as payment_settings
from lms_stripe_plugin.billing import legal
from lms_stripe_plugin.core.models import Customer

from .conftest import STRIPE, as_user, form_body
from .refund_support import calls, csrf, sent
from .stripe_stubs import stub_create_session, stub_tax_rate, checkout_session
from .test_invoicing_pages import NEW, _new_invoice, _stub_issuing

IDENTITY = {"seller_legal_name": "École du Code SAS", "seller_address": "12 rue des Écoles\n75005 Paris",
            "seller_siret": "73282932000074", "seller_vat_number": "FR44732829320",
            "seller_legal_form": "SAS au capital de 10 000 €"}
DATA = "invoice_creation[invoice_data]"


@pytest.fixture
def seller(db, configured):
    payment_settings.save(db.session, IDENTITY, actor_id="adm")
    db.session.commit()
    return payment_settings.load(db.session)


def _custom_fields(sent_params: dict, prefix: str) -> list[tuple[str, str]]:
    """The custom fields sent under ``prefix`` (Checkout's invoice_data), or at the top level ("")."""
    key = f"{prefix}[custom_fields]" if prefix else "custom_fields"
    fields = []
    while f"{key}[{len(fields)}][name]" in sent_params:
        index = len(fields)
        fields.append((sent_params[f"{key}[{index}][name]"], sent_params[f"{key}[{index}][value]"]))
    return fields


def _buy(client, user="u1", course="c1"):
    page = client.get(f"/payments/courses/{course}", headers=as_user(user)).get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    return client.post(f"/payments/checkout/{course}", data={"csrf_token": token}, headers=as_user(user))


def _session_sent(mock) -> dict:
    return sent(calls(mock, "POST", "/v1/checkout/sessions")[-1])


@pytest.fixture
def stripe_ok(stripe_http, people, priced):
    stub_tax_rate(stripe_http)
    stub_create_session(stripe_http, checkout_session(1))
    return stripe_http


# -- Checkout's invoices --------------------------------------------------------------------------------------

def test_a_french_learners_checkout_invoice_names_the_seller_in_french(client, host, seller, stripe_ok):
    host.locale = "fr"
    assert _buy(client).status_code == 303
    params = _session_sent(stripe_ok)
    assert _custom_fields(params, DATA) == [
        ("Vendeur", "École du Code SAS"), ("SIRET", "732 829 320 00074"),
        ("N° TVA intracommunautaire", "FR44732829320"), ("Forme juridique", "SAS au capital de 10 000 €")]
    assert params[f"{DATA}[footer]"].split("\n") == [
        "École du Code SAS – 12 rue des Écoles, 75005 Paris",
        "Retard de paiement : pénalités au taux de trois fois le taux d’intérêt légal, exigibles dès le lendemain "
        "de l’échéance sans rappel préalable (art. L441-10 du Code de commerce). Pas d’escompte pour paiement "
        "anticipé."]
    assert params[f"{DATA}[rendering_options][amount_tax_display]"] == "exclude_tax"
    # The invoice and the mentions speak one language: the customer's, set when it is created.
    assert sent(calls(stripe_ok, "POST", "/v1/customers")[0])["preferred_locales[0]"] == "fr"


def test_an_english_learners_invoice_names_the_seller_in_english(client, host, seller, stripe_ok):
    assert _buy(client).status_code == 303
    params = _session_sent(stripe_ok)
    assert [name for name, _value in _custom_fields(params, DATA)] == ["Seller", "SIRET", "VAT number", "Legal form"]
    assert params[f"{DATA}[footer]"].split("\n")[1].startswith(
        "Late payment: penalties at three times the French legal interest rate")


def test_business_buyers_are_told_of_the_40_euros_compensation(client, db, host, seller, stripe_ok):
    payment_settings.save(db.session, {"business_buyers": True, "late_payment_text": "Pénalités : 10 % l’an."},
                          actor_id="adm")
    db.session.commit()
    host.locale = "fr"
    assert _buy(client).status_code == 303
    footer = _session_sent(stripe_ok)[f"{DATA}[footer]"].split("\n")
    assert footer[1] == "Pénalités : 10 % l’an."  # the administrator's own words, as written
    assert footer[2] == ("Acheteurs professionnels : une indemnité forfaitaire de 40,00\xa0€ pour frais de "
                         "recouvrement est due en plus des pénalités en cas de retard de paiement (art. L441-10 "
                         "et D441-5 du Code de commerce).")


def test_a_siren_alone_is_named_so_and_missing_details_are_left_out(client, db, configured, stripe_ok):
    payment_settings.save(db.session, {"seller_legal_name": "Jean Dupont EI", "seller_siret": "732829320"},
                          actor_id="adm")
    db.session.commit()
    assert _buy(client).status_code == 303
    params = _session_sent(stripe_ok)
    assert _custom_fields(params, DATA) == [("Seller", "Jean Dupont EI"), ("SIREN", "732 829 320")]
    assert params[f"{DATA}[footer]"].split("\n")[0] == "Jean Dupont EI"


def test_without_a_legal_name_no_mention_is_sent(client, configured, stripe_ok):
    assert _buy(client).status_code == 303
    params = _session_sent(stripe_ok)
    assert not _custom_fields(params, DATA) and f"{DATA}[footer]" not in params
    assert params[f"{DATA}[rendering_options][amount_tax_display]"] == "exclude_tax"


@pytest.mark.parametrize("locale", ["en", "fr"])
def test_the_mentions_fit_stripes_limits_in_every_language(seller, locale):
    """Stripe: at most 4 custom fields, a name of up to 40 characters and a value of up to 140, a footer of up to
    5000 (the SDK's InvoiceCreateParamsCustomField, and docs.stripe.com/api/invoices/create)."""
    longest = seller.__class__(**{**{k: getattr(seller, k) for k in ("enabled", "default_currency")},
                                  "seller_legal_name": "N" * 140, "seller_address": "\n".join(["A" * 75] * 4),
                                  "seller_siret": "73282932000074", "seller_vat_number": "FR44732829320",
                                  "seller_legal_form": "F" * 140, "late_payment_text": "P" * 1000,
                                  "business_buyers": True})
    found = legal.mentions(longest, locale)
    assert len(found.custom_fields) == 4
    assert all(len(name) <= 40 and len(value) <= 140 for name, value in found.custom_fields)
    assert found.footer is not None and len(found.footer) <= 5000


# -- invoices an administrator creates ---------------------------------------------------------------------------

def test_an_administrators_invoice_carries_the_mentions_in_the_learners_language(client, db, host, people,
                                                                               lessons, seller, stripe_http):
    """The learner bought in French before: their customer's invoices are in French, whatever the language of
    the administrator who issues this one."""
    db.session.add(Customer(user_id="u1", stripe_customer_id="cus_test_lea", locale="fr"))
    db.session.commit()
    _stub_issuing(stripe_http)
    assert _new_invoice(client, csrf(client, NEW)).status_code == 302
    created = sent(calls(stripe_http, "POST", "/v1/invoices")[0])
    assert created["customer"] == "cus_test_lea" and not calls(stripe_http, "POST", "/v1/customers")
    assert _custom_fields(created, "")[0] == ("Vendeur", "École du Code SAS")
    assert created["footer"].startswith("École du Code SAS – 12 rue des Écoles, 75005 Paris\nRetard de paiement")
    assert created["rendering[amount_tax_display]"] == "exclude_tax"
    assert "rendering_options[amount_tax_display]" not in created  # not a parameter of invoices


def test_a_learners_first_invoice_is_in_the_language_it_is_issued_in(client, db, host, people, lessons, seller,
                                                                      stripe_http):
    host.locale = "fr"
    _stub_issuing(stripe_http)
    assert _new_invoice(client, csrf(client, NEW), **{"line-1-amount": "300,00"}).status_code == 302
    assert sent(calls(stripe_http, "POST", "/v1/customers")[0])["preferred_locales[0]"] == "fr"
    assert _custom_fields(sent(calls(stripe_http, "POST", "/v1/invoices")[0]), "")[2] == \
        ("N° TVA intracommunautaire", "FR44732829320")
    assert db.session.scalar(select(Customer.locale)) == "fr"


# -- a payment link's invoice ------------------------------------------------------------------------------------

def test_a_payment_links_invoice_names_its_payer_then_the_seller(client, db, host, people, seller, stripe_http):
    """The payer first (*Paid by*), then as many of the seller's custom fields as Stripe's 4 take; the one left
    over opens the footer, so that no mention is lost."""
    from .link_support import make_link
    from .test_payment_links import _pay, _stub_session, _stub_tax_rate

    _link_id, token = make_link(db)
    host.locale = "fr"
    _stub_tax_rate(stripe_http)
    _stub_session(stripe_http)
    assert _pay(client, token, amount="49,90", name="Zoé Dupont", email="zoe@example.org").status_code == 303
    params = _session_sent(stripe_http)
    assert _custom_fields(params, DATA) == [
        ("Payé par", "Zoé Dupont"), ("Vendeur", "École du Code SAS"), ("SIRET", "732 829 320 00074"),
        ("N° TVA intracommunautaire", "FR44732829320")]
    assert params[f"{DATA}[footer]"].split("\n")[:2] == [
        "Forme juridique : SAS au capital de 10 000 €", "École du Code SAS – 12 rue des Écoles, 75005 Paris"]
    assert params[f"{DATA}[rendering_options][amount_tax_display]"] == "exclude_tax"


def test_the_mentions_left_over_by_the_callers_own_fields_open_the_footer(seller):
    found = legal.mentions(seller, "en")
    data = legal.checkout_invoice_data(found, first=(("Paid by", "Zoé"),))
    assert [field["name"] for field in data["custom_fields"]] == ["Paid by", "Seller", "SIRET", "VAT number"]
    assert data["footer"] == "Legal form: SAS au capital de 10 000 €\n" + (found.footer or "")
    assert legal.checkout_invoice_data(found) == {
        "rendering_options": {"amount_tax_display": "exclude_tax"},
        "custom_fields": [{"name": name, "value": value} for name, value in found.custom_fields],
        "footer": found.footer}
