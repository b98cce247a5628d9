"""Fleet benchmark: what N idle agents cost one coordinator, with jobs flowing beside them.

A real ``buildcoord serve`` runs on a free loopback port (fresh database, temporary
BUILDCOORD_HOME, an admin token). N servers are registered through the API, each with its own
agent token; then N simulated agents run in one asyncio event loop per load-generator process
and do what ``buildcoord agent`` does, request for request:

* at start: a heartbeat, the branch list (worktree pruning), the session stream, the orders;
* while idle: the session stream held open (``hello``, ``work``, ``cancel``, ``orders`` events
  and a keepalive comment every few seconds; reconnecting after 0.2, 0.5, 1 s when it drops), a
  heartbeat with system metrics every heartbeat interval, a claim when the session tells of
  work (and at the safety poll, 30 s with jitter; every poll interval while the session is
  down), the orders when the session says there are some (and every ten minutes anyway);
* on a job: a build token, the job's log, the completion with its fencing token, the branch
  list again, at once (no build runs).

A job client submits ``--jobs-per-second`` jobs (admin token) so that jobs flow; queue-to-claim
latency is measured from the submit's answer to the claim's answer, per job.

The baseline is measured in the same run: first a window with no agent at all, only the job
client and a GET /api/v1/health probe (coordinator CPU and RSS, health latency), then one
window per N. Every request the agents send is recorded from ``buildcoord.client.Client``
itself (a transport that records and refuses), and the timings come from the agent's own
defaults: see the PROTOCOL block below, the one place to keep in step with the agent.

Several coordinators (``--coordinators K``, PostgreSQL only): K ``buildcoord serve`` processes
(each with ``--workers W``) share one database, each on a free loopback port of its own; the
servers are registered once (through coordinator 0), agent i talks to coordinator i % K for
everything (heartbeats, session, claims, completions), and the job client submits to
coordinator 0: a job claimed through another coordinator was woken there by the change feed.
Each window reports heartbeat latencies and queue-to-claim per coordinator, each coordinator's
CPU and RSS and their sum, the load generators' and PostgreSQL's CPU (the whole server's, when
its processes show in /proc), and what an agent costs: coordinator CPU-ms per heartbeat
answered and per agent-second, whence how many agents a core of coordinator carries. Those
include everything the coordinators did in the window, jobs too: ``--jobs-per-second 0.1``
gives an idle fleet's cost.

Usage::

    .venv/bin/python bench/fleet.py [--quick] [--json] [--agents 100,1000,2000] [--workers N]
        [--backend sqlite|postgresql] [--pg-url URL] [--duration SECONDS]
        [--jobs-per-second 20] [--client raw|httpx] [--generators K] [--coordinators K]

PostgreSQL: ``--pg-url`` or ``$BUILDCOORD_BENCH_PG_URL`` (default
postgresql://postgres@127.0.0.1:5432/postgres) names a server; a fresh database is created on
it for the run and dropped afterwards. All traffic stays on loopback; every loop is bounded;
every process started here is stopped by its pid.
"""

# ruff: noqa: E402
from __future__ import annotations

import sys
from pathlib import Path

# bench/queue.py is imported below; keep this folder off sys.path so that ``import queue``
# (concurrent.futures, multiprocessing, httpx) finds the standard library.
_BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _BENCH_DIR]

import argparse
import asyncio
import contextlib
import importlib.util
import json
import math
import multiprocessing
import os
import random
import re
import resource
import secrets
import shutil
import ssl
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection as Pipe
from typing import Any, Protocol

import httpx
import psycopg

from buildcoord import __version__
from buildcoord.agent import joblog as agent_joblog
from buildcoord.agent import orders as agent_orders
from buildcoord.agent import session as agent_session
from buildcoord.agent.metrics import health_problems, prime_cpu_counter, system_metrics
from buildcoord.agent.options import AgentOptions
from buildcoord.client import Client, transport
from buildcoord.client.transport import Transport
from buildcoord.web.routes import agents as agent_routes

_SPEC = importlib.util.spec_from_file_location("bench_queue", _BENCH_DIR / "queue.py")
assert _SPEC is not None
assert _SPEC.loader is not None
bq = importlib.util.module_from_spec(_SPEC)
sys.modules["bench_queue"] = bq
_SPEC.loader.exec_module(bq)

# == PROTOCOL: what an agent sends, and when. Keep in step with src/buildcoord/agent/. =========
#
# Timings: the agent's own defaults (AgentOptions, the modules' constants), imported.
_DEFAULTS = AgentOptions(name="bench", workdir=Path("."))
HEARTBEAT_INTERVAL = _DEFAULTS.heartbeat_interval  # agent.py Agent._heartbeat_loop
POLL_INTERVAL = _DEFAULTS.poll_interval  # agent.py Agent._idle, without a session
SAFETY_POLL_INTERVAL = _DEFAULTS.safety_poll_interval  # agent.py Agent._idle, with a session
SAFETY_POLL_JITTER = (0.8, 1.2)  # agent.py Agent._idle: random.uniform(0.8, 1.2)
LEASE_SECONDS = _DEFAULTS.lease_seconds  # job.py / lease.py: renew every lease/3
RENEW_INTERVAL = LEASE_SECONDS / 3  # lease.py LeaseKeeper.interval
ORDERS_POLL_SECONDS = agent_orders.POLL_SECONDS  # orders.py OrderRunner.poll_seconds, no session
ORDERS_SESSION_POLL_SECONDS = agent_orders.SESSION_POLL_SECONDS  # the same, with a session
RECONNECT_DELAYS = agent_session.RECONNECT_DELAYS  # session.py SessionKeeper._loop
KEEPALIVE_SECONDS = agent_routes.KEEPALIVE_SECONDS  # web/routes/agents.py session stream
REQUEST_TIMEOUT = float(  # client/transport.py Transport(timeout=...): the agent's Client
    Transport.__init__.__kwdefaults__["timeout"]  # type: ignore[index]
)
SESSION_READ_TIMEOUT = 15.0  # client/agents.py session_events: httpx.Timeout(10.0, read=15.0)
KEEPALIVE_EXPIRY = transport.KEEPALIVE_EXPIRY  # client/transport.py: the agent's pool
BUILD_SECONDS = 0.0  # no build runs; > 0 would hold each job, renewing its lease meanwhile
assert agent_joblog.MAX_REQUEST >= 4  # the job's events below go in one log request

# Requests: recorded from buildcoord.client.Client, the agent's own client, with placeholders
# put back per agent and per job (see record_protocol).
SERVER = "fleet-placeholder-server"
JOB_ID = 987_654_321_001
FENCING = 987_654_321_002
ORDER_ID = 987_654_321_003
BRANCH = "fleet"
ARTIFACT_ROOT = "/nonexistent/fleet-artifacts"


def _job_events() -> list[dict[str, Any]]:
    """The log entries job.py JobRun writes for a build that runs and succeeds at once."""
    now = time.time()
    events = [
        (f"{SERVER} took job {JOB_ID} (attempt 1 of 3): {BRANCH} at {'0' * 40}", "info"),
        (f"running the build command of {BRANCH} in /nonexistent/worktree", "info"),
        ("artifact manifest: 0 files, 0 bytes", "info"),
        ("build succeeded", "success"),
    ]
    return [
        {"at": now, "kind": "event", "level": level, "message": message}
        for message, level in events
    ]


def _agent_calls(metrics: Any) -> dict[str, Callable[[Client], object]]:
    """Each request of the agent, as the agent's code makes it (file:function in comments)."""
    return {
        # agent.py Agent._send_heartbeat (labels only with --labels: None by default)
        "heartbeat": lambda c: c.heartbeat(
            SERVER, metrics, agent_version=__version__, labels=_DEFAULTS.labels
        ),
        # agent.py Agent.step -> client/agents.py claim_assignment
        "claim": lambda c: c.claim_assignment(SERVER),
        # session.py SessionKeeper._listen -> client/agents.py session_events
        "session": lambda c: next(iter(c.session_events(SERVER))),
        # agent.py Agent.prune_worktrees (at start and after each job)
        "branches": lambda c: c.list_branches(),
        # orders.py OrderRunner.run_pending
        "orders": lambda c: c.pending_orders(SERVER),
        # job.py JobRun._build_token
        "build_token": lambda c: c.build_token(JOB_ID, server=SERVER, fencing_token=FENCING),
        # orders.py OrderRunner.run_pending -> client/orders.py report_order (the body is
        # rebuilt per order with the recorded keys: see LoadGenerator.orders)
        "report_order": lambda c: c.report_order(SERVER, ORDER_ID, status="done", result={}),
        # joblog.py JobLog._ship_loop
        "log": lambda c: c.append_log(JOB_ID, _job_events(), server=SERVER, fencing_token=FENCING),
        # lease.py LeaseKeeper._loop (only with BUILD_SECONDS >= RENEW_INTERVAL)
        "renew": lambda c: c.renew_job(JOB_ID, server=SERVER, fencing_token=FENCING),
        # job.py JobRun._report
        "complete": lambda c: c.complete_job(
            JOB_ID,
            status="succeeded",
            exit_code=0,
            duration=0.0,
            reason=None,
            server=SERVER,
            fencing_token=FENCING,
            manifest=[],
            artifact_root=ARTIFACT_ROOT,
        ),
        # the job client (buildcoord queue add) and the probe
        "submit": lambda c: c.submit_job(BRANCH, "0" * 40),
        "health": lambda c: c.health(),
    }


