"""Reproducibility verdicts the coordinator recorded for pairs of builds."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, Row, insert, or_, select

from buildcoord.errors import NotFound
from buildcoord.models import ComparisonRecord
from buildcoord.store.engine import read_transaction, write_transaction
from buildcoord.store.events import append_event
from buildcoord.store.schema import comparisons
from buildcoord.store.timestamps import from_epoch


def comparison_from_row(row: Row[Any]) -> ComparisonRecord:
    """Build a ComparisonRecord from a row of comparisons."""
    return ComparisonRecord(
        id=row.id,
        job_a=row.job_a,
        job_b=row.job_b,
        branch=row.branch,
        commit=row.commit,
        reproducible=bool(row.reproducible),
        summary=json.loads(row.summary),
        created_at=from_epoch(row.created_at),
    )


class ComparisonStore:
    """SQL for comparisons."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(
        self,
        *,
        job_a: int,
        job_b: int,
        branch: str,
        commit: str,
        reproducible: bool,
        summary: dict[str, Any],
        now: float,
        actor: str,
    ) -> ComparisonRecord | None:
        """Record a verdict for a pair (the lower job id first); None if it was recorded."""
        job_a, job_b = min(job_a, job_b), max(job_a, job_b)
        with write_transaction(self.engine) as conn:
            if conn.execute(
                select(comparisons.c.id).where(
                    comparisons.c.job_a == job_a, comparisons.c.job_b == job_b
                )
            ).first():
                return None
            row = conn.execute(
                insert(comparisons)
                .values(
                    job_a=job_a,
                    job_b=job_b,
                    branch=branch,
                    commit=commit,
                    reproducible=reproducible,
                    summary=json.dumps(summary, sort_keys=True),
                    created_at=now,
                )
                .returning(*comparisons.c)
            ).one()
            append_event(
                conn,
                at=now,
                actor=actor,
                kind="comparison.recorded",
                subject=f"branch:{branch}",
                after={"jobs": [job_a, job_b], "reproducible": reproducible},
            )
            return comparison_from_row(row)

    def get(self, comparison_id: int) -> ComparisonRecord:
        """One comparison, or NotFound."""
        with read_transaction(self.engine) as conn:
            row = conn.execute(
                select(comparisons).where(comparisons.c.id == comparison_id)
            ).one_or_none()
        if row is None:
            raise NotFound(f"comparison {comparison_id} does not exist")
        return comparison_from_row(row)

    def list_comparisons(
        self, *, branch: str | None = None, job: int | None = None, limit: int = 50
    ) -> list[ComparisonRecord]:
        """Comparisons, newest first."""
        query = select(comparisons).order_by(comparisons.c.id.desc()).limit(limit)
        if branch is not None:
            query = query.where(comparisons.c.branch == branch)
        if job is not None:
            query = query.where(or_(comparisons.c.job_a == job, comparisons.c.job_b == job))
        with read_transaction(self.engine) as conn:
            return [comparison_from_row(row) for row in conn.execute(query)]
