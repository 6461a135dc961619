"""catalog revision on the settings row

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 09:00:00
"""
import secrets

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('lms_stripe_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('catalog_revision', sa.BigInteger(), server_default='0', nullable=False))
    # A value of this database's own, so that no process confuses its prices with another database's.
    op.execute(sa.text("UPDATE lms_stripe_settings SET catalog_revision = :revision")
               .bindparams(revision=secrets.randbits(62)))


def downgrade() -> None:
    with op.batch_alter_table('lms_stripe_settings', schema=None) as batch_op:
        batch_op.drop_column('catalog_revision')
