"""The plugin's tables (prefix ``lms_stripe_``). Host ids are opaque strings, never foreign keys.

The models have their own metadata, so the host's ``db.create_all()`` and migrations never touch them;
they are used through the host's Flask-SQLAlchemy session.
"""
from __future__ import annotations

import re
import secrets
from datetime import date, datetime, timezone
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ..money import Money
from .schools import SchoolScoped
from .enums import (LIVE_ATTEMPT, LIVE_PURCHASE, AttemptStatus, AuditAction, BalanceDue, BalanceEntryKind, Channel,
                    CreditNoteStatus, DepositAccess, EventStatus, InvoiceSource, InvoiceStatus, MessageStatus,
                    PaymentLinkStatus, PaymentPlan, PaymentRequestStatus, PurchaseStatus, RefundOrigin, RefundStatus,
                    RejectReason, TopUpStatus)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def parse_row_id(raw) -> int | None:
    """One of our integer ids as written in Stripe metadata, or None if it cannot be one."""
    text = str(raw) if raw is not None else ""
    return int(text) if re.fullmatch(r"[0-9]{1,9}", text) else None


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: sa.DateTime(timezone=True)}


HostId = sa.String(64)
StripeId = sa.String(255)


class EnumText(sa.types.TypeDecorator):
    """A `StrEnum` stored as its value in a VARCHAR: rows load as enum members, so code compares with the
    enum. A value this version does not know (written by a newer one during a deploy) loads as text."""

    impl = sa.String
    cache_ok = True

    def __init__(self, enum: type[StrEnum], length: int):
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value, dialect):
        return None if value is None else self.enum(value).value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        try:
            return self.enum(value)
        except ValueError:
            return value


def one_of(column: str, values) -> str:
    """The SQL condition "column IN (…values)" of a check constraint or a partial index."""
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class Settings(SchoolScoped, Base):
    """The payment settings an administrator enters; one row per school."""

    __tablename__ = "lms_stripe_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=False)
    publishable_key: Mapped[str | None] = mapped_column(sa.String(255))
    secret_key_encrypted: Mapped[str | None] = mapped_column(sa.Text)
    webhook_secrets_encrypted: Mapped[str | None] = mapped_column(sa.Text)
    default_currency: Mapped[str] = mapped_column(sa.String(3), default="EUR")
    default_vat_rate: Mapped[int] = mapped_column(default=2000)  # basis points
    vouchers_enabled: Mapped[bool] = mapped_column(default=False)
    #: Off until the administrator turns it on: on, Checkout takes its methods from the plugin's Payment Method
    #: Configuration, which turns Apple Pay and Google Pay on (accounts/wallets.py).
    wallets_enabled: Mapped[bool] = mapped_column(default=False)
    klarna_enabled: Mapped[bool] = mapped_column(default=False)
    klarna_minimum: Mapped[int | None] = mapped_column(sa.BigInteger)  # minor units, default currency
    sepa_debit_enabled: Mapped[bool] = mapped_column(default=False)
    automatic_tax: Mapped[bool] = mapped_column(default=False)
    terms_url: Mapped[str | None] = mapped_column(sa.String(2048))
    updated_at: Mapped[datetime | None]
    updated_by: Mapped[str | None] = mapped_column(HostId)
    #: A new value at every change of a course offer: the catalog's cached prices hold while it does not change.
    catalog_revision: Mapped[int] = mapped_column(sa.BigInteger, default=lambda: secrets.randbits(62),
                                                  server_default="0")
    #: The school's name in messages to learners.
    school_name: Mapped[str | None] = mapped_column(sa.String(255))
    #: Learners may pay less than a payment request asks, from this amount (minor units, default currency).
    partial_payments_enabled: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    partial_minimum: Mapped[int | None] = mapped_column(sa.BigInteger)
    #: Reminders of payment requests: days relative to the due date ("-3,1,7"), how many at most, channels.
    reminder_days: Mapped[str] = mapped_column(sa.String(64), default="-3,1,7", server_default="-3,1,7")
    reminder_max: Mapped[int] = mapped_column(default=3, server_default="3")
    reminder_sms: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    #: The seller's legal identity, printed on every invoice the plugin has Stripe make (billing/legal.py):
    #: legal name, postal address, SIREN or SIRET, French VAT number, legal form (with its share capital).
    seller_legal_name: Mapped[str | None] = mapped_column(sa.String(140))
    seller_address: Mapped[str | None] = mapped_column(sa.String(300))
    seller_siret: Mapped[str | None] = mapped_column(sa.String(14))
    seller_vat_number: Mapped[str | None] = mapped_column(sa.String(13))
    seller_legal_form: Mapped[str | None] = mapped_column(sa.String(140))
    #: The late-payment penalties the invoices state (None: the plugin's wording of the legal rate).
    late_payment_text: Mapped[str | None] = mapped_column(sa.String(1000))
    #: The buyers are businesses: invoices state the 40 € fixed compensation for recovery costs.
    business_buyers: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    #: Days after a deposit's balance was due before the learner's access is suspended (shop/deposits.py).
    balance_grace_days: Mapped[int] = mapped_column(default=7, server_default="7")
    #: Learners may keep a prepaid balance and top it up from My payments, between these amounts (minor units
    #: of the default currency; billing/balances.py).
    prepaid_enabled: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    topup_minimum: Mapped[int] = mapped_column(sa.BigInteger, default=1000, server_default="1000")
    topup_maximum: Mapped[int] = mapped_column(sa.BigInteger, default=100000, server_default="100000")
    #: The currencies the school accepts besides the default one, space-separated ("CHF USD"): a course may
    #: then have a price in each, and learners choose theirs (shop/currencies.py). None: the default alone.
    other_currencies: Mapped[str | None] = mapped_column(sa.String(200))
    #: Platform mode (``LMS_STRIPE_PLATFORM``): the school's own Stripe account, connected to the LMS operator's
    #: platform through Stripe's hosted onboarding, where every payment is made (accounts/connect.py); what
    #: Stripe last said of it (JSON: details submitted, charges and payouts enabled, requirements), and the
    #: ``created`` time of the event that said it (an older event never overwrites a newer one).
    stripe_account_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    account_state: Mapped[str | None] = mapped_column(sa.Text)
    account_checked: Mapped[int | None] = mapped_column(sa.BigInteger)
    #: The school sells no course in the catalog: the plugin is its invoices, payment requests and links only
    #: (no price shown nor asked on courses, and enrollment is the host's alone).
    requests_only: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    __table_args__ = (
        sa.UniqueConstraint("school_id", name="uq_lms_stripe_settings_school"),
        sa.CheckConstraint("balance_grace_days BETWEEN 0 AND 365", name="grace_days_range"),
        sa.CheckConstraint("topup_minimum > 0 AND topup_maximum >= topup_minimum", name="topup_range"),
    )


