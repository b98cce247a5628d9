"""What happens once a build finished: its artifacts are registered, a success goes into the
rollback registry (and gets its tag), retention runs for its branch on its server, and two
servers' builds of the same branch and commit are compared.
"""

from __future__ import annotations

from buildcoord.models import Job
from buildcoord.services.artifacts import ArtifactService
from buildcoord.services.comparisons import ComparisonService
from buildcoord.services.rollback import RollbackService
from buildcoord.store import Store


class BuildOutcomes:
    """The after-finish hook of the queue."""

    def __init__(
        self,
        store: Store,
        artifacts: ArtifactService,
        rollback: RollbackService,
        comparisons: ComparisonService,
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.rollback = rollback
        self.comparisons = comparisons

    def job_finished(self, job: Job, artifact_root: str | None) -> None:
        """Called by the queue after a job finished; a cancelled one leaves nothing to do."""
        if job.status not in ("succeeded", "failed"):
            return
        count = 0
        if artifact_root is not None:
            count = self.artifacts.record(job, artifact_root).file_count
        if job.status == "succeeded":
            branch = self.store.find_branch(job.branch)
            if branch is not None:
                self.rollback.record_success(job, count, branch)
        if artifact_root is not None:
            self.artifacts.apply_retention(job)
            if job.status == "succeeded":
                self.comparisons.compare_with_peers(job)
