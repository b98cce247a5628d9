"""The store: the only package that speaks SQL. One class per noun, composed into ``Store``.

Services call ``Store``'s own methods, one per operation (``claim_job``, ``renew_job_lease``,
``find_branch``…); each runs in one transaction of the sub-store that owns its table, and
returns models, never rows. The sub-stores (``store.jobs``, ``store.branches``…) are the
tables' SQL; tests may reach them, services do not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Engine

from buildcoord.models import (
    AgentOrder,
    ArtifactFile,
    ArtifactSet,
    Branch,
    BuildRecord,
    ClaimableJob,
    ComparisonRecord,
    Event,
    GoodBuild,
    Job,
    Lock,
    LockGrant,
    LogEntry,
    Message,
    MessageStats,
    ReleasedLock,
    Token,
)
from buildcoord.store.artifacts import ArtifactSetStore, ArtifactStore
from buildcoord.store.branches import BranchStore
from buildcoord.store.comparisons import ComparisonStore
from buildcoord.store.engine import checkpoint_wal, event_commits, make_engine
from buildcoord.store.events import EventStore
from buildcoord.store.history import HistoryStore
from buildcoord.store.job_rows import NewJob
from buildcoord.store.jobs import JobStore, RankFunction
from buildcoord.store.locks import LockStore
from buildcoord.store.logs import LogStore
from buildcoord.store.messages import MessageStore
from buildcoord.store.migrate import upgrade
from buildcoord.store.orders import OrderStore
from buildcoord.store.rollback import RollbackStore
from buildcoord.store.servers import ServerRecord, ServerStore
from buildcoord.store.sessions import SessionStore
from buildcoord.store.settings import SettingStore
from buildcoord.store.tokens import TokenStore
from buildcoord.store.webhook_deliveries import WebhookDeliveryStore


class Store:
    """Every table's SQL, sharing one engine; one method per operation the services call."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.jobs = JobStore(engine)
        self.locks = LockStore(engine)
        self.messages = MessageStore(engine)
        self.servers = ServerStore(engine)
        self.tokens = TokenStore(engine)
        self.events = EventStore(engine)
        self.settings = SettingStore(engine)
        self.branches = BranchStore(engine)
        self.logs = LogStore(engine)
        self.artifacts = ArtifactStore(engine)
        self.sessions = SessionStore(engine)
        self.artifact_sets = ArtifactSetStore(engine)
        self.rollback = RollbackStore(engine)
        self.comparisons = ComparisonStore(engine)
        self.orders = OrderStore(engine)
        self.history = HistoryStore(engine)
        self.webhook_deliveries = WebhookDeliveryStore(engine)

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Open the database at url, bringing its schema up to date first unless told not to."""
        engine = make_engine(url)
        if migrate:
            upgrade(engine)
        return cls(engine)

    @property
    def dialect(self) -> str:
        """The database's kind: ``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def checkpoint(self) -> tuple[int, int] | None:
        """Checkpoint an SQLite WAL without waiting (see engine.checkpoint_wal); else None."""
        return checkpoint_wal(self.engine)

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    # -- jobs --------------------------------------------------------------------------------

    def submit_job(
        self, new: NewJob, *, now: float, rank: float, actor: str, once_per_commit: bool = False
    ) -> Job:
        """Insert a job; refuse unknown dependencies; block it at once if one already failed."""
        return self.jobs.submit_job(
            new, now=now, rank=rank, actor=actor, once_per_commit=once_per_commit
        )

    def get_job(self, job_id: int) -> Job:
        """Return one job or raise NotFound."""
        return self.jobs.get_job(job_id)

    def list_jobs(
        self,
        *,
        statuses: Sequence[str] | None = None,
        branch: str | None = None,
        server: str | None = None,
        limit: int = 200,
    ) -> list[Job]:
        """Return jobs: queued ones in claim order, the rest newest first."""
        return self.jobs.list_jobs(statuses=statuses, branch=branch, server=server, limit=limit)

    def running_jobs_by_server(self) -> dict[str, list[int]]:
        """Return the ids of running jobs per server."""
        return self.jobs.running_jobs_by_server()

    def rerank_queued_jobs(self, rank_of: RankFunction) -> int:
        """Recompute the claim rank of every queued or blocked job (after a policy change)."""
        return self.jobs.rerank_queued(rank_of)

    def claim_job(
        self,
        server: str,
        *,
        now: float,
        lease_seconds: float,
        actor: str,
        buildable_only: bool = False,
    ) -> Job | None:
        """Lease the next job a server can run, its labels read in the claim's own transaction."""
        return self.jobs.claim_for_server(
            server, now=now, lease_seconds=lease_seconds, actor=actor, buildable_only=buildable_only
        )

    def renew_job_lease(
        self,
        job_id: int,
        *,
        server: str,
        fencing_token: int,
        now: float,
        lease_seconds: float,
        actor: str,
    ) -> Job:
        """Extend the lease of a running job; only its holder with the current token may."""
        return self.jobs.renew_lease(
            job_id,
            server=server,
            fencing_token=fencing_token,
            now=now,
            lease_seconds=lease_seconds,
            actor=actor,
        )

    def complete_job(
        self,
        job_id: int,
        *,
        server: str | None,
        fencing_token: int | None,
        status: str,
        exit_code: int | None,
        duration: float | None,
        reason: str | None,
        now: float,
        actor: str,
        manifest: Sequence[ArtifactFile] | None = None,
    ) -> Job:
        """Finish a running job as succeeded or failed; only the current lease may."""
        return self.jobs.complete_job(
            job_id,
            server=server,
            fencing_token=fencing_token,
            status=status,
            exit_code=exit_code,
            duration=duration,
            reason=reason,
            now=now,
            actor=actor,
            manifest=manifest,
        )

    def cancel_job(
        self,
        job_id: int,
        *,
        reason: str | None,
        now: float,
        actor: str,
        only_if_status: str | None = None,
    ) -> Job:
        """Cancel a queued, blocked or running job; its dependents become blocked."""
        return self.jobs.cancel_job(
            job_id, reason=reason, now=now, actor=actor, only_if_status=only_if_status
        )

    def retry_job(self, job_id: int, *, rank_of: RankFunction, now: float, actor: str) -> Job:
        """Queue a failed or cancelled job again as a new attempt; unblock its dependents."""
        return self.jobs.retry_job(job_id, rank_of=rank_of, now=now, actor=actor)

    def expire_job_leases(self, *, now: float, actor: str) -> list[Job]:
        """Requeue (attempt + 1) or fail every running job whose lease has run out."""
        return self.jobs.expire_leases(now=now, actor=actor)

    def end_job_leases_of(self, server: str, *, why: str, now: float, actor: str) -> list[Job]:
        """Requeue (attempt + 1) or fail every job running on a server that was lost."""
        return self.jobs.end_leases_of(server, why=why, now=now, actor=actor)

    def extend_job_leases(self, *, until: float, now: float, actor: str) -> int:
        """Give every running lease at least until ``until`` (a coordinator start)."""
        return self.jobs.extend_running_leases(until=until, now=now, actor=actor)

    # -- logs --------------------------------------------------------------------------------

    def append_log_entries(
        self,
        job_id: int,
        entries: Sequence[dict[str, Any]],
        *,
        server: str | None,
        fencing_token: int | None,
    ) -> int:
        """Append entries (dicts with at, kind, level, message, details) to a job's log."""
        return self.logs.append_entries(job_id, entries, server=server, fencing_token=fencing_token)

    def list_log_entries(
        self, job_id: int, *, after_id: int = 0, limit: int = 5000
    ) -> list[LogEntry]:
        """Return a job's log entries in order, after a cursor."""
        return self.logs.list_entries(job_id, after_id=after_id, limit=limit)

    # -- artifacts ---------------------------------------------------------------------------

    def job_manifest(self, job_id: int) -> list[ArtifactFile]:
        """Return a job's manifest, sorted by path."""
        return self.artifacts.manifest(job_id)

    # -- events ------------------------------------------------------------------------------

    def list_events(
        self, *, subject: str | None = None, after_id: int = 0, limit: int = 100
    ) -> list[Event]:
        """Return events in append order, optionally for one subject, after a cursor."""
        return self.events.list_events(subject=subject, after_id=after_id, limit=limit)

    def last_event_id(self) -> int:
        """The newest event's id; 0 when the log is empty."""
        return self.events.last_event_id()

    def on_event_commits(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` after every commit in this process that may have appended events
        (quick, never raising); return what stops it."""
        return event_commits.add(callback)

    def claimable_jobs(self, job_ids: Iterable[int]) -> list[ClaimableJob]:
        """Those of job_ids an agent's claim could take now, with the labels they require."""
        return self.jobs.claimable(job_ids)

    def claim_labels(self, server: str) -> frozenset[str]:
        """The labels a server's claims match against; NotFound for no such server."""
        return self.jobs.claim_labels(server)

    # -- history -----------------------------------------------------------------------------

    def record_build(self, job: Job) -> BuildRecord | None:
        """Record a finished attempt that had started; None if it never ran or is recorded."""
        return self.history.record_finished(job)

    def recent_builds(self, limit: int) -> list[BuildRecord]:
        """The ``limit`` most recently finished builds, oldest first (the order they finished)."""
        return self.history.recent_builds(limit)

    def builds_finished_since(self, since: float, limit: int = 10000) -> list[BuildRecord]:
        """Builds that finished at or after ``since``, in the order they finished."""
        return self.history.finished_since(since, limit)

    def latest_build_key(self, branch: str) -> str | None:
        """The build key of a branch's most recently started build, or None if it has none."""
        return self.history.latest_key_of(branch)

    # -- branches ----------------------------------------------------------------------------

    def find_branch(self, name: str) -> Branch | None:
        """Return one branch or None."""
        return self.branches.find_branch(name)

    def get_branch(self, name: str) -> Branch:
        """Return one branch or raise NotFound."""
        return self.branches.get_branch(name)

    def list_branches(self) -> list[Branch]:
        """Return every branch by name."""
        return self.branches.list_branches()

    def add_branch(
        self,
        *,
        name: str,
        repo: str,
        command: str | None,
        priority: int,
        labels: tuple[str, ...],
        timeout_seconds: float | None,
        retry_on_failure: bool,
        tag_on_success: bool = True,
        push_tags: bool = True,
        auto_build: bool = True,
        schedule: str | None = None,
        enabled: bool = True,
        seen_commit: str | None = None,
        next_scheduled_at: float | None = None,
        now: float,
        actor: str,
    ) -> Branch:
        """Insert a branch; Conflict if it exists."""
        return self.branches.add_branch(
            name=name,
            repo=repo,
            command=command,
            priority=priority,
            labels=labels,
            timeout_seconds=timeout_seconds,
            retry_on_failure=retry_on_failure,
            tag_on_success=tag_on_success,
            push_tags=push_tags,
            auto_build=auto_build,
            schedule=schedule,
            enabled=enabled,
            seen_commit=seen_commit,
            next_scheduled_at=next_scheduled_at,
            now=now,
            actor=actor,
        )

    def update_branch(
        self, name: str, changes: dict[str, Any], *, now: float, actor: str
    ) -> Branch:
        """Change some of a branch's settings (columns named in changes)."""
        return self.branches.update_branch(name, changes, now=now, actor=actor)

    def remove_branch(self, name: str, *, now: float, actor: str) -> None:
        """Delete a branch (its jobs stay; agents no longer claim its queued ones)."""
        return self.branches.remove_branch(name, now=now, actor=actor)

    def record_tip(self, name: str, *, expected: str | None, tip: str, now: float) -> bool:
        """Move seen_commit from expected to tip; False when another poller moved it first."""
        return self.branches.record_tip(name, expected=expected, tip=tip, now=now)

    def record_check_success(self, name: str, *, now: float) -> bool:
        """Note a successful look at the repository; True when it ends a failure streak."""
        return self.branches.record_check_success(name, now=now)

    def record_check_failure(self, name: str, error: str, *, now: float) -> bool:
        """Note a failed look; True only for the first failure of a streak (alert once)."""
        return self.branches.record_check_failure(name, error, now=now)

    def advance_schedule(self, name: str, *, expected: float | None, next_at: float | None) -> bool:
        """Move next_scheduled_at from expected to next_at; False when another poller did."""
        return self.branches.advance_schedule(name, expected=expected, next_at=next_at)

    # -- webhook deliveries ------------------------------------------------------------------

    def record_webhook_delivery(self, delivery_id: str, *, now: float) -> bool:
        """Record a delivery id; False when it was recorded before (by any coordinator)."""
        return self.webhook_deliveries.record_delivery(delivery_id, now=now)

    def forget_webhook_deliveries(self, *, before: float) -> int:
        """Delete the deliveries received before a time; how many were deleted."""
        return self.webhook_deliveries.forget_deliveries(before=before)

    # -- servers -----------------------------------------------------------------------------

    def get_server(self, name: str) -> ServerRecord:
        """Return one server or raise NotFound."""
        return self.servers.get_server(name)

    def list_servers(self) -> list[ServerRecord]:
        """Return every server by name."""
        return self.servers.list_servers()

    def register_server(
        self, name: str, labels: tuple[str, ...], *, token_hash: str, now: float, actor: str
    ) -> ServerRecord:
        """Insert a server and its agent token; Conflict if the name is taken."""
        return self.servers.register_server(
            name, labels, token_hash=token_hash, now=now, actor=actor
        )

    def remove_server(self, name: str, *, now: float, actor: str) -> None:
        """Delete a server and revoke its tokens; refused while it runs jobs."""
        return self.servers.remove_server(name, now=now, actor=actor)

    def record_heartbeat(
        self,
        name: str,
        *,
        metrics: dict[str, Any],
        agent_version: str | None,
        labels: tuple[str, ...] | None,
        now: float,
        actor: str,
    ) -> tuple[ServerRecord, tuple[int, ...]]:
        """Store a heartbeat, and the labels it reports unless None (the operator's stay);
        return the server and the ids of its running jobs."""
        return self.servers.record_heartbeat(
            name, metrics=metrics, agent_version=agent_version, labels=labels, now=now, actor=actor
        )

    def record_server_status(
        self, name: str, *, expected: str, status: str, now: float, actor: str
    ) -> bool:
        """Flip the recorded status if it is still ``expected``; True if this call flipped it."""
        return self.servers.record_status(
            name, expected=expected, status=status, now=now, actor=actor
        )

    # -- sessions ----------------------------------------------------------------------------

    def open_session(self, session_id: str, server: str, *, now: float) -> None:
        """Record a newly connected agent session."""
        return self.sessions.open_session(session_id, server, now=now)

    def close_session(self, session_id: str, *, now: float) -> None:
        """Record that a session's connection dropped."""
        return self.sessions.close_session(session_id, now=now)

    def take_lost_servers(self, *, before: float, now: float) -> list[str]:
        """Servers whose latest session dropped before ``before`` and did not come back."""
        return self.sessions.take_lost_servers(before=before, now=now)

    # -- tokens ------------------------------------------------------------------------------

    def create_token(
        self, *, name: str, kind: str, server: str | None, token_hash: str, now: float, actor: str
    ) -> Token:
        """Insert a token record."""
        return self.tokens.create_token(
            name=name, kind=kind, server=server, token_hash=token_hash, now=now, actor=actor
        )

    def list_tokens(self) -> list[Token]:
        """Return every token record, revoked ones included."""
        return self.tokens.list_tokens()

    def revoke_token(self, token_id: int, *, now: float, actor: str) -> Token:
        """Revoke a live token."""
        return self.tokens.revoke_token(token_id, now=now, actor=actor)

    def find_live_token(self, token_hash: str) -> Token | None:
        """Return the unrevoked token with this hash, if any."""
        return self.tokens.find_live_token(token_hash)

    def install_bootstrap_token(self, token_hash: str, *, now: float) -> None:
        """Make the BUILDCOORD_ADMIN_TOKEN secret a live operator token, revoking older ones."""
        return self.tokens.install_bootstrap_token(token_hash, now=now)

    # -- settings ----------------------------------------------------------------------------

    def get_setting(self, key: str) -> str | None:
        """Return a stored value or None."""
        return self.settings.get_setting(key)

    def put_setting(self, key: str, value: str) -> None:
        """Store a value, replacing any earlier one (an upsert: safe with several writers)."""
        return self.settings.put_setting(key, value)

    def get_or_create_setting(self, key: str, value: str) -> str:
        """Return the stored value, storing ``value`` first if there is none."""
        return self.settings.get_or_create_setting(key, value)

    def probe_write(self, key: str, value: str) -> None:
        """Write a value as put_setting does; Unavailable when the database takes no write."""
        return self.settings.probe_write(key, value)

    # -- locks -------------------------------------------------------------------------------

    def acquire_lock(
        self, name: str, holder: str, *, ttl: float, capacity: int | None, now: float, actor: str
    ) -> LockGrant:
        """Take a lease, re-enter one's own, or raise Conflict naming the current holders."""
        return self.locks.acquire_lock(
            name, holder, ttl=ttl, capacity=capacity, now=now, actor=actor
        )

    def renew_lock(
        self, name: str, holder: str, *, token: int | None, ttl: float, now: float, actor: str
    ) -> LockGrant:
        """Extend a lease still held (by holder and, if given, token)."""
        return self.locks.renew_lock(name, holder, token=token, ttl=ttl, now=now, actor=actor)

    def release_lock(
        self,
        name: str,
        holder: str | None,
        *,
        token: int | None,
        force: bool,
        now: float,
        actor: str,
    ) -> list[str]:
        """Release holder's lease (or, forced with no holder, every lease); return who lost it."""
        return self.locks.release_lock(name, holder, token=token, force=force, now=now, actor=actor)

    def list_locks(self, *, now: float) -> list[Lock]:
        """Return every lock with its holders, expired leases flagged."""
        return self.locks.list_locks(now=now)

    def recover_expired_locks(self, *, now: float, actor: str) -> list[ReleasedLock]:
        """Release every expired lease, posting one system message for each."""
        return self.locks.recover_expired_locks(now=now, actor=actor)

    # -- messages ----------------------------------------------------------------------------

    def send_message(
        self,
        *,
        sender: str,
        recipient: str,
        type: str,
        subject: str,
        body: str,
        ack_required: bool,
        now: float,
        actor: str,
    ) -> Message:
        """Store a new unread message."""
        return self.messages.send_message(
            sender=sender,
            recipient=recipient,
            type=type,
            subject=subject,
            body=body,
            ack_required=ack_required,
            now=now,
            actor=actor,
        )

    def get_message(self, message_id: int, *, reader: str | None = None) -> Message:
        """Return one message, its read flag seen by reader (or by all its recipients)."""
        return self.messages.get_message(message_id, reader=reader)

    def list_messages(
        self, *, recipient: str | None, unread_only: bool, archived: bool | None, limit: int
    ) -> list[Message]:
        """List messages for a recipient (theirs and 'all') or for everyone, by type then age."""
        return self.messages.list_messages(
            recipient=recipient, unread_only=unread_only, archived=archived, limit=limit
        )

    def mark_message_read(
        self, message_id: int, *, reader: str | None, now: float, actor: str
    ) -> bool:
        """Mark a message read for reader (or for all its recipients); False if it already was."""
        return self.messages.mark_read(message_id, reader=reader, now=now, actor=actor)

    def mark_all_messages_read(self, *, reader: str | None, now: float, actor: str) -> int:
        """Mark every unread message read, for one server or for everyone; return how many."""
        return self.messages.mark_all_read(reader=reader, now=now, actor=actor)

    def acknowledge_message(
        self, message_id: int, *, server: str, now: float, actor: str
    ) -> Message:
        """Record server's acknowledgement (which also marks the message read for it)."""
        return self.messages.acknowledge(message_id, server=server, now=now, actor=actor)

    def archive_read_messages(self, *, cutoff: float, now: float, actor: str) -> int:
        """Archive messages read by all their recipients and created before cutoff."""
        return self.messages.archive_read_before(cutoff=cutoff, now=now, actor=actor)

    def message_stats(self) -> MessageStats:
        """Count active messages (total, unread, read, by type) and archived ones."""
        return self.messages.stats()

    # -- artifact sets -----------------------------------------------------------------------

    def record_artifact_set(self, job_id: int, root: str, *, now: float, actor: str) -> ArtifactSet:
        """Record (or refresh) where a finished job's artifacts are, from its manifest rows."""
        return self.artifact_sets.record_set(job_id, root, now=now, actor=actor)

    def get_artifact_set(self, job_id: int) -> ArtifactSet:
        """One job's artifact set, or NotFound."""
        return self.artifact_sets.get_set(job_id)

    def list_artifact_sets(
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
        return self.artifact_sets.list_sets(
            server=server,
            branch=branch,
            commit=commit,
            succeeded=succeeded,
            include_removed=include_removed,
            limit=limit,
        )

    def set_artifacts_pinned(
        self, job_id: int, pinned: bool, *, now: float, actor: str
    ) -> ArtifactSet:
        """Pin (retention never removes it) or unpin a job's artifacts."""
        return self.artifact_sets.set_pinned(job_id, pinned, now=now, actor=actor)

    def mark_artifacts_removed(self, freed: dict[int, int], *, now: float, actor: str) -> None:
        """Record that an agent removed these sets (job id → bytes freed)."""
        return self.artifact_sets.mark_removed(freed, now=now, actor=actor)

    # -- rollback ----------------------------------------------------------------------------

    def record_good_build(
        self,
        *,
        job_id: int,
        branch: str,
        commit: str,
        server: str,
        artifact_count: int,
        succeeded_at: float,
        tag_for: Callable[[int], str] | None,
        tag_message: str | None,
        actor: str,
    ) -> GoodBuild:
        """Register a successful build with a free tag, pending until an agent writes it."""
        return self.rollback.record_success(
            job_id=job_id,
            branch=branch,
            commit=commit,
            server=server,
            artifact_count=artifact_count,
            succeeded_at=succeeded_at,
            tag_for=tag_for,
            tag_message=tag_message,
            actor=actor,
        )

    def record_tag_outcome(
        self, job_id: int, *, written: bool, pushed: bool, error: str | None, now: float, actor: str
    ) -> GoodBuild:
        """Record what the agent reported about writing a build's tag."""
        return self.rollback.tag_outcome(
            job_id, written=written, pushed=pushed, error=error, now=now, actor=actor
        )

    def mark_tags_removed(self, tags: list[str], *, now: float, actor: str) -> None:
        """The registry follows a tag cleanup: these tags are gone."""
        return self.rollback.mark_removed(tags, now=now, actor=actor)

    def list_good_builds(
        self,
        *,
        branch: str | None = None,
        tagged_only: bool = False,
        include_removed: bool = False,
        limit: int | None = 20,
    ) -> list[GoodBuild]:
        """Successful builds, newest first."""
        return self.rollback.list_good(
            branch=branch, tagged_only=tagged_only, include_removed=include_removed, limit=limit
        )

    def last_good_build(self, branch: str) -> GoodBuild | None:
        """The branch's newest successful build whose tag was not removed."""
        return self.rollback.last_good(branch)

    def good_build_by_tag(self, tag: str) -> GoodBuild:
        """The registry entry of one tag, or NotFound."""
        return self.rollback.by_tag(tag)

    # -- comparisons -------------------------------------------------------------------------

    def record_comparison(
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
        return self.comparisons.record(
            job_a=job_a,
            job_b=job_b,
            branch=branch,
            commit=commit,
            reproducible=reproducible,
            summary=summary,
            now=now,
            actor=actor,
        )

    def get_comparison(self, comparison_id: int) -> ComparisonRecord:
        """One comparison, or NotFound."""
        return self.comparisons.get(comparison_id)

    def list_comparisons(
        self, *, branch: str | None = None, job: int | None = None, limit: int = 50
    ) -> list[ComparisonRecord]:
        """Comparisons, newest first."""
        return self.comparisons.list_comparisons(branch=branch, job=job, limit=limit)

    # -- orders ------------------------------------------------------------------------------

    def create_order(
        self, server: str, kind: str, params: dict[str, Any], *, now: float, actor: str
    ) -> AgentOrder:
        """Queue an order for one agent (prebuilt: every successful build makes one)."""
        return self.orders.create(server, kind, params, now=now, actor=actor)

    def get_order(self, order_id: int) -> AgentOrder:
        """One order, or NotFound."""
        return self.orders.get(order_id)

    def finish_order(
        self,
        order_id: int,
        *,
        server: str,
        status: str,
        result: dict[str, Any] | None,
        error: str | None,
        now: float,
        actor: str,
    ) -> AgentOrder:
        """Record an agent's report; only the addressed agent, only once."""
        return self.orders.finish(
            order_id, server=server, status=status, result=result, error=error, now=now, actor=actor
        )

    def list_orders(
        self, *, server: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[AgentOrder]:
        """Orders, oldest first (the order agents carry them out in)."""
        return self.orders.list_orders(server=server, status=status, limit=limit)

    def has_pending_orders(self, server: str) -> bool:
        """Whether the agent has orders to carry out (asked once when its session opens)."""
        return self.orders.has_pending(server)


__all__ = ["Store", "upgrade"]