class CourseOffer(SchoolScoped, Base):
    """How a course is sold: price (tax-inclusive), VAT rate, audience, on sale or not."""

    __tablename__ = "lms_stripe_course_offers"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[str] = mapped_column(HostId, unique=True)
    is_paid: Mapped[bool] = mapped_column(default=False)
    amount: Mapped[int | None] = mapped_column(sa.BigInteger)  # gross, minor units
    currency: Mapped[str | None] = mapped_column(sa.String(3))
    vat_rate: Mapped[int] = mapped_column(default=0)  # basis points
    audience: Mapped[str] = mapped_column(sa.String(16), default="public")
    on_sale: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    #: Full payment, or a deposit at enrollment (a percentage or a fixed amount) and the balance later.
    payment_plan: Mapped[PaymentPlan] = mapped_column(EnumText(PaymentPlan, 16), default=PaymentPlan.FULL,
                                                      server_default=PaymentPlan.FULL.value)
    deposit_percent: Mapped[int | None]  # basis points (3000: 30 %)
    deposit_amount: Mapped[int | None] = mapped_column(sa.BigInteger)  # minor units of the offer's currency
    balance_due: Mapped[BalanceDue | None] = mapped_column(EnumText(BalanceDue, 16))
    balance_due_date: Mapped[date | None] = mapped_column(sa.Date)
    balance_due_days: Mapped[int | None]
    deposit_access: Mapped[DepositAccess | None] = mapped_column(EnumText(DepositAccess, 16))

    __table_args__ = (
        sa.CheckConstraint("amount IS NULL OR amount > 0", name="amount_positive"),
        sa.CheckConstraint("audience IN ('internal', 'partner', 'public')", name="audience_known"),
        sa.CheckConstraint("NOT is_paid OR (amount IS NOT NULL AND currency IS NOT NULL)", name="paid_priced"),
        sa.CheckConstraint(one_of("payment_plan", PaymentPlan), name="plan_known"),
        # A deposit: one of a share or an amount, below the price; a balance date rule; an access rule.
        sa.CheckConstraint(
            "payment_plan = 'full' OR (is_paid AND (deposit_percent IS NULL) <> (deposit_amount IS NULL) "
            "AND balance_due IS NOT NULL AND deposit_access IS NOT NULL)", name="deposit_complete"),
        sa.CheckConstraint("deposit_percent IS NULL OR deposit_percent BETWEEN 1 AND 9999", name="deposit_share"),
        sa.CheckConstraint("deposit_amount IS NULL OR (deposit_amount > 0 AND deposit_amount < amount)",
                           name="deposit_below_price"),
        sa.CheckConstraint(
            "balance_due IS NULL OR (balance_due = 'date' AND balance_due_date IS NOT NULL) OR "
            "(balance_due IN ('after_enrollment', 'before_start') AND balance_due_days BETWEEN 0 AND 3650)",
            name="balance_due_set"),
        sa.CheckConstraint("deposit_access IS NULL OR " + one_of("deposit_access", DepositAccess),
                           name="deposit_access_known"),
    )

    @property
    def price(self) -> Money | None:
        return Money(self.amount, self.currency) if self.is_paid and self.amount and self.currency else None


class CoursePrice(SchoolScoped, Base):
    """A course's price in a currency the school accepts besides its offer's own: an amount the administrator
    typed, never converted at payment time. Same VAT rate, audience and terms as the offer."""

    __tablename__ = "lms_stripe_course_prices"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[str] = mapped_column(HostId, sa.ForeignKey("lms_stripe_course_offers.course_id",
                                                                 ondelete="CASCADE"))
    currency: Mapped[str] = mapped_column(sa.String(3))
    amount: Mapped[int] = mapped_column(sa.BigInteger)  # gross, minor units of ``currency``

    __table_args__ = (
        sa.UniqueConstraint("course_id", "currency"),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
    )


