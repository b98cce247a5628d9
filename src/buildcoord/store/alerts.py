"""Alerts: at most one open per (rule, subject), opened, repeated and resolved by the monitor.

Every transition is a conditional statement on the open row (``resolved_at IS NULL``) and
appends its event only when it changed the row, so several coordinators stepping the monitor
at once open one alert, resolve it once, and record each change once.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from sqlalchemy import Connection, Engine, Row, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from buildcoord.errors import Conflict, NotFound
from buildcoord.models import Alert, AlertSeverity
from buildcoord.store.engine import read_transaction, write_transaction
from buildcoord.store.events import append_event
from buildcoord.store.schema import alerts
from buildcoord.store.timestamps import from_epoch, from_epoch_or_none

_OPEN = alerts.c.resolved_at.is_(None)


class AlertStore:
    """SQL for alerts."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def raise_alert(
        self,
        rule: str,
        subject: str,
        *,
        severity: AlertSeverity,
        summary: str,
        details: dict[str, Any],
        now: float,
        actor: str,
    ) -> tuple[Alert, bool]:
        """Open the (rule, subject) alert, or count a repeat of the open one.

        Returns the alert and whether this call opened it. A repeat also ends any clear
        spell the alert was in: it resolves only after a clear spell long enough.
        """
        text = json.dumps(details, sort_keys=True)
        with write_transaction(self.engine) as conn:
            # The open row may be resolved by another coordinator between the two statements
            # (PostgreSQL, read committed): then the insert is tried again.
            for _ in range(3):
                opened = _insert_open(conn, rule, subject, severity, summary, text, now)
                if opened is not None:
                    append_event(
                        conn,
                        at=now,
                        actor=actor,
                        kind="alert.opened",
                        subject=f"{rule}:{subject}",
                        after={"id": opened.id, "severity": severity, "summary": summary},
                    )
                    return _alert(opened), True
                row = conn.execute(
                    update(alerts)
                    .where(alerts.c.rule == rule, alerts.c.subject == subject, _OPEN)
                    .values(
                        count=alerts.c.count + 1,
                        last_seen_at=now,
                        clear_since=None,
                        severity=severity,
                        summary=summary,
                        details=text,
                    )
                    .returning(*alerts.c)
                ).first()
                if row is not None:
                    append_event(
                        conn,
                        at=now,
                        actor=actor,
                        kind="alert.repeated",
                        subject=f"{rule}:{subject}",
                        after={"id": row.id, "count": row._mapping["count"], "summary": summary},
                    )
                    return _alert(row), False
        raise Conflict(f"alert {rule}:{subject} kept changing under this step; try again")

    def clear_alerts(
        self,
        rule: str,
        firing: Collection[str],
        *,
        now: float,
        resolve_after: float,
        actor: str,
    ) -> list[Alert]:
        """For the rule's open alerts whose subject is not firing: start their clear spell,
        or resolve those clear for ``resolve_after`` seconds. Returns the resolved ones."""
        resolved: list[Alert] = []
        with write_transaction(self.engine) as conn:
            quiet = [
                row
                for row in conn.execute(select(*alerts.c).where(alerts.c.rule == rule, _OPEN))
                if row.subject not in firing
            ]
            for row in quiet:
                clear_since = now if row.clear_since is None else row.clear_since
                if now - clear_since >= resolve_after:
                    done = conn.execute(
                        update(alerts)
                        .where(alerts.c.id == row.id, _OPEN)
                        .values(resolved_at=now, clear_since=clear_since)
                        .returning(*alerts.c)
                    ).first()
                    if done is not None:
                        _resolved_event(conn, done, now=now, actor=actor)
                        resolved.append(_alert(done))
                elif row.clear_since is None:
                    conn.execute(
                        update(alerts)
                        .where(alerts.c.id == row.id, _OPEN, alerts.c.clear_since.is_(None))
                        .values(clear_since=now)
                    )
        return resolved

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


def _insert_open(
    conn: Connection,
    rule: str,
    subject: str,
    severity: str,
    summary: str,
    details: str,
    now: float,
) -> Row[Any] | None:
    """Insert the open (rule, subject) alert unless one is open; the new row, or None."""
    make = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    return conn.execute(
        make(alerts)
        .values(
            rule=rule,
            subject=subject,
            severity=severity,
            summary=summary,
            details=details,
            opened_at=now,
            last_seen_at=now,
            count=1,
        )
        .on_conflict_do_nothing(index_elements=[alerts.c.rule, alerts.c.subject], index_where=_OPEN)
        .returning(*alerts.c)
    ).first()


def _find(conn: Connection, alert_id: int) -> Row[Any]:
    row = conn.execute(select(*alerts.c).where(alerts.c.id == alert_id)).first()
    if row is None:
        raise NotFound(f"no alert {alert_id}")
    return row


def _resolved_event(conn: Connection, row: Row[Any], *, now: float, actor: str) -> None:
    append_event(
        conn,
        at=now,
        actor=actor,
        kind="alert.resolved",
        subject=f"{row.rule}:{row.subject}",
        after={"id": row.id, "count": row._mapping["count"], "opened_at": row.opened_at},
    )


def _alert(row: Row[Any]) -> Alert:
    return Alert(
        id=row.id,
        rule=row.rule,
        subject=row.subject,
        severity=row.severity,
        summary=row.summary,
        details=json.loads(row.details) if row.details else {},
        opened_at=from_epoch(row.opened_at),
        last_seen_at=from_epoch(row.last_seen_at),
        count=row._mapping["count"],
        clear_since=from_epoch_or_none(row.clear_since),
        resolved_at=from_epoch_or_none(row.resolved_at),
        acknowledged_at=from_epoch_or_none(row.acknowledged_at),
        acknowledged_by=row.acknowledged_by,
    )
