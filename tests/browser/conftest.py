"""Fixtures for the SDK compatibility tests (real Sitecore SDKs against a live server).

- ``live_server``: a real ``innkeeper serve`` subprocess on a free loopback port, backed by
  the root ``db_url`` fixture (falls back to a private SQLite file migrated with
  ``innkeeper db upgrade`` when no root fixture provides one).
- ``site_server``: a static file server on *another* port serving ``tests/sdk`` (the SDK
  bundles and the test pages), so every SDK call to ``live_server`` is cross-origin.
- ``chromium_page`` / ``browser``: Debian's Chromium (``/usr/bin/chromium``) driven by
  Playwright; no Playwright-managed browser is ever downloaded.
- ``sdk_dir`` / ``node_bin``: for the Node driver scripts.

Tests are skipped (with the command that enables them) when Chromium, node/npm or the
built SDK bundles are missing. Set ``INNKEEPER_BIN`` to run another ``innkeeper``
executable than the one next to the current Python.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.live import LiveServer, free_port
from tests.support.live import live_server as start_live_server

REPO_ROOT = Path(__file__).resolve().parents[2]
SDK_DIR = REPO_ROOT / "tests" / "sdk"
CHROMIUM_PATH = os.environ.get("INNKEEPER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium's own background connections make this machine's closed
    # network refuse its connections.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SETUP_HINT = "run scripts/sdk-setup.sh (needs node + npm and the npm registry)"
CHROMIUM_HINT = f"install Chromium: apt-get install -y chromium; then {SETUP_HINT}"
BUNDLES = ("dist/engage.js", "dist/cloudsdk.js")


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def live_server(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """Run ``innkeeper serve`` on a free port with a fresh database; yield its coordinates."""
    with start_live_server(db_url, tmp_path) as server:
        yield server


# --------------------------------------------------------------------------- SDK files


@pytest.fixture(scope="session")
def sdk_dir() -> Path:
    """tests/sdk with node_modules installed and the browser bundles built."""
    missing = [b for b in BUNDLES if not (SDK_DIR / b).is_file()]
    if not (SDK_DIR / "node_modules" / "@sitecore" / "engage").is_dir() or missing:
        pytest.skip(f"Sitecore SDK packages/bundles not built ({', '.join(missing)}): {SETUP_HINT}")
    return SDK_DIR


@pytest.fixture(scope="session")
def node_bin(sdk_dir: Path) -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip(f"node not found: install Node.js >= 18 (apt-get install -y nodejs npm); then {SETUP_HINT}")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    major = int(version.stdout.strip().lstrip("v").split(".")[0] or 0)
    if major < 18:
        pytest.skip(f"node {version.stdout.strip()} is too old (Engage needs global fetch, node >= 18)")
    return node


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


@pytest.fixture(scope="session")
def site_server(sdk_dir: Path) -> Iterator[str]:
    """Serve tests/sdk (pages/ and dist/) from another origin than the live server."""
    handler = functools.partial(_QuietHandler, directory=str(sdk_dir))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=httpd.serve_forever, name="sdk-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


# --------------------------------------------------------------------------- Chromium


@pytest.fixture
def browser(sdk_dir: Path, chromium: Any) -> Any:
    """Chromium for the SDK tests (which also need the SDK bundles)."""
    return chromium


@pytest.fixture
def chromium() -> Iterator[Any]:
    """Debian's Chromium through Playwright (function scope: no event-loop sharing)."""
    if not (os.path.isfile(CHROMIUM_PATH) and os.access(CHROMIUM_PATH, os.X_OK)):
        pytest.skip(f"{CHROMIUM_PATH} not found: {CHROMIUM_HINT}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright (python) is not installed: pip install -e '.[dev]'")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def chromium_page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        yield page
    finally:
        context.close()