class CurrencyChoice(Base):
    """The currency a learner chose to see prices and pay in (the catalog's switcher): the learner's own, in
    every school (a school that does not accept it passes it over)."""

    __tablename__ = "lms_stripe_currency_choices"

    user_id: Mapped[str] = mapped_column(HostId, primary_key=True)
    currency: Mapped[str] = mapped_column(sa.String(3))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Customer(SchoolScoped, Base):
    """A learner's Stripe customer, created once by their first checkout."""

    __tablename__ = "lms_stripe_customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(HostId)
    livemode: Mapped[bool] = mapped_column(default=False)
    stripe_customer_id: Mapped[str] = mapped_column(StripeId, unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: The language the customer's ``preferred_locales`` holds at Stripe, as we last set it ("fr", "en"):
    #: its invoices are written in it. None: not set by the plugin (Checkout created the customer).
    locale: Mapped[str | None] = mapped_column(sa.String(16))

    __table_args__ = (sa.UniqueConstraint("school_id", "user_id", "livemode", name="uq_lms_stripe_customers_user_mode"),)


class TaxRate(SchoolScoped, Base):
    """An inclusive Stripe Tax Rate per (rate, country, mode), created once and remembered."""

    __tablename__ = "lms_stripe_tax_rates"

    id: Mapped[int] = mapped_column(primary_key=True)
    rate: Mapped[int]  # basis points
    country: Mapped[str] = mapped_column(sa.String(2))
    livemode: Mapped[bool] = mapped_column(default=False)
    stripe_tax_rate_id: Mapped[str] = mapped_column(StripeId, unique=True)

    __table_args__ = (
        sa.UniqueConstraint("school_id", "rate", "country", "livemode",
                            name="uq_lms_stripe_tax_rates_rate_country_mode"),
    )


class PaymentMethodConfig(SchoolScoped, Base):
    """The Stripe Payment Method Configuration the plugin created for Checkout, per mode and wallets on or off:
    created once and remembered (accounts/wallets.py)."""

    __tablename__ = "lms_stripe_payment_method_configs"

    id: Mapped[int] = mapped_column(primary_key=True)
    livemode: Mapped[bool] = mapped_column(default=False)
    wallets: Mapped[bool] = mapped_column(default=True)
    stripe_configuration_id: Mapped[str] = mapped_column(StripeId, unique=True)

    __table_args__ = (
        sa.UniqueConstraint("school_id", "livemode", "wallets",
                            name="uq_lms_stripe_payment_method_configs_mode_wallets"),
    )


class Purchase(SchoolScoped, Base):
    """One attempt by a learner to buy a course, from checkout click to paid (or not)."""

    __tablename__ = "lms_stripe_purchases"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(HostId, index=True)
    course_id: Mapped[str] = mapped_column(HostId, index=True)
    status: Mapped[PurchaseStatus] = mapped_column(EnumText(PurchaseStatus, 16), default=PurchaseStatus.OPEN)
    amount: Mapped[int] = mapped_column(sa.BigInteger)  # gross shown to the learner, minor units
    currency: Mapped[str] = mapped_column(sa.String(3))
    vat_rate: Mapped[int] = mapped_column(default=0)
    amount_paid: Mapped[int | None] = mapped_column(sa.BigInteger)  # after vouchers, from Stripe
    #: The vouchers' discount Stripe applied (the session's total_details.amount_discount), when paid.
    amount_discount: Mapped[int | None] = mapped_column(sa.BigInteger)
    amount_refunded: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    stripe_checkout_session_id: Mapped[str | None] = mapped_column(StripeId, unique=True)
    checkout_url: Mapped[str | None] = mapped_column(sa.Text)
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(StripeId, index=True)
    stripe_customer_id: Mapped[str | None] = mapped_column(StripeId)
    livemode: Mapped[bool] = mapped_column(default=False)
    failure_reason: Mapped[str | None] = mapped_column(sa.Text)
    disputed: Mapped[bool] = mapped_column(default=False)
    dispute_status: Mapped[str | None] = mapped_column(sa.String(32))
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    paid_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    #: A deposit purchase: Checkout charges ``deposit_amount``; the invoice is for ``amount``, its balance due
    #: at ``balance_due_at``; ``access_on_deposit`` says whether the deposit opens the course.
    deposit_amount: Mapped[int | None] = mapped_column(sa.BigInteger)
    balance_due_at: Mapped[datetime | None]
    access_on_deposit: Mapped[bool | None]
    #: The learner's language when buying (the balance request's messages are written in it).
    locale: Mapped[str | None] = mapped_column(sa.String(8))
    #: When the deposit's invoice became paid: set once (a conditional update), the learner then has access.
    balance_paid_at: Mapped[datetime | None]
    #: How Checkout's payment was made (`enums.PaymentMethod`: card, sepa_debit, klarna, apple_pay…), from the
    #: charge's events; None until one of them came.
    payment_method: Mapped[str | None] = mapped_column(sa.String(32))

    invoice: Mapped["Invoice | None"] = relationship(back_populates="purchase", uselist=False)

    __table_args__ = (
        sa.CheckConstraint(one_of("status", PurchaseStatus), name="status_known"),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint("deposit_amount IS NULL OR (deposit_amount > 0 AND deposit_amount < amount "
                           "AND balance_due_at IS NOT NULL AND access_on_deposit IS NOT NULL)",
                           name="deposit_below_price"),
        # At most one live purchase per learner and course: no double payment, one open session.
        sa.Index(
            "uq_lms_stripe_purchases_live",
            "user_id",
            "course_id",
            unique=True,
            sqlite_where=sa.text(one_of("status", LIVE_PURCHASE)),
            postgresql_where=sa.text(one_of("status", LIVE_PURCHASE)),
        ),
    )

    @property
    def price(self) -> Money:
        return Money(self.amount, self.currency)


class Invoice(SchoolScoped, Base):
    """Our record of a Stripe invoice (Stripe numbers it and renders its PDF)."""

    __tablename__ = "lms_stripe_invoices"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: None while an administrator's invoice is being issued (written here first, then created at Stripe).
    stripe_invoice_id: Mapped[str | None] = mapped_column(StripeId, unique=True)
    #: The Checkout purchase it comes from; None for an invoice an administrator created.
    purchase_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lms_stripe_purchases.id"), unique=True)
    source: Mapped[InvoiceSource] = mapped_column(EnumText(InvoiceSource, 16), default=InvoiceSource.CHECKOUT,
                                                  server_default=InvoiceSource.CHECKOUT.value)
    number: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    #: The learner billed; None for a payment link paid by someone not signed in (named by ``user_name`` and
    #: ``user_email``, as they typed them).
    user_id: Mapped[str | None] = mapped_column(HostId)
    #: The course it sells (a Checkout purchase, or an administrator's invoice whose first line is a course).
    course_id: Mapped[str | None] = mapped_column(HostId)
    user_email: Mapped[str | None] = mapped_column(sa.String(320))
    user_name: Mapped[str | None] = mapped_column(sa.String(255))
    course_title: Mapped[str | None] = mapped_column(sa.String(500))
    currency: Mapped[str] = mapped_column(sa.String(3))
    net: Mapped[int] = mapped_column(sa.BigInteger)
    vat: Mapped[int] = mapped_column(sa.BigInteger)
    gross: Mapped[int] = mapped_column(sa.BigInteger)
    amount_refunded: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: What Stripe says was paid and remains (its invoice's amount_paid and amount_remaining).
    amount_paid: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    amount_remaining: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    #: What would remain without the invoice's pre-payment credit notes (Stripe's amount_remaining plus its
    #: pre_payment_credit_notes_amount): the least any snapshot said, as it only shrinks with payments; None
    #: until a snapshot of the issued invoice is applied (see `billing.issuing.apply_stripe_invoice`).
    amount_remaining_before_credit: Mapped[int | None] = mapped_column(sa.BigInteger)
    status: Mapped[InvoiceStatus] = mapped_column(EnumText(InvoiceStatus, 24), default=InvoiceStatus.PAID)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime | None]
    stripe_customer_id: Mapped[str | None] = mapped_column(StripeId)
    created_by: Mapped[str | None] = mapped_column(HostId)
    pdf_url: Mapped[str | None] = mapped_column(sa.Text)
    hosted_url: Mapped[str | None] = mapped_column(sa.Text)
    credit_note_id: Mapped[str | None] = mapped_column(StripeId, unique=True)
    credit_note_number: Mapped[str | None] = mapped_column(sa.String(64))
    credit_note_pdf_url: Mapped[str | None] = mapped_column(sa.Text)
    cancelled_at: Mapped[datetime | None]

    purchase: Mapped[Purchase | None] = relationship(back_populates="invoice")
    lines: Mapped[list["InvoiceLine"]] = relationship(order_by="InvoiceLine.position", back_populates="invoice")

    __table_args__ = (
        sa.CheckConstraint(one_of("status", InvoiceStatus), name="status_known"),
        sa.CheckConstraint("net + vat = gross", name="amounts_add_up"),
        sa.CheckConstraint("amount_paid >= 0 AND amount_remaining >= 0", name="amounts_not_negative"),
        # The administrators' list, newest first, whatever its filter: keyset pages read these in order.
        sa.Index("ix_lms_stripe_invoices_issued", "issued_at", "id"),
        sa.Index("ix_lms_stripe_invoices_status_issued", "status", "issued_at", "id"),
        sa.Index("ix_lms_stripe_invoices_course_issued", "course_id", "issued_at", "id"),
        sa.Index("ix_lms_stripe_invoices_user_issued", "user_id", "issued_at", "id"),
        # The list sorted by another column (billing.listing's Order): the same expressions, then the id; on
        # PostgreSQL (as the search's, elsewhere the list is sorted by a scan).
        sa.Index("ix_lms_stripe_invoices_number_sort", sa.func.coalesce(sa.text("number"), sa.text("''")),
                 "id").ddl_if(dialect="postgresql"),
        sa.Index("ix_lms_stripe_invoices_learner_sort",
                 sa.func.lower(sa.func.coalesce(sa.text("user_name"), sa.text("user_email"), sa.text("''"))),
                 "id").ddl_if(dialect="postgresql"),
        sa.Index("ix_lms_stripe_invoices_course_sort",
                 sa.func.lower(sa.func.coalesce(sa.text("course_title"), sa.text("''"))), "id").ddl_if(dialect="postgresql"),
        sa.Index("ix_lms_stripe_invoices_amount_sort", "currency", "gross", "id"),
        # The search (see billing.listing): the start of a number or an e-mail address, the start of each
        # word of a name. On PostgreSQL, indexes made for those; elsewhere, scans.
        sa.Index("ix_lms_stripe_invoices_number_prefix", sa.func.upper(sa.text("number")),
                 postgresql_ops={"upper": "text_pattern_ops"}).ddl_if(dialect="postgresql"),
        sa.Index("ix_lms_stripe_invoices_email_prefix", sa.func.lower(sa.text("user_email")),
                 postgresql_ops={"lower": "text_pattern_ops"}).ddl_if(dialect="postgresql"),
        sa.Index("ix_lms_stripe_invoices_name_words", sa.func.to_tsvector(sa.text("'simple'::regconfig"),
                                                                          sa.text("coalesce(user_name, '')")),
                 postgresql_using="gin").ddl_if(dialect="postgresql"),
    )


class InvoiceLine(SchoolScoped, Base):
    """A line of an administrator's invoice: a course of the catalog or free text, tax-inclusive."""

    __tablename__ = "lms_stripe_invoice_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(sa.ForeignKey("lms_stripe_invoices.id"), index=True)
    position: Mapped[int]
    description: Mapped[str] = mapped_column(sa.String(500))
    course_id: Mapped[str | None] = mapped_column(HostId)
    gross: Mapped[int] = mapped_column(sa.BigInteger)  # tax-inclusive, minor units
    vat_rate: Mapped[int]  # basis points
    net: Mapped[int] = mapped_column(sa.BigInteger)
    vat: Mapped[int] = mapped_column(sa.BigInteger)

    invoice: Mapped[Invoice] = relationship(back_populates="lines")

    __table_args__ = (
        sa.UniqueConstraint("invoice_id", "position", name="uq_lms_stripe_invoice_lines_position"),
        sa.CheckConstraint("gross > 0 AND net + vat = gross", name="amounts_add_up"),
    )


class PaymentRequest(SchoolScoped, Base):
    """A request that a learner pay (part of) what an invoice owes, sent by e-mail or SMS with links to our
    own page (`RequestLink`); or, with ``parts``, what several invoices owe, in one payment (a settlement:
    ``invoice_id`` is then its first invoice); or, with ``topup``, that they top up their prepaid balance by
    ``amount`` (no invoice: a top-up is a payment on account, invoiced when the balance pays a course)."""

    __tablename__ = "lms_stripe_payment_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lms_stripe_invoices.id"), index=True)
    #: A top-up of the learner's prepaid balance, paid into it (billing/balances.py), not an invoice's payment.
    topup: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    user_id: Mapped[str] = mapped_column(HostId, index=True)
    amount: Mapped[int] = mapped_column(sa.BigInteger)  # asked, minor units
    currency: Mapped[str] = mapped_column(sa.String(3))
    amount_paid: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    status: Mapped[PaymentRequestStatus] = mapped_column(EnumText(PaymentRequestStatus, 16),
                                                         default=PaymentRequestStatus.OPEN, index=True)
    due_at: Mapped[datetime] = mapped_column(index=True)
    message: Mapped[str | None] = mapped_column(sa.Text)
    #: The language of its messages and page ("fr", "en"): the learner's, as the host knows it.
    locale: Mapped[str] = mapped_column(sa.String(8), default="en")
    send_email: Mapped[bool] = mapped_column(default=True)
    send_sms: Mapped[bool] = mapped_column(default=False)
    #: The learner may pay less than asked, from this amount (None: the whole amount asked).
    partial_minimum: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_by: Mapped[str | None] = mapped_column(HostId)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    paid_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    #: The deposit purchase whose balance this request asks for: one balance request per purchase.
    balance_of: Mapped[int | None] = mapped_column(sa.ForeignKey("lms_stripe_purchases.id"), unique=True)
    #: A learner's own choice of invoices to settle in one payment ("My payments"): the SHA-256 of the learner,
    #: the invoices and their parts. One open request per choice, so that a second click pays the same one.
    selection_key: Mapped[str | None] = mapped_column(sa.String(64))

    invoice: Mapped[Invoice | None] = relationship()
    parts: Mapped[list["RequestPart"]] = relationship(order_by="RequestPart.position", back_populates="request")

    @property
    def invoices(self) -> list[Invoice]:
        """The invoices it asks payment of: its parts' (a settlement), else its invoice (none for a top-up)."""
        return [part.invoice for part in self.parts] or ([self.invoice] if self.invoice is not None else [])

    @property
    def invoice_numbers(self) -> str:
        """The numbers of its invoices (an id for one not numbered yet), comma-separated."""
        return ", ".join(invoice.number or str(invoice.id) for invoice in self.invoices)

    @classmethod
    def covering(cls, invoice_id) -> sa.ColumnElement[bool]:
        """SQL: the request asks payment of this invoice (an id: its subquery of parts does not correlate with an
        outer query's column): its own, or one of its parts'."""
        return sa.or_(cls.invoice_id == invoice_id,
                      cls.id.in_(sa.select(RequestPart.request_id).where(RequestPart.invoice_id == invoice_id)))

    @classmethod
    def single(cls) -> sa.ColumnElement[bool]:
        """SQL: the request asks payment of one invoice (no parts)."""
        return ~sa.exists().where(RequestPart.request_id == cls.id)

    __table_args__ = (
        sa.CheckConstraint(one_of("status", PaymentRequestStatus), name="status_known"),
        sa.CheckConstraint("amount > 0 AND amount_paid >= 0", name="amounts_positive"),
        sa.CheckConstraint("(invoice_id IS NULL) = topup", name="invoice_or_topup"),
        sa.Index("uq_lms_stripe_payment_requests_open_selection", "selection_key", unique=True,
                 sqlite_where=sa.text("status = 'open' AND selection_key IS NOT NULL"),
                 postgresql_where=sa.text("status = 'open' AND selection_key IS NOT NULL")),
    )


