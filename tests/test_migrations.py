"""The migration history builds the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command

from innkeeper import migrations


def test_models_and_migrations_agree(db_url: str) -> None:
    # db_url was built by `upgrade head`; autogenerate must find nothing left to do.
    migrations.check(db_url)


def test_upgrade_is_idempotent(db_url: str) -> None:
    migrations.upgrade(db_url)
    migrations.check(db_url)


def test_migrations_0010_and_0011_go_down_and_up_again(db_url: str) -> None:
    # 0010 turns PostgreSQL's bulk references into triggers (down restores the constraints), 0011 drops an index.
    command.downgrade(migrations.alembic_config(db_url), "0009")
    migrations.upgrade(db_url)
    migrations.check(db_url)
