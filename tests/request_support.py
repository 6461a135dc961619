"""Helpers of the payment request tests: an administrator's invoice issued at Stripe and still owed, and a
request on it with a link, written directly (the tests of issuing and requesting go through the pages)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from lms_stripe_plugin.billing import links
from lms_stripe_plugin.core.models import Invoice, InvoiceLine, PaymentRequest

ISSUED_AT = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)


def open_invoice(db, host, *, user_id="u1", gross=30000, vat=5000, paid=0, currency="EUR",
                 stripe_id="in_test_open_1", number="ABC-0100", customer="cus_test_1") -> int:
    """An issued invoice of one free-text line, ``paid`` of ``gross`` already paid; its id."""
    user = host.get_user(user_id)
    invoice = Invoice(stripe_invoice_id=stripe_id, source="admin", number=number, user_id=user_id,
                      user_email=user.email, user_name=user.name, currency=currency, net=gross - vat, vat=vat,
                      gross=gross, amount_paid=paid, amount_remaining=gross - paid, status="open",
                      issued_at=ISSUED_AT, due_at=ISSUED_AT + timedelta(days=30), stripe_customer_id=customer,
                      pdf_url=f"https://pay.stripe.com/invoice/{stripe_id}/pdf", created_by="adm")
    invoice.lines = [InvoiceLine(position=1, description="Accompagnement VAE", gross=gross, vat_rate=2000,
                                 net=gross - vat, vat=vat)]
    db.session.add(invoice)
    db.session.commit()
    return invoice.id


def open_request(db, invoice_id: int, *, amount=9000, due_in_days=14, partial_minimum=None, locale="fr",
                 created_at: datetime | None = None, sms=False) -> tuple[int, str]:
    """An open request on the invoice and one link to its page: (request id, the link's token)."""
    invoice = db.session.get(Invoice, invoice_id)
    now = created_at or datetime.now(timezone.utc)
    request = PaymentRequest(invoice_id=invoice_id, user_id=invoice.user_id, amount=amount, currency=invoice.currency,
                             due_at=now + timedelta(days=due_in_days), locale=locale, send_email=True, send_sms=sms,
                             partial_minimum=partial_minimum, created_by="adm", created_at=now)
    db.session.add(request)
    db.session.flush()
    token = links.new(db.session, request)
    db.session.commit()
    return request.id, token
