"""Every status and audit action the plugin stores, one list each, with its label in the reader's language.

The values are what the database holds (and what the check constraints of the migrations list); a model
column typed with one of these enums loads its members, so code and templates compare with the enum, never
with a bare string. One spelling: "cancelled", as in the rest of the plugin's words.
"""
from __future__ import annotations

from enum import StrEnum

from .i18n import N_, gettext


class Labelled(StrEnum):
    """A stored value with a translatable label (``member.label``, in the current locale)."""

    @property
    def label(self) -> str:
        return gettext(_LABELS[type(self)][self])

    @classmethod
    def values(cls) -> tuple[str, ...]:
        return tuple(member.value for member in cls)


class PurchaseStatus(Labelled):
    """"open": a Checkout Session exists; "processing": paid by a delayed method (SEPA), not settled."""

    OPEN = "open"
    PROCESSING = "processing"
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


#: States in which a purchase blocks another one for the same learner and course.
LIVE_PURCHASE = (PurchaseStatus.OPEN, PurchaseStatus.PROCESSING, PurchaseStatus.PAID)


class InvoiceStatus(Labelled):
    """"issuing": written here, not yet finalized at Stripe; "open": finalized, an amount remains."""

    ISSUING = "issuing"
    OPEN = "open"
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUND_PENDING = "refund_pending"
    REFUND_FAILED = "refund_failed"
    CANCELLED = "cancelled"
    VOID = "void"


#: Invoices that may still be paid.
PAYABLE_INVOICE = (InvoiceStatus.OPEN,)


class InvoiceSource(Labelled):
    """Where an invoice comes from: a Checkout purchase, an administrator, or a purchase paid by a deposit
    (the invoice of the full price, to which the deposit and the balance are attached)."""

    CHECKOUT = "checkout"
    ADMIN = "admin"
    DEPOSIT = "deposit"
    LINK = "link"
    BALANCE = "balance"


class BalanceEntryKind(Labelled):
    """A movement of a learner's prepaid balance: money in (a top-up, an administrator's credit), money out
    (spent on an invoice at its finalization, an administrator's debit, a top-up refunded), and money Stripe
    gives back to the balance (a credit note's credit, a voided invoice's credit returned, an overpayment); and
    what a top-up's refund took off it, given back when the refund failed; a payment on it that was then attached
    to an invoice in Stripe's Dashboard, taken off it."""

    TOPUP = "topup"
    SPENT = "spent"
    CREDIT = "credit"
    DEBIT = "debit"
    TOPUP_REFUND = "topup_refund"
    CREDIT_NOTE = "credit_note"
    UNAPPLIED = "unapplied"
    OVERPAID = "overpaid"
    REFUND_FAILED = "refund_failed"
    ATTACHED = "attached"


class TopUpStatus(Labelled):
    """A learner's top-up: its Checkout Session open, paid (on the balance), expired, or refunded while
    unspent ("refunding" from the moment the balance is debited until Stripe's refund is created), or
    "attached": its payment attached to an invoice in Stripe's Dashboard, which it pays instead."""

    OPEN = "open"
    PAID = "paid"
    EXPIRED = "expired"
    REFUNDING = "refunding"
    REFUNDED = "refunded"
    ATTACHED = "attached"


class PaymentPlan(Labelled):
    """How a paid course is paid at enrollment: all at once, or a deposit then the balance."""

    FULL = "full"
    DEPOSIT = "deposit"


class BalanceDue(Labelled):
    """When the balance of a deposit is due: on a date, N days after enrollment, or N days before the course
    starts (`Host.course_start`)."""

    DATE = "date"
    AFTER_ENROLLMENT = "after_enrollment"
    BEFORE_START = "before_start"


class DepositAccess(Labelled):
    """When a learner who paid a deposit gets the course: at once, or once the balance is paid."""

    ON_DEPOSIT = "deposit"
    ON_FULL_PAYMENT = "full"


class PaymentRequestStatus(Labelled):
    """A request for (part of) what an invoice owes. "Partly paid", "overdue" and "delivery failed" are read
    from its amounts, due date and messages."""

    OPEN = "open"
    PAID = "paid"
    CANCELLED = "cancelled"


class AttemptStatus(Labelled):
    """One Pay click: its Checkout Session, then, for a payment request, its payment attached to the invoice
    ("attached"), or put on the learner's balance when the invoice no longer owed it ("credited"); a payment
    link's is done once paid (Checkout issued its invoice)."""

    OPEN = "open"
    PROCESSING = "processing"
    PAID = "paid"
    ATTACHED = "attached"
    CREDITED = "credited"
    FAILED = "failed"
    EXPIRED = "expired"


