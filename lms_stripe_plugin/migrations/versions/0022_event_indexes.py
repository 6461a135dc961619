"""events: two indexes fewer to write with every event (its type is never searched; its status leads the
composite index of the administrators' list)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03 14:20:00
"""
from alembic import op


revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('lms_stripe_events', schema=None) as batch_op:
        batch_op.drop_index('ix_lms_stripe_events_type')
        batch_op.drop_index('ix_lms_stripe_events_status')


def downgrade() -> None:
    with op.batch_alter_table('lms_stripe_events', schema=None) as batch_op:
        batch_op.create_index('ix_lms_stripe_events_status', ['status'], unique=False)
        batch_op.create_index('ix_lms_stripe_events_type', ['type'], unique=False)
