"""one spelling of statuses: a refund replaced by a retry is "replaced"

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 13:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

_STATES = "'requested', 'pending', 'succeeded', 'failed', '{}'"


def _restate(old: str, new: str) -> None:
    with op.batch_alter_table('lms_stripe_refunds', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_lms_stripe_refunds_status_known'), type_='check')
    op.execute(sa.text("UPDATE lms_stripe_refunds SET status = :new WHERE status = :old")
               .bindparams(new=new, old=old))
    with op.batch_alter_table('lms_stripe_refunds', schema=None) as batch_op:
        batch_op.create_check_constraint(op.f('ck_lms_stripe_refunds_status_known'), f"status IN ({_STATES.format(new)})")


def upgrade() -> None:
    _restate('canceled', 'replaced')


def downgrade() -> None:
    _restate('replaced', 'canceled')
