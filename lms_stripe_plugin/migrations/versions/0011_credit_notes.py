"""every credit note of our invoices (a partial refund's too, with its number and PDF), and the discount a
purchase was paid with

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-14 11:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('lms_stripe_credit_notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('stripe_credit_note_id', sa.String(length=255), nullable=False),
    sa.Column('stripe_invoice_id', sa.String(length=255), nullable=False),
    sa.Column('stripe_refund_id', sa.String(length=255), nullable=True),
    sa.Column('number', sa.String(length=64), nullable=True),
    sa.Column('pdf_url', sa.Text(), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=True),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('issued', 'void')", name=op.f('ck_lms_stripe_credit_notes_status_known')),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_lms_stripe_credit_notes_amount_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lms_stripe_credit_notes')),
    sa.UniqueConstraint('stripe_credit_note_id', name=op.f('uq_lms_stripe_credit_notes_stripe_credit_note_id'))
    )
    with op.batch_alter_table('lms_stripe_credit_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lms_stripe_credit_notes_stripe_invoice_id'), ['stripe_invoice_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_lms_stripe_credit_notes_stripe_refund_id'), ['stripe_refund_id'],
                              unique=False)
    with op.batch_alter_table('lms_stripe_purchases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('amount_discount', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('lms_stripe_purchases', schema=None) as batch_op:
        batch_op.drop_column('amount_discount')
    with op.batch_alter_table('lms_stripe_credit_notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lms_stripe_credit_notes_stripe_refund_id'))
        batch_op.drop_index(batch_op.f('ix_lms_stripe_credit_notes_stripe_invoice_id'))
    op.drop_table('lms_stripe_credit_notes')
