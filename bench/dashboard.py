"""Dashboard benchmark: page and panel server time, the live stream's fan-out, idle streams.

1. **Pages and panels.** A fresh database (SQLite, or PostgreSQL with ``--backend
   postgresql``) gets bench/monitor.py's fill (``--servers`` servers, default 1,000, and
   ``--jobs`` finished jobs with their build history, default 100,000), then what a dashboard
   shows besides, through the services on an injected clock: 250 jobs queued of which 50 are
   claimed (running on 50 servers), 20 blocked behind failed builds, open alerts from a
   monitor step with 5 servers silent, a running job with 20,000 log lines; and in bulk, 500
   messages, a day of minute samples and 30 days of hour samples for the trend charts. Every
   page and fragment is then fetched through the real app in process (Starlette's
   TestClient, logged in with ``POST /login``), all paths in turn, ``--rounds`` times (30),
   or fewer once the rounds took ``--budget`` seconds (900); the time is the server's, from
   the request's arrival at the app to its last body byte (an ASGI wrapper), with the
   garbage collector set as ``serve`` sets it. Baselines in the same rounds:
   ``GET /api/v1/health`` and the queue's data through the JSON API
   (``GET /api/v1/jobs?status=queued&limit=1000``, with forecasts, as the queue panel has).
   Goals: p95 under 150 ms for each page and panel; the overview page under 200 KB.
2. **The live stream's fan-out.** A real ``buildcoord serve`` on a free loopback port and a
   fresh database (one branch; no servers, so nothing else writes), 100 clients on
   ``/ui/stream``; each of 20 rounds queues a job through the API and times, for every client,
   the wait from just before the POST until it reads ``event: queue``. Baselines: one plain
   ``GET /api/v1/health`` at a time, and 100 of them sent at once on 100 kept-alive
   connections (the same fan-out as plain requests). Goal: p99 under 1 s.
3. **What an idle stream costs.** The same process's RSS (VmRSS) and CPU time (utime +
   stime) over 10 s idle windows with 0, 1, 100 and 500 streams open; per stream, from the
   windows at 1 and 500 (the first stream also starts the process's change-feed reader, which
   the window at 0 and 1 prices); then the streams are filled up to the per-process limit
   (``MAX_STREAMS``) and a few more tried, to see what they get.

``--quick`` (under a minute): 100 servers, 20,000 jobs, 3 rounds within 15 s, 5 delivery
rounds, 5 s windows at 0, 1 and 100 streams, no limit probe.

The stream clients are asyncio connections speaking HTTP/1.1 themselves rather than httpx:
the benchmark shares two cores with the coordinator, and a client that costs little keeps
its own cost out of the delivery times and the coordinator's CPU figures.

Usage::

    .venv/bin/python bench/dashboard.py [--quick] [--json] [--backend sqlite|postgresql]
                                        [--pg-url postgresql://user@host:port/db]

PostgreSQL: a fresh database on ``--pg-url``'s server for each part, dropped afterwards.
All traffic stays on loopback; every loop is bounded; every process started here is stopped
by its pid.
"""

# ruff: noqa: E402
from __future__ import annotations

import sys
from pathlib import Path

# bench/queue.py sits beside this file: keep the folder off sys.path so that ``import queue``
# finds the standard library.
_BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _BENCH_DIR]

import argparse
import asyncio
import gc
import importlib.util
import json
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import insert, select, update
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from buildcoord.cli.serve import GC_THRESHOLDS
from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.models import BROADCAST
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store
from buildcoord.store.schema import fleet_samples, jobs, messages, servers
from buildcoord.web.app import create_app
from buildcoord.web.guard import SESSION_COOKIE
from buildcoord.web.pages.panels import PANELS
from buildcoord.web.pages.render import NAVIGATION
from buildcoord.web.pages.stream import MAX_STREAMS


def _load(name: str, filename: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, _BENCH_DIR / filename)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


bm = _load("bench_monitor", "monitor.py")  # its fill(); it loads bench/queue.py as bench_queue
bq = sys.modules["bench_queue"]

