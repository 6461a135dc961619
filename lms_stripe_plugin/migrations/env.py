"""Alembic environment of the plugin: the host's engine, the plugin's metadata and version table."""
from __future__ import annotations

from alembic import context
from flask import current_app

from lms_stripe_plugin.migrate import VERSION_TABLE, for_dialect
from lms_stripe_plugin.core.models import Base


def _only_plugin_tables(name, type_, parent_names):
    return type_ != "table" or name.startswith("lms_stripe_")


def run_migrations_online() -> None:
    engine = current_app.extensions["lms_stripe"].db.engine
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            version_table=VERSION_TABLE,
            include_name=_only_plugin_tables,
            include_object=for_dialect(connection.dialect.name),
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