class RequestPart(SchoolScoped, Base):
    """One invoice of a request that settles several in one payment, and its part: what the invoice owed
    when asked. Stripe applies a payment to one invoice only, so each part is credited to its invoice by a
    Payment Record of its own (``stripe_payment_record_id``) reporting its share of the request's Checkout
    payment; ``attached_at`` once Stripe attached it, ``paid_at`` once Stripe's invoice counts it paid."""

    __tablename__ = "lms_stripe_request_parts"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(sa.ForeignKey("lms_stripe_payment_requests.id"), index=True)
    invoice_id: Mapped[int] = mapped_column(sa.ForeignKey("lms_stripe_invoices.id"), index=True)
    position: Mapped[int]
    amount: Mapped[int] = mapped_column(sa.BigInteger)  # minor units of the request's currency
    stripe_payment_record_id: Mapped[str | None] = mapped_column(StripeId, unique=True)
    attached_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]

    request: Mapped[PaymentRequest] = relationship(back_populates="parts")
    invoice: Mapped[Invoice] = relationship()

    __table_args__ = (
        sa.UniqueConstraint("request_id", "invoice_id", name="uq_lms_stripe_request_parts_request_invoice"),
        sa.UniqueConstraint("request_id", "position", name="uq_lms_stripe_request_parts_request_position"),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
    )


