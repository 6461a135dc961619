"""the administrators' invoice list at scale: composite indexes that match its keyset cursor under each
filter, and, on PostgreSQL, indexes for its search (the start of a number or an e-mail address, the start of
each word of a learner's name)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 15:00:00
"""
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

_TABLE = 'lms_stripe_invoices'
_SINGLE = ('ix_lms_stripe_invoices_issued_at', 'issued_at'), ('ix_lms_stripe_invoices_user_id', 'user_id'), \
    ('ix_lms_stripe_invoices_course_id', 'course_id'), ('ix_lms_stripe_invoices_user_email', 'user_email')
_COMPOSITE = (('ix_lms_stripe_invoices_issued', ['issued_at', 'id']),
              ('ix_lms_stripe_invoices_status_issued', ['status', 'issued_at', 'id']),
              ('ix_lms_stripe_invoices_course_issued', ['course_id', 'issued_at', 'id']),
              ('ix_lms_stripe_invoices_user_issued', ['user_id', 'issued_at', 'id']))
_SEARCH = (
    'CREATE INDEX ix_lms_stripe_invoices_number_prefix ON lms_stripe_invoices (upper(number) text_pattern_ops)',
    'CREATE INDEX ix_lms_stripe_invoices_email_prefix ON lms_stripe_invoices (lower(user_email) text_pattern_ops)',
    "CREATE INDEX ix_lms_stripe_invoices_name_words ON lms_stripe_invoices "
    "USING gin (to_tsvector('simple'::regconfig, coalesce(user_name, '')))",
)


def upgrade() -> None:
    for name, columns in _COMPOSITE:
        op.create_index(name, _TABLE, columns)
    for name, _column in _SINGLE:  # the composite indexes lead with these columns
        op.drop_index(name, table_name=_TABLE)
    if op.get_bind().dialect.name == 'postgresql':
        for statement in _SEARCH:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for name in ('ix_lms_stripe_invoices_number_prefix', 'ix_lms_stripe_invoices_email_prefix',
                     'ix_lms_stripe_invoices_name_words'):
            op.drop_index(name, table_name=_TABLE)
    for name, column in _SINGLE:
        op.create_index(name, _TABLE, [column])
    for name, _columns in _COMPOSITE:
        op.drop_index(name, table_name=_TABLE)
