"""buildcoord serve: the coordinator (HTTP API and maintenance) and buildcoord config show."""

from __future__ import annotations

import gc
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import click

from buildcoord.cli.context import get_context
from buildcoord.config import Settings, load_settings
from buildcoord.services import maintenance
from buildcoord.services.coordinator import Coordinator
from buildcoord.services.monitor import check_settings
from buildcoord.services.tokens import new_secret
from buildcoord.store import Store
from buildcoord.store.engine import default_home, default_url
from buildcoord.up.fleet import exit_text, parent_death_setter

KEEP_ALIVE_SECONDS = 75
GC_THRESHOLDS = (50_000, 20, 100)  # Python's: (700, 10, 10); see _quiet_garbage_collector
"""How long the server keeps an idle HTTP connection open (uvicorn's default: 5 s).

Well above an agent's heartbeat interval (5 s), so that an agent's kept-alive connection is
still open at its next heartbeat: closed after exactly the interval, the server would often
close it just as the heartbeat goes out, and the heartbeat would be lost.
"""


def admin_token_file() -> Path:
    """Where serve keeps a generated admin token when none is configured."""
    return default_home() / "admin-token"


def ensure_admin_token(settings: Settings) -> tuple[str, str]:
    """Return the admin secret and where it came from, generating one on first start."""
    if settings.admin_token:
        return settings.admin_token, settings.sources.get("admin_token", "setting")
    path = admin_token_file()
    if path.exists():
        return path.read_text().strip(), str(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = new_secret()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret, f"{path} (generated)"


@click.command("serve")
@click.option("--db", "url", help="Database URL (env BUILDCOORD_DB; default: embedded SQLite).")
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="Port (default 8765).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="Coordinator processes sharing the port (default 1; setting 'workers').",
)
@click.option("--log-level", default="info", show_default=True)
@click.option("--worker-fd", type=int, hidden=True)
def serve(
    url: str | None,
    host: str | None,
    port: int | None,
    workers: int | None,
    log_level: str,
    worker_fd: int | None,
) -> None:
    """Run the coordinator: HTTP API under /api/v1 plus maintenance every second.

    With --workers N, N processes serve the same listening socket and database, each with its
    own maintenance loop (every statement is a compare-and-set, as with several coordinators
    on one PostgreSQL); the first process migrates the schema and installs the admin token,
    then supervises them: a stop signal stops them all, and one dying stops the others.
    """
    settings = load_settings(
        config_path=get_context().config,
        overrides={"db": url, "host": host, "port": port, "workers": workers},
    )
    database = settings.db or default_url()
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    if worker_fd is not None:
        _serve_worker(replace(settings, db=database), log_level, worker_fd)
        return
    secret, origin = ensure_admin_token(settings)
    settings = replace(settings, db=database, admin_token=secret)
    store = Store.open(database)
    coordinator = Coordinator(store, settings)
    coordinator.start()
    click.echo(f"buildcoord coordinator on http://{settings.host}:{settings.port}", err=True)
    click.echo(f"  database: {store.engine.url.render_as_string(hide_password=True)}", err=True)
    click.echo(f"  admin token from {origin}", err=True)
    if settings.workers > 1:
        store.close()
        click.echo(f"  {settings.workers} worker processes", err=True)
        code = _serve_workers(settings, log_level)
        if code:
            raise SystemExit(code)
        return
    try:
        _run_server(coordinator, log_level, host=settings.host, port=settings.port)
    finally:
        store.close()