class RequestLink(SchoolScoped, Base):
    """A link to a payment request's page, one per message sent: a random token, of which only the SHA-256
    is stored, so that the database alone opens no page. Every link of a request works while it is open."""

    __tablename__ = "lms_stripe_request_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(sa.ForeignKey("lms_stripe_payment_requests.id"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PaymentLink(SchoolScoped, Base):
    """A payment link an administrator created: a public page (`RequestLink`'s kind of random token, stored
    hashed, and encrypted so that administrators see its address again) where anyone pays a fixed amount, or
    an amount of their choice between a minimum and a maximum; optionally for one learner only, a number of
    uses or until a date.

    A use is counted when a payment is made (``uses``); an open Checkout holds one (``held``) from the Pay click
    until it is paid, fails or expires, so that two payers racing for the last use cannot both pay: a hold is
    taken by one conditional UPDATE of this row (`billing.payment_links.hold`)."""

    __tablename__ = "lms_stripe_payment_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    #: The token, encrypted with the settings' secrets' keys (core.crypto): never logged, shown to administrators.
    token_encrypted: Mapped[str] = mapped_column(sa.Text)
    title: Mapped[str] = mapped_column(sa.String(200))
    purpose: Mapped[str] = mapped_column(sa.Text)
    currency: Mapped[str] = mapped_column(sa.String(3))
    #: A fixed amount (tax-inclusive, minor units), or else the payer's own between ``minimum`` and ``maximum``.
    amount: Mapped[int | None] = mapped_column(sa.BigInteger)
    minimum: Mapped[int | None] = mapped_column(sa.BigInteger)
    maximum: Mapped[int | None] = mapped_column(sa.BigInteger)
    vat_rate: Mapped[int] = mapped_column(default=0)  # basis points
    #: Only this learner may pay it, signed in.
    user_id: Mapped[str | None] = mapped_column(HostId)
    #: What it collects tops up that learner's prepaid balance (no invoice, no VAT: a payment on account).
    topup: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    max_uses: Mapped[int | None]
    uses: Mapped[int] = mapped_column(default=0)
    held: Mapped[int] = mapped_column(default=0)
    expires_at: Mapped[datetime | None]
    status: Mapped[PaymentLinkStatus] = mapped_column(EnumText(PaymentLinkStatus, 16),
                                                      default=PaymentLinkStatus.ACTIVE)
    created_by: Mapped[str | None] = mapped_column(HostId)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None]
    disabled_by: Mapped[str | None] = mapped_column(HostId)

    __table_args__ = (
        sa.CheckConstraint(one_of("status", PaymentLinkStatus), name="status_known"),
        sa.CheckConstraint("(amount IS NOT NULL AND amount > 0 AND minimum IS NULL AND maximum IS NULL) OR "
                           "(amount IS NULL AND minimum > 0 AND maximum >= minimum)", name="amount_or_range"),
        sa.CheckConstraint("vat_rate >= 0 AND vat_rate <= 10000", name="vat_rate_range"),
        sa.CheckConstraint("max_uses IS NULL OR max_uses > 0", name="max_uses_positive"),
        sa.CheckConstraint("uses >= 0 AND held >= 0", name="counts_not_negative"),
        sa.CheckConstraint("NOT topup OR (user_id IS NOT NULL AND vat_rate = 0)", name="topup_for_one_learner"),
    )


