"""payment links: the links administrators create, their Pay clicks as payment attempts (with the payer and the
invoice Checkout issued), and invoices of payers who were not signed in

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-14 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

_LIVE = sa.text("status IN ('open', 'processing')")


def upgrade() -> None:
    op.create_table('lms_stripe_payment_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('token_encrypted', sa.Text(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('purpose', sa.Text(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=True),
    sa.Column('minimum', sa.BigInteger(), nullable=True),
    sa.Column('maximum', sa.BigInteger(), nullable=True),
    sa.Column('vat_rate', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=True),
    sa.Column('max_uses', sa.Integer(), nullable=True),
    sa.Column('uses', sa.Integer(), nullable=False),
    sa.Column('held', sa.Integer(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('disabled_by', sa.String(length=64), nullable=True),
    sa.CheckConstraint("status IN ('active', 'disabled')", name=op.f('ck_lms_stripe_payment_links_status_known')),
    sa.CheckConstraint("(amount IS NOT NULL AND amount > 0 AND minimum IS NULL AND maximum IS NULL) OR "
                       "(amount IS NULL AND minimum > 0 AND maximum >= minimum)",
                       name=op.f('ck_lms_stripe_payment_links_amount_or_range')),
    sa.CheckConstraint('vat_rate >= 0 AND vat_rate <= 10000', name=op.f('ck_lms_stripe_payment_links_vat_rate_range')),
    sa.CheckConstraint('max_uses IS NULL OR max_uses > 0', name=op.f('ck_lms_stripe_payment_links_max_uses_positive')),
    sa.CheckConstraint('uses >= 0 AND held >= 0', name=op.f('ck_lms_stripe_payment_links_counts_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lms_stripe_payment_links')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_lms_stripe_payment_links_token_hash'))
    )

    # SQLite rebuilds the table: its partial index is dropped first and made again after, as it was.
    op.drop_index('uq_lms_stripe_payment_attempts_live', table_name='lms_stripe_payment_attempts')
    with op.batch_alter_table('lms_stripe_payment_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('link_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('payer_user_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('payer_name', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('payer_email', sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column('invoice_id', sa.Integer(), nullable=True))
        batch_op.alter_column('request_id', existing_type=sa.INTEGER(), nullable=True)
        batch_op.create_index(batch_op.f('ix_lms_stripe_payment_attempts_link_id'), ['link_id'], unique=False)
        batch_op.create_unique_constraint(batch_op.f('uq_lms_stripe_payment_attempts_invoice_id'), ['invoice_id'])
        batch_op.create_foreign_key(batch_op.f('fk_lms_stripe_payment_attempts_link_id_lms_stripe_payment_links'),
                                    'lms_stripe_payment_links', ['link_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_lms_stripe_payment_attempts_invoice_id_lms_stripe_invoices'),
                                    'lms_stripe_invoices', ['invoice_id'], ['id'])
        batch_op.create_check_constraint(op.f('ck_lms_stripe_payment_attempts_request_or_link'),
                                         '(request_id IS NULL) <> (link_id IS NULL)')
    op.create_index('uq_lms_stripe_payment_attempts_live', 'lms_stripe_payment_attempts', ['request_id'], unique=True,
                    sqlite_where=_LIVE, postgresql_where=_LIVE)

    with op.batch_alter_table('lms_stripe_invoices', schema=None) as batch_op:
        batch_op.alter_column('user_id', existing_type=sa.VARCHAR(length=64), nullable=True)


def downgrade() -> None:
    # The release before this one knows neither payment links nor invoices without a learner.
    op.execute("DELETE FROM lms_stripe_payment_attempts WHERE link_id IS NOT NULL")
    op.execute("DELETE FROM lms_stripe_invoice_lines WHERE invoice_id IN "
               "(SELECT id FROM lms_stripe_invoices WHERE source = 'link')")
    op.execute("DELETE FROM lms_stripe_invoice_payments WHERE invoice_id IN "
               "(SELECT id FROM lms_stripe_invoices WHERE source = 'link')")
    op.execute("DELETE FROM lms_stripe_invoices WHERE source = 'link'")
    with op.batch_alter_table('lms_stripe_invoices', schema=None) as batch_op:
        batch_op.alter_column('user_id', existing_type=sa.VARCHAR(length=64), nullable=False)

    op.drop_index('uq_lms_stripe_payment_attempts_live', table_name='lms_stripe_payment_attempts')
    with op.batch_alter_table('lms_stripe_payment_attempts', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_lms_stripe_payment_attempts_request_or_link'), type_='check')
        batch_op.drop_constraint(batch_op.f('fk_lms_stripe_payment_attempts_invoice_id_lms_stripe_invoices'),
                                 type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_lms_stripe_payment_attempts_link_id_lms_stripe_payment_links'),
                                 type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_lms_stripe_payment_attempts_invoice_id'), type_='unique')
        batch_op.drop_index(batch_op.f('ix_lms_stripe_payment_attempts_link_id'))
        batch_op.alter_column('request_id', existing_type=sa.INTEGER(), nullable=False)
        batch_op.drop_column('invoice_id')
        batch_op.drop_column('payer_email')
        batch_op.drop_column('payer_name')
        batch_op.drop_column('payer_user_id')
        batch_op.drop_column('link_id')
    op.create_index('uq_lms_stripe_payment_attempts_live', 'lms_stripe_payment_attempts', ['request_id'], unique=True,
                    sqlite_where=_LIVE, postgresql_where=_LIVE)
    op.drop_table('lms_stripe_payment_links')
