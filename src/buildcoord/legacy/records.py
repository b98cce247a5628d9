"""What a seed checkout holds, as records ready to store, and the notes on what was left out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from buildcoord.models import LegacyNote

Note = LegacyNote
"""An entry (or file) not imported as it was, and why."""


@dataclass(frozen=True, slots=True)
class SeedServer:
    name: str
    labels: tuple[str, ...]
    first_seen_at: float | None
    last_heartbeat_at: float | None
    metrics: dict[str, Any]
    """As a heartbeat reports them (cpu_percent, memory_used_bytes, ...)."""
    attributes: dict[str, Any]
    """What the seed's files say that buildcoord does not model (ip, manager, last_build...)."""


@dataclass(frozen=True, slots=True)
class SeedJob:
    seed_id: str
    branch: str
    commit: str
    priority: int
    status: str
    """queued, succeeded, failed or cancelled."""
    server: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    duration: float | None
    reason: str | None
    depends_on: tuple[str, ...]
    """Seed ids."""
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SeedLock:
    name: str
    holder: str | None
    acquired_at: float | None
    expires_at: float | None
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SeedMessage:
    seed_id: str
    sender: str
    recipient: str
    type: str
    subject: str
    body: str
    created_at: float
    ack_required: bool
    read: bool
    acknowledged_by: tuple[str, ...]
    archived: bool
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SeedLogEntry:
    at: float
    level: str
    message: str
    details: str | None


@dataclass(frozen=True, slots=True)
class SeedLog:
    path: str
    job_seed_id: str
    entries: tuple[SeedLogEntry, ...]


@dataclass(frozen=True, slots=True)
class SeedArtifact:
    path: str
    size: int
    md5: str | None
    sha256: str | None
    sha512: str | None


@dataclass(frozen=True, slots=True)
class SeedManifest:
    path: str
    job_seed_id: str
    server: str | None
    root: str
    created_at: float | None
    artifacts: tuple[SeedArtifact, ...]


@dataclass(frozen=True, slots=True)
class SeedSample:
    at: float
    servers_online: float
    servers_total: float
    queued: float


@dataclass
class SeedState:
    """Everything read from a checkout, in the order it is stored."""

    servers: list[SeedServer] = field(default_factory=list)
    jobs: list[SeedJob] = field(default_factory=list)
    locks: list[SeedLock] = field(default_factory=list)
    messages: list[SeedMessage] = field(default_factory=list)
    logs: list[SeedLog] = field(default_factory=list)
    manifests: list[SeedManifest] = field(default_factory=list)
    samples: list[SeedSample] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    files: int = 0
    """How many files were read."""
