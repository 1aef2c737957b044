"""The `innkeeper` command line: thin, calls services."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click
import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper import __version__, migrations
from innkeeper.core.clock import SystemClock, iso
from innkeeper.core.config import Settings
from innkeeper.core.db import create_engine, in_transaction, session_factory
from innkeeper.core.errors import InnkeeperError
from innkeeper.core.runtime import Runtime, freeze_long_lived_objects
from innkeeper.tenant import service as tenant
from innkeeper.users import service as user_service

T = TypeVar("T")


def _settings(**overrides: object) -> Settings:
    try:
        return Settings.from_env(**overrides)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc


def _logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def _with_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def main() -> T:
        engine = create_engine(settings.async_database_url)
        try:
            return await in_transaction(session_factory(engine), work)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _prepare(settings: Settings) -> tenant.Bootstrap:
    migrations.upgrade(settings.database_url)

    async def boot(session: AsyncSession) -> tenant.Bootstrap:
        return await tenant.bootstrap(session, settings, clock=SystemClock())

    return _with_session(settings, boot)


@click.group()
@click.version_option(__version__)
def main() -> None:
    """Innkeeper: a self-hosted, Sitecore CDP / Personalize compatible CDP."""


@main.command()
@click.option("--host", default=None, help="Listen address (INNKEEPER_HOST).")
@click.option("--port", type=int, default=None, help="Listen port (INNKEEPER_PORT).")
@click.option("--no-workers", is_flag=True, help="Run the API only; run `innkeeper worker` separately.")
def serve(host: str | None, port: int | None, no_workers: bool) -> None:
    """Run the API (and, unless --no-workers, the background workers) in one process."""
    import uvicorn

    from innkeeper.app import create_app

    settings = _settings(host=host, port=port)
    _logging(settings)
    result = _prepare(settings)
    click.echo(f"Innkeeper {__version__} ({settings.environment}) on http://{settings.host}:{settings.port}")
    click.echo(f"  client key:     {result.client_key}")
    if result.api_token:
        click.echo(f"  API token:      {result.api_token}   (admin scope; shown once — keep it)")
    if result.point_of_sale:
        click.echo(f"  point of sale:  {result.point_of_sale}")
    app = create_app(settings, run_workers=not no_workers)
    freeze_long_lived_objects()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        proxy_headers=True,
    )


@main.command()
def worker() -> None:
    """Run the background workers (session sweeper) until interrupted."""
    from innkeeper import worker as jobs

    settings = _settings()
    _logging(settings)

    async def run() -> None:
        engine = create_engine(settings.async_database_url)
        runtime = Runtime(settings=settings, engine=engine, sessions=session_factory(engine), clock=SystemClock())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await jobs.run(runtime, stop)
        finally:
            await engine.dispose()

    asyncio.run(run())


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations, then make sure the tenant exists."""
    settings = _settings()
    migrations.upgrade(settings.database_url, revision)
    click.echo("database is at " + revision)


@db.command("check")
def db_check() -> None:
    """Fail when the models and the migrations disagree."""
    migrations.check(_settings().database_url)
    click.echo("models and migrations agree")


@db.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    """Autogenerate a new migration from the models."""
    from alembic import command

    settings = _settings()
    command.revision(migrations.alembic_config(settings.database_url), message=message, autogenerate=True)


@main.command()
def credentials() -> None:
    """Print the client key and the points of sale."""
    settings = _settings()
    result = _prepare(settings)

    async def work(session: AsyncSession) -> list[tuple[str, int]]:
        return [(p.name, p.timeout_minutes) for p in await tenant.list_points_of_sale(session)]

    click.echo(f"client key: {result.client_key}")
    if result.api_token:
        click.echo(f"API token:  {result.api_token}   (admin scope; shown once)")
    for name, timeout in _with_session(settings, work):
        click.echo(f"point of sale: {name} (timeout {timeout} min)")


@main.group()
def tokens() -> None:
    """API tokens."""


