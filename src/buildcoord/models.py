"""Domain records returned by the store and services: plain frozen dataclasses, never rows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

JobStatus = Literal["queued", "blocked", "running", "succeeded", "failed", "cancelled"]
JOB_STATUSES: tuple[JobStatus, ...] = (
    "queued",
    "blocked",
    "running",
    "succeeded",
    "failed",
    "cancelled",
)
FINISHED_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})

# What started a job (its ``trigger``). The coordinator's own: a new commit on the branch
# (webhook or poller), the branch's cron schedule, and everything an operator queues. A
# front-end may submit other short words (``pull_request``); validation.trigger says which.
TRIGGER_PUSH = "push"
TRIGGER_SCHEDULE = "schedule"
TRIGGER_MANUAL = "manual"

ServerStatus = Literal["online", "busy", "stale", "offline"]
MessageType = Literal["info", "warning", "error", "request"]
MESSAGE_TYPES: tuple[MessageType, ...] = ("error", "warning", "request", "info")
TokenKind = Literal["operator", "agent", "read"]

BROADCAST = "all"
"""The recipient name that addresses every server."""

EVERYONE = "*"
"""The reader name recording that a message was marked read for all its recipients."""

SERVER_LABEL_PREFIX = "server="
"""The prefix of the label every server has implicitly (``server=build1``) and no one sets."""


def server_label(name: str) -> str:
    """The implicit label that pins a job to one server (``server=build1``)."""
    return f"{SERVER_LABEL_PREFIX}{name}"


def matched_labels(
    name: str, labels: Iterable[str], reported_labels: Iterable[str]
) -> frozenset[str]:
    """What a job's required labels are matched against: the operator's labels, the labels
    the agent reports, and the server's own ``server=<name>``."""
    return frozenset((*labels, *reported_labels, server_label(name)))


# Bounds on the times and durations a client sends. Beyond them datetime arithmetic overflows
# (year 10000), which would turn every later read of the value into a 500.
MAX_DURATION_SECONDS = 7 * 24 * 3600.0
"""The longest a build, a lease or a branch timeout may last: a week."""
EARLIEST_TIMESTAMP = 946_684_800.0
"""The earliest moment a client may report: 2000-01-01T00:00:00Z."""
LATEST_TIMESTAMP = 4_102_444_800.0
"""The latest moment a client may report: 2100-01-01T00:00:00Z."""
MAX_DAYS = 36_500.0
"""The longest span in days a client may ask for (message archiving): a century."""
MAX_UPTIME_SECONDS = MAX_DAYS * 86_400.0
MAX_CLOCK_SKEW_SECONDS = MAX_UPTIME_SECONDS
MAX_PROBLEMS = 10
PROBLEM_LIMIT = 200
"""The longest uptime a server may report: a century."""


@dataclass(frozen=True, slots=True)
class Job:
    """One build request and where it stands."""

    id: int
    branch: str
    commit: str
    priority: int
    status: JobStatus
    attempt: int
    max_attempts: int
    depends_on: tuple[int, ...]
    labels: tuple[str, ...]
    pending_dependencies: int
    server: str | None
    fencing_token: int
    lease_expires_at: datetime | None
    blocked_reason: str | None
    reason: str | None
    created_at: datetime
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    exit_code: int | None
    duration: float | None
    trigger: str | None = None
    """What started the job (push, schedule, manual, ...); None for jobs from before 0006."""


@dataclass(frozen=True, slots=True)
class Metrics:
    """System figures an agent reports with each heartbeat."""

    cpu_percent: float | None = None
    load_1m: float | None = None
    load_5m: float | None = None
    load_15m: float | None = None
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    disk_free_bytes: int | None = None
    disk_total_bytes: int | None = None
    uptime_seconds: float | None = None
    clock_skew_seconds: float | None = None
    """The agent's clock minus the coordinator's (from the Date of an answer), signed."""
    problems: tuple[str, ...] = ()
    """What the agent finds wrong with itself (git missing, work directory not writable)."""


