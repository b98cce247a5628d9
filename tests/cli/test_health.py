"""buildcoord health show, driven in process."""

from __future__ import annotations

from buildcoord.clock import FakeClock
from buildcoord.models import Metrics
from buildcoord.services.coordinator import Coordinator
from inprocess import RegisterAgent, RunCli

GIB = 1024**3


def test_health_show_prints_the_fleet_at_a_glance_and_json_has_every_figure(
    run_cli: RunCli, register_agent: RegisterAgent
) -> None:
    agent = register_agent("build1")
    agent.client.heartbeat(
        "build1",
        Metrics(
            cpu_percent=12.0, load_1m=0.5, disk_free_bytes=40 * GIB, disk_total_bytes=100 * GIB
        ),
    )
    register_agent("build2")

    shown = run_cli("health", "show")
    figures = run_cli("health", "show", "--json").json()

    assert shown.exit_code == 0
    assert "Servers online: 1 / 2" in shown.stdout
    assert "Queue:          0 queued, 0 running, 0 blocked" in shown.stdout
    assert "Alerts open:    0 (0 critical)" in shown.stdout
    [build1] = [line for line in shown.stdout.splitlines() if line.startswith("build1")]
    assert build1.split()[:2] == ["build1", "online"]
    assert "12 %" in build1
    assert (figures["servers_online"], figures["servers_total"]) == (1, 2)
    assert figures["success_rate_24h"] is None
    assert figures["servers"][0]["metrics"]["cpu_percent"] == 12.0


def test_health_trends_says_when_there_is_no_sample_and_lists_them_when_there_are(
    run_cli: RunCli, coordinator: Coordinator, clock: FakeClock
) -> None:
    assert run_cli("health", "trends").stdout.startswith("No samples in the last 24h yet")
    coordinator.trends.sample_if_due()
    clock.advance(60)
    coordinator.trends.sample_if_due()

    [row] = run_cli("health", "trends", "--json").json()
    listed = run_cli("health", "trends").stdout.splitlines()
    refused = run_cli("health", "trends", "--window", "7d")

    assert (row["period"], row["passed"], row["failed"]) == ("minute", 0, 0)
    assert listed[0].split()[:3] == ["AT", "ONLINE", "QUEUED"]
    assert len(listed) == 2
    assert refused.exit_code != 0
    assert run_cli("health", "trends", "--window", "30d", "--json").json() == []
