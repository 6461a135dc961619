"""Deposit terms in the course settings form: each bad input gets a clear message on its field and nothing is
stored; the database refuses the same terms written around the form; the Buy page offers the deposit."""
from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import MultiDict

from lms_stripe_plugin.accounts import settings as payment_settings
from lms_stripe_plugin.core.models import CourseOffer, Purchase
from lms_stripe_plugin.web.forms import SettingsSchema

from .conftest import KEYS, ON_POSTGRES, as_user, form_body
from .stripe_stubs import checkout_session, stub_create_session
from .test_hostile_input import send_signal

TOMORROW = (date.today() + timedelta(days=1)).isoformat()


def _form(**deposit) -> MultiDict:
    values = {"paid": "on", "price": "49.90", "currency": "EUR", "vat_rate": "20", "audience": "public",
              "on_sale": "on", "payment_plan": "deposit", "deposit_kind": "percent", "deposit_value": "30",
              "balance_due": "after_enrollment", "balance_due_days": "30", "deposit_access": "deposit"}
    values.update(deposit)
    return MultiDict({f"lms_stripe-{name}": value for name, value in values.items()})


def _save(app, priced, **deposit):
    with app.test_request_context(headers=as_user("adm")):
        return send_signal(app, "lms.course.settings_saved", course=priced["c1"], form=_form(**deposit))


def _offer(db) -> CourseOffer:
    db.session.expire_all()
    return db.session.scalar(select(CourseOffer).where(CourseOffer.course_id == "c1"))


def test_a_30_percent_deposit_is_stored(app, db, people, priced):
    assert _save(app, priced) is None
    db.session.commit()
    offer = _offer(db)
    assert (offer.payment_plan, offer.deposit_percent, offer.deposit_amount) == ("deposit", 3000, None)
    assert (offer.balance_due, offer.balance_due_days, offer.deposit_access) == ("after_enrollment", 30, "deposit")


def test_a_fixed_deposit_on_a_date_is_stored(app, db, people, priced):
    assert _save(app, priced, deposit_kind="amount", deposit_value="20.00", balance_due="date",
                 balance_due_date=TOMORROW, deposit_access="full") is None
    db.session.commit()
    offer = _offer(db)
    assert (offer.deposit_amount, offer.deposit_percent, offer.balance_due_date.isoformat(),
            offer.balance_due_days) == (2000, None, TOMORROW, None)


@pytest.mark.parametrize("deposit, field, message", [
    ({"deposit_kind": "amount", "deposit_value": "0.10"}, "deposit_value", "Stripe's minimum"),
    ({"deposit_kind": "amount", "deposit_value": "49.90"}, "deposit_value", "must be below the price"),
    ({"deposit_kind": "amount", "deposit_value": "60"}, "deposit_value", "must be below the price"),
    ({"deposit_kind": "amount", "deposit_value": "49.70"}, "deposit_value", "balance left after the deposit"),
    ({"deposit_value": "100"}, "deposit_value", "above 0 and below 100"),
    ({"deposit_value": "0"}, "deposit_value", "above 0 and below 100"),
    ({"deposit_value": "-5"}, "deposit_value", "above 0 and below 100"),
    ({"deposit_value": "0.5"}, "deposit_value", "Stripe's minimum"),  # 0.5 % of €49.90 is €0.25
    ({"deposit_value": ""}, "deposit_value", "Enter the deposit"),
    ({"deposit_kind": "both"}, "deposit_kind", "percentage or an amount"),
    ({"balance_due": "date", "balance_due_date": "2020-01-01"}, "balance_due_date", "after today"),
    ({"balance_due": "date", "balance_due_date": date.today().isoformat()}, "balance_due_date", "after today"),
    ({"balance_due": "date", "balance_due_date": "31/12/2030"}, "balance_due_date", "as 2027-03-31"),
    ({"balance_due_days": "0"}, "balance_due_days", "at least 1 day"),
    ({"balance_due_days": "9999"}, "balance_due_days", "from 0 to 3650"),
    ({"balance_due_days": "٣"}, "balance_due_days", "from 0 to 3650"),
    ({"balance_due": "before_start"}, "balance_due", "no start date"),
    ({"balance_due": "tomorrow"}, "balance_due", "when the balance is due"),
    ({"deposit_access": "never"}, "deposit_access", "access to the course"),
    ({"payment_plan": "layaway"}, "payment_plan", "full payment or a deposit"),
])
def test_bad_deposit_terms_are_refused_with_a_message_and_nothing_is_stored(app, db, people, priced, deposit,
                                                                          field, message):
    answer = _save(app, priced, **deposit)
    assert answer is not None and message in answer[f"lms_stripe-{field}"], answer
    db.session.rollback()
    assert _offer(db).payment_plan == "full"


