"""Agent sessions: the live connection each agent holds, so that a dead agent is noticed fast."""

from __future__ import annotations

from sqlalchemy import Engine, delete, insert, update

from buildcoord.store.engine import driver_transaction, sql, write_transaction
from buildcoord.store.schema import agent_sessions

_LOST = (
    "SELECT s.id FROM agent_sessions s WHERE s.handled_at IS NULL"
    " AND s.disconnected_at IS NOT NULL AND s.disconnected_at < ?"
    " AND NOT EXISTS (SELECT 1 FROM agent_sessions later"
    " WHERE later.server = s.server AND later.connected_at > s.connected_at)"
)
_TAKE_LOST = sql(
    f"UPDATE agent_sessions SET handled_at = ? WHERE id IN ({_LOST})"
    " AND handled_at IS NULL RETURNING server",
    postgresql=f"UPDATE agent_sessions SET handled_at = ? WHERE id IN ({_LOST}"
    " FOR UPDATE OF s SKIP LOCKED) AND handled_at IS NULL RETURNING server",
)


class SessionStore:
    """SQL for agent sessions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def open_session(self, session_id: str, server: str, *, now: float) -> None:
        """Record a newly connected agent session."""
        with write_transaction(self.engine) as conn:
            # The server's dropped sessions are superseded: nothing is left to act on for
            # them, and take_lost_servers need not look at them again.
            conn.execute(
                update(agent_sessions)
                .where(
                    agent_sessions.c.server == server,
                    agent_sessions.c.disconnected_at.is_not(None),
                    agent_sessions.c.handled_at.is_(None),
                )
                .values(handled_at=now)
            )
            conn.execute(
                insert(agent_sessions).values(id=session_id, server=server, connected_at=now)
            )

    def close_session(self, session_id: str, *, now: float) -> None:
        """Record that a session's connection dropped."""
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(agent_sessions)
                .where(
                    agent_sessions.c.id == session_id, agent_sessions.c.disconnected_at.is_(None)
                )
                .values(disconnected_at=now)
            )

    def take_lost_servers(self, *, before: float, now: float) -> list[str]:
        """Servers whose latest session dropped before ``before`` and did not come back.

        One statement marks each such session handled and returns its server, so one drop is
        acted on once, however many coordinators (or lost-agent timers) run this at once: on
        PostgreSQL a session another transaction is taking is skipped, not waited for (a
        thousand agents dropping together used to queue a thousand checks on the same rows).
        """
        with driver_transaction(self.engine, appends_events=False) as db:
            rows = db.run(_TAKE_LOST, (now, before)).fetchall()
        return list(dict.fromkeys(server for (server,) in rows))

    def forget_sessions(self, *, before: float) -> int:
        """Delete sessions that ended before ``before`` (handled or superseded long ago)."""
        with write_transaction(self.engine) as conn:
            return conn.execute(
                delete(agent_sessions).where(
                    agent_sessions.c.disconnected_at.is_not(None),
                    agent_sessions.c.disconnected_at < before,
                )
            ).rowcount
