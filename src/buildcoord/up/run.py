"""Run the fleet of ``buildcoord up``: start it, show it until asked to stop, stop it.

``up`` runs ``buildcoord serve`` and ``buildcoord agent`` as child processes (see
``buildcoord.up.fleet``), registers the agents' servers (their tokens kept in
``<home>/agents/<name>.token``), shows the fleet until Ctrl-C, and then stops the agents
before the coordinator. ``--demo`` adds a sample repository and its builds.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import quote

import click
from rich.console import Console

from buildcoord.client import Client
from buildcoord.errors import (
    BuildcoordError,
    Conflict,
    InvalidInput,
    NotFound,
    Unauthorized,
    Unavailable,
)
from buildcoord.models import server_label
from buildcoord.up.demo.repository import FEATURE, MAIN, ensure_demo_repository
from buildcoord.up.demo_builds import DemoBuilds, queue_demo_builds, verdict
from buildcoord.up.fleet import Child, ChildSpec, exit_text, stop, tail
from buildcoord.up.status import FleetReader, LiveReport, PlainReport, ProcessView, Report

LOOPBACK = "127.0.0.1"
HEALTH_TIMEOUT_SECONDS = 30.0
AGENT_STOP_SECONDS = 10.0
COORDINATOR_STOP_SECONDS = 5.0
TICK_SECONDS = 0.5


class StopRequest:
    """Ctrl-C, SIGTERM or SIGHUP: the first asks for a clean stop, the next to hurry it."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.count = 0
        self.previous: dict[int, Any] = {}

    def install(self) -> None:
        """Catch the signals (main thread only)."""
        for signum in self.SIGNALS:
            self.previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        """Give the signals back to their previous handlers."""
        for signum, handler in self.previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)

    def _handle(self, _signum: int, _frame: FrameType | None) -> None:
        self.count += 1

    @property
    def requested(self) -> bool:
        """Whether a stop was asked for."""
        return self.count > 0

    def hurry(self) -> bool:
        """Whether the stop was asked for twice (do not wait for anything any more)."""
        return self.count > 1

    def sleep(self, seconds: float) -> None:
        """Sleep, waking early when a stop is asked for."""
        end = time.monotonic() + seconds
        while not self.requested and time.monotonic() < end:
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))


def ensure_port_free(port: int) -> None:
    """Refuse a port something already listens on (the health check would ask it instead)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError as exc:
            raise InvalidInput(
                f"port {port} on {LOOPBACK} is in use ({exc.strerror}): is a coordinator "
                "already running? Choose another with --port"
            ) from exc


@contextlib.contextmanager
def home_lock(home: Path) -> Iterator[None]:
    """Hold ``<home>/up.lock``: two ``up`` on one home would run two agents per server."""
    path = home / "up.lock"
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "?"
            raise Conflict(
                f"another buildcoord up (pid {owner}) is using {home}; stop it or pass --home"
            ) from None
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield


def write_secret(path: Path, secret: str) -> None:
    """Write a token file readable by its owner only."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")


def _token_works(connect: Callable[[str], Client], name: str, token: str) -> bool:
    with connect(token) as agent:
        try:
            agent.get_server(name)
        except Unauthorized:
            return False
    return True


def ensure_server(
    client: Client,
    connect: Callable[[str], Client],
    home: Path,
    name: str,
) -> str:
    """Register server name unless it is there with a working saved token; return the token.

    ``connect(token)`` opens a client with another token (to try the saved one).
    """
    path = home / "agents" / f"{name}.token"
    saved = path.read_text().strip() if path.exists() else ""
    try:
        client.get_server(name)
        exists = True
    except NotFound:
        exists = False
    if exists and saved and _token_works(connect, name, saved):
        return saved
    if exists:
        # Its token is lost (or revoked): the only way to a new one is to register anew.
        client.remove_server(name)
    _, token = client.register_server(name)
    write_secret(path, token)
    return token


