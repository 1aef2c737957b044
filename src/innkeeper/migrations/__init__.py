"""Alembic migration history (one for SQLite and PostgreSQL) and helpers to run it."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from innkeeper.core.config import async_url

HERE = Path(__file__).parent


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at our migrations and the given database."""
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("file_template", "%%(year)d-%%(month).2d-%%(day).2d-%%(hour).2d%%(minute).2d_%%(slug)s")
    config.attributes["database_url"] = async_url(database_url)
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database schema up to ``revision``."""
    command.upgrade(alembic_config(database_url), revision)


def check(database_url: str) -> None:
    """Fail when the models and the migrations have drifted apart."""
    command.check(alembic_config(database_url))
