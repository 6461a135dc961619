"""Apple Pay and Google Pay, and the learner's language, end to end through the sandbox: the hosted page of a
session shows the wallet buttons when the school turned wallets on, none when it did not, and is French
for a French learner."""
import html
import re
from datetime import date, timedelta

import pytest
import requests
from sqlalchemy import select

from lms_stripe_plugin.accounts import settings as payment_settings
from lms_stripe_plugin.core.models import PaymentMethodConfig, Purchase

from ..conftest import as_user
from .conftest import click_pay, csrf, pay, start_checkout


def _wallets_on(db, on: bool = True) -> None:
    payment_settings.save(db.session, {"wallets_enabled": on}, actor_id="adm")
    db.session.commit()


def _page(sandbox, session_id: str) -> str:
    return html.unescape(requests.get(f"{sandbox.url}/c/pay/{session_id}", timeout=5).text)


def _wallet_buttons(page: str) -> list[str]:
    return re.findall(r'id="wallet-([a-z_]+)"', page)


def test_a_session_with_wallets_on_shows_the_wallet_buttons_and_pays_with_one(stripe_app, client, db, sandbox):
    _wallets_on(db)
    response, session_id = start_checkout(client, "u1", "c1")
    assert response.status_code == 303
    assert _wallet_buttons(_page(sandbox, session_id)) == ["apple_pay", "google_pay"]
    session = sandbox.state.get(session_id)
    configuration = db.session.scalar(select(PaymentMethodConfig.stripe_configuration_id))
    assert session["payment_method_configuration_details"]["id"] == configuration
    assert session["payment_method_types"] == ["card", "sepa_debit"]  # SEPA is on in these settings, Klarna off

    assert pay(sandbox, session_id, wallet="apple_pay").status_code == 200
    db.session.expire_all()
    assert db.session.scalar(select(Purchase.status).where(Purchase.stripe_checkout_session_id == session_id)) == "paid"
    intent = sandbox.state.get(sandbox.state.get(session_id)["payment_intent"])
    assert sandbox.state.get(intent["latest_charge"])["payment_method_details"]["card"]["wallet"]["type"] == "apple_pay"

    _response, second = start_checkout(client, "emp", "c1")
    assert _wallet_buttons(_page(sandbox, second)) == ["apple_pay", "google_pay"]
    created = [c for c in sandbox.state.all("payment_method_configuration") if not c["is_default"]]
    assert [c["id"] for c in created] == [configuration]  # created once, then remembered


def test_a_session_with_wallets_off_shows_none(stripe_app, client, db, sandbox):
    _wallets_on(db, False)
    response, session_id = start_checkout(client, "u1", "c1")
    assert response.status_code == 303
    page = _page(sandbox, session_id)
    assert _wallet_buttons(page) == [] and 'id="card-number"' in page
    assert sandbox.state.get(session_id)["allowed_payment_method_types"] == ["card", "sepa_debit"]
    assert [c["is_default"] for c in sandbox.state.all("payment_method_configuration")] == [True]


def test_the_checkout_page_is_french_for_a_french_learner(stripe_app, client, db, host, sandbox):
    host.locale = "fr"
    _response, session_id = start_checkout(client, "u1", "c1")
    assert sandbox.state.get(session_id)["locale"] == "fr"
    page = _page(sandbox, session_id)
    assert '<html lang="fr">' in page
    assert "Coordonnées" in page and "Numéro de carte" in page and "Payer 49,90\xa0€" in page
    assert "Contact information" not in page

    host.locale = "en"
    _response, english = start_checkout(client, "emp", "c1")
    assert "Pay €49.90" in _page(sandbox, english)


# -- payment requests ---------------------------------------------------------------------------------

DUE = (date.today() + timedelta(days=20)).isoformat()


@pytest.fixture
def billing_app(stripe_app, tmp_path):
    stripe_app.config.update(LMS_STRIPE_MAIL_BACKEND="file", LMS_STRIPE_MAIL_FILE=str(tmp_path / "mail.mbox"),
                             LMS_STRIPE_MAIL_SENDER="École <noreply@ecole.test>")
    return stripe_app


def _request_link(client, amount: str = "100.00") -> str:
    from .test_payment_requests_e2e import _last_link, _new_invoice

    invoice_id = _new_invoice(client)
    path = f"/payments/admin/invoices/{invoice_id}/request"
    response = client.post(path, headers=as_user("adm"), data={
        "csrf_token": csrf(client, "adm", path), "amount": amount, "due": DUE, "email": "on", "locale": "fr"})
    assert response.status_code == 302, response.get_data(as_text=True)
    return _last_link(client.application)


def test_a_pay_click_with_wallets_on_names_the_configuration_once_it_is_known(billing_app, client, db, sandbox):
    _wallets_on(db)
    first = click_pay(client, _request_link(client))
    # The click's writes came first: the configuration is created once they are committed, for the next click.
    assert sandbox.state.get(first)["allowed_payment_method_types"] == ["card", "sepa_debit"]
    db.session.expire_all()
    configuration = db.session.scalar(select(PaymentMethodConfig.stripe_configuration_id))
    assert configuration is not None

    second = click_pay(client, _request_link(client))
    session = sandbox.state.get(second)
    assert session["payment_method_configuration_details"]["id"] == configuration
    assert session["payment_method_types"] == ["card", "sepa_debit"]  # Klarna excluded: never for a request
    page = _page(sandbox, second)
    assert _wallet_buttons(page) == ["apple_pay", "google_pay"] and '<html lang="fr">' in page
    assert pay(sandbox, second, wallet="google_pay").status_code == 200