START = bm.START
ADMIN = bm.ADMIN
GOAL_PAGE_P95_MS = 150.0
GOAL_OVERVIEW_BYTES = 200_000
GOAL_DELIVERY_P99_MS = 1000.0
QUEUED = 200
RUNNING = 50
BLOCKED = 20
SILENT_SERVERS = 5
MESSAGES = 500
LOG_LINES = 20_000
LOG_BATCH = 5_000
STREAM_CLIENTS = 100
MANY_STREAMS = 500
DELIVERY_TIMEOUT = 10.0
MIN_ROUNDS = 2
CONNECT_TIMEOUT = 10.0
HEALTH = "/api/v1/health"
JOBS_API = "/api/v1/jobs?status=queued&limit=1000"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def summary(times: list[float]) -> dict[str, float]:
    """p50 / p95 / p99 / max of milliseconds."""
    figures = bm.summary(times)
    figures["p99_ms"] = round(bq._percentile(times, 0.99), 2)
    return {key: figures[key] for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms")}


# -- 1. pages and panels in process -----------------------------------------------------------


def populate(coordinator: Coordinator, clock: FakeClock, server_count: int) -> dict[str, Any]:
    """Add to the filled store what a dashboard shows besides history; return the log's job."""
    store = coordinator.store
    if store.engine.dialect.name == "postgresql":  # the fill wrote ids itself
        with store.engine.begin() as conn:
            conn.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('jobs', 'id'), (SELECT max(id) FROM jobs))"
            )
    admin = coordinator.tokens.authenticate(ADMIN)
    branch_names = [f"branch-{n:02d}" for n in range(bm.BRANCHES)]
    for n in range(QUEUED + RUNNING):
        clock.advance(1.0)
        coordinator.queue.submit(
            branch_names[n % bm.BRANCHES], f"{10**12 + n:040x}", priority=1 + n % 10, by=admin
        )
    clock.advance(30.0)
    running = []
    for n in range(RUNNING):
        job = coordinator.queue.claim_next(f"build{n % server_count:04d}", by=admin)
        assert job is not None, "nothing to claim"
        running.append(job)
    with store.engine.connect() as conn:
        failed = conn.execute(
            select(jobs.c.id).where(jobs.c.status == "failed").order_by(jobs.c.id.desc()).limit(5)
        ).scalars()
        failed_ids = list(failed)
    for n in range(BLOCKED):
        coordinator.queue.submit(
            branch_names[n % bm.BRANCHES],
            f"{2 * 10**12 + n:040x}",
            depends_on=[failed_ids[n % len(failed_ids)]],
            by=admin,
        )
    log_job = running[0].id
    written = 0
    while written < LOG_LINES:
        batch = [
            {
                "kind": "output",
                "level": "error" if n % 997 == 0 else "info",
                "message": (
                    f"\x1b[32mok\x1b[0m compiling src/module_{n % 400:03d}/unit_{n}.c"
                    f" -O2 -Wall ({n * 3 % 1000} ms)"
                ),
            }
            for n in range(written, min(LOG_LINES, written + LOG_BATCH))
        ]
        coordinator.logs.append(log_job, batch, by=admin)
        written += len(batch)
    sent_at = clock.now().timestamp()
    with store.engine.begin() as conn:  # in bulk, as the fill writes the history
        conn.execute(
            insert(messages),
            [
                {
                    "sender": f"build{n % server_count:04d}",
                    "recipient": BROADCAST if n % 3 else f"build{(n + 1) % server_count:04d}",
                    "type": ("info", "warning", "error", "request")[n % 4],
                    "subject": f"disk cleanup round {n}",
                    "body": f"freed {n * 7 % 900} MiB in /var/cache/build ({n})",
                    "created_at": sent_at - (MESSAGES - n) * 60.0,
                    "ack_required": n % 10 == 0,
                }
                for n in range(MESSAGES)
            ],
        )
    clock.advance(60.0)
    now = clock.now().timestamp()
    with store.engine.begin() as conn:
        conn.execute(update(servers).values(last_heartbeat_at=now))
        silent = [f"build{n:04d}" for n in range(server_count - SILENT_SERVERS, server_count)]
        conn.execute(
            update(servers).where(servers.c.name.in_(silent)).values(last_heartbeat_at=now - 600)
        )
        conn.execute(insert(fleet_samples), trend_rows(now, server_count))
    coordinator.monitor.step()
    open_alerts = len(store.list_alerts(limit=10_000))
    log(
        f"added {QUEUED} queued, {RUNNING} running, {BLOCKED} blocked jobs, {MESSAGES} messages,"
        f" {LOG_LINES:,} log lines on job {log_job}, {open_alerts} open alerts, trend samples"
    )
    entries = coordinator.logs.entries(log_job, limit=LOG_BATCH, by=admin)
    return {"log_job": log_job, "log_middle": entries[-1].id, "open_alerts": open_alerts}


