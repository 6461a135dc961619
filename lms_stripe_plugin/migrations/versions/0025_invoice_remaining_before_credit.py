"""invoices: what would remain without their pre-payment credit notes, so that a credit note voided while the
invoice is open gives back what it took off what remains

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-08 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Left empty: the next snapshot of each open invoice fills it (until then the invoice's total, less what
    # was paid, bounds it).
    with op.batch_alter_table('lms_stripe_invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('amount_remaining_before_credit', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('lms_stripe_invoices', schema=None) as batch_op:
        batch_op.drop_column('amount_remaining_before_credit')