@dataclass(frozen=True, slots=True)
class Server:
    """A build server known to the coordinator.

    ``labels`` are the operator's (set at registration); ``reported_labels`` are those its
    agent's last heartbeat with labels reported. A job's requirements match both, and the
    implicit ``server=<name>`` (``matched_labels``).
    """

    name: str
    labels: tuple[str, ...]
    status: ServerStatus
    registered_at: datetime
    last_heartbeat_at: datetime | None
    heartbeat_age_seconds: float | None
    metrics: Metrics | None
    agent_version: str | None
    running_jobs: tuple[int, ...] = ()
    reported_labels: tuple[str, ...] = ()
    quarantined_at: datetime | None = None
    """Set while the server gets no new work (``servers resume`` ends it)."""
    quarantine_reason: str | None = None

    @property
    def matched_labels(self) -> frozenset[str]:
        """The labels a job's required labels must be among for this server to take it."""
        return matched_labels(self.name, self.labels, self.reported_labels)


@dataclass(frozen=True, slots=True)
class ClaimableJob:
    """A job an agent's claim could take now, as the coordinator tells idle agents of it."""

    id: int
    rank: float
    labels: frozenset[str]  # a server must have all of them (``Server.matched_labels``)


@dataclass(frozen=True, slots=True)
class LockHolder:
    """One lease on a lock."""

    holder: str
    token: int
    acquired_at: datetime
    expires_at: datetime
    expired: bool


@dataclass(frozen=True, slots=True)
class Lock:
    """A named lock (capacity 1) or counting semaphore (capacity N) and its holders."""

    name: str
    capacity: int
    last_token: int
    holders: tuple[LockHolder, ...]


@dataclass(frozen=True, slots=True)
class LockGrant:
    """What acquire returns: the lease and its fencing token."""

    name: str
    holder: str
    token: int
    expires_at: datetime
    reentered: bool


@dataclass(frozen=True, slots=True)
class ReleasedLock:
    """A lease that recovery released because it expired."""

    name: str
    holder: str
    token: int
    expired_at: datetime


@dataclass(frozen=True, slots=True)
class Message:
    """A message between servers (or from the system), with its read and ack state."""

    id: int
    sender: str
    recipient: str
    type: MessageType
    subject: str
    body: str
    created_at: datetime
    ack_required: bool
    archived_at: datetime | None
    read: bool
    read_by: tuple[str, ...]
    acknowledged_by: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MessageStats:
    """Counts over the message store; archived messages are counted apart."""

    total: int
    unread: int
    read: int
    by_type: dict[str, int]
    archived: int


@dataclass(frozen=True, slots=True)
class Token:
    """An API token's public record; the secret itself is never stored."""

    id: int
    name: str
    kind: TokenKind
    server: str | None
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token record and its secret, shown once."""

    token: Token
    secret: str


@dataclass(frozen=True, slots=True)
class Event:
    """One appended record of a state change."""

    id: int
    at: datetime
    actor: str
    kind: str
    subject: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = field(default=None)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is acting: an operator, a read-only viewer, an agent (as its server), or the system.

    A ``build`` is the code of one build, holding the token its agent got for it: it may only
    append to the log of ``job_id`` while that job runs under lease ``fencing_token``.
    """

    kind: Literal["operator", "agent", "read", "system", "build"]
    name: str
    server: str | None = None
    job_id: int | None = None
    fencing_token: int | None = None

    @property
    def actor(self) -> str:
        """The name recorded in events."""
        return f"{self.kind}:{self.server or self.name}"


SYSTEM = Principal("system", "maintenance")


@dataclass(frozen=True, slots=True)
class Branch:
    """A branch an operator set up for building: where its code is and how to build it."""

    name: str
    repo: str
    command: str | None
    priority: int
    labels: tuple[str, ...]
    timeout_seconds: float | None
    retry_on_failure: bool
    created_at: datetime
    updated_at: datetime
    tag_on_success: bool = True
    push_tags: bool = True
    auto_build: bool = True
    schedule: str | None = None
    enabled: bool = True
    seen_commit: str | None = None
    checked_at: datetime | None = None
    check_error: str | None = None
    next_scheduled_at: datetime | None = None


