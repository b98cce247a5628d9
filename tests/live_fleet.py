"""A real coordinator and real agents as processes on loopback, for end-to-end tests and bench/.

Every process is tracked by its pid and stopped by it; agents run in their own process group
so that a test can freeze (SIGSTOP) or kill one agent with everything it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx

from buildcoord.client import Client

ADMIN_TOKEN = "live-fleet-admin-token-0123456789"
T = TypeVar("T")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    what: str, probe: Callable[[], T | None], *, timeout: float, interval: float = 0.05
) -> T:
    """Poll probe until it returns something truthy; fail with ``what`` after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    """True while a process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def stop_process(process: subprocess.Popen[bytes], *, timeout: float = 10.0) -> None:
    """SIGTERM a process by pid, then SIGKILL it if it does not exit in time."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait(timeout=timeout)


def git(cwd: Path, *args: str) -> str:
    """Run git in cwd; return stdout."""
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def make_repository(path: Path, files: dict[str, str]) -> str:
    """Create a git repository at path with files (scripts made executable); return HEAD."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "e2e@example.com")
    git(path, "config", "user.name", "e2e")
    for name, text in files.items():
        target = path / name
        target.write_text(text)
        if name.endswith(".sh"):
            target.chmod(0o755)
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "e2e")
    return git(path, "rev-parse", "HEAD")


@dataclass
class LiveFleet:
    """One coordinator process plus agent processes, all under ``home``."""

    home: Path
    settings: dict[str, str] = field(default_factory=dict)
    db: str | None = None
    """The database URL; None: a SQLite file in ``home``."""
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    """The address the coordinator listens on (a veth's, for an agent in a namespace)."""
    coordinator: subprocess.Popen[bytes] | None = None
    agents: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The coordinator's base URL."""
        return f"http://{self.host}:{self.port}"

    @property
    def admin_token(self) -> str:
        """The operator token the coordinator was started with."""
        return ADMIN_TOKEN

    def client(self, token: str = ADMIN_TOKEN) -> Client:
        """A client with the admin token (or another)."""
        return Client(self.url, token, timeout=10.0)

    def start_coordinator(self) -> None:
        """Start ``buildcoord serve`` and wait until it answers."""
        env = {
            **os.environ,
            "BUILDCOORD_HOME": str(self.home),
            "BUILDCOORD_ADMIN_TOKEN": ADMIN_TOKEN,
            **{f"BUILDCOORD_{key.upper()}": value for key, value in self.settings.items()},
        }
        log = (self.home / "coordinator.log").open("ab")
        self.coordinator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "buildcoord",
                "serve",
                "--db",
                self.db or f"sqlite:///{self.home / 'buildcoord.db'}",
                "--host",
                self.host,
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for("the coordinator to answer", self._healthy, timeout=30)

    def _healthy(self) -> bool:
        assert self.coordinator is not None
        if self.coordinator.poll() is not None:
            raise AssertionError(
                "coordinator exited: " + (self.home / "coordinator.log").read_text()[-2000:]
            )
        try:
            return httpx.get(f"{self.url}/api/v1/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def stop_coordinator(self) -> None:
        """Stop the coordinator by its pid."""
        if self.coordinator is not None:
            stop_process(self.coordinator)

    def register(self, name: str, labels: list[str] | None = None) -> str:
        """Register a server; remember and return its agent token."""
        with self.client() as client:
            _server, token = client.register_server(name, labels or [])
        self.tokens[name] = token
        return token

    def start_agent(
        self,
        name: str,
        *extra: str,
        url: str | None = None,
        prefix: Sequence[str] = (),
    ) -> subprocess.Popen[bytes]:
        """Start ``buildcoord agent`` for a registered server, in a process group of its own
        (talking to ``url``: this coordinator's unless given, e.g. a list of several)."""
        workdir = self.home / "agents" / name
        workdir.mkdir(parents=True, exist_ok=True)
        log = (self.home / f"agent-{name}.log").open("ab")
        process = subprocess.Popen(
            [
                *prefix,
                sys.executable,
                "-m",
                "buildcoord",
                "--url",
                url or self.url,
                "--token",
                self.tokens[name],
                "agent",
                "--name",
                name,
                "--workdir",
                str(workdir),
                *extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.agents[name] = process
        return process

    def agent_log(self, name: str) -> str:
        """What an agent printed so far."""
        return (self.home / f"agent-{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        """Stop every agent (continuing frozen ones first), then the coordinator."""
        for process in self.agents.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGCONT)
            stop_process(process, timeout=15)
        self.stop_coordinator()


@contextlib.contextmanager
def live_fleet(
    home: Path, *, db: str | None = None, host: str = "127.0.0.1", **settings: str
) -> Iterator[LiveFleet]:
    """A started coordinator (on ``db``, else a SQLite file in ``home``); agents are added by
    the caller; everything stopped after."""
    home.mkdir(parents=True, exist_ok=True)
    fleet = LiveFleet(home=home, settings=settings, db=db, host=host)
    try:
        fleet.start_coordinator()
        yield fleet
    finally:
        fleet.stop()
