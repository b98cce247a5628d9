"""Agent sessions: the live connection each agent holds, so that a dead agent is noticed fast."""

from __future__ import annotations

from sqlalchemy import Engine, func, insert, select, update

from buildcoord.store.engine import write_transaction
from buildcoord.store.schema import agent_sessions


class SessionStore:
    """SQL for agent sessions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def open_session(self, session_id: str, server: str, *, now: float) -> None:
        """Record a newly connected agent session."""
        with write_transaction(self.engine) as conn:
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

        Each such session is marked handled in the same transaction, so one drop is acted on
        once, however many coordinators run this.
        """
        with write_transaction(self.engine) as conn:
            latest = (
                select(agent_sessions.c.server, func.max(agent_sessions.c.connected_at).label("at"))
                .group_by(agent_sessions.c.server)
                .subquery()
            )
            rows = conn.execute(
                select(agent_sessions.c.id, agent_sessions.c.server)
                .join(
                    latest,
                    (latest.c.server == agent_sessions.c.server)
                    & (latest.c.at == agent_sessions.c.connected_at),
                )
                .where(
                    agent_sessions.c.disconnected_at.is_not(None),
                    agent_sessions.c.disconnected_at < before,
                    agent_sessions.c.handled_at.is_(None),
                )
            ).all()
            lost = []
            for session_id, server in rows:
                taken = conn.execute(
                    update(agent_sessions)
                    .where(agent_sessions.c.id == session_id, agent_sessions.c.handled_at.is_(None))
                    .values(handled_at=now)
                ).rowcount
                if taken:
                    lost.append(server)
            return lost
