"""The agent: heartbeats, a live session, and a loop of ``step()`` — claim one job, build it.

Threads: the caller's runs ``step()`` (claims and builds one job at a time); one sends a
heartbeat every few seconds; one holds the session open (cancel events arrive there); each
job adds a lease renewer, a log shipper and the build's own waiting thread.

Stopping is asked with ``request_stop()``, which only bumps a counter: it is called from
signal handlers, where taking a lock the interrupted thread may hold would deadlock. The
first request drains (the current job finishes and is reported, no new one is claimed); the
second also cancels the current build, which is then reported as failed.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from buildcoord import __version__
from buildcoord.agent.backoff import delays
from buildcoord.agent.job import JobRun, Result
from buildcoord.agent.metrics import health_problems, prime_cpu_counter, system_metrics
from buildcoord.agent.options import AgentOptions
from buildcoord.agent.orders import OrderRunner
from buildcoord.agent.session import SessionKeeper
from buildcoord.agent.workspace import Workspace
from buildcoord.client import Client
from buildcoord.client.transport import connection_lost
from buildcoord.errors import BuildcoordError, Forbidden, InvalidInput, NotFound, Unauthorized

log = logging.getLogger("buildcoord.agent")

# Refusals that no retry cures: a revoked token, another server's token, a removed server.
FATAL = (Unauthorized, Forbidden, NotFound)
# And at start, a refused first heartbeat: it carries the agent's own options (its labels).
FATAL_AT_START = (*FATAL, InvalidInput)


class Agent:
    """One build server's agent."""

    def __init__(self, client: Client, options: AgentOptions) -> None:
        self.client = client
        self.options = options
        self.name = options.name
        self.workspace = Workspace(options.workdir)
        self.url = options.url or client.base_url
        self.last_result: Result | None = None
        self._stop_requests = 0
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._current: JobRun | None = None
        self._cancelled: deque[int] = deque(maxlen=100)
        self._labels_sent = options.labels is None
        self._unreachable = False
        self._claim_backoff = _claim_delays()
        self._work = threading.Event()  # the coordinator told of work (or the session opened)
        self._session = SessionKeeper(client, self.name, self._on_cancel, on_work=self._work.set)
        self.orders = OrderRunner(
            client, self.name, self.workspace, session_open=self._session.connected
        )
        self._session.on_orders = self.orders.wake.set
        self._heartbeat = threading.Thread(
            target=self._heartbeat_loop, name="buildcoord-heartbeat", daemon=True
        )

    # -- stopping ------------------------------------------------------------------------------

    def request_stop(self) -> None:
        """First call: drain; second: also cancel the current build. Safe in a signal handler."""
        self._stop_requests += 1

    @property
    def draining(self) -> bool:
        """Whether the agent claims no more jobs."""
        return self._stop_requests >= 1

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Take the work directory, send a first heartbeat (labels), open the session.

        Waits for the coordinator when it is not up yet (agents may start first); any other
        refusal (bad token, unknown server, a reserved label) is raised: the agent cannot work.
        """
        self.workspace.lock()
        prime_cpu_counter()
        for delay in delays():
            try:
                self._send_heartbeat()
                break
            except FATAL_AT_START:
                raise
            except BuildcoordError as exc:
                if not self._unreachable:
                    log.warning("waiting for the coordinator at %s: %s", self.url, exc)
                    self._unreachable = True
                if self.draining:
                    return
                time.sleep(delay)
        self.prune_worktrees()
        self._session.start()
        self._heartbeat.start()
        self.orders.start()

    def prune_worktrees(self) -> list[Path]:
        """Remove worktrees of branches not built lately or no longer set up (never fatal)."""
        try:
            branches: set[str] | None = {b.name for b in self.client.list_branches()}
        except BuildcoordError:
            branches = None  # the coordinator cannot say: prune by age alone
        try:
            removed = self.workspace.prune_worktrees(
                keep_days=self.options.worktree_keep_days, branches=branches
            )
        except OSError as exc:
            log.warning("could not prune worktrees: %s", exc)
            return []
        for path in removed:
            log.info("removed stale worktree %s", path)
        return removed

    def run(self) -> None:
        """Start, then build jobs until asked to stop; close at the end."""
        try:
            self.start()
            while not self.draining:
                try:
                    worked = self.step()
                except FATAL:
                    raise
                except Exception:
                    # A bug must not take the agent down with it: the job's lease runs out
                    # and the coordinator requeues it (up to its attempt limit).
                    log.exception("agent %s: the job ended in an error", self.name)
                    worked = False
                if not worked:
                    self._idle()
            log.info("agent %s: stopping", self.name)
        finally:
            self.close()

    def _idle(self) -> None:
        """Wait until there may be work: told over the session, or the next poll is due.

        With its session open the agent is told when a job it can build is queued, and polls
        only every ``safety_poll_interval`` (±20 %, so that a fleet started together does
        not poll together), in case a message was lost. Without a session it polls every
        ``poll_interval``. Waits in slices, so that a stop request (which cannot set an
        Event: it runs in a signal handler) is noticed within 0.1 s.
        """
        if self._unreachable:  # the last claim failed (a database blip): try again soon
            wait = next(self._claim_backoff) * random.uniform(0.8, 1.2)
        elif self._session.connected.is_set():
            wait = self.options.safety_poll_interval * random.uniform(0.8, 1.2)
        else:
            wait = self.options.poll_interval
        until = time.monotonic() + wait
        while not self.draining and time.monotonic() < until:
            if self._work.wait(min(0.1, wait)):
                break
            if not self._session.connected.is_set() and wait > self.options.poll_interval:
                break  # the session dropped: fall back to polling
        self._work.clear()

    def close(self) -> None:
        """Stop the threads, close the session and let go of the work directory."""
        self._closed.set()
        self.orders.stop()
        self._session.stop()
        if self._heartbeat.is_alive():
            self._heartbeat.join(timeout=2.0)
        self.workspace.unlock()

    # -- one unit of work ----------------------------------------------------------------------

    def step(self) -> bool:
        """Claim one job and build it to the end; False when there was nothing to do."""
        if self.draining:
            return False
        granted_at = time.monotonic()
        try:
            assignment = self.client.claim_assignment(self.name)
        except FATAL:
            raise
        except BuildcoordError as exc:  # unreachable, or a passing server error
            if not self._unreachable:
                log.warning("cannot claim jobs: %s", exc)
                self._unreachable = True
            return False
        if self._unreachable:
            log.warning("the coordinator is reachable again")
            self._unreachable = False
            self._claim_backoff = _claim_delays()
        if assignment is None:
            return False
        run = JobRun(
            self.client,
            self.options,
            self.workspace,
            assignment,
            granted_at=granted_at,
            url=self.url,
            stop_requests=lambda: self._stop_requests,
        )
        with self._lock:
            self._current = run
            cancelled = assignment.job.id in self._cancelled
        if cancelled:
            run.cancel("cancelled before the build started")
        try:
            self.last_result = run.execute()
        finally:
            with self._lock:
                self._current = None
        self.prune_worktrees()
        return True

    def _on_cancel(self, job_id: int, reason: str | None) -> None:
        with self._lock:
            self._cancelled.append(job_id)
            run = self._current
        if run is not None and run.job.id == job_id:
            log.info("job %d: cancelled by the coordinator: stopping the build", job_id)
            run.cancel(reason)

    # -- heartbeats ----------------------------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        warned = False
        while not self._closed.wait(self.options.heartbeat_interval):
            try:
                self._send_heartbeat()
                warned = False
            except BuildcoordError as exc:
                if not warned:
                    log.warning("heartbeat failed: %s", exc)
                    warned = True
            except Exception:  # psutil trouble must not end the heartbeats for good
                log.exception("heartbeat failed")

    def _send_heartbeat(self) -> None:
        # Labels go with the first heartbeat only: they do not change while the agent runs,
        # and a heartbeat without labels keeps those reported before.
        labels = None if self._labels_sent else self.options.labels
        metrics = replace(
            system_metrics(self.workspace.root),
            clock_skew_seconds=self.client.clock_skew_seconds,
            problems=health_problems(self.workspace.root),
        )
        for attempt in (1, 2):
            try:
                self.client.heartbeat(self.name, metrics, agent_version=__version__, labels=labels)
                break
            except BuildcoordError as exc:
                # A heartbeat is idempotent: one lost with its connection (the server closed
                # the kept-alive connection as it went out) is sent again at once, once.
                if attempt == 2 or not connection_lost(exc):
                    raise
        self._labels_sent = True


def _claim_delays() -> Iterator[float]:
    """Waits before claiming again after a failed claim: 0.5 s doubling to 10 s (a session
    that stays open would otherwise leave the agent idle until its 30 s safety poll)."""
    return delays(0.5, cap=10.0)
