"""The queue, simulated forward with predicted durations: when each job starts and finishes,
how long each server stays busy, and which server would finish a new build first.

The model (docs/prediction.md, "Live predictions"):

* Only online servers (``online`` or ``busy``) take work; a server runs one job at a time.
* A running job has ``max(p50 - elapsed, (p90 - elapsed) / 2, 0)`` seconds left: its median
  while it is early; once it overran, half of what is left of its band, so a late build is
  expected to end soon rather than at once.
* Each job is predicted with its own trigger (push, schedule, manual, ...), which weighs
  past builds started the same way more.
* Queued jobs are taken in claim order (the order ``queue list`` shows). Each goes to the
  server, among those with its labels, that can start it first (a tie: the one predicted to
  build it faster, then by name); it starts once that server is free and its dependencies
  are predicted to have finished, and takes its predicted p50 there.
* What remains of a server's work is thus its running job's remaining time plus its share
  of the queue. A new build is assumed to queue behind every job waiting now.
* A forecast looks at most ``HORIZON_SECONDS`` (30 days) ahead: a start or finish predicted
  later is reported at the horizon, so that no prediction, however wrong, makes a date
  beyond what a datetime holds.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from buildcoord.models import Branch, DurationEstimate, Job, JobForecast, Server, ServerChoice
from buildcoord.prediction.predictor import Prediction, expected_remaining
from buildcoord.store.history import build_key


class Predict(Protocol):
    """The predictor as the simulation asks it."""

    def __call__(
        self, key: str, branch: str, server: str | None, trigger: str | None
    ) -> Prediction | None:
        """(build key, branch, server or None, trigger or None) -> the prediction, if any."""

    def servers_with_history(self, key: str, branch: str) -> frozenset[str]:
        """The servers whose past builds of key on branch count in its prediction: for every
        other server, the prediction is the same as with no server."""


Describe = Callable[[str, str | None, str, Prediction, str | None], DurationEstimate]
"""(branch, server, build key, prediction, trigger) -> the estimate as reported."""
TAKING_WORK = frozenset({"online", "busy"})
HORIZON_SECONDS = 30 * 24 * 3600.0
"""The furthest ahead a forecast reports a start or a finish."""


def within_horizon(seconds: float) -> float:
    """Seconds from now, kept within 0 to the forecast's horizon (NaN: the horizon)."""
    if not seconds <= HORIZON_SECONDS:
        return HORIZON_SECONDS
    return max(seconds, 0.0)


@dataclass
class QueuePlan:
    """The simulated queue: forecasts per job, and when each online server becomes free."""

    now: datetime
    servers: list[Server]
    free_in: dict[str, float] = field(default_factory=dict)
    """Seconds from now until an online server is free; absent: unknown (no history)."""
    queued_share: dict[str, int] = field(default_factory=dict)
    running_on: dict[str, int] = field(default_factory=dict)
    forecasts: dict[int, JobForecast] = field(default_factory=dict)
    predict: Predict | None = None


def job_key(job: Job, branches: Mapping[str, Branch]) -> str:
    """The build key a job's build gets (as history records it)."""
    setup = branches.get(job.branch)
    return build_key(job.branch, setup.command if setup is not None else None)


def plan_queue(
    *,
    now: datetime,
    servers: Sequence[Server],
    running: Sequence[Job],
    queued: Sequence[Job],
    branches: Mapping[str, Branch],
    predict: Predict,
) -> QueuePlan:
    """Simulate the running and queued jobs over the online servers (no SQL: inputs given)."""
    plan = QueuePlan(now=now, servers=list(servers), predict=predict)
    online = {server.name: server for server in servers if server.status in TAKING_WORK}
    unknown: set[str] = set()  # online servers whose free time cannot be predicted
    for name in online:
        plan.free_in[name] = 0.0
        plan.queued_share[name] = 0
        plan.running_on[name] = 0
    finish_of: dict[int, float] = {}
    for job in running:
        server = job.server
        if server in online:
            plan.running_on[server] += 1
        plan.forecasts[job.id], remaining = running_forecast(job, now, branches, predict)
        if remaining is None:
            if server is not None:
                unknown.add(server)
            continue
        finish_of[job.id] = remaining
        if server in online:
            plan.free_in[server] += remaining
    for name in unknown:
        plan.free_in.pop(name, None)
    free = _FreeServers(plan.free_in, online)
    for job in queued:
        plan.forecasts[job.id] = _place(plan, job, free, branches, finish_of)
    return plan


