"""Server rules: registration, heartbeats and the live status derived from heartbeat age."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, fields
from typing import Any

from buildcoord import validation
from buildcoord.clock import Clock
from buildcoord.config import Settings
from buildcoord.errors import InvalidInput
from buildcoord.models import (
    MAX_CLOCK_SKEW_SECONDS,
    MAX_PROBLEMS,
    MAX_UPTIME_SECONDS,
    PROBLEM_LIMIT,
    SYSTEM,
    Metrics,
    Principal,
    RotatedToken,
    Server,
    ServerStatus,
)
from buildcoord.services.authority import (
    require_operator,
    require_reader,
    require_self_or_operator,
)
from buildcoord.services.tokens import hash_secret, new_secret
from buildcoord.store import Store
from buildcoord.store.servers import ServerRecord
from buildcoord.store.timestamps import from_epoch, from_epoch_or_none

QUARANTINE_REASON_LIMIT = 500
"""The longest reason a server is quarantined for."""

_METRIC_NAMES = {f.name for f in fields(Metrics)}


MAX_GRACE_SECONDS = 7 * 86_400.0
"""The longest an agent's old token stays valid after a rotation."""


class ServerService:
    """Register, heartbeat, inspect and remove build servers."""

    def __init__(self, store: Store, clock: Clock, settings: Settings) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings

    def register(
        self, name: str, labels: Sequence[str] = (), *, by: Principal
    ) -> tuple[Server, str]:
        """Register a server; return it and its new agent token (shown once)."""
        require_operator(by, "registering a server")
        validation.server_name(name)
        if name in ("all", "system", "*"):
            raise InvalidInput(f"{name!r} is reserved and cannot name a server")
        secret = new_secret()
        record = self.store.register_server(
            name,
            validation.server_labels(labels),
            token_hash=hash_secret(secret),
            now=self.clock.now().timestamp(),
            actor=by.actor,
        )
        return self._server(record, {}), secret

    def rotate_token(self, name: str, *, grace_seconds: float, by: Principal) -> RotatedToken:
        """Give a server a new agent token (shown once); its old one stays valid for
        ``grace_seconds`` (0 to 7 days), time to give the agent the new one without a stop."""
        require_operator(by, "rotating an agent token")
        validation.server_name(name)
        if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
            raise InvalidInput(
                f"invalid grace {grace_seconds!r}: expected 0 to {MAX_GRACE_SECONDS:g} seconds"
            )
        secret = new_secret()
        now = self.clock.now().timestamp()
        token = self.store.rotate_agent_token(
            name,
            token_hash=hash_secret(secret),
            grace_until=now + grace_seconds,
            now=now,
            actor=by.actor,
        )
        return RotatedToken(
            token=token, secret=secret, old_valid_until=from_epoch(now + grace_seconds)
        )

    def heartbeat(
        self,
        name: str,
        *,
        metrics: Metrics,
        agent_version: str | None = None,
        labels: Sequence[str] | None = None,
        by: Principal,
    ) -> Server:
        """Record that a server is alive, with its system figures and, when given, the labels
        its agent reports (they replace the ones it reported before; the operator's stay)."""
        require_self_or_operator(by, name, "send heartbeats")
        if agent_version is not None:
            validation.text(
                agent_version, what="agent version", maximum=validation.AGENT_VERSION_LIMIT
            )
        figures = {key: value for key, value in asdict(metrics).items() if value is not None}
        problems = [
            validation.text(problem, what="agent problem", maximum=PROBLEM_LIMIT)
            for problem in figures.pop("problems", ())
        ]
        if len(problems) > MAX_PROBLEMS:
            raise InvalidInput(f"an agent reports at most {MAX_PROBLEMS} problems")
        skew = figures.pop("clock_skew_seconds", None)
        if skew is not None and not abs(skew) <= MAX_CLOCK_SKEW_SECONDS:
            raise InvalidInput(f"invalid metric clock_skew_seconds={skew!r}")
        for key, value in figures.items():
            if not value >= 0:
                raise InvalidInput(f"invalid metric {key}={value!r}: expected 0 or more")
        uptime = figures.get("uptime_seconds")
        if uptime is not None and not uptime <= MAX_UPTIME_SECONDS:
            raise InvalidInput(
                f"invalid metric uptime_seconds={uptime!r}: at most {MAX_UPTIME_SECONDS:g}"
            )
        if skew is not None:
            figures["clock_skew_seconds"] = skew
        if problems:
            figures["problems"] = problems
        record, running = self.store.record_heartbeat(
            name,
            metrics=figures,
            agent_version=agent_version,
            labels=None if labels is None else validation.server_labels(labels),
            now=self.clock.now().timestamp(),
            actor=by.actor,
        )
        return self._server(record, {name: running})

    def get(self, name: str, *, by: Principal) -> Server:
        """Return one server with its live status."""
        require_reader(by, "reading servers")
        return self._server(self.store.get_server(name), self.store.running_jobs_by_server())

    def list_servers(self, *, by: Principal) -> list[Server]:
        """Return every server with its live status."""
        require_reader(by, "reading servers")
        running = self.store.running_jobs_by_server()
        return [self._server(record, running) for record in self.store.list_servers()]

    def quarantine(self, name: str, reason: str, *, by: Principal) -> Server:
        """Stop giving a server new work (operators); its running jobs go on."""
        require_operator(by, "quarantining servers")
        validation.text(reason, what="quarantine reason", maximum=QUARANTINE_REASON_LIMIT)
        self.store.quarantine_server(name, reason, now=self.clock.now().timestamp(), actor=by.actor)
        return self.get(name, by=by)

    def resume(self, name: str, *, by: Principal) -> Server:
        """Give a quarantined server work again (operators)."""
        require_operator(by, "resuming servers")
        self.store.resume_server(name, now=self.clock.now().timestamp(), actor=by.actor)
        return self.get(name, by=by)

    def remove(self, name: str, *, by: Principal) -> None:
        """Forget a server and revoke its agent token."""
        require_operator(by, "removing a server")
        self.store.remove_server(name, now=self.clock.now().timestamp(), actor=by.actor)

    def liveness(self, last_heartbeat_at: float | None, now: float) -> ServerStatus:
        """Online, stale (3 missed heartbeats) or offline (no heartbeat for 5 minutes)."""
        if last_heartbeat_at is None:
            return "offline"
        age = now - last_heartbeat_at
        if age >= self.settings.offline_after_seconds:
            return "offline"
        if age >= self.settings.stale_after_seconds:
            return "stale"
        return "online"

    def record_status_changes(self) -> list[tuple[str, str, str]]:
        """Maintenance: record every server whose liveness changed; return (name, from, to)."""
        now = self.clock.now().timestamp()
        changes: list[tuple[str, str, str]] = []
        due = self.store.servers_off_their_status(
            stale_before=now - self.settings.stale_after_seconds,
            offline_before=now - self.settings.offline_after_seconds,
        )
        for name, recorded, heartbeat_at in due:
            status = self.liveness(heartbeat_at, now)
            if status != recorded and self.store.record_server_status(
                name, expected=recorded, status=status, now=now, actor=SYSTEM.actor
            ):
                changes.append((name, recorded, status))
        return changes

    def _server(self, record: ServerRecord, running: Mapping[str, Sequence[int]]) -> Server:
        now = self.clock.now().timestamp()
        status: ServerStatus = self.liveness(record.last_heartbeat_at, now)
        jobs: tuple[int, ...] = tuple(running.get(record.name, ()))
        if status == "online" and jobs:
            status = "busy"
        figures: dict[str, Any] = {
            key: value for key, value in (record.metrics or {}).items() if key in _METRIC_NAMES
        }
        return Server(
            name=record.name,
            labels=record.labels,
            reported_labels=record.reported_labels,
            status=status,
            registered_at=from_epoch(record.registered_at),
            last_heartbeat_at=from_epoch_or_none(record.last_heartbeat_at),
            heartbeat_age_seconds=None
            if record.last_heartbeat_at is None
            else round(now - record.last_heartbeat_at, 3),
            metrics=Metrics(**{**figures, "problems": tuple(figures.get("problems", ()))})
            if record.metrics is not None
            else None,
            agent_version=record.agent_version,
            running_jobs=jobs,
            quarantined_at=from_epoch_or_none(record.quarantined_at),
            quarantine_reason=record.quarantine_reason,
        )