BranchCheckOutcome = Literal[
    "queued", "known", "recorded", "unchanged", "waiting", "failed", "ignored"
]


@dataclass(frozen=True, slots=True)
class BranchCheck:
    """What one look at a branch's tip (poll, schedule, queue-all or webhook) did."""

    branch: str
    outcome: BranchCheckOutcome
    commit: str | None = None
    job_id: int | None = None
    detail: str = ""


LogKind = Literal["event", "command", "output"]
LogLevel = Literal["info", "warning", "error", "success"]


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One entry of a job's structured log."""

    id: int
    job_id: int
    attempt: int
    at: datetime
    kind: LogKind
    level: LogLevel
    message: str
    details: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ArtifactFile:
    """One file (or symlink) of a build's artifact manifest."""

    path: str
    size: int
    md5: str | None = None
    sha256: str | None = None
    sha512: str | None = None
    kind: Literal["file", "symlink"] = "file"
    link_target: str | None = None


@dataclass(frozen=True, slots=True)
class Assignment:
    """A job leased to an agent, with how to build it (the branch's settings at claim time)."""

    job: Job
    repo: str
    command: str
    timeout_seconds: float | None
    retry_on_failure: bool


@dataclass(frozen=True, slots=True)
class ArtifactSet:
    """A build's artifacts as kept on the agent that built them."""

    job_id: int
    server: str
    branch: str
    commit: str
    root: str
    file_count: int
    total_bytes: int
    succeeded: bool
    created_at: datetime
    pinned: bool
    removed_at: datetime | None
    freed_bytes: int | None
    last_good: bool = False


TagState = Literal["none", "pending", "written", "failed", "removed"]


@dataclass(frozen=True, slots=True)
class GoodBuild:
    """A successful build in the rollback registry, with its git tag once written."""

    job_id: int
    branch: str
    commit: str
    server: str
    artifact_count: int
    succeeded_at: datetime
    tag: str | None
    tag_state: TagState
    tag_message: str | None
    tag_error: str | None
    pushed: bool
    tagged_at: datetime | None


@dataclass(frozen=True, slots=True)
class ComparisonRecord:
    """The coordinator's verdict on two builds of the same branch and commit."""

    id: int
    job_a: int
    job_b: int
    branch: str
    commit: str
    reproducible: bool
    summary: dict[str, Any]
    created_at: datetime


OrderKind = Literal["artifacts.remove", "tag.create", "tags.delete"]
OrderStatus = Literal["pending", "done", "failed"]


@dataclass(frozen=True, slots=True)
class AgentOrder:
    """Work the coordinator asks of one agent beside builds."""

    id: int
    server: str
    kind: OrderKind
    params: dict[str, Any]
    status: OrderStatus
    created_at: datetime
    finished_at: datetime | None
    result: dict[str, Any] | None
    error: str | None


BuildResult = Literal["succeeded", "failed", "cancelled", "lost"]
"""How an attempt ended; ``lost``: its lease ran out or its agent was lost, and the job was
requeued (the attempt ran for that long, and nothing of it was learnt)."""


@dataclass(frozen=True, slots=True)
class BuildRecord:
    """One finished attempt of a job, as build history keeps it for prediction and stats."""

    job_id: int
    attempt: int
    branch: str
    build_key: str
    server: str | None
    commit: str
    queued_at: datetime
    started_at: datetime
    finished_at: datetime
    duration: float
    queue_wait: float
    result: BuildResult
    hour_of_day: int
    """UTC hour the build started, 0-23."""
    day_of_week: int
    """UTC weekday the build started, 0 = Monday."""
    trigger: str | None = None
    """What started the job (its trigger); None when unknown."""


@dataclass(frozen=True, slots=True)
class DurationEstimate:
    """A predicted build duration in seconds and what it rests on."""

    branch: str
    server: str | None
    build_key: str
    p50: float
    p10: float
    p90: float
    history: int
    """Successful builds in the pool the estimate was computed from."""
    level: str
    """The fallback level: key+branch+server, key+branch, key or global."""
    trigger: str | None = None
    """The trigger asked about (past builds started the same way weighed more), if any."""