def running_forecast(
    job: Job, now: datetime, branches: Mapping[str, Branch], predict: Predict
) -> tuple[JobForecast, float | None]:
    """A running job's forecast (its expected time left, and so its finish), and the seconds
    left unrounded (None when nothing predicts it)."""
    prediction = predict(job_key(job, branches), job.branch, job.server, job.trigger)
    if prediction is None or job.started_at is None:
        return _nothing(job, job.server, "no build has succeeded yet"), None
    elapsed = max(0.0, (now - job.started_at).total_seconds())
    remaining = within_horizon(expected_remaining(prediction, elapsed))
    forecast = JobForecast(
        job_id=job.id,
        server=job.server,
        predicted_start=job.started_at,
        predicted_finish=now + timedelta(seconds=remaining),
        expected_remaining_seconds=round(remaining, 3),
    )
    return forecast, remaining


class _FreeServers:
    """The online servers whose free time is known, by that time, per set of required labels:
    the earliest free one is found without looking at every server (a heap per label set;
    an entry whose time has since changed is dropped when it comes up)."""

    def __init__(self, free_in: dict[str, float], online: Mapping[str, Server]) -> None:
        self.free_in = free_in
        every = {name: server.matched_labels for name, server in online.items()}
        self.matched = {name: matched for name, matched in every.items() if name in free_in}
        self._online_matched = list(every.values())
        self._labelled: dict[frozenset[str], bool] = {}
        self._heaps: dict[frozenset[str], list[tuple[float, str]]] = {}

    def _heap(self, labels: frozenset[str]) -> list[tuple[float, str]]:
        heap = self._heaps.get(labels)
        if heap is None:
            heap = [
                (self.free_in[name], name)
                for name, matched in self.matched.items()
                if labels <= matched
            ]
            heapq.heapify(heap)
            self._heaps[labels] = heap
        return heap

    def any_with(self, labels: frozenset[str]) -> bool:
        """Whether any online server (its free time known or not) has the labels."""
        found = self._labelled.get(labels)
        if found is None:
            found = any(labels <= matched for matched in self._online_matched)
            self._labelled[labels] = found
        return found

    def earliest(
        self, labels: frozenset[str], ready: float, excluded: frozenset[str]
    ) -> tuple[float, str] | None:
        """(start, name): the server with the labels, not among ``excluded``, that can start a
        job ready ``ready`` s from now first (ties by name)."""
        heap = self._heap(labels)
        if ready > 0:  # every server free by then starts it at `ready`: the first by name
            starts = (
                (max(self.free_in[name], ready), name)
                for name, matched in self.matched.items()
                if name not in excluded and labels <= matched
            )
            return min(starts, default=None)
        aside: list[tuple[float, str]] = []
        found = None
        while heap:
            at, name = heap[0]
            if at != self.free_in[name]:
                heapq.heappop(heap)  # superseded by a later entry
            elif name in excluded:
                aside.append(heapq.heappop(heap))
            else:
                found = (at, name)
                break
        for entry in aside:
            heapq.heappush(heap, entry)
        return found

    def busy_until(self, name: str, seconds: float) -> None:
        """The server is now free ``seconds`` from now."""
        self.free_in[name] = seconds
        for labels, heap in self._heaps.items():
            if labels <= self.matched[name]:
                heapq.heappush(heap, (seconds, name))


def _place(
    plan: QueuePlan,
    job: Job,
    free: _FreeServers,
    branches: Mapping[str, Branch],
    finish_of: dict[int, float],
) -> JobForecast:
    """Give a queued job the server that starts it first; record its predicted finish.

    Only the servers the key's history names get their own prediction; every other server
    gets the same one, so among those the earliest free (then first by name) is the only
    candidate: the choice is the one a look at every server would make."""
    assert plan.predict is not None
    setup = branches.get(job.branch)
    if setup is None or setup.command is None:
        return _nothing(job, None, "its branch has no build command: no agent claims it")
    ready = 0.0
    if job.pending_dependencies:
        waits = [finish_of[dep] for dep in job.depends_on if dep in finish_of]
        # Every pending dependency is running or queued: one missing here has no forecast.
        if len(waits) < job.pending_dependencies:
            return _nothing(job, None, "it waits for dependencies that have no forecast")
        ready = max(waits)
    labels = frozenset(job.labels)
    if not free.any_with(labels):
        return _nothing(job, None, "no online server has its labels")
    key = job_key(job, branches)
    own = plan.predict.servers_with_history(key, job.branch)
    starts = [
        (max(free.free_in[name], ready), name)
        for name in own
        if name in free.matched and labels <= free.matched[name]
    ]
    rest = free.earliest(labels, ready, own)
    if rest is not None:
        starts.append(rest)
    best: tuple[float, float, str] | None = None
    for start, name in starts:
        prediction = plan.predict(key, job.branch, name, job.trigger)
        if prediction is None:
            continue
        candidate = (start, prediction.p50, name)
        if best is None or candidate < best:
            best = candidate
    if best is None:
        return _nothing(job, None, "no build has succeeded yet")
    start, duration, name = best
    finish = start + duration
    free.busy_until(name, finish)
    plan.queued_share[name] += 1
    finish_of[job.id] = finish
    return JobForecast(
        job_id=job.id,
        server=name,
        predicted_start=plan.now + timedelta(seconds=within_horizon(start)),
        predicted_finish=plan.now + timedelta(seconds=within_horizon(finish)),
        expected_remaining_seconds=round(within_horizon(finish), 3),
    )