def _run_server(
    coordinator: Coordinator,
    log_level: str,
    *,
    host: str | None = None,
    port: int | None = None,
    sockets: list[socket.socket] | None = None,
) -> None:
    """Serve the API, and run maintenance beside it, in this process until a stop signal."""
    import uvicorn

    from buildcoord.web.app import create_app

    server: uvicorn.Server | None = None
    app = create_app(coordinator, shutting_down=lambda: server is not None and server.should_exit)
    config = uvicorn.Config(
        app,
        host=host or "127.0.0.1",
        port=port or 8765,
        log_level=log_level,
        # Agent sessions are endless streams: do not wait for them to end on shutdown.
        timeout_graceful_shutdown=2,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    server = uvicorn.Server(config)
    _quiet_garbage_collector()
    stop_maintenance = maintenance.start(coordinator)
    stop_notifications = coordinator.notifications.start()
    try:
        server.run(sockets=sockets)
    finally:
        stop_notifications()
        stop_maintenance()


def _quiet_garbage_collector() -> None:
    """Keep Python's full garbage collections from stalling every request for a quarter second.

    Measured with 1,000 idle agents (bench/fleet.py, gc.callbacks timing each collection): a
    full (generation 2) collection ran every few seconds, took 120-300 ms and freed nothing,
    and every request waiting on the event loop waited with it: heartbeat p99 0.36-1.1 s.
    What the process holds after start-up (modules, the schema, the routes) is moved out of
    the collector's sight (gc.freeze), a young collection runs after 50,000 new container
    objects instead of 700, and older generations are looked at 20 and 100 times more
    rarely: no full collection in a 20 s window, young ones of 20-90 ms a few times in it,
    heartbeat p99 30-38 ms. Reference counting still frees nearly everything at once; the
    collector only breaks cycles, which a request makes few of.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _serve_worker(settings: Settings, log_level: str, fd: int) -> None:
    """One of ``serve --workers N``'s processes: the parent migrated and bound the socket."""
    listening = socket.socket(fileno=fd)
    store = Store.open(settings.db, migrate=False)
    try:
        _run_server(Coordinator(store, settings), log_level, sockets=[listening])
    finally:
        store.close()


def _serve_workers(settings: Settings, log_level: str) -> int:
    """Run N worker processes on one listening socket until a stop signal; their exit code."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    listening = socket.create_server((settings.host, settings.port), family=family, backlog=2048)
    listening.set_inheritable(True)
    fd = listening.fileno()
    env = {
        **os.environ,
        "BUILDCOORD_DB": settings.db,
        "BUILDCOORD_ADMIN_TOKEN": settings.admin_token,
    }
    config_path = get_context().config
    argv = [sys.executable, "-m", "buildcoord"]
    if config_path:
        argv += ["--config", config_path]
    argv += ["serve", "--log-level", log_level, "--worker-fd", str(fd)]
    stop = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda *_: stop.set())
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    children: list[subprocess.Popen[bytes]] = []
    code = 0
    try:
        for _ in range(settings.workers):
            children.append(
                subprocess.Popen(
                    argv,
                    env=env,
                    pass_fds=(fd,),
                    stdin=subprocess.DEVNULL,
                    preexec_fn=parent_death_setter(signal.SIGTERM),
                )
            )
        while not stop.wait(0.5):
            gone = [child for child in children if child.poll() is not None]
            if gone:
                click.echo(
                    f"error: worker {gone[0].pid} {exit_text(gone[0].returncode)}; "
                    "stopping the others",
                    err=True,
                )
                code = 1
                break
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)  # by pid: the processes started here
        deadline = time.monotonic() + 15
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=5)
        listening.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return code


@click.group("config")
def config() -> None:
    """Settings."""


@config.command("show")
def show() -> None:
    """Print the settings in force and where each came from (secrets hidden)."""
    settings = load_settings(config_path=get_context().config)
    for name in Settings.__dataclass_fields__:
        if name in ("sources", "notifiers"):
            continue
        value = getattr(settings, name)
        if name in ("admin_token", "webhook_secret") and value:
            value = "****"
        if name == "db" and not value:
            value = default_url()
        click.echo(f"{name} = {value!r}  # {settings.sources.get(name, 'default')}")
    for notifier in settings.notifiers:
        # A webhook URL may carry its secret (Slack's do): only its scheme and host are shown.
        parts = urlsplit(notifier.url)
        rules = ", ".join(notifier.rules) or "every rule"
        click.echo(
            f"notifier {notifier.name!r} = {notifier.kind} to {parts.scheme}://{parts.netloc}/…"
            f" ({rules}; {notifier.min_severity} and above)"
            f"  # {settings.sources.get('notifiers', 'default')}"
        )


@config.command("check")
def check() -> None:
    """Check buildcoord.toml (every setting, notifier and rule name); exit 1 naming the first
    problem. ``serve`` refuses to start on the same problems."""
    settings = load_settings(config_path=get_context().config)
    check_settings(settings)
    click.echo(f"ok: {len(settings.notifiers)} notifier(s)")
