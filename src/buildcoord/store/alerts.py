"""Alerts: at most one open per (rule, subject), opened, repeated and resolved by the monitor.

Every transition is a conditional statement on the open row (``resolved_at IS NULL``) and
appends its event only when it changed the row, so several coordinators stepping the monitor
at once open one alert, resolve it once, and record each change once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, Row, func, insert, select, update

from buildcoord.errors import Conflict, NotFound
from buildcoord.models import Alert, AlertFinding, AlertSilence
from buildcoord.store.alert_deliveries import queue_delivery
from buildcoord.store.engine import (
    Driver,
    driver_transaction,
    read_transaction,
    sql,
    write_transaction,
)
from buildcoord.store.events import append_event, event_values, record_event
from buildcoord.store.job_queries import APPEND_EVENT
from buildcoord.store.schema import alert_silences, alerts
from buildcoord.store.timestamps import from_epoch, from_epoch_or_none

_OPEN = alerts.c.resolved_at.is_(None)

Notify = Callable[[Alert, str], Sequence[str]]
"""The notifiers to tell of an alert's change ("opened" or "resolved")."""

_COLUMNS = (
    "id, rule, subject, severity, summary, details, opened_at, last_seen_at, count,"
    " clear_since, resolved_at, acknowledged_at, acknowledged_by"
)


class _AlertRow(NamedTuple):
    """An alerts row in table (_COLUMNS) order; ``seen`` is the count column."""

    id: int
    rule: str
    subject: str
    severity: str
    summary: str
    details: str | None
    opened_at: float
    last_seen_at: float
    seen: int
    clear_since: float | None
    resolved_at: float | None
    acknowledged_at: float | None
    acknowledged_by: str | None


# The rule's open alerts: id, subject, count, clear_since. Parameters: rule.
_OPEN_OF_RULE = sql(
    "SELECT id, subject, count, clear_since FROM alerts"
    " WHERE rule = ? AND resolved_at IS NULL ORDER BY id"
)

# Open a (rule, subject) alert unless one is open (then no row). Parameters: rule, subject,
# severity, summary, details, opened_at, last_seen_at.
_OPEN_ALERT = sql(
    "INSERT INTO alerts (rule, subject, severity, summary, details, opened_at, last_seen_at,"
    " count) VALUES (?, ?, ?, ?, ?, ?, ?, 1)"
    f" ON CONFLICT (rule, subject) WHERE resolved_at IS NULL DO NOTHING RETURNING {_COLUMNS}"
)

# The open (rule, subject) alert's id and count.
_OPEN_ID = sql(
    "SELECT id, count FROM alerts WHERE rule = ? AND subject = ? AND resolved_at IS NULL"
)

# A repeat: count it, end any clear spell, say what it is now. Parameters: last_seen_at,
# severity, summary, details, id.
_REPEAT = sql(
    "UPDATE alerts SET count = count + 1, last_seen_at = ?, clear_since = NULL,"
    " severity = ?, summary = ?, details = ? WHERE id = ? AND resolved_at IS NULL"
)

# The start of a clear spell. Parameters: clear_since, id.
_START_CLEAR = sql(
    "UPDATE alerts SET clear_since = ? WHERE id = ? AND resolved_at IS NULL AND clear_since IS NULL"
)

# Resolve an open alert (no row if another step did). Parameters: resolved_at, clear_since
# (if none was recorded), id.
_RESOLVE = sql(
    "UPDATE alerts SET resolved_at = ?, clear_since = COALESCE(clear_since, ?)"
    f" WHERE id = ? AND resolved_at IS NULL RETURNING {_COLUMNS}"
)

_to_json = json.JSONEncoder(sort_keys=True).encode


