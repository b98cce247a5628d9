"""The build supervisor: one small process per build that makes sure no build outlives its lease.

The agent starts ``python -m buildcoord.agent.supervisor`` in a session of its own; the
supervisor starts ``bash -c <command>`` in yet another process group and then:

* dies with the agent: the kernel sends it SIGTERM when the agent's spawning thread exits
  (PR_SET_PDEATHSIG), even on ``kill -9``, and it kills the build's whole process group.
  End of file on its stdin means the same (the agent is gone): that covers an agent that
  died before prctl took effect, and systems without prctl;
* fences itself: the agent writes ``lease <seconds>`` on the supervisor's stdin after each
  renewal; when the lease is about to run out without a renewal (a frozen or cut-off
  agent), the supervisor kills the build *before* the coordinator can hand the job to
  someone else (3 s before, or a quarter of the starting lease if that is less);
* enforces the branch timeout, and cancels on ``cancel`` (SIGTERM to the group, a grace
  period, then SIGKILL); ``kill`` is SIGKILL at once (the lease was lost). Stopping never
  blocks the loop, so a ``kill`` or the lease fence still act during a cancel's grace;
* adopts orphans (PR_SET_CHILD_SUBREAPER): a build step that daemonises out of the process
  group is reparented to the supervisor and killed at the end too. The outcome is written
  only once every descendant is gone, so a reported build has no process left.

The build's output goes straight to the supervisor's stdout (the agent reads it). The
outcome is one JSON line on file descriptor 3 (or ``--report-fd N``):
``{"exit_code", "signal", "stopped_by"}``; ``stopped_by`` is null, ``timeout``, ``cancel``,
``lease`` (self-fenced), ``lost-lease`` (told ``kill``) or ``agent-died``.
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
# coordinator can requeue the job. Short leases get a quarter of the lease instead: with a
# fixed 3 s, a lease under ~4.5 s renewed every third of it would fence every build.
FENCE_MARGIN_SECONDS = 3.0
# How long to wait for killed descendants to be gone before reporting anyway.
REAP_SECONDS = 5.0
POLL_SECONDS = 0.1


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
        self.margin = min(FENCE_MARGIN_SECONDS, lease_seconds / 4)
        self.timeout_at = None if timeout is None else time.monotonic() + timeout
        self.grace = grace
        self.stopped_by: str | None = None
        self.kill_at: float | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.parent_gone = False

    def run(self) -> dict[str, object]:
        """Start the build, watch it, and return the outcome."""
        # The handler goes in before the build starts: a SIGTERM in between would otherwise
        # kill the supervisor by default and leave the build running in its own session.
        signal.signal(signal.SIGTERM, self._on_parent_death)
        self.process = subprocess.Popen(
            self.command, start_new_session=True, stdin=subprocess.DEVNULL
        )
        try:
            if self.parent_gone:
                self._on_parent_death(signal.SIGTERM, None)
            self._watch()
        finally:
            # Whatever happened here (even a bug), no build process outlives the supervisor.
            self._reap_orphans()
        code = self.process.returncode
        return {
            "exit_code": code if code is not None and code >= 0 else None,
            "signal": -code if code is not None and code < 0 else None,
            "stopped_by": self.stopped_by,
        }

    def _watch(self) -> None:
        assert self.process is not None
        commands = sys.stdin.fileno()
        buffered = b""
        stdin_open = True
        while self.process.poll() is None:
            now = time.monotonic()
            if now >= self.deadline - self.margin:
                self._stop("lease", hard=True)
            elif self.timeout_at is not None and now >= self.timeout_at:
                self._stop("timeout", hard=False)
            if self.kill_at is not None and now >= self.kill_at:
                self._signal_group(signal.SIGKILL)
            if not stdin_open:
                time.sleep(POLL_SECONDS)
                continue
            ready, _, _ = select.select([commands], [], [], POLL_SECONDS)
            if not ready:
                continue
            chunk = os.read(commands, 4096)
            if not chunk:
                stdin_open = False
                self._stop("agent-died", hard=True)
                continue
            buffered += chunk
            while b"\n" in buffered:
                line, buffered = buffered.split(b"\n", 1)
                self._command(line.decode(errors="replace").strip())

    def _command(self, line: str) -> None:
        word, _, argument = line.partition(" ")
        if word == "lease":
            try:
                seconds = float(argument)
            except ValueError:
                return  # a garbled line must not kill the supervisor (and orphan the build)
            self.deadline = time.monotonic() + seconds
        elif word == "cancel":
            self._stop("cancel", hard=False)
        elif word == "kill":
            self._stop("lost-lease", hard=True)

    def _stop(self, reason: str, *, hard: bool) -> None:
        """Signal the build's group; a soft stop leaves SIGKILL to the loop after the grace."""
        # The first reason is the one reported: a cancel whose grace the lease cuts short
        # was still a cancel.
        self.stopped_by = self.stopped_by or reason
        if hard:
            self.kill_at = time.monotonic()
            self._signal_group(signal.SIGKILL)
        elif self.kill_at is None:
            self.kill_at = time.monotonic() + self.grace
            self._signal_group(signal.SIGTERM)

    def _signal_group(self, signum: int) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    def _reap_orphans(self) -> None:
        """Kill the group and every descendant, and wait (bounded) until they are gone."""
        assert self.process is not None
        end = time.monotonic() + REAP_SECONDS
        while True:
            self._signal_group(signal.SIGKILL)
            left = _descendants(os.getpid())
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            # As subreaper every orphan is our child: reap the ones that died.
            with contextlib.suppress(ChildProcessError):
                while True:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                    if pid == 0:
                        break
                    if pid == self.process.pid and self.process.returncode is None:
                        self.process.returncode = os.waitstatus_to_exitcode(status)
            if not left or time.monotonic() >= end:
                break
            time.sleep(0.02)
        if self.process.returncode is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=1.0)

    def _on_parent_death(self, _signum: int, _frame: object) -> None:
        if self.process is None:
            self.parent_gone = True
            return
        self.stopped_by = self.stopped_by or "agent-died"
        self._signal_group(signal.SIGKILL)
        self._reap_orphans()
        os._exit(137)


def main(argv: list[str] | None = None) -> int:
    """``python -m buildcoord.agent.supervisor [--report-fd N] LEASE TIMEOUT GRACE -- cmd...``."""
    args = sys.argv[1:] if argv is None else argv
    report_fd = REPORT_FD
    if args[:1] == ["--report-fd"] and len(args) > 1 and args[1].isdigit():
        report_fd, args = int(args[1]), args[2:]
    if "--" not in args or args.index("--") != 3 or len(args) < 5:
        print(
            "usage: supervisor [--report-fd N] LEASE TIMEOUT|none GRACE -- command...",
            file=sys.stderr,
        )
        return 2
    lease, timeout, grace = args[:3]
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    supervisor = Supervisor(
        args[4:],
        lease_seconds=float(lease),
        timeout=None if timeout == "none" else float(timeout),
        grace=float(grace),
    )
    outcome = supervisor.run()
    with contextlib.suppress(OSError):
        os.write(report_fd, (json.dumps(outcome) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
