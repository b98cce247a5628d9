"""Read a seed checkout's files into records, noting every entry left out and why.

Each file is read on its own: one that is not JSON, or not of the shape its seed writer gave
it, is noted and the others still count. Within a file each entry is checked on its own:
one without an id, or with a value of the wrong type or form (the seed wrote ``"45%"`` where
a number belongs), is noted with its path and id and skipped; the rest is kept.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from buildcoord import validation
from buildcoord.errors import InvalidInput
from buildcoord.legacy import layout
from buildcoord.legacy.records import (
    Note,
    SeedArtifact,
    SeedJob,
    SeedLock,
    SeedLog,
    SeedLogEntry,
    SeedManifest,
    SeedMessage,
    SeedSample,
    SeedServer,
    SeedState,
)
from buildcoord.legacy.seed import JOB_STATUSES, BadValue, optional_time, seed_time, shown
from buildcoord.models import BROADCAST, MESSAGE_TYPES

_SURROGATE = re.compile("[\ud800-\udfff]")
ID_LIMIT = 200
"""The longest seed id kept (the seed's own are about 20 characters)."""
GIB = 1024**3
LOG_LEVELS = ("info", "warning", "error", "success")
_JOB_FIELDS = {
    "id",
    "branch",
    "commit",
    "priority",
    "status",
    "assigned_to",
    "created_at",
    "started_at",
    "completed_at",
    "duration_seconds",
    "dependencies",
}
_MESSAGE_FIELDS = {
    "id",
    "from",
    "to",
    "type",
    "subject",
    "body",
    "timestamp",
    "read",
    "ack_required",
    "acknowledged_by",
}
_CAPABILITY_LABELS = {
    "cores": "cores",
    "memory_gb": "memory_gb",
    "java_version": "java",
    "maven_version": "maven",
}


def read_state(files: Mapping[str, str]) -> SeedState:
    """Records of every file given (relative path -> text); NotASeedLayout when none of them
    is one of the seed's own files."""
    paths = [path for path in files if layout.is_read(path)]
    if not layout.is_seed_layout(paths):
        raise layout.NotASeedLayout(
            f"not a seed checkout: none of {layout.JOBS}, {layout.LOCKS}, {layout.MESSAGES} "
            "or a buildN/heartbeat.json or buildN/status.json is there"
        )
    state = SeedState(files=len(paths))
    ignored = sorted(set(files) - set(paths))
    for path in ignored[:20]:
        state.notes.append(Note(path, None, "not a file the seed writes where it lies: not read"))
    for path in layout.EXPECTED:
        if path not in files:
            state.notes.append(Note(path, None, "not there: nothing of it to import"))
    documents = {path: _parse(path, files[path], state) for path in sorted(paths)}
    _servers(documents, state)
    _jobs(documents.get(layout.JOBS), state)
    _locks(documents.get(layout.LOCKS), state)
    _messages(documents, state)
    for path, document in documents.items():
        if document is not None and layout.LOG.fullmatch(path):
            _log_or_manifest(path, document, state)
        elif document is not None and layout.MANIFEST.fullmatch(path):
            _manifest(path, document, state)
    _samples(documents.get(layout.HEALTH), state)
    return state


# -- files ---------------------------------------------------------------------------------------


def _parse(path: str, text: str, state: SeedState) -> Any:
    if "\x00" in text:
        state.notes.append(Note(path, None, "holds a NUL byte: not read"))
        return None
    try:
        document = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:
        state.notes.append(Note(path, None, f"not JSON ({_first_line(error)}): not read"))
        return None
    if not _storable(document):
        state.notes.append(
            Note(
                path, None, "holds a NUL character or a lone surrogate (\\u0000, \\ud800): not read"
            )
        )
        return None
    return document


def _storable(document: Any) -> bool:
    """Whether every text in the document can be stored (PostgreSQL takes no NUL and no lone
    surrogate; both databases are to answer alike)."""
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item or (not item.isascii() and _SURROGATE.search(item)):
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0][:200] if str(error) else type(error).__name__


