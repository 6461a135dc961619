"""One course priced in EUR, CHF and USD, bought by three learners each in their currency, through the real SDK
and the sandbox: the Checkout Sessions, the invoices, the totals and the CSV in three currencies; a fixed-amount
promotion code in EUR refused on a CHF checkout."""
import requests
from sqlalchemy import select

from lms_stripe_plugin.accounts import settings as payment_settings
from lms_stripe_plugin.core.models import Invoice, Purchase
from lms_stripe_plugin.money import Money
from lms_stripe_plugin.shop.offers import save_offer

from ..conftest import as_user
from .conftest import csrf, pay

PRICES = {"EUR": 4990, "CHF": 4700, "USD": 5400}
LEARNERS = {"u1": "EUR", "u2": "CHF", "par": "USD"}


def _price_in_three_currencies(db):
    payment_settings.save(db.session, {"other_currencies": "CHF USD"}, actor_id="adm")
    save_offer(db.session, "c1", {"is_paid": True, "amount": PRICES["EUR"], "currency": "EUR", "vat_rate": 2000,
                                  "audience": "public", "on_sale": True,
                                  "prices": {"CHF": PRICES["CHF"], "USD": PRICES["USD"]}}, actor_id="adm")
    db.session.commit()


def _choose_then_buy(client, user: str, currency: str):
    """The learner picks their currency with the switcher, then clicks Buy on the course's page."""
    token = csrf(client, user)
    chosen = client.post("/payments/currency", data={"csrf_token": token, "currency": currency,
                                                     "next": "/payments/courses/c1"}, headers=as_user(user))
    assert chosen.status_code == 303 and chosen.headers["Location"] == "/payments/courses/c1", chosen.get_data(as_text=True)[-600:]
    page = client.get("/payments/courses/c1", headers=as_user(user)).get_data(as_text=True)
    assert f'name="currency" value="{currency}"' in page
    response = client.post("/payments/checkout/c1", data={"csrf_token": token, "currency": currency},
                           headers=as_user(user))
    assert response.status_code == 303, response.get_data(as_text=True)
    return response.headers["Location"].rstrip("/").split("/")[-1]


def test_three_learners_pay_one_course_in_three_currencies(stripe_app, db, sandbox):
    _price_in_three_currencies(db)
    client = stripe_app.test_client()  # one browser, three learners in turn (one CSRF token: the app's `g` is shared)
    for user, currency in LEARNERS.items():
        session_id = _choose_then_buy(client, user, currency)
        created = sandbox.state.get(session_id)
        assert (created["currency"], created["amount_total"]) == (currency.lower(), PRICES[currency])
        assert pay(sandbox, session_id).status_code == 200
    db.session.expire_all()
    purchases = {p.user_id: (p.status, p.amount, p.currency) for p in db.session.scalars(select(Purchase))}
    assert purchases == {user: ("paid", PRICES[currency], currency) for user, currency in LEARNERS.items()}
    invoices = {(i.currency, i.gross) for i in db.session.scalars(select(Invoice))}
    assert invoices == {(currency, amount) for currency, amount in PRICES.items()}
    for invoice in db.session.scalars(select(Invoice)):
        stripe_invoice = sandbox.state.get(invoice.stripe_invoice_id)
        assert (stripe_invoice["currency"], stripe_invoice["total"]) == (invoice.currency.lower(), invoice.gross)

    admin = stripe_app.test_client()
    listing = admin.get("/payments/admin/invoices", headers=as_user("adm")).get_data(as_text=True)
    shown = [Money(amount, currency).format("en") for currency, amount in PRICES.items()]
    assert "€49.90" in shown and "$54.00" in shown
    assert all(text in listing for text in shown)
    totals = admin.get("/payments/admin/invoices/totals", headers=as_user("adm")).get_data(as_text=True)
    assert all(text in totals for text in shown)
    csv = admin.get("/payments/admin/invoices.csv", headers=as_user("adm")).get_data(as_text=True)
    rows = [line for line in csv.splitlines()[1:] if line.strip()]
    assert len(rows) == 3 and {code for code in PRICES if any(code in row for row in rows)} == set(PRICES)


def test_a_fixed_amount_code_in_euros_is_refused_on_a_swiss_franc_checkout(stripe_app, db, sandbox):
    _price_in_three_currencies(db)
    key = {"Authorization": "Bearer sk_test_sandbox_e2e"}
    coupon = requests.post(f"{sandbox.url}/v1/coupons", headers=key, timeout=5,
                           data={"amount_off": 1000, "currency": "eur", "duration": "once"}).json()
    promo = requests.post(f"{sandbox.url}/v1/promotion_codes", headers=key, timeout=5,
                          data={"promotion[type]": "coupon", "promotion[coupon]": coupon["id"], "code": "TENEUROS"})
    assert promo.status_code == 200, promo.text

    client = stripe_app.test_client()
    session_id = _choose_then_buy(client, "u2", "CHF")
    refused = pay(sandbox, session_id, promotion_code="TENEUROS")
    assert refused.status_code == 400 and "invalid" in refused.json()["error"]["message"]
    assert sandbox.state.get(session_id)["status"] == "open"
    assert pay(sandbox, session_id, promotion_code="WELCOME10").status_code == 200  # a percentage: any currency
    db.session.expire_all()
    purchase = db.session.scalar(select(Purchase).where(Purchase.user_id == "u2"))
    assert (purchase.status, purchase.currency, purchase.amount_paid) == ("paid", "CHF", 4230)

    session_id = _choose_then_buy(client, "u1", "EUR")
    assert pay(sandbox, session_id, promotion_code="TENEUROS").status_code == 200  # in its own currency
    db.session.expire_all()
    purchase = db.session.scalar(select(Purchase).where(Purchase.user_id == "u1"))
    assert (purchase.status, purchase.currency, purchase.amount_paid) == ("paid", "EUR", 3990)