def _nothing(job: Job, server: str | None, note: str) -> JobForecast:
    return JobForecast(
        job_id=job.id,
        server=server,
        predicted_start=job.started_at if job.status == "running" else None,
        predicted_finish=None,
        expected_remaining_seconds=None,
        note=note,
    )


def rank_servers(
    plan: QueuePlan,
    *,
    key: str,
    branch: str,
    labels: Sequence[str],
    min_disk_free_bytes: int,
    describe: Describe,
    trigger: str | None = None,
) -> list[ServerChoice]:
    """Every server: the eligible ones by predicted finish of a new build (started by
    trigger, when given), then the skipped."""
    assert plan.predict is not None
    ranked: list[ServerChoice] = []
    skipped: list[ServerChoice] = []
    for server in sorted(plan.servers, key=lambda server: server.name):
        disk = server.metrics.disk_free_bytes if server.metrics is not None else None

        def skip(reason: str, server: Server = server, disk: int | None = disk) -> None:
            skipped.append(
                ServerChoice(
                    server=server.name,
                    status=server.status,
                    eligible=False,
                    reason=reason,
                    disk_free_bytes=disk,
                )
            )

        if server.status not in TAKING_WORK:
            age = server.heartbeat_age_seconds
            seen = "never sent a heartbeat" if age is None else f"last heartbeat {age:.0f} s ago"
            skip(f"{server.status}: {seen}")
            continue
        missing = sorted(set(labels) - server.matched_labels)
        if missing:
            skip(f"lacks the branch's labels: {', '.join(missing)}")
            continue
        if disk is not None and disk < min_disk_free_bytes:
            skip(f"low disk: {_gib(disk)} free, below the {_gib(min_disk_free_bytes)} minimum")
            continue
        prediction = plan.predict(key, branch, server.name, trigger)
        free_in = plan.free_in.get(server.name)
        if prediction is None or free_in is None:
            why = (
                f"no build of {branch} has succeeded yet: nothing to predict from"
                if prediction is None
                else "the job it is running has no prediction, so when it is free is unknown"
            )
            ranked.append(
                ServerChoice(
                    server=server.name,
                    status=server.status,
                    eligible=True,
                    reason=f"{why}; ranked by name",
                    disk_free_bytes=disk,
                )
            )
            continue
        estimate = describe(branch, server.name, key, prediction, trigger)
        finish = free_in + prediction.p50
        running = plan.running_on.get(server.name, 0)
        share = plan.queued_share.get(server.name, 0)
        work = "idle" if free_in == 0 else f"free in {free_in:.0f} s"
        ranked.append(
            ServerChoice(
                server=server.name,
                status=server.status,
                eligible=True,
                reason=(
                    f"{work} ({running} running, {share} queued there), then a build of "
                    f"{prediction.p50:.0f} s (p10-p90 {prediction.p10:.0f}-{prediction.p90:.0f}"
                    f" s, {prediction.level}, {prediction.history} builds)"
                    + ("" if disk is not None else "; disk free unknown")
                ),
                remaining_seconds=round(free_in, 3),
                duration=estimate,
                finish_seconds=round(finish, 3),
                disk_free_bytes=disk,
            )
        )
    ranked.sort(key=_by_finish)
    return ranked + skipped


def _by_finish(choice: ServerChoice) -> tuple[bool, float, str]:
    """Earliest predicted finish first, servers without one last; ties by name."""
    finish = choice.finish_seconds
    return finish is None, finish or 0.0, choice.server


def _gib(size: int) -> str:
    return f"{size / 1024**3:.1f} GiB"