def child_environment(home: Path) -> dict[str, str]:
    """The environment of every child: our home, and our ``buildcoord`` first on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("BUILDCOORD_TOKEN", "BUILDCOORD_URL")}
    env["BUILDCOORD_HOME"] = str(home)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"  # log files fill as things happen
    return env


def agent_environment(env: dict[str, str], url: str, token: str) -> dict[str, str]:
    """An agent's environment: its own token and none of the operator's."""
    own = {k: v for k, v in env.items() if k != "BUILDCOORD_ADMIN_TOKEN"}
    return {**own, "BUILDCOORD_URL": url, "BUILDCOORD_TOKEN": token}


def _buildcoord(config: str | None, *args: str) -> list[str]:
    return [sys.executable, "-m", "buildcoord", *(["--config", config] if config else []), *args]


def wait_until_healthy(client: Client, coordinator: Child, request: StopRequest) -> None:
    """Wait until the coordinator answers /health; Unavailable if it dies or takes too long."""
    deadline = time.monotonic() + HEALTH_TIMEOUT_SECONDS
    while not request.requested:
        if not coordinator.running:
            raise Unavailable(coordinator_failure(coordinator, "before it answered"))
        try:
            client.health()
            return
        except Unavailable:
            if time.monotonic() > deadline:
                raise Unavailable(
                    f"the coordinator did not answer within {HEALTH_TIMEOUT_SECONDS:g} s; "
                    f"see {coordinator.spec.log_path}"
                ) from None
        request.sleep(0.1)


def coordinator_failure(coordinator: Child, when: str) -> str:
    """Say that the coordinator exited, with the last lines of its log."""
    process = coordinator.process
    code = process.returncode if process is not None else coordinator.last_exit
    lines = tail(coordinator.spec.log_path)
    return (
        f"the coordinator {exit_text(code)} {when}; "
        f"last lines of {coordinator.spec.log_path}:\n{lines}"
    )


def process_view(child: Child) -> ProcessView:
    """How the status shows a child."""
    restart_in = None if child.restart_at is None else max(0.0, child.restart_at - time.monotonic())
    return ProcessView(child.name, child.pid, child.restarts, child.last_exit, restart_in)


def _introduce(
    url: str,
    home: Path,
    token_origin: str,
    agents: Sequence[str],
    demo: DemoBuilds | None,
    secret: str,
) -> list[str]:
    """What to print at the start: where things are and how to use the CLI against them."""
    token_file = home / "admin-token"
    from_file = token_origin.startswith(str(token_file))
    token_source = f'$(cat "{token_file}")' if from_file else "<the admin token you set>"
    lines = [
        f"buildcoord up: coordinator on {url} with agents {', '.join(agents)}",
        f"  dashboard:   {url}/login#token={quote(secret, safe='')}  (opens logged in)",
        f"  database:    {home / 'buildcoord.db'}",
        f"  admin token: {token_origin}",
        f"  logs:        {home / 'logs'}/",
        "  Use the CLI against it from another terminal:",
        f'    export PATH="{Path(sys.executable).parent}:$PATH" BUILDCOORD_URL={url}',
        f"    export BUILDCOORD_TOKEN={token_source}",
        "    buildcoord servers list; buildcoord queue list; buildcoord log show JOB",
    ]
    if demo is not None:
        jobs = ", ".join(f"#{job} on {server}" for server, job in demo.main_jobs.items())
        lines += [
            f"  Demo: {home / 'demo' / 'repo'} (branches {MAIN}, {FEATURE});",
            f"    {demo.title} queued as {jobs}; {FEATURE} as #{demo.feature_job}.",
            f"    Watch a build: buildcoord log tail {next(iter(demo.main_jobs.values()))} -f",
        ]
    lines.append("  Ctrl-C stops everything.")
    return lines


def watch(
    client: Client,
    coordinator: Child,
    agents: Sequence[Child],
    report: Report,
    request: StopRequest,
    demo: DemoBuilds | None,
) -> None:
    """Show the fleet and keep the agents running until a stop is asked for."""
    reader = FleetReader(client)
    concluded = demo is None
    while not request.requested:
        for child in agents:
            event = child.step()
            if event is not None:
                report.note(event.text)
        if not coordinator.running:
            raise Unavailable(coordinator_failure(coordinator, "unexpectedly"))
        snapshot = reader.read([process_view(child) for child in (coordinator, *agents)])
        report.show(snapshot)
        if not concluded and demo is not None and snapshot.error is None:
            try:
                lines = verdict(client, demo)
            except BuildcoordError as exc:
                report.note(f"cannot compare the demo builds yet: {exc}")
                lines = None
            if lines is not None:
                report.summarize(lines)
                concluded = True
        request.sleep(TICK_SECONDS)


def _say(line: str) -> None:
    """Print, even when nobody reads any more (a closed pipe must not stop the stop)."""
    with contextlib.suppress(OSError):
        click.echo(line)


def _stop_fleet(coordinator: Child, agents: Sequence[Child], request: StopRequest) -> None:
    if any(agent.process is not None for agent in agents):
        _say("Stopping the agents (Ctrl-C again to kill them at once)...")
        killed = stop(agents, timeout=AGENT_STOP_SECONDS, hurry=request.hurry)
        if killed:
            _say(f"  killed {', '.join(killed)} (still busy after {AGENT_STOP_SECONDS:g} s)")
    if coordinator.process is not None:
        _say("Stopping the coordinator...")
        killed = stop([coordinator], timeout=COORDINATOR_STOP_SECONDS, hurry=request.hurry)
        if killed:
            _say(f"  killed it (still running after {COORDINATOR_STOP_SECONDS:g} s)")
    _say("Stopped.")


def coordinator_spec(home: Path, port: int, config: str | None, env: dict[str, str]) -> ChildSpec:
    """``buildcoord serve`` on the home's SQLite file, on loopback."""
    database = f"sqlite:///{home / 'buildcoord.db'}"
    argv = _buildcoord(config, "serve", "--db", database, "--host", LOOPBACK, "--port", str(port))
    # Warnings only: at info, uvicorn logs every request of the agents and of the status.
    argv += ["--log-level", "warning"]
    return ChildSpec("coordinator", argv, env, home / "logs" / "coordinator.log")


