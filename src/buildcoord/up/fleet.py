"""The child processes of ``buildcoord up``: start them, restart the ones that die, stop them.

Every child is tracked by its pid (a ``Popen``), never found by name. Children run in their
own process group, so a Ctrl-C in the terminal reaches ``up`` alone and ``up`` decides the
order of the stop (agents first, then the coordinator). Each child also gets a parent-death
signal, so that even a ``kill -9`` of ``up`` leaves nothing running.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

PR_SET_PDEATHSIG = 1
BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
# A child that ran this long before dying starts its backoff from the beginning again.
HEALTHY_RUN_SECONDS = 60.0


def parent_death_setter(signum: int) -> Callable[[], None] | None:
    """A preexec function asking the kernel to send signum when the parent dies (Linux)."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)

    return preexec


def tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log file ("" when there is none)."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - 8192))
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def exit_text(code: int | None) -> str:
    """How a process ended: ``exited with code 3`` or ``was killed by signal 9``."""
    if code is None:
        return "is still running"
    return f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """How to run one child: argv, environment, log file, and whether to restart it."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    log_path: Path
    restart: bool = False
    death_signal: int = signal.SIGTERM


@dataclass(frozen=True, slots=True)
class FleetEvent:
    """Something that happened to a child: it exited, or was started again."""

    child: str
    kind: Literal["exited", "restarted"]
    text: str


@dataclass
class Child:
    """One supervised process and its history."""

    spec: ChildSpec
    clock: Callable[[], float] = time.monotonic
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    failures: int = 0
    last_exit: int | None = None
    restart_at: float | None = None
    stopping: bool = False

    @property
    def name(self) -> str:
        """The child's name (``coordinator``, ``build1``, ...)."""
        return self.spec.name

    @property
    def pid(self) -> int | None:
        """The pid of the running process, or None."""
        return self.process.pid if self.running and self.process else None

    @property
    def running(self) -> bool:
        """Whether the process is alive (reaps it when it is not)."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the process, its output appended to its log file."""
        self.spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.spec.log_path.open("ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {self.name}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                list(self.spec.argv),
                env=dict(self.spec.env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=0,
                # Safe here: up starts children from its main thread and runs no other
                # threads (the Rich view refreshes on demand); the function calls prctl only.
                preexec_fn=parent_death_setter(self.spec.death_signal),
            )
        self.started_at = self.clock()
        self.restart_at = None

    def step(self) -> FleetEvent | None:
        """Notice an unexpected exit, or restart the child when its backoff is over."""
        now = self.clock()
        if self.process is not None and not self.stopping and not self.running:
            code = self.process.returncode
            self.last_exit = code
            self.process = None
            how = exit_text(code)
            if not self.spec.restart:
                return FleetEvent(self.name, "exited", f"{self.name} {how}")
            ran = now - self.started_at
            self.failures = 1 if ran >= HEALTHY_RUN_SECONDS else self.failures + 1
            delay = BACKOFF_SECONDS[min(self.failures, len(BACKOFF_SECONDS)) - 1]
            self.restart_at = now + delay
            return FleetEvent(self.name, "exited", f"{self.name} {how}; restarting in {delay:g} s")
        if self.restart_at is not None and now >= self.restart_at and not self.stopping:
            self.start()
            self.restarts += 1
            return FleetEvent(self.name, "restarted", f"{self.name} restarted (pid {self.pid})")
        return None

    def signal(self, signum: int) -> None:
        """Send signum to the process (by its pid, only while it is ours and alive)."""
        if self.process is not None and self.running:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)


def stop(children: Sequence[Child], *, timeout: float, hurry: Callable[[], bool]) -> list[str]:
    """SIGTERM children, wait up to timeout (less if hurry() turns true), then SIGKILL them.

    Returns the names of the children that had to be killed.
    """
    for child in children:
        child.stopping = True
        child.restart_at = None
        child.signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(child.running for child in children):
        if time.monotonic() >= deadline or hurry():
            break
        time.sleep(0.05)
    killed = []
    for child in children:
        if child.running:
            killed.append(child.name)
            child.signal(signal.SIGKILL)
    for child in children:
        if child.process is not None:
            child.process.wait()
            child.last_exit = child.process.returncode
    return killed