#: Attempts that block another one for the same request (one Checkout Session at a time).
LIVE_ATTEMPT = (AttemptStatus.OPEN, AttemptStatus.PROCESSING)
#: Attempts whose payment is under way: a bank debit processing, or a payment taken and not yet credited to
#: the request's invoices. The learner has paid unless it fails; a top-up's payment is credited as it is taken.
PAYING_ATTEMPT = (AttemptStatus.PROCESSING, AttemptStatus.PAID)


class PaymentLinkStatus(Labelled):
    """A payment link an administrator created. "Expired" and "used up" are read from its end date and its
    uses, as a request's "overdue" is."""

    ACTIVE = "active"
    DISABLED = "disabled"


class LinkAvailability(Labelled):
    """Whether a payment link can be paid now, read from its status, its end date and its uses: "full" while
    every use left is held by a payment under way (one not completed frees its use when its Checkout expires)."""

    AVAILABLE = "available"
    DISABLED = "disabled"
    EXPIRED = "expired"
    USED_UP = "used_up"
    FULL = "full"


class Channel(Labelled):
    EMAIL = "email"
    SMS = "sms"


class MessageStatus(Labelled):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class RefundStatus(Labelled):
    """"replaced": a failed refund that a retry replaced, kept for the record."""

    REQUESTED = "requested"
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REPLACED = "replaced"


class RefundOrigin(Labelled):
    """Who asked for the refund: an administrator here, someone in Stripe's dashboard, or the plugin itself
    (a duplicate payment)."""

    ADMIN = "admin"
    DASHBOARD = "dashboard"
    SYSTEM = "system"


class CreditNoteStatus(Labelled):
    """Stripe's credit note statuses: "issued", or "void" once voided (it never comes back)."""

    ISSUED = "issued"
    VOID = "void"


class EventStatus(Labelled):
    """A stored Stripe event: "rejected" ones are signed but unusable, and are never handled again."""

    RECEIVED = "received"
    PROCESSED = "processed"
    FAILED = "failed"
    IGNORED = "ignored"
    REJECTED = "rejected"


#: Events that are done with: a new delivery of them is acknowledged without handling it again.
SETTLED_EVENT = (EventStatus.PROCESSED, EventStatus.IGNORED, EventStatus.REJECTED)


class RejectReason(Labelled):
    """Why a signed Stripe event cannot be used: retrying it would change nothing, so it is acknowledged
    and kept, with this reason, for the administrators."""

    MALFORMED = "malformed"
    UNKNOWN_OBJECT = "unknown_object"
    TOO_LONG = "too_long"
    UNSTORABLE_TEXT = "unstorable_text"
    WRONG_MODE = "wrong_mode"
    MISMATCH = "mismatch"
    EXCEEDS_PAYMENT = "exceeds_payment"


class AccessReason(Labelled):
    """Why a learner's access to a paid course was revoked (the ``reason`` of ``access_revoked``)."""

    CANCELLED = "cancelled"
    REFUND = "refund"
    DISPUTE = "dispute"
    BALANCE_OVERDUE = "balance_overdue"


class PaymentMethod(Labelled):
    """How a payment was made, as its charge says: ``payment_method_details.type``, or for a card paid from a
    wallet the wallet's ``type``. Stripe has more types than these: a column of them holds any of Stripe's,
    and one not listed here is shown as Stripe names it (`payment_method_label`)."""

    CARD = "card"
    SEPA_DEBIT = "sepa_debit"
    KLARNA = "klarna"
    APPLE_PAY = "apple_pay"
    GOOGLE_PAY = "google_pay"
    SAMSUNG_PAY = "samsung_pay"
    LINK = "link"
    PAYPAL = "paypal"
    BANCONTACT = "bancontact"
    IDEAL = "ideal"


def payment_method_label(value: str | None) -> str | None:
    """A stored payment method in the reader's language; a type this list does not know, as Stripe names it."""
    if not value:
        return None
    try:
        return PaymentMethod(value).label
    except ValueError:
        return value


