"""Queue benchmark: claims/s through the store and the HTTP API, and claim latency at depth.

Every figure is printed next to a baseline measured in the same run on the same machine:

1. a bare SQL claim + complete loop written with the driver alone (sqlite3 in WAL with
   synchronous=NORMAL; psycopg 3) on a minimal jobs table;
2. the store (``claim_next_job`` below + ``Store.jobs.complete_job``) with 1, 2 and 4 claimer
   processes, each with its own Store on the same database;
3. the HTTP API of a real ``buildcoord serve`` subprocess on a loopback port, with 1, 2 and 4
   client processes claiming and completing as agents do, against GET /api/v1/health with
   the same number of clients; once as ``serve`` starts by default (uvloop and httptools
   when installed) and once with both hidden (asyncio and h11);
4. claim latency p50/p99 of a single claimer with many queued jobs and dependency edges,
   before and after ANALYZE, with the query plan of the claim.

Throughput rounds are time-boxed (``--quick``: 0.4 s, else 5 s each) on a queue topped up
beforehand, from a common start time; every job a worker reports done must show up as
succeeded in the database, or the run fails. Targets are judged on the best of the 1/2/4
figures (HTTP: on the stack ``serve`` uses by default), p99 on the worse of before/after
ANALYZE.

Usage::

    .venv/bin/python bench/queue.py [--quick] [--json] [--backend sqlite|postgresql|both]
                                    [--pg-url postgresql://user@host:port/db]

PostgreSQL: ``--pg-url`` or ``$BUILDCOORD_BENCH_PG_URL`` names a server (the benchmark
creates a fresh database ``bench_<hex>`` on it and drops it afterwards); without either, a
throwaway cluster from tests/postgres_cluster.py, else postgresql://postgres@127.0.0.1:5432.
All traffic stays on this machine; every loop is bounded; every process started here is
stopped by its pid.
"""

# ruff: noqa: E402
from __future__ import annotations

import sys
from pathlib import Path

# This file is called queue.py: keep its own folder off sys.path so that ``import queue``
# (multiprocessing, httpx, ...) finds the standard library, here and in spawned workers.
_BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _BENCH_DIR]

import argparse
import http.client
import importlib.metadata
import importlib.util
import json
import logging
import multiprocessing
import os
import platform
import random
import secrets
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
import traceback
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager, suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection as Pipe
from types import ModuleType
from typing import Any

import psycopg
from psycopg import sql as pgsql
from sqlalchemy import Engine, bindparam, func, insert, select, text, update

from buildcoord.client import Client
from buildcoord.models import Job, matched_labels
from buildcoord.services.queue import claim_rank
from buildcoord.store import Store
from buildcoord.store import job_queries as queries
from buildcoord.store.engine import DRIVER_LOG_FORMAT, driver_transaction, write_transaction
from buildcoord.store.job_leases import claim_first
from buildcoord.store.schema import job_dependencies, jobs

ROOT = _BENCH_DIR.parent
CLAIMERS = (1, 2, 4)
MAX_WORKERS = max(CLAIMERS)
AGING_SECONDS = 30 * 60.0  # serve's default priority_aging_minutes
LEASE_SECONDS = 300.0
START_DELAY = 0.15  # seconds between sending a round to the workers and its common start
TASK_TIMEOUT = 900.0  # no single round may take longer than this
SERVER_START_TIMEOUT = 60.0
MACHINE_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGETS = {
    "sqlite": {"store": 3000.0, "http": 600.0, "p99_ms": 10.0},
    "postgresql": {"store": 1000.0, "http": 600.0, "p99_ms": 10.0},
}


@dataclass(frozen=True)
class Sizes:
    """How much work each part does."""

    round_seconds: float  # length of one measured round (each claimer count, each part)
    warmup_seconds: float  # an untimed round first: connections, caches, compiled statements
    max_round_jobs: int  # the most jobs queued for one round (the queue is topped up to it)
    latency_queued: int
    latency_edges: int
    latency_claims: int


QUICK = Sizes(0.4, 0.15, 20_000, 20_000, 4_000, 500)
FULL = Sizes(5.0, 1.0, 200_000, 100_000, 20_000, 2_000)


def log(message: str) -> None:
    """Progress goes to stderr: stdout carries only the result."""
    print(message, file=sys.stderr, flush=True)


def claim_next_job(
    store: Store,
    server: str,
    server_labels: frozenset[str],
    *,
    now: float,
    lease_seconds: float,
    actor: str,
) -> Job | None:
    """The store's claim (JobStore.claim_for_server) for a server whose labels are given.

    The benchmark's claimers are no registered servers, so their labels are not read from
    the servers table; the rest is the store's own claim, in one driver transaction.
    """
    with driver_transaction(store.engine) as db:
        first = db.run(queries.CANDIDATES[False], (queries.CLAIM_BATCH,))
        labels = matched_labels(server, server_labels, ())
        return claim_first(db, first, server, labels, now, lease_seconds, actor, False)


# -- worker processes -------------------------------------------------------------------------

_STORES: dict[str, Store] = {}
_SQLITE: dict[str, sqlite3.Connection] = {}
_PSYCOPG: dict[str, psycopg.Connection[Any]] = {}
_CLIENTS: dict[tuple[str, str], Client] = {}
_RAW_CLIENTS: dict[tuple[str, str], RawClient] = {}


def _wait_until(start_at: float) -> float:
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    return time.time()


def _sqlite_conn(path: str) -> sqlite3.Connection:
    conn = _SQLITE.get(path)
    if conn is None:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        _SQLITE[path] = conn
    return conn


def _psycopg_conn(url: str) -> psycopg.Connection[Any]:
    conn = _PSYCOPG.get(url)
    if conn is None:
        conn = psycopg.connect(url, connect_timeout=10)
        _PSYCOPG[url] = conn
    return conn


def _store(url: str) -> Store:
    store = _STORES.get(url)
    if store is None:
        store = _STORES[url] = Store.open(url, migrate=False)
    return store


def _client(base_url: str, token: str) -> Client:
    client = _CLIENTS.get((base_url, token))
    if client is None:
        client = _CLIENTS[(base_url, token)] = Client(base_url, token, timeout=60.0)
    return client


