"""Payment links end to end, through the real SDK and the sandbox, webhooks delivered into the app: an
administrator creates a free-amount link, someone who is not signed in pays an amount of their choice typed in
French, Stripe issues the invoice, the payment is listed on the link; a link used up, disabled or expired is
refused with a message and no Checkout; the last use goes to one payer, and comes back when their Checkout
expires; reconciliation records a payment whose events were lost."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import pytest
import requests
from sqlalchemy import func, select

from lms_stripe_plugin.core.models import Invoice, PaymentAttempt, PaymentLink
from lms_stripe_plugin.sync.reconcile import reconcile

from ..conftest import as_user
from .conftest import csrf, pay

SECRET_KEY = "sk_test_sandbox_e2e"


@pytest.fixture
def links_app(stripe_app, host):
    host.locale = "fr"
    return stripe_app


def _create(client, **fields) -> tuple[int, str]:
    """The administrator's new link, through the page: (its id, its path)."""
    path = "/payments/admin/links/new"
    data = {"csrf_token": csrf(client, "adm", path), "title": "Voyage d'étude à Lyon",
            "purpose": "Participation aux frais du voyage", "kind": "free", "minimum": "10", "maximum": "500",
            "currency": "EUR", "vat_rate": "20", **fields}
    response = client.post(path, headers=as_user("adm"), data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    link_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    page = client.get(f"/payments/admin/links/{link_id}", headers=as_user("adm")).get_data(as_text=True)
    address = re.search(r'id="link-url" readonly value="([^"]+)"', page).group(1)
    return link_id, re.sub(r"^https?://lms\.test", "", address)


def _click(client, path: str, **fields):
    """The Pay click on a link's page (with this client's form token, also when the page shows no form)."""
    return client.post(path, data={"csrf_token": csrf(client, "adm", "/payments/admin/links/new"), **fields})


def _session_of(response) -> str:
    assert response.status_code == 303, response.get_data(as_text=True)
    return response.headers["Location"].rstrip("/").split("/")[-1]


def _plain(text: str) -> str:
    return text.replace("\u00a0", " ").replace("\u202f", " ")


def _link(db, link_id: int) -> PaymentLink:
    db.session.expire_all()
    return db.session.get(PaymentLink, link_id)


def _sessions(sandbox) -> int:
    return len(sandbox.state.all("checkout.session"))


def test_a_free_amount_link_paid_by_someone_not_signed_in(links_app, client, db, sandbox):
    link_id, path = _create(client, max_uses="30")
    page = _plain(client.get(path).get_data(as_text=True))
    assert "De 10,00 € à 500,00 € TTC." in page and 'lang="fr"' in page

    session_id = _session_of(_click(client, path, amount="49,90", name="Zoé Dupont", email="zoe@example.org"))
    assert _link(db, link_id).held == 1
    assert pay(sandbox, session_id).status_code == 200

    attempt = db.session.scalar(select(PaymentAttempt))
    assert (attempt.status, attempt.amount, attempt.stripe_checkout_session_id) == ("paid", 4990, session_id)
    link = _link(db, link_id)
    assert (link.uses, link.held) == (1, 0)
    invoice = db.session.get(Invoice, attempt.invoice_id)
    assert (invoice.source, invoice.user_id, invoice.user_name, invoice.user_email, invoice.status) == \
        ("link", None, "Zoé Dupont", "zoe@example.org", "paid")
    assert (invoice.gross, invoice.vat, invoice.net) == (4990, 832, 4158)  # VAT computed by Stripe, inclusive
    assert invoice.number and invoice.pdf_url and invoice.stripe_invoice_id.startswith("in_")

    # Stripe's invoice is made out to the payer, says who paid and names the link.
    stripe_invoice = links_app.extensions["lms_stripe"].gateway.retrieve_invoice(invoice.stripe_invoice_id,
                                                                                 api_key=SECRET_KEY)
    assert (stripe_invoice["status"], stripe_invoice["total"], stripe_invoice["customer_email"]) == \
        ("paid", 4990, "zoe@example.org")
    assert stripe_invoice["custom_fields"] == [{"name": "Payé par", "value": "Zoé Dupont"}]
    assert stripe_invoice["metadata"]["lms_link_id"] == str(link_id)

    back = _plain(client.get(f"{path}?session_id={session_id}").get_data(as_text=True))
    assert "Merci : votre paiement est reçu." in back
    listed = client.get(f"/payments/admin/links/{link_id}", headers=as_user("adm")).get_data(as_text=True)
    assert "Zoé Dupont" in listed and invoice.number in listed and "1 sur 30" in listed


def test_a_used_up_disabled_or_expired_link_is_refused_without_a_checkout(links_app, client, db, sandbox):
    used_id, used = _create(client, kind="fixed", amount="25", max_uses="1")
    pay(sandbox, _session_of(_click(client, used, name="Zoé", email="zoe@example.org")))
    assert _link(db, used_id).uses == 1
    disabled_id, disabled = _create(client)
    response = client.post(f"/payments/admin/links/{disabled_id}/disable", headers=as_user("adm"),
                           data={"csrf_token": csrf(client, "adm", f"/payments/admin/links/{disabled_id}")})
    assert response.status_code == 302
    expired_id, expired = _create(client, expires_on=date.today().isoformat())
    db.session.get(PaymentLink, expired_id).expires_at = datetime.now(timezone.utc) - timedelta(minutes=1)
    db.session.commit()
    sessions = _sessions(sandbox)
    for path, message in ((used, "a servi autant de fois qu’il le permet"), (disabled, "est désactivé"),
                          (expired, "a expiré")):
        assert message in client.get(path).get_data(as_text=True)
        refused = _click(client, path, amount="25", name="Yann", email="yann@example.org")
        assert refused.status_code == 409 and message in refused.get_data(as_text=True)
    assert _sessions(sandbox) == sessions
    assert db.session.scalar(select(func.count()).select_from(PaymentAttempt)) == 1


def test_the_last_use_goes_to_one_payer_and_comes_back_when_their_checkout_expires(links_app, client, db, sandbox):
    link_id, path = _create(client, max_uses="1")
    first = _session_of(_click(client, path, amount="30", name="Zoé", email="zoe@example.org"))
    assert "Toutes les utilisations" in client.get(path).get_data(as_text=True)
    refused = _click(client, path, amount="30", name="Yann", email="yann@example.org")
    assert refused.status_code == 409 and "Toutes les utilisations" in refused.get_data(as_text=True)
    # Zoé leaves: her Checkout expires at Stripe, whose event gives the use back.
    gateway = links_app.extensions["lms_stripe"].gateway
    gateway.expire_checkout_session(first, api_key=SECRET_KEY)
    sandbox.state.wait_for_deliveries(10)
    assert _link(db, link_id).held == 0
    second = _session_of(_click(client, path, amount="30", name="Yann", email="yann@example.org"))
    pay(sandbox, second)
    assert pay(sandbox, first).status_code >= 400  # Zoé's old tab pays nothing
    link = _link(db, link_id)
    assert (link.uses, link.held) == (1, 0)
    assert "a servi autant de fois" in client.get(path).get_data(as_text=True)


def test_reconcile_records_a_link_payment_whose_events_were_lost(links_app, client, db, sandbox, sink):
    link_id, path = _create(client)
    sink.drop = True
    session_id = _session_of(_click(client, path, amount="120", name="Zoé", email="zoe@example.org"))
    requests.post(f"{sandbox.url}/_sandbox/checkout/sessions/{session_id}/pay",
                  json={"card": "4242424242424242", "method": "card"}, timeout=10)
    sandbox.state.wait_for_deliveries(10)
    assert _link(db, link_id).uses == 0
    sink.drop = False
    state = links_app.extensions["lms_stripe"]
    since = datetime.now(timezone.utc) - timedelta(hours=1)
    report = reconcile(state, since=since)
    assert sorted(f.kind for f in report.findings) == ["checkout_session", "invoice"], report.lines(False)
    assert all(f.repaired for f in report.findings)
    link = _link(db, link_id)
    assert (link.uses, link.held) == (1, 0)
    attempt = db.session.scalar(select(PaymentAttempt))
    assert attempt.status == "paid" and db.session.get(Invoice, attempt.invoice_id).gross == 12000
    assert reconcile(state, since=since).findings == []