class AuditAction(Labelled):
    CHECKOUT_STARTED = "checkout_started"
    CHECKOUT_WITHDRAWN = "checkout_withdrawn"
    PAID = "paid"
    PAID_AFTER_WITHDRAWAL = "paid_after_withdrawal"
    PAYMENT_FAILED = "payment_failed"
    INVOICE_ISSUED = "invoice_issued"
    REFUND_REQUESTED = "refund_requested"
    REFUND_SUCCEEDED = "refund_succeeded"
    REFUND_FAILED = "refund_failed"
    REFUND_RETRIED = "refund_retried"
    DUPLICATE_PAYMENT_REFUNDED = "duplicate_payment_refunded"
    ACCESS_REVOKED = "access_revoked"
    ACCESS_RESTORED = "access_restored"
    DISPUTE_OPENED = "dispute_opened"
    DISPUTE_UPDATED = "dispute_updated"
    FREE_ENROLLMENT = "free_enrollment"
    SETTINGS_CHANGED = "settings_changed"
    COURSE_PRICING_CHANGED = "course_pricing_changed"
    INVOICE_CREATED = "invoice_created"
    PAYMENT_REQUESTED = "payment_requested"
    PAYMENT_REQUEST_RESENT = "payment_request_resent"
    PAYMENT_REQUEST_CANCELLED = "payment_request_cancelled"
    PAYMENT_RECEIVED = "payment_received"
    REMINDER_SENT = "reminder_sent"
    MESSAGE_FAILED = "message_failed"
    CREDIT_NOTE_ISSUED = "credit_note_issued"
    CREDIT_NOTE_VOIDED = "credit_note_voided"
    ACCESS_SUSPENDED = "access_suspended"
    BALANCE_PAID = "balance_paid"
    PAYMENT_LINK_CREATED = "payment_link_created"
    PAYMENT_LINK_DISABLED = "payment_link_disabled"
    LINK_PAYMENT_RECEIVED = "link_payment_received"
    BALANCE_TOPPED_UP = "balance_topped_up"
    BALANCE_CREDITED = "balance_credited"
    BALANCE_DEBITED = "balance_debited"
    BALANCE_SPENT = "balance_spent"
    TOPUP_REFUNDED = "topup_refunded"
    TOPUP_REFUND_FAILED = "topup_refund_failed"
    BALANCE_RETURNED = "balance_returned"
    CREDITED_PAYMENT_ATTACHED = "credited_payment_attached"


