"""The job queue's rules: validation, priority aging, leases, who may touch which job.

This service owns every transition of a job, whoever asks for it: submit, claim (plain, or
with the build recipe an agent gets), renew, complete, cancel (an operator's, or a branch
watch's of a superseded build), retry, lease expiry, the release of a lost agent's jobs and
the lease extension at a coordinator's start. Every transition that ends a job (succeeded,
failed or cancelled: by its agent, an operator, an expired lease, a lost agent or a branch
that lost its build command) goes through one step, ``_finished``, which runs the
after-finish hooks given to the constructor; each hook checks the status it cares about.

Priority aging: a queued job's effective priority is ``priority - waited / aging``, so it
rises one step per ``priority_aging_minutes`` of waiting. Ordering jobs by that value at any
moment is the same as ordering them by ``queued_at + (priority - 1) * aging``, a number
fixed when the job is queued; the store keeps it as ``rank`` under one index, so a claim
never scans. With aging off, rank orders strictly by priority, then FIFO.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from buildcoord import git, validation
from buildcoord.clock import Clock
from buildcoord.config import Settings
from buildcoord.errors import Forbidden, InvalidInput, NotFound
from buildcoord.models import (
    JOB_STATUSES,
    MAX_DURATION_SECONDS,
    SYSTEM,
    TRIGGER_MANUAL,
    ArtifactFile,
    Assignment,
    Branch,
    Job,
    Principal,
)
from buildcoord.services.authority import (
    require_operator,
    require_reader,
    require_self_or_operator,
)
from buildcoord.store import DatabaseUnavailable, Store
from buildcoord.store.job_rows import NewJob

log = logging.getLogger("buildcoord.queue")

# Called after a job finished: (the job, its artifact directory when it reported a manifest).
# "Finished": any terminal transition (succeeded, failed, cancelled, whatever ended it); a
# hook checks the status it cares about.
FinishedHook = Callable[[Job, str | None], None]

# Far above any epoch second, so that with aging off priority always dominates queue time.
CLAIM_READ_RETRIES = (0.05, 0.2)
"""Pauses between reads of a claimed job's recipe when the database dropped the connection."""

_PRIORITY_SPAN = 1e11
_AGING_KEY = "priority_aging_seconds"


def claim_rank(priority: int, queued_at: float, aging_seconds: float) -> float:
    """Return the claim order key of a job; lower is claimed first."""
    if aging_seconds > 0:
        return queued_at + (priority - 1) * aging_seconds
    return priority * _PRIORITY_SPAN + queued_at