class PaymentAttempt(SchoolScoped, Base):
    """One Pay click, on a payment request's page or on a payment link's: a Checkout Session for an amount.
    A request's payment is then attached to its Stripe invoice; a link's session issues an invoice of its own
    (``invoice_id`` once recorded). The payer of a link is a signed-in learner or whoever typed a name and an
    e-mail address."""

    __tablename__ = "lms_stripe_payment_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lms_stripe_payment_requests.id"), index=True)
    link_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lms_stripe_payment_links.id"), index=True)
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[AttemptStatus] = mapped_column(EnumText(AttemptStatus, 16), default=AttemptStatus.OPEN)
    stripe_checkout_session_id: Mapped[str | None] = mapped_column(StripeId, unique=True)
    checkout_url: Mapped[str | None] = mapped_column(sa.Text)
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(StripeId, index=True)
    expires_at: Mapped[datetime | None]
    failure_reason: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    paid_at: Mapped[datetime | None]
    attached_at: Mapped[datetime | None]
    payer_user_id: Mapped[str | None] = mapped_column(HostId)
    payer_name: Mapped[str | None] = mapped_column(sa.String(255))
    payer_email: Mapped[str | None] = mapped_column(sa.String(320))
    #: The invoice Checkout issued for a link's payment.
    invoice_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lms_stripe_invoices.id"), unique=True)
    #: How it was paid (`enums.PaymentMethod`), from the charge's events; None until one of them came.
    payment_method: Mapped[str | None] = mapped_column(sa.String(32))

    request: Mapped[PaymentRequest | None] = relationship()
    link: Mapped[PaymentLink | None] = relationship()
    invoice: Mapped[Invoice | None] = relationship()

    __table_args__ = (
        sa.CheckConstraint(one_of("status", AttemptStatus), name="status_known"),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint("(request_id IS NULL) <> (link_id IS NULL)", name="request_or_link"),
        # One Checkout Session at a time per request: a second click reuses it.
        sa.Index("uq_lms_stripe_payment_attempts_live", "request_id", unique=True,
                 sqlite_where=sa.text(one_of("status", LIVE_ATTEMPT)),
                 postgresql_where=sa.text(one_of("status", LIVE_ATTEMPT))),
    )


class InvoicePayment(SchoolScoped, Base):
    """A payment Stripe credited to one of our invoices (its invoice_payment object): one attached to it, or
    its default payment once paid (on Stripe's hosted invoice page)."""

    __tablename__ = "lms_stripe_invoice_payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(sa.ForeignKey("lms_stripe_invoices.id"), index=True)
    stripe_invoice_payment_id: Mapped[str] = mapped_column(StripeId, unique=True)
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(StripeId, index=True)
    attempt_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lms_stripe_payment_attempts.id"))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[str] = mapped_column(sa.String(16))  # Stripe's: open, paid, canceled
    paid_at: Mapped[datetime | None]
    #: How it was paid, when nothing else of ours says it (a Pay click's or a purchase's payment says it
    #: itself): a payment made on Stripe's hosted invoice page, read from its PaymentIntent's charge.
    payment_method: Mapped[str | None] = mapped_column(sa.String(32))


class Reminder(SchoolScoped, Base):
    """One reminder step of a payment request, written before anything is sent: the unique row makes two
    runs of the reminders, even on two machines, send it once."""

    __tablename__ = "lms_stripe_reminders"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(sa.ForeignKey("lms_stripe_payment_requests.id"))
    step: Mapped[int]  # days relative to the due date
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (sa.UniqueConstraint("request_id", "step", name="uq_lms_stripe_reminders_request_step"),)


class Suspension(SchoolScoped, Base):
    """A learner's access to a course suspended because the balance of their deposit is overdue past the
    school's grace period; ``restored_at`` is set when the invoice is paid. Nothing else is touched."""

    __tablename__ = "lms_stripe_suspensions"

    id: Mapped[int] = mapped_column(primary_key=True)
    purchase_id: Mapped[int] = mapped_column(sa.ForeignKey("lms_stripe_purchases.id"), index=True)
    user_id: Mapped[str] = mapped_column(HostId)
    course_id: Mapped[str] = mapped_column(HostId)
    suspended_at: Mapped[datetime] = mapped_column(default=utcnow)
    restored_at: Mapped[datetime | None]

    __table_args__ = (
        # One suspension in force per purchase: two reminders runs at once suspend once.
        sa.Index("uq_lms_stripe_suspensions_active", "purchase_id", unique=True,
                 sqlite_where=sa.text("restored_at IS NULL"), postgresql_where=sa.text("restored_at IS NULL")),
    )


class Balance(SchoolScoped, Base):
    """A learner's prepaid balance in one currency: the sum of its entries, kept with each entry written (in
    the same transaction, the row locked), and never below zero."""

    __tablename__ = "lms_stripe_balances"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(HostId)
    currency: Mapped[str] = mapped_column(sa.String(3))
    amount: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("school_id", "user_id", "currency", name="uq_lms_stripe_balances_user_currency"),
        sa.CheckConstraint("amount >= 0", name="not_negative"),
    )

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)