_LABELS: dict[type, dict] = {
    PurchaseStatus: {
        PurchaseStatus.OPEN: N_("Awaiting payment"),
        PurchaseStatus.PROCESSING: N_("Payment processing"),
        PurchaseStatus.PAID: N_("Paid"),
        PurchaseStatus.FAILED: N_("Payment failed"),
        PurchaseStatus.EXPIRED: N_("Expired"),
        PurchaseStatus.CANCELLED: N_("Cancelled"),
    },
    InvoiceStatus: {
        InvoiceStatus.ISSUING: N_("Being issued"),
        InvoiceStatus.OPEN: N_("Awaiting payment"),
        InvoiceStatus.PAID: N_("Paid"),
        InvoiceStatus.PARTIALLY_REFUNDED: N_("Partially refunded"),
        InvoiceStatus.REFUND_PENDING: N_("Refund pending"),
        InvoiceStatus.REFUND_FAILED: N_("Refund failed"),
        InvoiceStatus.CANCELLED: N_("Cancelled"),
        InvoiceStatus.VOID: N_("Void"),
    },
    InvoiceSource: {
        InvoiceSource.CHECKOUT: N_("Online purchase"),
        InvoiceSource.ADMIN: N_("Issued by an administrator"),
        InvoiceSource.DEPOSIT: N_("Online purchase with a deposit"),
        InvoiceSource.LINK: N_("Payment link"),
        InvoiceSource.BALANCE: N_("Paid from the prepaid balance"),
    },
    BalanceEntryKind: {
        BalanceEntryKind.TOPUP: N_("Top-up"),
        BalanceEntryKind.SPENT: N_("Spent on an invoice"),
        BalanceEntryKind.CREDIT: N_("Credit by the school"),
        BalanceEntryKind.DEBIT: N_("Debit by the school"),
        BalanceEntryKind.TOPUP_REFUND: N_("Top-up refunded"),
        BalanceEntryKind.CREDIT_NOTE: N_("Credited back by a credit note"),
        BalanceEntryKind.UNAPPLIED: N_("Given back: the invoice was voided"),
        BalanceEntryKind.OVERPAID: N_("Overpayment of an invoice"),
        BalanceEntryKind.REFUND_FAILED: N_("Refund failed, back on the balance"),
        BalanceEntryKind.ATTACHED: N_("Attached to an invoice in Stripe"),
    },
    TopUpStatus: {
        TopUpStatus.OPEN: N_("Awaiting payment"),
        TopUpStatus.PAID: N_("Paid"),
        TopUpStatus.EXPIRED: N_("Expired"),
        TopUpStatus.REFUNDING: N_("Refund pending"),
        TopUpStatus.REFUNDED: N_("Refunded"),
        TopUpStatus.ATTACHED: N_("Attached to an invoice"),
    },
    PaymentPlan: {
        PaymentPlan.FULL: N_("Full payment"),
        PaymentPlan.DEPOSIT: N_("Deposit, then the balance"),
    },
    BalanceDue: {
        BalanceDue.DATE: N_("On a date"),
        BalanceDue.AFTER_ENROLLMENT: N_("Days after enrollment"),
        BalanceDue.BEFORE_START: N_("Days before the course starts"),
    },
    DepositAccess: {
        DepositAccess.ON_DEPOSIT: N_("Access once the deposit is paid"),
        DepositAccess.ON_FULL_PAYMENT: N_("Access only once fully paid"),
    },
    PaymentRequestStatus: {
        PaymentRequestStatus.OPEN: N_("Awaiting payment"),
        PaymentRequestStatus.PAID: N_("Paid"),
        PaymentRequestStatus.CANCELLED: N_("Cancelled"),
    },
    AttemptStatus: {
        AttemptStatus.OPEN: N_("Checkout open"),
        AttemptStatus.PROCESSING: N_("Payment processing"),
        AttemptStatus.PAID: N_("Paid"),
        AttemptStatus.ATTACHED: N_("Paid and credited to the invoice"),
        AttemptStatus.CREDITED: N_("Paid and put on the balance: the invoice no longer owed it"),
        AttemptStatus.FAILED: N_("Payment failed"),
        AttemptStatus.EXPIRED: N_("Expired"),
    },
    PaymentLinkStatus: {
        PaymentLinkStatus.ACTIVE: N_("Active"),
        PaymentLinkStatus.DISABLED: N_("Disabled"),
    },
    LinkAvailability: {
        LinkAvailability.AVAILABLE: N_("Active"),
        LinkAvailability.DISABLED: N_("Disabled"),
        LinkAvailability.EXPIRED: N_("Expired"),
        LinkAvailability.USED_UP: N_("Used up"),
        LinkAvailability.FULL: N_("Every use taken by payments under way"),
    },
    Channel: {Channel.EMAIL: N_("E-mail"), Channel.SMS: N_("SMS")},
    MessageStatus: {
        MessageStatus.PENDING: N_("Waiting to be sent"),
        MessageStatus.SENT: N_("Sent"),
        MessageStatus.FAILED: N_("Delivery failed"),
    },
    RefundStatus: {
        RefundStatus.REQUESTED: N_("Requested, not confirmed by Stripe"),
        RefundStatus.PENDING: N_("Refund pending"),
        RefundStatus.SUCCEEDED: N_("Refunded"),
        RefundStatus.FAILED: N_("Refund failed"),
        RefundStatus.REPLACED: N_("Replaced by a retry"),
    },
    RefundOrigin: {
        RefundOrigin.ADMIN: N_("Administrator"),
        RefundOrigin.DASHBOARD: N_("Stripe dashboard"),
        RefundOrigin.SYSTEM: N_("Automatic (duplicate payment)"),
    },
    CreditNoteStatus: {
        CreditNoteStatus.ISSUED: N_("Issued"),
        CreditNoteStatus.VOID: N_("Void"),
    },
    EventStatus: {
        EventStatus.RECEIVED: N_("Received"),
        EventStatus.PROCESSED: N_("Handled"),
        EventStatus.FAILED: N_("Failed"),
        EventStatus.IGNORED: N_("Ignored"),
        EventStatus.REJECTED: N_("Rejected"),
    },
    RejectReason: {
        RejectReason.MALFORMED: N_("Not a usable Stripe event: data missing or malformed"),
        RejectReason.UNKNOWN_OBJECT: N_("Names an object that Stripe or this site does not know"),
        RejectReason.TOO_LONG: N_("Id or type too long to be stored as it is"),
        RejectReason.UNSTORABLE_TEXT: N_("Holds characters that cannot be stored (NUL)"),
        RejectReason.WRONG_MODE: N_("Live or test mode differs from the secret key's"),
        RejectReason.MISMATCH: N_("Does not match our purchase"),
        RejectReason.EXCEEDS_PAYMENT: N_("Amount more than what was paid"),
    },
    AccessReason: {
        AccessReason.CANCELLED: N_("Purchase cancelled"),
        AccessReason.REFUND: N_("Refunded"),
        AccessReason.DISPUTE: N_("Payment disputed"),
        AccessReason.BALANCE_OVERDUE: N_("Balance overdue"),
    },
    PaymentMethod: {
        PaymentMethod.CARD: N_("Card"),
        PaymentMethod.SEPA_DEBIT: N_("SEPA Direct Debit"),
        PaymentMethod.KLARNA: N_("Klarna"),
        PaymentMethod.APPLE_PAY: N_("Apple Pay"),
        PaymentMethod.GOOGLE_PAY: N_("Google Pay"),
        PaymentMethod.SAMSUNG_PAY: N_("Samsung Pay"),
        PaymentMethod.LINK: N_("Link"),
        PaymentMethod.PAYPAL: N_("PayPal"),
        PaymentMethod.BANCONTACT: N_("Bancontact"),
        PaymentMethod.IDEAL: N_("iDEAL"),
    },
    AuditAction: {
        AuditAction.CHECKOUT_STARTED: N_("Checkout started"),
        AuditAction.CHECKOUT_WITHDRAWN: N_("Checkout withdrawn: the course's offer changed"),
        AuditAction.PAID: N_("Paid"),
        AuditAction.PAID_AFTER_WITHDRAWAL: N_("Paid after the offer changed, at the price of the checkout"),
        AuditAction.PAYMENT_FAILED: N_("Payment failed"),
        AuditAction.INVOICE_ISSUED: N_("Invoice issued"),
        AuditAction.REFUND_REQUESTED: N_("Refund requested"),
        AuditAction.REFUND_SUCCEEDED: N_("Refund succeeded"),
        AuditAction.REFUND_FAILED: N_("Refund failed"),
        AuditAction.REFUND_RETRIED: N_("Refund retried"),
        AuditAction.DUPLICATE_PAYMENT_REFUNDED: N_("Duplicate payment refunded"),
        AuditAction.ACCESS_REVOKED: N_("Access revoked"),
        AuditAction.ACCESS_RESTORED: N_("Access restored"),
        AuditAction.DISPUTE_OPENED: N_("Dispute opened"),
        AuditAction.DISPUTE_UPDATED: N_("Dispute updated"),
        AuditAction.FREE_ENROLLMENT: N_("Free enrollment"),
        AuditAction.SETTINGS_CHANGED: N_("Payment settings changed"),
        AuditAction.COURSE_PRICING_CHANGED: N_("Course pricing changed"),
        AuditAction.INVOICE_CREATED: N_("Invoice created"),
        AuditAction.PAYMENT_REQUESTED: N_("Payment requested"),
        AuditAction.PAYMENT_REQUEST_RESENT: N_("Payment request sent again"),
        AuditAction.PAYMENT_REQUEST_CANCELLED: N_("Payment request cancelled"),
        AuditAction.PAYMENT_RECEIVED: N_("Payment received"),
        AuditAction.REMINDER_SENT: N_("Reminder sent"),
        AuditAction.MESSAGE_FAILED: N_("Message not delivered"),
        AuditAction.CREDIT_NOTE_ISSUED: N_("Credit note issued"),
        AuditAction.CREDIT_NOTE_VOIDED: N_("Credit note voided"),
        AuditAction.ACCESS_SUSPENDED: N_("Access suspended: balance overdue"),
        AuditAction.BALANCE_PAID: N_("Balance paid"),
        AuditAction.PAYMENT_LINK_CREATED: N_("Payment link created"),
        AuditAction.PAYMENT_LINK_DISABLED: N_("Payment link disabled"),
        AuditAction.LINK_PAYMENT_RECEIVED: N_("Payment received through a payment link"),
        AuditAction.BALANCE_TOPPED_UP: N_("Balance topped up"),
        AuditAction.BALANCE_CREDITED: N_("Balance credited"),
        AuditAction.BALANCE_DEBITED: N_("Balance debited"),
        AuditAction.BALANCE_SPENT: N_("Balance spent on an invoice"),
        AuditAction.TOPUP_REFUNDED: N_("Top-up refunded"),
        AuditAction.TOPUP_REFUND_FAILED: N_("Top-up refund failed"),
        AuditAction.BALANCE_RETURNED: N_("Balance credited back by Stripe"),
        AuditAction.CREDITED_PAYMENT_ATTACHED: N_("Payment on the balance attached to an invoice"),
    },
}
