"""buildcoord servers add|list|show|remove, driven in process."""

from __future__ import annotations

import json
from pathlib import Path

from buildcoord.client import Client
from buildcoord.models import Metrics
from inprocess import ADMIN_TOKEN, Connect, RegisterAgent, RunCli


def test_servers_add_prints_the_agent_token_as_its_last_line(
    run_cli: RunCli, connect: Connect
) -> None:
    token = run_cli("servers", "add", "build1", "--labels", "a,b").last_line
    agent = connect(token)
    server = agent.heartbeat("build1", Metrics(cpu_percent=3.0))
    assert server.status == "online"
    assert server.labels == ("a", "b")


def test_servers_add_keeps_the_token_off_stderr(run_cli: RunCli) -> None:
    outcome = run_cli("servers", "add", "build1")
    assert outcome.last_line not in outcome.stderr


def test_servers_list_shows_each_server(run_cli: RunCli, operator: Client) -> None:
    operator.register_server("build1", ["mvn"])
    operator.register_server("build2")
    lines = run_cli("servers", "list").stdout.splitlines()
    assert lines[0].split()[:2] == ["NAME", "STATUS"]
    assert [line.split()[0] for line in lines[1:]] == ["build1", "build2"]


def test_servers_list_shows_the_operators_and_the_reported_labels_apart(
    run_cli: RunCli, operator: Client, connect: Connect
) -> None:
    _server, token = operator.register_server("build1", ["os=debian"])
    connect(token).heartbeat("build1", Metrics(), labels=["mvn"])
    header, row = run_cli("servers", "list").stdout.splitlines()
    assert header.split()[-2:] == ["LABELS", "REPORTED"]
    assert row.split()[-2:] == ["os=debian", "mvn"]


def test_servers_show_prints_the_server(run_cli: RunCli, operator: Client) -> None:
    operator.register_server("build1", ["mvn"])
    stdout = run_cli("servers", "show", "build1").stdout
    assert "build1" in stdout
    assert "mvn" in stdout


def test_servers_remove_forgets_the_server(run_cli: RunCli, operator: Client) -> None:
    operator.register_server("build1")
    assert run_cli("servers", "remove", "build1").exit_code == 0
    assert operator.list_servers() == []


def test_servers_add_of_a_duplicate_is_one_error_line(run_cli: RunCli, operator: Client) -> None:
    operator.register_server("build1")
    assert "already exists" in run_cli("servers", "add", "build1").error


def test_servers_show_of_an_unknown_server_is_one_error_line(run_cli: RunCli) -> None:
    assert "ghost" in run_cli("servers", "show", "ghost").error


def test_servers_quarantine_and_resume_show_on_list_and_show(
    run_cli: RunCli, register_agent: RegisterAgent
) -> None:
    register_agent("build1")

    held = run_cli("servers", "quarantine", "build1", "--reason", "bad disk")
    listed = run_cli("servers", "list")
    shown = run_cli("servers", "show", "build1")
    resumed = run_cli("servers", "resume", "build1")
    again = run_cli("servers", "resume", "build1")

    assert held.stdout.startswith("Server build1 quarantined")
    assert "(quarantined)" in listed.stdout
    assert "Quarantined:" in shown.stdout
    assert "bad disk (buildcoord servers resume build1)" in shown.stdout
    assert resumed.stdout == "Server build1 resumed: it gets new work again\n"
    assert again.exit_code != 0
    assert "server build1 is not quarantined" in again.stderr
    assert "(quarantined)" not in run_cli("servers", "list").stdout


def test_rotate_token_prints_a_new_token_last_and_when_the_old_one_ends(
    run_cli: RunCli, register_agent: RegisterAgent, connect: Connect
) -> None:
    agent = register_agent("build1")
    outcome = run_cli("servers", "rotate-token", "build1", "--grace", "60")
    assert "the old one works until" in outcome.stdout
    fresh = connect(outcome.last_line)
    assert fresh.heartbeat("build1", Metrics()).name == "build1"
    assert agent.client.heartbeat("build1", Metrics()).name == "build1"  # within its grace


def test_a_token_file_stands_for_the_token_and_both_at_once_are_refused(
    run_cli: RunCli, tmp_path: Path
) -> None:
    token_file = tmp_path / "operator.token"
    token_file.write_text(f"{ADMIN_TOKEN}\n")
    listed = run_cli("--token-file", str(token_file), "servers", "list", token=None)
    assert listed.exit_code == 0, listed.stderr
    both = run_cli("--token-file", str(token_file), "servers", "list")
    assert both.exit_code == 2
    assert "not both" in both.stderr
    token_file.write_text("")
    empty = run_cli("--token-file", str(token_file), "servers", "list", token=None)
    assert empty.exit_code == 1
    assert f"the token file {token_file} does not hold a token" in empty.stderr


def test_events_shows_who_changed_what_under_the_tokens_name_and_pages_on(
    run_cli: RunCli, register_agent: RegisterAgent
) -> None:
    register_agent("build1")
    run_cli("servers", "quarantine", "build1", "--reason", "disk errors")
    shown = run_cli("events", "--subject", "server:build1")
    assert shown.exit_code == 0, shown.stderr
    assert "operator:admin (BUILDCOORD_ADMIN_TOKEN)" in shown.stdout
    assert "server.quarantined" in shown.stdout
    first_id = int(shown.stdout.splitlines()[1].split()[0])
    later = run_cli("events", "--subject", "server:build1", "--after", str(first_id), "--json")
    assert all(event["id"] > first_id for event in json.loads(later.stdout))
    refused = run_cli("events", "--limit", "0")
    assert refused.exit_code == 2
