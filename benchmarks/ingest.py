"""Ingest benchmark: `POST /v1.2/events` on a real `innkeeper serve` vs a bare Starlette app.

    .venv/bin/python benchmarks/ingest.py [--db sqlite|postgres] [--servers N] [--duration 20] [--quick]

1. Starts `innkeeper serve --no-workers` (one uvicorn process; `--servers N` starts N of them on
   ports of their own, one after the other) on a fresh database: an SQLite temp file, or a fresh
   PostgreSQL database `innkeeper_bench` (created here and dropped afterwards; the URL may be
   overridden with INNKEEPER_BENCH_DATABASE_URL).
2. Creates 10,000 browsers with `GET /v1.2/browser/create.json` (not timed).
3. Drives `POST /v1.2/events` with Engage-SDK-shaped bodies (5% IDENTITY with the browser's own
   email, then ~70% VIEW, ~30% ADD with a product; random browser among the 10,000) over N
   keep-alive connections (spread over the server processes): a warm-up (not counted), then
   `--duration` seconds measured, closed loop: the maximum throughput.
4. Then, for Innkeeper only, an open-loop phase at half of that maximum (`--fixed-rate-share`):
   requests due on a fixed schedule, latency counted from each one's due time (no coordinated
   omission): issue 8's "p99 ≤ 25 ms at half of the measured maximum".
5. Does the closed-loop load against `benchmarks/bare.py` (as many processes; a bare Starlette
   endpoint that parses the same JSON with msgspec and returns the same response shape), same
   generator, same concurrency, same duration.
6. Prints events/s, p50/p99 latency and errors per target, and the ratio innkeeper/bare;
   writes the results to `benchmarks/results/ingest-<db>.json` and ends with the
   `BENCH_RESULT` line `benchmarks/run.py` reads (see `_results.py`).

Every response must be `201`; any other status (or a transport error) is counted, reported
and makes the run exit with status 1.

The load generator runs in this process (never in the server's): `wrk` with a Lua script
when it is on PATH and there is one server (lightest on a 2-core machine), else a raw asyncio
HTTP/1.1 client. `--client python|wrk` forces one. The open-loop phase always uses the asyncio
client. `--quick` (2 s phases, 200 browsers) only checks the harness.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _results
from _common import (
    API_TOKEN,
    CLIENT_KEY,
    HERE,
    POINT_OF_SALE,
    PRODUCTS,
    RESULTS,
    ROOT,
    USER_AGENT,
    count_rows,
    database_url,
    fresh_database,
    innkeeper_env,
    new_loop,
    now_iso,
    percentile,
    product,
    quick_defaults,
    write_results,
)

DEFAULT_CONCURRENCY = 16
BROWSERS = 10_000  # issue 8: VIEW/ADD/IDENTITY mix over 10,000 browsers
BODIES = 8192
VIEW_SHARE = 0.7  # of the non-IDENTITY events; the rest are ADD
IDENTITY_SHARE = 0.05
FIXED_RATE_SHARE = 0.5  # issue 8: p99 at half of the measured maximum
ORIGIN = "https://www.bench-shop.example"
EVENT_HEADERS = {
    "Content-Type": "application/json",
    "X-Library-Version": "1.4.3",
    "User-Agent": USER_AGENT,
    "Origin": ORIGIN,
    "Accept": "*/*",
}
JSON_TYPE = "application/json;charset=UTF-8"
SERVE = [sys.executable, "-m", "innkeeper", "serve", "--no-workers"]
BARE = [sys.executable, str(HERE / "bare.py")]


# --- event bodies -----------------------------------------------------------------------

PAGES = ["Home Page", "shoes", "running-shoes", "trail", "cart", "sale", "men", "women", "kids", "search"]


def event_message(rng: random.Random, browser_id: str, *, identity_share: float = 0.0) -> dict[str, Any]:
    """One Engage-SDK-shaped event (spec cdp.md §3.2, §4.2): VIEW, ADD with a full product, or IDENTITY.

    ``identity_share`` of the events are IDENTITY with an email (and email identifier) of their own browser, so
    a browser always identifies as the same guest (no merges, no identity switches); of the rest, VIEW_SHARE
    are VIEW and the others ADD.
    """
    message: dict[str, Any] = {
        "type": "VIEW",
        "ext": {"pageVariantId": "_default"},
        "browser_id": browser_id,
        "channel": "WEB",
        "client_key": CLIENT_KEY,
        "currency": "EUR",
        "language": "EN",
        "page": rng.choice(PAGES),
        "pos": POINT_OF_SALE,
    }
    if rng.random() < 0.15:
        message["referrer"] = "https://www.google.com/"
        message["utm_source"] = "newsletter"
    draw = rng.random()
    if draw < identity_share:
        email = f"b-{browser_id}@bench.example"
        message["type"] = "IDENTITY"
        message["email"] = email
        message["firstname"] = "Bench"
        message["lastname"] = browser_id[:8]
        message["identifiers"] = [{"provider": "email", "id": email}]
    elif draw >= identity_share + VIEW_SHARE * (1 - identity_share):
        kind, item, name, price = rng.choice(PRODUCTS)
        message["type"] = "ADD"
        message["product"] = product(
            kind,
            item,
            name,
            price,
            ordered_at=datetime(2025, 8, 23, tzinfo=UTC) + timedelta(seconds=rng.randrange(86400)),
            quantity=rng.randint(1, 3),
            reference_id=f"{item}-{rng.randint(1, 9)}",
        )
    return message


def event_bodies(browsers: list[str], count: int, *, seed: int = 1, identity_share: float = 0.0) -> list[bytes]:
    """Compact JSON bodies exactly as the Engage SDK sends them, each for a random browser."""
    rng = random.Random(seed)
    out: list[bytes] = []
    for _ in range(count):
        message = event_message(rng, rng.choice(browsers), identity_share=identity_share)
        out.append(json.dumps(message, separators=(",", ":")).encode())
    return out


# --- a minimal raw HTTP/1.1 keep-alive client ------------------------------------------------


class HTTPError(Exception):
    """The connection broke or the answer was not HTTP/1.1."""


def build_request(method: str, target: str, host: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Connection:
    """One keep-alive HTTP/1.1 connection; reconnects transparently after a close."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def send(self, raw: bytes) -> tuple[int, bytes, bytes]:
        """Send one request; return (status, head, body)."""
        if self.writer is None:
            await self._open()
        assert self.reader is not None
        assert self.writer is not None
        try:
            self.writer.write(raw)
            head = await self.reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 "):
                raise HTTPError(head[:80].decode("latin-1"))
            status = int(head[9:12])
            lower = head.lower()
            at = lower.find(b"\r\ncontent-length:")
            if at >= 0:
                end = lower.index(b"\r\n", at + 2)
                body = await self.reader.readexactly(int(lower[at + 17 : end]))
            elif b"\r\ntransfer-encoding: chunked" in lower:
                body = await self._chunked()
            else:
                body = await self.reader.read()
                await self.close()
                return status, head, body
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            await self.close()
            raise HTTPError(repr(exc)) from exc
        if b"\r\nconnection: close" in lower:
            await self.close()
        return status, head, body

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        body = bytearray()
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return bytes(body)
            body += await self.reader.readexactly(size)
            await self.reader.readexactly(2)


