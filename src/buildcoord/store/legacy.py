"""A seed installation's state brought in, in one transaction, once per entry.

``legacy_records`` keeps, per seed entry, the row it became: a repeated import adds only what
is new (and marks read or archived what the seed has since), the seed's ids find their jobs,
and export writes them back under the ids the seed's readers know.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from buildcoord.legacy.records import (
    Note,
    SeedJob,
    SeedLock,
    SeedMessage,
    SeedServer,
    SeedState,
)
from buildcoord.models import DURATION_BUCKETS, EVERYONE, LegacyImport, LegacyRecord
from buildcoord.store.engine import Driver, read_transaction, write_transaction
from buildcoord.store.events import append_event
from buildcoord.store.history import ADD_TO_TOTALS, BRANCH_COMMAND, RECORD
from buildcoord.store.history import build_key as key_of
from buildcoord.store.schema import (
    artifact_sets,
    artifacts,
    fleet_samples,
    job_dependencies,
    job_logs,
    jobs,
    legacy_records,
    lock_holders,
    locks,
    message_acks,
    message_reads,
    messages,
    servers,
    tokens,
)
from buildcoord.store.timestamps import from_epoch

KINDS = ("server", "job", "lock", "message", "log", "manifest", "sample")
RankOf = Callable[[int, float], float]


class _DryRun(Exception):
    """Raised at the end of a dry run's transaction to roll it back."""


@dataclass
class _Import:
    """One import's running tally."""

    now: float
    known: dict[str, dict[str, str]]
    """kind -> legacy id -> local id, as recorded before and as added now."""
    added: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    unchanged: Counter[str] = field(default_factory=Counter)
    notes: list[Note] = field(default_factory=list)
    servers_added: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)

    def record(self, kind: str, legacy_id: str, local_id: str, attributes: dict[str, Any]) -> None:
        self.known.setdefault(kind, {})[legacy_id] = local_id
        self.records.append(
            {
                "kind": kind,
                "legacy_id": legacy_id,
                "local_id": local_id,
                "attributes": json.dumps(attributes, sort_keys=True, ensure_ascii=False),
                "imported_at": self.now,
            }
        )


