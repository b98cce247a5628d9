"""The coordinator's state as the seed's files: its field names, value forms and status words,
so that the seed's page and scripts keep reading valid files while a team switches.

Pure: models and the seed records of imported rows in, JSON documents out (relative path ->
object); the CLI writes them, each to a temporary name renamed into place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from buildcoord.legacy.seed import EXPORTED_STATUSES, server_folder, stamp
from buildcoord.models import FleetHealth, FleetSample, Job, Lock, Message, Server

GIB = 1024**3
HISTORY_ENTRIES = 100
"""The seed's updater kept the last 100 history entries."""
_CAPABILITIES = {
    "cores": "cores",
    "memory_gb": "memory_gb",
    "java": "java_version",
    "maven": "maven_version",
}
_NOT_RESTORED = {"status", "priority", "subject", "body", "type"}
"""Seed fields kept at import whose current value is ours (a status moved on, a cut subject)."""


def _time(at: Any) -> str | None:
    return None if at is None else stamp(at.timestamp())


def _gib(value: int | None) -> float | None:
    return None if value is None else round(value / GIB, 2)


def _number(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def job_seed_id(job: Job, seed_ids: Mapping[str, str]) -> str:
    """A job's id as the seed writes them: its seed id when it came from the seed, else
    ``job_<created epoch>_<our id>``."""
    return seed_ids.get(str(job.id)) or f"job_{int(job.created_at.timestamp())}_{job.id}"


def message_seed_id(message: Message, seed_ids: Mapping[str, str]) -> str:
    """A message's id: its seed id, else ``msg_<epoch>_<our id>``."""
    return (
        seed_ids.get(str(message.id)) or f"msg_{int(message.created_at.timestamp())}_{message.id}"
    )


def seed_status(server: Server) -> str:
    """What the seed's status.json says of a server: idle, building or offline."""
    if server.status == "busy" or server.running_jobs:
        return "building"
    return "idle" if server.status == "online" else "offline"


def capabilities(server: Server) -> dict[str, Any]:
    """The server's labels as the seed's capabilities (cores=32 -> "cores": 32; labels the
    seed has no key for under "labels")."""
    found: dict[str, Any] = {}
    profiles, others = [], []
    for label in server.labels:
        key, _, value = label.partition("=")
        if key in _CAPABILITIES and value:
            found[_CAPABILITIES[key]] = _number(value) if key in ("cores", "memory_gb") else value
        elif key == "profile" and value:
            profiles.append(value)
        else:
            others.append(label)
    if "memory_gb" not in found and server.metrics and server.metrics.memory_total_bytes:
        found["memory_gb"] = _gib(server.metrics.memory_total_bytes)
    if profiles:
        found["build_profiles"] = profiles
    if others:
        found["labels"] = others
    return found


def _system(server: Server) -> dict[str, Any]:
    metrics = server.metrics
    if metrics is None:
        return {"cpu_usage": None, "memory_used_gb": None, "disk_free_gb": None}
    return {
        "cpu_usage": None if metrics.cpu_percent is None else round(metrics.cpu_percent, 1),
        "memory_used_gb": _gib(metrics.memory_used_bytes),
        "disk_free_gb": _gib(metrics.disk_free_bytes),
    }


def server_files(
    server: Server,
    attributes: Mapping[str, Any],
    current_job: Job | None,
    seed_ids: Mapping[str, str],
) -> dict[str, dict[str, Any]]:
    """buildN/status.json and buildN/heartbeat.json of one server."""
    folder = server_folder(server.name)
    status: dict[str, Any] = {
        key: value
        for key, value in attributes.items()
        if key not in ("status", "current_job", "capabilities", "healthy", "last_activity")
    }
    status.update(
        {
            "server": server.name,
            "timestamp": _time(server.last_heartbeat_at),
            "status": seed_status(server),
            "current_job": None
            if current_job is None
            else {
                "id": job_seed_id(current_job, seed_ids),
                "started_at": _time(current_job.started_at),
            },
            "system": _system(server),
            "capabilities": capabilities(server),
        }
    )
    status.setdefault("ip", None)
    status.setdefault("manager", None)
    heartbeat: dict[str, Any] = {
        "server": server.name,
        "timestamp": _time(server.last_heartbeat_at),
        "uptime_seconds": None
        if server.metrics is None or server.metrics.uptime_seconds is None
        else int(server.metrics.uptime_seconds),
        "healthy": server.status in ("online", "busy"),
        "system": _system(server),
    }
    return {f"{folder}/status.json": status, f"{folder}/heartbeat.json": heartbeat}


def jobs_file(
    found: Sequence[Job],
    seed_ids: Mapping[str, str],
    attributes: Mapping[str, Mapping[str, Any]],
    now: float,
) -> dict[str, Any]:
    """coordination/jobs.json."""
    entries = []
    for job in found:
        kept = attributes.get(str(job.id), {})
        entry: dict[str, Any] = {
            "id": job_seed_id(job, seed_ids),
            "type": kept.get("type", "build"),
            "priority": job.priority,
        }
        if "description" in kept:
            entry["description"] = kept["description"]
        entry.update(
            {
                "branch": job.branch,
                "commit": job.commit,
                "dependencies": [seed_ids.get(str(dep), f"job_{dep}") for dep in job.depends_on],
                "status": EXPORTED_STATUSES.get(job.status, job.status),
                "assigned_to": job.server,
                "created_at": _time(job.created_at),
                "started_at": _time(job.started_at),
                "completed_at": _time(job.finished_at),
            }
        )
        if job.duration is not None and job.finished_at is not None:
            entry["duration_seconds"] = round(job.duration)
        entry.update(
            {
                key: value
                for key, value in kept.items()
                if key not in entry and key not in _NOT_RESTORED
            }
        )
        entries.append(entry)
    # The latest change the jobs show, not the export's own time: an export of an unchanged
    # queue writes the same file (and --git makes no commit).
    changes = [
        at.timestamp()
        for job in found
        for at in (job.created_at, job.started_at, job.finished_at)
        if at is not None
    ]
    last = stamp(max(changes)) if changes else None
    return {"jobs": entries, "metadata": {"last_updated": last, "next_job_id": 1}}


def locks_file(found: Sequence[Lock], now: float) -> dict[str, Any]:
    """coordination/locks.json: each lock's first holder (the seed's locks hold one)."""
    entries: dict[str, Any] = {}
    for lock in found:
        holder = lock.holders[0] if lock.holders else None
        entries[lock.name] = {
            "locked_by": None if holder is None else holder.holder,
            "locked_at": None if holder is None else _time(holder.acquired_at),
            "expires_at": None if holder is None else _time(holder.expires_at),
        }
    taken = [holder.acquired_at.timestamp() for lock in found for holder in lock.holders]
    return {"locks": entries, "metadata": {"last_cleanup": stamp(max(taken)) if taken else None}}


def messages_file(
    found: Sequence[Message],
    seed_ids: Mapping[str, str],
    attributes: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """coordination/messages.json: the messages not archived, oldest first."""
    entries = []
    for message in sorted(found, key=lambda each: (each.created_at, each.id)):
        kept = attributes.get(str(message.id), {})
        acked = list(message.acknowledged_by)
        entry: dict[str, Any] = {
            "id": message_seed_id(message, seed_ids),
            "from": message.sender,
            "to": message.recipient,
            "type": message.type,
            "subject": message.subject,
            "body": message.body,
            "timestamp": _time(message.created_at),
            "read": message.read,
            "ack_required": message.ack_required,
            "ack_status": "completed"
            if acked
            else "pending"
            if message.ack_required
            else "not_requested",
            "acknowledged_by": acked,
        }
        for key in ("subject", "body"):  # the whole text the seed had, where it was cut here
            whole = kept.get(key)
            if (
                isinstance(whole, str)
                and entry[key].endswith("…")
                and whole.startswith(entry[key][:-1])
            ):
                entry[key] = whole
        entry.update(
            {
                key: value
                for key, value in kept.items()
                if key not in entry and key not in _NOT_RESTORED
            }
        )
        entries.append(entry)
    return {"messages": entries}


def health_file(
    fleet: FleetHealth,
    samples: Sequence[FleetSample],
    server_attributes: Mapping[str, Mapping[str, Any]],
    builds: tuple[int, int, float | None],
) -> dict[str, Any]:
    """shared/health_dashboard.json: servers, aggregate, and the last 100 ten-minute samples.

    ``builds``: (passed, failed, mean duration of the passed) over the last day, what the
    seed's aggregate meant to count.
    """
    passed, failed, mean = builds
    cpus = [
        server.metrics.cpu_percent
        for server in fleet.servers
        if server.metrics is not None and server.metrics.cpu_percent is not None
    ]
    memory = [
        server.metrics.memory_used_bytes / GIB
        for server in fleet.servers
        if server.metrics is not None and server.metrics.memory_used_bytes is not None
    ]
    total = fleet.servers_total
    success = round(passed * 100 / (passed + failed), 2) if passed + failed else 0
    history = []
    for sample in samples[-HISTORY_ENTRIES:]:
        finished = sample.passed + sample.failed
        history.append(
            {
                "timestamp": stamp(sample.at.timestamp()),
                "servers_online": round(sample.servers_online),
                "success_rate": round(sample.passed * 100 / finished, 2) if finished else success,
                "avg_cpu": None,
                "queued_jobs": round(sample.queued),
            }
        )
    return {
        "servers": [
            {
                "server": server.name,
                "status": seed_status(server),
                "ip": server_attributes.get(server.name, {}).get("ip"),
                "manager": server_attributes.get(server.name, {}).get("manager"),
                "healthy": server.status in ("online", "busy"),
                "metrics": _system(server),
            }
            for server in fleet.servers
        ],
        "aggregate": {
            "total_builds": passed + failed,
            "successful_builds": passed,
            "failed_builds": failed,
            "success_rate": success,
            "avg_build_time_seconds": 0 if mean is None else int(mean),
            "servers_online": fleet.servers_online,
            "servers_total": total,
            "avg_cpu_usage": round(sum(cpus) / total, 2) if total else 0,
            "avg_memory_gb": round(sum(memory) / total, 2) if total else 0,
            "queued_jobs": fleet.queued,
            "running_jobs": fleet.running,
        },
        # The latest sample's time, not the export's: unchanged figures, an unchanged file.
        "updated_at": stamp(samples[-1].at.timestamp()) if samples else None,
        "history": history,
    }
