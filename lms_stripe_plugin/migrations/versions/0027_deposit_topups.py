"""top-ups: a deposit that its invoice no longer owed, put on the learner's balance, one top-up per purchase

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-09 09:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None

_ONE_PAYMENT = ("(attempt_id IS NULL OR request_part_id IS NULL) AND "
                "(purchase_id IS NULL OR (attempt_id IS NULL AND request_part_id IS NULL))")


def upgrade() -> None:
    with op.batch_alter_table('lms_stripe_topups', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purchase_id', sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_lms_stripe_topups_purchase_id'), ['purchase_id'])
        batch_op.create_foreign_key(batch_op.f('fk_lms_stripe_topups_purchase_id_lms_stripe_purchases'),
                                    'lms_stripe_purchases', ['purchase_id'], ['id'])
        batch_op.drop_constraint(op.f('ck_lms_stripe_topups_one_payment'), type_='check')
        batch_op.create_check_constraint(op.f('ck_lms_stripe_topups_one_payment'), _ONE_PAYMENT)


def downgrade() -> None:
    # Refused while a deposit's top-up exists: without its purchase, the reconciliation of deposits would take
    # that deposit as never attached, and attach it again.
    deposits = op.get_bind().execute(sa.text(
        "SELECT count(*) FROM lms_stripe_topups WHERE purchase_id IS NOT NULL")).scalar()
    if deposits:
        raise RuntimeError(f"{deposits} top-up(s) are a deposit: the revision before 0027 cannot hold them.")
    with op.batch_alter_table('lms_stripe_topups', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_lms_stripe_topups_one_payment'), type_='check')
        batch_op.create_check_constraint(op.f('ck_lms_stripe_topups_one_payment'),
                                         'attempt_id IS NULL OR request_part_id IS NULL')
        batch_op.drop_constraint(batch_op.f('fk_lms_stripe_topups_purchase_id_lms_stripe_purchases'),
                                 type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_lms_stripe_topups_purchase_id'), type_='unique')
        batch_op.drop_column('purchase_id')
