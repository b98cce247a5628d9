"""Build servers: registration (with their agent token), heartbeats, recorded status flips.

A heartbeat is the most frequent write of an idle fleet (every agent, every few seconds), so
the usual one, from a server already recorded online whose reported labels did not change,
is one statement: a conditional UPDATE that returns the row and the server's running jobs.
Only when it matches no row does the heartbeat read the row and record what changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    String,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from buildcoord.errors import Conflict, NotFound
from buildcoord.store import job_queries as queries
from buildcoord.store.engine import (
    Driver,
    driver_read,
    driver_transaction,
    read_transaction,
    sql,
    write_transaction,
)
from buildcoord.store.events import append_event
from buildcoord.store.schema import jobs, servers, tokens


@dataclass(frozen=True, slots=True)
class ServerRecord:
    """A server row; the service derives its live status from the heartbeat age."""

    name: str
    labels: tuple[str, ...]
    reported_labels: tuple[str, ...]
    registered_at: float
    last_heartbeat_at: float | None
    recorded_status: str
    metrics: dict[str, Any] | None
    agent_version: str | None
    quarantined_at: float | None = None
    quarantine_reason: str | None = None


def _labels(text: str) -> tuple[str, ...]:
    return tuple(label for label in text.split(",") if label)


def _record(row: Row[Any] | _HeartbeatRow) -> ServerRecord:
    return ServerRecord(
        name=row.name,
        labels=_labels(row.labels),
        reported_labels=_labels(row.reported_labels),
        registered_at=row.registered_at,
        last_heartbeat_at=row.last_heartbeat_at,
        recorded_status=row.recorded_status,
        metrics=None if row.metrics is None else json.loads(row.metrics),
        agent_version=row.agent_version,
        quarantined_at=row.quarantined_at,
        quarantine_reason=row.quarantine_reason,
    )


def _running_ids(text: str | None) -> tuple[int, ...]:
    """The ids of _RUNNING_JOBS's comma-joined text, in id order."""
    return tuple(sorted(int(job_id) for job_id in text.split(","))) if text else ()


# The running jobs of the server a statement returns, as one comma-joined text (group_concat,
# string_agg): a heartbeat's answer says what the server runs without a second statement.
_RUNNING_JOBS = (
    select(func.aggregate_strings(cast(jobs.c.id, String), ","))
    .where(jobs.c.server == servers.c.name, jobs.c.status == "running")
    .correlate(servers)
    .scalar_subquery()
    .label("running_jobs")
)

# The usual heartbeat: a server recorded online, reporting no labels or the ones it reported
# before, has nothing to record but the heartbeat itself. No row: a status flip, new labels
# or no such server, which _record_changes handles. The steady load of an idle fleet (one a
# server every few seconds), so prebuilt SQL on the driver's cursor (engine.Driver): through
# Core it cost five times as much (250 µs of CPU instead of 48 on SQLite, one process,
# measured by timing Store.record_heartbeat in a loop). Returns _HeartbeatRow's columns.
_ONLINE_HEARTBEAT = sql(
    "UPDATE servers SET last_heartbeat_at = ?, metrics = ?, agent_version = ?"
    " WHERE name = ? AND recorded_status = 'online'"
    " AND reported_labels = COALESCE(CAST(? AS TEXT), reported_labels)"
    " RETURNING name, labels, reported_labels, registered_at, last_heartbeat_at,"
    " recorded_status, metrics, agent_version, quarantined_at, quarantine_reason,"
    " (SELECT group_concat(CAST(id AS TEXT), ',') FROM jobs"
    " WHERE jobs.server = servers.name AND jobs.status = 'running')",
    postgresql="UPDATE servers SET last_heartbeat_at = ?, metrics = ?, agent_version = ?"
    " WHERE name = ? AND recorded_status = 'online'"
    " AND reported_labels = COALESCE(CAST(? AS TEXT), reported_labels)"
    " RETURNING name, labels, reported_labels, registered_at, last_heartbeat_at,"
    " recorded_status, metrics, agent_version, quarantined_at, quarantine_reason,"
    " (SELECT string_agg(CAST(id AS TEXT), ',') FROM jobs"
    " WHERE jobs.server = servers.name AND jobs.status = 'running')",
)


