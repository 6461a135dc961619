"""the seller's legal identity on invoices (settings), and the language each Stripe customer's invoices are in

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-14 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('lms_stripe_settings') as batch_op:
        batch_op.add_column(sa.Column('seller_legal_name', sa.String(length=140), nullable=True))
        batch_op.add_column(sa.Column('seller_address', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('seller_siret', sa.String(length=14), nullable=True))
        batch_op.add_column(sa.Column('seller_vat_number', sa.String(length=13), nullable=True))
        batch_op.add_column(sa.Column('seller_legal_form', sa.String(length=140), nullable=True))
        batch_op.add_column(sa.Column('late_payment_text', sa.String(length=1000), nullable=True))
        batch_op.add_column(sa.Column('business_buyers', sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table('lms_stripe_customers') as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('lms_stripe_customers') as batch_op:
        batch_op.drop_column('locale')
    with op.batch_alter_table('lms_stripe_settings') as batch_op:
        batch_op.drop_column('business_buyers')
        batch_op.drop_column('late_payment_text')
        batch_op.drop_column('seller_legal_form')
        batch_op.drop_column('seller_vat_number')
        batch_op.drop_column('seller_siret')
        batch_op.drop_column('seller_address')
        batch_op.drop_column('seller_legal_name')