@dataclass(frozen=True, slots=True)
class ServerChoice:
    """How one server fares for a build: its predicted finish, or why it was skipped."""

    server: str
    status: str
    eligible: bool
    reason: str
    remaining_seconds: float | None = None
    """Predicted seconds until the server is free (its running job and its share of the queue)."""
    duration: DurationEstimate | None = None
    finish_seconds: float | None = None
    """Predicted seconds from now until the build would finish there."""
    disk_free_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class Recommendation:
    """The server with the earliest predicted finish, and every server's ranking or skip."""

    branch: str
    server: str | None
    choices: tuple[ServerChoice, ...]


@dataclass(frozen=True, slots=True)
class JobForecast:
    """When a queued job should start and finish, or how long a running job has left."""

    job_id: int
    server: str | None
    """Where the forecast runs it (a running job: where it runs)."""
    predicted_start: datetime | None
    predicted_finish: datetime | None
    expected_remaining_seconds: float | None
    """Seconds from now until it finishes (running and forecast queued jobs)."""
    note: str | None = None
    """Why there is no forecast (blocked, no eligible server, nothing to predict from)."""


@dataclass(frozen=True, slots=True)
class SubmittedJob(Job):
    """A job just queued, as ``POST /jobs`` answers: the job, and when it is predicted to start
    and finish (the queue simulated up to it, in claim order), or why not."""

    forecast: JobForecast | None = None


@dataclass(frozen=True, slots=True)
class ForecastJob:
    """A job as the queue listing shows it, with its forecast when it has one."""

    job: Job
    forecast: JobForecast | None


@dataclass(frozen=True, slots=True)
class StatsRow:
    """Finished builds of one group: how many, how often they succeeded, how long they took."""

    group: str
    count: int
    succeeded: int
    success_rate: float
    mean_duration: float | None
    """Seconds, over successful builds only (a failure stops early or hangs)."""
    median_duration: float | None
    lost: int = 0
    """Attempts of the group whose lease ran out or whose agent was lost (requeued): not
    counted in ``count``; many on one server say it is slow or broken."""


@dataclass(frozen=True, slots=True)
class HistoryStats:
    """Finished builds counted by branch, server, hour of day (UTC) and weekday."""

    builds: int
    by_branch: tuple[StatsRow, ...]
    by_server: tuple[StatsRow, ...]
    by_hour: tuple[StatsRow, ...]
    by_day_of_week: tuple[StatsRow, ...]


AlertSeverity = Literal["warning", "critical"]


@dataclass(frozen=True, slots=True)
class AlertFinding:
    """One subject a monitor rule finds wrong now: what its alert says."""

    subject: str
    severity: AlertSeverity
    summary: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Alert:
    """Something the monitor found wrong with one subject (a server, a branch, the queue).

    Open while ``resolved_at`` is None; ``count`` is how many monitor steps found it;
    ``clear_since`` is when its condition was first seen clear again (it resolves once that
    has lasted the resolve delay). ``details`` holds the figures the rule judged.
    """

    id: int
    rule: str
    subject: str
    severity: AlertSeverity
    summary: str
    details: dict[str, Any]
    opened_at: datetime
    last_seen_at: datetime
    count: int
    clear_since: datetime | None
    resolved_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    silenced: bool = False
    """A silence in force covers it (nobody is notified of it)."""

    @property
    def is_open(self) -> bool:
        """True until the alert resolves."""
        return self.resolved_at is None


@dataclass(frozen=True, slots=True)
class AlertSilence:
    """An operator's silence of one rule's alerts (one subject's, or every subject's)."""

    id: int
    rule: str
    subject: str | None
    created_at: datetime
    until: datetime
    created_by: str
    comment: str

    def covers(self, rule: str, subject: str, at: datetime) -> bool:
        """Whether it silences the (rule, subject) alert at ``at``."""
        return (
            at < self.until
            and rule == self.rule
            and (self.subject is None or self.subject == subject)
        )