#: What paid a top-up, at most one of: a Pay click, a settlement's part, a deposit.
ONE_PAYMENT = ("(attempt_id IS NULL OR request_part_id IS NULL) AND "
               "(purchase_id IS NULL OR (attempt_id IS NULL AND request_part_id IS NULL))")


class TopUp(SchoolScoped, Base):
    """A learner topping up their balance through Checkout (from My payments, or by paying a top-up request or
    link: ``attempt_id``, written once paid); or a settlement's part that its invoice no longer owed, its share
    of the settlement's payment put on the balance (``request_part_id``, written once per part); or a deposit
    that its invoice no longer owed (``purchase_id``, written once per purchase). Paid, it becomes a ledger
    entry."""

    __tablename__ = "lms_stripe_topups"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(HostId, index=True)
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[TopUpStatus] = mapped_column(EnumText(TopUpStatus, 16), default=TopUpStatus.OPEN)
    stripe_checkout_session_id: Mapped[str | None] = mapped_column(StripeId, unique=True)
    checkout_url: Mapped[str | None] = mapped_column(sa.Text)
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(StripeId, index=True)
    stripe_refund_id: Mapped[str | None] = mapped_column(StripeId, unique=True)
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    paid_at: Mapped[datetime | None]
    refunded_at: Mapped[datetime | None]
    #: The Pay click of a top-up request or link that paid it.
    attempt_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lms_stripe_payment_attempts.id"), unique=True)
    #: The settlement's part whose share of the Pay click's payment this is (``stripe_payment_intent_id`` carries
    #: the whole settlement: a refund of it is of ``amount`` only).
    request_part_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lms_stripe_request_parts.id"), unique=True)
    #: The deposit purchase whose deposit this is: its invoice no longer owed it (``stripe_payment_intent_id``
    #: is the deposit's Checkout payment).
    purchase_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lms_stripe_purchases.id"), unique=True)

    __table_args__ = (
        sa.CheckConstraint(one_of("status", TopUpStatus), name="status_known"),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint(ONE_PAYMENT, name="one_payment"),
    )

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)


class BalanceEntry(SchoolScoped, Base):
    """One movement of a prepaid balance, never changed once written (append-only) but for the id of its
    mirror at Stripe. ``key`` names what it records, so that nothing is recorded twice: ``topup-<id>``,
    ``spent-<Stripe invoice>``, ``refund-<top-up id>`` (then ``-2``... after refunds that failed),
    ``refund-outside-<Stripe refund>``, ``refund-failed-<Stripe refund>``, ``credit-note-<Stripe credit note>``,
    ``unapplied-<Stripe invoice>``, ``overpaid-<Stripe invoice>-<total overpaid>``, or an administrator's
    form's token."""

    __tablename__ = "lms_stripe_balance_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    balance_id: Mapped[int] = mapped_column(sa.ForeignKey("lms_stripe_balances.id"), index=True)
    kind: Mapped[BalanceEntryKind] = mapped_column(EnumText(BalanceEntryKind, 16))
    amount: Mapped[int] = mapped_column(sa.BigInteger)  # signed: positive adds to the balance
    balance_after: Mapped[int] = mapped_column(sa.BigInteger)
    key: Mapped[str] = mapped_column(sa.String(255), unique=True)
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    actor_id: Mapped[str | None] = mapped_column(HostId)
    topup_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lms_stripe_topups.id"))
    invoice_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lms_stripe_invoices.id"))
    #: The customer balance transaction that mirrors this entry at Stripe (Stripe's own for a spending).
    stripe_transaction_id: Mapped[str | None] = mapped_column(StripeId, unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    balance: Mapped[Balance] = relationship()

    __table_args__ = (
        sa.CheckConstraint(one_of("kind", BalanceEntryKind), name="kind_known"),
        sa.CheckConstraint("amount <> 0", name="amount_not_zero"),
        sa.CheckConstraint("balance_after >= 0", name="balance_after_not_negative"),
        sa.Index("ix_lms_stripe_balance_entries_balance_created", "balance_id", "created_at", "id"),
    )


class Message(SchoolScoped, Base):
    """An e-mail or SMS to a learner, and whether it was delivered: kept, shown, and retried if it failed."""

    __tablename__ = "lms_stripe_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lms_stripe_payment_requests.id"), index=True)
    reminder_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lms_stripe_reminders.id"))
    channel: Mapped[Channel] = mapped_column(EnumText(Channel, 8))
    recipient: Mapped[str] = mapped_column(sa.String(320))
    subject: Mapped[str] = mapped_column(sa.String(500))
    body: Mapped[str] = mapped_column(sa.Text)
    html: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[MessageStatus] = mapped_column(EnumText(MessageStatus, 16), default=MessageStatus.PENDING,
                                                  index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    #: One message per purpose: a request's sending, a reminder step, a resend (with its own key).
    idempotency_key: Mapped[str] = mapped_column(sa.String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]

    __table_args__ = (
        sa.CheckConstraint(one_of("status", MessageStatus), name="status_known"),
        sa.CheckConstraint(one_of("channel", Channel), name="channel_known"),
    )


_REFUND_IN_FLIGHT = (one_of("status", (RefundStatus.REQUESTED, RefundStatus.PENDING))
                     + f" AND origin = '{RefundOrigin.ADMIN}'")


class Refund(SchoolScoped, Base):
    """A refund we asked Stripe for (or that Stripe told us of), and where it stands."""

    __tablename__ = "lms_stripe_refunds"

    id: Mapped[int] = mapped_column(primary_key=True)
    purchase_id: Mapped[int] = mapped_column(sa.ForeignKey("lms_stripe_purchases.id"), index=True)
    stripe_refund_id: Mapped[str | None] = mapped_column(StripeId, unique=True)
    stripe_credit_note_id: Mapped[str | None] = mapped_column(StripeId, unique=True)
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    #: The part of ``amount`` credited back to the learner's prepaid balance (what the balance paid of the
    #: invoice) by the credit note's ``credit_amount``; the rest is refunded to the payment.
    balance_amount: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[RefundStatus] = mapped_column(EnumText(RefundStatus, 16), default=RefundStatus.REQUESTED)
    full: Mapped[bool] = mapped_column(default=False)
    revoke_access: Mapped[bool] = mapped_column(default=False)
    origin: Mapped[RefundOrigin] = mapped_column(EnumText(RefundOrigin, 16), default=RefundOrigin.ADMIN)
    reason: Mapped[str | None] = mapped_column(sa.Text)
    failure_reason: Mapped[str | None] = mapped_column(sa.Text)
    actor_id: Mapped[str | None] = mapped_column(HostId)
    idempotency_key: Mapped[str] = mapped_column(sa.String(128), unique=True)
    #: A retry's failed refund, which is "replaced" once Stripe makes the retry or refuses it (the retry then
    #: stands for it). Unique: a refund is replaced at most once, so a retry is never asked for twice.
    replaces_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lms_stripe_refunds.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    purchase: Mapped[Purchase] = relationship()

    __table_args__ = (
        sa.CheckConstraint(one_of("status", RefundStatus), name="status_known"),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint("balance_amount >= 0 AND balance_amount <= amount", name="balance_part_within"),
        # One refund asked by an administrator at a time per purchase: two clicks never refund twice.
        sa.Index(
            "uq_lms_stripe_refunds_in_flight",
            "purchase_id",
            unique=True,
            sqlite_where=sa.text(_REFUND_IN_FLIGHT),
            postgresql_where=sa.text(_REFUND_IN_FLIGHT),
        ),
    )


class CreditNote(SchoolScoped, Base):
    """A Stripe credit note on one of our invoices: a cancellation's, a partial refund's, or one made in
    Stripe's Dashboard. Keyed by Stripe's ids, not by our rows, so that its events may come before or after
    those of its invoice and its refund."""

    __tablename__ = "lms_stripe_credit_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    stripe_credit_note_id: Mapped[str] = mapped_column(StripeId, unique=True)
    stripe_invoice_id: Mapped[str] = mapped_column(StripeId, index=True)
    #: The refund it pays back (the first of its ``refunds``), if any.
    stripe_refund_id: Mapped[str | None] = mapped_column(StripeId, index=True)
    number: Mapped[str | None] = mapped_column(sa.String(64))
    pdf_url: Mapped[str | None] = mapped_column(sa.Text)
    amount: Mapped[int] = mapped_column(sa.BigInteger)  # its total, minor units
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[CreditNoteStatus] = mapped_column(EnumText(CreditNoteStatus, 16), default=CreditNoteStatus.ISSUED)
    reason: Mapped[str | None] = mapped_column(sa.String(32))
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        sa.CheckConstraint(one_of("status", CreditNoteStatus), name="status_known"),
        sa.CheckConstraint("amount >= 0", name="amount_not_negative"),
    )


