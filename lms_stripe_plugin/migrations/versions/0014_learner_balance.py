"""learners' prepaid balances: a balance per learner and currency, its append-only entries, top-ups, and the
school's top-up limits

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-16 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('lms_stripe_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prepaid_enabled', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('topup_minimum', sa.BigInteger(), server_default='1000', nullable=False))
        batch_op.add_column(sa.Column('topup_maximum', sa.BigInteger(), server_default='100000', nullable=False))
        batch_op.create_check_constraint(op.f('ck_lms_stripe_settings_topup_range'),
                                         'topup_minimum > 0 AND topup_maximum >= topup_minimum')
    op.create_table('lms_stripe_balances',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_lms_stripe_balances_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lms_stripe_balances')),
    sa.UniqueConstraint('user_id', 'currency', name=op.f('uq_lms_stripe_balances_user_id'))
    )
    op.create_table('lms_stripe_topups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('stripe_checkout_session_id', sa.String(length=255), nullable=True),
    sa.Column('checkout_url', sa.Text(), nullable=True),
    sa.Column('stripe_payment_intent_id', sa.String(length=255), nullable=True),
    sa.Column('stripe_refund_id', sa.String(length=255), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('refunded_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('open', 'paid', 'expired', 'refunding', 'refunded')",
                       name=op.f('ck_lms_stripe_topups_status_known')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_lms_stripe_topups_amount_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lms_stripe_topups')),
    sa.UniqueConstraint('stripe_checkout_session_id', name=op.f('uq_lms_stripe_topups_stripe_checkout_session_id')),
    sa.UniqueConstraint('stripe_refund_id', name=op.f('uq_lms_stripe_topups_stripe_refund_id'))
    )
    with op.batch_alter_table('lms_stripe_topups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lms_stripe_topups_user_id'), ['user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_lms_stripe_topups_stripe_payment_intent_id'),
                              ['stripe_payment_intent_id'], unique=False)
    op.create_table('lms_stripe_balance_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('balance_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('balance_after', sa.BigInteger(), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('actor_id', sa.String(length=64), nullable=True),
    sa.Column('topup_id', sa.Integer(), nullable=True),
    sa.Column('invoice_id', sa.Integer(), nullable=True),
    sa.Column('stripe_transaction_id', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('topup', 'spent', 'credit', 'debit', 'topup_refund')",
                       name=op.f('ck_lms_stripe_balance_entries_kind_known')),
    sa.CheckConstraint('amount <> 0', name=op.f('ck_lms_stripe_balance_entries_amount_not_zero')),
    sa.CheckConstraint('balance_after >= 0', name=op.f('ck_lms_stripe_balance_entries_balance_after_not_negative')),
    sa.ForeignKeyConstraint(['balance_id'], ['lms_stripe_balances.id'],
                            name=op.f('fk_lms_stripe_balance_entries_balance_id_lms_stripe_balances')),
    sa.ForeignKeyConstraint(['invoice_id'], ['lms_stripe_invoices.id'],
                            name=op.f('fk_lms_stripe_balance_entries_invoice_id_lms_stripe_invoices')),
    sa.ForeignKeyConstraint(['topup_id'], ['lms_stripe_topups.id'],
                            name=op.f('fk_lms_stripe_balance_entries_topup_id_lms_stripe_topups')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lms_stripe_balance_entries')),
    sa.UniqueConstraint('key', name=op.f('uq_lms_stripe_balance_entries_key')),
    sa.UniqueConstraint('stripe_transaction_id', name=op.f('uq_lms_stripe_balance_entries_stripe_transaction_id'))
    )
    with op.batch_alter_table('lms_stripe_balance_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lms_stripe_balance_entries_balance_id'), ['balance_id'], unique=False)
        batch_op.create_index('ix_lms_stripe_balance_entries_balance_created', ['balance_id', 'created_at', 'id'],
                              unique=False)


def downgrade() -> None:
    op.drop_table('lms_stripe_balance_entries')
    op.drop_table('lms_stripe_topups')
    op.drop_table('lms_stripe_balances')
    with op.batch_alter_table('lms_stripe_settings', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_lms_stripe_settings_topup_range'), type_='check')
        batch_op.drop_column('topup_maximum')
        batch_op.drop_column('topup_minimum')
        batch_op.drop_column('prepaid_enabled')