class LegacyStore:
    """SQL for legacy_records and the import that fills it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def import_state(
        self,
        state: SeedState,
        *,
        token_hashes: dict[str, str],
        rank_of: RankOf,
        max_attempts: int,
        sample_horizons: tuple[float, float],
        dry_run: bool,
        now: float,
        actor: str,
    ) -> tuple[LegacyImport, list[str]]:
        """Store what ``state`` holds that is not stored yet, all in one transaction (a dry
        run rolls it back); the outcome and the names of the servers added.

        ``token_hashes``: an agent token's hash for each server that may be added.
        ``sample_horizons``: (oldest minute sample kept, oldest hour sample kept), epoch.
        """
        tally = _Import(now=now, known={})
        try:
            with write_transaction(self.engine) as conn:
                tally.known = _known(conn)
                _servers(conn, state.servers, token_hashes, tally)
                _jobs(conn, state.jobs, rank_of, max_attempts, tally)
                _locks(conn, state.locks, tally)
                _messages(conn, state.messages, tally)
                _logs(conn, state, tally)
                _manifests(conn, state, tally)
                _samples(conn, state, sample_horizons, tally)
                if tally.records:
                    conn.execute(insert(legacy_records), tally.records)
                append_event(  # an import that found nothing new is in the audit trail too
                    conn,
                    at=now,
                    actor=actor,
                    kind="legacy.imported",
                    subject="legacy:import",
                    after={"added": dict(tally.added), "updated": dict(tally.updated)},
                )
                if dry_run:
                    raise _DryRun
        except _DryRun:
            pass
        outcome = LegacyImport(
            dry_run=dry_run,
            files=state.files,
            added={kind: tally.added[kind] for kind in KINDS},
            updated={kind: tally.updated[kind] for kind in KINDS},
            unchanged={kind: tally.unchanged[kind] for kind in KINDS},
            notes=(*state.notes, *tally.notes),
            tokens={},
        )
        return outcome, tally.servers_added

    def find_record(self, kind: str, legacy_id: str) -> LegacyRecord | None:
        """The record of a seed entry by its seed id, or None."""
        with read_transaction(self.engine) as conn:
            row = conn.execute(
                select(legacy_records).where(
                    legacy_records.c.kind == kind, legacy_records.c.legacy_id == legacy_id
                )
            ).first()
        return None if row is None else _record(row)

    def record_of_local(self, kind: str, local_id: str) -> LegacyRecord | None:
        """The record of the seed entry a row (a job's id, a server's name) came from."""
        with read_transaction(self.engine) as conn:
            row = conn.execute(
                select(legacy_records)
                .where(legacy_records.c.kind == kind, legacy_records.c.local_id == local_id)
                .limit(1)
            ).first()
        return None if row is None else _record(row)

    def records_of(self, kind: str) -> dict[str, LegacyRecord]:
        """Every record of a kind, by local id."""
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(legacy_records).where(legacy_records.c.kind == kind)
            ).fetchall()
        return {row.local_id: _record(row) for row in rows}


def _record(row: Any) -> LegacyRecord:
    return LegacyRecord(
        kind=row.kind,
        legacy_id=row.legacy_id,
        local_id=row.local_id,
        attributes=json.loads(row.attributes),
        imported_at=from_epoch(row.imported_at),
    )


def _known(conn: Connection) -> dict[str, dict[str, str]]:
    known: dict[str, dict[str, str]] = {}
    rows = conn.execute(
        select(legacy_records.c.kind, legacy_records.c.legacy_id, legacy_records.c.local_id)
    )
    for kind, legacy_id, local_id in rows:
        known.setdefault(kind, {})[legacy_id] = local_id
    return known


# -- servers -------------------------------------------------------------------------------------


def _servers(
    conn: Connection, found: Iterable[SeedServer], token_hashes: dict[str, str], tally: _Import
) -> None:
    existing = {
        row.name: row
        for row in conn.execute(
            select(servers.c.name, servers.c.last_heartbeat_at, servers.c.metrics)
        )
    }
    for server in found:
        here = existing.get(server.name)
        if here is None:
            conn.execute(
                insert(servers).values(
                    name=server.name,
                    labels=",".join(server.labels),
                    reported_labels="",
                    registered_at=server.first_seen_at or tally.now,
                    last_heartbeat_at=server.last_heartbeat_at,
                    recorded_status="offline",
                    metrics=json.dumps(server.metrics, sort_keys=True),
                )
            )
            conn.execute(
                insert(tokens).values(
                    name=f"agent {server.name}",
                    kind="agent",
                    server=server.name,
                    token_hash=token_hashes[server.name],
                    created_at=tally.now,
                )
            )
            tally.added["server"] += 1
            tally.servers_added.append(server.name)
        elif (
            server.last_heartbeat_at is not None
            and server.name in tally.known.get("server", {})
            and server.last_heartbeat_at > (here.last_heartbeat_at or 0.0)
        ):
            # A seed still running beside us saw the server since: its figures are newer.
            conn.execute(
                update(servers)
                .where(servers.c.name == server.name)
                .values(
                    last_heartbeat_at=server.last_heartbeat_at,
                    metrics=json.dumps(server.metrics, sort_keys=True),
                )
            )
            tally.updated["server"] += 1
        else:
            tally.unchanged["server"] += 1
        if server.name not in tally.known.get("server", {}):
            tally.record("server", server.name, server.name, server.attributes)


# -- jobs ----------------------------------------------------------------------------------------


def _jobs(
    conn: Connection,
    found: list[SeedJob],
    rank_of: RankOf,
    max_attempts: int,
    tally: _Import,
) -> None:
    known = tally.known.setdefault("job", {})
    waiting = []
    for job in found:
        if job.seed_id in known:
            tally.unchanged["job"] += 1
        elif (ours := _exported_here(conn, jobs, _EXPORTED_JOB, job.seed_id)) is not None:
            # Written by our own export (job_<created epoch>_<id>): it is that job.
            known[job.seed_id] = str(ours)
            tally.unchanged["job"] += 1
        else:
            waiting.append(job)
    # Dependencies first: a job is stored once every job it depends on is.
    seeds = {job.seed_id for job in waiting}
    while waiting:
        ready = [job for job in waiting if all(dep in known for dep in job.depends_on)]
        if not ready:
            break
        for job in ready:
            _insert_job(conn, job, rank_of, max_attempts, tally)
        waiting = [job for job in waiting if job.seed_id not in known]
    for job in waiting:
        missing = [dep for dep in job.depends_on if dep not in known]
        within = [dep for dep in missing if dep in seeds]
        reason = (
            f"its dependencies {', '.join(within)} form a cycle or wait on one"
            if within
            else f"it depends on {', '.join(missing)}, which is neither in the file nor "
            "imported before"
        )
        tally.notes.append(Note("coordination/jobs.json", job.seed_id, reason))


def _insert_job(
    conn: Connection, job: SeedJob, rank_of: RankOf, max_attempts: int, tally: _Import
) -> None:
    known = tally.known["job"]
    deps = tuple(int(known[dep]) for dep in job.depends_on)
    dep_rows = (
        conn.execute(
            select(jobs.c.id, jobs.c.status, jobs.c.blocked_by, jobs.c.blocked_reason).where(
                jobs.c.id.in_(deps)
            )
        ).fetchall()
        if deps
        else []
    )
    status, blocked_reason, blocked_by = job.status, None, None
    if status == "queued":
        for dep_id, dep_status, dep_blocked_by, dep_reason in sorted(dep_rows):
            if dep_status in ("failed", "cancelled"):
                status, blocked_reason, blocked_by = (
                    "blocked",
                    f"dependency #{dep_id} {dep_status}",
                    dep_id,
                )
                break
            if dep_status == "blocked":
                status = "blocked"
                blocked_reason = f"dependency #{dep_id} is blocked: {dep_reason}"
                blocked_by = dep_blocked_by
                break
    pending = sum(1 for row in dep_rows if row[1] != "succeeded")
    finished = job.status in ("succeeded", "failed", "cancelled")
    local_id = conn.execute(
        insert(jobs)
        .values(
            branch=job.branch,
            commit=job.commit,
            priority=job.priority,
            status=status,
            attempt=1,
            max_attempts=max_attempts,
            labels="",
            depends_on=",".join(str(dep) for dep in deps),
            pending_deps=pending,
            rank=rank_of(job.priority, job.created_at),
            server=job.server if finished else None,
            fencing_token=0,
            lease_expires_at=None,
            blocked_reason=blocked_reason,
            blocked_by=blocked_by,
            reason=job.reason,
            created_at=job.created_at,
            queued_at=job.created_at,
            started_at=job.started_at if finished else None,
            finished_at=job.finished_at if finished else None,
            exit_code=0 if job.status == "succeeded" else None,
            duration=job.duration if finished else None,
            trigger=None,
        )
        .returning(jobs.c.id)
    ).scalar_one()
    if deps:
        conn.execute(
            insert(job_dependencies), [{"job_id": local_id, "depends_on_id": dep} for dep in deps]
        )
    if finished and job.started_at is not None and job.finished_at is not None:
        _record_build(conn, job, int(local_id))
    tally.added["job"] += 1
    tally.record("job", job.seed_id, str(local_id), job.attributes)


def _record_build(conn: Connection, job: SeedJob, job_id: int) -> None:
    """The finished job's build history row and totals, as a build finished here gets them."""
    assert job.started_at is not None
    assert job.finished_at is not None
    db = Driver.within(conn)
    found = db.run(BRANCH_COMMAND, (job.branch,)).fetchone()
    duration = max(0.0, job.duration if job.duration is not None else 0.0)
    start = from_epoch(job.started_at)
    values = (
        job_id,
        1,
        job.branch,
        key_of(job.branch, None if found is None else found[0]),
        job.server,
        job.commit,
        job.created_at,
        job.started_at,
        job.finished_at,
        duration,
        max(0.0, job.started_at - job.created_at),
        job.status,
        start.hour,
        start.weekday(),
        None,
    )
    if db.run(RECORD, values).fetchone() is not None:
        flags = [1 if duration <= bound else 0 for bound in DURATION_BUCKETS]
        db.run(ADD_TO_TOTALS, (job.branch, job.status, duration, *flags))


