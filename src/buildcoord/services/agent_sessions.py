"""The live agent sessions of this coordinator process, told from the change feed what
concerns them: work they could claim, cancels of their builds, orders to carry out.

Work is pushed, not polled. When a job becomes claimable (submitted, unblocked, requeued),
one idle agent whose labels cover the job's is told (``work``); it claims (and may get
another job: claims take the best job first). A job still unclaimed is told to another idle
agent after 1 s, then 2, 4… up to 30 s, so that a lost message or an agent that went busy
does not strand it; the agents' own safety poll covers the rest. Telling one agent per job,
not every idle one, keeps a thousand idle agents from answering each job with a thousand
claims. An agent told something is left alone for ``TELL_HOLD_SECONDS``, so one agent is
not told of two jobs it can only claim one of.

Which agents are busy is followed from the same events (``job.claimed`` makes a server busy;
its job finishing makes it idle), starting from idle when a session opens: the agent claims
when its session opens anyway.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from buildcoord.clock import Clock
from buildcoord.errors import Conflict
from buildcoord.models import Event
from buildcoord.services.feed import ChangeFeed
from buildcoord.store import Store

log = logging.getLogger("buildcoord.sessions")

RETELL_SECONDS = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
"""When a job still unclaimed is told again (to another idle agent), after each telling."""

TELL_HOLD_SECONDS = 1.0
"""An agent just told of work is not told of other work for this long (it claims one job)."""

PENDING_LIMIT = 10_000
"""The most unclaimed jobs followed for telling; beyond, agents' safety polls find them."""

SESSIONS_PER_SERVER = 4
"""The most live sessions one server may hold in a process: an agent has one, and one more
for a moment while it reconnects; a client opening streams in a loop is refused."""

CANCEL_LOOKBACK_SECONDS = 600.0
"""At a session's start, cancels of the server's jobs this recent are told again (the agent
ignores those of jobs it is not building): they may have happened while it reconnected."""

Deliver = Callable[[str, dict[str, Any]], None]
"""Hands one event (name, data) to a session's stream; thread-safe, quick, never raises."""

_JOB_EVENT = "job."


@dataclass(eq=False, slots=True)
class LiveSession:
    """One agent's open event stream in this process."""

    server: str
    deliver: Deliver
    labels: frozenset[str]
    told_at: float = float("-inf")


@dataclass(slots=True)
class _Pending:
    """An unclaimed job being told to idle agents."""

    rank: float
    labels: frozenset[str]
    tellings: int = 0
    due: float = 0.0


@dataclass(slots=True)
class _State:
    sessions: dict[str, list[LiveSession]] = field(default_factory=dict)
    busy: set[str] = field(default_factory=set)
    pending: dict[int, _Pending] = field(default_factory=dict)
    # (due, rank, job id, tellings): popped when due; stale entries are skipped.
    schedule: list[tuple[float, float, int, int]] = field(default_factory=list)


