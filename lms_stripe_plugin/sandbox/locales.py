"""The hosted checkout page in the session's ``locale``: its labels in French or English, its amounts as the
locale writes them.

``locale`` takes the values of the pinned API (the SDK's ``SessionCreateParams``; any other is refused at
session creation, as Stripe does: see ``schema.py``). "If blank or ``auto``, the browser's locale is
used": the page then reads ``Accept-Language``. The sandbox has French and English labels: a ``fr`` or
``fr-CA`` page is French, any other English, and its amounts are still written the locale's way
(``12,34 €`` in ``de``). English amounts keep the sandbox's own format (``€12.34``, ``12.340 KWD``).
Stripe's own French wording for the labels is not published; these are the sandbox's.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from babel import Locale, UnknownLocaleError

from .amounts import exponent, format_amount
from .schema import Scalar, endpoint_schema


def _checkout_locales() -> tuple[str, ...]:
    node = endpoint_schema("POST", "/v1/checkout/sessions").fields["locale"]  # type: ignore[union-attr]
    assert isinstance(node, Scalar) and node.enum
    return tuple(value for value in node.enum if value != "auto")


#: Every language Checkout is shown in (``auto`` aside), from the SDK.
CHECKOUT_LOCALES = _checkout_locales()


def page_locale(session_locale: str | None, accept_languages: Any) -> str:
    """The locale the page is shown in: the session's, or for ``auto`` (or none) the browser's best match."""
    if session_locale and session_locale != "auto":
        return session_locale
    return accept_languages.best_match(CHECKOUT_LOCALES) or "en"


def language(locale: str) -> str:
    """The language of the page's labels: ``fr`` or ``en``."""
    return "fr" if locale.split("-")[0].lower() == "fr" else "en"


def translator(locale: str) -> Callable[..., str]:
    """``_("Pay %(amount)s", amount=...)`` in the page's language."""
    table = FRENCH if language(locale) == "fr" else {}

    def translate(text: str, **values: Any) -> str:
        translated = table.get(text, text)
        return translated % values if values else translated

    return translate


def money(locale: str, currency: str) -> Callable[[int], str]:
    """Amounts in minor units as the locale writes them, with the currency's decimals at Stripe."""
    if locale.split("-")[0].lower() == "en":
        return lambda amount: format_amount(amount, currency)
    try:
        babel_locale = Locale.parse(locale, sep="-")
    except (UnknownLocaleError, ValueError):
        babel_locale = Locale.parse(locale.split("-")[0])
    digits = exponent(currency)
    pattern = copy.copy(babel_locale.currency_formats["standard"])
    pattern.frac_prec = (digits, digits)  # Stripe's decimals (KWD 3, JPY 0), whatever the locale's data says

    def write(amount: int) -> str:
        value = Decimal(amount).scaleb(-digits)
        return pattern.apply(value, babel_locale, currency=currency.upper(), currency_digits=False)

    return write


def document_locale(customer: dict[str, Any] | None) -> str:
    """The language of a customer's invoices, credit notes and their pages: the first of its
    ``preferred_locales`` (Stripe: "Add your customer's preferred language for localized invoices";
    docs.stripe.com/invoicing/customize), else English."""
    return ((customer or {}).get("preferred_locales") or ["en"])[0]


def dates(locale: str) -> Callable[[int | None], str]:
    """Dates of a document (UTC): ``2026-05-04`` in English, ``04/05/2026`` in French; ``-`` for none."""
    pattern = "%d/%m/%Y" if language(locale) == "fr" else "%Y-%m-%d"

    def write(timestamp: int | None) -> str:
        if not timestamp:
            return "-"
        return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime(pattern)

    return write


def labelled(locale: str) -> Callable[[str, str], str]:
    """``Invoice number: X``, with the space French puts before a colon."""
    colon = " : " if language(locale) == "fr" else ": "
    return lambda label, value: f"{label}{colon}{value}"