# -- locks ---------------------------------------------------------------------------------------


def _locks(conn: Connection, found: Iterable[SeedLock], tally: _Import) -> None:
    here = set(conn.execute(select(locks.c.name)).scalars())
    for lock in found:
        if lock.name in tally.known.get("lock", {}):
            tally.unchanged["lock"] += 1
            continue
        if lock.name in here:
            tally.unchanged["lock"] += 1
        else:
            held = (
                lock.holder is not None
                and lock.expires_at is not None
                and lock.expires_at > tally.now
            )
            conn.execute(
                insert(locks).values(name=lock.name, capacity=1, last_token=1 if held else 0)
            )
            if held:
                assert lock.holder is not None
                assert lock.expires_at is not None
                conn.execute(
                    insert(lock_holders).values(
                        name=lock.name,
                        holder=lock.holder,
                        token=1,
                        acquired_at=lock.acquired_at or tally.now,
                        expires_at=lock.expires_at,
                    )
                )
            elif lock.holder is not None:
                tally.notes.append(
                    Note(
                        "coordination/locks.json",
                        lock.name,
                        f"held by {lock.holder} until a time now past: imported free",
                        skipped=False,
                    )
                )
            tally.added["lock"] += 1
        tally.record("lock", lock.name, lock.name, lock.attributes)


