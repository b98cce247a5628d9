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
