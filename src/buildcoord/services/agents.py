"""What agents do beyond plain queue calls: claim with the build recipe, live sessions.

The jobs' transitions themselves (the claim, the release of a lost agent's jobs) belong to
the queue (services/queue.py); this service decides when an agent is lost.

An agent holds a session (an open event stream) while it runs. When the stream drops and
the agent has not reconnected within ``agent_reconnect_grace_seconds``, its leases end at
once and its jobs are requeued — the fast path; an agent frozen with its stream still open
stops renewing and loses its jobs when the lease expires — the slow path.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time

from buildcoord.clock import Clock
from buildcoord.config import Settings
from buildcoord.models import Assignment, Job, Principal
from buildcoord.services.authority import require_self_or_operator
from buildcoord.services.queue import QueueService
from buildcoord.store import Store

log = logging.getLogger("buildcoord.agents")

LOST_CHECK_SLACK_SECONDS = 0.25
"""How late past an agent's reconnect grace its lost-agent check may run, so that the drops of
one burst share a check."""

SESSION_HISTORY_SECONDS = 86_400.0
"""How long an ended session is kept (the lost-agent check needs it for seconds)."""


class AgentService:
    """Agent claims and sessions."""

    def __init__(self, store: Store, clock: Clock, settings: Settings, queue: QueueService) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.queue = queue  # every change to a job goes through the queue
        self._check_lock = threading.Lock()
        self._check_due = 0.0  # time.monotonic() of the latest lost-agent check scheduled

    def claim(self, server: str, *, by: Principal) -> Assignment | None:
        """Lease the next job this agent can build, with its branch's build recipe."""
        return self.queue.claim_build(server, by=by)

    def open_session(self, server: str, *, by: Principal) -> str:
        """Record a connected agent; return the session id."""
        require_self_or_operator(by, server, "open an agent session")
        self.store.get_server(server)
        session_id = secrets.token_hex(16)
        self.store.open_session(session_id, server, now=self.clock.now().timestamp())
        return session_id

    def close_session(self, session_id: str) -> None:
        """Record that a session's connection dropped."""
        self.store.close_session(session_id, now=self.clock.now().timestamp())

    def schedule_lost_agent_check(self) -> None:
        """Check for lost agents just after the grace, not at the next maintenance tick.

        One check covers every session that dropped before it was due, so the drops of a
        burst (a network blip, a thousand agents at once) share one timer: a check already
        due within ``LOST_CHECK_SLACK_SECONDS`` after this drop's grace covers it.
        """
        due = time.monotonic() + self.settings.agent_reconnect_grace_seconds
        with self._check_lock:
            if due <= self._check_due <= due + LOST_CHECK_SLACK_SECONDS:
                return
            self._check_due = due + LOST_CHECK_SLACK_SECONDS
        timer = threading.Timer(
            due + LOST_CHECK_SLACK_SECONDS - time.monotonic(), self._check_quietly
        )
        timer.daemon = True
        timer.start()

    def forget_old_sessions(self) -> int:
        """Maintenance: delete sessions that ended over SESSION_HISTORY_SECONDS ago."""
        before = self.clock.now().timestamp() - SESSION_HISTORY_SECONDS
        return self.store.forget_sessions(before=before)

    def _check_quietly(self) -> None:
        try:
            self.release_lost_agents()
        except Exception:  # the maintenance loop will try again within a second
            log.exception("lost-agent check failed")

    def release_lost_agents(self) -> list[Job]:
        """Maintenance: end the leases of agents gone longer than the reconnect grace."""
        now = self.clock.now().timestamp()
        before = now - self.settings.agent_reconnect_grace_seconds
        ended: list[Job] = []
        for server in self.store.take_lost_servers(before=before, now=now):
            ended += self.queue.release_lost_agent(server)
        return ended
