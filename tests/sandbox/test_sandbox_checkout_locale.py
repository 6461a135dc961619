"""The hosted checkout page honours the session's ``locale``: labels in French or English, amounts as the
locale writes them; a locale the pinned API does not have is refused when the session is created."""

from __future__ import annotations

import html
import re

import pytest
import requests
import stripe

NBSP, NNBSP = "\xa0", "\u202f"


def _page(url: str, **headers: str) -> str:
    return html.unescape(requests.get(url, headers=headers, timeout=10).text)


def _lang(page: str) -> str:
    return re.search(r'<html lang="([^"]+)"', page).group(1)


def test_a_french_session_shows_a_french_page_with_french_amounts(create_session):
    page = _page(create_session(locale="fr").url)
    assert _lang(page) == "fr"
    for label in ("Coordonnées", "Moyen de paiement", "Numéro de carte", "Sous-total", "Total dû",
                  "Code promotionnel", "Prélèvement SEPA", "← Retour", "Bac à sable Stripe · mode test"):
        assert label in page, label
    assert f"Payer 119,00{NBSP}€" in page and "€119.00" not in page
    assert "Contact information" not in page and "Card number" not in page


def test_an_english_session_shows_an_english_page(create_session):
    page = _page(create_session(locale="en").url, **{"Accept-Language": "fr-FR"})
    assert _lang(page) == "en"
    assert "Contact information" in page and "Pay €119.00" in page and "Coordonnées" not in page


@pytest.mark.parametrize("locale, header, lang", [
    ("auto", "fr-FR,fr;q=0.9,en;q=0.8", "fr"), ("auto", "en-US,en;q=0.9", "en"), (None, "fr-CA", "fr"),
    (None, None, "en"), ("fr-CA", "en-US", "fr"),
])
def test_auto_or_no_locale_follows_the_browser(create_session, locale, header, lang):
    session = create_session(locale=locale)
    assert session.locale == locale
    assert _lang(_page(session.url, **({"Accept-Language": header} if header else {}))) == lang


def test_another_locale_has_english_labels_and_its_own_amounts(create_session):
    page = _page(create_session(locale="de").url)
    assert _lang(page) == "en" and "Contact information" in page
    assert f"Pay 119,00{NBSP}€" in page


def test_amounts_keep_the_currencys_decimals_in_french(create_session, session_params, client):
    params = session_params(locale="fr", allowed_payment_method_types=["card"])
    params["line_items"][0].pop("tax_rates")
    params["line_items"][0]["price_data"].update(currency="kwd", unit_amount=12340)
    assert f"12,340{NBSP}KWD" in _page(client.v1.checkout.sessions.create(params=params).url)
    params["line_items"][0]["price_data"].update(currency="jpy", unit_amount=5000)
    assert f"5{NNBSP}000{NBSP}JPY" in _page(client.v1.checkout.sessions.create(params=params).url)


def test_a_locale_the_api_does_not_have_is_refused(client, session_params):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.checkout.sessions.create(params=session_params(locale="fr-FR"))
    assert raised.value.param == "locale" and raised.value.http_status == 400
    assert raised.value.user_message.startswith("Invalid locale: must be one of auto, bg, cs,")


def test_refusals_expiry_and_completion_are_shown_in_french(create_session, client, pay):
    session = create_session(locale="fr")
    declined = requests.post(session.url, data={"method": "card", "card_number": "4000 0000 0000 0002",
                                                "card_expiry": "12 / 34", "card_cvc": "123", "terms": "accepted"},
                             timeout=10)
    assert declined.status_code == 402 and "Votre carte a été refusée." in html.unescape(declined.text)
    client.v1.checkout.sessions.expire(session.id)
    expired = _page(session.url)
    assert "Cette session de paiement a expiré." in expired and "← Retour" in expired and _lang(expired) == "fr"

    paid = create_session(locale="fr")
    pay(paid.id)
    assert "Cette session de paiement est déjà terminée." in _page(paid.url)


def test_promotion_code_labels_in_french(create_session):
    session = create_session(locale="fr")
    applied = html.unescape(requests.post(session.url, data={"action": "apply_promo", "promotion_code": "WELCOME10"},
                                          timeout=10).text)
    assert "Code WELCOME10 appliqué : 10 % de réduction." in applied
    assert f"−11,90{NBSP}€" in applied and "Remise" in applied


# -- the hosted invoice page and the receipt: in the customer's language, else the browser's --------------


def test_the_hosted_invoice_page_speaks_the_customers_language(client, paid_session):
    session = paid_session()
    client.v1.customers.update(session.invoice.customer, params={"preferred_locales": ["fr-FR"]})
    page = _page(session.invoice.hosted_invoice_url, **{"Accept-Language": "en-US"})
    assert _lang(page) == "fr"
    for label in ("Facture", "Statut", "Facturé à", "Montant payé", "Reste à payer",
                  "Télécharger la facture (PDF)", "payée", "Bac à sable Stripe · mode test"):
        assert label in page, label
    assert f"119,00{NBSP}€" in page and "Amount remaining" not in page


@pytest.mark.parametrize("header, lang, label", [("fr-FR,fr;q=0.9", "fr", "Reste à payer"),
                                                 ("en-GB", "en", "Amount remaining")])
def test_without_a_preferred_language_the_invoice_page_follows_the_browser(paid_session, header, lang, label):
    page = _page(paid_session().invoice.hosted_invoice_url, **{"Accept-Language": header})
    assert _lang(page) == lang and label in page


def test_the_receipt_speaks_the_browsers_language(paid_session):
    charge = paid_session().payment_intent.latest_charge
    page = _page(charge.receipt_url, **{"Accept-Language": "fr-FR"})
    assert _lang(page) == "fr" and "Reçu" in page and f"119,00{NBSP}€" in page and "statut réussi" in page
