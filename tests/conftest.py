"""Shared fixtures: --db=sqlite|postgres, a migrated database per test, the app and its client."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.app import create_app
from innkeeper.core.config import Settings
from innkeeper.core.runtime import Runtime
from tests.support import database
from tests.support.clock import FrozenClock

CLIENT_KEY = "pqsTELpfrXBzxKozB0IoL4xuAT0s7WrH"
API_TOKEN = "test-admin-token-0123456789abcdef"
POINT_OF_SALE = "myretailsite/ireland"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=("sqlite", "postgres"),
        default=os.environ.get("INNKEEPER_TEST_DB", "sqlite"),
        help="database the tests run against (postgres uses INNKEEPER_TEST_DATABASE_URL)",
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    """In CI (INNKEEPER_NO_SKIP=1) a skipped test is a failure: nothing may silently not run."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and os.environ.get("INNKEEPER_NO_SKIP") == "1" and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped, but INNKEEPER_NO_SKIP=1 forbids skips: {report.longrepr}"


@pytest.fixture(scope="session")
def db_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.config.getoption("--db")
    return kind


@pytest.fixture(scope="session")
def _template(db_kind: str, tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Iterator[str]:
    """Migrate once per xdist worker: an SQLite template file or a PostgreSQL database."""
    if db_kind == "sqlite":
        yield str(database.sqlite_template(tmp_path_factory.mktemp("template")))
        return
    admin = os.environ.get("INNKEEPER_TEST_DATABASE_URL", DEFAULT_PG)
    name = f"innkeeper_test_{worker_id}_{os.getpid()}"
    try:
        url = database.postgres_database(admin, name)
    except OSError as exc:
        pytest.skip(f"PostgreSQL unreachable at {admin} ({exc}); start it or set INNKEEPER_TEST_DATABASE_URL")
    yield url
    database.drop_database(admin, name)


@pytest.fixture
def db_url(db_kind: str, _template: str, tmp_path: Path) -> Iterator[str]:
    """An empty, migrated database for this test."""
    if db_kind == "sqlite":
        yield database.sqlite_copy(Path(_template), tmp_path)
    else:
        database.run_sync(lambda: database.truncate(_template))
        yield _template


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def environment() -> str:
    """Override in a test module to run the app in production mode."""
    return "development"


@pytest.fixture
def settings(db_url: str, environment: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=db_url,
        environment=environment,  # type: ignore[arg-type]
        client_key=CLIENT_KEY,
        api_token=API_TOKEN,
        point_of_sale=POINT_OF_SALE,
        data_dir=str(tmp_path / "data"),
    )


@pytest.fixture
async def app(settings: Settings, clock: FrozenClock) -> AsyncIterator[FastAPI]:
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    rt: Runtime = app.state.runtime
    return rt


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", event_hooks={"response": [_never_500]}
    ) as c:
        yield c


async def _never_500(response: httpx.Response) -> None:
    """No request in the suite may ever get a 500: an expected failure is never a server error."""
    if response.status_code >= 500:
        await response.aread()
        raise AssertionError(
            f"{response.request.method} {response.request.url} -> {response.status_code}: {response.text}"
        )


@pytest.fixture
def admin_auth() -> tuple[str, str]:
    return (CLIENT_KEY, API_TOKEN)


@pytest.fixture
async def db(runtime: Runtime) -> AsyncIterator[AsyncSession]:
    """A session for inspecting what the app stored (tests only read through it)."""
    async with runtime.sessions() as session:
        yield session
