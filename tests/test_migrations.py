"""The migrations produce exactly the models' schema, and downgrade removes it, on SQLite and PostgreSQL."""
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner

from lms_stripe_plugin.migrate import VERSION_TABLE, for_dialect
from lms_stripe_plugin.core.models import Base

from .conftest import DATABASE_URL
from .minimal_host import create_host_app


@pytest.fixture
def fresh_app(tmp_path):
    """An app on an empty database (a dedicated schema on PostgreSQL)."""
    if DATABASE_URL and DATABASE_URL.startswith("postgresql"):
        engine = sa.create_engine(DATABASE_URL)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA IF EXISTS migration_test CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA migration_test"))
        url = DATABASE_URL + ("&" if "?" in DATABASE_URL else "?") + "options=-csearch_path%3Dmigration_test"
    else:
        engine, url = None, f"sqlite:///{tmp_path / 'migrations.sqlite'}"
    app, _host = create_host_app({"SQLALCHEMY_DATABASE_URI": url})
    yield app
    if engine is not None:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA IF EXISTS migration_test CASCADE"))
        engine.dispose()


def _run(app, *args):
    result = CliRunner().invoke(app.cli, ["lms-stripe", "db", *args], catch_exceptions=False,
                                obj=__import__("flask.cli").cli.ScriptInfo(create_app=lambda: app))
    assert result.exit_code == 0, result.output
    return result.output


def _diff(app):
    db = app.extensions["lms_stripe"].db
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "version_table": VERSION_TABLE, "compare_type": True,
            "include_object": for_dialect(conn.dialect.name),
            "include_name": lambda name, type_, parents: type_ != "table" or name.startswith("lms_stripe_")})
        return compare_metadata(context, Base.metadata)


def _tables(app):
    return {name for name in sa.inspect(app.extensions["lms_stripe"].db.engine).get_table_names()
            if name.startswith("lms_stripe_")}


@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
def test_upgrade_creates_exactly_the_models_schema_and_downgrade_removes_it(fresh_app):
    with fresh_app.app_context():
        assert "at head" in _run(fresh_app, "upgrade")
        assert _diff(fresh_app) == []
        assert _tables(fresh_app) == {t.name for t in Base.metadata.sorted_tables} | {VERSION_TABLE}
        _run(fresh_app, "downgrade", "base")
        assert _tables(fresh_app) == {VERSION_TABLE}
        _run(fresh_app, "upgrade")
        assert _diff(fresh_app) == []


def test_partial_unique_index_is_created_by_the_migration(fresh_app):
    with fresh_app.app_context():
        _run(fresh_app, "upgrade")
        indexes = {ix["name"]: ix for ix in sa.inspect(fresh_app.extensions["lms_stripe"].db.engine)
                   .get_indexes("lms_stripe_purchases")}
        assert indexes["uq_lms_stripe_purchases_live"]["unique"]


def test_the_host_tables_are_left_alone(fresh_app):
    from .minimal_host import db

    with fresh_app.app_context():
        db.create_all()
        _run(fresh_app, "upgrade")
        _run(fresh_app, "downgrade", "base")
        assert "host_people" in sa.inspect(db.engine).get_table_names()


def test_upgrading_a_shop_gives_its_catalog_a_revision_of_its_own(fresh_app):
    from lms_stripe_plugin import migrate

    with fresh_app.app_context():
        migrate.upgrade("0001")
        engine = fresh_app.extensions["lms_stripe"].db.engine
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO lms_stripe_settings (id, enabled, default_currency, default_vat_rate, vouchers_enabled, "
                "wallets_enabled, klarna_enabled, sepa_debit_enabled, automatic_tax) "
                "VALUES (1, true, 'EUR', 2000, false, true, false, false, false)"))
        migrate.upgrade()
        with engine.connect() as conn:
            revision = conn.execute(sa.text("SELECT catalog_revision FROM lms_stripe_settings")).scalar_one()
        assert revision != 0
        _run(fresh_app, "downgrade", "base")


def test_a_top_up_names_one_payment_at_most_after_the_migrations(fresh_app):
    """Check constraints are not compared above: the one that says what paid a top-up is read back as written."""
    with fresh_app.app_context():
        _run(fresh_app, "upgrade")
        checks = {check["name"]: check["sqltext"] for check in
                  sa.inspect(fresh_app.extensions["lms_stripe"].db.engine).get_check_constraints("lms_stripe_topups")}
        words = " ".join(checks["ck_lms_stripe_topups_one_payment"].replace("(", " ").replace(")", " ").split())
        # PostgreSQL gives the expression back without the parentheses that AND's precedence makes needless
        assert words == ("attempt_id IS NULL OR request_part_id IS NULL AND purchase_id IS NULL OR attempt_id IS NULL "
                         "AND request_part_id IS NULL")
