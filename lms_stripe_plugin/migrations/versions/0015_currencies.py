"""several currencies: the currencies a school accepts besides its default one, a course's price in each,
and the currency each learner chose

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 08:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('lms_stripe_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('other_currencies', sa.String(length=200), nullable=True))
    op.create_table('lms_stripe_course_prices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('course_id', sa.String(length=64), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_lms_stripe_course_prices_amount_positive')),
    sa.ForeignKeyConstraint(['course_id'], ['lms_stripe_course_offers.course_id'],
                            name=op.f('fk_lms_stripe_course_prices_course_id_lms_stripe_course_offers'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lms_stripe_course_prices')),
    sa.UniqueConstraint('course_id', 'currency', name=op.f('uq_lms_stripe_course_prices_course_id'))
    )
    op.create_table('lms_stripe_currency_choices',
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_lms_stripe_currency_choices'))
    )


def downgrade() -> None:
    op.drop_table('lms_stripe_currency_choices')
    op.drop_table('lms_stripe_course_prices')
    with op.batch_alter_table('lms_stripe_settings', schema=None) as batch_op:
        batch_op.drop_column('other_currencies')