class AgentSessions:
    """Every live agent session of this process, and what to tell which."""

    def __init__(self, store: Store, clock: Clock, feed: ChangeFeed) -> None:
        self.store = store
        self.clock = clock
        self.feed = feed
        self._lock = threading.Lock()
        self._state = _State()
        self._unsubscribe: Callable[[], None] | None = None
        self._turn = itertools.count()

    # -- sessions ----------------------------------------------------------------------------

    def join(self, server: str, deliver: Deliver, *, now: float) -> LiveSession:
        """Add an open session of ``server``'s agent; tell it what it may have missed.

        Reads the server's labels, its recent cancels and whether it has orders (once, here).
        ``now`` is the wall-clock time of the opening, in epoch seconds.
        """
        session = LiveSession(server, deliver, self.store.claim_labels(server))
        with self._lock:
            held = self._state.sessions.setdefault(server, [])
            if len(held) >= SESSIONS_PER_SERVER:
                raise Conflict(
                    f"server {server} already holds {len(held)} live sessions"
                    f" (at most {SESSIONS_PER_SERVER})"
                )
            held.append(session)
            if self._unsubscribe is None:
                self._unsubscribe = self.feed.subscribe(self._on_events)
        since = now - CANCEL_LOOKBACK_SECONDS
        for job in self.store.list_jobs(statuses=["cancelled"], server=server, limit=50):
            if job.finished_at is not None and job.finished_at.timestamp() >= since:
                deliver("cancel", {"job_id": job.id, "reason": job.reason})
        if self.store.has_pending_orders(server):
            deliver("orders", {})
        return session

    def leave(self, session: LiveSession) -> None:
        """Remove a session whose stream ended; the last one out stops following the feed."""
        unsubscribe = None
        with self._lock:
            state = self._state
            kept = [
                other for other in state.sessions.get(session.server, []) if other is not session
            ]
            if kept:
                state.sessions[session.server] = kept
            else:
                state.sessions.pop(session.server, None)
                state.busy.discard(session.server)
            if not state.sessions and self._unsubscribe is not None:
                unsubscribe, self._unsubscribe = self._unsubscribe, None
                self._state = _State()
        if unsubscribe is not None:
            unsubscribe()

    def count(self) -> int:
        """How many sessions are open in this process."""
        with self._lock:
            return sum(len(sessions) for sessions in self._state.sessions.values())

    # -- the feed ----------------------------------------------------------------------------

    def _on_events(self, events: Sequence[Event]) -> None:
        """The feed's subscriber: follow the events, then tell the agents what is due."""
        maybe_claimable: list[int] = []
        relabelled: set[str] = set()
        with self._lock:
            state = self._state
            for event in events:
                if event.kind.startswith(_JOB_EVENT):
                    self._follow_job(state, event, maybe_claimable)
                elif event.kind == "order.created":
                    self._tell_server(state, _server_of(event.subject), "orders", {})
                elif event.kind.startswith("server."):
                    server = _server_of(event.subject)
                    if server in state.sessions:
                        relabelled.add(server)
        for server in relabelled:
            self._relabel(server)
        claimable = self.store.claimable_jobs(maybe_claimable) if maybe_claimable else []
        now = self.clock.monotonic()
        with self._lock:
            state = self._state
            for job in claimable:
                if job.id not in state.pending and len(state.pending) < PENDING_LIMIT:
                    state.pending[job.id] = _Pending(job.rank, job.labels, due=now)
                    heapq.heappush(state.schedule, (now, job.rank, job.id, 0))
            self._tell_due(state, now)

    def _follow_job(self, state: _State, event: Event, maybe_claimable: list[int]) -> None:
        job_id = _job_id_of(event.subject)
        if job_id is None:
            return
        after = event.after or {}
        before = event.before or {}
        if event.kind == "job.claimed":
            server = after.get("server")
            if isinstance(server, str):
                state.busy.add(server)
        elif before.get("status") == "running" and after.get("status") != "running":
            server = before.get("server")  # its build ended: finished, cancelled or lost
            if isinstance(server, str):
                state.busy.discard(server)
                if event.kind == "job.cancelled":
                    data = {"job_id": job_id, "reason": after.get("reason")}
                    self._tell_server(state, server, "cancel", data)
        if after.get("status") == "queued":
            maybe_claimable.append(job_id)
        else:
            state.pending.pop(job_id, None)

    def _relabel(self, server: str) -> None:
        try:
            labels = self.store.claim_labels(server)
        except Exception:  # removed: its sessions end when its token stops working
            return
        with self._lock:
            for session in self._state.sessions.get(server, []):
                session.labels = labels

    def _tell_server(self, state: _State, server: str, name: str, data: dict[str, Any]) -> None:
        for session in state.sessions.get(server, []):
            session.deliver(name, data)

    def _tell_due(self, state: _State, now: float) -> None:
        """Tell each due unclaimed job to one idle agent that can take it."""
        schedule = state.schedule
        deferred: list[tuple[float, float, int, int]] = []
        while schedule and schedule[0][0] <= now:
            _due, rank, job_id, tellings = heapq.heappop(schedule)
            pending = state.pending.get(job_id)
            if pending is None or pending.tellings != tellings:
                continue  # claimed, cancelled, or scheduled again since
            session = self._idle_agent_for(state, pending.labels, now)
            if session is not None:
                session.told_at = now
                session.deliver("work", {"job_id": job_id})
            pending.tellings += 1
            wait = RETELL_SECONDS[min(pending.tellings, len(RETELL_SECONDS)) - 1]
            pending.due = now + wait
            deferred.append((pending.due, rank, job_id, pending.tellings))
        for entry in deferred:
            heapq.heappush(schedule, entry)

    def _idle_agent_for(
        self, state: _State, labels: frozenset[str], now: float
    ) -> LiveSession | None:
        """An idle session whose labels cover ``labels``, not told of work just now.

        Starts the search at a rotating place, so that work spreads over the idle agents.
        """
        servers = list(state.sessions)
        if not servers:
            return None
        start = next(self._turn) % len(servers)
        for server in itertools.chain(servers[start:], servers[:start]):
            if server in state.busy:
                continue
            for session in state.sessions[server]:
                if now - session.told_at >= TELL_HOLD_SECONDS and labels <= session.labels:
                    return session
        return None


def _server_of(subject: str) -> str:
    return subject.removeprefix("server:")


def _job_id_of(subject: str) -> int | None:
    if not subject.startswith("job:"):
        return None
    try:
        return int(subject[4:])
    except ValueError:
        return None