# == end of PROTOCOL ============================================================================

SERVER_PREFIX = "fleet"
HEALTH_INTERVAL = 0.1  # the probe's pause between health requests
SUBMIT_IN_FLIGHT = 64  # the job client gives up a submit when this many are unanswered
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
GENERATOR_READY_TIMEOUT = 60.0
REGISTER_CONCURRENCY = 16
GENERATOR_SATURATED = 80.0  # % of a core: above it the load generator may be the bottleneck
GENERATOR_LAG_MS = 100.0  # a generator loop this late (p99) delays the agents' requests


@dataclass(frozen=True)
class Sizes:
    """How long each part runs."""

    duration: float  # the measuring window
    warmup: float  # after the last agent started, before the window
    drain: float  # after the window: answers still awaited
    agents_per_generator: int


QUICK = Sizes(duration=8.0, warmup=2.0, drain=3.0, agents_per_generator=1000)
FULL = Sizes(duration=30.0, warmup=10.0, drain=10.0, agents_per_generator=1000)


def log(message: str) -> None:
    """Progress goes to stderr: stdout carries only the result."""
    print(message, file=sys.stderr, flush=True)


# -- recording the agent's requests ------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One request as the agent's client sends it, placeholders included."""

    method: str
    path: str  # /api/v1/...
    body: bytes
    headers: tuple[tuple[str, str], ...]  # what httpx sends beside host, length, authorization

    def render(
        self, server: str, job_id: int = JOB_ID, fencing: int = FENCING, order_id: int = ORDER_ID
    ) -> Request:
        """The request with the placeholders replaced."""
        swaps = (
            (SERVER, server),
            (str(JOB_ID), str(job_id)),
            (str(FENCING), str(fencing)),
            (str(ORDER_ID), str(order_id)),
        )
        path, body = self.path, self.body
        for old, new in swaps:
            path = path.replace(old, new)
            body = body.replace(old.encode(), new.encode())
        return Request(self.method, path, body, self.headers)


class SessionLink:
    """What the agent's step loop knows of its session (session.py SessionKeeper.connected and
    agent.py Agent._work): whether it is open, whether work was told, and a drop to wake on."""

    def __init__(self) -> None:
        self.connected = asyncio.Event()
        self.work = asyncio.Event()
        self.lost = asyncio.Event()  # set (and replaced) each time the session drops

    async def dropped(self) -> None:
        await self.lost.wait()


class _Recorded(Exception):
    def __init__(self, request: httpx.Request) -> None:
        super().__init__(request.url.path)
        self.request = request


def record_protocol() -> dict[str, Request]:
    """Call each of the agent's client methods on a transport that records and refuses."""

    def refuse(request: httpx.Request) -> httpx.Response:
        request.read()
        raise _Recorded(request)

    prime_cpu_counter()
    # As Agent._send_heartbeat: the skew from the last answer's Date (about 0 on one machine)
    # and what the agent finds wrong with itself (nothing, here).
    workdir = Path(tempfile.gettempdir())
    metrics = replace(
        system_metrics(workdir), clock_skew_seconds=0.0, problems=health_problems(workdir)
    )
    skip = {"host", "content-length", "authorization"}
    recorded: dict[str, Request] = {}
    with Client("http://127.0.0.1:1", "token", transport=httpx.MockTransport(refuse)) as client:
        for name, call in _agent_calls(metrics).items():
            try:
                call(client)
            except _Recorded as caught:
                request = caught.request
                headers = tuple(
                    (key, value) for key, value in request.headers.items() if key not in skip
                )
                recorded[name] = Request(
                    request.method, request.url.raw_path.decode(), request.content, headers
                )
            else:
                raise RuntimeError(f"the client sent no request for {name}")
    return recorded


# -- HTTP for one simulated agent ---------------------------------------------------------------


class AgentHTTP(Protocol):
    """What a simulated agent needs of its HTTP client (and which coordinator it talks to)."""

    coordinator: int  # the index of its coordinator (--coordinators)

    async def request(self, request: Request) -> tuple[int, bytes]:
        """Send one request; its status and body (raises on a transport failure)."""
        ...

    def stream_lines(self, request: Request) -> AsyncIterator[str]:
        """Open an event stream; yield its lines until it ends (raises when it drops)."""
        ...

    async def close(self) -> None:
        """Close every connection."""
        ...


class HTTPStatusError(Exception):
    """A stream was refused (the status is its message)."""


class StaleConnection(ConnectionError):
    """A kept-alive connection broke on reuse, before any answer (the server had closed it)."""

    def __init__(self, idle: float) -> None:
        super().__init__(f"reused after {idle:.1f} s idle")
        self.idle = idle


class _Conn:
    __slots__ = ("idle_since", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0


class RawHTTP:
    """HTTP/1.1 over asyncio streams: a keep-alive pool per agent, as httpx keeps one.

    Requests go out as bytes built once per agent (or per job); answers are read with one
    ``readuntil`` for the head and one ``readexactly`` for the body, and are not validated.
    """

    def __init__(self, port: int, token: str | None, coordinator: int = 0) -> None:
        self.port = port
        self.coordinator = coordinator
        self.auth = f"authorization: Bearer {token}\r\n" if token else ""
        self.idle: list[_Conn] = []
        self.open: set[_Conn] = set()
        self._encoded: dict[Request, bytes] = {}

    def encode(self, request: Request) -> bytes:
        """The request's bytes; the first few kept (an agent's idle requests come first)."""
        data = self._encoded.get(request)
        if data is None:
            lines = [f"{request.method} {request.path} HTTP/1.1\r\n"]
            lines.append(f"host: 127.0.0.1:{self.port}\r\n")
            lines.extend(f"{key}: {value}\r\n" for key, value in request.headers)
            lines.append(self.auth)
            if request.body or request.method in ("POST", "PUT", "PATCH"):
                lines.append(f"content-length: {len(request.body)}\r\n")
            data = ("".join(lines) + "\r\n").encode() + request.body
            if len(self._encoded) < 8:
                self._encoded[request] = data
        return data

    async def _connection(self) -> tuple[_Conn, float | None]:
        """An idle connection young enough (and its idle seconds), else a new one (None)."""
        now = time.monotonic()
        while self.idle:
            conn = self.idle.pop()
            if now - conn.idle_since < KEEPALIVE_EXPIRY and not conn.reader.at_eof():
                return conn, now - conn.idle_since
            self._drop(conn)
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        conn = _Conn(reader, writer)
        self.open.add(conn)
        return conn, None

    def _drop(self, conn: _Conn) -> None:
        self.open.discard(conn)
        conn.writer.close()

    async def _head(self, conn: _Conn) -> tuple[int, bytes]:
        head = await conn.reader.readuntil(b"\r\n\r\n")
        return int(head[9:12]), head.lower()

    async def request(self, request: Request) -> tuple[int, bytes]:
        """Send one request on an idle kept-alive connection, or a new one."""
        conn, idle = await self._connection()
        try:
            conn.writer.write(self.encode(request))
            try:
                status, head = await self._head(conn)
            except (ConnectionResetError, asyncio.IncompleteReadError) as exc:
                if idle is None or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                    raise
                raise StaleConnection(idle) from exc
            start = head.find(b"\r\ncontent-length:")
            body = b""
            if start >= 0:
                end = head.index(b"\r\n", start + 2)
                length = int(head[start + 17 : end])
                if length:
                    body = await conn.reader.readexactly(length)
            elif b"\r\ntransfer-encoding: chunked" in head:
                body = b"".join([chunk async for chunk in self._chunks(conn)])
        except BaseException:
            self._drop(conn)
            raise
        if b"\r\nconnection: close" in head:
            self._drop(conn)
        else:
            conn.idle_since = time.monotonic()
            self.idle.append(conn)
        return status, body

    async def _chunks(self, conn: _Conn) -> AsyncIterator[bytes]:
        for _ in range(10_000_000):  # bounded: a stream ends or drops long before
            size = int((await conn.reader.readuntil(b"\r\n")).strip(), 16)
            data = await conn.reader.readexactly(size + 2)
            if size == 0:
                return
            yield data[:-2]

    async def stream_lines(self, request: Request) -> AsyncIterator[str]:
        """The session: a connection of its own, read chunk by chunk with a read timeout."""
        conn, _idle = await self._connection()
        try:
            conn.writer.write(self.encode(request))
            async with asyncio.timeout(SESSION_READ_TIMEOUT):
                status, _head = await self._head(conn)
            if status != 200:
                raise HTTPStatusError(f"HTTP {status}")
            chunks = self._chunks(conn)
            for _ in range(10_000_000):
                async with asyncio.timeout(SESSION_READ_TIMEOUT):
                    chunk = await anext(chunks, None)
                if chunk is None:
                    return
                for line in chunk.decode().split("\n"):
                    if line:
                        yield line
        finally:
            self._drop(conn)

    async def close(self) -> None:
        """Close every connection."""
        for conn in list(self.open):
            self._drop(conn)
        self.idle.clear()


class HttpxHTTP:
    """httpx.AsyncClient with its default keep-alive pool, as the agent's sync client.

    The clients share one SSL context (unused on http://): each would otherwise build its
    own, about 20 ms of CPU, which blocks the event loop for seconds at 1,000 agents.
    """

    _ssl: ssl.SSLContext | None = None

    def __init__(self, port: int, token: str | None, coordinator: int = 0) -> None:
        self.coordinator = coordinator
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if HttpxHTTP._ssl is None:
            HttpxHTTP._ssl = ssl.create_default_context()
        self.client = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers=headers,
            timeout=REQUEST_TIMEOUT,
            verify=HttpxHTTP._ssl,
        )

    async def request(self, request: Request) -> tuple[int, bytes]:
        """Send one request."""
        response = await self.client.request(
            request.method, request.path, content=request.body or None, headers=request.headers
        )
        return response.status_code, response.content

    async def stream_lines(self, request: Request) -> AsyncIterator[str]:
        """The session stream, with the agent's read timeout."""
        timeout = httpx.Timeout(10.0, read=SESSION_READ_TIMEOUT)
        async with self.client.stream(
            request.method, request.path, headers=request.headers, timeout=timeout
        ) as response:
            if response.status_code != 200:
                raise HTTPStatusError(f"HTTP {response.status_code}")
            async for line in response.aiter_lines():
                if line:
                    yield line

    async def close(self) -> None:
        """Close the pool."""
        await self.client.aclose()