async def _gather_limited(n: int, jobs: list[Any], run: Any) -> list[Any]:
    queue = list(enumerate(jobs))
    results: list[Any] = [None] * len(jobs)

    async def worker() -> None:
        while queue:
            i, job = queue.pop()
            results[i] = await run(job)

    await asyncio.gather(*(worker() for _ in range(n)))
    return results


async def create_browsers(port: int, count: int, concurrency: int) -> list[str]:
    """`GET /v1.2/browser/create.json` × count; returns the browser refs."""
    target = f"/v1.2/browser/create.json?client_key={CLIENT_KEY}&message=%7B%7D"
    raw = build_request("GET", target, f"127.0.0.1:{port}", {"User-Agent": USER_AGENT, "Origin": ORIGIN})
    conns = [Connection("127.0.0.1", port) for _ in range(concurrency)]
    free = list(conns)

    async def one(_: int) -> str:
        conn = free.pop()
        try:
            status, _head, body = await conn.send(raw)
        finally:
            free.append(conn)
        if status != 201:
            raise SystemExit(f"browser create answered {status}: {body[:300]!r}")
        return str(json.loads(body)["ref"])

    try:
        refs = await _gather_limited(concurrency, list(range(count)), one)
    finally:
        for conn in conns:
            await conn.close()
    if len(set(refs)) != count:
        raise SystemExit("browser create returned duplicate refs")
    return refs


async def check_shape(port: int, body: bytes, name: str) -> None:
    """One untimed request: the answer must be 201 with the Stream success shape (§3.4)."""
    conn = Connection("127.0.0.1", port)
    try:
        status, head, reply = await conn.send(
            build_request("POST", "/v1.2/events", f"127.0.0.1:{port}", EVENT_HEADERS, body)
        )
    finally:
        await conn.close()
    sent = json.loads(body)
    problems = []
    if status != 201:
        problems.append(f"status {status}")
    if f"content-type: {JSON_TYPE}".lower().encode() not in head.lower():
        problems.append("content type is not " + JSON_TYPE)
    try:
        got = json.loads(reply)
    except ValueError:
        got = {}
    expected_keys = ["status", "version", "client_key", "ref", "customer_ref", "event_ref"]
    if list(got) != expected_keys:
        problems.append(f"keys {list(got)}")
    if got.get("status") != "OK" or got.get("version") != "1.2" or got.get("client_key") != CLIENT_KEY:
        problems.append("status/version/client_key")
    if got.get("ref") != sent["browser_id"]:
        problems.append("ref is not the browser id")
    for key in ("customer_ref", "event_ref"):
        try:
            uuid.UUID(str(got.get(key)))
        except ValueError:
            problems.append(f"{key} is not a UUID")
    if problems:
        raise SystemExit(f"{name}: unexpected event response ({'; '.join(problems)}): {status} {reply[:400]!r}")


# --- load generators ---------------------------------------------------------------------------