def agent_spec(
    name: str, home: Path, url: str, token: str, config: str | None, env: dict[str, str]
) -> ChildSpec:
    """``buildcoord agent`` for server name, restarted when it dies.

    SIGKILL when ``up`` dies: an agent told SIGTERM would wait for its build to end.
    """
    workdir = str(home / "agents" / name)
    argv = _buildcoord(config, "agent", "--name", name)
    return ChildSpec(
        name,
        [*argv, "--workdir", workdir],
        agent_environment(env, url, token),
        home / "logs" / f"{name}.log",
        restart=True,
        death_signal=signal.SIGKILL,
    )


def open_report(intro: Sequence[str], url: str) -> Report:
    """Print the introduction, then a live view on a terminal or plain lines elsewhere."""
    if not sys.stdout.isatty():
        for line in intro:
            click.echo(line)
        return PlainReport()
    console = Console()
    for line in intro:
        console.print(line, highlight=False, markup=False)
    return LiveReport(console, f"buildcoord up - {url} - Ctrl-C stops")


def run(
    home: Path,
    count: int,
    port: int,
    demo: bool,
    config: str | None,
    admin_token: Callable[[], tuple[str, str]],
) -> None:
    """Hold the home and run count agents (and the demo's builds) until asked to stop.

    ``admin_token()`` returns the operator's secret and where it came from; it is asked
    once the home is in the environment.
    """
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    with home_lock(home):
        run_fleet(home, count, port, demo, config, admin_token)


def run_fleet(
    home: Path,
    count: int,
    port: int,
    demo: bool,
    config: str | None,
    admin_token: Callable[[], tuple[str, str]],
) -> None:
    """Start the coordinator and the agents, show them until asked to stop, then stop them."""
    # admin_token and every child find the home through the environment.
    os.environ["BUILDCOORD_HOME"] = str(home)
    ensure_port_free(port)
    secret, origin = admin_token()
    url = f"http://{LOOPBACK}:{port}"
    env = child_environment(home)
    names = [f"build{number}" for number in range(1, count + 1)]
    coordinator = Child(coordinator_spec(home, port, config, env))
    agents: list[Child] = []
    request = StopRequest()
    request.install()
    report: Report | None = None

    def connect(token: str) -> Client:
        return Client(url, token, timeout=10)

    try:
        coordinator.start()
        with connect(secret) as client:
            wait_until_healthy(client, coordinator, request)
            if request.requested:
                return
            for name in names:
                token = ensure_server(client, connect, home, name)
                agents.append(Child(agent_spec(name, home, url, token, config, env)))
                agents[-1].start()
            builds = None
            if demo:
                repository = ensure_demo_repository(home / "demo" / "repo")
                pinned = {name: server_label(name) for name in names[:2]}
                builds = queue_demo_builds(client, repository, pinned)
            report = open_report(_introduce(url, home, origin, names, builds, secret), url)
            watch(client, coordinator, agents, report, request, builds)
    finally:
        if report is not None:
            report.close()
        _stop_fleet(coordinator, agents, request)
        request.restore()