def make_http(kind: str, port: int, token: str | None, coordinator: int = 0) -> AgentHTTP:
    """A client of the kind asked for, to the coordinator on ``port``."""
    if kind == "raw":
        return RawHTTP(port, token, coordinator)
    return HttpxHTTP(port, token, coordinator)


# -- the load generator ---------------------------------------------------------------------------


@dataclass
class Tally:
    """One kind of request: counts in the window and latencies of those answered."""

    sent: int = 0
    ok: int = 0
    failed: int = 0  # a non-2xx answer or a broken connection
    timeouts: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, answered with 2xx


@dataclass
class Plan:
    """What one generator process does, and when (time.monotonic(), system-wide on Linux)."""

    ports: list[int]  # the coordinators' ports (the job client and the probe use the first)
    client: str
    agents: list[tuple[str, str, int]]  # (server, agent token, index of its coordinator)
    admin: str | None  # set on the generator that runs the job client and the probe
    jobs_per_second: float
    start_at: float
    ramp: float  # agents start evenly spread over this many seconds
    window_start: float
    window_end: float
    drain: float


class LoadGenerator:
    """N simulated agents (and maybe the job client and the probe) in one event loop."""

    def __init__(self, plan: Plan, protocol: dict[str, Request]) -> None:
        self.plan = plan
        self.protocol = protocol
        self.tallies: dict[tuple[str, int], Tally] = {}  # (kind, coordinator) -> tally
        self.errors: Counter[str] = Counter()
        self.errors_outside: Counter[str] = Counter()
        # job id -> (submit sent, submit answered), for submits sent in the window
        self.submitted: dict[int, tuple[float, float]] = {}
        self.claimed: dict[int, float] = {}  # job id -> claim answered
        self.claimed_by: dict[int, int] = {}  # job id -> the coordinator it was claimed through
        self.jobs_done = 0
        self.gaps: list[float] = []  # per session: the longest keepalive gap in the window
        self.gaps_by: dict[int, list[float]] = {}  # the same per coordinator
        self.work_events_by: Counter[int] = Counter()  # work events per coordinator
        self.sessions_opened = 0
        self.session_drops = 0
        self.cancel_events = 0
        self.order_events = 0
        self.work_events = 0
        self.submit_skipped = 0
        self.orders_done: Counter[str] = Counter()
        self.lags: list[float] = []
        self.clients: list[AgentHTTP] = []

    # -- bookkeeping -------------------------------------------------------------------------

    def in_window(self, at: float) -> bool:
        """Whether a request sent at ``at`` counts."""
        return self.plan.window_start <= at < self.plan.window_end

    def running(self) -> bool:
        """Whether new requests may start (until the window ends)."""
        return time.monotonic() < self.plan.window_end

    def error(self, kind: str, at: float) -> None:
        """Count an error of a request sent (or a session broken) at ``at``: in the window
        or outside it (ramp, warm-up, drain)."""
        (self.errors if self.in_window(at) else self.errors_outside)[kind] += 1

    def until_end(self, seconds: float) -> float:
        """seconds, or less when the window ends sooner (no loop outlives the window long)."""
        return max(0.0, min(seconds, self.plan.window_end - time.monotonic()))

    async def pause(self, seconds: float) -> None:
        """Sleep seconds, or until the window ends."""
        await asyncio.sleep(self.until_end(seconds))

    async def call(self, kind: str, http: AgentHTTP, request: Request) -> tuple[int, bytes] | None:
        """Send one request, timed; None when it failed (counted by kind)."""
        key = (kind, http.coordinator)
        tally = self.tallies.get(key)
        if tally is None:
            tally = self.tallies[key] = Tally()
        sent = time.monotonic()
        counted = self.in_window(sent)
        if counted:
            tally.sent += 1
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                status, body = await http.request(request)
        except TimeoutError:
            self.error(f"{kind}: timeout", sent)
            if counted:
                tally.timeouts += 1
            return None
        except StaleConnection as exc:
            self.error(
                f"{kind}: kept-alive connection reset on reuse (idle {exc.idle:.0f} s)", sent
            )
            if counted:
                tally.failed += 1
            return None
        except (
            OSError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
            httpx.HTTPError,
        ) as exc:
            self.error(f"{kind}: {type(exc).__name__}", sent)
            if counted:
                tally.failed += 1
            return None
        if not 200 <= status < 300:
            self.error(f"{kind}: HTTP {status} {_reason(body)}".rstrip(), sent)
            if counted:
                tally.failed += 1
            return None
        if counted:
            tally.ok += 1
            tally.latencies.append(time.monotonic() - sent)
        return status, body

    # -- one agent ---------------------------------------------------------------------------

    async def agent(self, index: int, server: str, token: str, coordinator: int) -> None:
        """agent.py Agent.run: start, then heartbeats, session, orders and claims side by side,
        all with one coordinator."""
        plan = self.plan
        await asyncio.sleep(
            max(0.0, plan.start_at + plan.ramp * index / len(plan.agents) - time.monotonic())
        )
        http = make_http(plan.client, plan.ports[coordinator], token, coordinator)
        self.clients.append(http)
        requests = {name: self.protocol[name].render(server) for name in self.protocol}
        await self.call("heartbeat", http, requests["heartbeat"])  # Agent.start
        await self.call("branches", http, requests["branches"])  # Agent.prune_worktrees
        wake_orders = asyncio.Event()
        wake_orders.set()  # OrderRunner.start
        link = SessionLink()
        # Agent.close: the session and the heartbeats end only when the last job is reported
        # (else the coordinator would take that job back while it is being finished).
        closed = asyncio.Event()

        async def run_then_close() -> None:
            try:
                await self.steps(http, server, requests, link)
            finally:
                closed.set()

        await asyncio.gather(
            self.session(http, requests["session"], wake_orders, link, closed),
            self.heartbeats(http, requests["heartbeat"], closed),
            self.orders(http, server, requests["orders"], wake_orders, link),
            run_then_close(),
        )

    async def heartbeats(self, http: AgentHTTP, request: Request, closed: asyncio.Event) -> None:
        """agent.py Agent._heartbeat_loop: wait the interval, send, again, until closed."""
        while not closed.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(HEARTBEAT_INTERVAL):
                    await closed.wait()
            if closed.is_set():
                return
            await self.call("heartbeat", http, request)

    async def orders(
        self,
        http: AgentHTTP,
        server: str,
        request: Request,
        wake: asyncio.Event,
        link: SessionLink,
    ) -> None:
        """orders.py OrderRunner._loop: fetch when woken, else every ten minutes with a session
        and every half minute without one (OrderRunner.poll_seconds)."""
        fetched = time.monotonic()
        while self.running():
            woken = False  # waits in slices: the due time follows the session, as there
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.until_end(agent_orders.WAIT_SLICE_SECONDS)):
                    woken = await wake.wait()
            if not self.running():
                return
            poll = ORDERS_SESSION_POLL_SECONDS if link.connected.is_set() else ORDERS_POLL_SECONDS
            if not woken and time.monotonic() - fetched < poll:
                continue
            wake.clear()
            fetched = time.monotonic()
            answer = await self.call("orders", http, request)
            for order in [] if answer is None else json.loads(answer[1] or b"[]"):
                await self.report_order(http, server, order)

    async def report_order(self, http: AgentHTTP, server: str, order: dict[str, Any]) -> None:
        """orders.py OrderRunner.execute and run_pending, nothing touched on disk.

        Removals are reported as the agent reports directories that are not there (no build
        left any); other kinds fail, as they do on an agent that does not know them.
        """
        self.orders_done[order["kind"]] += 1
        template = self.protocol["report_order"].render(server, order_id=int(order["id"]))
        body: dict[str, Any] = json.loads(template.body)
        if order["kind"] == "artifacts.remove":
            sets = order["params"].get("sets", [])
            removed = [
                {"job_id": item["job_id"], "path": item["path"], "freed_bytes": 0} for item in sets
            ]
            body.update(status="done", result={"removed": removed, "refused": [], "freed_bytes": 0})
        else:
            body.update(status="failed", result=None, error=f"not carried out: {order['kind']}")
        report = Request(
            template.method, template.path, json.dumps(body).encode(), template.headers
        )
        await self.call("report_order", http, report)

    async def steps(
        self, http: AgentHTTP, server: str, requests: dict[str, Request], link: SessionLink
    ) -> None:
        """agent.py Agent.run: step() (claim; on a job, run it) or wait as Agent._idle does."""
        while self.running():
            granted_at = time.monotonic()  # agent.py Agent.step: before the claim is sent
            answer = await self.call("claim", http, requests["claim"])
            if answer is None or answer[0] == 204:
                await self.idle(link)
                continue
            job = json.loads(answer[1])["job"]
            if int(job["id"]) not in self.claimed:
                self.claimed[int(job["id"])] = time.monotonic()
                self.claimed_by[int(job["id"])] = http.coordinator
            await self.job(http, server, int(job["id"]), int(job["fencing_token"]), granted_at)
            await self.call("branches", http, requests["branches"])  # Agent.step's prune

    async def idle(self, link: SessionLink) -> None:
        """agent.py Agent._idle: with a session, wait to be told of work (or the safety poll,
        jittered); without one, the poll interval; a session that drops ends the wait."""
        if not link.connected.is_set():
            await asyncio.sleep(POLL_INTERVAL)
            link.work.clear()
            return
        wait = SAFETY_POLL_INTERVAL * random.uniform(*SAFETY_POLL_JITTER)
        waiters = [asyncio.ensure_future(link.work.wait()), asyncio.ensure_future(link.dropped())]
        try:
            await asyncio.wait(waiters, timeout=self.until_end(wait), return_when="FIRST_COMPLETED")
        finally:
            for waiter in waiters:
                waiter.cancel()
        link.work.clear()

    async def job(
        self, http: AgentHTTP, server: str, job_id: int, fencing: int, granted_at: float
    ) -> None:
        """job.py JobRun.execute, no build: build token, log, completion; the lease renewed
        beside them from the claim on, as lease.py does (it matters when answers are slow)."""
        renewer = asyncio.ensure_future(self.renewals(http, server, job_id, fencing, granted_at))
        done = None
        try:
            for name in ("build_token", "log"):
                await self.call(name, http, self.protocol[name].render(server, job_id, fencing))
            await asyncio.sleep(BUILD_SECONDS)
            done = await self.call(
                "complete", http, self.protocol["complete"].render(server, job_id, fencing)
            )
        finally:
            renewer.cancel()
        if done is not None:
            self.jobs_done += 1

    async def renewals(
        self, http: AgentHTTP, server: str, job_id: int, fencing: int, granted_at: float
    ) -> None:
        """lease.py LeaseKeeper._loop: renew lease/3 after the grant, then after each renewal."""
        request = self.protocol["renew"].render(server, job_id, fencing)
        due = granted_at + RENEW_INTERVAL
        for _ in range(1_000_000):  # bounded; cancelled when the job is reported
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            sent = time.monotonic()
            if await self.call("renew", http, request) is None:
                return  # lease.py gives up on a refusal (and retries when unreachable)
            due = sent + RENEW_INTERVAL

    async def session(
        self,
        http: AgentHTTP,
        request: Request,
        wake_orders: asyncio.Event,
        link: SessionLink,
        closed: asyncio.Event,
    ) -> None:
        """session.py SessionKeeper._loop and _listen; the longest keepalive gap is kept."""
        failures = 0
        last = time.monotonic()  # a session that never sees a keepalive has one long gap
        longest = 0.0
        try:
            while not closed.is_set():
                connected = False
                self.sessions_opened += 1
                try:
                    event = "message"
                    async for line in http.stream_lines(request):
                        now = time.monotonic()
                        if line.startswith(":"):
                            if now >= self.plan.window_start:
                                longest = max(longest, now - max(last, self.plan.window_start))
                            last = now
                        elif line.startswith("event:"):
                            event = line[6:].strip()
                        elif line.startswith("data:"):
                            if event == "hello":
                                connected = True
                                link.connected.set()
                                link.work.set()  # session.py: on_work at every (re)connect
                            elif event == "work":
                                self.work_events += 1
                                self.work_events_by[http.coordinator] += 1
                                link.work.set()
                            elif event == "cancel":
                                self.cancel_events += 1
                            elif event == "orders":
                                self.order_events += 1
                                wake_orders.set()
                            event = "message"
                        if closed.is_set():
                            return
                    self.error("session: ended by the coordinator", time.monotonic())
                except TimeoutError:
                    self.error("session: read timeout", time.monotonic())
                except HTTPStatusError as exc:
                    self.error(f"session: {exc}", time.monotonic())
                except (OSError, asyncio.IncompleteReadError, ValueError, httpx.HTTPError) as exc:
                    self.error(f"session: {type(exc).__name__}", time.monotonic())
                link.connected.clear()
                link.lost.set()
                link.lost = asyncio.Event()
                if self.in_window(time.monotonic()):
                    self.session_drops += 1
                if connected:
                    failures = 0
                await asyncio.sleep(RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)])
                failures += 1
        finally:
            end = min(time.monotonic(), self.plan.window_end)
            if end > self.plan.window_start:
                longest = max(longest, end - max(last, self.plan.window_start))
            self.gaps.append(longest)
            self.gaps_by.setdefault(http.coordinator, []).append(longest)

    # -- the job client and the probe --------------------------------------------------------

    async def job_client(self, admin: str) -> None:
        """Submit jobs at a steady rate from the start to the window's end (open loop)."""
        plan = self.plan
        http = make_http(plan.client, plan.ports[0], admin)
        self.clients.append(http)
        request = self.protocol["submit"]
        pending: set[asyncio.Task[None]] = set()
        interval = 1.0 / plan.jobs_per_second
        total = int((plan.window_end - plan.start_at) * plan.jobs_per_second)
        # A commit of its own per job and per window: a window must not build commits an
        # earlier window built on other servers (that would add comparisons to its work).
        prefix = secrets.token_hex(4)
        for number in range(total):
            await asyncio.sleep(max(0.0, plan.start_at + number * interval - time.monotonic()))
            if len(pending) >= SUBMIT_IN_FLIGHT:
                self.submit_skipped += 1
                continue
            commit = f"{prefix}{number:032x}"
            job = Request(
                request.method,
                request.path,
                request.body.replace(b"0" * 40, commit.encode()),
                request.headers,
            )
            task = asyncio.ensure_future(self.submit(http, job))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.wait(pending)

    async def submit(self, http: AgentHTTP, request: Request) -> None:
        """One submit; its answer time is kept when it was sent in the window."""
        sent = time.monotonic()
        answer = await self.call("submit", http, request)
        if answer is not None and self.in_window(sent):
            self.submitted[int(json.loads(answer[1])["id"])] = (sent, time.monotonic())

    async def probe(self) -> None:
        """GET /api/v1/health now and then, from the same loop as the agents."""
        http = make_http(self.plan.client, self.plan.ports[0], None)
        self.clients.append(http)
        await asyncio.sleep(max(0.0, self.plan.start_at - time.monotonic()))
        while self.running():
            await self.call("health", http, self.protocol["health"])
            await asyncio.sleep(HEALTH_INTERVAL)

    async def loop_lag(self) -> None:
        """How late a 50 ms sleep wakes in the window: the generator's own saturation."""
        for _ in range(10_000_000):
            before = time.monotonic()
            await asyncio.sleep(0.05)
            late = time.monotonic() - before - 0.05
            if self.in_window(before):
                self.lags.append(late)

    # -- the run -----------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        """Everything until the window ends and the drain is over; the raw figures."""
        plan = self.plan
        tasks = [
            asyncio.ensure_future(self.agent(index, server, token, coordinator))
            for index, (server, token, coordinator) in enumerate(plan.agents)
        ]
        if plan.admin is not None:
            tasks.append(asyncio.ensure_future(self.job_client(plan.admin)))
            tasks.append(asyncio.ensure_future(self.probe()))
        monitor = asyncio.ensure_future(self.loop_lag())
        await asyncio.sleep(max(0.0, plan.window_start - time.monotonic()))
        cpu_start = _own_cpu()
        await asyncio.sleep(max(0.0, plan.window_end - time.monotonic()))
        cpu_end = _own_cpu()
        monitor.cancel()
        _done, late = await asyncio.wait(tasks, timeout=plan.drain)
        for task in late:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                exc = task.exception()
                self.errors[f"generator bug: {type(exc).__name__}: {exc}"] += 1
        for http in self.clients:
            await http.close()
        window = plan.window_end - plan.window_start
        return {
            "tallies": [
                (kind, coordinator, tally.__dict__)
                for (kind, coordinator), tally in self.tallies.items()
            ],
            "errors": dict(self.errors),
            "errors_outside_window": dict(self.errors_outside),
            "submitted": self.submitted,
            "claimed": self.claimed,
            "claimed_by": self.claimed_by,
            "jobs_done": self.jobs_done,
            "gaps": self.gaps,
            "gaps_by": self.gaps_by,
            "work_events_by": dict(self.work_events_by),
            "sessions_opened": self.sessions_opened,
            "session_drops": self.session_drops,
            "cancel_events": self.cancel_events,
            "order_events": self.order_events,
            "work_events": self.work_events,
            "submit_skipped": self.submit_skipped,
            "orders_done": dict(self.orders_done),
            "cpu_percent": 100.0 * (cpu_end - cpu_start) / window,
            "loop_lag_p99_ms": _percentile(self.lags, 0.99) or 0.0,
            "loop_lag_max_ms": max(self.lags, default=0.0) * 1000.0,
            "unfinished_tasks": len(late),
        }


