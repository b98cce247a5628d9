"""Artifact manifests per job: what a build produced, with sizes and digests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Row, Select, delete, func, insert, select, update

from buildcoord.errors import NotFound
from buildcoord.models import ArtifactFile, ArtifactSet
from buildcoord.store import job_queries as queries
from buildcoord.store.engine import Driver, read_transaction, write_transaction
from buildcoord.store.events import append_event
from buildcoord.store.schema import artifact_sets, artifacts, good_builds
from buildcoord.store.timestamps import from_epoch, from_epoch_or_none


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
            if Driver.within(conn).run(queries.JOB_EXISTS, (job_id,)).fetchone() is None:
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


def set_from_row(row: Row[Any], last_good: frozenset[int] = frozenset()) -> ArtifactSet:
    """Build an ArtifactSet from a row of artifact_sets."""
    return ArtifactSet(
        job_id=row.job_id,
        server=row.server,
        branch=row.branch,
        commit=row.commit,
        root=row.root,
        file_count=row.file_count,
        total_bytes=row.total_bytes,
        succeeded=bool(row.succeeded),
        created_at=from_epoch(row.created_at),
        pinned=bool(row.pinned),
        removed_at=from_epoch_or_none(row.removed_at),
        freed_bytes=row.freed_bytes,
        last_good=row.job_id in last_good,
    )


def last_good_jobs(conn: Connection, branch: str | None = None) -> frozenset[int]:
    """The job of each branch's newest successful build whose tag was not removed.

    One index walk per branch (``ix_good_builds_branch``): runs on every finished build, so it
    must not read a branch's whole history.
    """

    def newest_of(name: Any) -> Select[Any]:
        return (
            select(good_builds.c.job_id)
            .where(good_builds.c.branch == name, good_builds.c.tag_state != "removed")
            .order_by(good_builds.c.succeeded_at.desc(), good_builds.c.job_id.desc())
            .limit(1)
        )

    if branch is not None:
        found = conn.execute(newest_of(branch)).scalar_one_or_none()
        return frozenset() if found is None else frozenset((found,))
    branches = select(good_builds.c.branch).distinct().subquery()
    newest = newest_of(branches.c.branch).correlate(branches).scalar_subquery()
    jobs = conn.execute(select(newest).select_from(branches)).scalars()
    return frozenset(job for job in jobs if job is not None)


class ArtifactSetStore:
    """SQL for the artifact sets kept on agents: registry, pins, retention, removal."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record_set(self, job_id: int, root: str, *, now: float, actor: str) -> ArtifactSet:
        """Record (or refresh) where a finished job's artifacts are, from its manifest rows."""
        with write_transaction(self.engine) as conn:
            job = Driver.within(conn).run(queries.JOB_ORIGIN, (job_id,)).fetchone()
            if job is None:
                raise NotFound(f"job {job_id} does not exist")
            server, branch, commit, status = job
            count, total = conn.execute(
                select(func.count(), func.coalesce(func.sum(artifacts.c.size), 0)).where(
                    artifacts.c.job_id == job_id
                )
            ).one()
            pinned = conn.execute(
                select(artifact_sets.c.pinned).where(artifact_sets.c.job_id == job_id)
            ).scalar_one_or_none()
            conn.execute(delete(artifact_sets).where(artifact_sets.c.job_id == job_id))
            values = {
                "job_id": job_id,
                "server": server or "",
                "branch": branch,
                "commit": commit,
                "root": root,
                "file_count": int(count),
                "total_bytes": int(total),
                "succeeded": status == "succeeded",
                "created_at": now,
                "pinned": bool(pinned),
                "removed_at": None,
                "freed_bytes": None,
            }
            row = conn.execute(insert(artifact_sets).values(**values).returning(*artifact_sets.c))
            record = row.one()
            append_event(
                conn,
                at=now,
                actor=actor,
                kind="artifacts.recorded",
                subject=f"job:{job_id}",
                after={"server": values["server"], "files": count, "bytes": int(total)},
            )
            return set_from_row(record, last_good_jobs(conn, branch))

    def get_set(self, job_id: int) -> ArtifactSet:
        """One job's artifact set, or NotFound."""
        with read_transaction(self.engine) as conn:
            row = conn.execute(
                select(artifact_sets).where(artifact_sets.c.job_id == job_id)
            ).one_or_none()
            if row is None:
                raise NotFound(f"job {job_id} has no recorded artifacts")
            return set_from_row(row, last_good_jobs(conn, row.branch))

    def list_sets(
        self,
        *,
        server: str | None = None,
        branch: str | None = None,
        commit: str | None = None,
        succeeded: bool | None = None,
        include_removed: bool = False,
        limit: int | None = None,
    ) -> list[ArtifactSet]:
        """Artifact sets, newest first."""
        query = select(artifact_sets).order_by(
            artifact_sets.c.created_at.desc(), artifact_sets.c.job_id.desc()
        )
        if server is not None:
            query = query.where(artifact_sets.c.server == server)
        if branch is not None:
            query = query.where(artifact_sets.c.branch == branch)
        if commit is not None:
            query = query.where(artifact_sets.c.commit == commit)
        if succeeded is not None:
            query = query.where(artifact_sets.c.succeeded == succeeded)
        if not include_removed:
            query = query.where(artifact_sets.c.removed_at.is_(None))
        if limit is not None:
            query = query.limit(limit)
        with read_transaction(self.engine) as conn:
            rows = conn.execute(query).all()
            good = last_good_jobs(conn, branch) if rows else frozenset()
        return [set_from_row(row, good) for row in rows]

    def set_pinned(self, job_id: int, pinned: bool, *, now: float, actor: str) -> ArtifactSet:
        """Pin (retention never removes it) or unpin a job's artifacts."""
        with write_transaction(self.engine) as conn:
            row = conn.execute(
                update(artifact_sets)
                .where(artifact_sets.c.job_id == job_id)
                .values(pinned=pinned)
                .returning(*artifact_sets.c)
            ).one_or_none()
            if row is None:
                raise NotFound(f"job {job_id} has no recorded artifacts")
            append_event(
                conn,
                at=now,
                actor=actor,
                kind="artifacts.pinned" if pinned else "artifacts.unpinned",
                subject=f"job:{job_id}",
            )
            return set_from_row(row, last_good_jobs(conn, row.branch))

    def mark_removed(self, freed: dict[int, int], *, now: float, actor: str) -> None:
        """Record that an agent removed these sets (job id → bytes freed)."""
        with write_transaction(self.engine) as conn:
            for job_id, size in freed.items():
                conn.execute(
                    update(artifact_sets)
                    .where(artifact_sets.c.job_id == job_id, artifact_sets.c.removed_at.is_(None))
                    .values(removed_at=now, freed_bytes=size)
                )
                append_event(
                    conn,
                    at=now,
                    actor=actor,
                    kind="artifacts.removed",
                    subject=f"job:{job_id}",
                    after={"freed_bytes": size},
                )