# -- messages ------------------------------------------------------------------------------------


def _messages(conn: Connection, found: Iterable[SeedMessage], tally: _Import) -> None:
    known = tally.known.setdefault("message", {})
    # Of every message here: whether it is archived, and marked read for everyone (one read).
    marked = select(message_reads.c.message_id).where(message_reads.c.reader == EVERYONE)
    here = {
        row.id: (row.archived_at is not None, row.read)
        for row in conn.execute(
            select(messages.c.id, messages.c.archived_at, messages.c.id.in_(marked).label("read"))
        )
    }
    for message in found:
        local = known.get(message.seed_id)
        if local is None:
            ours = _exported_here(conn, messages, _EXPORTED_MESSAGE, message.seed_id)
            local = None if ours is None else str(ours)
        if local is not None:
            if _catch_up_message(conn, int(local), message, here, tally.now):
                tally.updated["message"] += 1
            else:
                tally.unchanged["message"] += 1
            continue
        local_id = conn.execute(
            insert(messages)
            .values(
                sender=message.sender,
                recipient=message.recipient,
                type=message.type,
                subject=message.subject,
                body=message.body,
                created_at=message.created_at,
                ack_required=message.ack_required,
                archived_at=tally.now if message.archived else None,
            )
            .returning(messages.c.id)
        ).scalar_one()
        if message.read:
            conn.execute(
                insert(message_reads).values(
                    message_id=local_id, reader=EVERYONE, read_at=message.created_at
                )
            )
        if message.acknowledged_by:
            conn.execute(
                insert(message_acks),
                [
                    {"message_id": local_id, "server": name, "acked_at": message.created_at}
                    for name in sorted(set(message.acknowledged_by))
                ],
            )
        tally.added["message"] += 1
        tally.record("message", message.seed_id, str(local_id), message.attributes)


_EXPORTED_JOB = re.compile(r"job_([0-9]{1,12})_([0-9]{1,18})")
_EXPORTED_MESSAGE = re.compile(r"msg_([0-9]{1,12})_([0-9]{1,18})")


def _exported_here(conn: Connection, table: Any, form: re.Pattern[str], seed_id: str) -> int | None:
    """The id of the row here that our export wrote under ``seed_id`` (``job_<created epoch>_
    <id>``, ``msg_<epoch>_<id>``), if there is one: a checkout that export writes to can be
    imported again without bringing buildcoord's own jobs and messages in twice."""
    match = form.fullmatch(seed_id)
    if match is None or int(match.group(2)) > 2**62:
        return None
    epoch, local = int(match.group(1)), int(match.group(2))
    row = conn.execute(select(table.c.created_at).where(table.c.id == local)).first()
    if row is None or int(row.created_at) != epoch:
        return None
    return local


def _catch_up_message(
    conn: Connection,
    local_id: int,
    message: SeedMessage,
    here: dict[int, tuple[bool, bool]],
    now: float,
) -> bool:
    """What the seed did to a message since it was imported: read it, archived it."""
    if local_id not in here:  # removed here since: left so
        return False
    archived, read = here[local_id]
    changed = False
    if message.read and not read:
        conn.execute(
            insert(message_reads).values(message_id=local_id, reader=EVERYONE, read_at=now)
        )
        changed = True
    if message.archived and not archived:
        conn.execute(update(messages).where(messages.c.id == local_id).values(archived_at=now))
        changed = True
    return changed


# -- logs, manifests, samples --------------------------------------------------------------------


def _job_of(conn: Connection, seed_id: str, tally: _Import) -> Any:
    local = tally.known.get("job", {}).get(seed_id)
    if local is None:
        return None
    return conn.execute(
        select(jobs.c.id, jobs.c.branch, jobs.c.commit, jobs.c.status, jobs.c.server).where(
            jobs.c.id == int(local)
        )
    ).first()