_OFF_THEIR_STATUS = sql(
    "SELECT name, recorded_status, last_heartbeat_at FROM servers WHERE recorded_status <>"
    " CASE WHEN last_heartbeat_at IS NULL OR last_heartbeat_at <= ? THEN 'offline'"
    " WHEN last_heartbeat_at <= ? THEN 'stale' ELSE 'online' END ORDER BY name"
)


# Every server by name, as _HeartbeatRow's columns (no running jobs): the monitor reads the whole
# fleet each step, and through Core the rows cost four times as much (1,000 servers: 26 ms
# instead of 6 on SQLite, timed by profiling Monitor.step).
_ALL_SERVERS = sql(
    "SELECT name, labels, reported_labels, registered_at, last_heartbeat_at, recorded_status,"
    " metrics, agent_version, quarantined_at, quarantine_reason, NULL FROM servers ORDER BY name"
)


class _HeartbeatRow(NamedTuple):
    """A row of _ONLINE_HEARTBEAT, read by name as _record reads a Core row."""

    name: str
    labels: str
    reported_labels: str
    registered_at: float
    last_heartbeat_at: float | None
    recorded_status: str
    metrics: str | None
    agent_version: str | None
    quarantined_at: float | None
    quarantine_reason: str | None
    running_jobs: str | None


