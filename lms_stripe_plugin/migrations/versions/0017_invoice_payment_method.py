"""how a payment made on Stripe's hosted invoice page was paid (card, SEPA Direct Debit…): the invoice's
default payment, read from its PaymentIntent's charge

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-22 14:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('lms_stripe_invoice_payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payment_method', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('lms_stripe_invoice_payments', schema=None) as batch_op:
        batch_op.drop_column('payment_method')
