"""The monitor's rules: each looks at one snapshot of the fleet and says what is wrong now.

A rule returns one AlertFinding per subject that fires; a subject it does not return is clear.
Rules only read the snapshot, so a step judges every rule on the same instant, and a rule is
tested by building a snapshot. Agents' figures arrive validated (never negative, never NaN),
and a figure an agent did not send is simply not judged.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from buildcoord.config import Settings
from buildcoord.models import AlertFinding, BuildRecord, Event, Job
from buildcoord.store.servers import ServerRecord

GIB = 1024**3


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the rules judge, read once per step."""

    now: float
    servers: list[ServerRecord]
    outcomes: dict[str, list[BuildRecord]]
    """Each built branch's latest passed or failed builds, newest first."""
    waiting_jobs: int
    oldest_waiting_since: float | None
    recent_builds: list[BuildRecord] = field(default_factory=list)
    """The fleet's most recently finished builds, oldest first."""
    running_jobs: list[Job] = field(default_factory=list)
    stuck_after: dict[int, float] = field(default_factory=dict)
    """Seconds after which a running job is stuck: max(3 x its predicted p90, its timeout)."""
    recovered_locks: list[Event] = field(default_factory=list)
    """The expired locks released since the previous step (their events)."""
    unjudged_before: float = -math.inf
    """Heartbeats older than this are not judged: the coordinator has just started, and
    agents that were sending to it before may not have reached it again yet."""


RuleCheck = Callable[[Settings, Snapshot], list[AlertFinding]]


@dataclass(frozen=True, slots=True)
class Rule:
    """A named check, and how long its alerts must stay clear before they resolve
    (None: the ``resolve_after_seconds`` setting; 0: at the first clear step)."""

    name: str
    check: RuleCheck
    resolve_after_seconds: float | None = None