class Dispute(SchoolScoped, Base):
    __tablename__ = "lms_stripe_disputes"

    id: Mapped[int] = mapped_column(primary_key=True)
    stripe_dispute_id: Mapped[str] = mapped_column(StripeId, unique=True)
    purchase_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lms_stripe_purchases.id"), index=True)
    #: The Pay click (of a payment request or link) whose payment is disputed, when it is no purchase's.
    attempt_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lms_stripe_payment_attempts.id"), index=True)
    #: The top-up (from My payments) whose payment is disputed, when it is no Pay click's.
    topup_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lms_stripe_topups.id"), index=True)
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[str] = mapped_column(sa.String(32))
    reason: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Event(SchoolScoped, Base):
    """A Stripe webhook event, stored once by id (see `sync.webhooks.stored_id` for an id that does not fit)."""

    __tablename__ = "lms_stripe_events"

    id: Mapped[str] = mapped_column(StripeId, primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(128))
    livemode: Mapped[bool] = mapped_column(default=False)
    payload: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[EventStatus] = mapped_column(EnumText(EventStatus, 16), default=EventStatus.RECEIVED)
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(sa.Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]
    #: Why a rejected event cannot be used (the details are in ``error``).
    reason: Mapped[RejectReason | None] = mapped_column(EnumText(RejectReason, 32))

    __table_args__ = (
        sa.CheckConstraint(one_of("status", EventStatus), name="status_known"),
        sa.CheckConstraint(one_of("reason", RejectReason), name="reason_known"),
        # The administrators' list of failed and rejected events, newest first, and the replay's failed and lost
        # ones: every query of events by status. Every event writes its indexes: no other is kept.
        sa.Index("ix_lms_stripe_events_status_received_at", "status", "received_at"),
    )


class ObjectVersion(Base):
    """Per Stripe object, the event whose snapshot of it was applied last: events come late, twice and in
    any order, and a snapshot older than this one is not applied (see `sync.versions`)."""

    __tablename__ = "lms_stripe_object_versions"

    stripe_id: Mapped[str] = mapped_column(StripeId, primary_key=True)
    #: The event's ``created`` (Unix seconds, Stripe's clock).
    event_created: Mapped[int] = mapped_column(sa.BigInteger)
    #: The key the event is stored under in ``lms_stripe_events``.
    event_id: Mapped[str] = mapped_column(StripeId)


class FreeEnrollment(SchoolScoped, Base):
    """An enrollment into a paid course made from the back office: no charge, no invoice."""

    __tablename__ = "lms_stripe_free_enrollments"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(HostId, index=True)
    course_id: Mapped[str] = mapped_column(HostId, index=True)
    actor_id: Mapped[str] = mapped_column(HostId)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(SchoolScoped, Base):
    """One payment action, who did it and when."""

    __tablename__ = "lms_stripe_audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    action: Mapped[AuditAction] = mapped_column(EnumText(AuditAction, 48), index=True)
    actor_id: Mapped[str | None] = mapped_column(HostId)  # None: Stripe or the system
    user_id: Mapped[str | None] = mapped_column(HostId, index=True)
    course_id: Mapped[str | None] = mapped_column(HostId)
    purchase_id: Mapped[int | None] = mapped_column(sa.Integer)
    details: Mapped[str | None] = mapped_column(sa.Text)  # JSON
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

