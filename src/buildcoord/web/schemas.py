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

from buildcoord.models import (
    EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
    MAX_DAYS,
    MAX_DURATION_SECONDS,
    MAX_UPTIME_SECONDS,
    AgentOrder,
    ArtifactSet,
    GoodBuild,
    IssuedToken,
    Job,
    Server,
)

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
    name: StrictStr
    labels: list[StrictStr] = Field(default_factory=list, max_length=100)


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


class HeartbeatIn(Body):
    metrics: MetricsIn = Field(default_factory=MetricsIn)
    agent_version: StrictStr | None = None
    labels: list[StrictStr] | None = Field(default=None, max_length=100)


class RegisteredServer(BaseModel):
    server: Server
    token: str


class JobIn(Body):
    branch: StrictStr
    commit: StrictStr | None = None
    priority: Int32 | None = None
    depends_on: list[Int64] = Field(default_factory=list, max_length=1000)
    labels: list[StrictStr] = Field(default_factory=list, max_length=100)
    trigger: StrictStr | None = None  # what started it; omitted: manual


class ClaimIn(Body):
    server: StrictStr


class RenewIn(Body):
    server: StrictStr
    fencing_token: Int64


class BuildTokenIn(RenewIn):
    """The lease a build token is for: the same fields as a renewal."""


class BuildTokenOut(BaseModel):
    token: str


class CompleteIn(Body):
    status: Literal["succeeded", "failed"]
    exit_code: Int32 | None = None
    duration: Duration | None = None
    reason: StrictStr | None = None
    server: StrictStr | None = None
    fencing_token: Int64 | None = None
    manifest: list[ArtifactIn] | None = Field(default=None, max_length=1_000_000)
    artifact_root: StrictStr | None = None


class CancelIn(Body):
    reason: StrictStr | None = None


class LockAcquireIn(Body):
    name: StrictStr
    holder: StrictStr
    ttl: Lease | None = None
    capacity: Int32 | None = None


class LockRenewIn(Body):
    name: StrictStr
    holder: StrictStr
    token: Int64 | None = None
    ttl: Lease | None = None


class LockReleaseIn(Body):
    name: StrictStr
    holder: StrictStr | None = None
    token: Int64 | None = None
    force: StrictBool = False


class MessageIn(Body):
    sender: StrictStr
    recipient: StrictStr
    type: StrictStr = "info"
    subject: StrictStr
    body: StrictStr = ""
    ack_required: StrictBool = False


class ReaderIn(Body):
    reader: StrictStr | None = None


class AckIn(Body):
    server: StrictStr


class ArchiveIn(Body):
    days: Days | None = None


class TokenIn(Body):
    name: StrictStr
    kind: Literal["operator", "read"] = "operator"


class Count(BaseModel):
    count: int


class Changed(BaseModel):
    changed: bool


class Released(BaseModel):
    released: list[str]


__all__ = ["IssuedToken", "Job"]


class BranchIn(Body):
    name: StrictStr
    repo: StrictStr
    command: StrictStr | None = None
    priority: Int32 = 5
    labels: list[StrictStr] = Field(default_factory=list, max_length=100)
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
    branches: list[StrictStr] | None = Field(default=None, max_length=10_000)


class LogEntryIn(Body):
    at: Timestamp | None = None
    kind: StrictStr = "event"
    level: StrictStr = "info"
    message: StrictStr
    details: dict[str, Any] | None = None


class LogIn(Body):
    server: StrictStr | None = None
    fencing_token: Int64 | None = None
    entries: list[LogEntryIn] = Field(max_length=5000)


class ArtifactIn(Body):
    path: StrictStr
    size: NonNegative64
    md5: StrictStr | None = None
    sha256: StrictStr | None = None
    sha512: StrictStr | None = None
    kind: Literal["file", "symlink"] = "file"
    link_target: StrictStr | None = None


CompleteIn.model_rebuild()


class OrderReport(Body):
    status: Literal["done", "failed"]
    result: dict[str, Any] | None = None
    error: StrictStr | None = None


class CleanupIn(Body):
    keep: Int32
    server: StrictStr | None = None
    branch: StrictStr | None = None
    dry_run: StrictBool = False


class TagCleanupIn(Body):
    keep: Int32 = 20
    branch: StrictStr | None = None
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
