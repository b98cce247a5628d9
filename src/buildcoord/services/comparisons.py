"""Reproducibility: when two servers have built the same branch and commit, the coordinator
compares their manifests by itself and records the verdict."""

from __future__ import annotations

from buildcoord.artifacts.comparison import compare_manifests
from buildcoord.artifacts.manifest import Manifest
from buildcoord.clock import Clock
from buildcoord.models import SYSTEM, ComparisonRecord, Job, Principal
from buildcoord.services.authority import require_reader
from buildcoord.store import Store


class ComparisonService:
    """Automatic comparisons and their verdicts."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def manifest_of(self, job: Job) -> Manifest:
        """A job's reported manifest as a document."""
        return Manifest(
            files=self.store.job_manifest(job.id),
            created_at=job.finished_at or self.clock.now(),
            job=job.id,
            server=job.server,
            branch=job.branch,
            commit=job.commit,
        )

    def compare_with_peers(self, job: Job) -> list[ComparisonRecord]:
        """Compare a successful build with each other server's build of the same commit."""
        peers = [
            item
            for item in self.store.list_artifact_sets(
                branch=job.branch, commit=job.commit, succeeded=True, include_removed=True
            )
            if item.server != job.server and item.job_id != job.id
        ]
        newest_per_server: dict[str, int] = {}
        for item in peers:  # newest first
            newest_per_server.setdefault(item.server, item.job_id)
        if not newest_per_server:
            return []
        mine = self.manifest_of(job)
        recorded = []
        for peer_id in sorted(newest_per_server.values()):
            peer = self.store.get_job(peer_id)
            first, second = (
                (self.manifest_of(peer), mine)
                if peer.id < job.id
                else (mine, self.manifest_of(peer))
            )
            comparison = compare_manifests(
                first,
                second,
                first.server or f"job {first.job}",
                second.server or f"job {second.job}",
            )
            record = self.store.record_comparison(
                job_a=first.job or 0,
                job_b=second.job or 0,
                branch=job.branch,
                commit=job.commit,
                reproducible=comparison.reproducible,
                summary=comparison.to_dict(),
                now=self.clock.now().timestamp(),
                actor=SYSTEM.actor,
            )
            if record is not None:
                recorded.append(record)
        return recorded

    def list_comparisons(
        self, *, branch: str | None = None, job: int | None = None, by: Principal
    ) -> list[ComparisonRecord]:
        """Recorded verdicts, newest first."""
        require_reader(by, "reading comparisons")
        return self.store.list_comparisons(branch=branch, job=job)

    def get(self, comparison_id: int, *, by: Principal) -> ComparisonRecord:
        """One recorded verdict."""
        require_reader(by, "reading comparisons")
        return self.store.get_comparison(comparison_id)
