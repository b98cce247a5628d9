"""Request bodies. Strict types: "5" is not a priority and true is not a number."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from buildcoord.models import IssuedToken, Job, Server


class Body(BaseModel):
    """Base for request bodies: unknown fields are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class ServerIn(Body):
    name: StrictStr
    labels: list[StrictStr] = Field(default_factory=list, max_length=100)


class MetricsIn(Body):
    cpu_percent: StrictFloat | StrictInt | None = None
    load_1m: StrictFloat | StrictInt | None = None
    load_5m: StrictFloat | StrictInt | None = None
    load_15m: StrictFloat | StrictInt | None = None
    memory_used_bytes: StrictInt | None = None
    memory_total_bytes: StrictInt | None = None
    disk_free_bytes: StrictInt | None = None
    disk_total_bytes: StrictInt | None = None
    uptime_seconds: StrictFloat | StrictInt | None = None


class HeartbeatIn(Body):
    metrics: MetricsIn = Field(default_factory=MetricsIn)
    agent_version: StrictStr | None = None
    labels: list[StrictStr] | None = None


class RegisteredServer(BaseModel):
    server: Server
    token: str


class JobIn(Body):
    branch: StrictStr
    commit: StrictStr
    priority: StrictInt = 5
    depends_on: list[StrictInt] = Field(default_factory=list, max_length=1000)
    labels: list[StrictStr] = Field(default_factory=list, max_length=100)


class ClaimIn(Body):
    server: StrictStr


class RenewIn(Body):
    server: StrictStr
    fencing_token: StrictInt


class CompleteIn(Body):
    status: Literal["succeeded", "failed"]
    exit_code: StrictInt | None = None
    duration: StrictFloat | StrictInt | None = None
    reason: StrictStr | None = None
    server: StrictStr | None = None
    fencing_token: StrictInt | None = None


class CancelIn(Body):
    reason: StrictStr | None = None


class LockAcquireIn(Body):
    name: StrictStr
    holder: StrictStr
    ttl: StrictFloat | StrictInt | None = None
    capacity: StrictInt | None = None


class LockRenewIn(Body):
    name: StrictStr
    holder: StrictStr
    token: StrictInt | None = None
    ttl: StrictFloat | StrictInt | None = None


class LockReleaseIn(Body):
    name: StrictStr
    holder: StrictStr | None = None
    token: StrictInt | None = None
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
    days: StrictFloat | StrictInt | None = None


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
