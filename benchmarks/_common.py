"""What every benchmark script shares: paths, the bench tenant, a fresh database per run, small helpers.

The scripts run as ``python benchmarks/<name>.py``, so ``benchmarks/`` is on ``sys.path`` and ``import _common``
works. Nothing here imports innkeeper at module level (the seeding helpers that do are in ``_bulk.py``).

A run's database: an SQLite file in the run's temp dir, or a PostgreSQL database (``postgresql://postgres@
127.0.0.1:5432/<pg_name>`` unless INNKEEPER_BENCH_DATABASE_URL says otherwise) dropped and re-created first and
dropped afterwards; see :func:`fresh_database`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
BIN = Path(sys.executable).parent / "innkeeper"

CLIENT_KEY = "bench0client0key0000000000000000"
API_TOKEN = "bench-api-token-0000000000000000"  # noqa: S105 - a throwaway bench credential
POINT_OF_SALE = "bench-shop/ireland"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
# (product type, item id, name, price) of the ADD events the scripts generate
PRODUCTS = [
    ("FOOTWEAR", "SHOES_8475GHT", "Trail runner GT", 129.99),
    ("FOOTWEAR", "SHOES_1120ABC", "Road racer 2", 99.5),
    ("APPAREL", "TSHIRT_0042", "Tech tee", 25.0),
    ("APPAREL", "JACKET_7781", "Rain shell", 180.0),
    ("ACCESSORY", "SOCKS_3PACK", "Running socks (3 pack)", 14.95),
    ("ACCESSORY", "BOTTLE_500", "Soft flask 500 ml", 19.0),
]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def quick_defaults(args: argparse.Namespace, **defaults: tuple[Any, Any]) -> None:
    """Fill the options left unset: ``name=(default, quick default)``, the second under ``--quick``."""
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)


def product(
    group: str, item: str, name: str, price: float, *, ordered_at: datetime, quantity: int, reference_id: str
) -> dict[str, Any]:
    """The ``product`` of an Engage-SDK ADD event, in the SDK's key order."""
    return {
        "type": group,
        "item_id": item,
        "name": name,
        "orderedAt": ordered_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "quantity": quantity,
        "price": price,
        "productId": item.split("_")[0],
        "currency": "EUR",
        "originalPrice": price,
        "originalCurrencyCode": "EUR",
        "referenceId": reference_id,
    }


def percentile(sorted_values: list[float], q: float) -> float:
    """The nearest-rank ``q``th percentile of already sorted values (0.0 for none)."""
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop when it is installed (as the server runs), else asyncio's."""
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop ships with the server extras
        return asyncio.new_event_loop()


def write_results(filename: str, payload: dict[str, Any]) -> None:
    """``benchmarks/results/<filename>``: the run's numbers as JSON."""
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / filename
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"  results written to {out.relative_to(ROOT)}")


# --- databases ----------------------------------------------------------------------------------------------


def database_url(db: str, workdir: Path, pg_name: str) -> str:
    """The URL of the run's database (not created yet)."""
    if db == "sqlite":
        return f"sqlite:///{workdir / 'bench.db'}"
    return os.environ.get("INNKEEPER_BENCH_DATABASE_URL") or f"postgresql://postgres@127.0.0.1:5432/{pg_name}"


def innkeeper_env(database_url: str, **settings: str) -> dict[str, str]:
    """This process's environment without its INNKEEPER_* variables, pointed at ``database_url``, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INNKEEPER_")}
    env["INNKEEPER_DATABASE_URL"] = database_url
    env.update(settings)
    return env


def _asyncpg() -> Any:
    import asyncpg  # type: ignore[import-untyped]

    return asyncpg


def _pg_parts(url: str) -> tuple[str, str]:
    """(admin DSN on the `postgres` database, bench database name) for asyncpg."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if not parsed.database:
        raise SystemExit(f"INNKEEPER_BENCH_DATABASE_URL needs a database name: {url}")
    admin = parsed.set(drivername="postgresql", database="postgres")
    return admin.render_as_string(hide_password=False), parsed.database


async def _pg_admin(url: str, *statements: str) -> None:
    dsn, _ = _pg_parts(url)
    conn = await _asyncpg().connect(dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def _quoted_name(url: str) -> str:
    _, name = _pg_parts(url)
    return '"' + name.replace('"', '""') + '"'


def pg_create(url: str) -> None:
    """Create the PostgreSQL database of ``url``, dropping any leftover first."""
    quoted = _quoted_name(url)
    asyncio.run(_pg_admin(url, f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)", f"CREATE DATABASE {quoted}"))


def pg_drop(url: str) -> None:
    asyncio.run(_pg_admin(url, f"DROP DATABASE IF EXISTS {_quoted_name(url)} WITH (FORCE)"))


def count_rows(url: str, table: str) -> int | None:
    """Rows in one table (a run's own check that an answer meant a commit); None, with a note, if that fails."""
    try:
        if url.startswith("sqlite"):
            with contextlib.closing(sqlite3.connect(url.split(":///", 1)[1])) as conn:
                return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        from sqlalchemy.engine import make_url

        async def count() -> int:
            conn = await _asyncpg().connect(
                make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
            )
            try:
                return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
            finally:
                await conn.close()

        return asyncio.run(count())
    except Exception as exc:  # noqa: BLE001 - informative only
        print(f"  (could not count {table}: {exc})")
        return None


def migrate(url: str) -> None:
    """``innkeeper db upgrade`` on the database."""
    subprocess.run([str(BIN), "db", "upgrade"], env=innkeeper_env(url), check=True, stdout=subprocess.DEVNULL)


@contextlib.contextmanager
def fresh_database(db: str, url: str, workdir: Path, *, keep: bool, migrated: bool = False) -> Iterator[None]:
    """The run's database for the ``with`` block: PostgreSQL re-created first (SQLite: the file in ``workdir`` is
    created by whoever opens it), migrated with ``innkeeper db upgrade`` if ``migrated`` (else the server does it on
    start). Afterwards, unless ``keep``, the PostgreSQL database is dropped and ``workdir`` removed."""
    created = False
    try:
        if db == "postgres":
            pg_create(url)
            created = True
        if migrated:
            migrate(url)
        yield
    finally:
        if not keep:
            if created:
                with contextlib.suppress(Exception):
                    pg_drop(url)
            shutil.rmtree(workdir, ignore_errors=True)
