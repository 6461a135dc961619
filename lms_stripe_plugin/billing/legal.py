"""What French law asks an invoice to say, put where Stripe prints it, in the language of the invoice.

An invoice between French businesses, or to a consumer who asks for one, names the seller (legal name,
address, SIREN or SIRET, VAT number, legal form and share capital), the buyer, a number and dates, the
amounts excluding tax and the VAT per rate, and for business buyers the late-payment penalties and the
fixed 40 € compensation for recovery costs (Code de commerce, art. L441-9, L441-10, D441-5 and R123-237;
CGI, art. 242 nonies A). Stripe numbers and dates the invoice, prints the account's public business details
(Dashboard, Settings, Business) at its top, and the buyer's name and address from the customer. The rest
goes into each invoice the plugin has Stripe create, through Stripe's own fields (docs.stripe.com/invoicing/
customize, and the SDK's ``InvoiceCreateParams`` and ``SessionCreateParamsInvoiceCreationInvoiceData``):

- ``custom_fields``, at most 4, a name of up to 40 characters and a value of up to 140: the legal name, the
  SIREN or SIRET, the VAT number and the legal form;
- ``footer`` (up to 5000 characters): the legal name and address, the late-payment terms and, when the
  buyers are businesses, the 40 € compensation;
- the PDF's tax display, ``exclude_tax``: lines excluding VAT, then the VAT of each rate, then the total;
- the language: Stripe writes the invoice in the customer's ``preferred_locales`` (billing/customers.py);
  the names and sentences above are written here in the same language.
"""
from __future__ import annotations

from dataclasses import dataclass
from ..accounts.identity import format_siret
from ..core.i18n import LocaleText, in_locale
from ..gateway.types import InvoiceCreateParams, SessionCreateParamsInvoiceCreationInvoiceData
from ..money import Money

MAX_CUSTOM_FIELDS = 4
MAX_FIELD_NAME = 40
MAX_FIELD_VALUE = 140
MAX_FOOTER = 5000
#: Lines excluding VAT on the PDF, then VAT per rate: how French invoices are read.
TAX_DISPLAY = "exclude_tax"
#: The fixed compensation for recovery costs owed by a business paying late (art. D441-5), in cents.
RECOVERY_COMPENSATION = Money(4000, "EUR")


@dataclass(frozen=True)
class InvoiceMentions:
    """The legal mentions of one invoice, in its language: ``custom_fields`` as (name, value) pairs."""

    locale: str
    custom_fields: tuple[tuple[str, str], ...] = ()
    footer: str | None = None


def late_payment_default(locale: str) -> str:
    """The plugin's wording of the late-payment terms, when the administrator wrote none."""
    return in_locale(locale).gettext(
        "Late payment: penalties at three times the French legal interest rate, due from the day after the due "
        "date without a reminder (art. L441-10 of the French Commercial Code). No discount for early payment.")


def mentions(settings, locale: str) -> InvoiceMentions:
    """The mentions of an invoice written in ``locale`` (none before the seller's legal name is entered)."""
    if not settings.seller_legal_name:
        return InvoiceMentions(locale)
    text = in_locale(locale)
    return InvoiceMentions(text.locale, _custom_fields(settings, text), _footer(settings, text))


def _custom_fields(settings, text: LocaleText) -> tuple[tuple[str, str], ...]:
    siret = settings.seller_siret
    fields = [
        (text.gettext("Seller"), settings.seller_legal_name),
        ((text.gettext("SIRET") if siret and len(siret) == 14 else text.gettext("SIREN")),
         format_siret(siret) if siret else None),
        (text.gettext("VAT number"), settings.seller_vat_number),
        (text.gettext("Legal form"), settings.seller_legal_form),
    ]
    kept = [(name[:MAX_FIELD_NAME], value[:MAX_FIELD_VALUE]) for name, value in fields if value]
    return tuple(kept[:MAX_CUSTOM_FIELDS])


def _footer(settings, text: LocaleText) -> str:
    address = ", ".join(line for line in (settings.seller_address or "").split("\n") if line)
    seller = " – ".join(part for part in (settings.seller_legal_name, address) if part)
    lines = [seller, settings.late_payment_text or late_payment_default(text.locale)]
    if settings.business_buyers:
        lines.append(text.gettext(
            "Business buyers: a fixed compensation of %(amount)s for recovery costs is due on top of the penalties "
            "for any late payment (art. L441-10 and D441-5 of the French Commercial Code).",
            amount=RECOVERY_COMPENSATION.format(text.locale)))
    return "\n".join(lines)[:MAX_FOOTER]


def checkout_invoice_data(found: InvoiceMentions, *,
                          first: tuple[tuple[str, str], ...] = ()) -> SessionCreateParamsInvoiceCreationInvoiceData:
    """The mentions as Checkout's ``invoice_creation[invoice_data]`` takes them, after the custom fields
    ``first`` of the caller's own (a payment link's payer): the mentions that no longer fit in Stripe's 4
    custom fields open the footer instead, so that none is lost."""
    fields = [*first, *found.custom_fields]
    kept, over = fields[:MAX_CUSTOM_FIELDS], fields[MAX_CUSTOM_FIELDS:]
    data: SessionCreateParamsInvoiceCreationInvoiceData = {"rendering_options": {"amount_tax_display": TAX_DISPLAY}}
    if kept:
        data["custom_fields"] = [{"name": name, "value": value} for name, value in kept]
    text = in_locale(found.locale)
    # Translators: a custom field of an invoice written in its footer, where the 4 custom fields are taken.
    lines = [text.gettext("%(name)s: %(value)s", name=name, value=value) for name, value in over]
    footer = "\n".join([*lines, *([found.footer] if found.footer else [])])
    if footer:
        data["footer"] = footer[:MAX_FOOTER]
    return data


def invoice_params(found: InvoiceMentions) -> InvoiceCreateParams:
    """The mentions as ``POST /v1/invoices`` takes them: the tax display is its ``rendering`` (the pinned API
    has ``rendering_options`` on Checkout's ``invoice_data`` and on customers, not on invoices)."""
    params: InvoiceCreateParams = {"rendering": {"amount_tax_display": TAX_DISPLAY}}
    if found.custom_fields:
        params["custom_fields"] = [{"name": name, "value": value} for name, value in found.custom_fields]
    if found.footer:
        params["footer"] = found.footer
    return params
