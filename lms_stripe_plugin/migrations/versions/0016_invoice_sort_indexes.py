"""the administrators' invoice list sorted by column: an index for each order a keyset page reads (the
number, the learner's name, the course's title, the amount; the date and the status have theirs since 0005)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-22 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

_TABLE = 'lms_stripe_invoices'
_AMOUNT = 'ix_lms_stripe_invoices_amount_sort'
# On PostgreSQL (as the search's indexes of 0005), each expression exactly as billing.listing orders by it, for
# the planner to match it; elsewhere the list is sorted by a scan.
_EXPRESSIONS = (
    ('ix_lms_stripe_invoices_number_sort', [sa.text("coalesce(number, '')"), 'id']),
    ('ix_lms_stripe_invoices_learner_sort', [sa.text("lower(coalesce(user_name, user_email, ''))"), 'id']),
    ('ix_lms_stripe_invoices_course_sort', [sa.text("lower(coalesce(course_title, ''))"), 'id']),
)


def upgrade() -> None:
    op.create_index(_AMOUNT, _TABLE, ['currency', 'gross', 'id'])
    if op.get_bind().dialect.name == 'postgresql':
        for name, columns in _EXPRESSIONS:
            op.create_index(name, _TABLE, columns)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for name, _columns in _EXPRESSIONS:
            op.drop_index(name, table_name=_TABLE)
    op.drop_index(_AMOUNT, table_name=_TABLE)
