"""Settings: environment parsing, defaults, and the documentation of every setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from innkeeper.core.config import Settings, async_url, setting_help

DOCS = Path(__file__).resolve().parents[2] / "docs" / "settings.md"


def test_every_setting_is_documented() -> None:
    text = DOCS.read_text()
    for name, help_text in setting_help().items():
        assert f"`{name}`" in text, f"{name} missing from docs/settings.md"
        assert help_text, f"{name} has no help text"


def test_defaults_need_no_configuration() -> None:
    settings = Settings.from_env({})
    assert settings.database_url == "sqlite:///./innkeeper.db"
    assert settings.environment == "development"
    assert not settings.production


def test_environment_variables_are_read_and_converted() -> None:
    settings = Settings.from_env(
        {
            "INNKEEPER_ENVIRONMENT": "production",
            "INNKEEPER_PORT": "9001",
            "INNKEEPER_CONTEXT_IDS": "ctx-a, ctx-b,",
            "INNKEEPER_CLIENT_KEY": "abc",
        },
        port=9002,
    )
    assert settings.production
    assert settings.port == 9002
    assert settings.context_ids == ("ctx-a", "ctx-b")
    assert settings.client_key == "abc"


def test_unknown_environment_is_refused() -> None:
    with pytest.raises(ValueError, match="INNKEEPER_ENVIRONMENT"):
        Settings.from_env({"INNKEEPER_ENVIRONMENT": "staging"})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///x.db", "sqlite+innkeeper:///x.db"),
        ("sqlite+pysqlite:///x.db", "sqlite+innkeeper:///x.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
    ],
)
def test_database_urls_get_async_drivers(given: str, expected: str) -> None:
    assert async_url(given) == expected
