"""buildcoord alerts list|show|ack, driven in process against the real app and monitor."""

from __future__ import annotations

from buildcoord.client import Client
from buildcoord.clock import FakeClock
from buildcoord.models import Metrics
from buildcoord.services.coordinator import Coordinator
from inprocess import Agent, RegisterAgent, RunCli

GIB = 1024**3


def beat(agent: Agent) -> None:
    agent.client.heartbeat(agent.name, Metrics(disk_free_bytes=100 * GIB))


def stale_alert(coordinator: Coordinator, register_agent: RegisterAgent, clock: FakeClock) -> int:
    """build1 sends one heartbeat, then none: the monitor opens heartbeat_stale for it."""
    beat(register_agent("build1"))
    clock.advance(20)
    [alert] = coordinator.monitor.step().opened
    return alert.id


def test_alerts_list_shows_the_open_alerts_and_says_so_when_there_are_none(
    run_cli: RunCli, coordinator: Coordinator, register_agent: RegisterAgent, clock: FakeClock
) -> None:
    assert run_cli("alerts", "list").stdout == "No open alerts\n"
    alert_id = stale_alert(coordinator, register_agent, clock)

    listed = run_cli("alerts", "list")

    assert listed.exit_code == 0
    [header, row] = listed.stdout.strip().splitlines()
    assert header.split()[:5] == ["ID", "STATE", "SEVERITY", "RULE", "SUBJECT"]
    assert row.split()[:5] == [str(alert_id), "open", "warning", "heartbeat_stale", "build1"]
    assert "build1: no heartbeat for 20 s (4 missed)" in row


def test_alerts_list_json_gives_every_field_and_filters_by_rule(
    run_cli: RunCli, coordinator: Coordinator, register_agent: RegisterAgent, clock: FakeClock
) -> None:
    alert_id = stale_alert(coordinator, register_agent, clock)

    [alert] = run_cli("alerts", "list", "--json").json()
    assert alert["id"] == alert_id
    assert alert["details"] == {"heartbeat_age_seconds": 20.0, "missed": 4}
    assert alert["resolved_at"] is None
    assert run_cli("alerts", "list", "--rule", "disk_low", "--json").json() == []


def test_alerts_ack_acknowledges_and_show_says_by_whom(
    run_cli: RunCli,
    operator: Client,
    coordinator: Coordinator,
    register_agent: RegisterAgent,
    clock: FakeClock,
) -> None:
    alert_id = stale_alert(coordinator, register_agent, clock)

    acked = run_cli("alerts", "ack", str(alert_id))
    shown = run_cli("alerts", "show", str(alert_id))

    assert acked.stdout.startswith(f"Alert {alert_id} acknowledged by ")
    assert "State:    acknowledged" in shown.stdout
    assert "Acknowledged: " in shown.stdout
    assert operator.get_alert(alert_id).acknowledged_at is not None


def test_alerts_refuse_an_unknown_rule_a_missing_alert_and_an_agents_ack(
    run_cli: RunCli,
    operator: Client,
    coordinator: Coordinator,
    register_agent: RegisterAgent,
    clock: FakeClock,
) -> None:
    alert_id = stale_alert(coordinator, register_agent, clock)
    agent = register_agent("build2")

    unknown = run_cli("alerts", "list", "--rule", "disk_full")
    missing = run_cli("alerts", "show", str(alert_id + 100))
    refused = run_cli("alerts", "ack", str(alert_id), token=agent.token)

    assert unknown.exit_code != 0
    assert "no rule 'disk_full'" in unknown.stderr
    assert missing.exit_code != 0
    assert f"no alert {alert_id + 100}" in missing.stderr
    assert refused.exit_code != 0
    assert "acknowledging alerts" in refused.stderr
    assert operator.get_alert(alert_id).acknowledged_at is None


def test_a_resolved_alert_shows_when_it_resolved_and_lists_only_with_all(
    run_cli: RunCli,
    operator: Client,
    coordinator: Coordinator,
    register_agent: RegisterAgent,
    clock: FakeClock,
) -> None:
    alert_id = stale_alert(coordinator, register_agent, clock)
    agent = Agent("build1", "", operator)  # an operator may send a server's heartbeat
    beat(agent)
    coordinator.monitor.step()  # clear from here
    clock.advance(coordinator.settings.resolve_after_seconds)
    beat(agent)
    [resolved] = coordinator.monitor.step().resolved

    assert resolved.id == alert_id
    assert run_cli("alerts", "list").stdout == "No open alerts\n"
    [row] = run_cli("alerts", "list", "--all", "--json").json()
    assert row["id"] == alert_id
    assert row["resolved_at"] is not None
    assert "State:    resolved" in run_cli("alerts", "show", str(alert_id)).stdout


def test_alerts_silence_prints_its_id_and_unsilence_ends_it(
    run_cli: RunCli,
    operator: Client,
    coordinator: Coordinator,
    register_agent: RegisterAgent,
    clock: FakeClock,
) -> None:
    alert_id = stale_alert(coordinator, register_agent, clock)

    made = run_cli("alerts", "silence", "heartbeat_stale:build1", "--for", "2h", "--comment", "x")
    silence_id = int(made.last_line)
    assert made.stdout.startswith("Silenced heartbeat_stale:build1 until ")
    assert "silenced" in run_cli("alerts", "list").stdout
    assert operator.get_alert(alert_id).silenced
    [listed] = run_cli("alerts", "silences", "--json").json()
    assert (listed["id"], listed["subject"], listed["comment"]) == (silence_id, "build1", "x")

    ended = run_cli("alerts", "unsilence", str(silence_id))
    assert ended.stdout == f"Silence {silence_id} of heartbeat_stale:build1 ended\n"
    assert not operator.get_alert(alert_id).silenced
    assert run_cli("alerts", "silences").stdout == "No silences in force\n"


def test_alerts_silence_refuses_a_length_that_is_not_one(run_cli: RunCli, operator: Client) -> None:
    for length in ("soon", "0", "-5m", "nan", "2x"):
        refused = run_cli("alerts", "silence", "disk_low", "--for", length)
        assert refused.exit_code != 0
        assert "is not a length of time" in refused.stderr
    assert operator.list_silences(include_ended=True) == []


def test_alerts_show_lists_the_notifications_and_test_notify_reports_a_failure(
    run_cli: RunCli, coordinator: Coordinator, register_agent: RegisterAgent, clock: FakeClock
) -> None:
    alert_id = stale_alert(coordinator, register_agent, clock)

    shown = run_cli("alerts", "show", str(alert_id), "--json").json()
    refused = run_cli("alerts", "test-notify", "pager")

    assert shown["id"] == alert_id
    assert shown["deliveries"] == []  # no notifier is configured here
    assert refused.exit_code != 0
    assert "no notifier 'pager' (none is configured)" in refused.stderr