@dataclass
class Result:
    target: str
    client: str
    requests: int = 0
    seconds: float = 0.0
    errors: int = 0
    warmup_errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    server_cpu: float = 0.0  # share of one core used by the server process in the window
    machine_cpu: float = 0.0  # cores busy in the window (2.0 = both cores of a 2-core machine)
    generator_cpu: float = 0.0  # share of one core used by the load generator
    answered_201: int = 0  # every 201 seen, warm-up and shape check included
    stored_events: int | None = None
    offered_rate: float | None = None  # open-loop phase: the fixed rate requests were due at (req/s)

    @property
    def other_cpu(self) -> float:
        """Cores used by everything but the server and the generator (PostgreSQL, other jobs)."""
        return max(0.0, self.machine_cpu - self.server_cpu - self.generator_cpu)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _finish(result: Result, latencies: list[float], usage0: Any, usage1: Any) -> Result:
    """A measured window's figures: the generator's CPU (``getrusage`` before and after), latency percentiles."""
    result.generator_cpu = (usage1.ru_utime + usage1.ru_stime - usage0.ru_utime - usage0.ru_stime) / result.seconds
    latencies.sort()
    result.requests = len(latencies)
    result.p50_ms, result.p90_ms, result.p99_ms = (percentile(latencies, q) * 1000 for q in (50, 90, 99))
    result.max_ms = latencies[-1] * 1000 if latencies else 0.0
    return result


class CPUWatch:
    """CPU used by the server process(es) (and the whole machine) between start() and stop()."""

    def __init__(self, pid: int, *more_pids: int) -> None:
        self.pid = pid
        self.pids = (pid, *more_pids)
        self.tick = os.sysconf("SC_CLK_TCK")

    def _proc(self) -> float:
        total = 0.0
        for pid in self.pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / self.tick
        return total

    @staticmethod
    def _machine() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = values[3] + values[4]
        return sum(values) - idle, sum(values)

    def start(self) -> None:
        self.t0, self.p0, self.m0 = time.monotonic(), self._proc(), self._machine()

    def stop(self, result: Result) -> None:
        elapsed = time.monotonic() - self.t0
        busy1, total1 = self._machine()
        result.server_cpu = (self._proc() - self.p0) / elapsed if elapsed else 0.0
        total = total1 - self.m0[1]
        result.machine_cpu = (os.cpu_count() or 1) * (busy1 - self.m0[0]) / total if total else 0.0


class ProfilingWatch(CPUWatch):
    """CPUWatch that also runs py-spy on the server for the measured window."""

    def __init__(self, pid: int, seconds: float, out: Path, *more_pids: int) -> None:
        super().__init__(pid, *more_pids)
        self.seconds, self.out = seconds, out
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        RESULTS.mkdir(exist_ok=True)
        self.proc = start_profile(self.pid, self.seconds, self.out)
        super().start()

    def report(self) -> None:
        if self.proc is None:
            return
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if not self.out.exists():
            print(f"  (py-spy failed: {err.decode(errors='replace').strip()[-300:]})")
            return
        print(f"  py-spy profile of innkeeper ({self.out.relative_to(ROOT)}):")
        for line in summarize_profile(self.out):
            print("    " + line)


async def python_load(
    name: str,
    ports: list[int],
    bodies: list[bytes],
    *,
    concurrency: int,
    warmup: float,
    duration: float,
    watch: CPUWatch,
    path: str = "/v1.2/events",
    headers: dict[str, str] = EVENT_HEADERS,
    ok_status: int = 201,
    on_answer: Callable[[bytes, bool], None] | None = None,
) -> Result:
    """Closed-loop load: `concurrency` keep-alive connections, each sending back to back.

    With several server ports (one per `innkeeper serve` process) connection i goes to ports[i % len(ports)].
    `on_answer(head, counted)` sees every answer with `ok_status` (as in `open_loop_load`).
    """
    per_port = {
        port: [build_request("POST", path, f"127.0.0.1:{port}", headers, body) for body in bodies] for port in ports
    }
    result = Result(target=name, client=f"python asyncio ({_loop_name()})")
    window = [float("inf"), float("inf")]  # measured window [start, end]
    latencies: list[float] = []
    stop = False

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        port = ports[seed % len(ports)]
        requests = per_port[port]
        conn = Connection("127.0.0.1", port)
        perf = time.perf_counter
        try:
            while not stop:
                raw = requests[rng.randrange(len(requests))]
                t0 = perf()
                try:
                    status, head, body = await conn.send(raw)
                    failure = None if status == ok_status else f"{status} {body[:200].decode('utf-8', 'replace')}"
                except HTTPError as exc:
                    failure = f"transport: {exc}"
                t1 = perf()
                counted = t0 >= window[0] and t1 <= window[1]
                if failure is not None:
                    if t0 >= window[0]:
                        result.errors += 1
                    else:
                        result.warmup_errors += 1
                    if len(result.error_samples) < 5:
                        result.error_samples.append(failure)
                    if failure.startswith("transport"):
                        await asyncio.sleep(0.01)
                else:
                    result.answered_201 += 1
                    if on_answer is not None:
                        on_answer(head, counted)
                    if counted:
                        latencies.append(t1 - t0)
        finally:
            await conn.close()

    tasks = [asyncio.create_task(worker(i)) for i in range(concurrency)]
    await asyncio.sleep(warmup)
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    window[0] = time.perf_counter()
    watch.start()
    await asyncio.sleep(duration)
    window[1] = time.perf_counter()
    watch.stop(result)
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    stop = True
    await asyncio.gather(*tasks)
    result.seconds = window[1] - window[0]
    return _finish(result, latencies, usage0, usage1)


