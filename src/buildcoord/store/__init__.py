"""The store: the only package that speaks SQL. One class per noun, composed into ``Store``.

Services call ``Store``'s own methods, one per operation (``claim_job``, ``renew_job_lease``,
``find_branch``…); each runs in one transaction of the sub-store that owns its table, and
returns models, never rows. The sub-stores (``store.jobs``, ``store.branches``…) are the
tables' SQL; tests may reach them, services do not.

An operation that is exactly one sub-store method is declared in one line,
``claim_job = delegate("jobs", JobStore.claim_for_server)`` (store/facade.py): its parameters,
return type and docstring are the method's own, written once, in the sub-store.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError as DatabaseUnavailable

from buildcoord.store.alert_deliveries import AlertDeliveryStore
from buildcoord.store.alerts import AlertStore
from buildcoord.store.artifacts import ArtifactSetStore, ArtifactStore
from buildcoord.store.branches import BranchStore
from buildcoord.store.comparisons import ComparisonStore
from buildcoord.store.engine import checkpoint_wal, event_commits, make_engine
from buildcoord.store.events import EventStore
from buildcoord.store.facade import delegate
from buildcoord.store.figures import FigureStore
from buildcoord.store.fleet_samples import FleetSampleStore
from buildcoord.store.history import HistoryStore
from buildcoord.store.jobs import JobStore
from buildcoord.store.legacy import LegacyStore
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
        self.alerts = AlertStore(engine)
        self.alert_deliveries = AlertDeliveryStore(engine)
        self.fleet_samples = FleetSampleStore(engine)
        self.figures = FigureStore(engine)
        self.webhook_deliveries = WebhookDeliveryStore(engine)
        self.legacy = LegacyStore(engine)

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

    submit_job = delegate("jobs", JobStore.submit_job)
    get_job = delegate("jobs", JobStore.get_job)
    list_jobs = delegate("jobs", JobStore.list_jobs)
    running_jobs_by_server = delegate("jobs", JobStore.running_jobs_by_server)
    waiting_jobs = delegate("jobs", JobStore.waiting_jobs)
    count_jobs_by_status = delegate("jobs", JobStore.count_by_status)
    running_jobs = delegate("jobs", JobStore.running_jobs)
    rerank_queued_jobs = delegate("jobs", JobStore.rerank_queued)
    claim_job = delegate("jobs", JobStore.claim_for_server)
    renew_job_lease = delegate("jobs", JobStore.renew_lease)
    complete_job = delegate("jobs", JobStore.complete_job)
    cancel_job = delegate("jobs", JobStore.cancel_job)
    retry_job = delegate("jobs", JobStore.retry_job)
    set_job_priority = delegate("jobs", JobStore.set_job_priority)
    expire_job_leases = delegate("jobs", JobStore.expire_leases)
    end_job_leases_of = delegate("jobs", JobStore.end_leases_of)
    extend_job_leases = delegate("jobs", JobStore.extend_running_leases)
    claimable_jobs = delegate("jobs", JobStore.claimable)
    claim_labels = delegate("jobs", JobStore.claim_labels)

    # -- logs --------------------------------------------------------------------------------

    append_log_entries = delegate("logs", LogStore.append_entries)
    list_log_entries = delegate("logs", LogStore.list_entries)

    # -- artifacts ---------------------------------------------------------------------------

    job_manifest = delegate("artifacts", ArtifactStore.manifest)

    # -- events ------------------------------------------------------------------------------

    list_events = delegate("events", EventStore.list_events)
    last_event_id = delegate("events", EventStore.last_event_id)
    record_action = delegate("events", EventStore.record_action)

    def on_event_commits(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` after every commit in this process that may have appended events
        (quick, never raising); return what stops it."""
        return event_commits.add(callback)

    # -- history -----------------------------------------------------------------------------

    record_build = delegate("history", HistoryStore.record_finished)
    recent_builds = delegate("history", HistoryStore.recent_builds)
    unrecorded_finished = delegate("history", HistoryStore.unrecorded_finished)
    recent_builds_since = delegate("history", HistoryStore.recent_builds_since)
    latest_outcomes = delegate("history", HistoryStore.latest_outcomes)
    outcome_counts = delegate("history", HistoryStore.outcome_counts)
    outcomes_between = delegate("history", HistoryStore.outcomes_between)
    record_fleet_sample = delegate("fleet_samples", FleetSampleStore.record_sample)
    roll_up_fleet_hour = delegate("fleet_samples", FleetSampleStore.roll_up_hour)
    prune_fleet_samples = delegate("fleet_samples", FleetSampleStore.prune_samples)
    list_fleet_samples = delegate("fleet_samples", FleetSampleStore.list_samples)
    read_figures = delegate("figures", FigureStore.read_figures)
    builds_finished_since = delegate("history", HistoryStore.finished_since)
    latest_build_key = delegate("history", HistoryStore.latest_key_of)

    # -- branches ----------------------------------------------------------------------------

    find_branch = delegate("branches", BranchStore.find_branch)
    get_branch = delegate("branches", BranchStore.get_branch)
    list_branches = delegate("branches", BranchStore.list_branches)
    add_branch = delegate("branches", BranchStore.add_branch)
    update_branch = delegate("branches", BranchStore.update_branch)
    remove_branch = delegate("branches", BranchStore.remove_branch)
    record_tip = delegate("branches", BranchStore.record_tip)
    record_check_success = delegate("branches", BranchStore.record_check_success)
    record_check_failure = delegate("branches", BranchStore.record_check_failure)
    advance_schedule = delegate("branches", BranchStore.advance_schedule)

    # -- webhook deliveries ------------------------------------------------------------------

    record_webhook_delivery = delegate("webhook_deliveries", WebhookDeliveryStore.record_delivery)
    forget_webhook_deliveries = delegate(
        "webhook_deliveries", WebhookDeliveryStore.forget_deliveries
    )

    # -- servers -----------------------------------------------------------------------------

    get_server = delegate("servers", ServerStore.get_server)
    list_servers = delegate("servers", ServerStore.list_servers)
    quarantine_server = delegate("servers", ServerStore.quarantine_server)
    resume_server = delegate("servers", ServerStore.resume_server)
    servers_off_their_status = delegate("servers", ServerStore.servers_off_their_status)
    register_server = delegate("servers", ServerStore.register_server)
    remove_server = delegate("servers", ServerStore.remove_server)
    record_heartbeat = delegate("servers", ServerStore.record_heartbeat)
    record_server_status = delegate("servers", ServerStore.record_status)

    # -- sessions ----------------------------------------------------------------------------

    open_session = delegate("sessions", SessionStore.open_session)
    close_session = delegate("sessions", SessionStore.close_session)
    take_lost_servers = delegate("sessions", SessionStore.take_lost_servers)
    forget_sessions = delegate("sessions", SessionStore.forget_sessions)

    # -- alerts ------------------------------------------------------------------------------
    record_findings = delegate("alerts", AlertStore.record_findings)
    acknowledge_alert = delegate("alerts", AlertStore.acknowledge_alert)
    get_alert = delegate("alerts", AlertStore.get_alert)
    list_alerts = delegate("alerts", AlertStore.list_alerts)
    count_open_alerts = delegate("alerts", AlertStore.count_open_alerts)
    add_silence = delegate("alerts", AlertStore.add_silence)
    end_silence = delegate("alerts", AlertStore.end_silence)
    list_silences = delegate("alerts", AlertStore.list_silences)
    claim_deliveries = delegate("alert_deliveries", AlertDeliveryStore.claim_deliveries)
    queue_reminders = delegate("alert_deliveries", AlertDeliveryStore.queue_reminders)
    record_delivery_sent = delegate("alert_deliveries", AlertDeliveryStore.record_sent)
    record_delivery_failed = delegate("alert_deliveries", AlertDeliveryStore.record_failed)
    list_deliveries = delegate("alert_deliveries", AlertDeliveryStore.list_deliveries)
    delivery_receipt = delegate("alert_deliveries", AlertDeliveryStore.delivery_receipt)

    # -- tokens ------------------------------------------------------------------------------

    create_token = delegate("tokens", TokenStore.create_token)
    list_tokens = delegate("tokens", TokenStore.list_tokens)
    revoke_token = delegate("tokens", TokenStore.revoke_token)
    find_live_token = delegate("tokens", TokenStore.find_live_token)
    rotate_agent_token = delegate("tokens", TokenStore.rotate_agent_token)
    install_bootstrap_token = delegate("tokens", TokenStore.install_bootstrap_token)

    # -- settings ----------------------------------------------------------------------------

    get_setting = delegate("settings", SettingStore.get_setting)
    put_setting = delegate("settings", SettingStore.put_setting)
    get_or_create_setting = delegate("settings", SettingStore.get_or_create_setting)
    probe_write = delegate("settings", SettingStore.probe_write)

    # -- locks -------------------------------------------------------------------------------

    acquire_lock = delegate("locks", LockStore.acquire_lock)
    renew_lock = delegate("locks", LockStore.renew_lock)
    release_lock = delegate("locks", LockStore.release_lock)
    list_locks = delegate("locks", LockStore.list_locks)
    recover_expired_locks = delegate("locks", LockStore.recover_expired_locks)

    # -- messages ----------------------------------------------------------------------------

    send_message = delegate("messages", MessageStore.send_message)
    get_message = delegate("messages", MessageStore.get_message)
    list_messages = delegate("messages", MessageStore.list_messages)
    mark_message_read = delegate("messages", MessageStore.mark_read)
    mark_all_messages_read = delegate("messages", MessageStore.mark_all_read)
    acknowledge_message = delegate("messages", MessageStore.acknowledge)
    archive_read_messages = delegate("messages", MessageStore.archive_read_before)
    message_stats = delegate("messages", MessageStore.stats)

    # -- artifact sets -----------------------------------------------------------------------

    record_artifact_set = delegate("artifact_sets", ArtifactSetStore.record_set)
    get_artifact_set = delegate("artifact_sets", ArtifactSetStore.get_set)
    list_artifact_sets = delegate("artifact_sets", ArtifactSetStore.list_sets)
    set_artifacts_pinned = delegate("artifact_sets", ArtifactSetStore.set_pinned)
    mark_artifacts_removed = delegate("artifact_sets", ArtifactSetStore.mark_removed)

    # -- rollback ----------------------------------------------------------------------------

    record_good_build = delegate("rollback", RollbackStore.record_success)
    record_tag_outcome = delegate("rollback", RollbackStore.tag_outcome)
    mark_tags_removed = delegate("rollback", RollbackStore.mark_removed)
    list_good_builds = delegate("rollback", RollbackStore.list_good)
    last_good_build = delegate("rollback", RollbackStore.last_good)
    good_build_by_tag = delegate("rollback", RollbackStore.by_tag)

    # -- comparisons -------------------------------------------------------------------------

    record_comparison = delegate("comparisons", ComparisonStore.record)
    get_comparison = delegate("comparisons", ComparisonStore.get)
    list_comparisons = delegate("comparisons", ComparisonStore.list_comparisons)

    # -- orders ------------------------------------------------------------------------------

    create_order = delegate("orders", OrderStore.create)
    get_order = delegate("orders", OrderStore.get)
    finish_order = delegate("orders", OrderStore.finish)
    list_orders = delegate("orders", OrderStore.list_orders)
    has_pending_orders = delegate("orders", OrderStore.has_pending)

    # -- legacy (a seed installation moved in) -------------------------------------------------

    import_legacy_state = delegate("legacy", LegacyStore.import_state)
    find_legacy_record = delegate("legacy", LegacyStore.find_record)
    legacy_record_of = delegate("legacy", LegacyStore.record_of_local)
    legacy_records_of = delegate("legacy", LegacyStore.records_of)


__all__ = ["DatabaseUnavailable", "Store", "upgrade"]

# DatabaseUnavailable: what a statement raises when the database is gone or dropped the
# connection (web/errors.py answers 503); services that retry a read catch it by this name.