class RawClient:
    """A lean keep-alive HTTP/1.1 client (http.client) for the benchmark's request loops.

    It sends the requests ``buildcoord.client.Client`` sends (same paths, methods, headers
    that matter and JSON bodies) over one persistent loopback connection, and checks every
    status code, but skips httpx's per-request machinery and pydantic validation of the
    answers: with httpx, the client processes used more CPU per request than the server,
    on the same two cores, so the benchmark measured its own client.
    """

    IDLE_RECONNECT_SECONDS = 2.0

    def __init__(self, base_url: str, token: str, timeout: float = 60.0) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 80
        self.timeout = timeout
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        self.last_used = 0.0

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One request on the kept-alive connection; the decoded JSON, or None for a 204.

        No request is ever retried (a claim is not idempotent). Instead, a connection idle
        for longer than IDLE_RECONNECT_SECONDS is replaced before use: the server closes
        idle keep-alive connections (uvicorn after 5 s), and a request sent just then fails.
        """
        now = time.monotonic()
        if now - self.last_used > self.IDLE_RECONNECT_SECONDS:
            self.conn.close()  # http.client connects again on the next request
        self.last_used = now
        payload = None if body is None else json.dumps(body).encode()
        self.conn.request(method, "/api/v1/" + path, body=payload, headers=self.headers)
        response = self.conn.getresponse()
        data = response.read()
        self.last_used = time.monotonic()
        if response.status == 204:
            return None
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: HTTP {response.status}: {data[:300]!r}")
        if response.will_close:  # the server closed the connection: reconnect next time
            self.conn.close()
        return json.loads(data)

    def claim_job(self, server: str) -> dict[str, Any] | None:
        """POST /jobs/claim, as Client.claim_job."""
        job: dict[str, Any] | None = self.call("POST", "jobs/claim", {"server": server})
        return job

    def complete_job(self, job_id: int, *, server: str, fencing_token: int) -> dict[str, Any]:
        """POST /jobs/{id}/complete, as Client.complete_job (status succeeded, exit code 0)."""
        body = {
            "status": "succeeded",
            "exit_code": 0,
            "duration": None,
            "reason": None,
            "server": server,
            "fencing_token": fencing_token,
        }
        job: dict[str, Any] = self.call("POST", f"jobs/{job_id}/complete", body)
        if job["id"] != job_id or job["status"] != "succeeded":
            raise RuntimeError(f"complete of job {job_id} answered {job}")
        return job

    def health(self) -> None:
        """GET /health."""
        self.call("GET", "health")

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def _raw_client(base_url: str, token: str) -> RawClient:
    client = _RAW_CLIENTS.get((base_url, token))
    if client is None:
        client = _RAW_CLIENTS[(base_url, token)] = RawClient(base_url, token)
    return client


def task_bare_sqlite(
    path: str, server: str, limit: int, seconds: float, start_at: float
) -> dict[str, Any]:
    """Baseline: claim (BEGIN IMMEDIATE, pick, mark running) and complete with sqlite3 alone."""
    conn = _sqlite_conn(path)
    started = _wait_until(start_at)
    deadline = started + seconds
    count = 0
    drained = False
    for _ in range(limit):
        if time.time() >= deadline:
            break
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute(
            "SELECT id FROM bare_jobs WHERE status = 'queued' ORDER BY priority, id LIMIT 1"
        ).fetchone()
        if row is None:
            conn.execute("COMMIT")
            drained = True
            break
        conn.execute(
            "UPDATE bare_jobs SET status = 'running', server = ?, started_at = ?"
            " WHERE id = ? AND status = 'queued'",
            (server, time.time(), row[0]),
        )
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "UPDATE bare_jobs SET status = 'succeeded', finished_at = ?"
            " WHERE id = ? AND status = 'running' AND server = ?",
            (time.time(), row[0], server),
        )
        conn.execute("COMMIT")
        count += 1
    return {"count": count, "start": started, "end": time.time(), "drained": drained}


def task_bare_postgresql(
    url: str, server: str, limit: int, seconds: float, start_at: float
) -> dict[str, Any]:
    """Baseline: claim (SELECT ... FOR UPDATE SKIP LOCKED, mark running) and complete, psycopg."""
    conn = _psycopg_conn(url)
    started = _wait_until(start_at)
    deadline = started + seconds
    count = 0
    drained = False
    for _ in range(limit):
        if time.time() >= deadline:
            break
        row = conn.execute(
            "SELECT id FROM bare_jobs WHERE status = 'queued' ORDER BY priority, id LIMIT 1"
            " FOR UPDATE SKIP LOCKED"
        ).fetchone()
        if row is None:
            conn.commit()
            drained = True
            break
        conn.execute(
            "UPDATE bare_jobs SET status = 'running', server = %s, started_at = %s"
            " WHERE id = %s AND status = 'queued'",
            (server, time.time(), row[0]),
        )
        conn.commit()
        conn.execute(
            "UPDATE bare_jobs SET status = 'succeeded', finished_at = %s"
            " WHERE id = %s AND status = 'running' AND server = %s",
            (time.time(), row[0], server),
        )
        conn.commit()
        count += 1
    return {"count": count, "start": started, "end": time.time(), "drained": drained}


def task_store(
    url: str, server: str, limit: int, seconds: float, start_at: float
) -> dict[str, Any]:
    """Claim and complete through the store until the queue is empty."""
    store = _store(url)
    actor = f"agent:{server}"
    started = _wait_until(start_at)
    deadline = started + seconds
    count = 0
    drained = False
    for _ in range(limit):
        if time.time() >= deadline:
            break
        job = claim_next_job(
            store, server, frozenset(), now=time.time(), lease_seconds=LEASE_SECONDS, actor=actor
        )
        if job is None:
            drained = True
            break
        store.jobs.complete_job(
            job.id,
            server=server,
            fencing_token=job.fencing_token,
            status="succeeded",
            exit_code=0,
            duration=None,
            reason=None,
            now=time.time(),
            actor=actor,
        )
        count += 1
    return {"count": count, "start": started, "end": time.time(), "drained": drained}


def task_http_jobs(
    base_url: str,
    token: str,
    server: str,
    limit: int,
    seconds: float,
    start_at: float,
    client_kind: str = "raw",
) -> dict[str, Any]:
    """Claim and complete over HTTP as an agent does, until the queue is empty."""
    started_at = start_at
    count = 0
    drained = False
    if client_kind == "httpx":
        client = _client(base_url, token)
        started = _wait_until(started_at)
        deadline = started + seconds
        for _ in range(limit):
            if time.time() >= deadline:
                break
            job = client.claim_job(server)
            if job is None:
                drained = True
                break
            client.complete_job(
                job.id,
                status="succeeded",
                exit_code=0,
                server=server,
                fencing_token=job.fencing_token,
            )
            count += 1
    else:
        raw = _raw_client(base_url, token)
        started = _wait_until(started_at)
        deadline = started + seconds
        for _ in range(limit):
            if time.time() >= deadline:
                break
            claimed = raw.claim_job(server)
            if claimed is None:
                drained = True
                break
            raw.complete_job(claimed["id"], server=server, fencing_token=claimed["fencing_token"])
            count += 1
    return {"count": count, "start": started, "end": time.time(), "drained": drained}


def task_http_health(
    base_url: str,
    token: str,
    seconds: float,
    limit: int,
    start_at: float,
    client_kind: str = "raw",
) -> dict[str, Any]:
    """GET /api/v1/health in a loop for a fixed time: the empty-endpoint baseline."""
    if client_kind == "httpx":
        session = _client(base_url, token).http

        def request() -> None:
            session.get("health").raise_for_status()

    else:
        request = _raw_client(base_url, token).health
    started = _wait_until(start_at)
    deadline = started + seconds
    count = 0
    for _ in range(limit):
        request()
        count += 1
        if time.time() >= deadline:
            break
    return {"count": count, "start": started, "end": time.time()}


def task_close_all() -> None:
    """Drop every cached connection (before a database is dropped)."""
    for store in _STORES.values():
        store.close()
    for conn in _SQLITE.values():
        conn.close()
    for pg in _PSYCOPG.values():
        pg.close()
    for client in _CLIENTS.values():
        client.close()
    for raw in _RAW_CLIENTS.values():
        raw.close()
    _RAW_CLIENTS.clear()
    _STORES.clear()
    _SQLITE.clear()
    _PSYCOPG.clear()
    _CLIENTS.clear()


def task_ping() -> int:
    """Prove the worker is up (and has imported everything)."""
    return os.getpid()


TASKS: dict[str, Callable[..., Any]] = {
    "bare_sqlite": task_bare_sqlite,
    "bare_postgresql": task_bare_postgresql,
    "store": task_store,
    "http_jobs": task_http_jobs,
    "http_health": task_http_health,
    "close_all": task_close_all,
    "ping": task_ping,
}


def _worker_main(pipe: Pipe) -> None:
    """Serve tasks from the parent until told to stop, or until it goes quiet for too long."""
    try:
        while pipe.poll(TASK_TIMEOUT * 2):
            message = pipe.recv()
            if message is None:
                break
            name, kwargs = message
            try:
                reply: tuple[str, Any] = ("ok", TASKS[name](**kwargs))
            except BaseException:
                reply = ("error", traceback.format_exc())
            pipe.send(reply)
    finally:
        task_close_all()


class Workers:
    """A fixed set of spawned processes; round i gives one task to each of the first k."""

    def __init__(self, count: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Pipe] = []
        self.processes: list[multiprocessing.process.BaseProcess] = []
        for index in range(count):
            parent, child = context.Pipe()
            process = context.Process(
                target=_worker_main, args=(child,), name=f"bench-worker-{index}", daemon=True
            )
            process.start()
            child.close()
            self.pipes.append(parent)
            self.processes.append(process)
        self.run([("ping", {}) for _ in range(count)])

    def run(self, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
        """Send call i to worker i, wait for every answer, raise the first failure."""
        for pipe, call in zip(self.pipes, calls, strict=False):
            pipe.send(call)
        results: list[Any] = []
        failures: list[str] = []
        for pipe in self.pipes[: len(calls)]:
            if not pipe.poll(TASK_TIMEOUT):
                raise RuntimeError(f"a benchmark worker gave no answer in {TASK_TIMEOUT:.0f} s")
            status, value = pipe.recv()
            if status == "ok":
                results.append(value)
            else:
                failures.append(str(value))
        if failures:
            raise RuntimeError("a benchmark worker failed:\n" + "\n".join(failures))
        return results

    def broadcast(self, name: str, kwargs: dict[str, Any] | None = None) -> None:
        """Run one task on every worker."""
        self.run([(name, dict(kwargs or {})) for _ in self.pipes])

    def close(self) -> None:
        """Ask each worker to stop; terminate (by its pid) any that does not."""
        for pipe in self.pipes:
            with suppress(OSError):
                pipe.send(None)
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
        for pipe in self.pipes:
            pipe.close()


def timed_round(workers: Workers, task: str, per_worker: list[dict[str, Any]]) -> Round:
    """Run one task per worker from a common start; return how many ops and how long."""
    start_at = time.time() + START_DELAY
    results = workers.run([(task, {**kwargs, "start_at": start_at}) for kwargs in per_worker])
    late = max(result["start"] for result in results) - start_at
    if late > 0.05:
        log(f"    (a worker started {late * 1000:.0f} ms late)")
    count = sum(int(result["count"]) for result in results)
    if any(result.get("drained") for result in results):
        log("    (the queue ran dry before the round's end)")
    elapsed = max(result["end"] for result in results) - start_at
    return Round(count, elapsed)


@dataclass(frozen=True)
class Round:
    """What one timed round did."""

    count: int
    seconds: float

    @property
    def rate(self) -> float:
        """Operations per second."""
        return self.count / self.seconds if self.seconds > 0 else 0.0


@dataclass
class JobQueue:
    """Where one round's jobs live: fill it up, and count the jobs finished."""

    top_up: Callable[[int], None]  # make at least n jobs queued
    finished: Callable[[], int]  # how many jobs have succeeded so far

    def measure(
        self,
        workers: Workers,
        task: str,
        per_worker: list[dict[str, Any]],
        *,
        seconds: float,
        estimate: float,
        cap: int,
    ) -> Round:
        """Fill the queue for a round of ``seconds`` at up to ``estimate``/s, run it, check it.

        Every job the workers say they completed must show as succeeded in the database.
        """
        self.top_up(min(cap, int(max(estimate, 50.0) * seconds * 2.5) + 100))
        before = self.finished()
        result = timed_round(
            workers, task, [{**kwargs, "seconds": seconds, "limit": cap} for kwargs in per_worker]
        )
        done = self.finished() - before
        if done != result.count:
            raise RuntimeError(
                f"{task}: workers completed {result.count} jobs, database shows {done}"
            )
        return result


