"""Table definitions: the one description of the schema; Alembic migrations must match it."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    text,
    true,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
Id = BigInteger().with_variant(Integer(), "sqlite")

# Times are UTC epoch seconds as doubles: identical on both dialects, cheap to compare and index.
Time = Double

jobs = Table(
    "jobs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("branch", String(255), nullable=False),
    Column("commit", String(40), nullable=False),
    Column("priority", SmallInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("labels", Text, nullable=False),  # sorted, comma-joined; '' for none
    Column("depends_on", Text, nullable=False),  # comma-joined ids, a copy of job_dependencies
    Column("pending_deps", Integer, nullable=False),
    # The claim order: fixed at queue time so one index serves it (see services/queue.py).
    Column("rank", Double, nullable=False),
    Column("server", String(64), nullable=True),
    Column("fencing_token", BigInteger, nullable=False),
    Column("lease_expires_at", Time, nullable=True),
    Column("blocked_reason", Text, nullable=True),
    Column("blocked_by", BigInteger, nullable=True),
    Column("reason", Text, nullable=True),
    Column("created_at", Time, nullable=False),
    Column("queued_at", Time, nullable=False),
    Column("started_at", Time, nullable=True),
    Column("finished_at", Time, nullable=True),
    Column("exit_code", Integer, nullable=True),
    Column("duration", Double, nullable=True),
    # What started the job: push, schedule, manual, or a word a front-end gave (NULL: a job
    # from before triggers were recorded).
    Column("trigger", Text, nullable=True),
)
Index(
    "ix_jobs_claim_order",
    jobs.c.rank,
    jobs.c.id,
    sqlite_where=text("status = 'queued' AND pending_deps = 0"),
    postgresql_where=text("status = 'queued' AND pending_deps = 0"),
)
Index("ix_jobs_status_lease", jobs.c.status, jobs.c.lease_expires_at)
Index("ix_jobs_server_status", jobs.c.server, jobs.c.status)
Index("ix_jobs_blocked_by", jobs.c.blocked_by)
Index("ix_jobs_finished_at", jobs.c.finished_at)

job_dependencies = Table(
    "job_dependencies",
    metadata,
    Column("job_id", Id, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("depends_on_id", Id, ForeignKey("jobs.id"), primary_key=True),
)
Index("ix_job_dependencies_depends_on_id", job_dependencies.c.depends_on_id)

servers = Table(
    "servers",
    metadata,
    Column("name", String(64), primary_key=True),
    # Sorted, comma-joined; '' for none. ``labels`` are the operator's, ``reported_labels``
    # the agent's last report: kept apart so a heartbeat cannot overwrite what an operator
    # set. Neither holds ``server=<name>``, which every server has without storing it.
    Column("labels", Text, nullable=False),
    Column("reported_labels", Text, nullable=False, server_default=text("''")),
    Column("registered_at", Time, nullable=False),
    Column("last_heartbeat_at", Time, nullable=True),
    Column("recorded_status", String(16), nullable=False),
    Column("metrics", Text, nullable=True),  # JSON object
    Column("agent_version", String(64), nullable=True),
    # Set while the server gets no new work (a black hole, or an operator's word).
    Column("quarantined_at", Time, nullable=True),
    Column("quarantine_reason", Text, nullable=True),
    # Jobs this server has claimed, ever: counted in the claim's own statement (/metrics).
    Column("claims_total", BigInteger, nullable=False, server_default=text("0")),
)

locks = Table(
    "locks",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("capacity", Integer, nullable=False),
    Column("last_token", BigInteger, nullable=False),
)

lock_holders = Table(
    "lock_holders",
    metadata,
    Column("name", String(200), ForeignKey("locks.name"), primary_key=True),
    Column("holder", String(200), primary_key=True),
    Column("token", BigInteger, nullable=False),
    Column("acquired_at", Time, nullable=False),
    Column("expires_at", Time, nullable=False),
)
Index("ix_lock_holders_expires_at", lock_holders.c.expires_at)

messages = Table(
    "messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("sender", String(64), nullable=False),
    Column("recipient", String(64), nullable=False),
    Column("type", String(16), nullable=False),
    Column("subject", String(100), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", Time, nullable=False),
    Column("ack_required", Boolean, nullable=False),
    Column("archived_at", Time, nullable=True),
)
Index("ix_messages_recipient", messages.c.recipient, messages.c.archived_at)

message_reads = Table(
    "message_reads",
    metadata,
    Column("message_id", Id, ForeignKey("messages.id"), primary_key=True),
    Column("reader", String(64), primary_key=True),
    Column("read_at", Time, nullable=False),
)

message_acks = Table(
    "message_acks",
    metadata,
    Column("message_id", Id, ForeignKey("messages.id"), primary_key=True),
    Column("server", String(64), primary_key=True),
    Column("acked_at", Time, nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("server", String(64), nullable=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", Time, nullable=False),
    Column("revoked_at", Time, nullable=True),
)

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", Time, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("before", Text, nullable=True),  # JSON
    Column("after", Text, nullable=True),  # JSON
)
Index("ix_events_subject", events.c.subject)

settings = Table(
    "settings",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

branches = Table(
    "branches",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("repo", Text, nullable=False),
    Column("command", Text, nullable=True),  # None: jobs are claimable by hand, never by agents
    Column("priority", SmallInteger, nullable=False),
    Column("labels", Text, nullable=False),
    Column("timeout_seconds", Double, nullable=True),
    Column("retry_on_failure", Boolean, nullable=False),
    Column("created_at", Time, nullable=False),
    Column("updated_at", Time, nullable=False),
    # Rollback: tag each successful build in the repository; push the tag on to its remote.
    Column("tag_on_success", Boolean, nullable=False, server_default=true()),
    Column("push_tags", Boolean, nullable=False, server_default=true()),
    # Multi-branch: whether new tips are built by themselves, on a cron schedule, at all.
    Column("auto_build", Boolean, nullable=False, server_default=true()),
    Column("schedule", String(100), nullable=True),  # cron expression, UTC
    Column("enabled", Boolean, nullable=False, server_default=true()),
    # The poller's view of the repository: the tip it last saw, when, and what went wrong.
    Column("seen_commit", String(40), nullable=True),
    Column("checked_at", Time, nullable=True),
    Column("check_error", Text, nullable=True),
    Column("next_scheduled_at", Time, nullable=True),
)

job_logs = Table(
    "job_logs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("job_id", Id, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", Time, nullable=False),
    Column("kind", String(16), nullable=False),  # event | command | output
    Column("level", String(16), nullable=False),  # info | warning | error | success
    Column("message", Text, nullable=False),
    Column("details", Text, nullable=True),  # JSON
)
Index("ix_job_logs_job_id", job_logs.c.job_id, job_logs.c.id)

artifacts = Table(
    "artifacts",
    metadata,
    Column("job_id", Id, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("path", Text, primary_key=True),
    Column("server", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # file | symlink
    Column("size", BigInteger, nullable=False),
    Column("md5", String(32), nullable=True),
    Column("sha256", String(64), nullable=True),
    Column("sha512", String(128), nullable=True),
    Column("link_target", Text, nullable=True),
)

agent_sessions = Table(
    "agent_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("server", String(64), nullable=False),
    Column("connected_at", Time, nullable=False),
    Column("disconnected_at", Time, nullable=True),
    Column("handled_at", Time, nullable=True),  # when its leases were ended after the grace
)
Index("ix_agent_sessions_server", agent_sessions.c.server, agent_sessions.c.connected_at)

# One row per build that reported artifacts: where they are on the agent, and their fate.
artifact_sets = Table(
    "artifact_sets",
    metadata,
    Column("job_id", Id, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("server", String(64), nullable=False),
    Column("branch", String(255), nullable=False),
    Column("commit", String(40), nullable=False),
    Column("root", Text, nullable=False),  # the directory on the agent's machine
    Column("file_count", Integer, nullable=False),
    Column("total_bytes", BigInteger, nullable=False),
    Column("succeeded", Boolean, nullable=False),
    Column("created_at", Time, nullable=False),
    Column("pinned", Boolean, nullable=False),
    Column("removed_at", Time, nullable=True),
    Column("freed_bytes", BigInteger, nullable=True),
)
Index("ix_artifact_sets_branch_server", artifact_sets.c.branch, artifact_sets.c.server)

# The rollback registry: every successful build of a branch, with its git tag when written.
good_builds = Table(
    "good_builds",
    metadata,
    Column("job_id", Id, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("branch", String(255), nullable=False),
    Column("commit", String(40), nullable=False),
    Column("server", String(64), nullable=False),
    Column("artifact_count", Integer, nullable=False),
    Column("succeeded_at", Time, nullable=False),
    Column("tag", String(255), nullable=True, unique=True),
    # none (tagging off) | pending | written | failed | removed
    Column("tag_state", String(16), nullable=False),
    Column("tag_message", Text, nullable=True),
    Column("tag_error", Text, nullable=True),
    Column("pushed", Boolean, nullable=False),
    Column("tagged_at", Time, nullable=True),
)
Index("ix_good_builds_branch", good_builds.c.branch, good_builds.c.succeeded_at)

# Reproducibility verdicts: two servers' builds of the same branch and commit, compared.
comparisons = Table(
    "comparisons",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("job_a", Id, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("job_b", Id, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("branch", String(255), nullable=False),
    Column("commit", String(40), nullable=False),
    Column("reproducible", Boolean, nullable=False),
    Column("summary", Text, nullable=False),  # JSON: the comparison's to_dict()
    Column("created_at", Time, nullable=False),
)
Index("uq_comparisons_pair", comparisons.c.job_a, comparisons.c.job_b, unique=True)
Index("ix_comparisons_branch", comparisons.c.branch, comparisons.c.created_at)

# Work the coordinator asks of one agent beside builds: artifact cleanup, git tags.
agent_orders = Table(
    "agent_orders",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("server", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("params", Text, nullable=False),  # JSON
    Column("status", String(16), nullable=False),  # pending | done | failed
    Column("created_at", Time, nullable=False),
    Column("finished_at", Time, nullable=True),
    Column("result", Text, nullable=True),  # JSON
    Column("error", Text, nullable=True),
)
Index("ix_agent_orders_server_status", agent_orders.c.server, agent_orders.c.status)

# Every finished build, as prediction reads it (a copy kept when jobs are archived or retried).
build_history = Table(
    "build_history",
    metadata,
    Column("job_id", Id, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("branch", String(255), nullable=False),
    Column("build_key", String(64), nullable=False),  # branch + build command, hashed
    Column("server", String(64), nullable=True),
    Column("commit", String(40), nullable=False),
    Column("queued_at", Time, nullable=False),
    Column("started_at", Time, nullable=False),
    Column("finished_at", Time, nullable=False),
    Column("duration", Double, nullable=False),
    Column("queue_wait", Double, nullable=False),
    Column("result", String(16), nullable=False),  # succeeded | failed | cancelled
    Column("hour_of_day", SmallInteger, nullable=False),  # UTC
    Column("day_of_week", SmallInteger, nullable=False),  # 0 = Monday, UTC
    Column("trigger", Text, nullable=True),  # the job's trigger; NULL: unknown
)
Index("ix_build_history_key", build_history.c.build_key, build_history.c.started_at)
Index("ix_build_history_branch", build_history.c.branch, build_history.c.started_at)
# Coordinators (and serve workers) catch up with each other's finished builds by this.
Index("ix_build_history_finished_at", build_history.c.finished_at)

# Webhook deliveries already accepted, by the id GitHub or Gitea gives each: the primary key
# makes a replayed delivery fail to insert, however many coordinators receive it.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("delivery_id", String(100), primary_key=True),
    Column("received_at", Time, nullable=False),
)
Index("ix_webhook_deliveries_received_at", webhook_deliveries.c.received_at)

# What the monitor found wrong. At most one open alert per (rule, subject), enforced by the
# partial unique index, however many coordinators step the monitor: a repeat updates the
# open row (count, last_seen_at). ``clear_since`` is when the condition was first seen clear;
# the alert resolves once it has stayed clear long enough (resolve_after_seconds).
alerts = Table(
    "alerts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("rule", String(64), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("summary", String(1000), nullable=False),
    Column("details", Text, nullable=True),
    Column("opened_at", Time, nullable=False),
    Column("last_seen_at", Time, nullable=False),
    Column("count", Integer, nullable=False),
    Column("clear_since", Time, nullable=True),
    Column("resolved_at", Time, nullable=True),
    Column("acknowledged_at", Time, nullable=True),
    Column("acknowledged_by", String(200), nullable=True),
)
Index(
    "ux_alerts_open",
    alerts.c.rule,
    alerts.c.subject,
    unique=True,
    sqlite_where=text("resolved_at IS NULL"),
    postgresql_where=text("resolved_at IS NULL"),
)
Index("ix_alerts_opened_at", alerts.c.opened_at)

# Operators' silences: while one is in force (until > now), alerts of its rule (and subject,
# when it names one) are still recorded but marked silenced, and nobody is notified of them.
# An ended silence keeps its row (until = when it was ended).
alert_silences = Table(
    "alert_silences",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("rule", String(64), nullable=False),
    Column("subject", String(200), nullable=True),  # NULL: every subject of the rule
    Column("created_at", Time, nullable=False),
    Column("until", Time, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("comment", String(500), nullable=False),
)
Index("ix_alert_silences_until", alert_silences.c.until)

# The notification outbox: one row per alert change a notifier is told about, written in the
# transaction that made the change (so with several coordinators each is queued once), sent
# by whichever coordinator claims it first (claimed_until: a compare-and-set lease), retried
# with backoff until sent or given up.
alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("alert_id", Id, ForeignKey("alerts.id"), nullable=False),
    Column("notifier", String(64), nullable=False),
    Column("event", String(16), nullable=False),  # opened | reminder | resolved
    Column("created_at", Time, nullable=False),
    Column("due_at", Time, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("claimed_until", Time, nullable=True),
    Column("sent_at", Time, nullable=True),
    Column("gave_up_at", Time, nullable=True),
    Column("last_error", String(1000), nullable=True),
    # What the receiver gave back for it (a GitHub issue's number), for the later ones.
    Column("receipt", String(100), nullable=True),
)
Index(
    "ix_alert_deliveries_due",
    alert_deliveries.c.notifier,
    alert_deliveries.c.due_at,
    sqlite_where=text("sent_at IS NULL AND gave_up_at IS NULL"),
    postgresql_where=text("sent_at IS NULL AND gave_up_at IS NULL"),
)
Index("ix_alert_deliveries_alert", alert_deliveries.c.alert_id)

# The fleet's trend: one sample a minute, kept 24 hours, and one an hour (the minutes'
# averages and sums), kept 30 days. The primary key makes a sample once per period, however
# many coordinators take it.
fleet_samples = Table(
    "fleet_samples",
    metadata,
    Column("period", String(8), primary_key=True),  # minute | hour
    Column("at", Time, primary_key=True),  # the period's start
    Column("servers_online", Double, nullable=False),
    Column("servers_total", Double, nullable=False),
    Column("queued", Double, nullable=False),
    Column("running", Double, nullable=False),
    Column("blocked", Double, nullable=False),
    Column("passed", Integer, nullable=False),  # builds that finished in the period
    Column("failed", Integer, nullable=False),
    Column("duration_sum", Double, nullable=False),  # of the passed builds, seconds
)

# Running totals of finished builds by branch and result, kept with each build recorded (the
# same transaction): what /metrics reports, read in a few rows instead of aggregating the
# whole history at each scrape. ``le_N``: how many took at most N seconds (DURATION_BUCKETS).
build_totals = Table(
    "build_totals",
    metadata,
    Column("branch", String(255), primary_key=True),
    Column("result", String(16), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("duration_sum", Double, nullable=False),
    Column("le_10", BigInteger, nullable=False),
    Column("le_30", BigInteger, nullable=False),
    Column("le_60", BigInteger, nullable=False),
    Column("le_120", BigInteger, nullable=False),
    Column("le_300", BigInteger, nullable=False),
    Column("le_600", BigInteger, nullable=False),
    Column("le_1200", BigInteger, nullable=False),
    Column("le_1800", BigInteger, nullable=False),
    Column("le_3600", BigInteger, nullable=False),
    Column("le_7200", BigInteger, nullable=False),
)

# What was imported from a seed installation (buildcoord legacy import): per seed entry, the
# row it became, and what the seed said that buildcoord does not model. The primary key makes
# an import, however often repeated, bring each entry in once.
legacy_records = Table(
    "legacy_records",
    metadata,
    Column("kind", String(16), primary_key=True),  # server | job | lock | message | log | manifest
    Column("legacy_id", String(255), primary_key=True),  # the seed's id (a file's path)
    Column("local_id", String(255), nullable=False),  # the job's or message's id, the name
    Column("attributes", Text, nullable=False),  # JSON object
    Column("imported_at", Time, nullable=False),
)
Index("ix_legacy_records_local", legacy_records.c.kind, legacy_records.c.local_id)
