"""settling debts: a payment request's invoices and their parts when it settles several in one payment (each
credited by a Payment Record of its own), and the learner's own choice of invoices, one open request each

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-20 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

_OPEN_SELECTION = sa.text("status = 'open' AND selection_key IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table('lms_stripe_payment_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('selection_key', sa.String(length=64), nullable=True))
    op.create_index('uq_lms_stripe_payment_requests_open_selection', 'lms_stripe_payment_requests',
                    ['selection_key'], unique=True, sqlite_where=_OPEN_SELECTION, postgresql_where=_OPEN_SELECTION)

    op.create_table('lms_stripe_request_parts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('stripe_payment_record_id', sa.String(length=255), nullable=True),
    sa.Column('attached_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('amount > 0', name=op.f('ck_lms_stripe_request_parts_amount_positive')),
    sa.ForeignKeyConstraint(['invoice_id'], ['lms_stripe_invoices.id'],
                            name=op.f('fk_lms_stripe_request_parts_invoice_id_lms_stripe_invoices')),
    sa.ForeignKeyConstraint(['request_id'], ['lms_stripe_payment_requests.id'],
                            name=op.f('fk_lms_stripe_request_parts_request_id_lms_stripe_payment_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lms_stripe_request_parts')),
    sa.UniqueConstraint('request_id', 'invoice_id', name='uq_lms_stripe_request_parts_request_invoice'),
    sa.UniqueConstraint('request_id', 'position', name='uq_lms_stripe_request_parts_request_position'),
    sa.UniqueConstraint('stripe_payment_record_id',
                        name=op.f('uq_lms_stripe_request_parts_stripe_payment_record_id'))
    )
    with op.batch_alter_table('lms_stripe_request_parts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lms_stripe_request_parts_invoice_id'), ['invoice_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_lms_stripe_request_parts_request_id'), ['request_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('lms_stripe_request_parts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lms_stripe_request_parts_request_id'))
        batch_op.drop_index(batch_op.f('ix_lms_stripe_request_parts_invoice_id'))
    op.drop_table('lms_stripe_request_parts')
    op.drop_index('uq_lms_stripe_payment_requests_open_selection', table_name='lms_stripe_payment_requests')
    with op.batch_alter_table('lms_stripe_payment_requests', schema=None) as batch_op:
        batch_op.drop_column('selection_key')