class AlertStore:
    """SQL for alerts."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record_findings(
        self,
        rule: str,
        findings: Sequence[AlertFinding],
        *,
        now: float,
        resolve_after: float,
        actor: str,
        notify: Notify | None = None,
    ) -> tuple[list[Alert], int, list[Alert]]:
        """Bring the rule's alerts in step with what it finds now, in one transaction.

        A finding opens its subject's alert, or counts a repeat on the open one (which ends
        any clear spell it was in). The rule's other open alerts are clear: their clear
        spell starts, or they resolve once it has lasted ``resolve_after`` seconds. Returns
        (opened, repeats counted, resolved). Every change appends its event, and each
        notifier ``notify`` names for an opening or a resolution gets a delivery queued in
        the same transaction: told once, however many coordinators step.
        """
        opened: list[Alert] = []
        resolved: list[Alert] = []
        with driver_transaction(self.engine) as db:
            current = {
                subject: (alert_id, count, clear_since)
                for alert_id, subject, count, clear_since in db.run(_OPEN_OF_RULE, (rule,))
            }
            repeats: list[tuple[int, int, AlertFinding]] = []
            for finding in sorted(findings, key=lambda each: each.subject):
                known = current.get(finding.subject)
                if known is not None:
                    repeats.append((known[0], known[1] + 1, finding))
                    continue
                row = db.run(
                    _OPEN_ALERT,
                    (
                        rule,
                        finding.subject,
                        finding.severity,
                        finding.summary,
                        _to_json(finding.details),
                        now,
                        now,
                    ),
                ).fetchone()
                if row is not None:
                    alert = _alert(row)
                    opened.append(alert)
                    after = {"id": alert.id, "severity": alert.severity, "summary": alert.summary}
                    _changed(db, alert, "opened", after, notify, now=now, actor=actor)
                    continue
                # Another coordinator opened it since the read above: count a repeat on it.
                taken = db.run(_OPEN_ID, (rule, finding.subject)).fetchone()
                if taken is not None:
                    repeats.append((taken[0], taken[1] + 1, finding))
            repeats.sort(key=lambda each: each[0])  # rows locked in id order: no deadlock
            db.run_many(
                _REPEAT,
                [
                    (now, finding.severity, finding.summary, _to_json(finding.details), alert_id)
                    for alert_id, _count, finding in repeats
                ],
            )
            db.run_many(
                APPEND_EVENT,
                [
                    event_values(
                        now,
                        actor,
                        "alert.repeated",
                        f"{rule}:{finding.subject}",
                        None,
                        {"id": alert_id, "count": count, "summary": finding.summary},
                    )
                    for alert_id, count, finding in repeats
                ],
            )
            firing = {finding.subject for finding in findings}
            starting: list[tuple[float, int]] = []
            for subject, (alert_id, _count, clear_since) in sorted(
                current.items(), key=lambda item: item[1][0]
            ):
                if subject in firing:
                    continue
                if now - (now if clear_since is None else clear_since) < resolve_after:
                    if clear_since is None:
                        starting.append((now, alert_id))
                    continue
                row = db.run(_RESOLVE, (now, now, alert_id)).fetchone()
                if row is not None:
                    alert = _alert(row)
                    resolved.append(alert)
                    after = {"id": alert.id, "count": alert.count, "opened_at": row[6]}
                    _changed(db, alert, "resolved", after, notify, now=now, actor=actor)
            db.run_many(_START_CLEAR, starting)
        return opened, len(repeats), resolved

    def acknowledge_alert(self, alert_id: int, *, now: float, actor: str) -> Alert:
        """Mark an open alert acknowledged (once; a second acknowledgement changes nothing)."""
        with write_transaction(self.engine) as conn:
            row = _find(conn, alert_id)
            if row.resolved_at is not None:
                raise Conflict(f"alert {alert_id} is resolved: nothing to acknowledge")
            if row.acknowledged_at is not None:
                return _alert(row)
            row = conn.execute(
                update(alerts)
                .where(alerts.c.id == alert_id, alerts.c.acknowledged_at.is_(None))
                .values(acknowledged_at=now, acknowledged_by=actor)
                .returning(*alerts.c)
            ).one()
            append_event(
                conn,
                at=now,
                actor=actor,
                kind="alert.acknowledged",
                subject=f"{row.rule}:{row.subject}",
                after={"id": row.id},
            )
            return _alert(row)

    def add_silence(
        self,
        rule: str,
        subject: str | None,
        *,
        until: float,
        comment: str,
        now: float,
        actor: str,
    ) -> AlertSilence:
        """Silence the rule's alerts (one subject's, or all) until ``until``."""
        with write_transaction(self.engine) as conn:
            row = conn.execute(
                insert(alert_silences)
                .values(
                    rule=rule,
                    subject=subject,
                    created_at=now,
                    until=until,
                    created_by=actor,
                    comment=comment,
                )
                .returning(*alert_silences.c)
            ).one()
            append_event(
                conn,
                at=now,
                actor=actor,
                kind="alert.silenced",
                subject=f"{rule}:{subject or '*'}",
                after={"silence": row.id, "until": until, "comment": comment},
            )
            return _silence(row)

    def end_silence(self, silence_id: int, *, now: float, actor: str) -> AlertSilence:
        """End a silence now; Conflict if it has already ended."""
        with write_transaction(self.engine) as conn:
            row = conn.execute(
                update(alert_silences)
                .where(alert_silences.c.id == silence_id, alert_silences.c.until > now)
                .values(until=now)
                .returning(*alert_silences.c)
            ).first()
            if row is None:
                found = conn.execute(
                    select(alert_silences.c.id).where(alert_silences.c.id == silence_id)
                ).first()
                if found is None:
                    raise NotFound(f"no silence {silence_id}")
                raise Conflict(f"silence {silence_id} has already ended")
            append_event(
                conn,
                at=now,
                actor=actor,
                kind="alert.unsilenced",
                subject=f"{row.rule}:{row.subject or '*'}",
                after={"silence": row.id},
            )
            return _silence(row)

    def list_silences(
        self, *, in_force_at: float | None = None, limit: int = 500
    ) -> list[AlertSilence]:
        """Silences newest first: those in force at ``in_force_at``, or every one."""
        query = select(*alert_silences.c).order_by(alert_silences.c.id.desc()).limit(limit)
        if in_force_at is not None:
            query = query.where(alert_silences.c.until > in_force_at)
        with read_transaction(self.engine) as conn:
            return [_silence(row) for row in conn.execute(query)]

    def count_open_alerts(self) -> dict[str, int]:
        """Open alerts by severity."""
        query = select(alerts.c.severity, func.count()).where(_OPEN).group_by(alerts.c.severity)
        with read_transaction(self.engine) as conn:
            return {severity: int(count) for severity, count in conn.execute(query)}

    def get_alert(self, alert_id: int) -> Alert:
        """One alert, open or resolved; NotFound if there is none with that id."""
        with read_transaction(self.engine) as conn:
            return _alert(_find(conn, alert_id))

    def list_alerts(
        self, *, include_resolved: bool = False, rule: str | None = None, limit: int = 500
    ) -> list[Alert]:
        """Alerts newest first: the open ones, or all with ``include_resolved``."""
        query = select(*alerts.c).order_by(alerts.c.opened_at.desc(), alerts.c.id.desc())
        if not include_resolved:
            query = query.where(_OPEN)
        if rule is not None:
            query = query.where(alerts.c.rule == rule)
        with read_transaction(self.engine) as conn:
            return [_alert(row) for row in conn.execute(query.limit(limit))]


def _changed(
    db: Driver,
    alert: Alert,
    change: str,
    after: dict[str, Any],
    notify: Notify | None,
    *,
    now: float,
    actor: str,
) -> None:
    """Record an alert's opening or resolution as an event, and queue a delivery to each
    notifier ``notify`` names for it, in the transaction that made the change."""
    for notifier in notify(alert, change) if notify else ():
        queue_delivery(db, alert.id, notifier, change, now)
    record_event(
        db,
        at=now,
        actor=actor,
        kind=f"alert.{change}",
        subject=f"{alert.rule}:{alert.subject}",
        after=after,
    )


def _silence(row: Row[Any]) -> AlertSilence:
    return AlertSilence(
        id=row.id,
        rule=row.rule,
        subject=row.subject,
        created_at=from_epoch(row.created_at),
        until=from_epoch(row.until),
        created_by=row.created_by,
        comment=row.comment,
    )


def _find(conn: Connection, alert_id: int) -> Row[Any]:
    row = conn.execute(select(*alerts.c).where(alerts.c.id == alert_id)).first()
    if row is None:
        raise NotFound(f"no alert {alert_id}")
    return row


def _alert(row: Row[Any] | _AlertRow) -> Alert:
    values = _AlertRow(*row)
    return Alert(
        id=values.id,
        rule=values.rule,
        subject=values.subject,
        severity=values.severity,  # type: ignore[arg-type]  # written from AlertSeverity only
        summary=values.summary,
        details=json.loads(values.details) if values.details else {},
        opened_at=from_epoch(values.opened_at),
        last_seen_at=from_epoch(values.last_seen_at),
        count=values.seen,
        clear_since=from_epoch_or_none(values.clear_since),
        resolved_at=from_epoch_or_none(values.resolved_at),
        acknowledged_at=from_epoch_or_none(values.acknowledged_at),
        acknowledged_by=values.acknowledged_by,
    )
