"""Black holes: a server that fails builds which pass elsewhere is alerted on and, when the
settings say so, quarantined — it gets no new work until an operator resumes it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.errors import Conflict, Forbidden, InvalidInput, NotFound
from buildcoord.models import Principal
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store

from .queue_helpers import COMMIT, build_on

RegisterServer = Callable[..., Principal]


@pytest.fixture
def quarantining(
    store: Store, settings: Settings, clock: FakeClock, operator: Principal
) -> Coordinator:
    coordinator = Coordinator(
        store, dataclasses.replace(settings, quarantine_black_holes=True), clock
    )
    for branch in ("main", "dev"):
        coordinator.branches.add(branch, repo="/srv/repo", command="make", by=operator)
    for name in ("build1", "build2"):
        coordinator.servers.register(name, (), by=operator)
    return coordinator


def agent(name: str) -> Principal:
    return Principal("agent", f"agent {name}", server=name)


def test_a_server_failing_builds_that_pass_elsewhere_is_alerted_on_and_quarantined(
    quarantining: Coordinator, store: Store, operator: Principal
) -> None:
    coordinator = quarantining
    good, bad = agent("build2"), agent("build1")
    build_on(coordinator, good, operator, "succeeded", branch="main")
    build_on(coordinator, good, operator, "succeeded", branch="dev")
    failed = [
        build_on(coordinator, bad, operator, "failed", branch=branch)
        for branch in ("main", "dev", "main")
    ]
    opened = coordinator.monitor.step().opened
    [alert] = [each for each in opened if each.rule == "black_hole"]

    assert (alert.rule, alert.subject, alert.severity) == ("black_hole", "build1", "critical")
    assert alert.details["failed_jobs"] == failed
    assert alert.details["passed_on"] == {"dev": ["build2"], "main": ["build2"]}
    assert "build1 failed its last 3 builds, which pass elsewhere" in alert.summary
    server = coordinator.servers.get("build1", by=operator)
    assert server.quarantined_at is not None
    assert (server.quarantine_reason or "").startswith(f"alert {alert.id}: ")

    # Quarantined: build1 claims nothing, build2 takes the work.
    job = coordinator.queue.submit("main", COMMIT, by=operator)
    assert coordinator.agents.claim("build1", by=bad) is None
    assert coordinator.queue.get(job.id, by=operator).status == "queued"
    coordinator.servers.resume("build1", by=operator)
    claimed = coordinator.agents.claim("build1", by=bad)
    assert claimed is not None
    assert claimed.job.id == job.id
    kinds = [event.kind for event in store.events.list_events(subject="server:build1")]
    assert kinds[-2:] == ["server.quarantined", "server.resumed"]


def test_a_server_that_loses_every_job_it_claims_is_a_black_hole_too(
    quarantining: Coordinator, operator: Principal, clock: FakeClock
) -> None:
    coordinator = quarantining
    good, bad = agent("build2"), agent("build1")
    build_on(coordinator, good, operator, "succeeded", branch="main")
    build_on(coordinator, good, operator, "succeeded", branch="dev")
    lost = []
    for branch in ("main", "dev", "main"):
        job = coordinator.queue.submit(branch, COMMIT, by=operator)
        assert coordinator.agents.claim("build1", by=bad) is not None
        clock.advance(coordinator.settings.job_lease_seconds + 1)
        [requeued] = coordinator.queue.expire_leases()
        assert (requeued.id, requeued.status) == (job.id, "queued")
        coordinator.queue.cancel(job.id, by=operator)  # nobody else builds it meanwhile
        lost.append(job.id)

    [alert] = [each for each in coordinator.monitor.step().opened if each.rule == "black_hole"]

    assert alert.subject == "build1"
    assert alert.details["failed_jobs"] == lost
    assert "build1 lost its last 3 builds, which pass elsewhere" in alert.summary


def test_failures_of_a_branch_that_fails_everywhere_are_not_a_black_hole(
    quarantining: Coordinator, operator: Principal
) -> None:
    coordinator = quarantining
    build_on(coordinator, agent("build2"), operator, "failed", branch="main")
    for _ in range(3):
        build_on(coordinator, agent("build1"), operator, "failed", branch="main")

    coordinator.monitor.step()

    assert coordinator.alerts.list_alerts(rule="black_hole", by=operator) == []
    assert coordinator.servers.get("build1", by=operator).quarantined_at is None


def test_fewer_failures_than_the_limit_or_an_old_pass_are_not_a_black_hole(
    quarantining: Coordinator, operator: Principal, clock: FakeClock
) -> None:
    coordinator = quarantining
    build_on(coordinator, agent("build2"), operator, "succeeded", branch="main")
    clock.advance(coordinator.settings.black_hole_window_minutes * 60 + 1)  # out of the window
    for _ in range(3):
        build_on(coordinator, agent("build1"), operator, "failed", branch="main")
    coordinator.monitor.step()
    assert coordinator.alerts.list_alerts(rule="black_hole", by=operator) == []

    build_on(coordinator, agent("build2"), operator, "succeeded", branch="main")
    build_on(coordinator, agent("build1"), operator, "succeeded", branch="main")
    for _ in range(2):
        build_on(coordinator, agent("build1"), operator, "failed", branch="main")
    coordinator.monitor.step()
    assert coordinator.alerts.list_alerts(rule="black_hole", by=operator) == []


def test_without_the_setting_a_black_hole_is_alerted_on_but_keeps_getting_work(
    store: Store, settings: Settings, clock: FakeClock, operator: Principal
) -> None:
    coordinator = Coordinator(store, settings, clock)
    coordinator.branches.add("main", repo="/srv/repo", command="make", by=operator)
    for name in ("build1", "build2"):
        coordinator.servers.register(name, (), by=operator)
    build_on(coordinator, agent("build2"), operator, "succeeded", branch="main")
    for _ in range(3):
        build_on(coordinator, agent("build1"), operator, "failed", branch="main")

    opened = coordinator.monitor.step().opened
    assert [a.subject for a in opened if a.rule == "black_hole"] == ["build1"]
    assert coordinator.servers.get("build1", by=operator).quarantined_at is None


def test_an_operator_quarantines_and_resumes_a_server_by_hand(
    quarantining: Coordinator, operator: Principal, reader: Principal
) -> None:
    coordinator = quarantining
    with pytest.raises(Forbidden):
        coordinator.servers.quarantine("build1", "disk swap", by=reader)
    with pytest.raises(InvalidInput, match="quarantine reason"):
        coordinator.servers.quarantine("build1", "r" * 501, by=operator)
    with pytest.raises(NotFound):
        coordinator.servers.quarantine("build9", "gone", by=operator)
    with pytest.raises(Conflict, match="not quarantined"):
        coordinator.servers.resume("build1", by=operator)

    held = coordinator.servers.quarantine("build1", "disk swap", by=operator)
    again = coordinator.servers.quarantine("build1", "another reason", by=operator)

    assert held.quarantine_reason == again.quarantine_reason == "disk swap"
    assert coordinator.servers.resume("build1", by=operator).quarantined_at is None
