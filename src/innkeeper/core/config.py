"""Settings: one typed object built once per process from ``INNKEEPER_*`` variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Literal, TypeVar

from sqlalchemy.dialects import registry

Environment = Literal["development", "production"]


T = TypeVar("T")


def _setting(default: T, help: str) -> T:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True, slots=True)
class Settings:
    """Process configuration. Every field has a default and help text (see docs/settings.md)."""

    database_url: str = _setting(
        "sqlite:///./innkeeper.db",
        "SQLAlchemy URL of the database; an SQLite file in the working directory by default. "
        "postgresql:// URLs use asyncpg; sqlite:// URLs our in-loop driver (sqlite+aiosqlite:// keeps aiosqlite).",
    )
    environment: Environment = _setting(
        "development",
        "development (FORCE_CLOSE honoured, debug on, points of sale auto-created) or production.",
    )
    client_key: str | None = _setting(None, "Bootstrap client key of the tenant; generated on first start when unset.")
    api_token: str | None = _setting(None, "Bootstrap API token (admin scope); generated on first start when unset.")
    point_of_sale: str | None = _setting(None, "Bootstrap default point of sale name; created when missing.")
    context_ids: tuple[str, ...] = _setting(
        (), "Comma-separated Cloud SDK context ids accepted in production (any in development)."
    )
    host: str = _setting("127.0.0.1", "Address `innkeeper serve` listens on.")
    port: int = _setting(8000, "Port `innkeeper serve` listens on.")
    sweep_interval_seconds: float = _setting(
        5.0, "How often the session sweeper looks for sessions past their timeout."
    )
    public_url: str | None = _setting(None, "Base URL used in `href` fields; taken from the request when unset.")
    log_level: str = _setting("info", "Log level: debug, info, warning, error.")
    data_dir: str = _setting(
        "./innkeeper-data", "Directory for uploaded batch files (created when missing); shared by API and workers."
    )
    batch_max_size: int = _setting(
        52_428_800, "Largest batch file accepted, in bytes (Sitecore: 50 MB compressed); lower it in tests."
    )
    batch_chunk_lines: int = _setting(
        0,
        "Batch import lines applied per transaction; progress commits with each chunk. 0 (the default) means 2,000 on "
        "SQLite, where a chunk holds the only writer for its transaction, and 10,000 on PostgreSQL (the 50 MB file: "
        "95 s at 2,000, 66 s at 10,000; worker peak RSS 167 -> 255 MB).",
    )
    batch_lease_seconds: float = _setting(
        60.0, "How long a worker holds a batch between progress commits; a dead worker's batch resumes after it."
    )
    batch_chunk_delay_seconds: float = _setting(
        0.0, "Testing only: pause after each committed batch chunk (to kill a worker mid-import)."
    )
    batch_log_info: bool = _setting(
        False, "Also write informational lines (code 200, e.g. several guests matched a delete) to batch error logs."
    )
    personalize_strict_not_found: bool = _setting(
        False, "callFlows answers 404 FLOW_NOT_FOUND instead of 200 {} for an unknown friendly id (loud CI failures)."
    )
    personalize_context_sessions: int = _setting(
        50, "Most recent sessions of a guest given to templates and conditions (each with at most 200 events)."
    )
    personalize_cached_sessions: int = _setting(
        20_000,
        "Closed sessions (with their events) each process keeps in memory for guest contexts: a closed session never "
        "changes, so only open ones and those not kept are read per call (about 1 KB each, kept as msgpack); "
        "0 reads all every call.",
    )
    delivery_lease_seconds: float = _setting(
        120.0,
        "How long a worker holds a trigger job or a delivery it is sending; a dead worker's work resumes after it.",
    )
    personalize_budget_ms: int = _setting(
        1500, "Time budget of one flow execution; beyond it callFlows fails open (200 {}, outcome error)."
    )
    admin_email: str | None = _setting(
        None, "Bootstrap portal Enterprise Admin: created at start when no user has this email."
    )
    admin_password: str | None = _setting(None, "Password of the bootstrap portal admin (at least 12 characters).")
    ftl_number_format: str = _setting(
        "number", "How FreeMarker prints ${n}: number (en_US grouping, as Sitecore) or computer (like ?c)."
    )
    secret_key: str | None = _setting(
        None,
        "Fernet key(s) encrypting connection secrets at rest, comma-separated (the first encrypts, all decrypt); "
        "when unset a key is generated into INNKEEPER_DATA_DIR/secret.key (mode 0600).",
    )
    email_sender: str = _setting(
        "smtp", "How SMTP_EMAIL connections deliver: smtp (their server), console (print to stdout) or null (drop)."
    )
    webhook_sender: str = _setting(
        "http", "How WEBHOOK connections deliver: http (send the request), console (print to stdout) or null (drop)."
    )

    @property
    def production(self) -> bool:
        """True in production mode."""
        return self.environment == "production"

    @property
    def async_database_url(self) -> str:
        """The database URL with an async driver."""
        return async_url(self.database_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, /, **overrides: object) -> Settings:
        """Build settings from ``INNKEEPER_*`` variables, then apply explicit overrides."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"INNKEEPER_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = _convert(f.name, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)  # type: ignore[arg-type]
        if settings.environment not in ("development", "production"):
            raise ValueError("INNKEEPER_ENVIRONMENT must be development or production")
        return settings


def _convert(name: str, raw: str) -> object:
    if name == "port":
        return int(raw)
    if name in ("batch_max_size", "batch_chunk_lines"):
        return int(raw)
    if name in ("sweep_interval_seconds", "batch_lease_seconds", "batch_chunk_delay_seconds", "delivery_lease_seconds"):
        return float(raw)
    if name in ("personalize_context_sessions", "personalize_budget_ms", "personalize_cached_sessions"):
        return int(raw)
    if name in ("batch_log_info", "personalize_strict_not_found"):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if name == "context_ids":
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


registry.register("sqlite.innkeeper", "innkeeper.core.sqlite_driver", "SQLiteDialect_innkeeper")


def async_url(url: str) -> str:
    """Map sync-style database URLs onto the async drivers we ship (SQLite: ``core.sqlite_driver``)."""
    for prefix in ("sqlite:", "sqlite+pysqlite:"):
        if url.startswith(prefix):
            return "sqlite+innkeeper:" + url[len(prefix) :]
    for prefix in ("postgresql+psycopg:", "postgresql+psycopg2:", "postgresql:", "postgres:"):
        if url.startswith(prefix):
            return "postgresql+asyncpg:" + url[len(prefix) :]
    return url


def setting_help() -> dict[str, str]:
    """Name → help text of every setting (used by docs and their test)."""
    return {f"INNKEEPER_{f.name.upper()}": str(f.metadata["help"]) for f in fields(Settings)}
