"""Settings: defaults < buildcoord.toml < BUILDCOORD_<NAME> environment < command-line flags."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from buildcoord.errors import InvalidInput
from buildcoord.notifier_config import NotifierSettings, parse_notifiers


@dataclass(frozen=True, slots=True)
class Settings:
    """Every coordinator setting in force."""

    db: str = ""
    host: str = "127.0.0.1"
    port: int = 8765
    workers: int = 1
    admin_token: str = ""
    heartbeat_interval_seconds: float = 5.0
    stale_after_missed_heartbeats: int = 3
    offline_after_seconds: float = 300.0
    job_lease_seconds: float = 30.0
    max_attempts: int = 3
    priority_aging_minutes: float = 30.0
    lock_ttl_seconds: float = 600.0
    archive_days: int = 30
    artifact_keep_builds: int = 5
    maintenance_interval_seconds: float = 1.0
    agent_reconnect_grace_seconds: float = 3.0
    recommend_min_disk_free_gb: float = 5.0
    branch_check_minutes: float = 5.0
    branch_check_timeout_seconds: float = 30.0
    branch_quiet_seconds: float = 15.0
    cancel_superseded_builds: bool = True
    webhook_secret: str = ""
    max_request_bytes: int = 1024 * 1024
    max_upload_bytes: int = 128 * 1024 * 1024
    api_docs: bool = True
    public_dashboard: bool = False
    auth_failures_allowed: int = 20
    """Failed authentications one address may make within auth_failure_window_seconds before
    its requests wait (429, Retry-After); 0: no limit."""
    auth_failure_window_seconds: float = 60.0
    webhook_max_bytes: int = 1024 * 1024
    webhook_max_concurrent: int = 4
    monitor_seconds: float = 30.0
    resolve_after_seconds: float = 90.0
    disk_low_percent: float = 5.0
    disk_low_gib: float = 2.0
    backlog_jobs: int = 50
    backlog_minutes: float = 15.0
    failure_rate_builds: int = 10
    failure_rate_percent: float = 50.0
    monitor_disabled_rules: str = ""
    clock_skew_max_seconds: float = 30.0
    black_hole_builds: int = 3
    black_hole_window_minutes: float = 120.0
    quarantine_black_holes: bool = False
    notifiers: tuple[NotifierSettings, ...] = ()
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def stale_after_seconds(self) -> float:
        """Seconds without a heartbeat after which a server is stale."""
        return self.heartbeat_interval_seconds * self.stale_after_missed_heartbeats


# The [section] each setting may be written under in buildcoord.toml (also flat at the top).
SECTIONS = {
    "db": "store",
    "host": "server",
    "port": "server",
    "workers": "server",
    "admin_token": "server",
    "heartbeat_interval_seconds": "monitor",
    "stale_after_missed_heartbeats": "monitor",
    "offline_after_seconds": "monitor",
    "job_lease_seconds": "queue",
    "max_attempts": "queue",
    "priority_aging_minutes": "queue",
    "lock_ttl_seconds": "locks",
    "archive_days": "retention",
    "artifact_keep_builds": "retention",
    "maintenance_interval_seconds": "server",
    "agent_reconnect_grace_seconds": "agent",
    "recommend_min_disk_free_gb": "prediction",
    "branch_check_minutes": "branches",
    "branch_check_timeout_seconds": "branches",
    "branch_quiet_seconds": "branches",
    "cancel_superseded_builds": "branches",
    "webhook_secret": "branches",
    "max_request_bytes": "server",
    "max_upload_bytes": "server",
    "api_docs": "server",
    "public_dashboard": "server",
    "auth_failures_allowed": "server",
    "auth_failure_window_seconds": "server",
    "webhook_max_bytes": "branches",
    "webhook_max_concurrent": "branches",
    "monitor_seconds": "monitor",
    "resolve_after_seconds": "monitor",
    "disk_low_percent": "monitor",
    "disk_low_gib": "monitor",
    "backlog_jobs": "monitor",
    "backlog_minutes": "monitor",
    "failure_rate_builds": "monitor",
    "failure_rate_percent": "monitor",
    "monitor_disabled_rules": "monitor",
    "clock_skew_max_seconds": "monitor",
    "black_hole_builds": "monitor",
    "black_hole_window_minutes": "monitor",
    "quarantine_black_holes": "monitor",
}


def _coerce(name: str, raw: Any, kind: type) -> Any:
    try:
        if kind is bool:
            return raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes")
        return kind(raw)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"setting {name}: {raw!r} is not a valid {kind.__name__}") from exc


def load_settings(
    *,
    config_path: str | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Read the settings in force and remember where each came from."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    kinds = {
        f.name: type(f.default) for f in fields(Settings) if f.name not in ("sources", "notifiers")
    }
    path = config_path or env.get("BUILDCOORD_CONFIG")
    if path:
        try:
            text = Path(path).read_text()
            document = tomllib.loads(text)
        except FileNotFoundError as exc:
            raise InvalidInput(f"config file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInput(f"config file {path} is not valid TOML: {exc}") from exc
        for name, section in SECTIONS.items():
            table = document.get(section, {})
            for source in (document, table if isinstance(table, dict) else {}):
                if name in source:
                    values[name] = _coerce(name, source[name], kinds[name])
                    sources[name] = f"file {path}"
        if "notifiers" in document:
            values["notifiers"] = parse_notifiers(document, text, path)
            sources["notifiers"] = f"file {path}"
    for name in kinds:
        variable = f"BUILDCOORD_{name.upper()}"
        if variable in env:
            values[name] = _coerce(name, env[variable], kinds[name])
            sources[name] = f"env {variable}"
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = _coerce(name, value, kinds[name])
            sources[name] = "flag"
    settings = replace(Settings(), **values)
    return replace(
        settings,
        sources={name: sources.get(name, "default") for name in (*kinds, "notifiers")},
    )
