"""`innkeeper serve` with nothing configured: an SQLite file in the working directory, a new
tenant, its keys printed once, and everything a developer needs working."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import httpx

from tests.support.live import free_port, innkeeper_bin


def test_first_serve_with_no_configuration_creates_tenant_and_prints_keys(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INNKEEPER_")}
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [innkeeper_bin(), "serve", "--port", str(port)], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, log_path.read_text()
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
            output = log_path.read_text()
            key = re.search(r"client key:\s+(\S+)", output)
            token = re.search(r"API token:\s+(\S+)", output)
            assert key and token, output
            assert (tmp_path / "innkeeper.db").exists()

            created = httpx.get(f"{base}/v1.2/browser/create.json", params={"client_key": key[1], "message": "{}"})
            assert created.status_code == 201
            event = {"type": "VIEW", "channel": "WEB", "pos": "my-first-site", "browser_id": created.json()["ref"]}
            sent = httpx.post(f"{base}/v1.2/events", json={"client_key": key[1], **event})
            # Development mode auto-creates the unknown point of sale.
            assert sent.status_code == 201, sent.text
            timeline = httpx.get(
                f"{base}/admin/v1/guests/{created.json()['customer_ref']}/timeline", auth=(key[1], token[1])
            )
            assert timeline.status_code == 200
            assert timeline.json()["items"][0]["pointOfSale"] == "my-first-site"
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    # A second start reuses the tenant and does not print a new token.
    port = free_port()
    second = subprocess.Popen(
        [innkeeper_bin(), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        second.terminate()
        out = second.communicate(timeout=10)[0].decode()
    assert f"client key:     {key[1]}" in out
    assert "API token:" not in out
