"""A pre-payment credit note voided while its invoice is open (in Stripe's Dashboard: ``POST
/v1/credit_notes/{id}/void``, ``credit_note.voided``) gives back to what remains what it took off, as Stripe's
invoice does (its amount_due and amount_remaining come back up, its pre_payment_credit_notes_amount down).

What remains otherwise only shrinks (snapshots of one second come in any order), so the events of an
administrator's invoice and of its credit notes are delivered here in every order, in one second or seconds
apart, and in random lives of payments, credit notes and voids: once every event is in, what remains is
Stripe's. Nothing is read from Stripe (`stripe_http` fails any call)."""
from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select

from lms_stripe_plugin.core.models import AuditEntry, CreditNote, Invoice
from lms_stripe_plugin.testing import post_webhook

from .conftest import KEYS, stripe_object
from .request_stubs import CREATED, STRIPE_INVOICE
from .request_support import open_invoice
from .stripe_stubs import event

SECRET = KEYS["webhook_secrets"][0]


@pytest.fixture
def owed(db, host, people, configured):
    """An administrator's invoice of 300 €, issued and open, nothing paid."""
    return open_invoice(db, host)


@dataclass
class StripeInvoice:
    """Stripe's side of the invoice: what was paid and its credit notes, and the events it sends for each change
    (in Stripe's order), each with its second."""

    invoice_id: int
    total: int = 30000
    paid: int = 0
    notes: dict[str, tuple[int, str]] = field(default_factory=dict)  # id -> (amount, status)
    events: list[tuple[str, dict, int]] = field(default_factory=list)

    @property
    def credited(self) -> int:
        return sum(amount for amount, status in self.notes.values() if status == "issued")

    @property
    def remaining(self) -> int:
        return max(0, self.total - self.credited - self.paid)

    def snapshot(self) -> dict:
        due = self.total - self.credited
        return stripe_object(
            "invoice", id=STRIPE_INVOICE, number="ABC-0100", total=self.total, amount_due=due,
            amount_paid=self.paid, amount_remaining=self.remaining, pre_payment_credit_notes_amount=self.credited,
            currency="eur", status="open", collection_method="send_invoice", customer="cus_test_1",
            metadata={"lms_invoice_id": str(self.invoice_id), "lms_user_id": "u1"},
            invoice_pdf=f"https://pay.stripe.com/invoice/{STRIPE_INVOICE}/pdf",
            hosted_invoice_url=f"https://invoice.stripe.com/i/{STRIPE_INVOICE}",
            status_transitions={"finalized_at": CREATED, "paid_at": None, "marked_uncollectible_at": None,
                                "voided_at": None})

    def note(self, note_id: str, second: int) -> dict:
        amount, status = self.notes[note_id]
        return stripe_object(
            "credit_note", id=note_id, invoice=STRIPE_INVOICE, amount=amount, subtotal=amount, total=amount,
            currency="eur", number=f"ABC-0100-CN-{note_id[-2:]}", reason="order_change", status=status,
            type="pre_payment", pre_payment_amount=amount, post_payment_amount=0, out_of_band_amount=None,
            refunds=[], customer_balance_transaction=None, created=CREATED,
            voided_at=CREATED + second if status == "void" else None,
            pdf=f"https://pay.stripe.com/credit_notes/{note_id}/pdf")

    def credit(self, note_id: str, amount: int, second: int) -> None:
        """``POST /v1/credit_notes``: all of it pre-payment (less than remains: the invoice stays open)."""
        assert 0 < amount < self.remaining
        self.notes[note_id] = (amount, "issued")
        self.events += [("credit_note.created", self.note(note_id, second), second),
                        ("invoice.updated", self.snapshot(), second)]

    def void(self, note_id: str, second: int) -> None:
        """``POST /v1/credit_notes/{id}/void``."""
        self.notes[note_id] = (self.notes[note_id][0], "void")
        self.events += [("credit_note.voided", self.note(note_id, second), second),
                        ("invoice.updated", self.snapshot(), second)]

    def pay(self, amount: int, second: int) -> None:
        assert 0 < amount < self.remaining
        self.paid += amount
        self.events.append(("invoice.updated", self.snapshot(), second))


def _deliver(client, events: list[tuple[str, dict, int]], prefix: str = "evt") -> None:
    for position, (event_type, obj, second) in enumerate(events):
        body = event(event_type, obj, f"{prefix}_{position}_{event_type.replace('.', '_')}")
        body["created"] = CREATED + second
        response = post_webhook(client, body, SECRET)
        assert response.status_code == 200, response.get_json()
        assert response.json["status"] in ("handled", "outdated"), (event_type, response.json)


