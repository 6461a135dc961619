"""A payment request's payment that Stripe will not attach: why the invoice no longer takes it, and what the
learner is told, in their language (the end-to-end cases are in tests/e2e/test_unattachable_payments_e2e.py)."""
from __future__ import annotations

import pytest

from lms_stripe_plugin import messages
from lms_stripe_plugin.billing.unattachable import CLOSED, LESS, PAID, why_refused
from lms_stripe_plugin.money import Money

NBSP = "\u00a0"


@pytest.mark.parametrize("status, remaining, expected", [
    ("paid", 0, PAID), ("void", 30000, CLOSED), ("draft", 30000, CLOSED),
    ("open", 5000, LESS), ("uncollectible", 8999, LESS),
    ("open", 9000, None), ("uncollectible", 30000, None),  # it could take it: another cause, raised again
])
def test_why_an_invoice_no_longer_takes_a_payment_of_90(status, remaining, expected):
    assert why_refused({"status": status, "amount_remaining": remaining}, 9000) == expected


def _email(app, locale: str, why: str) -> tuple[str, str]:
    with app.app_context():
        return messages.payment_on_balance_email(locale=locale, school_name="École Élan", learner_name="Léa Martin",
                                                 amount=Money(9000, "EUR"), invoice_number="F-2026-0001", why=why,
                                                 remaining=Money(5000, "EUR"))


@pytest.mark.parametrize("why, cause", [
    (PAID, "the invoice was paid in the meantime"), (CLOSED, "the invoice was cancelled"),
    (LESS, "only €50.00 remained to be paid on it"),
])
def test_the_learner_is_told_where_the_payment_went(app, why, cause):
    subject, body = _email(app, "en", why)
    assert subject == "École Élan: your payment of €90.00 is on your balance"
    assert body.startswith("Hello Léa Martin,\n\nYour payment of €90.00 could not be credited to invoice F-2026-0001: ")
    assert cause in body and "on your prepaid balance" in body and "refunded instead" in body


def test_in_french(app):
    subject, body = _email(app, "fr", LESS)
    assert subject == f"École Élan : votre paiement de 90,00{NBSP}€ est sur votre solde"
    assert f"il n’y restait que 50,00{NBSP}€ à payer" in body and body.startswith("Bonjour Léa Martin,")
