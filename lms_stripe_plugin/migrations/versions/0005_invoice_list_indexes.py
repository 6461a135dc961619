"""the administrators' invoice list at scale: composite indexes that match its keyset cursor under each
filter, and trigram indexes for searching a part of a number, an e-mail address or a name (PostgreSQL)

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
_SEARCHED = ('number', 'user_email', 'user_name')


def upgrade() -> None:
    for name, columns in _COMPOSITE:
        op.create_index(name, _TABLE, columns)
    for name, _column in _SINGLE:  # the composite indexes lead with these columns
        op.drop_index(name, table_name=_TABLE)
    if op.get_bind().dialect.name == 'postgresql':
        # A trusted extension since PostgreSQL 13: the database's owner may create it.
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
        for column in _SEARCHED:
            op.create_index(f'ix_{_TABLE}_{column}_trgm', _TABLE, [column], postgresql_using='gin',
                            postgresql_ops={column: 'gin_trgm_ops'})


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for column in _SEARCHED:
            op.drop_index(f'ix_{_TABLE}_{column}_trgm', table_name=_TABLE)
    for name, column in _SINGLE:
        op.create_index(name, _TABLE, [column])
    for name, _columns in _COMPOSITE:
        op.drop_index(name, table_name=_TABLE)