def test_a_balance_due_before_the_start_needs_a_start_date_to_come(app, db, people, priced, host, monkeypatch):
    monkeypatch.setattr(host, "course_start", lambda course: date.today() + timedelta(days=10), raising=False)
    assert "in the past" in _save(app, priced, balance_due="before_start", balance_due_days="10")[
        "lms_stripe-balance_due_days"]
    assert _save(app, priced, balance_due="before_start", balance_due_days="7") is None


@pytest.mark.parametrize("changes", [
    {"payment_plan": "deposit"},  # no terms
    {"payment_plan": "deposit", "deposit_amount": 4990, "balance_due": "after_enrollment", "balance_due_days": 3,
     "deposit_access": "deposit"},  # not below the price
    {"payment_plan": "deposit", "deposit_percent": 3000, "deposit_amount": 100, "balance_due": "after_enrollment",
     "balance_due_days": 3, "deposit_access": "deposit"},  # both a share and an amount
    {"payment_plan": "deposit", "deposit_percent": 10000, "balance_due": "after_enrollment", "balance_due_days": 3,
     "deposit_access": "deposit"},
    {"payment_plan": "deposit", "deposit_percent": 3000, "balance_due": "date", "deposit_access": "deposit"},
    {"payment_plan": "deposit", "deposit_percent": 3000, "balance_due": "before_start", "balance_due_days": 5000,
     "deposit_access": "deposit"},
])
def test_the_database_refuses_bad_terms_written_around_the_form(db, priced, changes):
    offer = _offer(db)
    for name, value in changes.items():
        setattr(offer, name, value)
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_the_database_refuses_a_deposit_not_below_the_purchase(db, people, priced):
    db.session.add(Purchase(user_id="u1", course_id="c1", amount=4990, currency="EUR", deposit_amount=4990,
                            balance_due_at=None, access_on_deposit=True))
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_the_payment_page_offers_the_deposit(app, client, db, people, priced, configured):
    assert _save(app, priced) is None
    db.session.commit()
    page = client.get("/payments/courses/c1", headers=as_user("u1")).get_data(as_text=True)
    assert "Pay a deposit of €14.97" in page and "Then €34.93, due by" in page


@pytest.mark.parametrize("typed, loaded", [("", 7), ("0", 0), ("14", 14), ("365", 365), ("366", None), ("-1", None),
                                           ("٣", None), ("7d", None)])
def test_the_grace_period_is_a_number_of_days(app, typed, loaded):
    form = MultiDict({"default_currency": "EUR", "default_vat_rate": "20", "balance_grace_days": typed})
    with app.test_request_context():
        if loaded is None:
            with pytest.raises(ValidationError) as refused:
                SettingsSchema().load_form(form)
            assert "from 0 to 365" in str(refused.value.messages["balance_grace_days"])
        else:
            assert SettingsSchema().load_form(form)["balance_grace_days"] == loaded


def test_the_deposit_checkout_session_charges_the_deposit_only(app, client, db, people, priced, stripe_http):
    """What Stripe is sent (the real SDK, Stripe's HTTP stubbed): the deposit as the one line, no invoice
    creation (the invoice of the full price comes after), no tax rate on the deposit, no promotion code."""
    payment_settings.save(db.session, {"enabled": True, "vouchers_enabled": True, **KEYS}, actor_id="adm")
    db.session.commit()
    assert _save(app, priced) is None
    db.session.commit()
    purchase_id = 1
    stub_create_session(stripe_http, checkout_session(purchase_id, amount=1497))
    page = client.get("/payments/courses/c1", headers=as_user("u1")).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/payments/checkout/c1", data={"csrf_token": token}, headers=as_user("u1"))
    assert response.status_code == 303
    sent = form_body(stripe_http.calls[-1].request)
    assert sent["line_items[0][price_data][unit_amount]"] == "1497" and sent["mode"] == "payment"
    assert sent["line_items[0][price_data][product_data][name]"] == "Deposit: Python basics"
    assert not any(key.startswith(("invoice_creation", "line_items[0][tax_rates]", "allow_promotion_codes"))
                   for key in sent)
    purchase = db.session.get(Purchase, purchase_id)
    assert (purchase.amount, purchase.deposit_amount, purchase.access_on_deposit) == (4990, 1497, True)
    assert purchase.balance_due_at.date() == date.today() + timedelta(days=30)


