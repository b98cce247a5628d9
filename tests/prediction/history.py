"""Helpers for prediction tests: synthetic builds and history files."""

from __future__ import annotations

import csv
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from buildcoord.prediction.predictor import FinishedBuild

T0 = datetime(2025, 1, 1, tzinfo=UTC)
HEADER = ("repo", "job_name", "branch", "started_at", "duration_s", "result")


def build(
    duration: float,
    *,
    key: str = "job",
    branch: str = "main",
    server: str | None = None,
    result: str = "success",
    minute: int = 0,
    trigger: str | None = None,
) -> FinishedBuild:
    """One finished build."""
    return FinishedBuild(
        key, branch, server, T0 + timedelta(minutes=minute), duration, result, trigger
    )


def stamp(minute: int) -> str:
    """A started_at value ``minute`` minutes after T0."""
    return (T0 + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")


def synthetic_rows(count: int, seed: int = 7) -> list[tuple[str, ...]]:
    """Rows of three jobs on a few branches, with failures, skips, drifts and equal starts."""
    generator = random.Random(seed)
    rows = []
    for index in range(count):
        job = generator.choice(("build", "test", "deploy"))
        base = {"build": 300.0, "test": 120.0, "deploy": 15.0}[job] * (1 + index / count)
        result = generator.choices(("success", "failure", "cancelled", "skipped"), (8, 2, 1, 1))[0]
        duration = base * generator.lognormvariate(0, 0.15)
        if result != "success":
            duration *= generator.random()
        minute = index - index % 3  # runs of three rows start together
        rows.append(
            (
                generator.choice(("acme/app", "acme/lib")),
                job,
                generator.choice(("main", "main", "feature/x", "fix/y")),
                stamp(minute),
                f"{duration:.0f}",
                result,
            )
        )
    return rows


def write_csv(path: Path, rows: Sequence[Sequence[str]], header: Sequence[str] = HEADER) -> Path:
    """Write a history CSV."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    return path


QUEUED_HEADER = (*HEADER, "queued_at", "server")


def queued_rows(count: int, servers: int = 2, seed: int = 11) -> list[tuple[str, ...]]:
    """Rows of a real-looking queue: builds of two jobs (about 600 s and 200 s, ±10 %) queued
    at random, busy periods included, each started first-queued-first on the first of
    ``servers`` servers to be free (the schedule a coordinator's agents follow)."""
    generator = random.Random(seed)
    free_at = [0.0] * servers
    clock = 0.0
    rows = []
    for _ in range(count):
        clock += generator.expovariate(1 / 250.0)
        job = generator.choice(("build", "test"))
        duration = (600.0 if job == "build" else 200.0) * generator.uniform(0.9, 1.1)
        server = min(range(servers), key=lambda index: (free_at[index], index))
        start = max(clock, free_at[server])
        free_at[server] = start + duration
        rows.append(
            (
                "acme/app",
                job,
                "main",
                _at(start),
                f"{duration:.0f}",
                "success",
                _at(clock),
                f"build{server + 1}",
            )
        )
    return rows


def _at(seconds: float) -> str:
    return (T0 + timedelta(seconds=round(seconds))).strftime("%Y-%m-%dT%H:%M:%SZ")