def trend_rows(now: float, server_count: int) -> list[dict[str, Any]]:
    """A day of minute samples and 30 days of hour samples, as the trend service keeps them."""
    rows = []
    for period, step, count in (("minute", 60, 1440), ("hour", 3600, 720)):
        last = (now // step - 1) * step
        for n in range(count):
            at = last - n * step
            wave = (n % 24) / 24
            passed = int((40 if period == "hour" else 1) * (1 + wave))
            rows.append(
                {
                    "period": period,
                    "at": at,
                    "servers_online": server_count - 3 - (n % 7),
                    "servers_total": server_count,
                    "queued": 150 + 100 * wave,
                    "running": 40 + 10 * wave,
                    "blocked": 20.0,
                    "passed": passed,
                    "failed": passed // 10,
                    "duration_sum": passed * (300 + 60 * wave),
                }
            )
    return rows


class ServerTimer:
    """ASGI wrapper: milliseconds from a request's arrival to its last body byte."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.last_ms = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()

        async def timed_send(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.last_ms = (time.perf_counter() - began) * 1000

        await self.app(scope, receive, timed_send)


def dashboard_paths(log_job: int, log_middle: int) -> list[str]:
    """Every page and fragment, with the heavier variants of the paged and filtered ones."""
    paths = list(NAVIGATION)
    paths.append(f"/jobs/{log_job}")
    paths += [f"/ui/panel/{name}" for name in PANELS]
    paths += [
        "/ui/panel/servers?page=10",
        "/ui/panel/servers?q=build09&status=online",
        "/ui/panel/messages?page=10",
        "/ui/panel/trends?window=30d",
        f"/ui/jobs/{log_job}/panel",
        f"/ui/jobs/{log_job}/log?after={log_middle}",
    ]
    return paths


def time_pages(
    url: str, server_count: int, job_count: int, rounds: int, budget: float
) -> dict[str, Any]:
    """Fill, populate, then time every path through the app in process: all paths in turn,
    ``rounds`` times, or fewer (at least MIN_ROUNDS) once the rounds took ``budget`` s."""
    store = Store.open(url)
    try:
        began = time.perf_counter()
        bm.fill(store, server_count, job_count)
        log(
            f"filled {server_count:,} servers and {job_count:,} jobs in "
            f"{time.perf_counter() - began:.1f} s"
        )
        clock = FakeClock(datetime.fromtimestamp(START, UTC))
        coordinator = Coordinator(store, Settings(), clock)
        coordinator.tokens.install_admin_token(ADMIN)
        began = time.perf_counter()
        extra = populate(coordinator, clock, server_count)
        log(f"  (in {time.perf_counter() - began:.1f} s)")
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        # As `serve` does once started (cli/serve.py): what is loaded is out of the
        # collector's sight, and collections are rarer.
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        timer = ServerTimer(create_app(coordinator))
        client = TestClient(timer)
        login = client.post("/login", data={"token": ADMIN}, follow_redirects=False)
        if login.status_code != 303 or SESSION_COOKIE not in client.cookies:
            raise RuntimeError(f"POST /login answered {login.status_code}: {login.text[:200]}")
        bearer = {"Authorization": f"Bearer {ADMIN}"}
        paths = dashboard_paths(extra["log_job"], extra["log_middle"])
        sizes: dict[str, int] = {}
        times: dict[str, list[float]] = {path: [] for path in [HEALTH, JOBS_API, *paths]}
        trips: dict[str, list[float]] = {path: [] for path in times}

        def fetch(path: str) -> int:
            headers = bearer if path.startswith("/api/") else {}
            sent = time.perf_counter()
            response = client.get(path, headers=headers, follow_redirects=False)
            trips[path].append((time.perf_counter() - sent) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"GET {path} answered {response.status_code}")
            return len(response.content)

        began = time.perf_counter()
        for path in times:  # warm-up: templates compiled, caches filled
            sizes[path] = fetch(path)
            trips[path].clear()
        log(f"one warm-up request per path: {time.perf_counter() - began:.1f} s")
        began = time.perf_counter()
        done = 0
        while done < rounds and (done < MIN_ROUNDS or time.perf_counter() - began < budget):
            for path in times:
                fetch(path)
                times[path].append(timer.last_ms)
            done += 1
        if done < rounds:
            log(f"(the rounds' budget of {budget:g} s was spent after {done} of {rounds} rounds)")
        health = summary(times[HEALTH])
        jobs_api = summary(times[JOBS_API])
        figures: dict[str, Any] = {}
        for path in times:
            each = summary(times[path])
            each["round_trip_p95_ms"] = summary(trips[path])["p95_ms"]
            each["bytes"] = sizes[path]
            each["p95_over_health"] = round(each["p95_ms"] / max(health["p95_ms"], 1e-3), 1)
            each["p95_over_jobs_api"] = round(each["p95_ms"] / max(jobs_api["p95_ms"], 1e-3), 2)
            figures[path] = each
        log(f"server time over {done} rounds (ms), p95 against the baselines' p95:")
        log(f"  {'path':<44} {'p50':>7} {'p95':>7} {'max':>7} {'bytes':>9}  /health  /jobs API")
        for path, each in figures.items():
            log(
                f"  {path:<44} {each['p50_ms']:>7.1f} {each['p95_ms']:>7.1f} "
                f"{each['max_ms']:>7.1f} {each['bytes']:>9,}  {each['p95_over_health']:>7}"
                f"  {each['p95_over_jobs_api']:>8}"
            )
        return {
            **extra,
            "rounds": done,
            "rounds_wanted": rounds,
            "budget_seconds": budget,
            "baselines": {HEALTH: health, JOBS_API: jobs_api},
            "paths": {path: figures[path] for path in paths},
        }
    finally:
        store.close()


# -- 2 and 3. a serve process and stream clients ------------------------------------------------


@dataclass
class Stream:
    """One open /ui/stream connection; a task reads it line by line."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    initial: asyncio.Event = field(default_factory=asyncio.Event)
    arrivals: list[float] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


class Hub:
    """The stream clients of one measurement, and when each read ``event: queue``."""

    def __init__(self, host: str, port: int, cookie: str) -> None:
        self.host = host
        self.port = port
        self.cookie = cookie
        self.streams: list[Stream] = []
        self.refused: dict[int, int] = {}
        self.round_open = False
        self.arrived = asyncio.Event()
        self.wanted = 0

    async def open(self, count: int) -> int:
        """Open ``count`` streams (in batches of 50); return how many the server accepted."""
        accepted = 0
        for start in range(0, count, 50):
            batch = [self._open_one() for _ in range(min(50, count - start))]
            for stream in await asyncio.gather(*batch):
                if stream is not None:
                    accepted += 1
                    self.streams.append(stream)
        fresh = self.streams[len(self.streams) - accepted :]
        await asyncio.wait_for(
            asyncio.gather(*(stream.initial.wait() for stream in fresh)), CONNECT_TIMEOUT
        )
        return accepted

    async def _open_one(self) -> Stream | None:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), CONNECT_TIMEOUT
        )
        writer.write(
            (
                f"GET /ui/stream HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Cookie: {SESSION_COOKIE}={self.cookie}\r\nAccept: text/event-stream\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        status, _headers = await asyncio.wait_for(_read_head(reader), CONNECT_TIMEOUT)
        if status != 200:
            self.refused[status] = self.refused.get(status, 0) + 1
            writer.close()
            return None
        stream = Stream(reader, writer)
        stream.task = asyncio.create_task(self._pump(stream))
        return stream

    async def _pump(self, stream: Stream) -> None:
        events = 0
        while line := await stream.reader.readline():
            if line.startswith(b"event: "):
                events += 1
                if stream.initial.is_set() and line == b"event: queue\n" and self.round_open:
                    stream.arrivals.append(time.perf_counter())
                    self.wanted -= 1
                    if self.wanted <= 0:
                        self.arrived.set()
            elif line == b"\r\n" and events and not stream.initial.is_set():
                # The end of the first chunk with events: the stream starts by naming every
                # panel it may name, all in one chunk.
                stream.initial.set()

    async def deliver(self, submit: Callable[[], Awaitable[float]]) -> tuple[list[float], float]:
        """One round: queue a job; milliseconds until each stream read ``event: queue``
        (missing streams: none), and the POST's own milliseconds."""
        for stream in self.streams:
            stream.arrivals.clear()
        self.wanted = len(self.streams)
        self.arrived.clear()
        self.round_open = True
        began = time.perf_counter()
        post_ms = await submit()
        with suppress(TimeoutError):
            await asyncio.wait_for(self.arrived.wait(), DELIVERY_TIMEOUT)
        self.round_open = False
        return [
            (stream.arrivals[0] - began) * 1000 for stream in self.streams if stream.arrivals
        ], post_ms

    async def close(self) -> None:
        """Close every stream."""
        for stream in self.streams:
            stream.writer.close()
            if stream.task is not None:
                stream.task.cancel()
        for stream in self.streams:
            if stream.task is not None:
                with suppress(asyncio.CancelledError, ConnectionError):
                    await stream.task
            with suppress(ConnectionError):
                await stream.writer.wait_closed()
        self.streams.clear()


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers


class Plain:
    """A kept-alive HTTP/1.1 connection for plain requests."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self.reader = reader
        self.writer = writer
        self.host = host

    @classmethod
    async def connect(cls, host: str, port: int) -> Plain:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), CONNECT_TIMEOUT
        )
        return cls(reader, writer, f"{host}:{port}")

    async def request(
        self, method: str, path: str, token: str, body: dict[str, Any] | None = None
    ) -> tuple[int, bytes]:
        payload = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: {len(payload)}\r\n"
        )
        if body is not None:
            head += "Content-Type: application/json\r\n"
        self.writer.write(head.encode() + b"\r\n" + payload)
        await self.writer.drain()
        status, headers = await asyncio.wait_for(_read_head(self.reader), DELIVERY_TIMEOUT)
        if "content-length" not in headers:
            raise RuntimeError(f"{method} {path}: no Content-Length in the answer")
        content = await self.reader.readexactly(int(headers["content-length"]))
        return status, content

    async def close(self) -> None:
        self.writer.close()
        with suppress(ConnectionError):
            await self.writer.wait_closed()


async def timed_get(connection: Plain, token: str, sent: float) -> float:
    """Milliseconds from ``sent`` until a plain GET /api/v1/health is answered."""
    answer, _ = await connection.request("GET", HEALTH, token)
    if answer != 200:
        raise RuntimeError(f"GET {HEALTH} answered {answer}")
    return (time.perf_counter() - sent) * 1000


def process_rss_kib(pid: int) -> int:
    """VmRSS of a process and its live children (``serve --workers``), KiB."""
    total = 0
    children = [path.with_name("status") for path in bq._children_stats(pid)]
    for status in [Path(f"/proc/{pid}/status"), *children]:
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


async def idle_window(pid: int, seconds: float, streams: int) -> dict[str, Any]:
    """The process's RSS at the end of an idle window and its CPU use over it."""
    await asyncio.sleep(0.5)  # let the opening settle
    cpu_before = bq._cpu_seconds(pid)
    began = time.perf_counter()
    await asyncio.sleep(seconds)
    cpu = bq._cpu_seconds(pid) - cpu_before
    wall = time.perf_counter() - began
    figures = {
        "streams": streams,
        "rss_kib": process_rss_kib(pid),
        "cpu_percent": round(100 * cpu / wall, 2),
    }
    log(
        f"  idle with {streams:>3} streams: RSS {figures['rss_kib'] / 1024:.1f} MiB, "
        f"CPU {figures['cpu_percent']:.2f} % of a core"
    )
    return figures


def per_client(low: dict[str, Any], high: dict[str, Any]) -> dict[str, float]:
    """What each stream beyond ``low``'s adds, from two idle windows."""
    count = high["streams"] - low["streams"]
    return {
        "kib_per_stream": round((high["rss_kib"] - low["rss_kib"]) / count, 1),
        "cpu_percent_per_100_streams": round(
            (high["cpu_percent"] - low["cpu_percent"]) * 100 / count, 2
        ),
    }


def login_cookie(base_url: str, token: str) -> str:
    """The session cookie's value after POST /login with an operator token."""
    response = httpx.post(f"{base_url}/login", data={"token": token}, follow_redirects=False)
    cookie = response.cookies.get(SESSION_COOKIE)
    if response.status_code != 303 or not cookie:
        raise RuntimeError(f"POST /login answered {response.status_code}")
    return cookie


@contextmanager
def serve(url: str, home: Path, workers: int = 1) -> Iterator[tuple[str, int, int, str]]:
    """A ``buildcoord serve`` on a free loopback port; yield (host, port, pid, admin token)."""
    with bq.serve_process(url, home, plain=False, workers=workers) as (base_url, token, pid):
        host, port = base_url.removeprefix("http://").split(":")
        yield host, int(port), pid, token


async def fan_out(
    host: str, port: int, pid: int, token: str, rounds: int, window: float, quick: bool
) -> dict[str, Any]:
    """Idle windows at 0, 1 and 100 streams; delivery rounds to the 100; then (not quick) an
    idle window at 500 streams, and past the limit."""
    cookie = login_cookie(f"http://{host}:{port}", token)
    control = await Plain.connect(host, port)
    status, content = await control.request(
        "POST",
        "/api/v1/branches",
        token,
        {"name": "main", "repo": "/nonexistent/bench-repo", "command": "make", "auto_build": False},
    )
    if status != 201:
        raise RuntimeError(f"adding a branch answered {status}: {content[:200]!r}")
    submitted = 0

    async def submit() -> float:
        nonlocal submitted
        submitted += 1
        sent = time.perf_counter()
        answer, text = await control.request(
            "POST", "/api/v1/jobs", token, {"branch": "main", "commit": f"{submitted:040x}"}
        )
        if answer != 201:
            raise RuntimeError(f"POST /api/v1/jobs answered {answer}: {text[:200]!r}")
        return (time.perf_counter() - sent) * 1000

    await submit()  # the submit path warmed up before any window
    hub = Hub(host, port, cookie)
    idle: dict[str, Any] = {"window_seconds": window, "windows": []}
    log(f"idle windows of {window:g} s on serve pid {pid}:")
    idle["windows"].append(await idle_window(pid, window, 0))
    await hub.open(1)
    idle["windows"].append(await idle_window(pid, window, 1))
    opened = await hub.open(STREAM_CLIENTS - 1) + 1
    if opened != STREAM_CLIENTS:
        raise RuntimeError(f"only {opened} of {STREAM_CLIENTS} streams were accepted")
    idle["windows"].append(await idle_window(pid, window, STREAM_CLIENTS))

    # Baselines: one plain GET at a time, then 100 at once.
    single = []
    for _ in range(rounds * 5):
        sent = time.perf_counter()
        answer, _ = await control.request("GET", HEALTH, token)
        single.append((time.perf_counter() - sent) * 1000)
        assert answer == 200
    plain = [await Plain.connect(host, port) for _ in range(STREAM_CLIENTS)]
    await asyncio.gather(*(each.request("GET", HEALTH, token) for each in plain))
    concurrent: list[float] = []
    for _ in range(rounds):
        sent = time.perf_counter()
        concurrent += await asyncio.gather(*(timed_get(each, token, sent) for each in plain))
        await asyncio.sleep(0.2)
    for each in plain:
        await each.close()

    deliveries: list[float] = []
    posts: list[float] = []
    missed = 0
    for _ in range(rounds):
        arrived, post_ms = await hub.deliver(submit)
        deliveries += arrived
        posts.append(post_ms)
        missed += STREAM_CLIENTS - len(arrived)
        await asyncio.sleep(0.3)  # nothing of this round left in flight
    delivery = summary(deliveries) if deliveries else {}
    plain_single = summary(single)
    plain_concurrent = summary(concurrent)
    sse = {
        "clients": STREAM_CLIENTS,
        "rounds": rounds,
        "delivery": {**delivery, "deliveries": len(deliveries), "missed": missed},
        "post": summary(posts),
        "plain_get": plain_single,
        "plain_get_100_at_once": plain_concurrent,
        "p99_over_100_gets_p99": round(
            delivery.get("p99_ms", float("nan")) / plain_concurrent["p99_ms"], 2
        ),
        "p50_over_plain_get_p50": round(
            delivery.get("p50_ms", float("nan")) / plain_single["p50_ms"], 1
        ),
    }
    log(
        f"event to {STREAM_CLIENTS} streams, {rounds} rounds: p50 {delivery.get('p50_ms')} ms, "
        f"p99 {delivery.get('p99_ms')} ms, max {delivery.get('max_ms')} ms, {missed} missed "
        f"(the POST itself: p50 {sse['post']['p50_ms']} ms)"
    )
    log(
        f"  baselines: one plain GET p50 {plain_single['p50_ms']} ms; 100 GETs at once p99 "
        f"{plain_concurrent['p99_ms']} ms; delivery p99 / theirs {sse['p99_over_100_gets_p99']}"
    )

    if not quick:
        await hub.open(MANY_STREAMS - len(hub.streams))
        idle["windows"].append(await idle_window(pid, window, len(hub.streams)))
        idle["past_limit"] = await past_limit(hub)
    windows = idle["windows"]
    idle["feed_reader"] = {  # the first stream starts the process's change-feed reader
        "kib": windows[1]["rss_kib"] - windows[0]["rss_kib"],
        "cpu_percent": round(windows[1]["cpu_percent"] - windows[0]["cpu_percent"], 2),
    }
    idle["per_stream"] = per_client(windows[1], windows[-1])
    await hub.close()
    await control.close()
    return {"sse": sse, "idle": idle}


async def past_limit(hub: Hub) -> dict[str, Any]:
    """Fill the process up to MAX_STREAMS, then try a few more: what do they get?"""
    began = time.perf_counter()
    await hub.open(MAX_STREAMS - len(hub.streams))
    filled = len(hub.streams)
    seconds = time.perf_counter() - began
    hub.refused.clear()
    tried = 5
    accepted = await hub.open(tried)
    refused = {str(code): count for code, count in hub.refused.items()}
    log(
        f"  {filled} streams open (limit {MAX_STREAMS}; the last {filled - MANY_STREAMS} opened"
        f" in {seconds:.1f} s), {tried} more: {accepted} accepted, refused {refused or 'none'}"
    )
    return {
        "limit": MAX_STREAMS,
        "open": filled,
        "tried": tried,
        "accepted": accepted,
        "refused": refused,
    }


def run_streams(
    backend: Any, workdir: Path, rounds: int, window: float, quick: bool
) -> dict[str, Any]:
    """Parts 2 and 3, against one ``buildcoord serve`` process on a fresh database."""
    with backend.database("serve") as url, serve(url, workdir / "serve") as started:
        host, port, pid, token = started
        return asyncio.run(fan_out(host, port, pid, token, rounds, window, quick))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (< 1 min)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default=bm.PG_DEFAULT)
    parser.add_argument("--servers", type=int, default=None, help="default 1,000 (quick 100)")
    parser.add_argument("--jobs", type=int, default=None, help="default 100,000 (quick 20,000)")
    parser.add_argument("--rounds", type=int, default=None, help="per path, default 30 (quick 3)")
    parser.add_argument(
        "--budget", type=float, default=None, help="seconds for the rounds, default 900 (quick 15)"
    )
    args = parser.parse_args()
    server_count = args.servers or (100 if args.quick else 1_000)
    job_count = args.jobs or (20_000 if args.quick else 100_000)
    rounds = args.rounds or (3 if args.quick else 30)
    budget = args.budget or (15.0 if args.quick else 900.0)
    sse_rounds = 5 if args.quick else 20
    window = 5.0 if args.quick else 10.0
    if server_count < RUNNING or job_count < 100 or rounds < 1:
        parser.error(f"--servers at least {RUNNING}, --jobs at least 100, --rounds at least 1")
    workdir = Path(tempfile.mkdtemp(prefix="buildcoord-dashboard-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, True)
        pg_server = None
        if args.backend == "postgresql":
            pg_server = bq._plain_pg_url(args.pg_url)
            bq._check_pg(pg_server)
        machine = bq.machine_info(pg_server)
        backend = bq.Backend(args.backend, workdir, pg_server)
        log(
            f"dashboard benchmark on {args.backend}: {server_count:,} servers, {job_count:,} "
            f"jobs, {rounds} rounds per path; load average {machine['load_average_at_start']}"
        )
        with backend.database("pages") as url:
            pages = time_pages(url, server_count, job_count, rounds, budget)
        streams = run_streams(backend, workdir, sse_rounds, window, args.quick)
    worst_path, worst = max(pages["paths"].items(), key=lambda item: item[1]["p95_ms"])
    overview_bytes = pages["paths"]["/"]["bytes"]
    delivery_p99 = streams["sse"]["delivery"].get("p99_ms", float("inf"))
    missed = streams["sse"]["delivery"]["missed"]
    result = {
        "backend": args.backend,
        "quick": args.quick,
        "servers": server_count,
        "jobs": job_count,
        "pages": pages,
        **streams,
        "worst_page": {"path": worst_path, "p95_ms": worst["p95_ms"]},
        "goal_page_p95_ms": GOAL_PAGE_P95_MS,
        "page_goal_met": worst["p95_ms"] < GOAL_PAGE_P95_MS,
        "overview_bytes": overview_bytes,
        "goal_overview_bytes": GOAL_OVERVIEW_BYTES,
        "overview_goal_met": overview_bytes < GOAL_OVERVIEW_BYTES,
        "goal_delivery_p99_ms": GOAL_DELIVERY_P99_MS,
        "delivery_goal_met": delivery_p99 < GOAL_DELIVERY_P99_MS and missed == 0,
        "machine": machine,
        "load_average_at_end": [round(value, 2) for value in os.getloadavg()],
    }
    verdict = {True: "met", False: "MISSED"}
    log(
        f"worst page p95: {worst_path} {worst['p95_ms']} ms (goal under {GOAL_PAGE_P95_MS:g}):"
        f" {verdict[result['page_goal_met']]}"
    )
    log(
        f"overview page: {overview_bytes:,} bytes (goal under {GOAL_OVERVIEW_BYTES:,}):"
        f" {verdict[result['overview_goal_met']]}"
    )
    log(
        f"event to {STREAM_CLIENTS} streams p99: {delivery_p99} ms, {missed} missed "
        f"(goal under {GOAL_DELIVERY_P99_MS:g} ms): {verdict[result['delivery_goal_met']]}"
    )
    per_stream = streams["idle"]["per_stream"]
    reader = streams["idle"]["feed_reader"]
    log(
        f"an idle stream: {per_stream['kib_per_stream']} KiB, "
        f"{per_stream['cpu_percent_per_100_streams']} % of a core per 100; the first one also "
        f"starts the feed reader: {reader['kib']} KiB, {reader['cpu_percent']} % of a core"
    )
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