# -- databases ----------------------------------------------------------------------------------


@dataclass
class Backend:
    """One database kind under test: how to make a fresh database of it."""

    name: str  # "sqlite" or "postgresql"
    workdir: Path
    pg_server_url: str | None = None

    @contextmanager
    def database(self, label: str) -> Iterator[str]:
        """Yield the plain URL of a fresh, empty database; remove it afterwards."""
        if self.name == "sqlite":
            path = self.workdir / f"{label}-{secrets.token_hex(4)}.db"
            try:
                yield f"sqlite:///{path}"
            finally:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
            return
        assert self.pg_server_url is not None
        dbname = f"bench_{secrets.token_hex(6)}"
        with psycopg.connect(self.pg_server_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(dbname)))
        try:
            yield _pg_url_for(self.pg_server_url, dbname)
        finally:
            with psycopg.connect(self.pg_server_url, autocommit=True, connect_timeout=10) as conn:
                conn.execute(
                    pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        pgsql.Identifier(dbname)
                    )
                )


def _pg_url_for(server_url: str, dbname: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


def _plain_pg_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a URL: {url!r}")
    scheme = scheme.split("+", 1)[0]
    return f"{'postgresql' if scheme == 'postgres' else scheme}://{rest}"


def _check_pg(url: str) -> None:
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        conn.execute("SELECT 1")


def _load_cluster_helper() -> ModuleType | None:
    path = ROOT / "tests" / "postgres_cluster.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("_bench_postgres_cluster", path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(spec.name, None)
        log(f"(tests/postgres_cluster.py is not importable: {exc})")
        return None
    return module


@contextmanager
def postgres_server(explicit: str | None, stack: ExitStack) -> Iterator[tuple[str, str]]:
    """Yield (server URL, where it came from), starting a throwaway cluster if need be."""
    if explicit:
        url = _plain_pg_url(explicit)
        _check_pg(url)
        yield url, "given URL"
        return
    helper = _load_cluster_helper()
    if helper is not None:
        try:
            server = stack.enter_context(helper.postgres_server({}))
        except Exception as exc:
            log(f"(throwaway PostgreSQL cluster unavailable: {exc}; trying {MACHINE_PG_URL})")
        else:  # the benchmark's own failures propagate: they are not the cluster's
            yield server.url, "throwaway cluster (tests/postgres_cluster.py)"
            return
    _check_pg(MACHINE_PG_URL)
    yield MACHINE_PG_URL, "the machine's server"


# -- filling queues -----------------------------------------------------------------------------


def _job_row(index: int, priority: int, queued_at: float, labels: str = "") -> dict[str, Any]:
    return {
        "branch": "main",
        "commit": f"{index:040x}",
        "priority": priority,
        "status": "queued",
        "attempt": 1,
        "max_attempts": 3,
        "labels": labels,
        "depends_on": "",
        "pending_deps": 0,
        "rank": claim_rank(priority, queued_at, AGING_SECONDS),
        "fencing_token": 0,
        "created_at": queued_at,
        "queued_at": queued_at,
    }


def add_store_jobs(engine: Engine, count: int, rng: random.Random) -> None:
    """Bulk-insert count ready jobs (random priorities) through the store's jobs table."""
    now = time.time()
    rows = [_job_row(index, rng.randint(1, 10), now + index * 1e-6) for index in range(count)]
    with write_transaction(engine) as conn:
        conn.execute(insert(jobs), rows)


def seed_latency_queue(engine: Engine, queued: int, edges: int, rng: random.Random) -> None:
    """Insert queued jobs and dependency edges in one transaction, consistently.

    Every dependent depends on two earlier jobs, all of them queued, so its pending_deps is 2;
    ``depends_on`` and job_dependencies both hold the edges. A fifth of the jobs carry a label
    the claimer has; their queue times spread over the last hour.
    """
    now = time.time()
    rows = [
        _job_row(
            index,
            rng.randint(1, 10),
            now - 3600.0 + 3600.0 * index / queued,
            "linux" if rng.random() < 0.2 else "",
        )
        for index in range(queued)
    ]
    with write_transaction(engine) as conn:
        conn.execute(insert(jobs), rows)
        ids = list(conn.execute(select(jobs.c.id).order_by(jobs.c.id)).scalars())
        dependents = rng.sample(range(queued // 5, queued), edges // 2)
        links: list[dict[str, int]] = []
        changes: list[dict[str, Any]] = []
        for position in sorted(dependents):
            deps = sorted(rng.sample(range(position), 2))
            dep_ids = [ids[dep] for dep in deps]
            links.extend({"job_id": ids[position], "depends_on_id": dep} for dep in dep_ids)
            changes.append(
                {
                    "row_id": ids[position],
                    "deps_text": ",".join(str(dep) for dep in dep_ids),
                    "pending": len(dep_ids),
                }
            )
        conn.execute(insert(job_dependencies), links)
        conn.execute(
            update(jobs)
            .where(jobs.c.id == bindparam("row_id"))
            .values(depends_on=bindparam("deps_text"), pending_deps=bindparam("pending")),
            changes,
        )


def inconsistent_dependents(engine: Engine) -> int:
    """Count queued jobs whose pending_deps differs from their unsucceeded dependencies."""
    query = text(
        "SELECT count(*) FROM jobs j WHERE j.status = 'queued' AND j.pending_deps <> ("
        " SELECT count(*) FROM job_dependencies d JOIN jobs p ON p.id = d.depends_on_id"
        " WHERE d.job_id = j.id AND p.status <> 'succeeded')"
    )
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


BARE_SCHEMA = {
    "sqlite": (
        "CREATE TABLE IF NOT EXISTS bare_jobs (id INTEGER PRIMARY KEY, priority INTEGER NOT NULL,"
        " status TEXT NOT NULL, server TEXT, queued_at REAL NOT NULL, started_at REAL,"
        " finished_at REAL)",
        "CREATE INDEX IF NOT EXISTS bare_jobs_claim ON bare_jobs (priority, id)"
        " WHERE status = 'queued'",
    ),
    "postgresql": (
        "CREATE TABLE IF NOT EXISTS bare_jobs (id BIGSERIAL PRIMARY KEY, priority INTEGER NOT NULL,"
        " status TEXT NOT NULL, server TEXT, queued_at DOUBLE PRECISION NOT NULL,"
        " started_at DOUBLE PRECISION, finished_at DOUBLE PRECISION)",
        "CREATE INDEX IF NOT EXISTS bare_jobs_claim ON bare_jobs (priority, id)"
        " WHERE status = 'queued'",
    ),
}


def add_bare_jobs(backend: str, target: str, count: int, rng: random.Random) -> None:
    """Create the bare table if need be and insert count queued rows."""
    now = time.time()
    rows = [(rng.randint(1, 10), "queued", now + index * 1e-6) for index in range(count)]
    if backend == "sqlite":
        with closing(sqlite3.connect(target, isolation_level=None, timeout=30)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            for statement in BARE_SCHEMA["sqlite"]:
                conn.execute(statement)
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO bare_jobs (priority, status, queued_at) VALUES (?, ?, ?)", rows
            )
            conn.execute("COMMIT")
        return
    with psycopg.connect(target, connect_timeout=10) as pg:
        for statement in BARE_SCHEMA["postgresql"]:
            pg.execute(statement)
        with pg.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO bare_jobs (priority, status, queued_at) VALUES (%s, %s, %s)", rows
            )
        pg.commit()


def bare_counts(backend: str, target: str) -> dict[str, int]:
    """Rows of the bare table by status."""
    query = "SELECT status, count(*) FROM bare_jobs GROUP BY status"
    if backend == "sqlite":
        with closing(sqlite3.connect(target, timeout=30)) as conn:
            return {str(status): int(n) for status, n in conn.execute(query).fetchall()}
    with psycopg.connect(target, connect_timeout=10) as pg:
        return {str(status): int(n) for status, n in pg.execute(query).fetchall()}


def bare_queue(backend: str, target: str, rng: random.Random) -> JobQueue:
    """The bare table as a JobQueue."""

    add_bare_jobs(backend, target, 0, rng)  # creates the table

    def top_up(count: int) -> None:
        missing = count - bare_counts(backend, target).get("queued", 0)
        if missing > 0:
            add_bare_jobs(backend, target, missing, rng)

    return JobQueue(top_up, lambda: bare_counts(backend, target).get("succeeded", 0))


def store_counts(engine: Engine) -> dict[str, int]:
    """Jobs of the store by status."""
    with engine.connect() as conn:
        rows = conn.execute(select(jobs.c.status, func.count()).group_by(jobs.c.status)).all()
    return {str(status): int(n) for status, n in rows}


def store_queue(engine: Engine, rng: random.Random) -> JobQueue:
    """The store's jobs table as a JobQueue."""

    def top_up(count: int) -> None:
        missing = count - store_counts(engine).get("queued", 0)
        if missing > 0:
            add_store_jobs(engine, missing, rng)

    return JobQueue(top_up, lambda: store_counts(engine).get("succeeded", 0))


# -- parts of the benchmark -------------------------------------------------------------------


def run_baseline(
    backend: Backend, workers: Workers, sizes: Sizes, rng: random.Random
) -> dict[str, float]:
    """Bare-driver claims/s with 1, 2, 4 claimers."""
    rates: dict[str, float] = {}
    with backend.database("bare") as url:
        if backend.name == "sqlite":
            target, task, key = url.removeprefix("sqlite:///"), "bare_sqlite", "path"
        else:
            target, task, key = url, "bare_postgresql", "url"
        queue = bare_queue(backend.name, target, rng)
        calls = [{key: target, "server": f"w{index}"} for index in range(MAX_WORKERS)]
        estimate = queue.measure(
            workers,
            task,
            calls,
            seconds=sizes.warmup_seconds,
            estimate=1000.0,
            cap=sizes.max_round_jobs,
        ).rate  # warm-up: connections, caches
        for claimers in CLAIMERS:
            result = queue.measure(
                workers,
                task,
                calls[:claimers],
                seconds=sizes.round_seconds,
                estimate=estimate,
                cap=sizes.max_round_jobs,
            )
            rates[str(claimers)] = result.rate
            estimate = max(estimate, result.rate)
            log(
                f"  {backend.name} bare SQL claims/s, {claimers} claimer(s): {result.rate:,.0f}"
                f" ({result.count:,} jobs)"
            )
        workers.broadcast("close_all")
    return rates


def run_store(
    backend: Backend, url: str, store: Store, workers: Workers, sizes: Sizes, rng: random.Random
) -> dict[str, float]:
    """Store claims/s (claim + complete) with 1, 2, 4 claimer processes."""
    rates: dict[str, float] = {}
    queue = store_queue(store.engine, rng)
    calls = [{"url": url, "server": f"w{index}"} for index in range(MAX_WORKERS)]
    estimate = queue.measure(
        workers,
        "store",
        calls,
        seconds=sizes.warmup_seconds,
        estimate=500.0,
        cap=sizes.max_round_jobs,
    ).rate  # warm-up: connections, compiled statements
    for claimers in CLAIMERS:
        result = queue.measure(
            workers,
            "store",
            calls[:claimers],
            seconds=sizes.round_seconds,
            estimate=estimate,
            cap=sizes.max_round_jobs,
        )
        rates[str(claimers)] = result.rate
        estimate = max(estimate, result.rate)
        log(
            f"  {backend.name} store claims/s, {claimers} claimer(s): {result.rate:,.0f}"
            f" ({result.count:,} jobs)"
        )
    workers.broadcast("close_all")
    return rates


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


# Runs `buildcoord serve` with uvloop and httptools hidden, so uvicorn's "auto" picks asyncio/h11.
_PLAIN_SERVE = (
    "import sys; sys.modules['uvloop'] = None; sys.modules['httptools'] = None; "
    "from buildcoord.cli import main; main()"
)


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a process and its live children (``serve --workers``) have used
    so far (Linux /proc), or None elsewhere."""
    try:
        total = 0.0
        for stat in [Path(f"/proc/{pid}/stat"), *_children_stats(pid)]:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total
    except (OSError, ValueError, IndexError):
        return None


def _children_stats(pid: int) -> list[Path]:
    """/proc/<child>/stat of pid's live children."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(entry / "stat")
    return found


@contextmanager
def serve_process(
    url: str, home: Path, *, plain: bool, workers: int = 1
) -> Iterator[tuple[str, str, int]]:
    """Start `buildcoord serve [--workers N]` on a free loopback port; yield (base URL, admin
    token, pid)."""
    port = _free_port()
    admin = "bc_bench_" + secrets.token_hex(16)
    env = {key: value for key, value in os.environ.items() if not key.startswith("BUILDCOORD_")}
    env.update({"BUILDCOORD_ADMIN_TOKEN": admin, "BUILDCOORD_HOME": str(home)})
    args = ["serve", "--db", url, "--host", "127.0.0.1", "--port", str(port)]
    args += ["--log-level", "warning"]
    if workers > 1:
        args += ["--workers", str(workers)]
    command = (
        [sys.executable, "-c", _PLAIN_SERVE, *args]
        if plain
        else [sys.executable, "-m", "buildcoord", *args]
    )
    home.mkdir(parents=True, exist_ok=True)
    logfile = home / f"serve-{port}.log"
    with logfile.open("wb") as output:
        process = subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        with Client(base_url, admin, timeout=2.0) as probe:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"buildcoord serve exited with {process.returncode}:\n"
                        + logfile.read_text(errors="replace")[-3000:]
                    )
                try:
                    probe.http.get("health").raise_for_status()
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            "buildcoord serve did not answer in time:\n"
                            + logfile.read_text(errors="replace")[-3000:]
                        ) from None
                    time.sleep(0.1)
        yield base_url, admin, process.pid
    finally:
        if process.poll() is None:
            process.terminate()  # by pid: the process we started
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def run_http(
    backend: Backend,
    url: str,
    store: Store,
    workers: Workers,
    sizes: Sizes,
    rng: random.Random,
    home: Path,
    *,
    plain: bool,
    client_kind: str,
    serve_workers: int = 1,
) -> dict[str, Any]:
    """jobs/s claimed and completed over HTTP, and health requests/s, with 1, 2, 4 clients.

    Beside the rates: the CPU time the server process spent per health request and per job
    (claim + complete), which the machine's other load disturbs less than the rates.
    """
    health: dict[str, float] = {}
    rates: dict[str, float] = {}
    counts: dict[str, int] = {}
    health_cpu: dict[str, float] = {}
    job_cpu: dict[str, float] = {}
    variant = "asyncio+h11" if plain else _default_stack()
    # The plain stack (asyncio + h11) is one process: its workers would start the default one.
    workers_used = 1 if plain else serve_workers
    if workers_used > 1:
        variant += f", {workers_used} workers"
    queue = store_queue(store.engine, rng)
    with serve_process(url, home, plain=plain, workers=workers_used) as (base_url, admin, pid):
        tag = secrets.token_hex(3)
        agents: list[tuple[str, str]] = []
        with Client(base_url, admin) as operator:
            for index in range(MAX_WORKERS):
                server, token = operator.register_server(f"bench-{tag}-{index}")
                agents.append((server.name, token))
            # A few jobs through the API itself; the rounds' jobs go straight into the table.
            for index in range(10):
                operator.submit_job("main", f"{index:07x}", priority=1 + index % 10)
        calls = [
            {"base_url": base_url, "token": token, "server": name, "client_kind": client_kind}
            for name, token in agents
        ]
        estimate = queue.measure(
            workers,
            "http_jobs",
            calls,
            seconds=sizes.warmup_seconds,
            estimate=200.0,
            cap=sizes.max_round_jobs,
        ).rate  # warm-up: connections, the API's own jobs
        for clients in CLAIMERS:
            per_worker = [
                {
                    "base_url": base_url,
                    "token": token,
                    "seconds": sizes.round_seconds,
                    "client_kind": client_kind,
                }
                for _, token in agents[:clients]
            ]
            cpu_before = _cpu_seconds(pid)
            result = timed_round(
                workers, "http_health", [{**kw, "limit": 10**7} for kw in per_worker]
            )
            cpu_after = _cpu_seconds(pid)
            health[str(clients)] = result.rate
            if cpu_before is not None and cpu_after is not None and result.count:
                health_cpu[str(clients)] = (cpu_after - cpu_before) / result.count * 1000
            log(
                f"  {backend.name} HTTP ({variant}) health requests/s, {clients} client(s): "
                f"{result.rate:,.0f}"
            )
        for clients in CLAIMERS:
            cpu_before = _cpu_seconds(pid)
            result = queue.measure(
                workers,
                "http_jobs",
                calls[:clients],
                seconds=sizes.round_seconds,
                estimate=estimate,
                cap=sizes.max_round_jobs,
            )
            cpu_after = _cpu_seconds(pid)
            rates[str(clients)] = result.rate
            counts[str(clients)] = result.count
            if cpu_before is not None and cpu_after is not None and result.count:
                job_cpu[str(clients)] = (cpu_after - cpu_before) / result.count * 1000
            estimate = max(estimate, result.rate)
            log(
                f"  {backend.name} HTTP ({variant}) jobs/s, {clients} client(s): "
                f"{result.rate:,.0f} ({result.count:,} jobs)"
            )
        workers.broadcast("close_all")
    return {
        "stack": variant,
        "client": client_kind,
        "health_requests_per_s": health,
        "jobs_per_s": rates,
        "jobs_done": counts,
        "ratio_to_health": {key: rates[key] / health[key] for key in rates},
        "server_cpu_ms_per_health_request": health_cpu,
        "server_cpu_ms_per_job": job_cpu,
    }


