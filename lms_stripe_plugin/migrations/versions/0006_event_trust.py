"""rejected events keep their reason; per Stripe object, the last event applied

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 15:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

_REASONS = ("'malformed', 'unknown_object', 'too_long', 'unstorable_text', 'wrong_mode', 'mismatch', "
            "'exceeds_payment'")


def upgrade() -> None:
    op.create_table('lms_stripe_object_versions',
    sa.Column('stripe_id', sa.String(length=255), nullable=False),
    sa.Column('event_created', sa.BigInteger(), nullable=False),
    sa.Column('event_id', sa.String(length=255), nullable=False),
    sa.PrimaryKeyConstraint('stripe_id', name=op.f('pk_lms_stripe_object_versions'))
    )
    with op.batch_alter_table('lms_stripe_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reason', sa.String(length=32), nullable=True))
        batch_op.create_check_constraint(op.f('ck_lms_stripe_events_reason_known'), f"reason IN ({_REASONS})")
        batch_op.create_index('ix_lms_stripe_events_status_received_at', ['status', 'received_at'], unique=False)
    # Until now only a Checkout Session that did not match its purchase was rejected.
    op.execute(sa.text("UPDATE lms_stripe_events SET reason = 'mismatch' WHERE status = 'rejected'"))


def downgrade() -> None:
    with op.batch_alter_table('lms_stripe_events', schema=None) as batch_op:
        batch_op.drop_index('ix_lms_stripe_events_status_received_at')
        batch_op.drop_constraint(op.f('ck_lms_stripe_events_reason_known'), type_='check')
        batch_op.drop_column('reason')
    op.drop_table('lms_stripe_object_versions')
