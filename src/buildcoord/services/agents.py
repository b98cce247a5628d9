"""What agents do beyond plain queue calls: claim with the build recipe, live sessions.

An agent holds a session (an open event stream) while it runs. When the stream drops and
the agent has not reconnected within ``agent_reconnect_grace_seconds``, its leases end at
once and its jobs are requeued — the fast path; an agent frozen with its stream still open
stops renewing and loses its jobs when the lease expires — the slow path.
"""

from __future__ import annotations

import logging
import secrets
import threading

from buildcoord.clock import Clock
from buildcoord.config import Settings
from buildcoord.models import SYSTEM, Assignment, Job, Principal
from buildcoord.services.authority import require_self_or_operator
from buildcoord.services.queue import FinishedHook, run_finished_hooks
from buildcoord.store import Store

log = logging.getLogger("buildcoord.agents")


class AgentService:
    """Agent claims and sessions."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: Settings,
        finished: list[FinishedHook] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        # The queue's after-finish hooks, for jobs failed on their last attempt by a lost agent.
        self.finished: list[FinishedHook] = [] if finished is None else finished

    def claim(self, server: str, *, by: Principal) -> Assignment | None:
        """Lease the next job this agent can build, with its branch's build recipe."""
        require_self_or_operator(by, server, "claim jobs")
        now = self.clock.now().timestamp()
        while True:
            # The server's labels are read in the claim's transaction (NotFound if none).
            job = self.store.claim_job(
                server,
                now=now,
                lease_seconds=self.settings.job_lease_seconds,
                actor=by.actor,
                buildable_only=True,
            )
            if job is None:
                return None
            branch = self.store.find_branch(job.branch)
            if branch is not None and branch.command is not None:
                return Assignment(
                    job=job,
                    repo=branch.repo,
                    command=branch.command,
                    timeout_seconds=branch.timeout_seconds,
                    retry_on_failure=branch.retry_on_failure,
                )
            # The branch lost its command between the claim and now: give the job back.
            self.store.complete_job(
                job.id,
                server=server,
                fencing_token=job.fencing_token,
                status="failed",
                exit_code=None,
                duration=0.0,
                reason=f"branch {job.branch} has no build command any more",
                now=now,
                actor=SYSTEM.actor,
            )

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
        """Check for lost agents just after the grace, not at the next maintenance tick."""
        timer = threading.Timer(
            self.settings.agent_reconnect_grace_seconds + 0.05, self._check_quietly
        )
        timer.daemon = True
        timer.start()

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
            ended += self.store.end_job_leases_of(
                server,
                why="agent {server} disconnected",
                now=now,
                actor=SYSTEM.actor,
            )
        for job in ended:
            if job.status == "failed":
                run_finished_hooks(self.finished, job, None)
        return ended

    def cancelled_jobs(self, server: str, *, since: float) -> list[Job]:
        """Jobs leased to server that were cancelled after ``since`` (the agent must stop them)."""
        return [
            job
            for job in self.store.list_jobs(statuses=["cancelled"], server=server, limit=50)
            if job.finished_at is not None and job.finished_at.timestamp() >= since
        ]
