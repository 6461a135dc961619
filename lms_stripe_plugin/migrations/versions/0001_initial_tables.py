"""initial tables

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 01:58:30.121153
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('lms_stripe_audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=48), nullable=False),
    sa.Column('actor_id', sa.String(length=64), nullable=True),
    sa.Column('user_id', sa.String(length=64), nullable=True),
    sa.Column('course_id', sa.String(length=64), nullable=True),
    sa.Column('purchase_id', sa.Integer(), nullable=True),
    sa.Column('details', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lms_stripe_audit_log'))
    )
    with op.batch_alter_table('lms_stripe_audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lms_stripe_audit_log_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_lms_stripe_audit_log_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_lms_stripe_audit_log_user_id'), ['user_id'], unique=False)

    op.create_table('lms_stripe_course_offers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('course_id', sa.String(length=64), nullable=False),
    sa.Column('is_paid', sa.Boolean(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('vat_rate', sa.Integer(), nullable=False),
    sa.Column('audience', sa.String(length=16), nullable=False),
    sa.Column('on_sale', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("audience IN ('internal', 'partner', 'public')", name=op.f('ck_lms_stripe_course_offers_audience_known')),
    sa.CheckConstraint('NOT is_paid OR (amount IS NOT NULL AND currency IS NOT NULL)', name=op.f('ck_lms_stripe_course_offers_paid_priced')),
    sa.CheckConstraint('amount IS NULL OR amount > 0', name=op.f('ck_lms_stripe_course_offers_amount_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lms_stripe_course_offers')),
    sa.UniqueConstraint('course_id', name=op.f('uq_lms_stripe_course_offers_course_id'))
    )
    op.create_table('lms_stripe_customers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('livemode', sa.Boolean(), nullable=False),
    sa.Column('stripe_customer_id', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lms_stripe_customers')),
    sa.UniqueConstraint('stripe_customer_id', name=op.f('uq_lms_stripe_customers_stripe_customer_id')),
    sa.UniqueConstraint('user_id', 'livemode', name='uq_lms_stripe_customers_user_mode')
    )
    op.create_table('lms_stripe_events',
    sa.Column('id', sa.String(length=255), nullable=False),
    sa.Column('type', sa.String(length=128), nullable=False),
    sa.Column('livemode', sa.Boolean(), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('received', 'processed', 'failed', 'ignored', 'rejected')", name=op.f('ck_lms_stripe_events_status_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lms_stripe_events'))
    )
    with op.batch_alter_table('lms_stripe_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lms_stripe_events_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_lms_stripe_events_type'), ['type'], unique=False)

    op.create_table('lms_stripe_free_enrollments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('course_id', sa.String(length=64), nullable=False),
    sa.Column('actor_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lms_stripe_free_enrollments'))
    )
    with op.batch_alter_table('lms_stripe_free_enrollments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lms_stripe_free_enrollments_course_id'), ['course_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_lms_stripe_free_enrollments_user_id'), ['user_id'], unique=False)

    op.create_table('lms_stripe_purchases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('course_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('vat_rate', sa.Integer(), nullable=False),
    sa.Column('amount_paid', sa.BigInteger(), nullable=True),
    sa.Column('amount_refunded', sa.BigInteger(), nullable=False),
    sa.Column('stripe_checkout_session_id', sa.String(length=255), nullable=True),
    sa.Column('checkout_url', sa.Text(), nullable=True),
    sa.Column('stripe_payment_intent_id', sa.String(length=255), nullable=True),
    sa.Column('stripe_customer_id', sa.String(length=255), nullable=True),
    sa.Column('livemode', sa.Boolean(), nullable=False),
    sa.Column('failure_reason', sa.Text(), nullable=True),
    sa.Column('disputed', sa.Boolean(), nullable=False),
    sa.Column('dispute_status', sa.String(length=32), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('open', 'processing', 'paid', 'failed', 'expired', 'cancelled')", name=op.f('ck_lms_stripe_purchases_status_known')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_lms_stripe_purchases_amount_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lms_stripe_purchases')),
    sa.UniqueConstraint('stripe_checkout_session_id', name=op.f('uq_lms_stripe_purchases_stripe_checkout_session_id'))
    )
    with op.batch_alter_table('lms_stripe_purchases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lms_stripe_purchases_course_id'), ['course_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_lms_stripe_purchases_stripe_payment_intent_id'), ['stripe_payment_intent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_lms_stripe_purchases_user_id'), ['user_id'], unique=False)
        batch_op.create_index('uq_lms_stripe_purchases_live', ['user_id', 'course_id'], unique=True, sqlite_where=sa.text("status IN ('open', 'processing', 'paid')"), postgresql_where=sa.text("status IN ('open', 'processing', 'paid')"))

    op.create_table('lms_stripe_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('publishable_key', sa.String(length=255), nullable=True),
    sa.Column('secret_key_encrypted', sa.Text(), nullable=True),
    sa.Column('webhook_secrets_encrypted', sa.Text(), nullable=True),
    sa.Column('default_currency', sa.String(length=3), nullable=False),
    sa.Column('default_vat_rate', sa.Integer(), nullable=False),
    sa.Column('vouchers_enabled', sa.Boolean(), nullable=False),
    sa.Column('wallets_enabled', sa.Boolean(), nullable=False),
    sa.Column('klarna_enabled', sa.Boolean(), nullable=False),
    sa.Column('klarna_minimum', sa.BigInteger(), nullable=True),
    sa.Column('sepa_debit_enabled', sa.Boolean(), nullable=False),
    sa.Column('automatic_tax', sa.Boolean(), nullable=False),
    sa.Column('terms_url', sa.String(length=2048), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_by', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lms_stripe_settings'))
    )
    op.create_table('lms_stripe_tax_rates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rate', sa.Integer(), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('livemode', sa.Boolean(), nullable=False),
    sa.Column('stripe_tax_rate_id', sa.String(length=255), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lms_stripe_tax_rates')),
    sa.UniqueConstraint('rate', 'country', 'livemode', name='uq_lms_stripe_tax_rates_rate_country_mode'),
    sa.UniqueConstraint('stripe_tax_rate_id', name=op.f('uq_lms_stripe_tax_rates_stripe_tax_rate_id'))
    )
    op.create_table('lms_stripe_disputes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('stripe_dispute_id', sa.String(length=255), nullable=False),
    sa.Column('purchase_id', sa.Integer(), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['purchase_id'], ['lms_stripe_purchases.id'], name=op.f('fk_lms_stripe_disputes_purchase_id_lms_stripe_purchases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lms_stripe_disputes')),
    sa.UniqueConstraint('stripe_dispute_id', name=op.f('uq_lms_stripe_disputes_stripe_dispute_id'))
    )
    with op.batch_alter_table('lms_stripe_disputes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lms_stripe_disputes_purchase_id'), ['purchase_id'], unique=False)

    op.create_table('lms_stripe_invoices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('stripe_invoice_id', sa.String(length=255), nullable=False),
    sa.Column('purchase_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=64), nullable=True),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('course_id', sa.String(length=64), nullable=False),
    sa.Column('user_email', sa.String(length=320), nullable=True),
    sa.Column('user_name', sa.String(length=255), nullable=True),
    sa.Column('course_title', sa.String(length=500), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('net', sa.BigInteger(), nullable=False),
    sa.Column('vat', sa.BigInteger(), nullable=False),
    sa.Column('gross', sa.BigInteger(), nullable=False),
    sa.Column('amount_refunded', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('pdf_url', sa.Text(), nullable=True),
    sa.Column('hosted_url', sa.Text(), nullable=True),
    sa.Column('credit_note_id', sa.String(length=255), nullable=True),
    sa.Column('credit_note_number', sa.String(length=64), nullable=True),
    sa.Column('credit_note_pdf_url', sa.Text(), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('paid', 'partially_refunded', 'refund_pending', 'refund_failed', 'cancelled')", name=op.f('ck_lms_stripe_invoices_status_known')),
    sa.CheckConstraint('net + vat = gross', name=op.f('ck_lms_stripe_invoices_amounts_add_up')),
    sa.ForeignKeyConstraint(['purchase_id'], ['lms_stripe_purchases.id'], name=op.f('fk_lms_stripe_invoices_purchase_id_lms_stripe_purchases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lms_stripe_invoices')),
    sa.UniqueConstraint('credit_note_id', name=op.f('uq_lms_stripe_invoices_credit_note_id')),
    sa.UniqueConstraint('purchase_id', name=op.f('uq_lms_stripe_invoices_purchase_id')),
    sa.UniqueConstraint('stripe_invoice_id', name=op.f('uq_lms_stripe_invoices_stripe_invoice_id'))
    )
    with op.batch_alter_table('lms_stripe_invoices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lms_stripe_invoices_course_id'), ['course_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_lms_stripe_invoices_issued_at'), ['issued_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_lms_stripe_invoices_number'), ['number'], unique=False)
        batch_op.create_index(batch_op.f('ix_lms_stripe_invoices_user_email'), ['user_email'], unique=False)
        batch_op.create_index(batch_op.f('ix_lms_stripe_invoices_user_id'), ['user_id'], unique=False)

    op.create_table('lms_stripe_refunds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('purchase_id', sa.Integer(), nullable=False),
    sa.Column('stripe_refund_id', sa.String(length=255), nullable=True),
    sa.Column('stripe_credit_note_id', sa.String(length=255), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('full', sa.Boolean(), nullable=False),
    sa.Column('revoke_access', sa.Boolean(), nullable=False),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('failure_reason', sa.Text(), nullable=True),
    sa.Column('actor_id', sa.String(length=64), nullable=True),
    sa.Column('idempotency_key', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('requested', 'pending', 'succeeded', 'failed', 'canceled')", name=op.f('ck_lms_stripe_refunds_status_known')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_lms_stripe_refunds_amount_positive')),
    sa.ForeignKeyConstraint(['purchase_id'], ['lms_stripe_purchases.id'], name=op.f('fk_lms_stripe_refunds_purchase_id_lms_stripe_purchases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lms_stripe_refunds')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_lms_stripe_refunds_idempotency_key')),
    sa.UniqueConstraint('stripe_credit_note_id', name=op.f('uq_lms_stripe_refunds_stripe_credit_note_id')),
    sa.UniqueConstraint('stripe_refund_id', name=op.f('uq_lms_stripe_refunds_stripe_refund_id'))
    )
    with op.batch_alter_table('lms_stripe_refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lms_stripe_refunds_purchase_id'), ['purchase_id'], unique=False)
        batch_op.create_index('uq_lms_stripe_refunds_in_flight', ['purchase_id'], unique=True, sqlite_where=sa.text("status IN ('requested', 'pending') AND origin = 'admin'"), postgresql_where=sa.text("status IN ('requested', 'pending') AND origin = 'admin'"))



def downgrade() -> None:
    with op.batch_alter_table('lms_stripe_refunds', schema=None) as batch_op:
        batch_op.drop_index('uq_lms_stripe_refunds_in_flight', sqlite_where=sa.text("status IN ('requested', 'pending') AND origin = 'admin'"), postgresql_where=sa.text("status IN ('requested', 'pending') AND origin = 'admin'"))
        batch_op.drop_index(batch_op.f('ix_lms_stripe_refunds_purchase_id'))

    op.drop_table('lms_stripe_refunds')
    with op.batch_alter_table('lms_stripe_invoices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lms_stripe_invoices_user_id'))
        batch_op.drop_index(batch_op.f('ix_lms_stripe_invoices_user_email'))
        batch_op.drop_index(batch_op.f('ix_lms_stripe_invoices_number'))
        batch_op.drop_index(batch_op.f('ix_lms_stripe_invoices_issued_at'))
        batch_op.drop_index(batch_op.f('ix_lms_stripe_invoices_course_id'))

    op.drop_table('lms_stripe_invoices')
    with op.batch_alter_table('lms_stripe_disputes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lms_stripe_disputes_purchase_id'))

    op.drop_table('lms_stripe_disputes')
    op.drop_table('lms_stripe_tax_rates')
    op.drop_table('lms_stripe_settings')
    with op.batch_alter_table('lms_stripe_purchases', schema=None) as batch_op:
        batch_op.drop_index('uq_lms_stripe_purchases_live', sqlite_where=sa.text("status IN ('open', 'processing', 'paid')"), postgresql_where=sa.text("status IN ('open', 'processing', 'paid')"))
        batch_op.drop_index(batch_op.f('ix_lms_stripe_purchases_user_id'))
        batch_op.drop_index(batch_op.f('ix_lms_stripe_purchases_stripe_payment_intent_id'))
        batch_op.drop_index(batch_op.f('ix_lms_stripe_purchases_course_id'))

    op.drop_table('lms_stripe_purchases')
    with op.batch_alter_table('lms_stripe_free_enrollments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lms_stripe_free_enrollments_user_id'))
        batch_op.drop_index(batch_op.f('ix_lms_stripe_free_enrollments_course_id'))

    op.drop_table('lms_stripe_free_enrollments')
    with op.batch_alter_table('lms_stripe_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lms_stripe_events_type'))
        batch_op.drop_index(batch_op.f('ix_lms_stripe_events_status'))

    op.drop_table('lms_stripe_events')
    op.drop_table('lms_stripe_customers')
    op.drop_table('lms_stripe_course_offers')
    with op.batch_alter_table('lms_stripe_audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lms_stripe_audit_log_user_id'))
        batch_op.drop_index(batch_op.f('ix_lms_stripe_audit_log_created_at'))
        batch_op.drop_index(batch_op.f('ix_lms_stripe_audit_log_action'))

    op.drop_table('lms_stripe_audit_log')