def _reason(body: bytes) -> str:
    """The coordinator's error message, numbers folded (so that kinds group), or ""."""
    try:
        message = str(json.loads(body).get("error") or "")
    except (ValueError, AttributeError):
        return ""
    return re.sub(r"\d+", "N", message)[:80]


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def _raise_nofile(wanted: int) -> int:
    """Raise this process's open-file limit towards ``wanted`` (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def _generator_main(pipe: Pipe) -> None:
    """A load-generator process: say ready, take a plan, run it, send the figures back."""
    try:
        protocol = record_protocol()
        pipe.send("ready")
        if not pipe.poll(GENERATOR_READY_TIMEOUT):
            return
        plan: Plan = pipe.recv()
        _raise_nofile(len(plan.agents) * 4 + 256)
        try:
            import uvloop

            runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
        except ImportError:
            runner = asyncio.Runner()
        with runner:
            result = runner.run(LoadGenerator(plan, protocol).run())
        pipe.send(("ok", result))
    except BaseException as exc:  # the parent reports it
        with contextlib.suppress(OSError):
            pipe.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        pipe.close()


# -- the coordinator ----------------------------------------------------------------------------


def _rss_bytes(pid: int) -> int:
    """Resident memory of a process and its live children (serve --workers forks)."""
    total = 0
    for stat in [Path(f"/proc/{pid}/stat"), *bq._children_stats(pid)]:
        with contextlib.suppress(OSError, ValueError):
            for line in (stat.parent / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


@dataclass(frozen=True)
class Coordinator:
    """One ``buildcoord serve`` process (and its --workers children)."""

    index: int
    base_url: str
    port: int
    pid: int


@contextmanager
def _serve(url: str, home: Path, admin: str, workers: int, index: int) -> Iterator[Coordinator]:
    """Start ``buildcoord serve`` on a free loopback port with the given admin token (as
    bench/queue.py serve_process does, which makes a token of its own: a second coordinator
    with another one would revoke the first's, see store/tokens.py install_bootstrap_token);
    stop it by its pid afterwards."""
    port = bq._free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("BUILDCOORD_")}
    env.update({"BUILDCOORD_ADMIN_TOKEN": admin, "BUILDCOORD_HOME": str(home)})
    argv = [sys.executable, "-m", "buildcoord", "serve", "--db", url]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    if workers > 1:
        argv += ["--workers", str(workers)]
    home.mkdir(parents=True, exist_ok=True)
    logfile = home / f"serve-{port}.log"
    with logfile.open("wb") as output:
        process = subprocess.Popen(
            argv, env=env, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + bq.SERVER_START_TIMEOUT
        with Client(base_url, admin, timeout=2.0) as probe:
            for _ in range(100_000):  # bounded by the deadline
                if process.poll() is not None:
                    raise RuntimeError(
                        f"buildcoord serve (coordinator {index}) exited with "
                        f"{process.returncode}:\n" + logfile.read_text(errors="replace")[-3000:]
                    )
                try:
                    probe.http.get("health").raise_for_status()
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"buildcoord serve (coordinator {index}) did not answer in time:\n"
                            + logfile.read_text(errors="replace")[-3000:]
                        ) from None
                    time.sleep(0.1)
        yield Coordinator(index, base_url, port, process.pid)
    finally:
        if process.poll() is None:
            process.terminate()  # by pid: the process started here
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@contextmanager
def serve_coordinators(
    url: str, home: Path, count: int, workers: int
) -> Iterator[tuple[str, list[Coordinator]]]:
    """Start count coordinators on one database, one after the other (the first makes the
    schema), all with one admin token; yield (admin token, coordinators); stop them all."""
    admin = "bc_bench_" + secrets.token_hex(16)
    with ExitStack() as stack:
        found = [
            stack.enter_context(_serve(url, home, admin, workers, index)) for index in range(count)
        ]
        yield admin, found


def _proc_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (field 3 on), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def postmaster_pid(url: str) -> int | None:
    """The PostgreSQL server's main process, when it runs on this machine and shows in /proc
    (the parent of the backend that answers us); else None."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
    except psycopg.Error:
        return None
    fields = None if row is None else _proc_fields(int(row[0]))
    if fields is None:
        return None
    parent = int(fields[1])
    with contextlib.suppress(OSError):
        if b"postgres" in Path(f"/proc/{parent}/cmdline").read_bytes():
            return parent
    return None


def postgresql_cpu_seconds(postmaster: int) -> float | None:
    """CPU the PostgreSQL server has used: the postmaster, its live children (backends,
    walwriter, checkpointer, ...) and, through cutime/cstime, the children it reaped
    (backends that disconnected). Every database of the server is in it."""
    fields = _proc_fields(postmaster)
    if fields is None:
        return None
    ticks = sum(int(value) for value in fields[11:15])
    for stat in bq._children_stats(postmaster):
        with contextlib.suppress(OSError, IndexError, ValueError):
            child = stat.read_text().rsplit(")", 1)[1].split()
            ticks += int(child[11]) + int(child[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def check_pg_connections(url: str, coordinators: int, workers: int) -> None:
    """Warn when the coordinators' pools may not fit in the server's max_connections."""
    # docs/deployment.md: a pool of up to 30 per process, plus one for the change feed.
    wanted = coordinators * workers * 31
    with contextlib.suppress(psycopg.Error):
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            most = conn.execute("SHOW max_connections").fetchone()
            used = conn.execute("SELECT count(*) FROM pg_stat_activity").fetchone()
        if most is not None and used is not None and wanted + int(used[0]) > int(most[0]):
            log(
                f"WARNING: {coordinators} coordinator(s) x {workers} worker(s) may open "
                f"{wanted} PostgreSQL connections; the server allows {most[0]} and has "
                f"{used[0]} open"
            )


def register_servers(base_url: str, admin: str, count: int) -> list[tuple[str, str]]:
    """Register count servers through the API (a few at a time); their names and tokens."""
    tag = secrets.token_hex(3)

    async def register_all() -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        limit = asyncio.Semaphore(REGISTER_CONCURRENCY)
        headers = {"Authorization": f"Bearer {admin}"}
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60.0) as http:

            async def one(index: int) -> tuple[str, str]:
                name = f"{SERVER_PREFIX}-{tag}-{index:05d}"
                async with limit:
                    # client/servers.py register_server: POST /servers {name, labels}
                    response = await http.post("/api/v1/servers", json={"name": name, "labels": []})
                response.raise_for_status()
                return name, str(response.json()["token"])

            found = list(await asyncio.gather(*(one(index) for index in range(count))))
        return found

    return asyncio.run(register_all())


class EventCount:
    """The coordinator's audit trail read on from a cursor: event kinds counted."""

    def __init__(self, base_url: str, admin: str) -> None:
        self.base_url = base_url
        self.admin = admin
        self.cursor = 0

    def take(self) -> dict[str, int]:
        """Kinds of the events appended since the last call (lease losses among them)."""
        kinds: Counter[str] = Counter()
        with Client(self.base_url, self.admin, timeout=60.0) as client:
            for _ in range(100_000):
                page = client.list_events(after=self.cursor, limit=1000)
                if not page:
                    break
                kinds.update(event.kind for event in page)
                self.cursor = page[-1].id
        return dict(sorted(kinds.items()))


def cancel_queued(base_url: str, admin: str) -> int:
    """Cancel the jobs left queued between windows (so that no window inherits a backlog)."""
    cancelled = 0
    with Client(base_url, admin, timeout=60.0) as client:
        for _ in range(100):
            jobs = client.list_jobs(status="queued", limit=1000)
            if not jobs:
                break
            for job in jobs:
                with contextlib.suppress(Exception):
                    client.cancel_job(job.id, reason="fleet benchmark: between windows")
                    cancelled += 1
    return cancelled


def run_window(
    coordinators: list[Coordinator],
    admin: str,
    agents: list[tuple[str, str]],
    args: argparse.Namespace,
    sizes: Sizes,
    postmaster: int | None = None,
) -> dict[str, Any]:
    """One measuring window with len(agents) agents (0: the baseline), agent i with
    coordinator i % K; its figures."""
    count = len(agents)
    assigned = [
        (server, token, index % len(coordinators)) for index, (server, token) in enumerate(agents)
    ]
    generators = args.generators or max(1, math.ceil(count / sizes.agents_per_generator))
    context = multiprocessing.get_context("spawn")
    pipes: list[Pipe] = []
    processes: list[Any] = []
    try:
        for index in range(generators):
            parent, child = context.Pipe()
            process = context.Process(
                target=_generator_main, args=(child,), name=f"fleet-generator-{index}"
            )
            process.start()
            child.close()
            pipes.append(parent)
            processes.append(process)
        for pipe in pipes:
            if not pipe.poll(GENERATOR_READY_TIMEOUT) or pipe.recv() != "ready":
                raise RuntimeError("a load generator did not start")
        ramp = max(HEARTBEAT_INTERVAL, count / 200.0) if count else 0.0
        start_at = time.monotonic() + 0.5
        window_start = start_at + ramp + (sizes.warmup if count else 1.0)
        window_end = window_start + sizes.duration
        for index, pipe in enumerate(pipes):
            pipe.send(
                Plan(
                    ports=[coordinator.port for coordinator in coordinators],
                    client=args.client,
                    agents=assigned[index::generators],
                    admin=admin if index == 0 else None,
                    jobs_per_second=args.jobs_per_second,
                    start_at=start_at,
                    ramp=ramp,
                    window_start=window_start,
                    window_end=window_end,
                    drain=sizes.drain,
                )
            )
        log(
            f"  {count} agents in {generators} generator process(es), "
            f"{len(coordinators)} coordinator(s): ramp {ramp:.0f} s, window "
            f"{sizes.duration:.0f} s"
        )
        time.sleep(max(0.0, window_start - time.monotonic()))
        pg_start = None if postmaster is None else postgresql_cpu_seconds(postmaster)
        cpu_start = [bq._cpu_seconds(coordinator.pid) for coordinator in coordinators]
        began = time.monotonic()
        time.sleep(max(0.0, window_end - time.monotonic()))
        cpu_end = [bq._cpu_seconds(coordinator.pid) for coordinator in coordinators]
        ended = time.monotonic()
        pg_end = None if postmaster is None else postgresql_cpu_seconds(postmaster)
        rss = [_rss_bytes(coordinator.pid) for coordinator in coordinators]
        results: list[dict[str, Any]] = []
        for pipe in pipes:
            if not pipe.poll(sizes.drain + 60.0):
                raise RuntimeError("a load generator gave no answer")
            status, value = pipe.recv()
            if status != "ok":
                raise RuntimeError(f"a load generator failed: {value}")
            results.append(value)
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()  # by pid: the process started here
                process.join(timeout=5)
    cpu = [
        None if before is None or after is None else 100.0 * (after - before) / (ended - began)
        for before, after in zip(cpu_start, cpu_end, strict=True)
    ]
    pg_cpu = None
    if pg_start is not None and pg_end is not None:
        pg_cpu = 100.0 * (pg_end - pg_start) / (ended - began)
    processes_seen = [
        {"index": c.index, "port": c.port, "pid": c.pid, "cpu_percent": used, "rss_bytes": size}
        for c, used, size in zip(coordinators, cpu, rss, strict=True)
    ]
    return summarize(count, results, sizes.duration, processes_seen, generators, pg_cpu)


# -- figures ------------------------------------------------------------------------------------


def _percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile, in milliseconds; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))
    return ordered[index] * 1000.0


