"""deposits at enrollment: a course's deposit terms, a purchase's deposit and balance, the balance request,
the suspensions of access for an overdue balance, and the school's grace period

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 17:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('lms_stripe_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('balance_grace_days', sa.Integer(), server_default='7', nullable=False))
        batch_op.create_check_constraint(op.f('ck_lms_stripe_settings_grace_days_range'),
                                         'balance_grace_days BETWEEN 0 AND 365')

    with op.batch_alter_table('lms_stripe_course_offers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payment_plan', sa.String(length=16), server_default='full', nullable=False))
        batch_op.add_column(sa.Column('deposit_percent', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('deposit_amount', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('balance_due', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('balance_due_date', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('balance_due_days', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('deposit_access', sa.String(length=16), nullable=True))
        batch_op.create_check_constraint(op.f('ck_lms_stripe_course_offers_plan_known'),
                                         "payment_plan IN ('full', 'deposit')")
        batch_op.create_check_constraint(
            op.f('ck_lms_stripe_course_offers_deposit_complete'),
            "payment_plan = 'full' OR (is_paid AND (deposit_percent IS NULL) <> (deposit_amount IS NULL) "
            "AND balance_due IS NOT NULL AND deposit_access IS NOT NULL)")
        batch_op.create_check_constraint(op.f('ck_lms_stripe_course_offers_deposit_share'),
                                         'deposit_percent IS NULL OR deposit_percent BETWEEN 1 AND 9999')
        batch_op.create_check_constraint(op.f('ck_lms_stripe_course_offers_deposit_below_price'),
                                         'deposit_amount IS NULL OR (deposit_amount > 0 AND deposit_amount < amount)')
        batch_op.create_check_constraint(
            op.f('ck_lms_stripe_course_offers_balance_due_set'),
            "balance_due IS NULL OR (balance_due = 'date' AND balance_due_date IS NOT NULL) OR "
            "(balance_due IN ('after_enrollment', 'before_start') AND balance_due_days BETWEEN 0 AND 3650)")
        batch_op.create_check_constraint(op.f('ck_lms_stripe_course_offers_deposit_access_known'),
                                         "deposit_access IS NULL OR deposit_access IN ('deposit', 'full')")

    with op.batch_alter_table('lms_stripe_purchases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deposit_amount', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('balance_due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('access_on_deposit', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('locale', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('balance_paid_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_check_constraint(
            op.f('ck_lms_stripe_purchases_deposit_below_price'),
            'deposit_amount IS NULL OR (deposit_amount > 0 AND deposit_amount < amount '
            'AND balance_due_at IS NOT NULL AND access_on_deposit IS NOT NULL)')

    with op.batch_alter_table('lms_stripe_payment_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('balance_of', sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(op.f('uq_lms_stripe_payment_requests_balance_of'), ['balance_of'])
        batch_op.create_foreign_key(op.f('fk_lms_stripe_payment_requests_balance_of_lms_stripe_purchases'),
                                    'lms_stripe_purchases', ['balance_of'], ['id'])

    op.create_table('lms_stripe_suspensions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('purchase_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('course_id', sa.String(length=64), nullable=False),
    sa.Column('suspended_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('restored_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['purchase_id'], ['lms_stripe_purchases.id'],
                            name=op.f('fk_lms_stripe_suspensions_purchase_id_lms_stripe_purchases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lms_stripe_suspensions'))
    )
    with op.batch_alter_table('lms_stripe_suspensions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lms_stripe_suspensions_purchase_id'), ['purchase_id'], unique=False)
        batch_op.create_index('uq_lms_stripe_suspensions_active', ['purchase_id'], unique=True,
                              sqlite_where=sa.text('restored_at IS NULL'),
                              postgresql_where=sa.text('restored_at IS NULL'))


def downgrade() -> None:
    with op.batch_alter_table('lms_stripe_suspensions', schema=None) as batch_op:
        batch_op.drop_index('uq_lms_stripe_suspensions_active', sqlite_where=sa.text('restored_at IS NULL'),
                            postgresql_where=sa.text('restored_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_lms_stripe_suspensions_purchase_id'))
    op.drop_table('lms_stripe_suspensions')

    with op.batch_alter_table('lms_stripe_payment_requests', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('fk_lms_stripe_payment_requests_balance_of_lms_stripe_purchases'),
                                 type_='foreignkey')
        batch_op.drop_constraint(op.f('uq_lms_stripe_payment_requests_balance_of'), type_='unique')
        batch_op.drop_column('balance_of')

    with op.batch_alter_table('lms_stripe_purchases', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_lms_stripe_purchases_deposit_below_price'), type_='check')
        for column in ('balance_paid_at', 'locale', 'access_on_deposit', 'balance_due_at', 'deposit_amount'):
            batch_op.drop_column(column)

    with op.batch_alter_table('lms_stripe_course_offers', schema=None) as batch_op:
        for name in ('deposit_access_known', 'balance_due_set', 'deposit_below_price', 'deposit_share',
                     'deposit_complete', 'plan_known'):
            batch_op.drop_constraint(op.f(f'ck_lms_stripe_course_offers_{name}'), type_='check')
        for column in ('deposit_access', 'balance_due_days', 'balance_due_date', 'balance_due', 'deposit_amount',
                       'deposit_percent', 'payment_plan'):
            batch_op.drop_column(column)

    with op.batch_alter_table('lms_stripe_settings', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_lms_stripe_settings_grace_days_range'), type_='check')
        batch_op.drop_column('balance_grace_days')
