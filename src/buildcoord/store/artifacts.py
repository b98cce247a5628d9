"""Artifact manifests per job: what a build produced, with sizes and digests."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Engine, delete, insert, select

from buildcoord.errors import NotFound
from buildcoord.models import ArtifactFile
from buildcoord.store.engine import read_transaction
from buildcoord.store.schema import artifacts, jobs


def replace_manifest(
    conn: Connection, job_id: int, server: str, files: Sequence[ArtifactFile]
) -> None:
    """Store a job's manifest inside the caller's transaction (replacing an earlier one)."""
    conn.execute(delete(artifacts).where(artifacts.c.job_id == job_id))
    if files:
        conn.execute(
            insert(artifacts),
            [
                {
                    "job_id": job_id,
                    "server": server,
                    "path": item.path,
                    "kind": item.kind,
                    "size": item.size,
                    "md5": item.md5,
                    "sha256": item.sha256,
                    "sha512": item.sha512,
                    "link_target": item.link_target,
                }
                for item in files
            ],
        )


class ArtifactStore:
    """SQL for artifact manifests."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def manifest(self, job_id: int) -> list[ArtifactFile]:
        """Return a job's manifest, sorted by path."""
        with read_transaction(self.engine) as conn:
            if conn.execute(select(jobs.c.id).where(jobs.c.id == job_id)).first() is None:
                raise NotFound(f"job {job_id} does not exist")
            rows = conn.execute(
                select(artifacts).where(artifacts.c.job_id == job_id).order_by(artifacts.c.path)
            ).all()
        return [
            ArtifactFile(
                path=row.path,
                size=row.size,
                md5=row.md5,
                sha256=row.sha256,
                sha512=row.sha512,
                kind=row.kind,
                link_target=row.link_target,
            )
            for row in rows
        ]
