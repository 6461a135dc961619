"""A click that gives up on a purchase (Stripe's final answer for its key) reads the purchase, then fails it.
The other click of the same purchase may record its Checkout Session between that read and that write (on
SQLite, where ``with_for_update`` locks nothing): the purchase must stay open for the session the learner was
sent to pay. On PostgreSQL the row lock makes the other click wait (the side write below times out)."""
import json

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from lms_stripe_plugin.core.models import Purchase
from lms_stripe_plugin.errors import GatewayError
from lms_stripe_plugin.shop import checkout

from .conftest import STRIPE, as_user
from .stripe_stubs import stub_customers, stub_tax_rate
from .test_checkout_races import KEY_IN_USE, _buy, _pay, _token

SESSIONS = f"{STRIPE}/v1/checkout/sessions"


@pytest.fixture
def open_purchase(client, db, people, priced, configured, stripe_http):
    """A purchase left open without a session: its click was told the key is in use (409)."""
    stub_tax_rate(stripe_http)
    stub_customers(stripe_http)
    stripe_http.add(stripe_http.POST, SESSIONS, status=KEY_IN_USE[0], body=json.dumps(KEY_IN_USE[1]),
                    content_type="application/json")
    assert _buy(client, _token(client)).status_code == 502
    db.session.expire_all()
    purchase = db.session.scalars(select(Purchase)).one()
    assert (purchase.status, purchase.stripe_checkout_session_id) == ("open", None)
    return purchase.id


def test_a_session_recorded_between_give_ups_read_and_write_keeps_the_purchase_open(app, client, db, host,
                                                                                   open_purchase, monkeypatch):
    engine = sa.create_engine(db.engine.url)
    real = checkout.transition_if

    def other_click_records_its_session_first(session, row, *args, **kwargs):
        # The other click's open_session commits its session here (it read the purchase open).
        try:
            with engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.text("SET LOCAL lock_timeout = '500ms'"))
                conn.execute(sa.text("UPDATE lms_stripe_purchases SET stripe_checkout_session_id = :cs, "
                                     "checkout_url = :url "
                                     "WHERE id = :id AND status = 'open'"), {"id": row.id, "cs": f"cs_test_{row.id:04d}",
                                      "url": f"https://checkout.stripe.com/c/pay/cs_test_{row.id:04d}"})
        except sa.exc.OperationalError:
            pass  # PostgreSQL: the row is locked by _give_up, the other click waits for it
        return real(session, row, *args, **kwargs)

    monkeypatch.setattr(checkout, "transition_if", other_click_records_its_session_first)
    checkout._give_up(db.session, open_purchase, GatewayError("refused", retryable=False))
    db.session.commit()
    engine.dispose()
    db.session.expire_all()
    purchase = db.session.get(Purchase, open_purchase)
    if db.engine.dialect.name == "postgresql":  # the other click waited for the lock, and gave up its write
        assert (purchase.status, purchase.stripe_checkout_session_id) == ("failed", None)
        return
    assert (purchase.status, purchase.stripe_checkout_session_id) == ("open", f"cs_test_{open_purchase:04d}")
    _pay(client, purchase, "evt_paid")  # the learner pays the session they were sent to
    db.session.expire_all()
    assert (db.session.get(Purchase, open_purchase).status, host.calls) == ("paid", [("enroll", "u1", "c1")])