def _latency(values: list[float]) -> dict[str, float | None]:
    return {
        "p50_ms": _percentile(values, 0.50),
        "p95_ms": _percentile(values, 0.95),
        "p99_ms": _percentile(values, 0.99),
        "max_ms": None if not values else max(values) * 1000.0,
    }


def _request_figures(tally: Tally, seconds: float) -> dict[str, Any]:
    return {
        "sent": tally.sent,
        "ok": tally.ok,
        "failed": tally.failed,
        "timeouts": tally.timeouts,
        "lost": tally.sent - tally.ok,
        "unanswered": tally.sent - tally.ok - tally.failed - tally.timeouts,
        "per_s": tally.sent / seconds,
        **_latency(tally.latencies),
    }


def _add(tally: Tally, raw: dict[str, Any]) -> None:
    tally.sent += raw["sent"]
    tally.ok += raw["ok"]
    tally.failed += raw["failed"]
    tally.timeouts += raw["timeouts"]
    tally.latencies += raw["latencies"]


def _per(total: float, count: float) -> float | None:
    return total / count if count else None


def agent_cost(
    cpu_percent: float | None, seconds: float, agents: int, heartbeats: int
) -> dict[str, Any]:
    """Coordinator CPU-ms per heartbeat answered and per agent-second, and how many agents
    a core of coordinator would carry at that rate (everything the coordinator did in the
    window is in it: jobs, submits, the probe, its own loops)."""
    cpu_ms = None if cpu_percent is None else cpu_percent / 100.0 * seconds * 1000.0
    per_agent_second = None if cpu_ms is None else _per(cpu_ms, agents * seconds)
    return {
        "coordinator_cpu_ms": cpu_ms,
        "heartbeats_answered": heartbeats,
        "agent_seconds": agents * seconds,
        "cpu_ms_per_heartbeat": None if cpu_ms is None else _per(cpu_ms, heartbeats),
        "cpu_ms_per_agent_second": per_agent_second,
        "agents_per_core": (
            None if per_agent_second is None or per_agent_second <= 0 else 1000.0 / per_agent_second
        ),
    }


