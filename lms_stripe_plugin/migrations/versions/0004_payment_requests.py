"""payment requests: invoices an administrator creates, their lines, requests, Pay attempts, the payments
Stripe credits to invoices, reminders and messages

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 13:50:50
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

_OLD_STATES = "'paid', 'partially_refunded', 'refund_pending', 'refund_failed', 'cancelled'"
_NEW_STATES = "'issuing', 'open', " + _OLD_STATES + ", 'void'"


def upgrade() -> None:
    op.create_table('lms_stripe_invoice_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('course_id', sa.String(length=64), nullable=True),
    sa.Column('gross', sa.BigInteger(), nullable=False),
    sa.Column('vat_rate', sa.Integer(), nullable=False),
    sa.Column('net', sa.BigInteger(), nullable=False),
    sa.Column('vat', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('gross > 0 AND net + vat = gross', name=op.f('ck_lms_stripe_invoice_lines_amounts_add_up')),
    sa.ForeignKeyConstraint(['invoice_id'], ['lms_stripe_invoices.id'], name=op.f('fk_lms_stripe_invoice_lines_invoice_id_lms_stripe_invoices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lms_stripe_invoice_lines')),
    sa.UniqueConstraint('invoice_id', 'position', name='uq_lms_stripe_invoice_lines_position')
    )
    with op.batch_alter_table('lms_stripe_invoice_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lms_stripe_invoice_lines_invoice_id'), ['invoice_id'], unique=False)

    op.create_table('lms_stripe_payment_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount_paid', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('locale', sa.String(length=8), nullable=False),
    sa.Column('send_email', sa.Boolean(), nullable=False),
    sa.Column('send_sms', sa.Boolean(), nullable=False),
    sa.Column('partial_minimum', sa.BigInteger(), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('open', 'paid', 'cancelled')", name=op.f('ck_lms_stripe_payment_requests_status_known')),
    sa.CheckConstraint('amount > 0 AND amount_paid >= 0', name=op.f('ck_lms_stripe_payment_requests_amounts_positive')),
    sa.ForeignKeyConstraint(['invoice_id'], ['lms_stripe_invoices.id'], name=op.f('fk_lms_stripe_payment_requests_invoice_id_lms_stripe_invoices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lms_stripe_payment_requests'))
    )
    with op.batch_alter_table('lms_stripe_payment_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lms_stripe_payment_requests_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_lms_stripe_payment_requests_due_at'), ['due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_lms_stripe_payment_requests_invoice_id'), ['invoice_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_lms_stripe_payment_requests_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_lms_stripe_payment_requests_user_id'), ['user_id'], unique=False)

    op.create_table('lms_stripe_request_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['lms_stripe_payment_requests.id'], name=op.f('fk_lms_stripe_request_links_request_id_lms_stripe_payment_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lms_stripe_request_links')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_lms_stripe_request_links_token_hash'))
    )
    with op.batch_alter_table('lms_stripe_request_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lms_stripe_request_links_request_id'), ['request_id'], unique=False)

    op.create_table('lms_stripe_payment_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('stripe_checkout_session_id', sa.String(length=255), nullable=True),
    sa.Column('checkout_url', sa.Text(), nullable=True),
    sa.Column('stripe_payment_intent_id', sa.String(length=255), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failure_reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attached_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('open', 'processing', 'paid', 'attached', 'failed', 'expired')", name=op.f('ck_lms_stripe_payment_attempts_status_known')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_lms_stripe_payment_attempts_amount_positive')),
    sa.ForeignKeyConstraint(['request_id'], ['lms_stripe_payment_requests.id'], name=op.f('fk_lms_stripe_payment_attempts_request_id_lms_stripe_payment_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lms_stripe_payment_attempts')),
    sa.UniqueConstraint('stripe_checkout_session_id', name=op.f('uq_lms_stripe_payment_attempts_stripe_checkout_session_id'))
    )
    with op.batch_alter_table('lms_stripe_payment_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lms_stripe_payment_attempts_request_id'), ['request_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_lms_stripe_payment_attempts_stripe_payment_intent_id'), ['stripe_payment_intent_id'], unique=False)
        batch_op.create_index('uq_lms_stripe_payment_attempts_live', ['request_id'], unique=True, sqlite_where=sa.text("status IN ('open', 'processing')"), postgresql_where=sa.text("status IN ('open', 'processing')"))

    op.create_table('lms_stripe_reminders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['lms_stripe_payment_requests.id'], name=op.f('fk_lms_stripe_reminders_request_id_lms_stripe_payment_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lms_stripe_reminders')),
    sa.UniqueConstraint('request_id', 'step', name='uq_lms_stripe_reminders_request_step')
    )
    op.create_table('lms_stripe_invoice_payments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('stripe_invoice_payment_id', sa.String(length=255), nullable=False),
    sa.Column('stripe_payment_intent_id', sa.String(length=255), nullable=True),
    sa.Column('attempt_id', sa.Integer(), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['attempt_id'], ['lms_stripe_payment_attempts.id'], name=op.f('fk_lms_stripe_invoice_payments_attempt_id_lms_stripe_payment_attempts')),
    sa.ForeignKeyConstraint(['invoice_id'], ['lms_stripe_invoices.id'], name=op.f('fk_lms_stripe_invoice_payments_invoice_id_lms_stripe_invoices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lms_stripe_invoice_payments')),
    sa.UniqueConstraint('stripe_invoice_payment_id', name=op.f('uq_lms_stripe_invoice_payments_stripe_invoice_payment_id'))
    )
    with op.batch_alter_table('lms_stripe_invoice_payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lms_stripe_invoice_payments_invoice_id'), ['invoice_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_lms_stripe_invoice_payments_stripe_payment_intent_id'), ['stripe_payment_intent_id'], unique=False)

    op.create_table('lms_stripe_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=True),
    sa.Column('reminder_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('recipient', sa.String(length=320), nullable=False),
    sa.Column('subject', sa.String(length=500), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('html', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('idempotency_key', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("channel IN ('email', 'sms')", name=op.f('ck_lms_stripe_messages_channel_known')),
    sa.CheckConstraint("status IN ('pending', 'sent', 'failed')", name=op.f('ck_lms_stripe_messages_status_known')),
    sa.ForeignKeyConstraint(['reminder_id'], ['lms_stripe_reminders.id'], name=op.f('fk_lms_stripe_messages_reminder_id_lms_stripe_reminders')),
    sa.ForeignKeyConstraint(['request_id'], ['lms_stripe_payment_requests.id'], name=op.f('fk_lms_stripe_messages_request_id_lms_stripe_payment_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lms_stripe_messages')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_lms_stripe_messages_idempotency_key'))
    )
    with op.batch_alter_table('lms_stripe_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lms_stripe_messages_request_id'), ['request_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_lms_stripe_messages_status'), ['status'], unique=False)

    with op.batch_alter_table('lms_stripe_invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=16), server_default='checkout', nullable=False))
        batch_op.add_column(sa.Column('amount_paid', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('amount_remaining', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('stripe_customer_id', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('created_by', sa.String(length=64), nullable=True))
        batch_op.alter_column('stripe_invoice_id',
               existing_type=sa.VARCHAR(length=255),
               nullable=True)
        batch_op.alter_column('purchase_id',
               existing_type=sa.INTEGER(),
               nullable=True)
        batch_op.alter_column('course_id',
               existing_type=sa.VARCHAR(length=64),
               nullable=True)
        batch_op.drop_constraint(op.f('ck_lms_stripe_invoices_status_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_lms_stripe_invoices_status_known'), f"status IN ({_NEW_STATES})")
        batch_op.create_check_constraint(op.f('ck_lms_stripe_invoices_amounts_not_negative'),
                                         'amount_paid >= 0 AND amount_remaining >= 0')
    # Invoices of Checkout purchases are paid in full.
    op.execute("UPDATE lms_stripe_invoices SET amount_paid = gross")

    with op.batch_alter_table('lms_stripe_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('school_name', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('partial_payments_enabled', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('partial_minimum', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('reminder_days', sa.String(length=64), server_default='-3,1,7', nullable=False))
        batch_op.add_column(sa.Column('reminder_max', sa.Integer(), server_default='3', nullable=False))
        batch_op.add_column(sa.Column('reminder_sms', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('lms_stripe_settings', schema=None) as batch_op:
        batch_op.drop_column('reminder_sms')
        batch_op.drop_column('reminder_max')
        batch_op.drop_column('reminder_days')
        batch_op.drop_column('partial_minimum')
        batch_op.drop_column('partial_payments_enabled')
        batch_op.drop_column('school_name')

    op.drop_table('lms_stripe_messages')
    op.drop_table('lms_stripe_invoice_payments')
    op.drop_table('lms_stripe_reminders')
    op.drop_table('lms_stripe_payment_attempts')
    op.drop_table('lms_stripe_request_links')
    op.drop_table('lms_stripe_payment_requests')
    op.drop_table('lms_stripe_invoice_lines')
    # The release before this one knows only the invoices of Checkout purchases.
    op.execute("DELETE FROM lms_stripe_invoices WHERE source <> 'checkout'")
    with op.batch_alter_table('lms_stripe_invoices', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_lms_stripe_invoices_amounts_not_negative'), type_='check')
        batch_op.drop_constraint(op.f('ck_lms_stripe_invoices_status_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_lms_stripe_invoices_status_known'), f"status IN ({_OLD_STATES})")
        batch_op.alter_column('course_id',
               existing_type=sa.VARCHAR(length=64),
               nullable=False)
        batch_op.alter_column('purchase_id',
               existing_type=sa.INTEGER(),
               nullable=False)
        batch_op.alter_column('stripe_invoice_id',
               existing_type=sa.VARCHAR(length=255),
               nullable=False)
        batch_op.drop_column('created_by')
        batch_op.drop_column('stripe_customer_id')
        batch_op.drop_column('due_at')
        batch_op.drop_column('amount_remaining')
        batch_op.drop_column('amount_paid')
        batch_op.drop_column('source')