def _logs(conn: Connection, state: SeedState, tally: _Import) -> None:
    for log in state.logs:
        if log.path in tally.known.get("log", {}):
            tally.unchanged["log"] += 1
            continue
        job = _job_of(conn, log.job_seed_id, tally)
        if job is None:
            tally.notes.append(Note(log.path, log.job_seed_id, _no_job(log.job_seed_id)))
            continue
        if log.entries:
            conn.execute(
                insert(job_logs),
                [
                    {
                        "job_id": job.id,
                        "attempt": 1,
                        "at": entry.at,
                        "kind": "event",
                        "level": entry.level,
                        "message": entry.message,
                        "details": None if entry.details is None else json.dumps(entry.details),
                    }
                    for entry in log.entries
                ],
            )
        tally.added["log"] += 1
        tally.record("log", log.path, str(job.id), {"job": log.job_seed_id})


def _manifests(conn: Connection, state: SeedState, tally: _Import) -> None:
    for manifest in state.manifests:
        if manifest.path in tally.known.get("manifest", {}):
            tally.unchanged["manifest"] += 1
            continue
        job = _job_of(conn, manifest.job_seed_id, tally)
        if job is None:
            tally.notes.append(
                Note(manifest.path, manifest.job_seed_id, _no_job(manifest.job_seed_id))
            )
            continue
        if conn.execute(
            select(artifact_sets.c.job_id).where(artifact_sets.c.job_id == job.id)
        ).first():
            tally.notes.append(
                Note(manifest.path, manifest.job_seed_id, f"job {job.id} has a manifest already")
            )
            continue
        server = manifest.server or job.server or "unknown"
        unique = {artifact.path: artifact for artifact in manifest.artifacts}
        if unique:
            conn.execute(
                insert(artifacts),
                [
                    {
                        "job_id": job.id,
                        "path": artifact.path,
                        "server": server,
                        "kind": "file",
                        "size": artifact.size,
                        "md5": artifact.md5,
                        "sha256": artifact.sha256,
                        "sha512": artifact.sha512,
                        "link_target": None,
                    }
                    for artifact in unique.values()
                ],
            )
        conn.execute(
            insert(artifact_sets).values(
                job_id=job.id,
                server=server,
                branch=job.branch,
                commit=job.commit,
                root=manifest.root,
                file_count=len(unique),
                total_bytes=sum(artifact.size for artifact in unique.values()),
                succeeded=job.status == "succeeded",
                created_at=manifest.created_at or tally.now,
                pinned=False,
            )
        )
        tally.added["manifest"] += 1
        tally.record("manifest", manifest.path, str(job.id), {"job": manifest.job_seed_id})


def _no_job(seed_id: str) -> str:
    return f"its job {seed_id} is not among the jobs imported (not in jobs.json, or skipped)"


def _samples(
    conn: Connection, state: SeedState, horizons: tuple[float, float], tally: _Import
) -> None:
    """The health dashboard's history as trend samples: an hour sample per hour within the
    30 days trends keep (the hour's entries averaged), a minute sample per entry within the
    day; older entries are beyond what trends show."""
    minutes_from, hours_from = horizons
    kept = [sample for sample in state.samples if sample.at >= hours_from]
    old = len(state.samples) - len(kept)
    if old:
        tally.notes.append(
            Note(
                "shared/health_dashboard.json",
                None,
                f"{old} history entries are older than the 30 days trends keep: not imported",
            )
        )
    buckets: dict[tuple[str, float], list[Any]] = {}
    for sample in kept:
        buckets.setdefault(("hour", sample.at - sample.at % 3600), []).append(sample)
        if sample.at >= minutes_from:
            buckets.setdefault(("minute", sample.at - sample.at % 60), []).append(sample)
    rows = [(period, at, found) for (period, at), found in sorted(buckets.items())]
    for period, at, found in rows:
        exists = conn.execute(
            select(fleet_samples.c.at).where(
                fleet_samples.c.period == period, fleet_samples.c.at == at
            )
        ).first()
        if exists is not None:
            tally.unchanged["sample"] += 1
            continue
        count = len(found)
        conn.execute(
            insert(fleet_samples).values(
                period=period,
                at=at,
                servers_online=sum(item.servers_online for item in found) / count,
                servers_total=sum(item.servers_total for item in found) / count,
                queued=sum(item.queued for item in found) / count,
                running=0.0,
                blocked=0.0,
                passed=0,
                failed=0,
                duration_sum=0.0,
            )
        )
        tally.added["sample"] += 1
