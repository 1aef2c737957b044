"""A real `innkeeper serve` subprocess on a free loopback port (for SDK and plain-HTTP tests)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

STARTUP_TIMEOUT_S = 30.0


def free_port() -> int:
    """An unused loopback TCP port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def innkeeper_bin() -> str:
    """The `innkeeper` executable beside this Python (or INNKEEPER_BIN)."""
    override = os.environ.get("INNKEEPER_BIN")
    if override:
        return override
    beside = Path(sys.executable).parent / "innkeeper"
    if beside.exists():
        return str(beside)
    found = shutil.which("innkeeper")
    if found:
        return found
    pytest.fail("the innkeeper executable was not found (pip install -e . into the venv)")


@dataclasses.dataclass(frozen=True)
class LiveServer:
    """Where a running server listens and how to authenticate to it."""

    base_url: str
    client_key: str
    api_token: str
    pos: str
    log_path: Path

    def admin(self) -> httpx.Client:
        """An httpx client for the admin API (Basic: client key / API token)."""
        return httpx.Client(base_url=self.base_url, auth=(self.client_key, self.api_token), timeout=10.0)

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's output, for failure messages."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "<no server log>"


@contextlib.contextmanager
def live_server(
    db_url: str,
    directory: Path,
    *,
    environment: str = "development",
    pos: str = "sdkstore/ireland",
    extra_env: dict[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
) -> Iterator[LiveServer]:
    """Run `innkeeper serve` against ``db_url`` until the block ends (``extra_env``: more INNKEEPER_*)."""
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("INNKEEPER_")}
    port = free_port()
    client_key = secrets.token_hex(16)  # 32 characters, like a Sitecore client key
    api_token = secrets.token_hex(16)
    env = {
        **base_env,
        "INNKEEPER_DATABASE_URL": db_url,
        "INNKEEPER_CLIENT_KEY": client_key,
        "INNKEEPER_API_TOKEN": api_token,
        "INNKEEPER_POINT_OF_SALE": pos,
        "INNKEEPER_ENVIRONMENT": environment,
        **(extra_env or {}),
    }
    log_path = directory / f"innkeeper-serve-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [innkeeper_bin(), "serve", "--host", "127.0.0.1", "--port", str(port), *extra_args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        server = LiveServer(f"http://127.0.0.1:{port}", client_key, api_token, pos, log_path)
        try:
            _wait_ready(proc, server)
            yield server
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)


def _wait_ready(proc: subprocess.Popen[bytes], server: LiveServer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            pytest.fail(f"innkeeper serve exited with {proc.returncode} before becoming ready:\n{server.log_tail()}")
        try:
            if httpx.get(f"{server.base_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"innkeeper serve not ready after {STARTUP_TIMEOUT_S}s:\n{server.log_tail()}")
        time.sleep(0.1)
