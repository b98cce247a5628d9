"""The fleet at a glance: figures read from the database on both backends."""

from __future__ import annotations

from collections.abc import Callable

from buildcoord.clock import FakeClock
from buildcoord.models import Metrics, Principal
from buildcoord.services.coordinator import Coordinator

from .queue_helpers import COMMIT, build_on

RegisterServer = Callable[..., Principal]


def test_fleet_health_counts_servers_builds_branches_queue_and_alerts(
    coordinator: Coordinator,
    operator: Principal,
    reader: Principal,
    register_server: RegisterServer,
    clock: FakeClock,
) -> None:
    coordinator.branches.add("main", repo="/srv/repo", command="make", by=operator)
    build1, _build2 = register_server("build1"), register_server("build2")
    build_on(
        coordinator, build1, operator, "failed", clock=clock, seconds=50
    )  # three days before the rest
    clock.advance(3 * 86_400)
    for seconds in (100, 200, 300):
        build_on(coordinator, build1, operator, "succeeded", clock=clock, seconds=seconds)
    build_on(coordinator, build1, operator, "failed", clock=clock, seconds=10)
    coordinator.servers.heartbeat("build1", metrics=Metrics(cpu_percent=12.0), by=build1)
    coordinator.queue.submit("main", COMMIT, by=operator)
    clock.advance(20)
    coordinator.monitor.step()  # build1's heartbeat is stale; main broke after passing

    fleet = coordinator.health.fleet(by=reader)

    assert (fleet.servers_online, fleet.servers_total) == (0, 2)
    assert [server.name for server in fleet.servers] == ["build1", "build2"]
    assert (fleet.builds_24h, fleet.success_rate_24h) == (4, 0.75)
    assert (fleet.builds_7d, fleet.success_rate_7d) == (5, 0.6)
    [main] = fleet.branches
    assert (main.branch, main.builds, main.success_rate, main.last_result) == (
        "main",
        5,
        0.6,
        "failed",
    )
    assert (main.mean_seconds, main.p90_seconds) == (200.0, 300.0)
    assert (fleet.queued, fleet.running, fleet.blocked) == (1, 0, 0)
    assert (fleet.alerts_open, fleet.alerts_critical) == (2, 1)  # stale; branch_broken


def test_an_empty_fleet_has_no_rates(coordinator: Coordinator, reader: Principal) -> None:
    fleet = coordinator.health.fleet(by=reader)

    assert (fleet.servers_total, fleet.builds_24h, fleet.success_rate_24h) == (0, 0, None)
    assert fleet.branches == ()
