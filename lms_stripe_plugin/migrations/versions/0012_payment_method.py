"""how each Checkout purchase and each Pay click was paid (card, SEPA Direct Debit, Klarna, a wallet…), from
its charge's events

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-21 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('lms_stripe_purchases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payment_method', sa.String(length=32), nullable=True))
    with op.batch_alter_table('lms_stripe_payment_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payment_method', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('lms_stripe_payment_attempts', schema=None) as batch_op:
        batch_op.drop_column('payment_method')
    with op.batch_alter_table('lms_stripe_purchases', schema=None) as batch_op:
        batch_op.drop_column('payment_method')
