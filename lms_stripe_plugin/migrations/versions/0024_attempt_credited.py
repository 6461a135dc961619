"""payment attempts: "credited", a payment put on the learner's balance because its invoice no longer owed it

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04 18:10:00
"""
from alembic import op


revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

_BEFORE = "'open', 'processing', 'paid', 'attached', 'failed', 'expired'"
_AFTER = "'open', 'processing', 'paid', 'attached', 'credited', 'failed', 'expired'"


def _states(states: str) -> None:
    with op.batch_alter_table('lms_stripe_payment_attempts', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_lms_stripe_payment_attempts_status_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_lms_stripe_payment_attempts_status_known'), f"status IN ({states})")


def upgrade() -> None:
    _states(_AFTER)


def downgrade() -> None:
    # A credited attempt's payment is on the learner's balance, as a top-up: done, as "attached" is to the code
    # before this revision ("paid" would have it attached again, and credited twice once the invoice owes it).
    op.execute("UPDATE lms_stripe_payment_attempts SET status = 'attached' WHERE status = 'credited'")
    _states(_BEFORE)