class QueueService:
    """Every transition of a job: submit, claim, renew, complete, cancel, retry, expiry."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: Settings,
        *,
        finished: Sequence[FinishedHook] = (),
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.aging_seconds = max(0.0, settings.priority_aging_minutes * 60.0)
        self._hooks = tuple(finished)

    def rank_of(self, priority: int, queued_at: float) -> float:
        """Claim rank under the current aging policy."""
        return claim_rank(priority, queued_at, self.aging_seconds)

    def apply_aging_policy(self) -> int:
        """Re-rank waiting jobs if the aging setting changed since the last start."""
        stored = self.store.get_setting(_AGING_KEY)
        if stored is not None and float(stored) == self.aging_seconds:
            return 0
        count = self.store.rerank_queued_jobs(self.rank_of)
        self.store.put_setting(_AGING_KEY, repr(self.aging_seconds))
        return count

    def submit(
        self,
        branch: str,
        commit: str | None = None,
        *,
        priority: int | None = None,
        depends_on: Sequence[int] = (),
        labels: Sequence[str] = (),
        once_per_commit: bool = False,
        trigger: str | None = None,
        by: Principal,
    ) -> Job:
        """Queue a build of branch at commit (default: the set-up branch's tip).

        A set-up branch lends the job its priority (unless one is given) and its labels.
        trigger says what started it (None: manual, an operator's submit); every attempt
        keeps it, and its builds' history records it for the predictor.
        Bad input is refused before anything is stored. With once_per_commit, CommitKnown
        when the branch already has a job at that commit (queued, running or finished).
        """
        require_operator(by, "queueing a job")
        validation.branch_name(branch)
        trigger = TRIGGER_MANUAL if trigger is None else validation.trigger(trigger)
        if priority is not None:
            validation.priority(priority)
        if commit is not None:
            validation.commit_id(commit)
        dependencies = _dependency_ids(depends_on)
        wanted = validation.labels(labels)
        setup = self.store.find_branch(branch)
        if commit is None:
            if setup is None:
                raise NotFound(
                    f"branch {branch} is not set up, so it has no tip to build: give a commit "
                    "or add the branch with 'buildcoord branches add'"
                )
            commit = git.branch_tip(setup.repo, branch)
        if priority is None:
            priority = setup.priority if setup is not None else 5
        if setup is not None:
            wanted = validation.labels([*wanted, *setup.labels])
        new = NewJob(
            branch=branch,
            commit=validation.commit_id(commit),
            priority=priority,
            depends_on=dependencies,
            labels=wanted,
            max_attempts=self.settings.max_attempts,
            trigger=trigger,
        )
        now = self.clock.now().timestamp()
        return self.store.submit_job(
            new,
            now=now,
            rank=self.rank_of(new.priority, now),
            actor=by.actor,
            once_per_commit=once_per_commit,
        )

    def get(self, job_id: int, *, by: Principal) -> Job:
        """Return one job."""
        require_reader(by, "reading jobs")
        return self.store.get_job(job_id)

    def list_jobs(
        self,
        *,
        status: str | None = None,
        branch: str | None = None,
        server: str | None = None,
        limit: int = 200,
        by: Principal,
    ) -> list[Job]:
        """List jobs, optionally of one status, branch or server."""
        require_reader(by, "reading jobs")
        if status is not None and status not in (*JOB_STATUSES, "all"):
            raise InvalidInput(
                f"unknown status {status!r}: expected one of {', '.join(JOB_STATUSES)} or all"
            )
        if not 1 <= limit <= 10_000:
            raise InvalidInput("limit must be from 1 to 10000")
        statuses = None if status in (None, "all") else [status]
        return self.store.list_jobs(statuses=statuses, branch=branch, server=server, limit=limit)

    def claim_next(self, server: str, *, by: Principal) -> Job | None:
        """Lease the next job this server can run (labels, dependencies, priority, age)."""
        require_self_or_operator(by, server, "claim jobs")
        return self.store.claim_job(
            server,
            now=self.clock.now().timestamp(),
            lease_seconds=self.settings.job_lease_seconds,
            actor=by.actor,
        )

    def claim_build(self, server: str, *, by: Principal) -> Assignment | None:
        """Lease the next job this agent can build, with its branch's build recipe.

        A job whose branch lost its build command between the claim and the read of the
        recipe is failed (and finished like any failure), and the next one is claimed.
        """
        require_self_or_operator(by, server, "claim jobs")
        now = self.clock.now().timestamp()
        while True:
            # The server's labels are read in the claim's transaction (NotFound if none).
            job = self.store.claim_job(
                server,
                now=now,
                lease_seconds=self.settings.job_lease_seconds,
                actor=by.actor,
                buildable_only=True,
            )
            if job is None:
                return None
            branch = self._recipe_after_claim(job.branch)
            if branch is not None and branch.command is not None:
                return Assignment(
                    job=job,
                    repo=branch.repo,
                    command=branch.command,
                    timeout_seconds=branch.timeout_seconds,
                    retry_on_failure=branch.retry_on_failure,
                )
            failed = self.store.complete_job(
                job.id,
                server=server,
                fencing_token=job.fencing_token,
                status="failed",
                exit_code=None,
                duration=0.0,
                reason=f"branch {job.branch} has no build command any more",
                now=now,
                actor=SYSTEM.actor,
            )
            self._finished(failed)

    def _recipe_after_claim(self, name: str) -> Branch | None:
        """The claimed job's branch, read again if the database dropped the connection: the
        claim has committed, and an error now would leave the job leased to an agent that
        never heard of it (an attempt lost until the lease runs out)."""
        for pause in CLAIM_READ_RETRIES:
            try:
                return self.store.find_branch(name)
            except DatabaseUnavailable:
                log.warning("reading the recipe of a claimed %s job failed; again", name)
                time.sleep(pause)
        return self.store.find_branch(name)

    def renew(self, job_id: int, *, server: str, fencing_token: int, by: Principal) -> Job:
        """Extend the lease of a job the caller holds."""
        require_self_or_operator(by, server, "renew leases")
        return self.store.renew_job_lease(
            job_id,
            server=server,
            fencing_token=fencing_token,
            now=self.clock.now().timestamp(),
            lease_seconds=self.settings.job_lease_seconds,
            actor=by.actor,
        )

    def complete(
        self,
        job_id: int,
        *,
        status: str,
        exit_code: int | None = None,
        duration: float | None = None,
        reason: str | None = None,
        server: str | None = None,
        fencing_token: int | None = None,
        manifest: Sequence[ArtifactFile] | None = None,
        artifact_root: str | None = None,
        by: Principal,
    ) -> Job:
        """Finish a running job; an agent must name its server and its current token.

        A failed build is retried (a new attempt) only when its branch says so. Then the
        ``finished`` hooks run (artifact registry, rollback registry, retention, comparison).

        A reported duration must lie within 0 to a week (``MAX_DURATION_SECONDS``, also the
        longest branch timeout); beyond, it is refused and nothing changes. It is not checked
        against the branch's own timeout: the timeout may be changed while the build runs, and
        refusing a completion would lose a real result (the job would wait for its lease to
        run out). Nor is it clamped: a value the agent did not send would be stored as if it
        had. The week bound alone keeps every stored duration within what the forecast and
        the predictor handle.
        """
        if by.kind == "agent":
            if server is None or fencing_token is None:
                raise Forbidden("an agent completes a job with its server name and fencing token")
            require_self_or_operator(by, server, "complete jobs")
        else:
            require_operator(by, "completing a job")
        if duration is not None and not 0 <= duration <= MAX_DURATION_SECONDS:
            raise InvalidInput(
                f"invalid duration {duration!r}: expected 0 to {MAX_DURATION_SECONDS:g} seconds"
            )
        if reason is not None:
            validation.text(reason, what="reason", maximum=validation.REASON_LIMIT, required=False)
        if manifest is not None:
            manifest = artifact_manifest(manifest)
        if artifact_root is not None:
            validation.text(artifact_root, what="artifact directory", maximum=validation.PATH_LIMIT)
        job = self.store.complete_job(
            job_id,
            server=server,
            fencing_token=fencing_token,
            status=status,
            exit_code=exit_code,
            duration=duration,
            reason=reason,
            now=self.clock.now().timestamp(),
            actor=by.actor,
            manifest=manifest,
        )
        self._finished(job, artifact_root if manifest is not None else None)
        if job.status == "failed" and job.attempt < job.max_attempts:
            setup = self.store.find_branch(job.branch)
            if setup is not None and setup.retry_on_failure:
                return self.store.retry_job(
                    job.id,
                    rank_of=self.rank_of,
                    now=self.clock.now().timestamp(),
                    actor=SYSTEM.actor,
                )
        return job

    def cancel(
        self,
        job_id: int,
        *,
        reason: str | None = None,
        only_if_queued: bool = False,
        by: Principal,
    ) -> Job:
        """Cancel a job that has not finished.

        only_if_queued: Conflict unless it still waits in the queue (a superseded build is
        withdrawn only before it starts).
        """
        require_operator(by, "cancelling a job")
        if reason is not None:
            validation.text(reason, what="reason", maximum=validation.REASON_LIMIT, required=False)
        job = self.store.cancel_job(
            job_id,
            reason=reason,
            now=self.clock.now().timestamp(),
            actor=by.actor,
            only_if_status="queued" if only_if_queued else None,
        )
        return self._finished(job)

    def retry(self, job_id: int, *, by: Principal) -> Job:
        """Queue a failed or cancelled job again as its next attempt."""
        require_operator(by, "retrying a job")
        return self.store.retry_job(
            job_id, rank_of=self.rank_of, now=self.clock.now().timestamp(), actor=by.actor
        )

    def set_priority(self, job_id: int, priority: int, *, by: Principal) -> Job:
        """Change a queued or blocked job's priority (1 highest to 10)."""
        require_operator(by, "changing a job's priority")
        validation.priority(priority)
        return self.store.set_job_priority(
            job_id, priority, rank_of=self.rank_of, now=self.clock.now().timestamp(), actor=by.actor
        )

    def expire_leases(self) -> list[Job]:
        """Maintenance: requeue or fail running jobs whose lease ran out."""
        changed = self.store.expire_job_leases(now=self.clock.now().timestamp(), actor=SYSTEM.actor)
        return self._leases_ended(changed)

    def release_lost_agent(self, server: str) -> list[Job]:
        """End the leases of an agent that is gone: requeue its jobs, or fail them."""
        ended = self.store.end_job_leases_of(
            server,
            why="agent {server} disconnected",
            now=self.clock.now().timestamp(),
            actor=SYSTEM.actor,
        )
        return self._leases_ended(ended)

    def extend_leases_at_start(self) -> int:
        """Give every running job one lease period from now (a coordinator start).

        Agents could not renew while no coordinator ran, so they get time to come back.
        """
        now = self.clock.now().timestamp()
        return self.store.extend_job_leases(
            until=now + self.settings.job_lease_seconds, now=now, actor="system:startup"
        )

    def _leases_ended(self, jobs: list[Job]) -> list[Job]:
        """Finish those of jobs whose ended lease failed them (the last attempt).

        A requeued one is not finished: its attempt's start is no longer known (the store
        clears it when requeueing).
        """
        for job in jobs:
            if job.status == "failed":
                self._finished(job)
        return jobs

    def _finished(self, job: Job, artifact_root: str | None = None) -> Job:
        """The one step after every terminal transition: run each after-finish hook.

        A hook that fails is logged and the others still run: the job is finished and
        recorded, and a hook must not undo that.
        """
        for hook in self._hooks:
            try:
                hook(job, artifact_root)
            except Exception:
                log.exception("job %d: after-finish hook failed", job.id)
        return job


def _dependency_ids(values: Sequence[int]) -> tuple[int, ...]:
    seen: dict[int, None] = {}
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInput(f"invalid dependency {value!r}: expected a job id")
        seen[value] = None
    if len(seen) > 1000:
        raise InvalidInput("a job may depend on at most 1000 jobs")
    return tuple(seen)


def artifact_manifest(files: Sequence[ArtifactFile]) -> list[ArtifactFile]:
    """Check a manifest: relative paths inside the root, no duplicates, sane sizes."""
    seen: set[str] = set()
    for item in files:
        path = item.path
        parts = path.split("/")
        if not path or path.startswith("/") or ".." in parts or "" in parts or "\0" in path:
            raise InvalidInput(f"invalid artifact path {path!r}: a relative path inside the root")
        if len(path) > validation.PATH_LIMIT:
            raise InvalidInput(
                f"artifact path {path[:80]!r}... is {len(path)} characters; "
                f"the limit is {validation.PATH_LIMIT}"
            )
        if path in seen:
            raise InvalidInput(f"artifact path {path!r} appears twice")
        for name in validation.DIGEST_LENGTHS:
            value = getattr(item, name)
            if value is not None:
                validation.digest(value, name=name, where=path)
        if item.link_target is not None:
            validation.text(
                item.link_target, what=f"link target of {path!r}", maximum=validation.PATH_LIMIT
            )
        if item.size < 0:
            raise InvalidInput(f"invalid size for {path!r}")
        seen.add(path)
    return sorted(files, key=lambda item: item.path)