def heartbeat_stale(settings: Settings, snapshot: Snapshot) -> list[AlertFinding]:
    """A server that has sent heartbeats has missed ``stale_after_missed_heartbeats``."""
    found = []
    for server in snapshot.servers:
        if server.last_heartbeat_at is None:
            continue  # registered, never started: nothing was expected of it yet
        if server.last_heartbeat_at < snapshot.unjudged_before:
            continue
        age = snapshot.now - server.last_heartbeat_at
        if age >= settings.stale_after_seconds:
            missed = int(age // settings.heartbeat_interval_seconds)
            found.append(
                AlertFinding(
                    server.name,
                    "warning",
                    f"{server.name}: no heartbeat for {age:.0f} s ({missed} missed)",
                    {"heartbeat_age_seconds": round(age, 1), "missed": missed},
                )
            )
    return found


def server_offline(settings: Settings, snapshot: Snapshot) -> list[AlertFinding]:
    """A server that has sent heartbeats has sent none for ``offline_after_seconds``."""
    found = []
    for server in snapshot.servers:
        if server.last_heartbeat_at is None:
            continue
        if server.last_heartbeat_at < snapshot.unjudged_before:
            continue
        age = snapshot.now - server.last_heartbeat_at
        if age >= settings.offline_after_seconds:
            found.append(
                AlertFinding(
                    server.name,
                    "critical",
                    f"{server.name} is offline: no heartbeat for {age / 60:.0f} min",
                    {"heartbeat_age_seconds": round(age, 1)},
                )
            )
    return found


def disk_low(settings: Settings, snapshot: Snapshot) -> list[AlertFinding]:
    """A live server's free disk is under ``disk_low_percent`` of it or ``disk_low_gib``; a
    server's own labels ``disk_low_percent=N`` and ``disk_low_gib=N`` (the operator's, or its
    agent's) override them for it."""
    found = []
    for server in snapshot.servers:
        if server.last_heartbeat_at is None or server.metrics is None:
            continue
        if snapshot.now - server.last_heartbeat_at >= settings.stale_after_seconds:
            continue  # old figures: heartbeat_stale says what is known
        free = server.metrics.get("disk_free_bytes")
        if free is None:
            continue
        labels = (*server.reported_labels, *server.labels)  # the operator's win
        limit_gib = _label_number(labels, "disk_low_gib", settings.disk_low_gib)
        limit_percent = _label_number(labels, "disk_low_percent", settings.disk_low_percent)
        total = server.metrics.get("disk_total_bytes")
        percent = 100.0 * free / total if total else None
        if free < limit_gib * GIB or (percent is not None and percent < limit_percent):
            share = "" if percent is None else f" ({percent:.1f} %)"
            found.append(
                AlertFinding(
                    server.name,
                    "warning",
                    f"{server.name}: {free / GIB:.1f} GiB disk free{share}",
                    {
                        "disk_free_bytes": free,
                        "disk_total_bytes": total,
                        "limit_gib": limit_gib,
                        "limit_percent": limit_percent,
                    },
                )
            )
    return found


def _label_number(labels: tuple[str, ...], key: str, default: float) -> float:
    """The last ``key=N`` label's N (a number of 0 or more), else ``default``."""
    value = default
    for label in labels:
        name, _, text = label.partition("=")
        if name == key:
            try:
                number = float(text)
            except ValueError:
                continue
            if math.isfinite(number) and number >= 0:
                value = number
    return value


def _live_metrics(settings: Settings, snapshot: Snapshot) -> list[tuple[str, dict[str, Any]]]:
    """(name, metrics) of each server whose last heartbeat is fresh (not yet stale)."""
    return [
        (server.name, server.metrics)
        for server in snapshot.servers
        if server.metrics is not None
        and server.last_heartbeat_at is not None
        and snapshot.now - server.last_heartbeat_at < settings.stale_after_seconds
    ]


def clock_skew(settings: Settings, snapshot: Snapshot) -> list[AlertFinding]:
    """A live agent's clock is off the coordinator's by more than ``clock_skew_max_seconds``
    (build times, leases and logs stop lining up)."""
    found = []
    for name, metrics in _live_metrics(settings, snapshot):
        skew = metrics.get("clock_skew_seconds")
        if isinstance(skew, int | float) and abs(skew) > settings.clock_skew_max_seconds:
            way = "ahead of" if skew > 0 else "behind"
            found.append(
                AlertFinding(
                    name,
                    "warning",
                    f"{name}: its clock is {abs(skew):.0f} s {way} the coordinator's",
                    {"clock_skew_seconds": skew},
                )
            )
    return found


def agent_unhealthy(settings: Settings, snapshot: Snapshot) -> list[AlertFinding]:
    """A live agent reports problems with itself (git missing, a work directory it cannot
    write): every build it takes would fail."""
    found = []
    for name, metrics in _live_metrics(settings, snapshot):
        problems = metrics.get("problems") or []
        if problems:
            found.append(
                AlertFinding(
                    name,
                    "critical",
                    f"{name}: {'; '.join(str(problem) for problem in problems)}",
                    {"problems": list(problems)},
                )
            )
    return found


def branch_broken(settings: Settings, snapshot: Snapshot) -> list[AlertFinding]:
    """A branch's latest build failed after one that passed (resolved by its next pass)."""
    found = []
    for branch, builds in snapshot.outcomes.items():
        if not builds or builds[0].result != "failed":
            continue
        passed = next((build for build in builds if build.result == "succeeded"), None)
        if passed is None:
            continue  # never passed in view: failure_rate speaks for it
        failing = builds[: builds.index(passed)]
        first = failing[-1]
        found.append(
            AlertFinding(
                branch,
                "critical",
                f"{branch} is broken: {len(failing)} failed build(s) since commit "
                f"{first.commit[:12]} (job {first.job_id}); it last passed at "
                f"{passed.commit[:12]}",
                {
                    "failed_builds": len(failing),
                    "first_failed_job": first.job_id,
                    "first_failed_commit": first.commit,
                    "last_passed_job": passed.job_id,
                    "last_passed_commit": passed.commit,
                    "latest_server": builds[0].server,
                },
            )
        )
    return found


def failure_rate(settings: Settings, snapshot: Snapshot) -> list[AlertFinding]:
    """Of a branch's latest ``failure_rate_builds`` builds, over ``failure_rate_percent``
    failed."""
    window = settings.failure_rate_builds
    found = []
    for branch, builds in snapshot.outcomes.items():
        latest = builds[:window]
        if window <= 0 or len(latest) < window:
            continue
        failed = sum(1 for build in latest if build.result == "failed")
        rate = 100.0 * failed / len(latest)
        if rate > settings.failure_rate_percent:
            found.append(
                AlertFinding(
                    branch,
                    "warning",
                    f"{branch}: {failed} of its last {len(latest)} builds failed",
                    {"failed": failed, "builds": len(latest), "percent": round(rate, 1)},
                )
            )
    return found


def backlog(settings: Settings, snapshot: Snapshot) -> list[AlertFinding]:
    """More than ``backlog_jobs`` jobs wait claimable, the oldest for ``backlog_minutes``."""
    since = snapshot.oldest_waiting_since
    if since is None or snapshot.waiting_jobs <= settings.backlog_jobs:
        return []
    waited = snapshot.now - since
    if waited < settings.backlog_minutes * 60:
        return []
    return [
        AlertFinding(
            "queue",
            "warning",
            f"{snapshot.waiting_jobs} jobs waiting, the oldest for {waited / 60:.0f} min",
            {"waiting_jobs": snapshot.waiting_jobs, "oldest_wait_seconds": round(waited, 1)},
        )
    ]


def _failed_or_lost(builds: list[BuildRecord]) -> str:
    results = {build.result for build in builds}
    if len(results) == 1:
        return "lost" if results == {"lost"} else "failed"
    return "failed or lost"


def black_hole(settings: Settings, snapshot: Snapshot) -> list[AlertFinding]:
    """A server's last ``black_hole_builds`` builds within ``black_hole_window_minutes`` all
    failed (or were lost: the lease ran out, the agent went away), and each of their branches
    passed on another server in that window: the server, not the code, is what fails."""
    count = settings.black_hole_builds
    if count <= 0:
        return []
    since = snapshot.now - settings.black_hole_window_minutes * 60
    by_server: dict[str, list[BuildRecord]] = {}
    passed_on: dict[str, set[str]] = {}
    for build in snapshot.recent_builds:
        if build.server is None or build.result == "cancelled":
            continue
        if build.finished_at.timestamp() < since:
            continue
        by_server.setdefault(build.server, []).append(build)
        if build.result == "succeeded":
            passed_on.setdefault(build.branch, set()).add(build.server)
    found = []
    for server, builds in sorted(by_server.items()):
        last = builds[-count:]
        if len(last) < count or any(build.result not in ("failed", "lost") for build in last):
            continue
        elsewhere = {build.branch: passed_on.get(build.branch, set()) - {server} for build in last}
        if not all(elsewhere.values()):
            continue
        branches = ", ".join(
            f"{branch} (passed on {', '.join(sorted(others))})"
            for branch, others in sorted(elsewhere.items())
        )
        found.append(
            AlertFinding(
                server,
                "critical",
                f"{server} {_failed_or_lost(last)} its last {count} builds, which pass"
                f" elsewhere: {branches}",
                {
                    "failed_jobs": [build.job_id for build in last],
                    "passed_on": {branch: sorted(o) for branch, o in elsewhere.items()},
                },
            )
        )
    return found


def job_stuck(settings: Settings, snapshot: Snapshot) -> list[AlertFinding]:
    """A job running past max(3 x its predicted p90, its build timeout): a hung build that
    holds a server. A job with neither figure is not judged."""
    found = []
    for job in snapshot.running_jobs:
        limit = snapshot.stuck_after.get(job.id)
        if limit is None or job.started_at is None:
            continue
        running = snapshot.now - job.started_at.timestamp()
        if running > limit:
            found.append(
                AlertFinding(
                    f"job:{job.id}",
                    "warning",
                    f"job {job.id} ({job.branch} on {job.server}) has run {running / 60:.0f} min,"
                    f" past the {limit / 60:.0f} min it should take at most",
                    {"running_seconds": round(running, 1), "stuck_after_seconds": limit},
                )
            )
    return found


def lock_recovered(settings: Settings, snapshot: Snapshot) -> list[AlertFinding]:
    """A lock's holder let its lease expire and the lock was taken back: a process died
    holding it, or hung (resolved at the next step without one)."""
    found: dict[str, AlertFinding] = {}
    for event in snapshot.recovered_locks:
        name = event.subject.removeprefix("lock:")
        holder = (event.before or {}).get("holder", "?")
        found[name] = AlertFinding(
            name,
            "warning",
            f"lock {name} expired in the hands of {holder} and was released",
            {"holder": holder, "event": event.id},
        )
    return list(found.values())


RULES: tuple[Rule, ...] = (
    Rule("heartbeat_stale", heartbeat_stale),
    Rule("server_offline", server_offline),
    Rule("disk_low", disk_low),
    Rule("clock_skew", clock_skew),
    Rule("agent_unhealthy", agent_unhealthy),
    Rule("branch_broken", branch_broken, resolve_after_seconds=0.0),
    Rule("failure_rate", failure_rate),
    Rule("backlog", backlog),
    Rule("black_hole", black_hole),
    Rule("job_stuck", job_stuck, resolve_after_seconds=0.0),
    Rule("lock_recovered", lock_recovered, resolve_after_seconds=0.0),
)
"""Every rule, on unless named in the ``monitor_disabled_rules`` setting."""

RULE_NAMES = tuple(rule.name for rule in RULES)
