"""The store: the only package that speaks SQL. One class per noun, composed into ``Store``.

Services call ``Store``'s own methods, one per operation (``claim_job``, ``renew_job_lease``,
``find_branch``…); each runs in one transaction of the sub-store that owns its table, and
returns models, never rows. The sub-stores (``store.jobs``, ``store.branches``…) are the
tables' SQL; tests may reach them, services do not.

An operation that is exactly one sub-store method is declared in one line,
``claim_job = Delegate("jobs", JobStore.claim_for_server)`` (store/facade.py): its parameters,
return type and docstring are the method's own, written once, in the sub-store.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from buildcoord.store.artifacts import ArtifactSetStore, ArtifactStore
from buildcoord.store.branches import BranchStore
from buildcoord.store.comparisons import ComparisonStore
from buildcoord.store.engine import checkpoint_wal, event_commits, make_engine
from buildcoord.store.events import EventStore
from buildcoord.store.facade import Delegate
from buildcoord.store.history import HistoryStore
from buildcoord.store.jobs import JobStore
from buildcoord.store.locks import LockStore
from buildcoord.store.logs import LogStore
from buildcoord.store.messages import MessageStore
from buildcoord.store.migrate import upgrade
from buildcoord.store.orders import OrderStore
from buildcoord.store.rollback import RollbackStore
from buildcoord.store.servers import ServerStore
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

    submit_job = Delegate("jobs", JobStore.submit_job)
    get_job = Delegate("jobs", JobStore.get_job)
    list_jobs = Delegate("jobs", JobStore.list_jobs)
    running_jobs_by_server = Delegate("jobs", JobStore.running_jobs_by_server)
    rerank_queued_jobs = Delegate("jobs", JobStore.rerank_queued)
    claim_job = Delegate("jobs", JobStore.claim_for_server)
    renew_job_lease = Delegate("jobs", JobStore.renew_lease)
    complete_job = Delegate("jobs", JobStore.complete_job)
    cancel_job = Delegate("jobs", JobStore.cancel_job)
    retry_job = Delegate("jobs", JobStore.retry_job)
    expire_job_leases = Delegate("jobs", JobStore.expire_leases)
    end_job_leases_of = Delegate("jobs", JobStore.end_leases_of)
    extend_job_leases = Delegate("jobs", JobStore.extend_running_leases)
    claimable_jobs = Delegate("jobs", JobStore.claimable)
    claim_labels = Delegate("jobs", JobStore.claim_labels)

    # -- logs --------------------------------------------------------------------------------

    append_log_entries = Delegate("logs", LogStore.append_entries)
    list_log_entries = Delegate("logs", LogStore.list_entries)

    # -- artifacts ---------------------------------------------------------------------------

    job_manifest = Delegate("artifacts", ArtifactStore.manifest)

    # -- events ------------------------------------------------------------------------------

    list_events = Delegate("events", EventStore.list_events)
    last_event_id = Delegate("events", EventStore.last_event_id)

    def on_event_commits(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` after every commit in this process that may have appended events
        (quick, never raising); return what stops it."""
        return event_commits.add(callback)

    # -- history -----------------------------------------------------------------------------

    record_build = Delegate("history", HistoryStore.record_finished)
    recent_builds = Delegate("history", HistoryStore.recent_builds)
    builds_finished_since = Delegate("history", HistoryStore.finished_since)
    latest_build_key = Delegate("history", HistoryStore.latest_key_of)

    # -- branches ----------------------------------------------------------------------------

    find_branch = Delegate("branches", BranchStore.find_branch)
    get_branch = Delegate("branches", BranchStore.get_branch)
    list_branches = Delegate("branches", BranchStore.list_branches)
    add_branch = Delegate("branches", BranchStore.add_branch)
    update_branch = Delegate("branches", BranchStore.update_branch)
    remove_branch = Delegate("branches", BranchStore.remove_branch)
    record_tip = Delegate("branches", BranchStore.record_tip)
    record_check_success = Delegate("branches", BranchStore.record_check_success)
    record_check_failure = Delegate("branches", BranchStore.record_check_failure)
    advance_schedule = Delegate("branches", BranchStore.advance_schedule)

    # -- webhook deliveries ------------------------------------------------------------------

    record_webhook_delivery = Delegate("webhook_deliveries", WebhookDeliveryStore.record_delivery)
    forget_webhook_deliveries = Delegate(
        "webhook_deliveries", WebhookDeliveryStore.forget_deliveries
    )

    # -- servers -----------------------------------------------------------------------------

    get_server = Delegate("servers", ServerStore.get_server)
    list_servers = Delegate("servers", ServerStore.list_servers)
    register_server = Delegate("servers", ServerStore.register_server)
    remove_server = Delegate("servers", ServerStore.remove_server)
    record_heartbeat = Delegate("servers", ServerStore.record_heartbeat)
    record_server_status = Delegate("servers", ServerStore.record_status)

    # -- sessions ----------------------------------------------------------------------------

    open_session = Delegate("sessions", SessionStore.open_session)
    close_session = Delegate("sessions", SessionStore.close_session)
    take_lost_servers = Delegate("sessions", SessionStore.take_lost_servers)

    # -- tokens ------------------------------------------------------------------------------

    create_token = Delegate("tokens", TokenStore.create_token)
    list_tokens = Delegate("tokens", TokenStore.list_tokens)
    revoke_token = Delegate("tokens", TokenStore.revoke_token)
    find_live_token = Delegate("tokens", TokenStore.find_live_token)
    install_bootstrap_token = Delegate("tokens", TokenStore.install_bootstrap_token)

    # -- settings ----------------------------------------------------------------------------

    get_setting = Delegate("settings", SettingStore.get_setting)
    put_setting = Delegate("settings", SettingStore.put_setting)
    get_or_create_setting = Delegate("settings", SettingStore.get_or_create_setting)
    probe_write = Delegate("settings", SettingStore.probe_write)

    # -- locks -------------------------------------------------------------------------------

    acquire_lock = Delegate("locks", LockStore.acquire_lock)
    renew_lock = Delegate("locks", LockStore.renew_lock)
    release_lock = Delegate("locks", LockStore.release_lock)
    list_locks = Delegate("locks", LockStore.list_locks)
    recover_expired_locks = Delegate("locks", LockStore.recover_expired_locks)

    # -- messages ----------------------------------------------------------------------------

    send_message = Delegate("messages", MessageStore.send_message)
    get_message = Delegate("messages", MessageStore.get_message)
    list_messages = Delegate("messages", MessageStore.list_messages)
    mark_message_read = Delegate("messages", MessageStore.mark_read)
    mark_all_messages_read = Delegate("messages", MessageStore.mark_all_read)
    acknowledge_message = Delegate("messages", MessageStore.acknowledge)
    archive_read_messages = Delegate("messages", MessageStore.archive_read_before)
    message_stats = Delegate("messages", MessageStore.stats)

    # -- artifact sets -----------------------------------------------------------------------

    record_artifact_set = Delegate("artifact_sets", ArtifactSetStore.record_set)
    get_artifact_set = Delegate("artifact_sets", ArtifactSetStore.get_set)
    list_artifact_sets = Delegate("artifact_sets", ArtifactSetStore.list_sets)
    set_artifacts_pinned = Delegate("artifact_sets", ArtifactSetStore.set_pinned)
    mark_artifacts_removed = Delegate("artifact_sets", ArtifactSetStore.mark_removed)

    # -- rollback ----------------------------------------------------------------------------

    record_good_build = Delegate("rollback", RollbackStore.record_success)
    record_tag_outcome = Delegate("rollback", RollbackStore.tag_outcome)
    mark_tags_removed = Delegate("rollback", RollbackStore.mark_removed)
    list_good_builds = Delegate("rollback", RollbackStore.list_good)
    last_good_build = Delegate("rollback", RollbackStore.last_good)
    good_build_by_tag = Delegate("rollback", RollbackStore.by_tag)

    # -- comparisons -------------------------------------------------------------------------

    record_comparison = Delegate("comparisons", ComparisonStore.record)
    get_comparison = Delegate("comparisons", ComparisonStore.get)
    list_comparisons = Delegate("comparisons", ComparisonStore.list_comparisons)

    # -- orders ------------------------------------------------------------------------------

    create_order = Delegate("orders", OrderStore.create)
    get_order = Delegate("orders", OrderStore.get)
    finish_order = Delegate("orders", OrderStore.finish)
    list_orders = Delegate("orders", OrderStore.list_orders)
    has_pending_orders = Delegate("orders", OrderStore.has_pending)


__all__ = ["Store", "upgrade"]
