"""Request bodies. Strict types: "5" is not a priority and true is not a number."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

from buildcoord import validation
from buildcoord.models import (
    BROADCAST,
    EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
    MAX_CLOCK_SKEW_SECONDS,
    MAX_DAYS,
    MAX_DURATION_SECONDS,
    MAX_PROBLEMS,
    MAX_UPTIME_SECONDS,
    MESSAGE_TYPES,
    PROBLEM_LIMIT,
    SERVER_LABEL_PREFIX,
    AgentOrder,
    ArtifactSet,
    GoodBuild,
    IssuedToken,
    Job,
    Server,
)
from buildcoord.services.alerts import COMMENT_LIMIT, MAX_SILENCE_SECONDS, SUBJECT_LIMIT
from buildcoord.services.artifacts import MAX_KEEP as ARTIFACT_MAX_KEEP
from buildcoord.services.health_rules import RULE_NAMES
from buildcoord.services.locks import MAX_CAPACITY
from buildcoord.services.logs import KINDS, LEVELS, MESSAGE_LIMIT
from buildcoord.services.rollback import MAX_KEEP as TAG_MAX_KEEP
from buildcoord.services.servers import QUARANTINE_REASON_LIMIT

# Numbers bound for a database column: beyond these the drivers fail (a 500, not a 4xx), and
# SQLite would keep what PostgreSQL refuses.
INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1
Int64 = Annotated[StrictInt, Field(ge=-INT64_MAX - 1, le=INT64_MAX)]
Int32 = Annotated[StrictInt, Field(ge=-INT32_MAX - 1, le=INT32_MAX)]
NonNegative64 = Annotated[StrictInt, Field(ge=0, le=INT64_MAX)]
Gauge = Annotated[StrictFloat | StrictInt, Field(ge=0, le=1e9)]
"""A load or CPU figure: never negative, and far below where a float column overflows."""
RowId = Annotated[int, Path(ge=1, le=INT64_MAX)]
Cursor = Annotated[int, Query(ge=0, le=INT64_MAX)]
JobFilter = Annotated[int | None, Query(ge=1, le=INT64_MAX)]


def limit_query(default: int, maximum: int) -> Any:
    """A ``limit`` query parameter: how many rows to answer with, 1 to maximum."""
    return Query(default=default, ge=1, le=maximum)


MAX_NESTING = 32
"""How deep free-form JSON (a log entry's details) may nest."""

# Times and durations, bounded as the services bound them: beyond these, datetime arithmetic
# on the stored value overflows. An integer is taken as a float.
Duration = Annotated[StrictFloat, Field(ge=0, le=MAX_DURATION_SECONDS)]
Lease = Annotated[StrictFloat, Field(gt=0, le=MAX_DURATION_SECONDS)]
Timestamp = Annotated[StrictFloat, Field(ge=EARLIEST_TIMESTAMP, le=LATEST_TIMESTAMP)]
Days = Annotated[StrictFloat, Field(ge=0, le=MAX_DAYS)]
Uptime = Annotated[StrictFloat, Field(ge=0, le=MAX_UPTIME_SECONDS)]


def _documented(
    *,
    pattern: str | None = None,
    max_length: int | None = None,
    min_length: int | None = None,
    choices: tuple[str, ...] | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
) -> Any:
    """Declare a text rule in the OpenAPI document without enforcing it here: the services
    check it (validation.py, with the same constants) and answer 422 with a message that names
    the rule. ``pattern`` is matched whole, as the services match it."""
    extra: dict[str, Any] = {}
    if pattern is not None:
        extra["pattern"] = f"^(?:{pattern})$"
    if min_length is not None:
        extra["minLength"] = min_length
    if max_length is not None:
        extra["maxLength"] = max_length
    if choices is not None:
        extra["enum"] = list(choices)
    if minimum is not None:
        extra["minimum"] = minimum
    if maximum is not None:
        extra["maximum"] = maximum
    return Field(json_schema_extra=extra)


ServerName = Annotated[StrictStr, _documented(pattern=validation.NAME_PATTERN)]
"""A server's name (also a lock holder's, a message sender's): 1-64 letters, digits, . _ -."""
Recipient = Annotated[StrictStr, _documented(pattern=f"{BROADCAST}|{validation.NAME_PATTERN}")]
Label = Annotated[StrictStr, _documented(pattern=validation.LABEL_PATTERN)]
ServerLabel = Annotated[
    StrictStr,
    _documented(pattern=f"(?!{SERVER_LABEL_PREFIX}){validation.LABEL_PATTERN}"),
]
"""A label an operator or agent sets on a server: ``server=NAME`` is every server's own."""
Commit = Annotated[StrictStr, _documented(pattern=validation.COMMIT_PATTERN)]
Trigger = Annotated[StrictStr, _documented(pattern=validation.TRIGGER_PATTERN)]
BranchName = Annotated[StrictStr, _documented(min_length=1, max_length=validation.BRANCH_LIMIT)]
"""A branch name: git's ref-name rules (git check-ref-format --branch), at most 255."""
Reason = Annotated[StrictStr, _documented(max_length=validation.REASON_LIMIT)]
Priority = Annotated[
    Int32, _documented(minimum=validation.HIGHEST_PRIORITY, maximum=validation.LOWEST_PRIORITY)
]
"""1 is built first, 10 last."""
PathText = Annotated[StrictStr, _documented(max_length=validation.PATH_LIMIT)]


class Body(BaseModel):
    """Base for request bodies: unknown fields, NaN, infinities and unstorable text are refused.

    A NUL byte or a lone UTF-16 surrogate in any string, key or value, at any depth, is refused
    before a field is read: PostgreSQL cannot store either (SQLite would), and both backends
    must answer alike.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        problem = _unstorable(data, 0)
        if problem:
            raise ValueError(problem)
        return data


def _unstorable(value: Any, depth: int) -> str | None:
    """Why value (parsed JSON) cannot be stored as it is, or None."""
    if isinstance(value, str):
        if "\x00" in value:
            return "text must not contain NUL bytes"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "text must be valid Unicode (a lone surrogate is not)"
        return None
    if depth > MAX_NESTING and isinstance(value, dict | list):
        return f"nested deeper than {MAX_NESTING} levels"
    if isinstance(value, dict):
        for key, item in value.items():
            problem = _unstorable(key, depth) or _unstorable(item, depth + 1)
            if problem:
                return problem
    elif isinstance(value, list):
        for item in value:
            problem = _unstorable(item, depth + 1)
            if problem:
                return problem
    return None


class ServerIn(Body):
    name: ServerName
    labels: list[ServerLabel] = Field(default_factory=list, max_length=100)


class MetricsIn(Body):
    cpu_percent: Gauge | None = None
    load_1m: Gauge | None = None
    load_5m: Gauge | None = None
    load_15m: Gauge | None = None
    memory_used_bytes: NonNegative64 | None = None
    memory_total_bytes: NonNegative64 | None = None
    disk_free_bytes: NonNegative64 | None = None
    disk_total_bytes: NonNegative64 | None = None
    uptime_seconds: Uptime | None = None
    clock_skew_seconds: (
        Annotated[StrictFloat, Field(ge=-MAX_CLOCK_SKEW_SECONDS, le=MAX_CLOCK_SKEW_SECONDS)] | None
    ) = None
    problems: list[Annotated[StrictStr, _documented(max_length=PROBLEM_LIMIT)]] = Field(
        default_factory=list, max_length=MAX_PROBLEMS
    )


AgentVersion = Annotated[StrictStr, _documented(max_length=validation.AGENT_VERSION_LIMIT)]


class HeartbeatIn(Body):
    metrics: MetricsIn = Field(default_factory=MetricsIn)
    agent_version: AgentVersion | None = None
    labels: list[ServerLabel] | None = Field(default=None, max_length=100)


class RegisteredServer(BaseModel):
    server: Server
    token: str


class RotateTokenIn(Body):
    grace_seconds: Annotated[StrictFloat | StrictInt, Field(ge=0, le=7 * 86_400)] = 3600.0
    """How long the old agent token stays valid (0 to 7 days; default an hour)."""


class JobIn(Body):
    branch: BranchName
    commit: Commit | None = None
    priority: Priority | None = None
    depends_on: list[Int64] = Field(default_factory=list, max_length=1000)
    labels: list[Label] = Field(default_factory=list, max_length=100)
    trigger: Trigger | None = None  # what started it; omitted: manual


class ClaimIn(Body):
    server: ServerName


class RenewIn(Body):
    server: ServerName
    fencing_token: Int64


class BuildTokenIn(RenewIn):
    """The lease a build token is for: the same fields as a renewal."""


class BuildTokenOut(BaseModel):
    token: str


class CompleteIn(Body):
    status: Literal["succeeded", "failed"]
    exit_code: Int32 | None = None
    duration: Duration | None = None
    reason: Reason | None = None
    server: ServerName | None = None
    fencing_token: Int64 | None = None
    manifest: list[ArtifactIn] | None = Field(default=None, max_length=1_000_000)
    artifact_root: PathText | None = None


class CancelIn(Body):
    reason: Reason | None = None


class PriorityIn(Body):
    priority: Priority


LockName = Annotated[StrictStr, _documented(min_length=1, max_length=validation.LOCK_NAME_LIMIT)]


class LockAcquireIn(Body):
    name: LockName
    holder: ServerName
    ttl: Lease | None = None
    capacity: Annotated[Int32, _documented(minimum=1, maximum=MAX_CAPACITY)] | None = None


class LockRenewIn(Body):
    name: LockName
    holder: ServerName
    token: Int64 | None = None
    ttl: Lease | None = None


class LockReleaseIn(Body):
    name: LockName
    holder: ServerName | None = None
    token: Int64 | None = None
    force: StrictBool = False


class MessageIn(Body):
    sender: ServerName
    recipient: Recipient
    type: Annotated[StrictStr, _documented(choices=tuple(sorted(MESSAGE_TYPES)))] = "info"
    subject: Annotated[StrictStr, _documented(min_length=1, max_length=validation.SUBJECT_LIMIT)]
    body: Annotated[StrictStr, _documented(max_length=validation.MESSAGE_BODY_LIMIT)] = ""
    ack_required: StrictBool = False


class ReaderIn(Body):
    reader: Recipient | None = None


class AckIn(Body):
    server: ServerName


class ArchiveIn(Body):
    days: Days | None = None


class SilenceIn(Body):
    rule: Annotated[StrictStr, _documented(choices=RULE_NAMES)]
    subject: Annotated[StrictStr, _documented(min_length=1, max_length=SUBJECT_LIMIT)] | None = None
    seconds: Annotated[StrictFloat, Field(gt=0, le=MAX_SILENCE_SECONDS)]
    comment: Annotated[StrictStr, _documented(max_length=COMMENT_LIMIT)] = ""


class QuarantineIn(Body):
    reason: Annotated[StrictStr, _documented(min_length=1, max_length=QUARANTINE_REASON_LIMIT)]


class NotifierTest(BaseModel):
    notifier: str
    sent: bool
    error: str | None = None


class TokenIn(Body):
    name: Annotated[StrictStr, _documented(min_length=1, max_length=validation.TOKEN_NAME_LIMIT)]
    kind: Literal["operator", "read"] = "operator"


class Count(BaseModel):
    count: int


class Changed(BaseModel):
    changed: bool


class Released(BaseModel):
    released: list[str]


__all__ = ["IssuedToken", "Job"]


class BranchIn(Body):
    name: BranchName
    repo: Annotated[StrictStr, _documented(min_length=1, max_length=validation.PATH_LIMIT)]
    command: (
        Annotated[StrictStr, _documented(min_length=1, max_length=validation.COMMAND_LIMIT)] | None
    ) = None
    priority: Priority = 5
    labels: list[Label] = Field(default_factory=list, max_length=100)
    timeout_seconds: Lease | None = None
    retry_on_failure: StrictBool = False
    tag_on_success: StrictBool = True
    push_tags: StrictBool = True
    auto_build: StrictBool = True
    schedule: StrictStr | None = None
    enabled: StrictBool = True
    build_now: StrictBool = False


class BranchChange(Body):
    tag_on_success: StrictBool | None = None
    push_tags: StrictBool | None = None
    retry_on_failure: StrictBool | None = None
    auto_build: StrictBool | None = None
    schedule: StrictStr | None = None  # "" removes the schedule
    enabled: StrictBool | None = None


class BranchCheckIn(Body):
    branches: list[BranchName] | None = Field(default=None, max_length=10_000)


class LogEntryIn(Body):
    at: Timestamp | None = None
    kind: Annotated[StrictStr, _documented(choices=KINDS)] = "event"
    level: Annotated[StrictStr, _documented(choices=LEVELS)] = "info"
    message: Annotated[
        StrictStr, Field(description=f"longer text is cut to {MESSAGE_LIMIT:,} characters")
    ]
    details: dict[str, Any] | None = None


class LogIn(Body):
    server: ServerName | None = None
    fencing_token: Int64 | None = None
    entries: list[LogEntryIn] = Field(max_length=5000)


Md5 = Annotated[StrictStr, _documented(pattern=validation.digest_pattern("md5"))]
Sha256 = Annotated[StrictStr, _documented(pattern=validation.digest_pattern("sha256"))]
Sha512 = Annotated[StrictStr, _documented(pattern=validation.digest_pattern("sha512"))]


class ArtifactIn(Body):
    path: Annotated[StrictStr, _documented(min_length=1, max_length=validation.PATH_LIMIT)]
    size: NonNegative64
    md5: Md5 | None = None
    sha256: Sha256 | None = None
    sha512: Sha512 | None = None
    kind: Literal["file", "symlink"] = "file"
    link_target: PathText | None = None


CompleteIn.model_rebuild()


class OrderReport(Body):
    status: Literal["done", "failed"]
    result: dict[str, Any] | None = None
    error: StrictStr | None = None


class CleanupIn(Body):
    keep: Annotated[Int32, _documented(minimum=0, maximum=ARTIFACT_MAX_KEEP)]
    server: ServerName | None = None
    branch: BranchName | None = None
    dry_run: StrictBool = False


class TagCleanupIn(Body):
    keep: Annotated[Int32, _documented(minimum=1, maximum=TAG_MAX_KEEP)] = 20
    branch: BranchName | None = None
    dry_run: StrictBool = False


class ArtifactCleanupOut(BaseModel):
    keep: int
    dry_run: bool
    planned_bytes: int
    removals: list[ArtifactSet]
    orders: list[AgentOrder]


class TagCleanupOut(BaseModel):
    keep: int
    dry_run: bool
    removals: list[GoodBuild]
    orders: list[AgentOrder]


MAX_IMPORT_FILES = 100_000


class LegacyImportIn(Body):
    """The files of a seed checkout (relative path -> text) to import."""

    files: Annotated[
        dict[Annotated[StrictStr, Field(max_length=1000)], StrictStr],
        Field(max_length=MAX_IMPORT_FILES),
    ]
    dry_run: bool = False


class LegacyExport(BaseModel):
    """The seed's files, as documents: relative path -> JSON."""

    files: dict[str, Any]
