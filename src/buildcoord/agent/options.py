"""What an agent is told at start: its name, its directory, its timings."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class AgentOptions:
    """Settings of one agent process (the CLI's flags)."""

    name: str
    workdir: Path
    labels: tuple[str, ...] | None = None  # reported; None: keep those reported before
    lease_seconds: float = 30.0  # the lease the agent plans with (the coordinator's may be shorter)
    poll_interval: float = 0.5  # claim polling when idle without a session (coordinator away)
    safety_poll_interval: float = 30.0  # with a session, work is told; this covers a lost message
    heartbeat_interval: float = 5.0
    cancel_grace: float = 10.0  # SIGTERM to SIGKILL when a build is cancelled or times out
    report_patience: float = 300.0  # how long to retry a result while the coordinator is down
    python: str = sys.executable  # runs the build supervisor
    url: str | None = None  # what builds get as BUILDCOORD_URL (default: the client's)
    worktree_keep_days: float = 14.0  # worktrees of branches not built for longer are removed