FRENCH = {
    # base.html
    "Stripe sandbox · test mode": "Bac à sable Stripe · mode test",
    "Test mode": "Mode test",
    # checkout.html
    "Pay %(amount)s": "Payer %(amount)s",
    "Contact information": "Coordonnées",
    "Email": "E-mail",
    "Express checkout": "Paiement express",
    "Or pay another way": "Ou payer autrement",
    "Payment method": "Moyen de paiement",
    "Card information": "Informations de la carte",
    "Card number": "Numéro de carte",
    "Expiry date (MM / YY)": "Date d'expiration (MM / AA)",
    "MM / YY": "MM / AA",
    "CVC": "CVC",
    "Pay in instalments with Klarna. In the sandbox Klarna approves the payment at once.":
        "Payez en plusieurs fois avec Klarna. Dans le bac à sable, Klarna accepte le paiement aussitôt.",
    "Bank account": "Compte bancaire",
    "IBAN": "IBAN",
    "By providing your IBAN you authorise the merchant and Stripe to debit your account (SEPA Direct Debit "
    "mandate). The payment is confirmed after a few days.":
        "En fournissant votre IBAN, vous autorisez le marchand et Stripe à débiter votre compte (mandat de "
        "prélèvement SEPA). Le paiement est confirmé après quelques jours.",
    "Full name": "Nom complet",
    "Country or region": "Pays ou région",
    "Test mode: card 4242 4242 4242 4242 pays, 4000 0000 0000 0002 is declined; any future expiry date and any "
    "CVC.": "Mode test : la carte 4242 4242 4242 4242 paie, la carte 4000 0000 0000 0002 est refusée ; toute date "
            "d'expiration future et tout CVC.",
    "← Back": "← Retour",
    "Pay %(merchant)s": "Payer %(merchant)s",
    "Qty %(quantity)s": "Qté %(quantity)s",
    "Subtotal": "Sous-total",
    "Discount": "Remise",
    "Tax": "Taxes",
    "Includes tax": "Taxes incluses",
    "Total due": "Total dû",
    "Promotion code": "Code promotionnel",
    "Remove": "Supprimer",
    "Apply": "Appliquer",
    "Code %(code)s applied: %(discount)s.": "Code %(code)s appliqué : %(discount)s.",
    "%(percent)s%% off": "%(percent)s %% de réduction",
    "Discount of %(amount)s": "Remise de %(amount)s",
    "I agree to the Terms of Service.": "J'accepte les conditions d'utilisation.",
    # payment methods
    "Card": "Carte",
    "Visa, Mastercard, American Express": "Visa, Mastercard, American Express",
    "Pay in instalments": "Payer en plusieurs fois",
    "SEPA Direct Debit": "Prélèvement SEPA",
    "Paid from your bank account; takes a few days to confirm":
        "Payé depuis votre compte bancaire ; la confirmation prend quelques jours",
    "Pay with %(wallet)s": "Payer avec %(wallet)s",
    # pages instead of the form
    "Not found": "Introuvable",
    "This checkout session does not exist.": "Cette session de paiement n'existe pas.",
    "Session expired": "Session expirée",
    "This checkout session has expired.": "Cette session de paiement a expiré.",
    "Payment complete": "Paiement effectué",
    "This checkout session is already complete.": "Cette session de paiement est déjà terminée.",
    "Continue": "Continuer",
    "Thank you": "Merci",
    "Payment status: %(status)s.": "Statut du paiement : %(status)s.",
    # the hosted invoice page and the receipt
    "Invoice %(number)s": "Facture %(number)s",
    "Invoice": "Facture",
    "Status:": "Statut :",
    "Total": "Total",
    "Due": "Échéance",
    "Billed to": "Facturée à",
    "Description": "Description",
    "Qty": "Qté",
    "Amount": "Montant",
    "Net": "Net",
    "(included)": "(incluse)",
    "Credit notes": "Avoirs",
    "Amount paid": "Montant payé",
    "Amount remaining": "Reste à payer",
    "Payments": "Paiements",
    "Download invoice (PDF)": "Télécharger la facture (PDF)",
    "Pay this invoice": "Payer cette facture",
    "A payment of this invoice is being processed.": "Un paiement de cette facture est en cours de traitement.",
    "This invoice cannot be paid: it is not open, or a payment of it is being processed.":
        "Cette facture ne peut pas être payée : elle n'est pas à payer, ou un paiement est en cours de traitement.",
    "Receipt": "Reçu",
    "This receipt does not exist.": "Ce reçu n'existe pas.",
    "This invoice does not exist.": "Cette facture n'existe pas.",
    "Payment %(charge)s: %(amount)s, status %(status)s, refunded %(refunded)s.":
        "Paiement %(charge)s : %(amount)s, statut %(status)s, remboursé %(refunded)s.",
    # Stripe's statuses of invoices, invoice payments and charges
    "draft": "brouillon", "open": "ouverte", "paid": "payée", "void": "annulée", "uncollectible": "irrécouvrable",
    "pending": "en attente", "canceled": "annulé", "succeeded": "réussi", "failed": "échoué",
    # what the page says of a refusal (the API's errors stay in English, as Stripe's do)
    "Your card was declined.": "Votre carte a été refusée.",
    "Your card has insufficient funds.": "Votre carte ne dispose pas de fonds suffisants.",
    "Your card has expired.": "Votre carte a expiré.",
    "Your card's security code is incorrect.": "Le code de sécurité de votre carte est incorrect.",
    "Your card's security code is incomplete.": "Le code de sécurité de votre carte est incomplet.",
    "Your card number is incomplete.": "Le numéro de votre carte est incomplet.",
    "Your card number is invalid.": "Le numéro de votre carte n'est pas valide.",
    "Your card's expiration date is incomplete.": "La date d'expiration de votre carte est incomplète.",
    "Your card's expiration month is invalid.": "Le mois d'expiration de votre carte n'est pas valide.",
    "Your card's expiration year is in the past.": "L'année d'expiration de votre carte est passée.",
    "An error occurred while processing your card. Try again in a little bit.":
        "Une erreur s'est produite lors du traitement de votre carte. Réessayez dans un instant.",
    "Your email is incomplete.": "Votre adresse e-mail est incomplète.",
    "Your email address is invalid.": "Votre adresse e-mail n'est pas valide.",
    "This code is invalid.": "Ce code n'est pas valide.",
    "You must accept the terms of service to continue.":
        "Vous devez accepter les conditions d'utilisation pour continuer.",
    "Your IBAN is incomplete.": "Votre IBAN est incomplet.",
    "Your IBAN is invalid.": "Votre IBAN n'est pas valide.",
    "Your country is required to calculate tax.": "Votre pays est requis pour calculer les taxes.",
    # invoices, credit notes and their pages (the sandbox's wording: Stripe's French documents are not published)
    "Stripe sandbox - test mode": "Bac à sable Stripe - mode test",
    "Invoice": "Facture",
    "Invoice %(number)s": "Facture %(number)s",
    "Invoice number": "Numéro de facture",
    "Date of issue": "Date d’émission",
    "Date due": "Date d’échéance",
    "Date paid": "Date de paiement",
    "Billed to": "Facturé à",
    "Description": "Désignation",
    "Qty": "Qté",
    "VAT": "TVA",
    "Amount": "Montant",
    "Amount excl. tax": "Montant HT",
    "Net": "Total HT",
    "%(name)s (%(rates)s)": "%(name)s (%(rates)s)",
    "%(tax)s incl.": "%(tax)s incluse",
    "included": "incluse",
    "Gross total": "Total TTC",
    "Total": "Total",
    "Currency": "Devise",
    "Credit notes": "Avoirs",
    "Amount paid": "Montant payé",
    "Amount remaining": "Reste à payer",
    "Payments": "Paiements",
    "Credit note": "Avoir",
    "Credit note number": "Numéro d’avoir",
    "Customer": "Client",
    "Reason": "Motif",
    "Memo": "Note",
    "Refunded to the original payment method: %(amount)s": "Remboursé sur le moyen de paiement d’origine : %(amount)s",
    "Status": "Statut",
    "Due": "Échéance",
    "Download invoice (PDF)": "Télécharger la facture (PDF)",
    "PDF": "PDF",
    "This invoice does not exist.": "Cette facture n’existe pas.",
    "paid": "payée",
    "open": "à payer",
    "void": "annulée",
    "uncollectible": "irrécouvrable",
    "canceled": "annulé",
    "duplicate": "doublon",
    "fraudulent": "frauduleux",
    "order change": "modification de la commande",
    "product unsatisfactory": "produit insatisfaisant",
    # Connect onboarding (onboarding.html): the sandbox's wording, Stripe's own pages are not published
    "← Return to %(platform)s": "← Retour à %(platform)s",
    "Return to %(platform)s": "Retour à %(platform)s",
    "Step %(number)s of 2": "Étape %(number)s sur 2",
    "Please correct the following:": "Veuillez corriger les points suivants :",
    "%(platform)s uses Stripe to take payments for you. Tell Stripe about your business.":
        "%(platform)s utilise Stripe pour encaisser vos paiements. Présentez votre entreprise à Stripe.",
    "Your business": "Votre entreprise",
    "Verification": "Vérification",
    "A document is needed": "Un document est nécessaire",
    "Your account": "Votre compte",
    "Company name": "Nom de l’entreprise",
    "Activity": "Activité",
    "Choose your activity": "Choisissez votre activité",
    "Your products or services": "Vos produits ou services",
    "For example: training courses in data science, online and in class.":
        "Par exemple : formations en science des données, en ligne et en présentiel.",
    "IBAN of the account that receives your payouts": "IBAN du compte qui reçoit vos virements",
    "Test mode: use FR14 2004 1010 0505 0001 3M02 606 or DE89 3704 0044 0532 0130 00.":
        "Mode test : utilisez FR14 2004 1010 0505 0001 3M02 606 ou DE89 3704 0044 0532 0130 00.",
    "Your details": "Vos informations",
    "Payout account": "Compte de versement",
    "IBAN ending in %(last4)s": "IBAN se terminant par %(last4)s",
    "Change these details": "Modifier ces informations",
    "Stripe verifies your company's details before you can accept payments. In test mode the verification is "
    "immediate.": "Stripe vérifie les informations de votre entreprise avant que vous puissiez accepter des "
                  "paiements. En mode test, la vérification est immédiate.",
    "I confirm that this information is accurate and I accept the Stripe Connected Account Agreement.":
        "Je confirme l’exactitude de ces informations et j’accepte le Contrat de compte connecté Stripe.",
    "Submit for verification": "Envoyer pour vérification",
    "Stripe needs a document to verify your company: an official registration document, such as an extract of "
    "the trade register.": "Stripe a besoin d’un document pour vérifier votre entreprise : un justificatif "
                           "officiel d’immatriculation, comme un extrait Kbis.",
    "Provide it by %(date)s to keep accepting payments.":
        "Fournissez-le avant le %(date)s pour continuer à accepter des paiements.",
    "Registration document (PDF, JPEG or PNG, 10 MB at most)":
        "Justificatif d’immatriculation (PDF, JPEG ou PNG, 10 Mo au plus)",
    "Upload and submit": "Téléverser et envoyer",
    "Accept the Stripe Connected Account Agreement to continue.":
        "Acceptez le Contrat de compte connecté Stripe pour continuer.",
    "Enter the name of your company.": "Saisissez le nom de votre entreprise.",
    "The company name can have at most 100 characters.": "Le nom de l’entreprise peut comporter au plus 100 caractères.",
    "Choose your activity.": "Choisissez votre activité.",
    "Describe your products or services.": "Décrivez vos produits ou services.",
    "The description can have at most 500 characters.": "La description peut comporter au plus 500 caractères.",
    "Choose the document to upload.": "Choisissez le document à téléverser.",
    "The document must be a PDF, JPEG or PNG file.": "Le document doit être un fichier PDF, JPEG ou PNG.",
    "The document is empty.": "Le document est vide.",
    "The document is larger than 10 MB.": "Le document dépasse 10 Mo.",
    "Your account is complete: you can accept payments.": "Votre compte est complet : vous pouvez accepter des paiements.",
    "Stripe is verifying your information. You can accept payments once it is verified.":
        "Stripe vérifie vos informations. Vous pourrez accepter des paiements une fois la vérification terminée.",
    "Stripe has paused payments on this account. Contact Stripe support to know more.":
        "Stripe a suspendu les paiements de ce compte. Contactez le support Stripe pour en savoir plus.",
    "This onboarding link does not exist.": "Ce lien d’inscription n’existe pas.",
    "Schools and educational services": "Écoles et services éducatifs",
    "Business and secretarial schools": "Écoles de commerce et de secrétariat",
    "Trade and vocational schools": "Écoles professionnelles et techniques",
    "Colleges and universities": "Établissements d’enseignement supérieur et universités",
    "Digital goods: books, films, music and courses": "Biens numériques : livres, films, musique et cours",
}