def _default_stack() -> str:
    loop = "uvloop" if _has_module("uvloop") else "asyncio"
    http = "httptools" if _has_module("httptools") else "h11"
    return f"{loop}+{http}"


def _capture_claim_query(store: Store) -> tuple[str, Any]:
    """Run one real claim and return the SQL and parameters its candidate SELECT sent.

    With SQL logging on, the store's driver logs each statement it runs with its parameters.
    """
    captured: list[tuple[str, Any]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.msg != DRIVER_LOG_FORMAT or not isinstance(record.args, tuple):
                return
            statement, parameters = record.args
            words = str(statement).split()
            if words and words[0].upper() == "SELECT" and "rank" in statement and not captured:
                captured.append((str(statement), tuple(parameters)))

    logger = logging.getLogger("sqlalchemy.engine.Engine")
    handler, level, propagate = Collect(), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        job = claim_next_job(
            store,
            "bench-latency",
            frozenset({"linux"}),
            now=time.time(),
            lease_seconds=LEASE_SECONDS,
            actor="agent:bench-latency",
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
    if job is not None:
        _complete(store, job.id, job.fencing_token)
    if not captured:
        raise RuntimeError("the claim sent no candidate SELECT that this benchmark recognises")
    return captured[0]


def claim_plan(store: Store) -> str:
    """The plan of the store's claim query, with the parameters the store binds."""
    statement, parameters = _capture_claim_query(store)
    prefix = "EXPLAIN QUERY PLAN " if store.engine.dialect.name == "sqlite" else "EXPLAIN "
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(prefix + statement, parameters)
        rows = cursor.fetchall()
        cursor.close()
        raw.rollback()
    finally:
        raw.close()
    if store.engine.dialect.name == "sqlite":
        return "; ".join(str(row[-1]) for row in rows)
    return "; ".join(str(row[0]).strip() for row in rows)


def _complete(store: Store, job_id: int, token: int) -> None:
    store.jobs.complete_job(
        job_id,
        server="bench-latency",
        fencing_token=token,
        status="succeeded",
        exit_code=0,
        duration=None,
        reason=None,
        now=time.time(),
        actor="agent:bench-latency",
    )


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def measure_latency(store: Store, claims: int) -> dict[str, Any]:
    """Claim (timed) and complete (timed apart) claims jobs one after the other."""
    plan = claim_plan(store)
    claim_times: list[float] = []
    complete_times: list[float] = []
    labels = frozenset({"linux"})
    for _ in range(20):  # warm-up
        job = claim_next_job(
            store,
            "bench-latency",
            labels,
            now=time.time(),
            lease_seconds=LEASE_SECONDS,
            actor="bench",
        )
        if job is not None:
            _complete(store, job.id, job.fencing_token)
    for _ in range(claims):
        started = time.perf_counter()
        job = claim_next_job(
            store,
            "bench-latency",
            labels,
            now=time.time(),
            lease_seconds=LEASE_SECONDS,
            actor="bench",
        )
        claimed = time.perf_counter()
        if job is None:
            raise RuntimeError("the latency queue ran dry")
        _complete(store, job.id, job.fencing_token)
        claim_times.append((claimed - started) * 1000)
        complete_times.append((time.perf_counter() - claimed) * 1000)
    return {
        "claim_p50_ms": _percentile(claim_times, 0.50),
        "claim_p99_ms": _percentile(claim_times, 0.99),
        "claim_max_ms": max(claim_times),
        "complete_p50_ms": _percentile(complete_times, 0.50),
        "complete_p99_ms": _percentile(complete_times, 0.99),
        "plan": plan,
        "uses_claim_index": "ix_jobs_claim_order" in plan,
    }


def run_latency(backend: Backend, sizes: Sizes, rng: random.Random) -> dict[str, Any]:
    """p50/p99 of a single claimer at depth, before and after ANALYZE."""
    with backend.database("latency") as url:
        store = Store.open(url)
        try:
            started = time.monotonic()
            seed_latency_queue(store.engine, sizes.latency_queued, sizes.latency_edges, rng)
            log(
                f"  {backend.name} latency: {sizes.latency_queued:,} queued jobs and "
                f"{sizes.latency_edges:,} dependency edges inserted in "
                f"{time.monotonic() - started:.1f} s"
            )
            before = measure_latency(store, sizes.latency_claims)
            log(
                f"  {backend.name} claim latency before ANALYZE: p50 "
                f"{before['claim_p50_ms']:.2f} ms, p99 {before['claim_p99_ms']:.2f} ms "
                f"[{before['plan']}]"
            )
            with store.engine.connect() as conn:
                if backend.name == "sqlite":
                    conn.exec_driver_sql("ANALYZE")
                else:
                    conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
                conn.commit()
            after = measure_latency(store, sizes.latency_claims)
            log(
                f"  {backend.name} claim latency after ANALYZE: p50 "
                f"{after['claim_p50_ms']:.2f} ms, p99 {after['claim_p99_ms']:.2f} ms "
                f"[{after['plan']}]"
            )
            bad = inconsistent_dependents(store.engine)
            with store.engine.connect() as conn:
                queued = conn.execute(
                    select(func.count()).select_from(jobs).where(jobs.c.status == "queued")
                ).scalar_one()
        finally:
            store.close()
    return {
        "queued": sizes.latency_queued,
        "edges": sizes.latency_edges,
        "claims": sizes.latency_claims,
        "queued_after": int(queued),
        "inconsistent_pending_deps_after": bad,
        "before_analyze": before,
        "after_analyze": after,
    }


def run_backend(
    backend: Backend,
    workers: Workers,
    sizes: Sizes,
    seed: int,
    *,
    skip_http: bool,
    client_kind: str = "raw",
    serve_workers: int = 1,
) -> dict[str, Any]:
    """Every part of the benchmark on one backend."""
    rng = random.Random(seed)
    result: dict[str, Any] = {}
    log(f"== {backend.name}: bare SQL baseline")
    result["baseline_claims_per_s"] = run_baseline(backend, workers, sizes, rng)
    with backend.database("store") as url:
        store = Store.open(url)
        try:
            log(f"== {backend.name}: store claims")
            store_rates = run_store(backend, url, store, workers, sizes, rng)
            result["store_claims_per_s"] = store_rates
            result["store_ratio_to_baseline"] = {
                key: store_rates[key] / result["baseline_claims_per_s"][key] for key in store_rates
            }
            if not skip_http:
                log(f"== {backend.name}: HTTP API")
                http: dict[str, Any] = {}
                home = backend.workdir / f"home-{backend.name}"
                stacks = [False]
                if _has_module("uvloop") or _has_module("httptools"):
                    stacks.append(True)
                for plain in stacks:
                    figures = run_http(
                        backend,
                        url,
                        store,
                        workers,
                        sizes,
                        rng,
                        home,
                        plain=plain,
                        client_kind=client_kind,
                        serve_workers=serve_workers,
                    )
                    http["plain" if plain else "default"] = figures
                result["http"] = http
        finally:
            store.close()
    log(f"== {backend.name}: claim latency")
    result["latency"] = run_latency(backend, sizes, rng)
    return result


# -- verdicts and output ------------------------------------------------------------------------


def add_verdicts(name: str, figures: dict[str, Any]) -> None:
    """Judge each figure against its target; the best claimer count counts for throughput."""
    targets = TARGETS[name]
    store_best = max(figures["store_claims_per_s"].values())
    verdicts: dict[str, Any] = {
        "store_best_claims_per_s": store_best,
        "store_target": targets["store"],
        "store_pass": store_best >= targets["store"],
    }
    if "http" in figures:
        best = max(figures["http"]["default"]["jobs_per_s"].values())
        verdicts.update(
            http_best_jobs_per_s=best,
            http_target=targets["http"],
            http_pass=best >= targets["http"],
        )
    latency = figures["latency"]
    worst = max(latency["before_analyze"]["claim_p99_ms"], latency["after_analyze"]["claim_p99_ms"])
    verdicts.update(
        latency_worst_p99_ms=worst,
        latency_target_p99_ms=targets["p99_ms"],
        latency_pass=worst <= targets["p99_ms"],
    )
    figures["verdicts"] = verdicts


def _fmt(rates: dict[str, float]) -> str:
    return " ".join(f"{key}={value:,.0f}" for key, value in rates.items())


def _ratios(ratios: dict[str, float]) -> str:
    return " ".join(f"{key}={value:.2f}" for key, value in ratios.items())


def report_lines(result: dict[str, Any]) -> list[str]:
    """The human-readable summary."""
    lines = [
        f"queue benchmark ({'quick' if result['quick'] else 'full'} run; "
        f"HTTP client: {result.get('http_client', 'raw')})"
    ]
    for name in ("sqlite", "postgresql"):
        figures = result.get(name)
        if figures is None:
            continue
        if "skipped" in figures:
            lines.append(f"{name}: SKIPPED ({figures['skipped']})")
            continue
        verdicts = figures["verdicts"]
        mark = "PASS" if verdicts["store_pass"] else "MISS"
        lines.append(f"{name} bare SQL claims/s   {_fmt(figures['baseline_claims_per_s'])}")
        lines.append(
            f"{name} store claims/s      {_fmt(figures['store_claims_per_s'])}  "
            f"(ratio to bare {_ratios(figures['store_ratio_to_baseline'])}; "
            f"target >={verdicts['store_target']:,.0f}: {mark})"
        )
        for key, stack in figures.get("http", {}).items():
            judged = key == "default"
            verdict = ""
            if judged:
                verdict = (
                    f"; target >={verdicts['http_target']:,.0f}: "
                    f"{'PASS' if verdicts['http_pass'] else 'MISS'}"
                )
            health = _fmt(stack["health_requests_per_s"])
            lines.append(f"{name} HTTP {stack['stack']:<17} health req/s {health}")
            lines.append(
                f"{name} HTTP {stack['stack']:<17} jobs/s       {_fmt(stack['jobs_per_s'])}  "
                f"(ratio to health {_ratios(stack['ratio_to_health'])}{verdict})"
            )
            if stack.get("server_cpu_ms_per_job"):
                lines.append(
                    f"{name} HTTP {stack['stack']:<17} server CPU ms per health request "
                    f"{_ratios(stack['server_cpu_ms_per_health_request'])}, per job "
                    f"{_ratios(stack['server_cpu_ms_per_job'])}"
                )
        latency = figures["latency"]
        for phase in ("before_analyze", "after_analyze"):
            data = latency[phase]
            lines.append(
                f"{name} claim latency {phase.replace('_', ' ')} ({latency['queued']:,} queued, "
                f"{latency['edges']:,} edges): p50 {data['claim_p50_ms']:.2f} ms, "
                f"p99 {data['claim_p99_ms']:.2f} ms, max {data['claim_max_ms']:.1f} ms; "
                f"complete p50 {data['complete_p50_ms']:.2f} ms  "
                f"[claim index: {'yes' if data['uses_claim_index'] else 'NO'}]"
            )
        lines.append(
            f"{name} claim p99 target <={verdicts['latency_target_p99_ms']:.0f} ms: "
            f"{'PASS' if verdicts['latency_pass'] else 'MISS'}"
            f" (pending_deps inconsistencies after: "
            f"{latency['inconsistent_pending_deps_after']})"
        )
    return lines


def machine_info(pg_server_url: str | None) -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = "unknown"
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": memory,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
    }
    for package in ("sqlalchemy", "psycopg", "fastapi", "uvicorn", "httpx", "uvloop", "httptools"):
        with suppress(importlib.metadata.PackageNotFoundError):
            info[package] = importlib.metadata.version(package)
    if pg_server_url:
        with psycopg.connect(pg_server_url, autocommit=True, connect_timeout=5) as conn:
            info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
            for setting in ("fsync", "synchronous_commit"):
                info[f"postgresql_{setting}"] = conn.execute(f"SHOW {setting}").fetchone()[0]  # type: ignore[index]
    return info


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: under a minute")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument(
        "--backend", choices=("sqlite", "postgresql", "both"), default="both", help="default both"
    )
    parser.add_argument(
        "--pg-url", default=os.environ.get("BUILDCOORD_BENCH_PG_URL"), help="PostgreSQL server"
    )
    parser.add_argument("--skip-http", action="store_true", help="leave out the HTTP part")
    parser.add_argument(
        "--http-client",
        choices=("raw", "httpx"),
        default="raw",
        help="HTTP client of the request loops: raw (http.client keep-alive, default) or httpx"
        " (buildcoord.client.Client, as the agent uses)",
    )
    parser.add_argument(
        "--serve-workers",
        type=int,
        default=1,
        help="run the HTTP part against `serve --workers N` (default 1)",
    )
    parser.add_argument("--seed", type=int, default=20240601, help="random seed")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    names = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    began = time.monotonic()
    result: dict[str, Any] = {
        "quick": args.quick,
        "sizes": sizes.__dict__,
        "http_client": args.http_client,
        "serve_workers": args.serve_workers,
    }
    workdir = Path(tempfile.mkdtemp(prefix="buildcoord-bench-"))
    failed = False
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, True)
        log(f"starting {MAX_WORKERS} worker processes (spawn)")
        workers = Workers(MAX_WORKERS)
        stack.callback(workers.close)
        pg_server: str | None = None
        if "postgresql" in names:
            try:
                pg_server, origin = stack.enter_context(postgres_server(args.pg_url, stack))
                result["postgresql_server"] = origin
                log(f"PostgreSQL: {origin}")
            except Exception as exc:
                log(f"PostgreSQL unavailable: {exc}")
                result["postgresql"] = {"skipped": str(exc)}
                failed = args.backend == "postgresql"
        result["machine"] = machine_info(pg_server)
        for name in names:
            if name == "postgresql" and pg_server is None:
                continue
            backend = Backend(name, workdir, pg_server)
            figures = run_backend(
                backend,
                workers,
                sizes,
                args.seed,
                skip_http=args.skip_http,
                client_kind=args.http_client,
                serve_workers=args.serve_workers,
            )
            add_verdicts(name, figures)
            result[name] = figures
    result["seconds"] = round(time.monotonic() - began, 1)
    result["load_average_at_end"] = [round(value, 2) for value in os.getloadavg()]
    lines = report_lines(result)
    lines.append(
        f"total time {result['seconds']:.0f} s; load average (1, 5, 15 min) at start "
        f"{result['machine']['load_average_at_start']}, at end {result['load_average_at_end']}"
    )
    if args.json:
        print("\n".join(lines), file=sys.stderr)
        print(json.dumps(result, sort_keys=True))
    else:
        print("\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
