"""Batch import benchmark: a generated ~50 MB gzipped file of guests and orders.

    .venv/bin/python benchmarks/batch.py                    # SQLite, 50 MB
    .venv/bin/python benchmarks/batch.py --db postgres      # fresh PostgreSQL database
    .venv/bin/python benchmarks/batch.py --size-mb 5        # a quicker run
    .venv/bin/python benchmarks/batch.py --quick            # 1 MB: checks the harness only
    .venv/bin/python benchmarks/batch.py --chunk-lines 5000 # another INNKEEPER_BATCH_CHUNK_LINES
    .venv/bin/python benchmarks/batch.py --profile out.txt  # worker under py-spy (raw, idle off)

Generates the file (guests with identifiers, PII and a data extension; every other guest
followed by an order with 1–3 items whose contact is that guest), starts a real
`innkeeper serve --no-workers` on a fresh database, uploads the file with the same client
as `innkeeper batch upload`, then starts one `innkeeper worker` process and times it from
start to the batch's final status. Reports records/s, total time, the worker's CPU time (user +
system, from /proc: the machine may be busy, so wall time alone is noisy) and peak RSS
(VmHWM), and writes them to benchmarks/results/batch-<db>.json. Ends with the `BENCH_RESULT` line
`benchmarks/run.py` reads (issue 8: the ~50 MB file in ≤ 60 s, worker peak RSS ≤ 300 MB; see `_results.py`).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import _results
import httpx
from _common import BIN, RESULTS, database_url, innkeeper_env, pg_create, pg_drop, quick_defaults
from ingest import free_port

from innkeeper.batch.uploader import BatchClient, pack

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima"]


def generate(path: Path, *, size_mb: float, seed: int = 7) -> int:
    """Write gzipped NDJSON until the compressed file reaches ``size_mb``; returns the record count."""
    rng = random.Random(seed)
    limit = int(size_mb * 1024 * 1024 * 0.98)
    records = 0
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as out:
        n = 0
        while raw.tell() < limit:
            n += 1
            crm = f"CRM-{n:08d}-{rng.randrange(10**6):06d}"
            guest = {
                "guestType": "customer",
                "firstName": rng.choice(WORDS).title(),
                "lastName": secrets.token_hex(4),
                "email": f"{secrets.token_hex(5)}@example.com",
                "phoneNumbers": [f"+353{rng.randrange(10**8):08d}"],
                "city": rng.choice(WORDS).title(),
                "country": "IE",
                "identifiers": [{"provider": "CRM", "id": crm}],
                "extensions": [
                    {"name": "ext", "key": "default", "tier": rng.choice(WORDS), "points": rng.randrange(10**5)}
                ],
            }
            line = {"ref": str(uuid.uuid4()), "schema": "guest", "mode": "upsert", "value": guest}
            out.write(json.dumps(line, separators=(",", ":")).encode() + b"\n")
            records += 1
            if n % 2 == 0:
                items = [
                    {
                        "type": "HOTEL",
                        "productId": f"P{rng.randrange(10**5)}",
                        "name": f"{rng.choice(WORDS)} room",
                        "price": round(rng.uniform(20, 400), 2),
                        "currencyCode": "EUR",
                        "quantity": rng.randrange(1, 4),
                        "referenceId": f"O{n}-{i}",
                        "status": "PURCHASED",
                        "orderedAt": "2025-03-07T16:15:11.000Z",
                    }
                    for i in range(rng.randrange(1, 4))
                ]
                order = {
                    "referenceId": f"O{n}-{secrets.token_hex(3)}",
                    "channel": "WEB",
                    "pointOfSale": "bench.example",
                    "status": "PURCHASED",
                    "orderedAt": "2025-03-07T16:15:11.000Z",
                    "currencyCode": "EUR",
                    "price": round(sum(i["price"] for i in items), 2),  # type: ignore[misc]
                    "paymentType": "Card",
                    "cardType": "Visa",
                    "contact": {"identifiers": [{"provider": "CRM", "id": crm}]},
                    "orderItems": items,
                }
                line = {"ref": str(uuid.uuid4()), "schema": "order", "mode": "insert", "value": order}
                out.write(json.dumps(line, separators=(",", ":")).encode() + b"\n")
                records += 1
            if n % 1000 == 0:
                out.flush()
    return records


def peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (``/proc/<pid>/stat`` fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_mb(pid: int) -> float:
    """Megabytes a running process has sent to storage (``/proc/<pid>/io`` ``write_bytes``): on SQLite the
    worker's WAL and checkpoints, a measure of the index pages an import dirties that CPU noise does not blur;
    on PostgreSQL the server writes, not the worker."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1]) / 1e6
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--size-mb", type=float, help="gzipped file size (default 50; --quick 1)")
    parser.add_argument("--quick", action="store_true", help="a 1 MB file: checks the harness only")
    parser.add_argument("--scenario", help="scenario id in the BENCH_RESULT line (default batch-<db>)")
    parser.add_argument(
        "--chunk-lines", type=int, help="INNKEEPER_BATCH_CHUNK_LINES for the run (default: the server default)"
    )
    parser.add_argument("--profile", type=Path, help="run the worker under py-spy: raw samples to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir and the database afterwards")
    args = parser.parse_args()
    quick_defaults(args, size_mb=(50.0, 1.0))
    work = Path(tempfile.mkdtemp(prefix="innkeeper-bench-batch-"))
    try:
        code = run(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(code)


def run(args: argparse.Namespace, work: Path) -> int:
    """Generate, upload, import; print and store the results. Returns the exit status."""
    source = work / "batch.json.gz"
    started = time.monotonic()
    records = generate(source, size_mb=args.size_mb)
    mb, secs = source.stat().st_size / 1e6, time.monotonic() - started
    print(f"generated {records:,} records, {mb:.1f} MB gzipped in {secs:.0f}s")
    if args.db == "sqlite":
        db_url = f"sqlite:///{work / 'bench.db'}"
    else:
        db_url = database_url("postgres", work, "innkeeper_bench_batch")
        pg_create(db_url)
    key, token, port = secrets.token_hex(16), secrets.token_hex(16), free_port()
    env = innkeeper_env(
        db_url,
        INNKEEPER_CLIENT_KEY=key,
        INNKEEPER_API_TOKEN=token,
        INNKEEPER_DATA_DIR=str(work / "data"),
        INNKEEPER_LOG_LEVEL="warning",
        INNKEEPER_SWEEP_INTERVAL_SECONDS="0.5",
        **({"INNKEEPER_BATCH_CHUNK_LINES": str(args.chunk_lines)} if args.chunk_lines else {}),
    )
    server = subprocess.Popen(
        [str(BIN), "serve", "--no-workers", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=sys.stderr
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        client = BatchClient(base, key, token)
        [part] = pack(source, work, max_size=52_428_800)
        ref, href = client.allocate(part)
        client.upload(part, href)
        worker = subprocess.Popen([str(BIN), "worker"], env=env, stdout=subprocess.DEVNULL, stderr=sys.stderr)
        t0 = time.monotonic()
        spy = None
        if args.profile:
            spy_bin = Path(sys.executable).parent / "py-spy"
            command = [str(spy_bin), "record", "--format", "raw", "-r", "50", "-o", str(args.profile)]
            spy = subprocess.Popen([*command, "--pid", str(worker.pid)], stdout=subprocess.DEVNULL)
        rss = 0
        while True:
            rss = max(rss, peak_rss_kb(worker.pid))
            status = client.status(ref)["status"]
            if status["code"] in ("success", "error", "corrupted"):
                break
            time.sleep(0.5)
        elapsed = time.monotonic() - t0
        rss = max(rss, peak_rss_kb(worker.pid))
        cpu = cpu_seconds(worker.pid)
        written = write_mb(worker.pid)
        worker.terminate()
        worker.wait(timeout=30)
        if spy is not None:
            spy.wait(timeout=60)
        client.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
        if args.db == "postgres" and not args.keep:
            pg_drop(db_url)  # FORCE: also if a worker is still connected after an error
    result: dict[str, Any] = {
        "db": args.db,
        "chunk_lines": args.chunk_lines or "default",
        "file_mb": round(source.stat().st_size / 1e6, 1),
        "records": status.get("recordsTotal"),
        "succeeded": status.get("recordsSucceeded"),
        "failed": status.get("recordsFailed"),
        "status": status["code"],
        "seconds": round(elapsed, 1),
        "records_per_second": round((status.get("recordsTotal") or 0) / elapsed, 1),
        "worker_cpu_seconds": round(cpu, 1),
        "worker_peak_rss_mb": round(rss / 1024, 1),
        "worker_write_mb": round(written, 1),
    }
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    suffix = "-quick" if args.quick else ""
    (RESULTS / f"batch-{args.db}{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")
    scenario = args.scenario or f"batch-{args.db}"
    file_note = f"{result['file_mb']} MB gzipped, {result['records']} records ({result['status']})"
    if args.chunk_lines:
        file_note += f", {args.chunk_lines} lines per chunk"
    _results.emit(
        [
            _results.Result(
                scenario, "import time", result["seconds"], "s", target=60, comparison="<=", note=file_note
            ),
            _results.Result(
                scenario, "worker peak RSS", result["worker_peak_rss_mb"], "MB", target=300, comparison="<="
            ),
            _results.Result(scenario, "records/s", result["records_per_second"], "records/s"),
        ],
        quick=args.quick,
    )
    return 0 if status["code"] == "success" else 1


if __name__ == "__main__":
    main()
