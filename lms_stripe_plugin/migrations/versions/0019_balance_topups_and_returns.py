"""prepaid balances, continued: top-up requests (no invoice) and top-up links (one learner, no VAT), the top-up a
Pay click of them paid, the part of a refund credited back to the balance, and the ledger's movements that
Stripe makes (a credit note's credit, a voided invoice's credit given back, an overpayment)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-22 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

_KINDS = "'topup', 'spent', 'credit', 'debit', 'topup_refund'"
_NEW_KINDS = _KINDS + ", 'credit_note', 'unapplied', 'overpaid'"


def _kinds(kinds: str) -> None:
    with op.batch_alter_table('lms_stripe_balance_entries', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_lms_stripe_balance_entries_kind_known'), type_='check')
    with op.batch_alter_table('lms_stripe_balance_entries', schema=None) as batch_op:
        batch_op.create_check_constraint(op.f('ck_lms_stripe_balance_entries_kind_known'), f"kind IN ({kinds})")


def upgrade() -> None:
    with op.batch_alter_table('lms_stripe_payment_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('topup', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.alter_column('invoice_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_check_constraint(op.f('ck_lms_stripe_payment_requests_invoice_or_topup'),
                                         '(invoice_id IS NULL) = topup')
    with op.batch_alter_table('lms_stripe_payment_links', schema=None) as batch_op:
        batch_op.add_column(sa.Column('topup', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_check_constraint(op.f('ck_lms_stripe_payment_links_topup_for_one_learner'),
                                         'NOT topup OR (user_id IS NOT NULL AND vat_rate = 0)')
    with op.batch_alter_table('lms_stripe_topups', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempt_id', sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_lms_stripe_topups_attempt_id'), ['attempt_id'])
        batch_op.create_foreign_key(batch_op.f('fk_lms_stripe_topups_attempt_id_lms_stripe_payment_attempts'),
                                    'lms_stripe_payment_attempts', ['attempt_id'], ['id'])
    with op.batch_alter_table('lms_stripe_refunds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('balance_amount', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.create_check_constraint(op.f('ck_lms_stripe_refunds_balance_part_within'),
                                         'balance_amount >= 0 AND balance_amount <= amount')
    _kinds(_NEW_KINDS)


def downgrade() -> None:
    # Refused by the database while movements of the new kinds, or top-up requests, exist: removing them would
    # change learners' balances.
    _kinds(_KINDS)
    with op.batch_alter_table('lms_stripe_refunds', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_lms_stripe_refunds_balance_part_within'), type_='check')
        batch_op.drop_column('balance_amount')
    with op.batch_alter_table('lms_stripe_topups', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_lms_stripe_topups_attempt_id_lms_stripe_payment_attempts'),
                                 type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_lms_stripe_topups_attempt_id'), type_='unique')
        batch_op.drop_column('attempt_id')
    with op.batch_alter_table('lms_stripe_payment_links', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_lms_stripe_payment_links_topup_for_one_learner'), type_='check')
        batch_op.drop_column('topup')
    with op.batch_alter_table('lms_stripe_payment_requests', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_lms_stripe_payment_requests_invoice_or_topup'), type_='check')
        batch_op.alter_column('invoice_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('topup')
