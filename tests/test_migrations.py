"""The migration history builds the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from innkeeper import migrations


def test_models_and_migrations_agree(db_url: str) -> None:
    # db_url was built by `upgrade head`; autogenerate must find nothing left to do.
    migrations.check(db_url)


def test_upgrade_is_idempotent(db_url: str) -> None:
    migrations.upgrade(db_url)
    migrations.check(db_url)
