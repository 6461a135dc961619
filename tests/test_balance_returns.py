"""What Stripe gives back to a learner's prepaid balance, recorded on the ledger from its events (credit notes
with a customer balance credit, a voided invoice's applied credit, an overpayment), once each whatever the
order and the repeats; and the cancellation of an invoice the balance paid, which credits the balance's part
back and refunds the rest (the card first for a partial refund). Stripe is stubbed at the HTTP boundary."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from lms_stripe_plugin.billing import balances
from lms_stripe_plugin.core.enums import BalanceEntryKind
from lms_stripe_plugin.core.models import Balance, BalanceEntry, Invoice, Purchase
from lms_stripe_plugin.refunds import cancellation

from .conftest import stripe_object
from .refund_support import paid_purchase, send_event
from .request_stubs import STRIPE_INVOICE, admin_invoice
from .request_support import open_invoice


@pytest.fixture
def owed(db, host, people, configured):
    """An administrator's invoice of 300.00 € to Léa (u1), Stripe's in_test_open_1."""
    return open_invoice(db, host)


def _deliver(client, event_type: str, obj: dict, event_id: str) -> None:
    response = send_event(client, event_type, obj, event_id)
    assert response.status_code == 200 and response.json["status"] in ("handled", "duplicate", "stale"), \
        response.get_json()


def _ledger(db) -> list[tuple[str, int, str]]:
    db.session.expire_all()
    return [(e.kind, e.amount, e.key) for e in db.session.scalars(select(BalanceEntry).order_by(BalanceEntry.id))]


def _balance(db) -> int:
    db.session.expire_all()
    return db.session.scalar(select(Balance.amount).where(Balance.user_id == "u1")) or 0


def _credit(db, amount: int) -> None:
    balances.post(db.session, user_id="u1", currency="EUR", amount=amount, kind=BalanceEntryKind.CREDIT,
                  key="admin-test", reason="Test", actor_id="adm")
    db.session.commit()


def _applied(invoice_id: int, *, status: str, start: int, end: int, created: int | None = None, **fields) -> dict:
    invoice = admin_invoice(invoice_id, status=status, **fields)
    invoice.update(starting_balance=start, ending_balance=end, amount_due=invoice["total"] + (start - end))
    if created is not None:
        invoice["created"] = created
    return invoice


def test_a_voided_invoice_gives_back_the_credit_it_used_once(client, db, owed):
    _credit(db, 5000)
    _deliver(client, "invoice.finalized", _applied(owed, status="open", start=-5000, end=0), "evt_fin")
    assert _balance(db) == 0
    voided = _applied(owed, status="void", start=-5000, end=0)
    _deliver(client, "invoice.voided", voided, "evt_void")
    _deliver(client, "invoice.voided", voided, "evt_void_again")  # a second event of the same void
    assert _ledger(db)[1:] == [("spent", -5000, f"spent-{STRIPE_INVOICE}"),
                               ("unapplied", 5000, f"unapplied-{STRIPE_INVOICE}")]
    assert _balance(db) == 5000 and db.session.get(Invoice, owed).status == "void"


def test_a_void_seen_before_its_finalization_records_the_spending_and_its_return(client, db, owed):
    _credit(db, 2000)
    _deliver(client, "invoice.voided", _applied(owed, status="void", start=-2000, end=0), "evt_void")
    assert [kind for kind, _amount, _key in _ledger(db)] == ["credit", "spent", "unapplied"]
    assert _balance(db) == 2000


def test_a_voided_invoice_that_used_no_credit_gives_nothing_back(client, db, owed):
    _deliver(client, "invoice.voided", _applied(owed, status="void", start=0, end=0), "evt_void")
    assert _ledger(db) == []


def test_an_overpayment_is_recorded_as_it_grows_and_never_backwards(client, db, owed):
    paid = admin_invoice(owed, status="paid", paid=30500)
    paid.update(amount_overpaid=500, created=1767225600)
    _deliver(client, "invoice.updated", paid, "evt_over_1")
    more = {**paid, "amount_paid": 30800, "amount_overpaid": 800}
    _deliver(client, "invoice.updated", more, "evt_over_2")
    _deliver(client, "invoice.updated", paid, "evt_over_1_again")  # an older snapshot, late
    assert _ledger(db) == [("overpaid", 500, f"overpaid-{STRIPE_INVOICE}-500"),
                           ("overpaid", 300, f"overpaid-{STRIPE_INVOICE}-800")]
    assert _balance(db) == 800


def _credit_note(**fields) -> dict:
    return stripe_object("credit_note", id="cn_test_bal", invoice=STRIPE_INVOICE, amount=4000, total=4000,
                         currency="eur", number="ABC-0100-CN-01", status="issued", reason="order_change",
                         pdf="https://pay.stripe.com/credit_notes/cn_test_bal/pdf", **fields)


@pytest.mark.parametrize("fields, credited", [
    # What Stripe credits to the balance: the post-payment part neither refunded nor credited out of band.
    ({"customer_balance_transaction": "cbtxn_test_1", "post_payment_amount": 4000, "pre_payment_amount": 0,
      "refunds": [{"amount_refunded": 1000, "refund": "re_test_9", "type": "refund"}], "out_of_band_amount": 500},
     2500),
    ({"customer_balance_transaction": "cbtxn_test_1", "post_payment_amount": 3000, "pre_payment_amount": 1000,
      "refunds": [], "out_of_band_amount": None}, 3000),
    # No customer balance transaction: nothing went to the balance.
    ({"customer_balance_transaction": None, "post_payment_amount": 4000, "pre_payment_amount": 0,
      "refunds": [{"amount_refunded": 4000, "refund": "re_test_9", "type": "refund"}]}, 0),
])
def test_a_credit_notes_credit_to_the_balance_is_recorded_once(client, db, owed, fields, credited):
    note = _credit_note(**fields)
    _deliver(client, "credit_note.created", note, "evt_cn_1")
    _deliver(client, "credit_note.updated", note, "evt_cn_2")
    if credited:
        assert _ledger(db) == [("credit_note", credited, "credit-note-cn_test_bal")]
        entry = db.session.scalar(select(BalanceEntry))
        assert (entry.invoice_id, entry.stripe_transaction_id) == (owed, "cbtxn_test_1")
    else:
        assert _ledger(db) == []


@pytest.mark.parametrize("order", [("created", "voided"), ("voided", "created")])
def test_a_voided_credit_note_leaves_the_balance_as_stripe_does(client, db, owed, order):
    # Stripe voids only the credit notes of open invoices: pre-payment ones, which lower what remains and credit
    # no balance. The credit the invoice's finalization applied stays spent, the void gives nothing back.
    _credit(db, 5000)
    _deliver(client, "invoice.finalized", _applied(owed, status="open", start=-5000, end=0), "evt_fin")
    issued = _credit_note(customer_balance_transaction=None, pre_payment_amount=4000, post_payment_amount=0,
                          refunds=[], type="pre_payment")
    snapshots = {"created": issued, "voided": {**issued, "status": "void", "voided_at": 1767300000}}
    for step in order:
        _deliver(client, f"credit_note.{step}", snapshots[step], f"evt_cn_{step}")
    assert _ledger(db)[1:] == [("spent", -5000, f"spent-{STRIPE_INVOICE}")]
    assert _balance(db) == 0 and balances.spent_on(db.session, owed) == 5000


def _balance_purchase(db, host, *, card: int, spent: int) -> Invoice:
    """A course of 49.90 € paid ``spent`` from the balance (at the invoice's finalization) and ``card`` by card."""
    purchase_id, invoice_id = paid_purchase(db, host)
    invoice = db.session.get(Invoice, invoice_id)
    invoice.source, invoice.amount_paid = "balance", card
    db.session.get(Purchase, purchase_id).stripe_payment_intent_id = None
    balances.post(db.session, user_id="u1", currency="EUR", amount=spent, kind=BalanceEntryKind.TOPUP, key="topup-t")
    balances.post(db.session, user_id="u1", currency="EUR", amount=-spent, kind=BalanceEntryKind.SPENT,
                  key="spent-in_test_1", invoice_id=invoice_id)
    db.session.commit()
    return invoice


@pytest.mark.parametrize("card, spent, amount, refunded, credited", [
    (0, 4990, None, None, 4990),  # all from the balance: all back to it, nothing refunded
    (2990, 2000, None, 2990, 2000),  # a cancellation: the card's part refunded, the balance's credited
    (2990, 2000, 1000, 1000, None),  # a partial refund: the card first
    (2990, 2000, 3500, 2990, 510),  # then the balance
    (0, 4990, 1500, None, 1500),
])
def test_the_credit_note_of_an_invoice_the_balance_paid_credits_its_part_back(app, db, host, people, priced,
                                                                            configured, card, spent, amount,
                                                                            refunded, credited):
    invoice = _balance_purchase(db, host, card=card, spent=spent)
    state = app.extensions["lms_stripe"]
    assert (cancellation.refundable(invoice, db.session), cancellation.to_balance(invoice, db.session)) == \
        (4990, spent)
    if amount is None:
        plan = cancellation.request_cancel(state, invoice, actor_id="adm", reason=None)
    else:
        plan = cancellation.request_part(state, invoice, amount=amount, revoke=False, actor_id="adm", reason=None)
    params = plan.credit_note
    assert (params["amount"], params.get("refund_amount"), params.get("credit_amount")) == \
        (amount or 4990, refunded, credited)