def _loop_name() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


async def open_loop_load(
    name: str,
    ports: list[int],
    path: str,
    headers: dict[str, str],
    bodies: list[bytes],
    *,
    rate: float,
    warmup: float,
    duration: float,
    connections: int,
    ok_status: int,
    watch: CPUWatch | None = None,
    on_answer: Callable[[bytes, bool], None] | None = None,
) -> Result:
    """Open-loop load at a fixed rate (like wrk2 -R): request i is due at start + i / rate.

    `connections` keep-alive connections (spread over `ports`) take the due requests in order; a free
    connection sleeps until the next request is due, and a request that is due while every connection is
    busy waits for one. Latency always counts from the due time, not from when the request could be sent,
    so a server that stalls is charged for every request it delayed (no coordinated omission). The
    requests due in the first `warmup` seconds are not counted. `on_answer(head, counted)` sees every
    answer with `ok_status`.
    """
    per_port = {
        port: [build_request("POST", path, f"127.0.0.1:{port}", headers, body) for body in bodies] for port in ports
    }
    result = Result(target=name, client=f"python asyncio open loop ({_loop_name()})", offered_rate=rate)
    perf = time.perf_counter
    interval = 1.0 / rate
    start = perf() + 0.05
    measured = (start + warmup, start + warmup + duration)
    total = max(1, int((warmup + duration) * rate))
    latencies: list[float] = []
    taken = 0

    async def worker(seed: int) -> None:
        nonlocal taken
        rng = random.Random(seed)
        port = ports[seed % len(ports)]
        requests = per_port[port]
        conn = Connection("127.0.0.1", port)
        try:
            while taken < total:
                due = start + taken * interval
                taken += 1
                delay = due - perf()
                if delay > 0:
                    await asyncio.sleep(delay)
                raw = requests[rng.randrange(len(requests))]
                counted = measured[0] <= due < measured[1]
                try:
                    status, head, body = await conn.send(raw)
                    failure = None if status == ok_status else f"{status} {body[:200].decode('utf-8', 'replace')}"
                except HTTPError as exc:
                    failure = f"transport: {exc}"
                done = perf()
                if failure is not None:
                    if counted:
                        result.errors += 1
                    else:
                        result.warmup_errors += 1
                    if len(result.error_samples) < 5:
                        result.error_samples.append(failure)
                    continue
                result.answered_201 += 1
                if on_answer is not None:
                    on_answer(head, counted)
                if counted:
                    latencies.append(done - due)
        finally:
            await conn.close()

    tasks = [asyncio.create_task(worker(i)) for i in range(connections)]
    await asyncio.sleep(max(0.0, measured[0] - perf()))
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    if watch is not None:
        watch.start()
    await asyncio.gather(*tasks)
    if watch is not None:
        watch.stop(result)
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    result.seconds = max(duration, perf() - measured[0])
    return _finish(result, latencies, usage0, usage1)


WRK_SCRIPT = r"""
-- Generated by benchmarks/ingest.py: random pre-built Engage SDK bodies, exact-201 check.
local threads = {}
local ctr = 0

function setup(thread)
  ctr = ctr + 1
  thread:set("id", ctr)
  table.insert(threads, thread)
end

function init(args)
  requests = {}
  local headers = {}
  for line in io.lines(args[1]) do
    local k, v = line:match("^([^:]+): (.*)$")
    headers[k] = v
  end
  for body in io.lines(args[2]) do
    table.insert(requests, wrk.format("POST", "/v1.2/events", headers, body))
  end
  math.randomseed(id * 7919 + os.time())
  ok, bad, sample = 0, 0, ""
end

function request()
  return requests[math.random(#requests)]
end

function response(status, headers, body)
  if status == 201 then
    ok = ok + 1
  else
    bad = bad + 1
    if #sample < 600 then sample = sample .. status .. " " .. string.sub(body or "", 1, 200) .. "\n" end
  end
end

function done(summary, latency, requests)
  local ok_total, bad_total, samples = 0, 0, ""
  for _, t in ipairs(threads) do
    ok_total = ok_total + t:get("ok")
    bad_total = bad_total + t:get("bad")
    samples = samples .. t:get("sample")
  end
  local e = summary.errors
  samples = samples:gsub("\\", "\\\\"):gsub('"', '\\"'):gsub("\n", "\\n")
  io.write(string.format(
    'BENCH-JSON {"requests":%d,"duration_us":%d,"ok":%d,"bad":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"samples":"%s"}\n',
    summary.requests, summary.duration, ok_total, bad_total, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, samples))
end
"""


