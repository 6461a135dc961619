"""the Payment Method Configurations the plugin created at Stripe (Apple Pay and Google Pay on Checkout)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-09 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('lms_stripe_payment_method_configs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('livemode', sa.Boolean(), nullable=False),
    sa.Column('wallets', sa.Boolean(), nullable=False),
    sa.Column('stripe_configuration_id', sa.String(length=255), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lms_stripe_payment_method_configs')),
    sa.UniqueConstraint('livemode', 'wallets', name='uq_lms_stripe_payment_method_configs_mode_wallets'),
    sa.UniqueConstraint('stripe_configuration_id', name=op.f('uq_lms_stripe_payment_method_configs_stripe_configuration_id'))
    )


def downgrade() -> None:
    op.drop_table('lms_stripe_payment_method_configs')
