"""buildcoord log: events and steps written from a build, shown as Markdown and JSON."""

from __future__ import annotations

import json

import pytest

from buildcoord.client import Client
from buildcoord.store import Store
from inprocess import RegisterAgent, RunCli


@pytest.fixture
def leased(operator: Client, register_agent: RegisterAgent) -> tuple[int, str, int, str]:
    """A job running on build1: (job id, server, fencing token, agent token)."""
    agent = register_agent("build1")
    operator.add_branch("main", repo="/srv/repo", command="make")
    operator.submit_job("main", "abcdef1")
    assignment = agent.client.claim_assignment("build1")
    assert assignment is not None
    return assignment.job.id, "build1", assignment.job.fencing_token, agent.token


def build_env(
    monkeypatch: pytest.MonkeyPatch, leased: tuple[int, str, int, str]
) -> tuple[int, str]:
    """Set the environment an agent gives its builds; return (job id, agent token)."""
    job_id, server, fencing_token, token = leased
    monkeypatch.setenv("BUILDCOORD_JOB_ID", str(job_id))
    monkeypatch.setenv("BUILDCOORD_SERVER", server)
    monkeypatch.setenv("BUILDCOORD_FENCING_TOKEN", str(fencing_token))
    return job_id, token


def test_a_build_adds_events_and_steps_that_show_as_markdown(
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
    leased: tuple[int, str, int, str],
) -> None:
    job_id, token = build_env(monkeypatch, leased)
    assert (
        run_cli("log", "event", "--level", "warning", "disk is filling", token=token).exit_code == 0
    )
    step = run_cli("log", "run", "compile", "--", "echo", "compiled ok", token=token)
    assert step.exit_code == 0
    assert "compiled ok" in step.stdout

    shown = run_cli("log", "show", str(job_id))

    assert "[!] disk is filling" in shown.stdout
    assert "[OK] command `compile`: exit 0" in shown.stdout
    assert "compiled ok" in shown.stdout
    assert "**Duration:** still running" in shown.stdout


def test_a_failing_step_keeps_its_exit_code_and_is_marked_as_an_error(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, leased: tuple[int, str, int, str]
) -> None:
    job_id, token = build_env(monkeypatch, leased)
    step = run_cli("log", "run", "check", "--", "sh", "-c", "echo bad >&2; exit 3", token=token)
    assert step.exit_code == 3
    document = json.loads(run_cli("log", "show", str(job_id), "--format", "json").stdout)
    [command] = document["commands"]
    assert command["level"] == "error"
    assert command["details"]["exit_code"] == 3
    assert "bad" in command["details"]["output"]


def test_long_step_output_keeps_its_head_and_tail_with_a_notice(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, leased: tuple[int, str, int, str]
) -> None:
    job_id, token = build_env(monkeypatch, leased)
    script = "python3 -c \"print('A' * 6000 + 'B' * 6000)\""
    assert run_cli("log", "run", "big", "--", "sh", "-c", script, token=token).exit_code == 0
    document = json.loads(run_cli("log", "show", str(job_id), "--format", "json").stdout)
    output = document["commands"][0]["details"]["output"]
    assert output.startswith("A" * 5000)
    assert output.rstrip("\n").endswith("B" * 4999)
    assert "characters truncated" in output
    assert document["commands"][0]["details"]["truncated"] is True


def test_a_build_event_from_a_stale_lease_is_refused(
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
    leased: tuple[int, str, int, str],
) -> None:
    _job_id, token = build_env(monkeypatch, leased)
    monkeypatch.setenv("BUILDCOORD_FENCING_TOKEN", "999")
    outcome = run_cli("log", "event", "late", token=token)
    assert "stale fencing token" in outcome.error


def test_log_event_outside_a_build_says_what_is_missing(run_cli: RunCli) -> None:
    assert "BUILDCOORD_JOB_ID" in run_cli("log", "event", "hello").error


def test_log_tail_prints_the_lines_so_far(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, leased: tuple[int, str, int, str]
) -> None:
    job_id, token = build_env(monkeypatch, leased)
    run_cli("log", "event", "first", token=token)
    run_cli("log", "event", "second", token=token)
    lines = run_cli("log", "tail", str(job_id)).stdout.splitlines()
    assert lines == ["[i] first", "[i] second"]


@pytest.mark.parametrize("style", ["markdown", "json"])
def test_log_show_renders_an_entry_stored_with_an_absurd_time(
    run_cli: RunCli, operator: Client, store: Store, style: str
) -> None:
    job = operator.submit_job("main", "abcdef1")
    entry = {"at": 1e308, "kind": "event", "level": "info", "message": "odd clock", "details": None}
    store.logs.append_entries(job.id, [entry], server=None, fencing_token=None)

    shown = run_cli("log", "show", str(job.id), "--format", style)

    assert shown.exit_code == 0, shown.stderr
    assert "odd clock" in shown.stdout