def _run_wrk(
    workdir: Path, port: int, concurrency: int, seconds: float, script: str = "ingest.lua"
) -> tuple[dict[str, Any], float]:
    threads = 1  # one epoll thread drives 16-64 connections easily; leaves the cores to the server
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{concurrency}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "-s",
        str(workdir / script),
        f"http://127.0.0.1:{port}",
        "--",
        str(workdir / "headers.txt"),
        str(workdir / "bodies.jsonl"),
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH-JSON "):
            return json.loads(line[len("BENCH-JSON ") :]), cpu
    raise SystemExit(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


def wrk_load(
    name: str,
    port: int,
    workdir: Path,
    *,
    concurrency: int,
    warmup: float,
    duration: float,
    watch: CPUWatch,
    script: str = "ingest.lua",
    on_stats: Callable[[dict[str, Any], bool], None] | None = None,
) -> Result:
    """The closed-loop load with wrk (one thread) and a Lua `script` in `workdir`; `on_stats(stats, measured)` sees
    what the script reported for the warm-up and for the measured run."""
    result = Result(target=name, client=f"wrk ({shutil.which('wrk')}, 1 thread)")
    if warmup > 0:
        warm, _ = _run_wrk(workdir, port, concurrency, warmup, script)
        result.answered_201 += warm["ok"]
        result.warmup_errors = warm["bad"] + sum(warm[k] for k in ("connect", "read", "write", "timeout"))
        result.error_samples += [s for s in warm["samples"].splitlines() if s][:5]
        if on_stats is not None:
            on_stats(warm, False)
    watch.start()
    stats, cpu = _run_wrk(workdir, port, concurrency, duration, script)
    watch.stop(result)
    result.seconds = stats["duration_us"] / 1e6
    result.requests = stats["requests"]
    result.answered_201 += stats["ok"]
    result.errors = stats["bad"] + sum(stats[k] for k in ("connect", "read", "write", "timeout"))
    result.error_samples += [s for s in stats["samples"].splitlines() if s][:5]
    result.p50_ms, result.p90_ms, result.p99_ms, result.max_ms = (
        stats[k] / 1000 for k in ("p50_us", "p90_us", "p99_us", "max_us")
    )
    result.generator_cpu = cpu / result.seconds if result.seconds else 0.0
    if on_stats is not None:
        on_stats(stats, True)
    return result


# --- servers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A server subprocess with its output in a log file."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], port: int, log: Path) -> None:
        self.name, self.cmd, self.env, self.port, self.log = name, cmd, env, port, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> None:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=self.log.parent
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited with {self.proc.returncode} on start:\n{self.tail()}")
            if self._healthy():
                return
            time.sleep(0.2)
        raise SystemExit(f"{self.name} did not answer /healthz within {timeout:.0f}s:\n{self.tail()}")

    def _healthy(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(
                    f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nConnection: close\r\n\r\n".encode()
                )
                return sock.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def server_env(database_url: str) -> dict[str, str]:
    return innkeeper_env(
        database_url,
        INNKEEPER_CLIENT_KEY=CLIENT_KEY,
        INNKEEPER_API_TOKEN=API_TOKEN,
        INNKEEPER_POINT_OF_SALE=POINT_OF_SALE,
        INNKEEPER_ENVIRONMENT="development",
        INNKEEPER_LOG_LEVEL="warning",
        PYTHONUNBUFFERED="1",
    )


# --- profiling (optional) -------------------------------------------------------------------


def py_spy() -> str | None:
    """py-spy next to this interpreter (the venv) or on PATH."""
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def start_profile(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    """Sample the server with py-spy (100 Hz, GIL-holding and idle threads excluded) while it is measured."""
    exe = py_spy()
    if exe is None:
        print("  (--profile: py-spy not found; `pip install py-spy` into the venv)")
        return None
    cmd = [
        exe,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        "100",
        "--format",
        "raw",
        "--output",
        str(out),
        "--nonblocking",
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


PACKAGES = (
    ("sqlalchemy/orm/", "sqlalchemy ORM"),
    ("sqlalchemy/", "sqlalchemy core + asyncio adapter"),
    ("aiosqlite/", "aiosqlite (thread hand-off)"),
    ("asyncpg/", "asyncpg"),
    ("innkeeper/core/sqlite_driver", "sqlite3 via the in-loop driver"),
    ("innkeeper/", "innkeeper"),
    ("starlette/", "starlette / fastapi / uvicorn"),
    ("fastapi/", "starlette / fastapi / uvicorn"),
    ("uvicorn/", "starlette / fastapi / uvicorn"),
    ("asyncio/", "event loop (uvloop / asyncio)"),
    ("threading.py", "threads"),
)


def _package(frame: str) -> str:
    for needle, name in PACKAGES:
        if needle in frame:
            return name
    return "other"


def summarize_profile(path: Path, top: int = 15) -> list[str]:
    """Top frames of the collapsed stacks: where the server's samples are, self and inclusive."""
    import collections
    import re

    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    packages: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";") if f]
        if frames:
            own[frames[-1]] += n
            packages[_package(frames[-1])] += n
        for frame in set(frames):
            inclusive[frame] += n
    if not total:
        return ["(no samples)"]
    lines = [f"{total} samples; self time by package:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in packages.most_common()]
    lines.append(f"self time by function (top {top}):")
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    lines.append(f"inclusive time, innkeeper / sqlalchemy / driver frames (top {2 * top}):")
    wanted = ("innkeeper/", "sqlalchemy/", "aiosqlite/", "asyncpg/")
    picked = [(f, n) for f, n in inclusive.most_common() if any(w in f for w in wanted)][: 2 * top]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in picked]
    return lines


# --- main --------------------------------------------------------------------------------------


def run_target(
    name: str, servers: list[Server], bodies: list[bytes], workdir: Path, args: argparse.Namespace, client: str
) -> tuple[Result, Result | None]:
    """Warm-up + closed-loop maximum, then (for innkeeper) the open-loop phase at a share of that maximum."""
    pids = [server.proc.pid for server in servers if server.proc is not None]
    ports = [server.port for server in servers]
    watch = CPUWatch(*pids)
    if args.profile and name == "innkeeper":
        watch = ProfilingWatch(pids[0], args.duration, RESULTS / f"ingest-{args.db}-innkeeper.pyspy.txt", *pids[1:])
    loop = new_loop()
    try:
        for port in ports:
            loop.run_until_complete(check_shape(port, bodies[0], name))
        if client == "wrk":
            result = wrk_load(
                name,
                ports[0],
                workdir,
                concurrency=args.concurrency,
                warmup=args.warmup,
                duration=args.duration,
                watch=watch,
            )
        else:
            result = loop.run_until_complete(
                python_load(
                    name,
                    ports,
                    bodies,
                    concurrency=args.concurrency,
                    warmup=args.warmup,
                    duration=args.duration,
                    watch=watch,
                )
            )
        result.answered_201 += len(ports)  # the shape checks
        if isinstance(watch, ProfilingWatch):
            watch.report()
        fixed = None
        if name == "innkeeper" and args.fixed_rate_share > 0 and result.rate > 0 and args.fixed_duration > 0:
            rate = result.rate * args.fixed_rate_share
            print(
                f"  → {name}: open loop at {rate:.0f} events/s ({100 * args.fixed_rate_share:g}% of the maximum), "
                f"{args.fixed_warmup:g}s warm-up, {args.fixed_duration:g}s measured…",
                flush=True,
            )
            fixed = loop.run_until_complete(
                open_loop_load(
                    f"{name}@{100 * args.fixed_rate_share:g}%",
                    ports,
                    "/v1.2/events",
                    EVENT_HEADERS,
                    bodies,
                    rate=rate,
                    warmup=args.fixed_warmup,
                    duration=args.fixed_duration,
                    connections=args.concurrency,
                    ok_status=201,
                    watch=CPUWatch(*pids),
                )
            )
        return result, fixed
    finally:
        loop.close()


def print_table(results: list[Result], ratio: float | None) -> None:
    head = (
        f"{'target':<14} {'events/s':>10} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>7}"
        f"   {'CPU (cores): server':>19} {'generator':>9} {'other':>6}"
    )
    print()
    print(head)
    print("-" * len(head))
    for r in results:
        print(
            f"{r.target:<14} {r.rate:>10.0f} {r.p50_ms:>8.2f} {r.p90_ms:>8.2f} {r.p99_ms:>8.2f} {r.max_ms:>8.1f} "
            f"{r.errors + r.warmup_errors:>7}   {r.server_cpu:>19.2f} {r.generator_cpu:>9.2f} {r.other_cpu:>6.2f}"
        )
    print()
    for r in results:
        if r.offered_rate is not None:
            print(
                f"  {r.target}: open loop, {r.offered_rate:.0f} events/s offered; latency counted from each "
                "request's due time (no coordinated omission)"
            )
    if ratio is not None:
        print(f"ratio innkeeper/bare = {ratio:.2f}" + (f"   (bare is {1 / ratio:.1f}x faster)" if ratio else ""))
        print()


def start_servers(
    name: str,
    cmd: list[str],
    count: int,
    database_url: str,
    workdir: Path,
    *,
    verbose: bool = False,
    parallel: bool = False,
) -> list[Server]:
    """`count` server processes on ports of their own.

    One after the other by default (the first one migrates a fresh database); `parallel` starts them together
    (a restart on a database that is already migrated).
    """
    servers: list[Server] = []
    for i in range(count):
        port = free_port()
        log = workdir / (f"{name}.log" if count == 1 else f"{name}-{i + 1}.log")
        servers.append(
            Server(name, [*cmd, "--host", "127.0.0.1", "--port", str(port)], server_env(database_url), port, log)
        )
    try:
        if parallel and count > 1:
            import concurrent.futures

            with concurrent.futures.ThreadPoolExecutor(count) as pool:
                for future in [pool.submit(server.start) for server in servers]:
                    future.result()
        else:
            for i, server in enumerate(servers):
                if verbose:
                    print(f"  starting {name} process {i + 1}/{count} on port {server.port}…", flush=True)
                server.start()
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


def bench_results(
    scenario: str,
    by_name: dict[str, Result],
    fixed: Result | None,
    ratio: float | None,
    *,
    share: float,
    target_ratio: float,
    target_p99_ms: float,
    unit: str,
    servers: int,
) -> list[_results.Result]:
    """The BENCH_RESULT rows of an ingest-like scenario (also used by callflows.py)."""
    out: list[_results.Result] = []
    inn, bare = by_name.get("innkeeper"), by_name.get("bare")
    procs = f"{servers} serve processes" if servers > 1 else "1 serve process"
    if inn is not None:
        out.append(
            _results.Result(
                scenario,
                "max throughput",
                round(inn.rate, 1),
                unit,
                target=target_ratio,
                comparison=">=",
                baseline=round(bare.rate, 1) if bare is not None else None,
                ratio=ratio,
                target_on="ratio",
                note=f"closed loop, {procs}; p99 at max {inn.p99_ms:.1f} ms",
            )
            if bare is not None
            else _results.Result(scenario, "max throughput", round(inn.rate, 1), unit, note="no baseline (--only)")
        )
    if inn is None and bare is not None:
        out.append(_results.Result(scenario, "bare max throughput", round(bare.rate, 1), unit, note="--only bare"))
    if fixed is not None and fixed.offered_rate is not None:
        out.append(
            _results.Result(
                scenario,
                f"p99 at {100 * share:g}% of max",
                round(fixed.p99_ms, 2),
                "ms",
                target=target_p99_ms,
                comparison="<=",
                note=f"open loop at {fixed.offered_rate:.0f} {unit}: p50 {fixed.p50_ms:.1f} ms, "
                f"max {fixed.max_ms:.0f} ms",
            )
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description="Innkeeper ingest benchmark (POST /v1.2/events vs bare Starlette).")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--duration", type=float, help="measured seconds per target (default 20; --quick 2)")
    parser.add_argument("--warmup", type=float, help="unmeasured warm-up seconds per target (default 2; --quick 0.5)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"keep-alive connections (default {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument("--browsers", type=int, help=f"browsers created first (default {BROWSERS:,}; --quick 200)")
    parser.add_argument(
        "--identity-share",
        type=float,
        default=IDENTITY_SHARE,
        help=f"share of IDENTITY events (default {IDENTITY_SHARE}); of the rest 70%% VIEW, 30%% ADD",
    )
    parser.add_argument(
        "--servers",
        type=int,
        default=1,
        help="innkeeper serve processes (and bare processes), each on its own port, connections spread "
        "round-robin over them (default 1; issue 8 runs PostgreSQL with 2)",
    )
    parser.add_argument(
        "--fixed-rate-share",
        type=float,
        default=FIXED_RATE_SHARE,
        help="after the maximum, an open-loop phase at this share of it, for innkeeper (default 0.5; 0 = skip)",
    )
    parser.add_argument(
        "--fixed-duration", type=float, help="measured seconds of the open-loop phase (default --duration)"
    )
    parser.add_argument("--fixed-warmup", type=float, default=1.0, help="open-loop lead-in seconds (default 1)")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto", help="load generator")
    parser.add_argument("--only", choices=["innkeeper", "bare"], help="run one target only (no ratio)")
    parser.add_argument("--quick", action="store_true", help="2 s per phase, 200 browsers: checks the harness only")
    parser.add_argument("--scenario", help="scenario id in the BENCH_RESULT line (default ingest-<db>)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the innkeeper server with py-spy during the measured window (numbers are then slightly lower)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir / PostgreSQL database afterwards")
    args = parser.parse_args()
    quick_defaults(args, duration=(20.0, 2.0), warmup=(2.0, 0.5), browsers=(BROWSERS, 200))
    args.fixed_duration = args.fixed_duration if args.fixed_duration is not None else args.duration
    if args.servers < 1:
        parser.error("--servers must be at least 1")

    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") and args.servers == 1 else "python"
    elif client == "wrk" and not shutil.which("wrk"):
        parser.error("--client wrk: wrk is not on PATH")
    elif client == "wrk" and args.servers > 1:
        parser.error("--client wrk drives one port; use the python client with --servers > 1")

    workdir = Path(tempfile.mkdtemp(prefix="innkeeper-bench-"))
    url = database_url(args.db, workdir, "innkeeper_bench")

    print(f"Innkeeper ingest benchmark — {now_iso()}")
    print(f"  database:    {args.db} ({url})")
    print(
        f"  generator:   {client}; concurrency {args.concurrency} keep-alive connections; "
        f"warm-up {args.warmup:g}s + {args.duration:g}s measured per target" + ("  [--quick]" if args.quick else "")
    )
    if args.fixed_rate_share > 0:
        print(
            f"               then innkeeper open loop at {100 * args.fixed_rate_share:g}% of its maximum: "
            f"{args.fixed_warmup:g}s + {args.fixed_duration:g}s measured"
        )
    print(f"  servers:     {args.servers} process(es) per target")
    print(f"  machine:     {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"  workdir:     {workdir}")

    targets = ["innkeeper", "bare"] if args.only is None else [args.only]
    results: list[Result] = []
    fixed: Result | None = None
    with fresh_database(args.db, url, workdir, keep=args.keep):
        print("  starting innkeeper serve (migrations run on start)…")
        innkeeper = start_servers("innkeeper", SERVE, args.servers, url, workdir)
        try:
            t0 = time.monotonic()
            loop = new_loop()
            try:
                browsers = loop.run_until_complete(create_browsers(innkeeper[0].port, args.browsers, args.concurrency))
            finally:
                loop.close()
            print(f"  created {len(browsers)} browsers in {time.monotonic() - t0:.1f}s (not timed)")
            bodies = event_bodies(browsers, BODIES, identity_share=args.identity_share)
            (workdir / "bodies.jsonl").write_bytes(b"\n".join(bodies) + b"\n")
            (workdir / "headers.txt").write_text("".join(f"{k}: {v}\n" for k, v in EVENT_HEADERS.items()))
            (workdir / "ingest.lua").write_text(WRK_SCRIPT)
            adds = sum(b'"type":"ADD"' in b for b in bodies)
            identities = sum(b'"type":"IDENTITY"' in b for b in bodies)
            views = len(bodies) - adds - identities
            print(
                f"  {len(bodies)} distinct event bodies: {100 * views / len(bodies):.0f}% VIEW, "
                f"{100 * adds / len(bodies):.0f}% ADD, {100 * identities / len(bodies):.0f}% IDENTITY, "
                f"mean {sum(map(len, bodies)) / len(bodies):.0f} bytes"
            )
            if "innkeeper" in targets:
                before = count_rows(url, "events") or 0
                print(f"  → innkeeper: {args.warmup:g}s warm-up, {args.duration:g}s measured…", flush=True)
                result, fixed = run_target("innkeeper", innkeeper, bodies, workdir, args, client)
                results.append(result)
        finally:
            for server in innkeeper:
                server.stop()
        if "innkeeper" in targets:
            stored = count_rows(url, "events")
            if stored is not None:
                results[0].stored_events = stored - before
        if "bare" in targets:
            bare = start_servers("bare", BARE, args.servers, url, workdir)
            try:
                print(f"  → bare:      {args.warmup:g}s warm-up, {args.duration:g}s measured…", flush=True)
                results.append(run_target("bare", bare, bodies, workdir, args, client)[0])
            finally:
                for server in bare:
                    server.stop()

    by_name = {r.target: r for r in results}
    ratio = by_name["innkeeper"].rate / by_name["bare"].rate if len(by_name) == 2 and by_name["bare"].rate else None
    print_table(results + ([fixed] if fixed is not None else []), ratio)
    for r in results:
        answered = r.answered_201 + (fixed.answered_201 if fixed is not None and r.target == "innkeeper" else 0)
        print(f"  {r.target}: generator {r.client} used {r.generator_cpu * 100:.0f}% of a core", end="")
        if r.stored_events is not None:
            print(f"; {answered} answered 201, {r.stored_events} events stored", end="")
            # wrk drops the answers still in flight when it stops (up to `concurrency` per run).
            slack = 0 if r.client.startswith("python") else 2 * args.concurrency
            if not answered <= r.stored_events <= answered + slack:
                print("  <-- MISMATCH: a 201 must mean a stored event", end="")
        print()

    suffix = "-quick" if args.quick else ""
    out = f"ingest-{args.db}{suffix}.json" if args.only is None else f"ingest-{args.db}{suffix}-{args.only}.json"

    def summary(r: Result) -> dict[str, Any]:
        return {
            "events_per_s": round(r.rate, 1),
            "requests": r.requests,
            "seconds": round(r.seconds, 3),
            "p50_ms": round(r.p50_ms, 3),
            "p90_ms": round(r.p90_ms, 3),
            "p99_ms": round(r.p99_ms, 3),
            "max_ms": round(r.max_ms, 3),
            "errors": r.errors,
            "warmup_errors": r.warmup_errors,
            "error_samples": r.error_samples,
            "server_cpu": round(r.server_cpu, 3),
            "machine_cpu": round(r.machine_cpu, 3),
            "generator_cpu": round(r.generator_cpu, 3),
            "other_cpu": round(r.other_cpu, 3),
            "answered_201": r.answered_201,
            "stored_events": r.stored_events,
            "offered_rate": round(r.offered_rate, 1) if r.offered_rate is not None else None,
            "client": r.client,
        }

    payload = {
        "benchmark": "ingest",
        "at": now_iso(),
        "db": args.db,
        "quick": args.quick,
        "servers": args.servers,
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "browsers": args.browsers,
        "generator": client,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "view_share": VIEW_SHARE,
        "identity_share": args.identity_share,
        "targets": {r.target: summary(r) for r in results},
        "fixed_rate": summary(fixed) if fixed is not None else None,
        "fixed_rate_share": args.fixed_rate_share,
        "ratio_innkeeper_over_bare": round(ratio, 4) if ratio is not None else None,
    }
    write_results(out, payload)

    _results.emit(
        bench_results(
            args.scenario or f"ingest-{args.db}",
            by_name,
            fixed,
            ratio,
            share=args.fixed_rate_share,
            target_ratio=0.5,
            target_p99_ms=25.0,
            unit="events/s",
            servers=args.servers,
        ),
        quick=args.quick,
    )
    failed = [r for r in [*results, *([fixed] if fixed else [])] if r.errors or r.warmup_errors]
    if failed:
        print()
        print("!" * 78)
        for r in failed:
            print(
                f"!!  {r.target}: {r.errors} NON-201 RESPONSES / TRANSPORT ERRORS in the measured window, "
                f"{r.warmup_errors} in warm-up"
            )
            for sample in r.error_samples[:5]:
                print(f"!!    e.g. {sample[:200]}")
        print("!!  BENCHMARK FAILED: every event must be answered 201")
        print("!" * 78)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
