"""schools: every row belongs to a school (platform mode), and what is unique per learner is unique per school

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 11:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

#: The tables whose rows belong to a school: every one but the learner's currency choice (their own, in every
#: school) and the Stripe objects' versions (Stripe's ids are unique across accounts).
TABLES = ('lms_stripe_settings', 'lms_stripe_course_offers', 'lms_stripe_course_prices', 'lms_stripe_customers',
          'lms_stripe_tax_rates', 'lms_stripe_payment_method_configs', 'lms_stripe_purchases',
          'lms_stripe_invoices', 'lms_stripe_invoice_lines', 'lms_stripe_payment_requests',
          'lms_stripe_request_parts', 'lms_stripe_request_links', 'lms_stripe_payment_links',
          'lms_stripe_payment_attempts', 'lms_stripe_invoice_payments', 'lms_stripe_reminders',
          'lms_stripe_suspensions', 'lms_stripe_balances', 'lms_stripe_topups', 'lms_stripe_balance_entries',
          'lms_stripe_messages', 'lms_stripe_refunds', 'lms_stripe_credit_notes', 'lms_stripe_disputes',
          'lms_stripe_events', 'lms_stripe_free_enrollments', 'lms_stripe_audit_log')

#: (table, constraint, its columns before, after): unique per school from now on.
UNIQUE = (
    ('lms_stripe_customers', 'uq_lms_stripe_customers_user_mode', ['user_id', 'livemode'],
     ['school_id', 'user_id', 'livemode']),
    ('lms_stripe_tax_rates', 'uq_lms_stripe_tax_rates_rate_country_mode', ['rate', 'country', 'livemode'],
     ['school_id', 'rate', 'country', 'livemode']),
    ('lms_stripe_payment_method_configs', 'uq_lms_stripe_payment_method_configs_mode_wallets',
     ['livemode', 'wallets'], ['school_id', 'livemode', 'wallets']),
)


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('school_id', sa.String(length=64), server_default='', nullable=False))
    for table, name, _before, after in UNIQUE:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(name, type_='unique')
            batch_op.create_unique_constraint(name, after)
    with op.batch_alter_table('lms_stripe_balances', schema=None) as batch_op:
        batch_op.drop_constraint('uq_lms_stripe_balances_user_id', type_='unique')
        batch_op.create_unique_constraint('uq_lms_stripe_balances_user_currency', ['school_id', 'user_id', 'currency'])
    with op.batch_alter_table('lms_stripe_settings', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_lms_stripe_settings_school', ['school_id'])


def downgrade() -> None:
    with op.batch_alter_table('lms_stripe_settings', schema=None) as batch_op:
        batch_op.drop_constraint('uq_lms_stripe_settings_school', type_='unique')
    with op.batch_alter_table('lms_stripe_balances', schema=None) as batch_op:
        batch_op.drop_constraint('uq_lms_stripe_balances_user_currency', type_='unique')
        batch_op.create_unique_constraint('uq_lms_stripe_balances_user_id', ['user_id', 'currency'])
    for table, name, before, _after in UNIQUE:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(name, type_='unique')
            batch_op.create_unique_constraint(name, before)
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('school_id')
