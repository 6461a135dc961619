"""disputes: of a Pay click's payment (a payment request's, a payment link's) or of a top-up's, not only of a
purchase's

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-09 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('lms_stripe_disputes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempt_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_lms_stripe_disputes_attempt_id'), ['attempt_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_lms_stripe_disputes_attempt_id_lms_stripe_payment_attempts'),
                                    'lms_stripe_payment_attempts', ['attempt_id'], ['id'])
        batch_op.add_column(sa.Column('topup_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_lms_stripe_disputes_topup_id'), ['topup_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_lms_stripe_disputes_topup_id_lms_stripe_topups'),
                                    'lms_stripe_topups', ['topup_id'], ['id'])


def downgrade() -> None:
    # Refused while a Pay click's or top-up's dispute exists: without it, it would name no payment at all.
    clicks = op.get_bind().execute(sa.text(
        "SELECT count(*) FROM lms_stripe_disputes WHERE attempt_id IS NOT NULL OR topup_id IS NOT NULL")).scalar()
    if clicks:
        raise RuntimeError(f"{clicks} dispute(s) are of a Pay click's or a top-up's payment: the revision before "
                           "0028 cannot hold them.")
    with op.batch_alter_table('lms_stripe_disputes', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_lms_stripe_disputes_topup_id_lms_stripe_topups'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_lms_stripe_disputes_topup_id'))
        batch_op.drop_column('topup_id')
        batch_op.drop_constraint(batch_op.f('fk_lms_stripe_disputes_attempt_id_lms_stripe_payment_attempts'),
                                 type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_lms_stripe_disputes_attempt_id'))
        batch_op.drop_column('attempt_id')
