"""Batch import against real processes: the CLI uploader and a worker killed with SIGKILL."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.factories.batch import guest_record, ndjson, order_record, record
from tests.support.database import run_sync
from tests.support.live import LiveServer, innkeeper_bin, live_server


def scalar(db_url: str, sql: str) -> Any:
    """One value read straight from the server's database."""
    found: list[Any] = []

    async def read() -> None:
        engine = create_async_engine(db_url, poolclass=NullPool)
        async with engine.connect() as conn:
            found.append((await conn.execute(sa.text(sql))).scalar_one())
        await engine.dispose()

    run_sync(read)
    return found[0]


def cli(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INNKEEPER_")}
    return subprocess.run(
        [
            innkeeper_bin(),
            "batch",
            "upload",
            *args,
            "--url",
            server.base_url,
            "--client-key",
            server.client_key,
            "--api-token",
            server.api_token,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    env = {"INNKEEPER_DATA_DIR": str(tmp_path / "data"), "INNKEEPER_SWEEP_INTERVAL_SECONDS": "0.2"}
    with live_server(db_url, tmp_path, extra_env=env) as running:
        yield running


def test_cli_round_trip_splits_into_batches(server: LiveServer, db_url: str, tmp_path: Path) -> None:
    lines: list[dict[str, Any] | str] = [guest_record(n, lastName=uuid.uuid4().hex) for n in range(300)]
    lines += [order_record(n, guest=n) for n in range(100)]
    lines.append("{broken")
    source = tmp_path / "guests.ndjson"
    source.write_bytes(ndjson(lines))
    result = cli(server, str(source), "--max-size", "16384", "--wait")
    assert result.returncode == 1, result.stdout + result.stderr  # one line is broken: that batch is an error
    out = result.stdout
    batches = [line for line in out.splitlines() if line.startswith("[") and "uploading" in line]
    assert len(batches) >= 2, out
    assert out.count(": success (") + out.count(": error (") == len(batches), out
    assert '{"ref":"null","code":"400","message":"Failed to parse import line"}' in out
    assert "batches failed" in result.stderr
    assert scalar(db_url, "SELECT count(*) FROM guests") == 300
    assert scalar(db_url, "SELECT count(*) FROM orders") == 100
    assert scalar(db_url, "SELECT count(*) FROM batches") == len(batches)
    assert scalar(db_url, "SELECT max(size) FROM batches") <= 16384
    # A clean gzip file under the limit goes as it is, in one batch; exit status 0.
    clean = tmp_path / "clean.ndjson"
    clean.write_bytes(ndjson([guest_record(n) for n in range(1000, 1010)]))
    gzipped = tmp_path / "clean.json.gz"
    gzipped.write_bytes(gzip.compress(clean.read_bytes()))
    ok = cli(server, str(gzipped), "--wait")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "1 batch" in ok.stdout and ": success (total 10, succeeded 10, failed 0)" in ok.stdout
    assert scalar(db_url, "SELECT count(*) FROM guests") == 310


def test_cli_reports_server_refusals(server: LiveServer, tmp_path: Path) -> None:
    source = tmp_path / "one.ndjson"
    source.write_bytes(ndjson([guest_record(1)]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("INNKEEPER_")}
    result = subprocess.run(
        [
            innkeeper_bin(),
            "batch",
            "upload",
            str(source),
            "--url",
            server.base_url,
            "--client-key",
            "x",
            "--api-token",
            "y",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "allocate: HTTP 401" in result.stderr


GUESTS = 1500
EVENTS = 600
BAD = 40


def _resume_file() -> bytes:
    lines: list[dict[str, Any] | str] = []
    for n in range(GUESTS):
        guest_ref = str(uuid.UUID(int=n + 1))
        # create: applying a line twice would fail with 409 and show in the counts
        lines.append(
            record("guest", {"ref": guest_ref, "identifiers": [{"provider": "CRM", "id": f"C{n}"}]}, mode="create")
        )
        if n < EVENTS:
            event = {"type": "VIEW", "createdAt": "2025-01-01T10:00:00Z", "guestRef": guest_ref, "page": f"p{n}"}
            lines.append(record("tracking", event, mode="insert"))  # applied twice = two events
        if n < BAD:
            lines.append("not json")
    return ndjson(lines)


def test_killed_worker_resumes_without_duplicates_or_losses(db_url: str, tmp_path: Path) -> None:
    env = {
        "INNKEEPER_DATA_DIR": str(tmp_path / "data"),
        "INNKEEPER_BATCH_CHUNK_LINES": "40",
        "INNKEEPER_BATCH_LEASE_SECONDS": "1",
        "INNKEEPER_BATCH_CHUNK_DELAY_SECONDS": "0.05",
        "INNKEEPER_SWEEP_INTERVAL_SECONDS": "0.2",
        "INNKEEPER_LOG_LEVEL": "warning",
    }
    with live_server(db_url, tmp_path, extra_env=env, extra_args=("--no-workers",)) as server:
        source = tmp_path / "big.ndjson"
        source.write_bytes(_resume_file())
        uploaded = cli(server, str(source))
        assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
        ref = uploaded.stdout.splitlines()[1].split()[1].rstrip(":")
        worker_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("INNKEEPER_")},
            **env,
            "INNKEEPER_DATABASE_URL": db_url,
        }
        log_path = tmp_path / "worker.log"

        def start() -> subprocess.Popen[bytes]:
            with log_path.open("ab") as log:
                return subprocess.Popen(
                    [innkeeper_bin(), "worker"], env=worker_env, stdout=log, stderr=subprocess.STDOUT
                )

        with server.admin() as admin:

            def status() -> dict[str, Any]:
                body: dict[str, Any] = admin.get(f"/v2/batches/inspect/{ref}").json()["status"]
                return body

            worker = start()
            try:
                deadline = time.monotonic() + 60
                while status().get("recordsTotal", 0) < 400:
                    assert time.monotonic() < deadline, status()
                    time.sleep(0.05)
                worker.send_signal(signal.SIGKILL)
                worker.wait(timeout=10)
                killed_at = status()
                assert killed_at["code"] == "processing"
                total = GUESTS + EVENTS + BAD
                assert 0 < killed_at["recordsTotal"] < total
                worker = start()
                deadline = time.monotonic() + 120
                while status()["code"] not in ("success", "error"):
                    assert time.monotonic() < deadline, status()
                    time.sleep(0.1)
            finally:
                if worker.poll() is None:
                    worker.terminate()
                    worker.wait(timeout=10)
            final = status()
            assert final == {
                "code": "error",
                "log": final["log"],
                "recordsTotal": total,
                "recordsSucceeded": GUESTS + EVENTS,
                "recordsFailed": BAD,
            }
            errors = httpx.get(final["log"]).content
    lines = gzip.decompress(errors).decode().splitlines()
    assert lines == ['{"ref":"null","code":"400","message":"Failed to parse import line"}'] * BAD
    assert scalar(db_url, "SELECT count(*) FROM guests") == GUESTS
    assert scalar(db_url, "SELECT count(*) FROM guest_identifiers") == GUESTS
    assert scalar(db_url, "SELECT count(*) FROM events") == EVENTS
    assert scalar(db_url, "SELECT count(DISTINCT page) FROM events") == EVENTS
    assert scalar(db_url, "SELECT count(*) FROM batch_errors") == BAD
