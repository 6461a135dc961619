"""balances: what a top-up's refund took off the balance, given back when the refund failed; and a payment on the
balance attached to an invoice in Stripe's Dashboard, taken off it (its top-up "attached")

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
_NEW_KINDS = _KINDS + ", 'refund_failed', 'attached'"
_TOPUP_STATES = "'open', 'paid', 'expired', 'refunding', 'refunded'"
_NEW_TOPUP_STATES = _TOPUP_STATES + ", 'attached'"


def _check(table: str, name: str, condition: str) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.drop_constraint(op.f(name), type_='check')
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.create_check_constraint(op.f(name), condition)


def upgrade() -> None:
    _check('lms_stripe_balance_entries', 'ck_lms_stripe_balance_entries_kind_known', f"kind IN ({_NEW_KINDS})")
    _check('lms_stripe_topups', 'ck_lms_stripe_topups_status_known', f"status IN ({_NEW_TOPUP_STATES})")


def downgrade() -> None:
    # Refused by the database while such entries or top-ups exist: removing them would change learners' balances.
    _check('lms_stripe_topups', 'ck_lms_stripe_topups_status_known', f"status IN ({_TOPUP_STATES})")
    _check('lms_stripe_balance_entries', 'ck_lms_stripe_balance_entries_kind_known', f"kind IN ({_KINDS})")
