"""platform mode: the school's connected Stripe account and what Stripe last said of it

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 09:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('lms_stripe_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stripe_account_id', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('account_state', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('account_checked', sa.BigInteger(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_lms_stripe_settings_stripe_account_id'),
                                          ['stripe_account_id'])


def downgrade() -> None:
    with op.batch_alter_table('lms_stripe_settings', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_lms_stripe_settings_stripe_account_id'), type_='unique')
        batch_op.drop_column('account_checked')
        batch_op.drop_column('account_state')
        batch_op.drop_column('stripe_account_id')