@tokens.command("create")
@click.option("--label", required=True)
@click.option("--scope", type=click.Choice(["admin", "rw", "ro"]), default="rw", show_default=True)
def tokens_create(label: str, scope: tenant.Scope) -> None:
    """Create an API token and print it once."""
    settings = _settings()
    _prepare(settings)

    async def work(session: AsyncSession) -> tuple[str, str]:
        row, value = await tenant.create_token(session, label=label, scope=scope, clock=SystemClock())
        return row.id, value

    token_id, value = _with_session(settings, work)
    click.echo(f"id: {token_id}\ntoken: {value}")


@tokens.command("list")
def tokens_list() -> None:
    """List active API tokens (never their values)."""
    settings = _settings()
    _prepare(settings)

    async def work(session: AsyncSession) -> list[str]:
        rows = await tenant.list_tokens(session)
        return [f"{r.id}  {r.scope:5}  {r.label}  last used {iso(r.last_used_at) or 'never'}" for r in rows]

    for line in _with_session(settings, work):
        click.echo(line)


@tokens.command("revoke")
@click.argument("token_id")
def tokens_revoke(token_id: str) -> None:
    """Revoke an API token."""
    settings = _settings()

    async def work(session: AsyncSession) -> None:
        await tenant.revoke_token(session, token_id, clock=SystemClock())

    try:
        _with_session(settings, work)
    except InnkeeperError as exc:
        raise click.ClickException(f"{exc.message}: {exc.developer_message or token_id}") from None
    click.echo("revoked")


@main.group()
def batch() -> None:
    """Sitecore Batch API: upload NDJSON files of guests, orders and tracking events."""


@batch.command("upload")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--url", default=None, help="Server base URL (default: INNKEEPER_PUBLIC_URL, else http://HOST:PORT).")
@click.option("--client-key", default=None, help="Client key (default: INNKEEPER_CLIENT_KEY).")
@click.option("--api-token", default=None, help="API token with rw scope (default: INNKEEPER_API_TOKEN).")
@click.option(
    "--max-size", type=click.IntRange(min=1024), default=52_428_800, show_default=True, help="Largest batch in bytes."
)
@click.option("--wait", is_flag=True, help="Wait for every batch to finish; print counts and the first errors.")
def batch_upload(
    file: Path, url: str | None, client_key: str | None, api_token: str | None, max_size: int, wait: bool
) -> None:
    """Upload FILE (.json/.ndjson or .gz; split into batches below --max-size) and optionally wait."""
    from innkeeper.batch.uploader import BatchClient, UploadFailed, upload_file

    settings = _settings()
    base = url or settings.public_url or f"http://{settings.host}:{settings.port}"
    key, token = client_key or settings.client_key, api_token or settings.api_token
    if not key or not token:
        raise click.UsageError(
            "--client-key and --api-token (or INNKEEPER_CLIENT_KEY / INNKEEPER_API_TOKEN) are required"
        )
    client = BatchClient(base, key, token)
    try:
        outcomes = upload_file(file, client, max_size=max_size, wait=wait, echo=click.echo)
    except (UploadFailed, httpx.HTTPError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        client.close()
    failed = [o for o in outcomes if o.status in ("error", "corrupted")]
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(outcomes)} batches failed")


@main.group()
def users() -> None:
    """Portal users."""


@users.command("create")
@click.argument("email")
@click.option(
    "--role",
    type=click.Choice(list(user_service.ROLES)),
    default="MARKETER",
    show_default=True,
    help="Enterprise Admin, User Manager, Marketer or Viewer.",
)
@click.option("--name", default=None)
@click.password_option(envvar="INNKEEPER_NEW_USER_PASSWORD", help="Prompted (twice) when not given.")
def users_create(email: str, role: str, name: str | None, password: str) -> None:
    """Create a portal user who signs in with EMAIL and a password."""
    settings = _settings()
    _prepare(settings)

    async def work(session: AsyncSession) -> str:
        user = await user_service.create_user(
            session, email=email, password=password, role=role, name=name, clock=SystemClock()
        )
        return user.ref

    try:
        ref = _with_session(settings, work)
    except InnkeeperError as exc:
        raise click.ClickException(exc.developer_message or exc.message) from None
    click.echo(f"user {ref} created ({role})")
