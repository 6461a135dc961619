"""refunds: a retry names the failed refund it replaces (a column, no longer only its audit entry)

The link of the retries already made is read from their ``refund_retried`` audit entries, whose details are
the JSON that `audit.record` wrote: since 2026-12-04 they name both rows (``failed_refund`` and ``retry``),
and those are linked. Earlier entries name only the failed refund: which retry row went with one cannot be
read from the log (only guessed from times or ids), so those retries stay unlinked, as the code before this
revision saw them too. A failed refund retried twice (its first retry refused by Stripe) is linked to its
latest retry, the one that may have refunded it.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

#: An integer of the entry's details, NULL if absent or not an integer (as `audit.details` reads it), in the
#: JSON functions of each database the plugin runs on.
_INTEGER = {
    'postgresql': "CASE WHEN jsonb_typeof(CAST(details AS jsonb) -> '{key}') = 'number' "
                  "AND (CAST(details AS jsonb) ->> '{key}') ~ '^[0-9]+$' "
                  "THEN CAST(CAST(details AS jsonb) ->> '{key}' AS BIGINT) END",
    'sqlite': "CASE WHEN json_type(details, '$.{key}') = 'integer' THEN json_extract(details, '$.{key}') END",
}

#: Each retry named by an entry, with its failed refund: both rows of the entry's purchase and school, the
#: retry a retry (its key) made after the failed one; a retry named with a single failed refund, and only
#: the latest retry of a failed refund.
_FILL = """
WITH named AS (
    SELECT school_id, purchase_id, {failed} AS failed_id, {retry} AS retry_id
    FROM lms_stripe_audit_log WHERE action = 'refund_retried' AND details IS NOT NULL
), linked AS (
    SELECT retry.id AS retry_id, failed.id AS failed_id
    FROM named
    JOIN lms_stripe_refunds retry ON retry.id = named.retry_id
    JOIN lms_stripe_refunds failed ON failed.id = named.failed_id
    WHERE retry.purchase_id = named.purchase_id AND failed.purchase_id = named.purchase_id
      AND retry.school_id = named.school_id AND failed.school_id = named.school_id
      AND retry.idempotency_key LIKE 'lms-refund-retry-%' AND retry.id > failed.id
      AND failed.status IN ('failed', 'replaced')
)
UPDATE lms_stripe_refunds
SET replaces_id = (SELECT max(linked.failed_id) FROM linked WHERE linked.retry_id = lms_stripe_refunds.id)
WHERE id IN (SELECT max(retry_id) FROM linked GROUP BY failed_id)
  AND id IN (SELECT retry_id FROM linked GROUP BY retry_id HAVING count(DISTINCT failed_id) = 1)
"""


def upgrade() -> None:
    with op.batch_alter_table('lms_stripe_refunds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('replaces_id', sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_lms_stripe_refunds_replaces_id'), ['replaces_id'])
        batch_op.create_foreign_key(batch_op.f('fk_lms_stripe_refunds_replaces_id_lms_stripe_refunds'),
                                    'lms_stripe_refunds', ['replaces_id'], ['id'])
    integer = _INTEGER.get(op.get_bind().dialect.name)
    if integer is not None:
        op.execute(sa.text(_FILL.format(failed=integer.format(key='failed_refund'),
                                        retry=integer.format(key='retry'))))


def downgrade() -> None:
    with op.batch_alter_table('lms_stripe_refunds', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_lms_stripe_refunds_replaces_id_lms_stripe_refunds'),
                                 type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_lms_stripe_refunds_replaces_id'), type_='unique')
        batch_op.drop_column('replaces_id')
