"""The queue simulation places every job where a look at every server would: it asks the
predictor once for the servers a key's history does not name, and finds the earliest free one
with a heap, so a brute-force placement (the model as docs/prediction.md states it) is the
reference here, on random fleets, histories, labels and dependencies."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from buildcoord.models import Branch, Job, JobForecast, Server
from buildcoord.prediction.predictor import FinishedBuild, Prediction, Predictor
from buildcoord.services.forecast import TAKING_WORK, expected_remaining, job_key, plan_queue
from buildcoord.store.history import build_key

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LABELS = ("linux", "gpu", "arm")


class Asked:
    """The predictor as the simulation asks it, every question answered afresh."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self.questions = 0

    def servers_with_history(self, key: str, branch: str) -> frozenset[str]:
        return self.predictor.servers_with_history(key, branch)

    def __call__(
        self, key: str, branch: str, server: str | None, trigger: str | None
    ) -> Prediction | None:
        self.questions += 1
        return self.predictor.predict(key, branch, server, trigger)


def brute_force(
    servers: Sequence[Server],
    running: Sequence[Job],
    queued: Sequence[Job],
    branches: Mapping[str, Branch],
    predictor: Predictor,
) -> dict[int, tuple[str | None, float | None, float | None]]:
    """Every queued job tried on every online server: (server, start, finish) in seconds."""
    online = {server.name: server for server in servers if server.status in TAKING_WORK}
    free_in = dict.fromkeys(online, 0.0)
    finish_of: dict[int, float] = {}
    for job in running:
        prediction = predictor.predict(job_key(job, branches), job.branch, job.server, job.trigger)
        assert prediction is not None
        assert job.started_at is not None
        assert job.server is not None
        left = expected_remaining(prediction, (NOW - job.started_at).total_seconds())
        finish_of[job.id] = left
        if job.server in free_in:
            free_in[job.server] += left
    placed: dict[int, tuple[str | None, float | None, float | None]] = {}
    for job in queued:
        if job.pending_dependencies and not all(dep in finish_of for dep in job.depends_on):
            placed[job.id] = (None, None, None)
            continue
        ready = max((finish_of[dep] for dep in job.depends_on), default=0.0)
        best: tuple[float, float, str] | None = None
        for name, server in online.items():
            if not set(job.labels) <= server.matched_labels:
                continue
            prediction = predictor.predict(job_key(job, branches), job.branch, name, job.trigger)
            assert prediction is not None
            candidate = (max(free_in[name], ready), prediction.p50, name)
            if best is None or candidate < best:
                best = candidate
        if best is None:
            placed[job.id] = (None, None, None)
            continue
        start, duration, name = best
        free_in[name] = start + duration
        finish_of[job.id] = start + duration
        placed[job.id] = (name, start, start + duration)
    return placed


def _seconds(forecast: JobForecast) -> tuple[str | None, float | None, float | None]:
    def since(at: datetime | None) -> float | None:
        return None if at is None else (at - NOW).total_seconds()

    if forecast.predicted_finish is None:
        return (None, None, None)
    return (forecast.server, since(forecast.predicted_start), since(forecast.predicted_finish))


def _job(job_id: int, branch: str, **fields: object) -> Job:
    values: dict[str, object] = {
        "id": job_id,
        "branch": branch,
        "commit": "a" * 40,
        "priority": 0,
        "status": "queued",
        "attempt": 0,
        "max_attempts": 3,
        "depends_on": (),
        "labels": (),
        "pending_dependencies": 0,
        "server": None,
        "fencing_token": 0,
        "lease_expires_at": None,
        "blocked_reason": None,
        "reason": None,
        "created_at": NOW,
        "queued_at": NOW,
        "started_at": None,
        "finished_at": None,
        "exit_code": None,
        "duration": None,
        "trigger": None,
    }
    values.update(fields)
    return Job(**values)  # type: ignore[arg-type]


def _fleet(rng: random.Random, count: int) -> list[Server]:
    servers = []
    for index in range(count):
        labels = tuple(label for label in LABELS if rng.random() < 0.4)
        servers.append(
            Server(
                name=f"build{index:03d}",
                labels=labels,
                status=rng.choice(("online", "online", "busy", "offline")),
                registered_at=NOW,
                last_heartbeat_at=NOW,
                heartbeat_age_seconds=1.0,
                metrics=None,
                agent_version=None,
            )
        )
    return servers


@pytest.mark.parametrize("seed", range(12))
def test_every_queued_job_goes_where_trying_every_server_would_put_it(seed: int) -> None:
    rng = random.Random(seed)
    servers = _fleet(rng, rng.choice((5, 40, 120)))
    names = [server.name for server in servers]
    branch_names = [f"branch-{index}" for index in range(4)]
    branches = {
        name: Branch(
            name=name,
            repo="/srv/repo.git",
            command="make",
            priority=0,
            labels=(),
            timeout_seconds=None,
            retry_on_failure=False,
            created_at=NOW,
            updated_at=NOW,
        )
        for name in branch_names
    }
    predictor = Predictor()
    # Durations are whole seconds so that equal predictions tie, and ties by name matter.
    for index in range(rng.choice((30, 400))):
        branch = rng.choice(branch_names)
        predictor.observe(
            FinishedBuild(
                key=build_key(branch, "make"),
                branch=branch,
                server=rng.choice(names[: max(3, len(names) // 4)]),
                started_at=NOW - timedelta(hours=400 - index),
                duration=float(rng.choice((60, 60, 120, 300, 900))),
                result="success",
                trigger=rng.choice((None, "push", "schedule")),
            )
        )
    busy = [server.name for server in servers if server.status == "busy"]
    running = [
        _job(
            index + 1,
            rng.choice(branch_names),
            status="running",
            server=name,
            started_at=NOW - timedelta(seconds=rng.randrange(0, 2000)),
        )
        for index, name in enumerate(busy)
    ]
    queued: list[Job] = []
    for job_id in range(len(running) + 1, len(running) + 1 + rng.choice((10, 150))):
        earlier = [job.id for job in [*running, *queued]]
        depends = tuple(rng.sample(earlier, k=min(len(earlier), 2))) if rng.random() < 0.2 else ()
        queued.append(
            _job(
                job_id,
                rng.choice(branch_names),
                labels=tuple(label for label in LABELS if rng.random() < 0.2),
                depends_on=depends,
                pending_dependencies=len(depends),
                trigger=rng.choice((None, "push", "manual")),
            )
        )
    asked = Asked(predictor)
    plan = plan_queue(
        now=NOW,
        servers=servers,
        running=running,
        queued=queued,
        branches=branches,
        predict=asked,
    )
    expected = brute_force(servers, running, queued, branches, predictor)
    got = {job.id: _seconds(plan.forecasts[job.id]) for job in queued}
    _assert_same(got, expected)
    # One question per server the history names, one for all the others.
    named = len(names[: max(3, len(names) // 4)])
    assert asked.questions <= len(running) + len(queued) * (named + 1)


def _assert_same(
    got: dict[int, tuple[str | None, float | None, float | None]],
    expected: dict[int, tuple[str | None, float | None, float | None]],
) -> None:
    """Same servers, starts and finishes within the rounding of a datetime (microseconds)."""
    assert got.keys() == expected.keys()
    for job_id, (server, start, finish) in expected.items():
        found = got[job_id]
        assert found[0] == server, f"job {job_id}: {found} != {(server, start, finish)}"
        if start is not None:
            assert found[1] == pytest.approx(start, abs=1e-5), job_id
            assert found[2] == pytest.approx(finish, abs=1e-5), job_id
