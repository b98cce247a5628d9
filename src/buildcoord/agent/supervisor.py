"""The build supervisor: one small process per build that makes sure no build outlives its lease.

The agent starts ``python -m buildcoord.agent.supervisor`` in a session of its own; the
supervisor starts ``bash -c <command>`` in yet another process group and then:

* dies with the agent: the kernel sends it SIGTERM when the agent exits (PR_SET_PDEATHSIG),
  even on ``kill -9``, and it kills the build's whole process group;
* fences itself: the agent writes ``lease <seconds>`` on the supervisor's stdin after each
  renewal; when the lease is about to run out without a renewal (a frozen or cut-off
  agent), the supervisor kills the build *before* the coordinator can hand the job to
  someone else;
* enforces the branch timeout, and cancels on ``cancel`` (SIGTERM to the group, a grace
  period, then SIGKILL);
* adopts orphans (PR_SET_CHILD_SUBREAPER): a build step that daemonises out of the process
  group is reparented to the supervisor and killed at the end too.

The build's output goes straight to the supervisor's stdout (the agent reads it). The
outcome is one JSON line on file descriptor 3: ``{"exit_code", "signal", "stopped_by"}``.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
REPORT_FD = 3
# Kill the build this long before the lease would run out, so it is dead before the
# coordinator can requeue the job.
FENCE_MARGIN_SECONDS = 3.0


def _prctl(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _descendants(pid: int) -> list[int]:
    """Every live descendant of pid, read from /proc (children files, recursively)."""
    found: list[int] = []
    stack = [pid]
    while stack:
        current = stack.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                for child in (task / "children").read_text().split():
                    found.append(int(child))
                    stack.append(int(child))
    return found


class Supervisor:
    """Runs one build command and stops it when it must stop."""

    def __init__(
        self, command: list[str], *, lease_seconds: float, timeout: float | None, grace: float
    ) -> None:
        self.command = command
        self.deadline = time.monotonic() + lease_seconds
        self.timeout_at = None if timeout is None else time.monotonic() + timeout
        self.grace = grace
        self.stopped_by: str | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.parent = os.getppid()

    def run(self) -> dict[str, object]:
        """Start the build, watch it, and return the outcome."""
        self.process = subprocess.Popen(
            self.command, start_new_session=True, stdin=subprocess.DEVNULL
        )
        signal.signal(signal.SIGTERM, self._on_parent_death)
        # The agent may have died before prctl took effect.
        if os.getppid() != self.parent:
            self._on_parent_death(signal.SIGTERM, None)
        commands = sys.stdin.buffer
        buffered = b""
        stdin_open = True
        while self.process.poll() is None:
            now = time.monotonic()
            if self.stopped_by is None:
                if now >= self.deadline - FENCE_MARGIN_SECONDS:
                    self._stop("lease", hard=True)
                elif self.timeout_at is not None and now >= self.timeout_at:
                    self._stop("timeout", hard=False)
            if not stdin_open:
                time.sleep(0.1)
                continue
            ready, _, _ = select.select([commands], [], [], 0.1)
            if ready:
                chunk = os.read(commands.fileno(), 4096)
                if not chunk:
                    stdin_open = False
                    continue
                buffered += chunk
                while b"\n" in buffered:
                    line, buffered = buffered.split(b"\n", 1)
                    self._command(line.decode(errors="replace").strip())
        self._reap_orphans()
        code = self.process.returncode
        return {
            "exit_code": code if code >= 0 else None,
            "signal": -code if code < 0 else None,
            "stopped_by": self.stopped_by,
        }

    def _command(self, line: str) -> None:
        word, _, argument = line.partition(" ")
        if word == "lease" and argument:
            self.deadline = time.monotonic() + float(argument)
        elif word == "cancel" and self.stopped_by is None:
            self._stop("cancel", hard=False)
        elif word == "kill":
            self._stop(self.stopped_by or "lost-lease", hard=True)

    def _stop(self, reason: str, *, hard: bool) -> None:
        assert self.process is not None
        self.stopped_by = reason
        group = self.process.pid
        if hard:
            self._signal_group(group, signal.SIGKILL)
            return
        self._signal_group(group, signal.SIGTERM)
        end = time.monotonic() + self.grace
        while time.monotonic() < end and self.process.poll() is None:
            time.sleep(0.05)
        self._signal_group(group, signal.SIGKILL)

    def _signal_group(self, group: int, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signum)

    def _reap_orphans(self) -> None:
        assert self.process is not None
        self._signal_group(self.process.pid, signal.SIGKILL)
        for pid in _descendants(os.getpid()):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass

    def _on_parent_death(self, _signum: int, _frame: object) -> None:
        if self.process is not None:
            self.stopped_by = self.stopped_by or "agent-died"
            self._signal_group(self.process.pid, signal.SIGKILL)
            self._reap_orphans()
        os._exit(137)


def main(argv: list[str] | None = None) -> int:
    """``python -m buildcoord.agent.supervisor LEASE TIMEOUT GRACE -- command...``."""
    args = sys.argv[1:] if argv is None else argv
    if "--" not in args or len(args) < 5:
        print("usage: supervisor LEASE TIMEOUT|none GRACE -- command...", file=sys.stderr)
        return 2
    split = args.index("--")
    lease, timeout, grace = args[:split]
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    supervisor = Supervisor(
        args[split + 1 :],
        lease_seconds=float(lease),
        timeout=None if timeout == "none" else float(timeout),
        grace=float(grace),
    )
    outcome = supervisor.run()
    with contextlib.suppress(OSError):
        os.write(REPORT_FD, (json.dumps(outcome) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
