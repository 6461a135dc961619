"""The plugin's tables: Alembic, pointed at the plugin's own migrations and version table, on the host's
database. ``flask lms-stripe db upgrade`` runs `upgrade`; a host that migrates from code calls it itself."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "lms_stripe_alembic_version"


def for_dialect(dialect_name: str):
    """Alembic's ``include_object``: a schema object made only for another database (``ddl_if``, such as a
    PostgreSQL trigram index) is not expected on this one."""
    def include(obj, name, type_, reflected, compare_to) -> bool:
        only_for = getattr(getattr(obj, "_ddl_if", None), "dialect", None)
        return only_for is None or only_for == dialect_name
    return include


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade(revision: str = "head") -> None:
    """Bring the plugin's tables to ``revision`` (needs an app context)."""
    command.upgrade(alembic_config(), revision)


def downgrade(revision: str = "-1") -> None:
    command.downgrade(alembic_config(), revision)


def current() -> None:
    command.current(alembic_config(), verbose=True)