def summarize(
    count: int,
    results: list[dict[str, Any]],
    seconds: float,
    coordinators: list[dict[str, Any]],
    generators: int,
    pg_cpu: float | None = None,
) -> dict[str, Any]:
    """Merge the generators' raw figures into one window's figures (coordinators: each
    one's index, port, pid, cpu_percent and rss_bytes in the window)."""
    tallies: dict[str, Tally] = {}
    per: list[dict[str, Tally]] = [{} for _ in coordinators]
    claimed_by: dict[int, int] = {}
    gaps_by: list[list[float]] = [[] for _ in coordinators]
    work_by: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    errors_outside: Counter[str] = Counter()
    orders: Counter[str] = Counter()
    submitted: dict[int, tuple[float, float]] = {}
    claimed: dict[int, float] = {}
    gaps: list[float] = []
    sums: Counter[str] = Counter()
    for result in results:
        for kind, coordinator, raw in result["tallies"]:
            _add(tallies.setdefault(kind, Tally()), raw)
            _add(per[coordinator].setdefault(kind, Tally()), raw)
        claimed_by.update(result["claimed_by"])
        work_by.update(result["work_events_by"])
        for coordinator, values in result["gaps_by"].items():
            gaps_by[coordinator] += values
        errors.update(result["errors"])
        errors_outside.update(result["errors_outside_window"])
        orders.update(result["orders_done"])
        submitted.update(result["submitted"])
        claimed.update(result["claimed"])
        gaps += result["gaps"]
        for key in (
            "jobs_done",
            "sessions_opened",
            "session_drops",
            "cancel_events",
            "order_events",
            "work_events",
            "submit_skipped",
            "unfinished_tasks",
        ):
            sums[key] += result[key]
    waits = [claimed[job] - at[1] for job, at in submitted.items() if job in claimed]
    from_sent = [claimed[job] - at[0] for job, at in submitted.items() if job in claimed]
    requests = {kind: _request_figures(tally, seconds) for kind, tally in sorted(tallies.items())}
    idle = _request_figures(Tally(), seconds)
    cpus = [coordinator["cpu_percent"] for coordinator in coordinators]
    cpu = None if None in cpus else sum(cpus)
    generator_cpu = sum(result["cpu_percent"] for result in results)
    by_coordinator = []
    for coordinator, kinds in zip(coordinators, per, strict=True):
        index = coordinator["index"]
        mine = len(range(index, count, len(coordinators)))  # agent i talks to i % K
        beat = _request_figures(kinds.get("heartbeat", Tally()), seconds)
        through = [
            claimed[job] - at[1]
            for job, at in submitted.items()
            if job in claimed and claimed_by.get(job) == index
        ]
        by_coordinator.append(
            {
                **coordinator,
                "agents": mine,
                "heartbeat": beat,
                "claim": _request_figures(kinds.get("claim", Tally()), seconds),
                "requests_per_s": {
                    kind: tally.sent / seconds for kind, tally in sorted(kinds.items())
                },
                "queue_to_claim": {"claimed": len(through), **_latency(through)},
                "session": {
                    "sessions": len(gaps_by[index]),
                    "work_events": work_by[index],
                    "keepalive_gap_p50_ms": _percentile(gaps_by[index], 0.50),
                    "keepalive_gap_p99_ms": _percentile(gaps_by[index], 0.99),
                },
                "cost": agent_cost(coordinator["cpu_percent"], seconds, mine, beat["ok"]),
            }
        )
    heartbeats_ok = requests.get("heartbeat", idle)["ok"]
    cost = agent_cost(cpu, seconds, count, heartbeats_ok)
    cost["postgresql_cpu_ms_per_heartbeat"] = (
        None if pg_cpu is None else _per(pg_cpu / 100.0 * seconds * 1000.0, heartbeats_ok)
    )
    cost["coordinator_cpu_ms_per_request"] = (
        None
        if cost["coordinator_cpu_ms"] is None
        else _per(cost["coordinator_cpu_ms"], sum(tally.ok for tally in tallies.values()))
    )
    return {
        "agents": count,
        "generators": generators,
        "window_seconds": seconds,
        "heartbeat": requests.get("heartbeat", idle),
        "health": requests.get("health", idle),
        "requests": requests,
        "session": {
            "sessions": len(gaps),
            "opened": sums["sessions_opened"],
            "drops_in_window": sums["session_drops"],
            "keepalive_gap_p50_ms": _percentile(gaps, 0.50),
            "keepalive_gap_p99_ms": _percentile(gaps, 0.99),
            "keepalive_gap_max_ms": None if not gaps else max(gaps) * 1000.0,
            "cancel_events": sums["cancel_events"],
            "order_events": sums["order_events"],
            "work_events": sums["work_events"],
        },
        "queue_to_claim": {
            "submitted_in_window": len(submitted),
            "claimed": len(waits),
            "unclaimed": len(submitted) - len(waits),
            "submits_given_up": sums["submit_skipped"],
            "negative": sum(1 for value in waits if value < 0),
            **_latency(waits),
        },
        "submit_sent_to_claim": _latency(from_sent),
        "submit": requests.get("submit", idle),
        "jobs_completed": sums["jobs_done"],
        "orders_reported": dict(sorted(orders.items())),
        "errors": dict(sorted(errors.items())),
        "errors_outside_window": dict(sorted(errors_outside.items())),
        "coordinator_cpu_percent": cpu,  # all coordinators' process trees together
        "coordinator_rss_bytes": sum(coordinator["rss_bytes"] for coordinator in coordinators),
        "coordinators": len(coordinators),
        "by_coordinator": by_coordinator,
        "postgresql_cpu_percent": pg_cpu,  # the whole server's (other databases too), or None
        "cost": cost,
        "generator_cpu_percent": [result["cpu_percent"] for result in results],
        "generator_cpu_percent_total": generator_cpu,
        "generator_loop_lag_p99_ms": max(result["loop_lag_p99_ms"] for result in results),
        "generator_loop_lag_max_ms": max(result["loop_lag_max_ms"] for result in results),
        "generator_cpu_ms_per_1000_requests": (
            generator_cpu
            / 100.0
            * seconds
            * 1e6
            / max(1, sum(tally.sent for tally in tallies.values()))
        ),
        "generator_tasks_cut_off": sums["unfinished_tasks"],
    }