class ServerStore:
    """SQL for servers."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def register_server(
        self, name: str, labels: tuple[str, ...], *, token_hash: str, now: float, actor: str
    ) -> ServerRecord:
        """Insert a server and its agent token; Conflict if the name is taken."""
        with write_transaction(self.engine) as conn:
            if conn.execute(select(servers.c.name).where(servers.c.name == name)).first():
                raise Conflict(f"server {name} already exists")
            conn.execute(
                insert(servers).values(
                    name=name,
                    labels=",".join(labels),
                    registered_at=now,
                    recorded_status="offline",
                )
            )
            conn.execute(
                insert(tokens).values(
                    name=f"agent {name}",
                    kind="agent",
                    server=name,
                    token_hash=token_hash,
                    created_at=now,
                )
            )
            append_event(
                conn,
                at=now,
                actor=actor,
                kind="server.registered",
                subject=f"server:{name}",
                after={"labels": list(labels)},
            )
            return _record(self._row(conn, name))

    def get_server(self, name: str) -> ServerRecord:
        """Return one server or raise NotFound."""
        with read_transaction(self.engine) as conn:
            return _record(self._row(conn, name))

    def list_servers(self) -> list[ServerRecord]:
        """Return every server by name."""
        with driver_read(self.engine) as db:
            rows = db.run(_ALL_SERVERS).fetchall()
        return [_record(_HeartbeatRow(*row)) for row in rows]

    def servers_off_their_status(
        self, *, stale_before: float, offline_before: float
    ) -> list[tuple[str, str, float | None]]:
        """(name, recorded status, last heartbeat) of each server whose recorded status is not
        what its last heartbeat says now: offline with none or none since ``offline_before``,
        stale with none since ``stale_before``, else online. Maintenance asks every second:
        one scan, no metrics read, whatever the size of the fleet."""
        with driver_read(self.engine) as db:
            rows = db.run(_OFF_THEIR_STATUS, (offline_before, stale_before)).fetchall()
        return [(name, status, heartbeat_at) for name, status, heartbeat_at in rows]

    def record_heartbeat(
        self,
        name: str,
        *,
        metrics: dict[str, Any],
        agent_version: str | None,
        labels: tuple[str, ...] | None,
        now: float,
        actor: str,
    ) -> tuple[ServerRecord, tuple[int, ...]]:
        """Store a heartbeat, and the labels it reports unless None (the operator's stay).

        Returns the server and the ids of its running jobs. A change of reported labels, and
        a server coming back from stale/offline, are recorded as events.
        """
        metrics_text = json.dumps(metrics, sort_keys=True)
        reported = None if labels is None else ",".join(labels)
        with driver_transaction(self.engine, appends_events=False) as db:
            found = db.run(
                _ONLINE_HEARTBEAT, (now, metrics_text, agent_version, name, reported)
            ).fetchone()
        if found is not None:
            online = _HeartbeatRow(*found)
            return _record(online), _running_ids(online.running_jobs)
        with write_transaction(self.engine) as conn:
            row = self._record_changes(
                conn, name, metrics_text, agent_version, reported, now=now, actor=actor
            )
            return _record(row), _running_ids(row.running_jobs)

    def _record_changes(
        self,
        conn: Connection,
        name: str,
        metrics: str,
        agent_version: str | None,
        reported: str | None,
        *,
        now: float,
        actor: str,
    ) -> Row[Any]:
        """A heartbeat that flips the recorded status or the reported labels: store it and
        record the change as events; return the row with its running jobs (_RUNNING_JOBS)."""
        current = self._row(conn, name)
        values: dict[str, Any] = {
            "last_heartbeat_at": now,
            "metrics": metrics,
            "agent_version": agent_version,
            "recorded_status": "online",
        }
        if reported is not None:
            values["reported_labels"] = reported
        row = conn.execute(
            update(servers)
            .where(servers.c.name == name)
            .values(**values)
            .returning(*servers.c, _RUNNING_JOBS)
        ).one()
        if reported is not None and reported != current.reported_labels:
            append_event(
                conn,
                at=now,
                actor=actor,
                kind="server.labels_reported",
                subject=f"server:{name}",
                before={"reported_labels": list(_labels(current.reported_labels))},
                after={"reported_labels": list(_labels(reported))},
            )
        if current.recorded_status != "online":
            append_event(
                conn,
                at=now,
                actor=actor,
                kind="server.online",
                subject=f"server:{name}",
                before={"status": current.recorded_status},
                after={"status": "online"},
            )
        return row

    def record_status(
        self, name: str, *, expected: str, status: str, now: float, actor: str
    ) -> bool:
        """Flip the recorded status if it is still ``expected``; True if this call flipped it."""
        with write_transaction(self.engine) as conn:
            flipped = conn.execute(
                update(servers)
                .where(servers.c.name == name, servers.c.recorded_status == expected)
                .values(recorded_status=status)
            ).rowcount
            if flipped:
                append_event(
                    conn,
                    at=now,
                    actor=actor,
                    kind=f"server.{status}",
                    subject=f"server:{name}",
                    before={"status": expected},
                    after={"status": status},
                )
            return bool(flipped)

    def quarantine_server(self, name: str, reason: str, *, now: float, actor: str) -> bool:
        """Stop giving the server new work; False if it already was quarantined."""
        with write_transaction(self.engine) as conn:
            self._row(conn, name)  # NotFound for no such server
            changed = conn.execute(
                update(servers)
                .where(servers.c.name == name, servers.c.quarantined_at.is_(None))
                .values(quarantined_at=now, quarantine_reason=reason)
            ).rowcount
            if changed:
                append_event(
                    conn,
                    at=now,
                    actor=actor,
                    kind="server.quarantined",
                    subject=f"server:{name}",
                    after={"reason": reason},
                )
            return bool(changed)

    def resume_server(self, name: str, *, now: float, actor: str) -> ServerRecord:
        """Give a quarantined server work again; Conflict if it is not quarantined."""
        with write_transaction(self.engine) as conn:
            current = self._row(conn, name)
            if current.quarantined_at is None:
                raise Conflict(f"server {name} is not quarantined")
            conn.execute(
                update(servers)
                .where(servers.c.name == name)
                .values(quarantined_at=None, quarantine_reason=None)
            )
            append_event(
                conn,
                at=now,
                actor=actor,
                kind="server.resumed",
                subject=f"server:{name}",
                before={"reason": current.quarantine_reason},
            )
            return _record(self._row(conn, name))

    def remove_server(self, name: str, *, now: float, actor: str) -> None:
        """Delete a server and revoke its tokens; refused while it runs jobs."""
        with write_transaction(self.engine) as conn:
            self._row(conn, name)
            found = Driver.within(conn).run(queries.RUNNING_ON_SERVER, (name,)).fetchall()
            running = [job_id for (job_id,) in found]
            if running:
                ids = ", ".join(str(job_id) for job_id in running)
                raise Conflict(
                    f"server {name} is running job {ids}; cancel it or wait before removing"
                )
            conn.execute(
                update(tokens)
                .where(
                    tokens.c.server == name,
                    or_(tokens.c.revoked_at.is_(None), tokens.c.revoked_at > now),
                )
                .values(revoked_at=now)
            )
            conn.execute(delete(servers).where(servers.c.name == name))
            append_event(conn, at=now, actor=actor, kind="server.removed", subject=f"server:{name}")

    def _row(self, conn: Connection, name: str) -> Row[Any]:
        row = conn.execute(select(servers).where(servers.c.name == name)).one_or_none()
        if row is None:
            raise NotFound(f"server {name} does not exist")
        return row
