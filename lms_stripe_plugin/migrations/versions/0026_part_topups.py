"""top-ups: a settlement's part that its invoice no longer owed, its share of the payment put on the learner's
balance, one top-up per part

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-08 11:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('lms_stripe_topups', schema=None) as batch_op:
        batch_op.add_column(sa.Column('request_part_id', sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_lms_stripe_topups_request_part_id'), ['request_part_id'])
        batch_op.create_foreign_key(batch_op.f('fk_lms_stripe_topups_request_part_id_lms_stripe_request_parts'),
                                    'lms_stripe_request_parts', ['request_part_id'], ['id'])
        batch_op.create_check_constraint(op.f('ck_lms_stripe_topups_one_payment'),
                                         'attempt_id IS NULL OR request_part_id IS NULL')


def downgrade() -> None:
    # Refused while a part's top-up exists: without its part, it would be taken for a whole payment, and its
    # refund would refund the whole settlement's payment.
    parts = op.get_bind().execute(sa.text(
        "SELECT count(*) FROM lms_stripe_topups WHERE request_part_id IS NOT NULL")).scalar()
    if parts:
        raise RuntimeError(f"{parts} top-up(s) are a settlement's part: the revision before 0026 cannot hold them.")
    with op.batch_alter_table('lms_stripe_topups', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_lms_stripe_topups_one_payment'), type_='check')
        batch_op.drop_constraint(batch_op.f('fk_lms_stripe_topups_request_part_id_lms_stripe_request_parts'),
                                 type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_lms_stripe_topups_request_part_id'), type_='unique')
        batch_op.drop_column('request_part_id')