# -- the balance paid while its suspension is being written (PostgreSQL) --------------------------------------

@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="a suspension racing with the payment needs PostgreSQL")
def test_a_balance_paid_while_its_access_is_being_suspended_ends_with_access(app, client, db, host, people, priced,
                                                                           configured, monkeypatch):
    """The reminders run finds the balance overdue and suspends the access; the payment's ``invoice.paid`` is
    handled by another worker at the same moment. Whichever commits first, the learner who paid keeps (or gets
    back) the course and no suspension is left in force."""
    import threading

    from lms_stripe_plugin.core.models import Invoice, InvoiceLine, Suspension, utcnow
    from lms_stripe_plugin.shop import deposits
    from lms_stripe_plugin.testing import post_webhook

    from .request_stubs import CREATED, admin_invoice
    from .stripe_stubs import event

    purchase = Purchase(user_id="u1", course_id="c1", amount=30000, currency="EUR", vat_rate=2000, status="paid",
                        deposit_amount=9000, access_on_deposit=True, amount_paid=9000,
                        balance_due_at=utcnow() - timedelta(days=30), stripe_payment_intent_id="pi_dep")
    db.session.add(purchase)
    db.session.flush()
    invoice = Invoice(stripe_invoice_id="in_test_open_1", source="deposit", purchase_id=purchase.id, user_id="u1",
                      currency="EUR", net=25000, vat=5000, gross=30000, amount_paid=9000, amount_remaining=21000,
                      status="open", stripe_customer_id="cus_test_1", course_id="c1", number="ABC-0100")
    invoice.lines = [InvoiceLine(position=1, description="Course", gross=30000, vat_rate=2000, net=25000, vat=5000)]
    db.session.add(invoice)
    db.session.commit()
    purchase_id, invoice_id = purchase.id, invoice.id
    read, paid = threading.Event(), threading.Event()
    real = deposits._locked

    def read_then_paid(session, purchase_id):  # the purchase is read; the payment comes before the suspension
        found = real(session, purchase_id)
        read.set()
        paid.wait(3)  # the payment waits on the purchase's row, if the suspension locked it
        return found

    monkeypatch.setattr(deposits, "_locked", read_then_paid)
    failures = []

    def suspend():
        try:
            with app.app_context():
                deposits.suspend(app.extensions["lms_stripe"], purchase_id)
                db.session.commit()
        except Exception as err:  # noqa: BLE001 - reported below
            failures.append(err)

    def pay():
        try:
            read.wait(10)
            body = dict(event("invoice.paid", admin_invoice(invoice_id, status="paid", paid=30000), "evt_paid"),
                        created=CREATED)
            assert post_webhook(app.test_client(), body, KEYS["webhook_secrets"][0]).status_code == 200
            paid.set()
        except Exception as err:  # noqa: BLE001 - reported below
            failures.append(err)

    threads = [threading.Thread(target=suspend), threading.Thread(target=pay)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    db.session.expire_all()
    assert db.session.get(Purchase, purchase_id).balance_paid_at is not None
    assert None not in db.session.scalars(select(Suspension.restored_at)).all()  # none left in force
    assert host.calls[-1] == ("enroll", "u1", "c1")


# (invoice status or None, deposit attached, on the balance, balance asked, remaining) → unfinished?
_DEPOSIT_STATES = [
    (None, False, False, False, 0, True),
    ("issuing", False, False, False, 21000, True),
    ("open", True, False, True, 21000, False),
    ("open", True, False, False, 21000, True),  # the balance not asked yet
    ("open", True, False, False, 0, False),
    ("open", False, False, True, 21000, True),  # the deposit not attached
    ("open", False, True, True, 21000, False),  # on the balance (the invoice owed less), the rest asked
    ("paid", True, False, False, 0, False),
    ("paid", False, False, False, 0, True),  # paid otherwise: the deposit still to put on the balance
    ("paid", False, True, False, 0, False),
    ("void", False, False, False, 30000, True),  # voided: the deposit still to put on the balance
    ("void", False, True, False, 30000, False),
    ("void", True, False, False, 21000, False),
]


def test_reconcile_finds_the_unfinished_deposits_in_one_query(app, db, people, priced, host):
    """Every state of a deposit's follow-up work, and a purchase that is not paid: the deposits reconcile must
    finish, read in one statement whatever their number, and the same as the rule for one purchase says."""
    from lms_stripe_plugin.core.models import Invoice, InvoicePayment, PaymentRequest, TopUp, utcnow
    from lms_stripe_plugin.shop import deposits

    from .request_support import open_request
    from .test_catalog import sql_statements

    expected = []
    for n, (status, attached, on_balance, asked, remaining, unfinished) in enumerate(_DEPOSIT_STATES):
        purchase = Purchase(user_id="u1", course_id=f"dep{n}", amount=30000, currency="EUR", vat_rate=2000,
                            status="paid", deposit_amount=9000, amount_paid=9000, balance_due_at=utcnow(),
                            access_on_deposit=True, stripe_payment_intent_id=f"pi_dep_{n}",
                            stripe_checkout_session_id=f"cs_dep_{n}")
        db.session.add(purchase)
        db.session.flush()
        if unfinished:
            expected.append(purchase.id)
        if status is None:
            continue
        invoice = Invoice(stripe_invoice_id=f"in_dep_{n}", source="deposit", purchase_id=purchase.id, user_id="u1",
                          currency="EUR", net=25000, vat=5000, gross=30000, amount_paid=30000 - remaining,
                          amount_remaining=remaining, status=status, course_id=f"dep{n}", number=f"DEP-{n:04d}")
        db.session.add(invoice)
        db.session.flush()
        if attached:
            db.session.add(InvoicePayment(invoice_id=invoice.id, stripe_invoice_payment_id=f"inpay_dep_{n}",
                                          stripe_payment_intent_id=f"pi_dep_{n}", amount=9000, currency="EUR",
                                          status="paid"))
        if on_balance:
            db.session.add(TopUp(user_id="u1", amount=9000, currency="EUR", status="paid", purchase_id=purchase.id,
                                 stripe_payment_intent_id=f"pi_dep_{n}"))
        db.session.commit()
        if asked:
            request_id, _token = open_request(db, invoice.id, amount=remaining or 1)
            db.session.get(PaymentRequest, request_id).balance_of = purchase.id
            db.session.commit()
    db.session.add(Purchase(user_id="u1", course_id="c2", amount=30000, currency="EUR", status="open",
                            deposit_amount=9000, balance_due_at=utcnow(), access_on_deposit=True,
                            stripe_checkout_session_id="cs_dep_open"))
    # Closed: by its invoice voided, the deposit still to put on the balance, or put there; by a cancellation.
    closed: list[int] = []
    for n, (status, on_balance, unfinished) in enumerate((("void", False, True), ("void", True, False),
                                                          ("cancelled", False, False)), start=100):
        purchase = Purchase(user_id="u1", course_id=f"dep{n}", amount=30000, currency="EUR", status="cancelled",
                            deposit_amount=9000, amount_paid=9000, balance_due_at=utcnow(), access_on_deposit=True,
                            stripe_payment_intent_id=f"pi_dep_{n}", stripe_checkout_session_id=f"cs_dep_{n}")
        db.session.add(purchase)
        db.session.flush()
        db.session.add(Invoice(stripe_invoice_id=f"in_dep_{n}", source="deposit", purchase_id=purchase.id,
                               user_id="u1", currency="EUR", net=25000, vat=5000, gross=30000, amount_paid=0,
                               amount_remaining=30000, status=status, course_id=f"dep{n}", number=f"DEP-{n:04d}"))
        if on_balance:
            db.session.add(TopUp(user_id="u1", amount=9000, currency="EUR", status="paid", purchase_id=purchase.id,
                                 stripe_payment_intent_id=f"pi_dep_{n}"))
        if unfinished:
            closed.append(purchase.id)
    db.session.commit()

    with sql_statements(db) as statements:
        found = deposits.unfinished(db.session)
    assert found == expected + closed and len(statements) == 1
    by_rule = [purchase.id for purchase in db.session.scalars(select(Purchase).where(Purchase.status == "paid"))
               if (invoice := deposits._invoice_of(db.session, purchase.id)) is None
               or not deposits._done(db.session, purchase, invoice)]
    assert by_rule == expected
