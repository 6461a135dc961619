"""balance entries: what a top-up's refund took off the balance, given back when the refund failed

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-10 10:00:00
"""
from alembic import op


revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None

_KINDS = "'topup', 'spent', 'credit', 'debit', 'topup_refund', 'credit_note', 'unapplied', 'overpaid'"
_NEW_KINDS = _KINDS + ", 'refund_failed'"


def _kinds(kinds: str) -> None:
    with op.batch_alter_table('lms_stripe_balance_entries', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_lms_stripe_balance_entries_kind_known'), type_='check')
    with op.batch_alter_table('lms_stripe_balance_entries', schema=None) as batch_op:
        batch_op.create_check_constraint(op.f('ck_lms_stripe_balance_entries_kind_known'), f"kind IN ({kinds})")


def upgrade() -> None:
    _kinds(_NEW_KINDS)


def downgrade() -> None:
    # Refused by the database while such entries exist: removing them would change learners' balances.
    _kinds(_KINDS)