def compare(window: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """A window's figures against its own health probe and the 0-agent window."""
    count = window["agents"]

    def ratio(top: float | None, bottom: float | None) -> float | None:
        return None if top is None or not bottom else top / bottom

    cpu, cpu0 = window["coordinator_cpu_percent"], baseline["coordinator_cpu_percent"]
    # What the agents added to the 0-agent window (the job client and the probe alone): their
    # requests and the jobs they ran, per heartbeat answered and per agent-second.
    above = None
    if cpu is not None and cpu0 is not None:
        above = agent_cost(cpu - cpu0, window["window_seconds"], count, window["heartbeat"]["ok"])
    return {
        "heartbeat_p99_over_health_p99": ratio(
            window["heartbeat"]["p99_ms"], window["health"]["p99_ms"]
        ),
        "heartbeat_p99_over_idle_health_p99": ratio(
            window["heartbeat"]["p99_ms"], baseline["health"]["p99_ms"]
        ),
        "coordinator_cpu_minus_baseline": None if cpu is None or cpu0 is None else cpu - cpu0,
        "coordinator_rss_per_agent_bytes": (
            (window["coordinator_rss_bytes"] - baseline["coordinator_rss_bytes"]) / count
            if count
            else None
        ),
        "coordinator_cpu_ms_per_heartbeat_above_baseline": (
            None if above is None else above["cpu_ms_per_heartbeat"]
        ),
        "coordinator_cpu_ms_per_agent_second_above_baseline": (
            None if above is None else above["cpu_ms_per_agent_second"]
        ),
        "agents_per_core_above_baseline": None if above is None else above["agents_per_core"],
    }


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def _cost(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _count(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def coordinator_lines(window: dict[str, Any]) -> list[str]:
    """One line per coordinator: its agents' heartbeats, its claims, its process tree."""
    lines = []
    for each in window["by_coordinator"]:
        beat, wait = each["heartbeat"], each["queue_to_claim"]
        lines.append(
            f"  coordinator {each['index']} (port {each['port']}, pid {each['pid']}): "
            f"{each['agents']:,} agents, heartbeats {beat['ok']:,} of {beat['sent']:,} "
            f"p50/p95/p99 {_ms(beat['p50_ms'])}/{_ms(beat['p95_ms'])}/{_ms(beat['p99_ms'])} ms,"
            f" claims {each['claim']['ok']:,}, queue to claim through it {wait['claimed']:,} "
            f"p50/p99 {_ms(wait['p50_ms'])}/{_ms(wait['p99_ms'])} ms, work events "
            f"{each['session']['work_events']:,}; CPU "
            f"{_pct(each['cpu_percent'])}, RSS {each['rss_bytes'] / 2**20:.0f} MiB"
            + (
                ""
                if each["cost"]["cpu_ms_per_heartbeat"] is None
                else f", {_cost(each['cost']['cpu_ms_per_heartbeat'])} ms CPU per heartbeat"
            )
        )
    return lines


def window_lines(window: dict[str, Any]) -> list[str]:
    """A small table for one window."""
    beat, health = window["heartbeat"], window["health"]
    session, wait = window["session"], window["queue_to_claim"]
    claim = window["requests"].get("claim")
    lines = [
        f"-- {window['agents']:,} agents ({window['generators']} generator process(es), "
        f"{window['window_seconds']:.0f} s window)",
        "                            count        p50        p95        p99        max  (ms)",
    ]

    def row(name: str, count: int, figures: dict[str, Any], prefix: str = "") -> None:
        p50, p95, p99, top = (
            figures.get(f"{prefix}{key}_ms") for key in ("p50", "p95", "p99", "max")
        )
        lines.append(
            f"  {name:<22} {count:>9,}  {_ms(p50):>9}  {_ms(p95):>9}  {_ms(p99):>9}  {_ms(top):>9}"
        )

    if window["agents"]:
        row("heartbeat", beat["ok"], beat)
    row("health (same loop)", health["ok"], health)
    row("submit", window["submit"]["ok"], window["submit"])
    if claim:
        row("claim", claim["ok"], claim)
    if session["sessions"]:
        row("keepalive gap/session", session["sessions"], session, "keepalive_gap_")
    if wait["claimed"]:
        row("queue to claim", wait["claimed"], wait)
        row("  from submit sent", wait["claimed"], window["submit_sent_to_claim"])
    if window["agents"]:
        lines.append(
            f"  heartbeats sent {beat['sent']:,}, failed {beat['failed']:,}, timed out "
            f"{beat['timeouts']:,}, unanswered at the cut-off {beat['unanswered']:,}: "
            f"lost (no 2xx) {beat['lost']:,}"
        )
        rates = ", ".join(
            f"{kind} {figures['per_s']:,.0f}" for kind, figures in window["requests"].items()
        )
        lines.append(f"  requests/s: {rates}")
        lines.append(
            f"  sessions {session['sessions']:,} (opened {session['opened']:,}, dropped in "
            f"window {session['drops_in_window']:,})"
        )
    lines.append(
        f"  jobs: submitted in window {wait['submitted_in_window']:,}, claimed "
        f"{wait['claimed']:,}, unclaimed at the window's end {wait['unclaimed']:,}, completed "
        f"{window['jobs_completed']:,} (ramp to drain); orders reported "
        + (", ".join(f"{k} {v:,}" for k, v in window["orders_reported"].items()) or "none")
    )
    cpu = window["coordinator_cpu_percent"]
    generator = " + ".join(f"{value:.0f}%" for value in window["generator_cpu_percent"])
    several = len(window["by_coordinator"]) > 1
    if several:
        lines.extend(coordinator_lines(window))
    lines.append(
        f"  coordinator{'s (sum)' if several else ''} CPU {_pct(cpu)} of a core, RSS "
        f"{window['coordinator_rss_bytes'] / 2**20:.0f} MiB; load generator CPU {generator} "
        f"({window['generator_cpu_ms_per_1000_requests']:.0f} ms per 1,000 requests, "
        f"loop lag p99 {window['generator_loop_lag_p99_ms']:.0f} ms, max "
        f"{window['generator_loop_lag_max_ms']:.0f} ms)"
        + (
            ""
            if window["postgresql_cpu_percent"] is None
            else f"; PostgreSQL (whole server) CPU {_pct(window['postgresql_cpu_percent'])}"
        )
    )
    cost = window["cost"]
    if window["agents"] and cost["cpu_ms_per_agent_second"] is not None:
        lines.append(
            f"  cost: coordinator CPU {_cost(cost['cpu_ms_per_heartbeat'])} ms per heartbeat "
            f"answered, {cost['cpu_ms_per_agent_second']:.2f} ms per agent-second "
            f"({_count(cost['agents_per_core'])} agents per core at this rate)"
            + (
                ""
                if cost["postgresql_cpu_ms_per_heartbeat"] is None
                else f"; PostgreSQL {_cost(cost['postgresql_cpu_ms_per_heartbeat'])} ms "
                "per heartbeat"
            )
        )
    against = window.get("against_baseline")
    if against:
        parts = []
        if against["heartbeat_p99_over_health_p99"] is not None:
            parts.append(
                f"heartbeat p99 / health p99 {against['heartbeat_p99_over_health_p99']:.1f}"
            )
        if against["heartbeat_p99_over_idle_health_p99"] is not None:
            parts.append(
                f"/ 0-agent health p99 {against['heartbeat_p99_over_idle_health_p99']:.1f}"
            )
        if against["coordinator_cpu_minus_baseline"] is not None:
            parts.append(f"CPU - 0-agent CPU {against['coordinator_cpu_minus_baseline']:+.0f}%")
        if against["coordinator_rss_per_agent_bytes"] is not None:
            parts.append(f"RSS/agent {against['coordinator_rss_per_agent_bytes'] / 1024:.0f} KiB")
        lines.append("  " + "; ".join(parts))
        extra = against.get("coordinator_cpu_ms_per_agent_second_above_baseline")
        if extra is not None:
            lines.append(
                "  cost above the 0-agent window: "
                f"{_cost(against['coordinator_cpu_ms_per_heartbeat_above_baseline'])} ms per "
                f"heartbeat, {extra:.2f} ms per agent-second "
                f"({_count(against['agents_per_core_above_baseline'])} agents per core)"
            )
    lost = {
        kind: number
        for kind, number in window.get("events", {}).items()
        if "lease" in kind or "lost" in kind
    }
    if lost:
        lines.append(
            "  leases ended by the coordinator (ramp to drain + grace): "
            + ", ".join(f"{k} {v:,}" for k, v in lost.items())
        )
    for key, label in (("errors", "in window"), ("errors_outside_window", "ramp/drain")):
        if window[key]:
            lines.append(
                f"  errors ({label}): " + ", ".join(f"{k} {v}" for k, v in window[key].items())
            )
    if (
        any(value > GENERATOR_SATURATED for value in window["generator_cpu_percent"])
        or window["generator_loop_lag_p99_ms"] > GENERATOR_LAG_MS
    ):
        lines.append(
            f"  WARNING: a load generator used more than {GENERATOR_SATURATED:.0f}% of a core or"
            f" its loop ran over {GENERATOR_LAG_MS:.0f} ms late (p99): it may be the bottleneck"
            " (try --generators)"
        )
    return lines


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 agents, short windows")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--agents", help="agent counts, comma-separated (default 100,1000)")
    parser.add_argument("--workers", type=int, default=1, help="serve --workers (default 1)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BUILDCOORD_BENCH_PG_URL", PG_DEFAULT),
        help="PostgreSQL server (a fresh database is made on it per run)",
    )
    parser.add_argument("--duration", type=float, help="seconds of each measuring window")
    parser.add_argument("--jobs-per-second", type=float, default=20.0, help="default 20")
    parser.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="the simulated agents' HTTP: raw asyncio streams (default) or httpx.AsyncClient",
    )
    parser.add_argument(
        "--generators", type=int, default=0, help="load-generator processes (default: 1 per 1,000)"
    )
    parser.add_argument(
        "--coordinators",
        type=int,
        default=1,
        help="buildcoord serve processes on one database, agent i with coordinator i %% K "
        "(default 1; more than 1 needs --backend postgresql)",
    )
    args = parser.parse_args(argv)
    if args.coordinators < 1:
        parser.error("--coordinators needs K >= 1")
    if args.coordinators > 1 and args.backend != "postgresql":
        parser.error(
            f"--coordinators {args.coordinators} needs --backend postgresql: several "
            "coordinators share one database only on PostgreSQL (SQLite is one coordinator's "
            "file; use serve --workers for more processes on it)"
        )
    counts = args.agents or ("100" if args.quick else "100,1000")
    args.counts = [int(value) for value in counts.split(",") if value.strip()]
    if not args.counts or min(args.counts) < 1 or args.jobs_per_second <= 0:
        parser.error("--agents needs counts >= 1 and --jobs-per-second > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base = QUICK if args.quick else FULL
    sizes = Sizes(
        duration=args.duration or base.duration,
        warmup=base.warmup,
        drain=base.drain,
        agents_per_generator=base.agents_per_generator,
    )
    nofile = _raise_nofile(max(args.counts) * 6 + 1024)  # serve inherits it
    began = time.monotonic()
    result: dict[str, Any] = {
        "quick": args.quick,
        "backend": args.backend,
        "serve_workers": args.workers,
        "coordinators": args.coordinators,
        "client": args.client,
        "jobs_per_second": args.jobs_per_second,
        "sizes": sizes.__dict__,
        "protocol": {
            "heartbeat_interval": HEARTBEAT_INTERVAL,
            "poll_interval": POLL_INTERVAL,
            "safety_poll_interval": SAFETY_POLL_INTERVAL,
            "orders_poll_seconds": ORDERS_POLL_SECONDS,
            "orders_session_poll_seconds": ORDERS_SESSION_POLL_SECONDS,
            "keepalive_seconds": KEEPALIVE_SECONDS,
            "reconnect_delays": list(RECONNECT_DELAYS),
            "request_timeout": REQUEST_TIMEOUT,
            "build_seconds": BUILD_SECONDS,
            "requests": {
                name: f"{request.method} {request.path}"
                for name, request in record_protocol().items()
            },
        },
        "nofile_limit": nofile,
    }
    workdir = Path(tempfile.mkdtemp(prefix="buildcoord-fleet-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, True)
        pg_server = None
        if args.backend == "postgresql":
            pg_server = bq._plain_pg_url(args.pg_url)
            bq._check_pg(pg_server)
        result["machine"] = bq.machine_info(pg_server)
        postmaster = None
        if pg_server is not None:
            check_pg_connections(pg_server, args.coordinators, args.workers)
            postmaster = postmaster_pid(pg_server)
            log(
                "PostgreSQL server's CPU: "
                + (
                    "not measured (its processes are not visible here)"
                    if postmaster is None
                    else f"postmaster pid {postmaster} and its children"
                )
            )
        result["postgresql_postmaster_pid"] = postmaster
        backend = bq.Backend(args.backend, workdir, pg_server)
        url = stack.enter_context(backend.database("fleet"))
        admin, coordinators = stack.enter_context(
            serve_coordinators(url, workdir / "home", args.coordinators, args.workers)
        )
        base_url = coordinators[0].base_url
        for coordinator in coordinators:
            log(
                f"buildcoord serve {coordinator.index} (pid {coordinator.pid}) at "
                f"{coordinator.base_url} on {args.backend}, {args.workers} worker(s)"
            )
        result["coordinator_processes"] = [
            {"index": c.index, "port": c.port, "pid": c.pid} for c in coordinators
        ]
        with Client(base_url, admin, timeout=60.0) as operator:
            operator.add_branch(
                BRANCH,
                repo=str(workdir / "no-repository"),
                command="true",
                auto_build=False,
                tag_on_success=False,
                push_tags=False,
            )
        started = time.monotonic()
        # Each window has servers of its own: none inherits sessions or leases of another.
        servers = register_servers(base_url, admin, sum(args.counts))
        log(f"registered {len(servers):,} servers in {time.monotonic() - started:.1f} s")
        events = EventCount(base_url, admin)
        events.take()
        log("== baseline: no agent, the job client and the health probe only")
        baseline = run_window(coordinators, admin, [], args, sizes, postmaster)
        baseline["events"] = events.take()
        result["baseline"] = baseline
        log("\n".join(window_lines(baseline)))
        cancel_queued(base_url, admin)
        events.take()
        windows: dict[str, Any] = {}
        taken = 0
        for count in args.counts:
            log(f"== {count:,} agents")
            mine, taken = servers[taken : taken + count], taken + count
            window = run_window(coordinators, admin, mine, args, sizes, postmaster)
            time.sleep(4.0)  # the agents are gone: their leases end after the reconnect grace
            window["events"] = events.take()
            window["against_baseline"] = compare(window, baseline)
            windows[str(count)] = window
            log("\n".join(window_lines(window)))
            cancel_queued(base_url, admin)  # the next window starts as this one did
            events.take()
        result["windows"] = windows
    result["seconds"] = round(time.monotonic() - began, 1)
    result["load_average_at_end"] = [round(value, 2) for value in os.getloadavg()]
    lines = [
        f"fleet benchmark ({'quick' if args.quick else 'full'} run; {args.backend}, "
        f"{args.coordinators} coordinator(s) x serve --workers {args.workers}, {args.client} "
        f"client, {args.jobs_per_second:g} jobs/s)",
        *window_lines(baseline),
    ]
    for window in result["windows"].values():
        lines += window_lines(window)
    lines.append(
        f"total time {result['seconds']:.0f} s; load average (1, 5, 15 min) at start "
        f"{result['machine']['load_average_at_start']}, at end {result['load_average_at_end']}"
    )
    if args.json:
        print("\n".join(lines), file=sys.stderr)
        print(json.dumps(result, sort_keys=True))
    else:
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