def _ours(db, invoice_id: int) -> tuple[str, int, int]:
    db.session.expire_all()
    invoice = db.session.get(Invoice, invoice_id)
    return invoice.status, invoice.amount_paid, invoice.amount_remaining


# -- 300 €, a credit note of 60 €, voided ----------------------------------------------------------------------

ORDERS = list(itertools.permutations(range(4)))


@pytest.mark.parametrize("apart", [5, 0], ids=["seconds-apart", "one-second"])
@pytest.mark.parametrize("order", ORDERS, ids=["-".join(map(str, order)) for order in ORDERS])
def test_a_voided_credit_note_gives_back_what_it_took_off_in_any_order(client, db, owed, stripe_http, order, apart):
    stripe = StripeInvoice(owed)
    stripe.credit("cn_test_v01", 6000, second=1)
    assert stripe.remaining == 24000
    stripe.void("cn_test_v01", second=1 + apart)
    assert stripe.remaining == 30000
    events = stripe.events  # credit_note.created, invoice.updated (240 €), credit_note.voided, invoice.updated

    _deliver(client, [events[i] for i in order])

    assert _ours(db, owed) == ("open", 0, 30000)
    assert [(n.stripe_credit_note_id, n.amount, n.status) for n in db.session.scalars(select(CreditNote))] == \
        [("cn_test_v01", 6000, "void")]
    voided = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "credit_note_voided")).all()
    assert len(voided) == 1  # given back once


def test_each_event_twice_more_gives_back_once(client, db, owed, stripe_http):
    stripe = StripeInvoice(owed)
    stripe.credit("cn_test_v01", 6000, second=1)
    stripe.void("cn_test_v01", second=4)
    _deliver(client, stripe.events)
    assert _ours(db, owed) == ("open", 0, 30000)

    _deliver(client, stripe.events * 2, prefix="again")  # other ids: handled again, not stored twice

    assert _ours(db, owed) == ("open", 0, 30000)


def test_a_void_gives_back_only_its_own_note_and_what_was_paid_stays_paid(client, db, owed, stripe_http):
    # 300 €: 50 € credited, 90 € paid, 40 € credited, the 50 € voided: 170 € remain.
    stripe = StripeInvoice(owed)
    stripe.credit("cn_test_v01", 5000, second=1)
    stripe.pay(9000, second=2)
    stripe.credit("cn_test_v02", 4000, second=3)
    stripe.void("cn_test_v01", second=4)
    assert stripe.remaining == 17000
    # The void's event first, its invoice's snapshot last: the snapshots before it (250, 160 and 120 €) come
    # between, each with the void known already.
    void_first = [stripe.events[i] for i in (5, 3, 0, 1, 2, 4, 6)]

    _deliver(client, void_first)

    assert _ours(db, owed) == ("open", 9000, 17000)


def test_a_void_before_any_snapshot_says_what_remains_before_credit_is_bounded_by_the_total(client, db, owed,
                                                                                             stripe_http):
    # An invoice open before the plugin kept what remains before credit notes: its total less what was paid
    # bounds what a void gives back until a snapshot says it.
    stripe = StripeInvoice(owed)
    stripe.credit("cn_test_v01", 6000, second=1)
    stripe.void("cn_test_v01", second=3)
    _deliver(client, [stripe.events[0]])  # the credit note, known issued: 240 € remain
    assert _ours(db, owed) == ("open", 0, 24000)

    _deliver(client, [stripe.events[2]], prefix="void")

    assert _ours(db, owed) == ("open", 0, 30000)
    _deliver(client, [stripe.events[1], stripe.events[3]], prefix="snapshots")
    assert _ours(db, owed) == ("open", 0, 30000)


@pytest.mark.parametrize("seed", range(20))
def test_random_lives_end_where_stripe_does_in_any_order(client, db, owed, stripe_http, seed):
    """Payments, credit notes and voids, some in one second, their events shuffled."""
    rng = random.Random(seed)
    stripe, second, issued = StripeInvoice(owed), 0, []
    for step in range(rng.randint(3, 8)):
        second += rng.choice((0, 0, 1, 3))
        action = rng.choice(("credit", "credit", "void", "void", "pay"))
        if action == "void" and issued:
            stripe.void(issued.pop(rng.randrange(len(issued))), second)
        elif action == "pay" and stripe.remaining > 2000:
            stripe.pay(rng.randrange(1, stripe.remaining // 1000) * 1000, second)
        elif stripe.remaining > 2000:
            note_id = f"cn_test_v{step:02d}"
            stripe.credit(note_id, rng.randrange(1, min(stripe.remaining // 1000, 10)) * 1000, second)
            issued.append(note_id)
    events = list(stripe.events)
    rng.shuffle(events)

    _deliver(client, events)

    assert _ours(db, owed) == ("open", stripe.paid, stripe.remaining), stripe.events
