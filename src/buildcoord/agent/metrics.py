"""The system figures an agent sends with each heartbeat, read with psutil, and what it
finds wrong with itself."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

import psutil

from buildcoord.models import Metrics


def prime_cpu_counter() -> None:
    """Start psutil's CPU counter: its first reading covers nothing and says 0.0."""
    psutil.cpu_percent(interval=None)


def system_metrics(workdir: Path) -> Metrics:
    """CPU, load, memory, the work directory's disk, uptime; a figure that fails is None."""
    load: tuple[float | None, float | None, float | None] = (None, None, None)
    with contextlib.suppress(OSError):
        load = os.getloadavg()
    memory = psutil.virtual_memory()
    disk_free: int | None = None
    disk_total: int | None = None
    with contextlib.suppress(OSError):
        usage = psutil.disk_usage(str(workdir))
        disk_free, disk_total = usage.free, usage.total
    return Metrics(
        cpu_percent=psutil.cpu_percent(interval=None),
        load_1m=load[0],
        load_5m=load[1],
        load_15m=load[2],
        memory_used_bytes=memory.total - memory.available,
        memory_total_bytes=memory.total,
        disk_free_bytes=disk_free,
        disk_total_bytes=disk_total,
        uptime_seconds=max(0.0, time.time() - psutil.boot_time()),
    )


def health_problems(workdir: Path) -> tuple[str, ...]:
    """What would make this agent's builds fail whatever they build."""
    problems = []
    if shutil.which("git") is None:
        problems.append("git is not on PATH")
    if not os.access(workdir, os.W_OK | os.X_OK):
        problems.append(f"the work directory {workdir} is not writable")
    return tuple(problems)