def _entries(
    path: str, document: Any, key: str, state: SeedState, *, bare_list: bool = False
) -> list[tuple[str, Any]]:
    """The entries of ``document[key]`` as (label, entry); a document of another shape is
    noted. With bare_list, a document that is itself a list is taken too."""
    if bare_list and isinstance(document, list):
        items = document
    elif isinstance(document, dict) and isinstance(document.get(key), list):
        items = document[key]
    else:
        state.notes.append(Note(path, None, f'not of the seed\'s shape {{"{key}": [...]}}'))
        return []
    return [(f"#{index + 1}", item) for index, item in enumerate(items)]


# -- fields --------------------------------------------------------------------------------------


def _seed_id(entry: dict[str, Any], key: str = "id") -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise BadValue(f"it has no {key}" if value is None else f"its {key} is {shown(value)}")
    if len(value) > ID_LIMIT:
        raise BadValue(f"its {key} is longer than {ID_LIMIT} characters")
    return value


def _text(entry: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = entry.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise BadValue(f"{key} is {shown(value)}, not text")
    return value


def _number(
    entry: dict[str, Any], key: str, *, low: float = 0.0, high: float = 1e12
) -> float | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadValue(f"{key} is {shown(value)}, not a number")
    if not low <= value <= high:
        raise BadValue(f"{key} is {value!r}, outside {low:g} to {high:g}")
    return float(value)


def _flag(entry: dict[str, Any], key: str) -> bool | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise BadValue(f"{key} is {shown(value)}, not true or false")
    return value


def _names(entry: dict[str, Any], key: str) -> tuple[str, ...]:
    value = entry.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadValue(f"{key} is {shown(value)}, not a list of names")
    return tuple(value)


def _extra(entry: dict[str, Any], known: set[str]) -> dict[str, Any]:
    return {key: value for key, value in entry.items() if key not in known}


def _guarded(
    state: SeedState, path: str, label: str, entry: Any, read: Callable[[dict[str, Any]], None]
) -> None:
    """Run read(entry), noting the entry as skipped when it is not an object or a value in it
    is wrong."""
    if not isinstance(entry, dict):
        state.notes.append(Note(path, label, f"{shown(entry)} is not an object"))
        return
    name = entry.get("id")
    if isinstance(name, str) and name.strip() and len(name) <= ID_LIMIT:
        label = name
    try:
        read(entry)
    except (BadValue, InvalidInput) as error:
        state.notes.append(Note(path, label, str(error)))


# -- servers -------------------------------------------------------------------------------------


def _servers(documents: Mapping[str, Any], state: SeedState) -> None:
    folders = sorted(
        {
            match.group(1)
            for path in documents
            if (match := layout.HEARTBEAT.fullmatch(path) or layout.STATUS.fullmatch(path))
        }
    )
    for folder in folders:
        heartbeat_path, status_path = f"{folder}/heartbeat.json", f"{folder}/status.json"
        heartbeat = _server_file(heartbeat_path, documents.get(heartbeat_path), state)
        status = _server_file(status_path, documents.get(status_path), state)
        if heartbeat is None and status is None:
            continue
        try:
            name = validation.server_name(folder)
        except InvalidInput as error:
            state.notes.append(Note(folder, None, str(error)))
            continue
        state.servers.append(_server(name, heartbeat or {}, status or {}, state, folder))


def _server_file(path: str, document: Any, state: SeedState) -> dict[str, Any] | None:
    """One server file's object, or None (absent, unreadable, or a value of the wrong type)."""
    if document is None:
        return None
    if not isinstance(document, dict):
        state.notes.append(Note(path, None, "not a JSON object"))
        return None
    try:
        _text(document, "server", required=False)
        optional_time(document.get("timestamp"), what="timestamp")
        system = document.get("system")
        if system is not None and not isinstance(system, dict):
            raise BadValue(f"system is {shown(system)}, not an object")
        for key in ("cpu_usage", "memory_used_gb", "disk_free_gb"):
            _number(system or {}, key, high=1e6)
        _number(document, "uptime_seconds", high=1e10)
        capabilities = document.get("capabilities")
        if capabilities is not None and not isinstance(capabilities, dict):
            raise BadValue(f"capabilities is {shown(capabilities)}, not an object")
        _number(capabilities or {}, "memory_gb", high=1e6)
    except BadValue as error:
        state.notes.append(Note(path, str(document.get("server") or path), str(error)))
        return None
    return document


def _server(
    name: str, heartbeat: dict[str, Any], status: dict[str, Any], state: SeedState, folder: str
) -> SeedServer:
    beat = optional_time(heartbeat.get("timestamp"), what="timestamp")
    reported = optional_time(status.get("timestamp"), what="timestamp")
    seen = [at for at in (beat, reported) if at is not None]
    older, newer = (status, heartbeat) if (reported or 0) <= (beat or 0) else (heartbeat, status)
    system = {**(older.get("system") or {}), **(newer.get("system") or {})}
    capabilities = status.get("capabilities") or {}
    metrics: dict[str, Any] = {}
    if system.get("cpu_usage") is not None:
        metrics["cpu_percent"] = min(float(system["cpu_usage"]), 100.0)
    if system.get("memory_used_gb") is not None:
        metrics["memory_used_bytes"] = int(system["memory_used_gb"] * GIB)
    if capabilities.get("memory_gb") is not None:
        metrics["memory_total_bytes"] = int(capabilities["memory_gb"] * GIB)
    if system.get("disk_free_gb") is not None:
        metrics["disk_free_bytes"] = int(system["disk_free_gb"] * GIB)
    uptime = heartbeat.get("uptime_seconds", status.get("uptime_seconds"))
    if uptime is not None:
        metrics["uptime_seconds"] = float(uptime)
    attributes = {
        key: value
        for key, value in {**heartbeat, **status}.items()
        if key not in ("server", "timestamp", "system", "uptime_seconds", "healthy")
    }
    if heartbeat.get("healthy") is not None:
        attributes["healthy"] = heartbeat["healthy"]
    return SeedServer(
        name=name,
        labels=_capability_labels(capabilities, folder, state),
        first_seen_at=min(seen) if seen else None,
        last_heartbeat_at=beat if beat is not None else reported,
        metrics=metrics,
        attributes=attributes,
    )


def _capability_labels(
    capabilities: dict[str, Any], folder: str, state: SeedState
) -> tuple[str, ...]:
    """cores=32, memory_gb=128, java=17, maven=3.x, profile=<each build profile>."""
    wanted = [
        f"{label}={capabilities[key]}"
        for key, label in _CAPABILITY_LABELS.items()
        if isinstance(capabilities.get(key), (str, int, float))
        and not isinstance(capabilities.get(key), bool)
    ]
    profiles = capabilities.get("build_profiles")
    if isinstance(profiles, list):
        wanted += [f"profile={profile}" for profile in profiles if isinstance(profile, str)]
    plain = capabilities.get("labels")  # what export writes of labels the seed has no key for
    if isinstance(plain, list):
        wanted += [label for label in plain if isinstance(label, str)]
    kept: list[str] = []
    for label in wanted:
        try:
            kept += validation.server_labels([label])
        except InvalidInput as error:
            state.notes.append(Note(f"{folder}/status.json", folder, str(error), skipped=False))
    return tuple(sorted(set(kept)))


# -- jobs ----------------------------------------------------------------------------------------


def _jobs(document: Any, state: SeedState) -> None:
    if document is None:
        return
    seen: set[str] = set()
    for label, entry in _entries(layout.JOBS, document, "jobs", state):

        def read(entry: dict[str, Any]) -> None:
            job = _job(entry)
            if job.seed_id in seen:
                raise BadValue("its id is used by an earlier job of the file")
            seen.add(job.seed_id)
            state.jobs.append(job)

        _guarded(state, layout.JOBS, label, entry, read)


def _job(entry: dict[str, Any]) -> SeedJob:
    seed_id = _seed_id(entry)
    branch, commit = entry.get("branch"), entry.get("commit")
    if not branch or not commit:
        raise BadValue(
            "it names no branch and commit (buildcoord builds a commit of a branch)"
            if not branch and not commit
            else f"it names no {'branch' if not branch else 'commit'}"
        )
    branch = validation.branch_name(_text(entry, "branch") or "")
    commit = validation.commit_id(_text(entry, "commit") or "")
    attributes = _extra(entry, _JOB_FIELDS)
    priority = entry.get("priority", 5)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise BadValue(f"priority is {shown(priority)}, not a whole number")
    if not 1 <= priority <= 10:
        attributes["priority"] = priority
        priority = min(max(priority, 1), 10)
    seed_status = _text(entry, "status") or ""
    status, reason = job_status(seed_status, entry.get("assigned_to"))
    if status != seed_status:
        attributes["status"] = seed_status
    server = _text(entry, "assigned_to", required=False)
    if server is not None:
        validation.server_name(server, what="assigned_to")
    created = optional_time(entry.get("created_at"), what="created_at")
    started = optional_time(entry.get("started_at"), what="started_at")
    finished = optional_time(entry.get("completed_at"), what="completed_at")
    duration = _number(entry, "duration_seconds", high=366 * 86400)
    first = created if created is not None else started if started is not None else finished
    if first is None:
        raise BadValue("it has no created_at, started_at or completed_at")
    if status == "queued":
        started = finished = duration = None
    elif finished is None:
        finished = started if started is not None else first
    if duration is None and started is not None and finished is not None and finished >= started:
        duration = finished - started
    return SeedJob(
        seed_id=seed_id,
        branch=branch,
        commit=commit,
        priority=priority,
        status=status,
        server=server,
        created_at=first,
        started_at=started,
        finished_at=finished,
        duration=duration,
        reason=reason,
        depends_on=_names(entry, "dependencies"),
        attributes=attributes,
    )


def job_status(seed_status: str, assigned_to: object) -> tuple[str, str | None]:
    """Our status for a seed job status, and the reason when it is not the seed's own."""
    found = JOB_STATUSES.get(seed_status.strip().lower())
    if found is not None:
        return found, None
    if seed_status.strip().lower() == "running":
        where = f" on {assigned_to}" if isinstance(assigned_to, str) else ""
        return "cancelled", (
            f"running under the seed{where} when imported: buildcoord cannot follow that "
            "build (retry it to build it here)"
        )
    return "cancelled", f"the seed's status {seed_status!r} is not one buildcoord knows"


# -- locks ---------------------------------------------------------------------------------------


def _locks(document: Any, state: SeedState) -> None:
    if document is None:
        return
    if not isinstance(document, dict) or not isinstance(document.get("locks"), dict):
        state.notes.append(Note(layout.LOCKS, None, 'not of the seed\'s shape {"locks": {...}}'))
        return
    for name, entry in document["locks"].items():

        def read(entry: dict[str, Any], name: str = name) -> None:
            if not isinstance(name, str) or not name or len(name) > validation.LOCK_NAME_LIMIT:
                raise BadValue(f"its name is not 1 to {validation.LOCK_NAME_LIMIT} characters")
            holder = _text(entry, "locked_by", required=False)
            if holder is not None:
                validation.server_name(holder, what="locked_by")
            state.locks.append(
                SeedLock(
                    name=name,
                    holder=holder,
                    acquired_at=optional_time(entry.get("locked_at"), what="locked_at"),
                    expires_at=optional_time(entry.get("expires_at"), what="expires_at"),
                    attributes=_extra(entry, {"locked_by", "locked_at", "expires_at"}),
                )
            )

        _guarded(state, layout.LOCKS, str(name)[:ID_LIMIT], entry, read)


# -- messages ------------------------------------------------------------------------------------


def _messages(documents: Mapping[str, Any], state: SeedState) -> None:
    seen: set[str] = set()
    sources = [(layout.MESSAGES, False)] + [
        (path, True) for path in documents if layout.ARCHIVE.fullmatch(path)
    ]
    for path, archived in sources:
        document = documents.get(path)
        if document is None:
            continue
        if isinstance(document, list) and not archived:
            state.notes.append(
                Note(
                    path,
                    None,
                    "a bare list, as the seed's archive_old_messages.sh leaves it: read",
                    skipped=False,
                )
            )
        for label, entry in _entries(path, document, "messages", state, bare_list=True):

            def read(entry: dict[str, Any], path: str = path, archived: bool = archived) -> None:
                message = _message(entry, path, archived, state)
                if message.seed_id in seen:
                    raise BadValue("its id is used by an earlier message")
                seen.add(message.seed_id)
                state.messages.append(message)

            _guarded(state, path, label, entry, read)


def _message(entry: dict[str, Any], path: str, archived: bool, state: SeedState) -> SeedMessage:
    seed_id = _seed_id(entry)
    sender = validation.server_name(_text(entry, "from") or "", what="from")
    recipient = _text(entry, "to") or ""
    if recipient != BROADCAST:
        validation.server_name(recipient, what="to")
    created = seed_time(entry.get("timestamp"), what="timestamp")
    attributes = _extra(entry, _MESSAGE_FIELDS)
    kind = _text(entry, "type", required=False)
    if kind not in MESSAGE_TYPES:
        attributes["type"] = kind
        state.notes.append(
            Note(
                path,
                seed_id,
                "no type: imported as info"
                if kind is None
                else f"type {shown(kind)}: imported as info",
                skipped=False,
            )
        )
        kind = "info"
    subject = _text(entry, "subject") or ""
    if len(subject) > validation.SUBJECT_LIMIT or not subject.strip():
        attributes["subject"] = subject
        subject = _cut(subject, validation.SUBJECT_LIMIT) if subject.strip() else "(no subject)"
        state.notes.append(
            Note(
                path,
                seed_id,
                f"subject cut to {validation.SUBJECT_LIMIT} characters (the "
                "whole is kept with the message's seed record)",
                skipped=False,
            )
        )
    body = _text(entry, "body", required=False) or ""
    if len(body) > validation.MESSAGE_BODY_LIMIT:
        attributes["body"] = body
        body = _cut(body, validation.MESSAGE_BODY_LIMIT)
        state.notes.append(
            Note(
                path,
                seed_id,
                f"body cut to {validation.MESSAGE_BODY_LIMIT:,} characters",
                skipped=False,
            )
        )
    read = _flag(entry, "read")
    if read is None:
        state.notes.append(
            Note(
                path,
                seed_id,
                "no read field: imported unread (as the seed's page counted it)",
                skipped=False,
            )
        )
    acknowledged = _names(entry, "acknowledged_by")
    for name in acknowledged:
        validation.server_name(name, what="acknowledged_by")
    return SeedMessage(
        seed_id=seed_id,
        sender=sender,
        recipient=recipient,
        type=kind,
        subject=subject,
        body=body,
        created_at=created,
        ack_required=bool(_flag(entry, "ack_required")),
        read=bool(read),
        acknowledged_by=acknowledged,
        archived=archived,
        attributes=attributes,
    )


def _cut(text: str, limit: int) -> str:
    return text[: limit - 1] + "…"


# -- logs and manifests --------------------------------------------------------------------------


def _log_or_manifest(path: str, document: Any, state: SeedState) -> None:
    """A structured log (log_id, job_id, events), or the artifact list some servers left in
    their logs folder (job_id, artifacts)."""
    if isinstance(document, dict) and isinstance(document.get("artifacts"), list):
        _manifest(path, document, state)
        return
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        state.notes.append(Note(path, None, "not a structured build log (no events list)"))
        return
    try:
        job = _seed_id(document, "job_id")
        entries = []
        for event in document["events"]:
            if not isinstance(event, dict):
                raise BadValue(f"an event is {shown(event)}, not an object")
            level = event.get("level")
            message = _text(event, "message") or ""
            details = _text(event, "details", required=False)
            entries.append(
                SeedLogEntry(
                    at=seed_time(event.get("timestamp"), what="an event's timestamp"),
                    level=level if level in LOG_LEVELS else "info",
                    message=message[:10_000],
                    details=details or None,
                )
            )
    except BadValue as error:
        state.notes.append(Note(path, None, str(error)))
        return
    state.logs.append(SeedLog(path=path, job_seed_id=job, entries=tuple(entries)))


def _manifest(path: str, document: Any, state: SeedState) -> None:
    if not isinstance(document, dict) or not isinstance(document.get("artifacts"), list):
        state.notes.append(Note(path, None, "not an artifact manifest (no artifacts list)"))
        return
    try:
        job = _seed_id(document, "job_id")
        server = _text(document, "server", required=False)
        root = _text(document, "build_dir", required=False) or _text(
            document, "artifacts_dir", required=False
        )
        created = optional_time(
            document.get("created_at", document.get("finished_at")), what="created_at"
        )
        artifacts = tuple(_artifact(item, root) for item in document["artifacts"])
    except (BadValue, InvalidInput) as error:
        state.notes.append(Note(path, None, str(error)))
        return
    state.manifests.append(
        SeedManifest(
            path=path,
            job_seed_id=job,
            server=server,
            root=root or "",
            created_at=created,
            artifacts=artifacts,
        )
    )


def _artifact(item: Any, root: str | None) -> SeedArtifact:
    """An entry of artifact_manager.sh's manifest (name, path, size_bytes, checksums) or of
    the logs folder's lists (file, size, sha256)."""
    if not isinstance(item, dict):
        raise BadValue(f"an artifact is {shown(item)}, not an object")
    name = _text(item, "name", required=False) or _text(item, "file") or ""
    where = _text(item, "path", required=False)
    if where and root and where.startswith(root.rstrip("/") + "/"):
        name = where[len(root.rstrip("/")) + 1 :]
    if not name or len(name) > validation.PATH_LIMIT or name.startswith("/") or ".." in name:
        raise BadValue(f"an artifact's name {shown(name)} is not a relative path")
    size = _number(item, "size_bytes", high=2**62)
    if size is None:
        size = _number(item, "size", high=2**62)
    sums = item.get("checksums")
    if sums is not None and not isinstance(sums, dict):
        raise BadValue(f"checksums of {name} is {shown(sums)}, not an object")
    found = {
        **(sums or {}),
        **{key: item[key] for key in ("md5", "sha256", "sha512") if key in item},
    }
    digests = {}
    for kind in ("md5", "sha256", "sha512"):
        value = found.get(kind)
        if value is not None:
            if not isinstance(value, str):
                raise BadValue(f"{kind} of {name} is {shown(value)}, not text")
            digests[kind] = validation.digest(value.lower(), name=kind, where=name)
    return SeedArtifact(
        path=name,
        size=int(size or 0),
        md5=digests.get("md5"),
        sha256=digests.get("sha256"),
        sha512=digests.get("sha512"),
    )


# -- the health dashboard's history --------------------------------------------------------------


def _samples(document: Any, state: SeedState) -> None:
    if document is None:
        return
    if not isinstance(document, dict) or not isinstance(document.get("history"), list):
        state.notes.append(Note(layout.HEALTH, None, "has no history list: no trend samples"))
        return
    aggregate = document.get("aggregate")
    servers = document.get("servers")
    total = None
    if isinstance(aggregate, dict):
        total = aggregate.get("servers_total")
    if not isinstance(total, (int, float)) or isinstance(total, bool) or not 0 <= total <= 1e6:
        total = len(servers) if isinstance(servers, list) else 0
    for index, entry in enumerate(document["history"]):

        def read(entry: dict[str, Any]) -> None:
            state.samples.append(
                SeedSample(
                    at=seed_time(entry.get("timestamp"), what="timestamp"),
                    servers_online=_number(entry, "servers_online", high=1e6) or 0.0,
                    servers_total=float(total),
                    queued=_number(entry, "queued_jobs", high=1e9) or 0.0,
                )
            )

        _guarded(state, layout.HEALTH, f"history #{index + 1}", entry, read)
