"""E-mail and SMS to learners: a delivery log written in the caller's transaction, sent after its commit.

    from lms_stripe_plugin import messages

    subject, text, html = messages.payment_request_email(locale="fr", school_name=..., learner_name=...,
                                                         amount=Money(4990, "EUR"), due=date(...), link=...,
                                                         invoice_number="F-0001")
    messages.queue(session, channel=Channel.EMAIL, recipient=email, subject=subject, body=text, html=html,
                   idempotency_key=f"request-{request.id}-email", request_id=request.id)
    # the caller commits: the e-mail goes out then, in a unit of work of its own

Backends: ``LMS_STRIPE_MAIL_BACKEND`` (the host's Flask-Mail, SMTP, console, file) and
``LMS_STRIPE_SMS_BACKEND`` (Twilio, console, file).
"""
from __future__ import annotations

from .addresses import check_email, check_header, host_phone, normalize_phone
from .compose import payment_on_balance_email, payment_request_email, payment_request_sms
from .errors import DeliveryFailed, InvalidMessage, InvalidRecipient, MessageError
from .outbox import MAX_ATTEMPTS, content, default_region, deliver, queue, retry_failed
from .outgoing import Backend, Outgoing
from .segments import Segments, plain_sms, segments, sms_text

__all__ = [
    "queue", "deliver", "retry_failed", "content", "MAX_ATTEMPTS", "default_region",
    "payment_request_email", "payment_request_sms", "payment_on_balance_email",
    "check_email", "check_header", "normalize_phone", "host_phone",
    "sms_text", "segments", "Segments", "plain_sms",
    "Backend", "Outgoing",
    "MessageError", "InvalidRecipient", "InvalidMessage", "DeliveryFailed",
]