@dataclass(frozen=True, slots=True)
class AlertDelivery:
    """One notifier being told of one alert change, and how that went."""

    id: int
    alert_id: int
    notifier: str
    event: str
    """opened, reminder or resolved."""
    created_at: datetime
    due_at: datetime
    """When the next attempt is due (while neither sent nor given up)."""
    attempts: int
    sent_at: datetime | None
    gave_up_at: datetime | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class BranchHealth:
    """How a branch's latest builds went (at most the last 50 that passed or failed)."""

    branch: str
    builds: int
    success_rate: float | None
    """Passed / (passed + failed), 0 to 1."""
    mean_seconds: float | None
    """Mean duration of the passed builds."""
    p90_seconds: float | None
    last_result: str | None


@dataclass(frozen=True, slots=True)
class FleetHealth:
    """The fleet at a glance: servers, build outcomes, the queue, open alerts."""

    at: datetime
    servers_online: int
    """Online or busy."""
    servers_total: int
    servers: tuple[Server, ...]
    builds_24h: int
    success_rate_24h: float | None
    builds_7d: int
    success_rate_7d: float | None
    branches: tuple[BranchHealth, ...]
    queued: int
    running: int
    blocked: int
    alerts_open: int
    alerts_critical: int


@dataclass(frozen=True, slots=True)
class FleetSample:
    """The fleet over one minute or one hour: gauges (averaged over an hour) and the builds
    that finished in it."""

    period: Literal["minute", "hour"]
    at: datetime
    """The period's start."""
    servers_online: float
    servers_total: float
    queued: float
    running: float
    blocked: float
    passed: int
    failed: int
    mean_duration_seconds: float | None
    """Of the builds that passed in the period."""

    @property
    def success_rate(self) -> float | None:
        """Passed / (passed + failed) in the period."""
        done = self.passed + self.failed
        return None if done == 0 else self.passed / done


DURATION_BUCKETS = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0)
"""The upper bounds (seconds) of the build-duration histogram /metrics exports."""


@dataclass(frozen=True, slots=True)
class DurationHistogram:
    """A branch's passed builds' durations, all time: count, sum, and how many were at most
    each of DURATION_BUCKETS (cumulative)."""

    branch: str
    count: int
    total_seconds: float
    buckets: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class StoreFigures:
    """What /metrics reports, read from the database in one transaction."""

    jobs_by_status: dict[str, int]
    builds: tuple[tuple[str, str, int], ...]
    """(branch, result, count) of every finished build."""
    durations: tuple[DurationHistogram, ...]
    claims: tuple[tuple[str, int], ...]
    """(server, count) of the jobs each server has claimed, ever."""
    locks_held: int
    alerts_open: tuple[tuple[str, str, int], ...]
    """(rule, severity, count) of open alerts."""
    deliveries_given_up: tuple[tuple[str, int], ...]
    """(notifier, count) of notifications given up."""
    deliveries_failing: tuple[tuple[str, int], ...]
    """(notifier, count) of notifications whose last attempt failed and that will retry."""


@dataclass(frozen=True, slots=True)
class LegacyNote:
    """An entry (or a file) of a seed checkout not imported as it was, and why."""

    path: str
    entry: str | None
    """The entry's id, or its position (``#3``); None: the whole file."""
    reason: str
    skipped: bool = True
    """False: imported, with the change the reason says (a subject cut to length)."""


@dataclass(frozen=True, slots=True)
class LegacyImport:
    """What ``legacy import`` brought in (or, on a dry run, would have), kind by kind."""

    dry_run: bool
    files: int
    added: dict[str, int]
    updated: dict[str, int]
    """Entries imported before that the seed has changed since (a message read, archived)."""
    unchanged: dict[str, int]
    """Entries imported before (or already here): left as they are."""
    notes: tuple[LegacyNote, ...]
    tokens: dict[str, str]
    """The agent token of each server added (shown once)."""


@dataclass(frozen=True, slots=True)
class LegacyRecord:
    """One imported seed entry: the row it became and what buildcoord does not model of it."""

    kind: str
    legacy_id: str
    local_id: str
    attributes: dict[str, Any]
    imported_at: datetime


@dataclass(frozen=True, slots=True)
class RotatedToken:
    """A server's new agent token (its secret shown once) and when its old one stops."""

    token: Token
    secret: str
    old_valid_until: datetime
