"""Migration 0023 links the retries already made to the failed refund they replace, from their audit entries,
on SQLite and PostgreSQL: an entry that names both rows links them; one that names only the failed refund
(written before entries named the retry), or rows of another purchase, or no integers, links nothing."""
import json
from datetime import datetime, timezone

import sqlalchemy as sa

from lms_stripe_plugin import migrate

from .test_migrations import _run, fresh_app  # noqa: F401 - the fixture: an app on an empty database

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)


def _purchase(conn, ident: int) -> None:
    conn.execute(sa.text(
        "INSERT INTO lms_stripe_purchases (id, user_id, course_id, status, amount, currency, vat_rate, "
        "amount_refunded, livemode, disputed, created_at) "
        "VALUES (:id, 'u1', :course, 'paid', 4990, 'EUR', 2000, 0, false, false, :now)"),
        {"id": ident, "course": f"c{ident}", "now": NOW})


def _refund(conn, ident: int, purchase: int, status: str, key: str) -> None:
    conn.execute(sa.text(
        "INSERT INTO lms_stripe_refunds (id, purchase_id, amount, currency, status, \"full\", revoke_access, origin, "
        "idempotency_key, created_at, updated_at) "
        "VALUES (:id, :purchase, 1000, 'EUR', :status, false, false, 'admin', :key, :now, :now)"),
        {"id": ident, "purchase": purchase, "status": status, "key": key, "now": NOW})


def _retried(conn, purchase: int, **details) -> None:
    """A ``refund_retried`` entry, its details written as `audit.record` writes them."""
    conn.execute(sa.text(
        "INSERT INTO lms_stripe_audit_log (action, actor_id, purchase_id, details, created_at) "
        "VALUES ('refund_retried', 'adm', :purchase, :details, :now)"),
        {"purchase": purchase, "details": json.dumps({"amount": 1000, **details}, sort_keys=True), "now": NOW})


def test_the_retries_named_by_their_audit_entries_are_linked_to_the_refund_they_replace(fresh_app):
    with fresh_app.app_context():
        migrate.upgrade("0022")
        engine = fresh_app.extensions["lms_stripe"].db.engine
        with engine.begin() as conn:
            _purchase(conn, 1)
            _purchase(conn, 2)
            # Refund 1 retried twice: Stripe refused retry 2, made retry 3.
            _refund(conn, 1, 1, "replaced", "lms-refund-1")
            _refund(conn, 2, 1, "failed", "lms-refund-retry-2")
            _refund(conn, 3, 1, "succeeded", "lms-refund-retry-3")
            _retried(conn, 1, failed_refund=1, retry=2)
            _retried(conn, 1, failed_refund=1, retry=3)
            # Refund 4 retried by 5, its retry not yet confirmed by Stripe.
            _refund(conn, 4, 1, "failed", "lms-refund-4")
            _refund(conn, 5, 1, "requested", "lms-refund-retry-5")
            _retried(conn, 1, failed_refund=4, retry=5)
            # Refund 6 retried by 7, its entry written before entries named the retry.
            _refund(conn, 6, 2, "replaced", "lms-refund-6")
            _refund(conn, 7, 2, "succeeded", "lms-refund-retry-7")
            _retried(conn, 2, failed_refund=6)
            # Entries that name rows of another purchase, or no integers, or a row that is no retry.
            _refund(conn, 8, 2, "failed", "lms-refund-8")
            _refund(conn, 9, 2, "failed", "lms-refund-retry-9")
            _refund(conn, 10, 2, "failed", "lms-refund-10")
            _retried(conn, 1, failed_refund=8, retry=9)
            _retried(conn, 2, failed_refund="8", retry="9")
            _retried(conn, 2, failed_refund=8, retry=10)

        migrate.upgrade("0023")

        with engine.connect() as conn:
            linked = dict(conn.execute(sa.text("SELECT id, replaces_id FROM lms_stripe_refunds ORDER BY id")).all())
        assert {retry: failed for retry, failed in linked.items() if failed is not None} == {3: 1, 5: 4}
        _run(fresh_app, "downgrade", "base")
