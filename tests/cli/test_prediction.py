"""buildcoord predict duration|recommend|stats|evaluate, and the forecasts in queue list.

duration, recommend, stats and queue list run in process against the real app; evaluate reads
a history file and needs no coordinator.
"""

from __future__ import annotations

import csv
import json
import os
import re
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from buildcoord.cli import cli
from buildcoord.client import Client
from buildcoord.clock import FakeClock
from buildcoord.models import Metrics
from buildcoord.prediction.history_file import read_history
from inprocess import Agent, RegisterAgent, RunCli
from prediction.history import QUEUED_HEADER, queued_rows, synthetic_rows, write_csv

COMMIT = "abc1234"


def builds(
    operator: Client,
    agent: Agent,
    clock: FakeClock,
    seconds: float,
    count: int,
    trigger: str | None = None,
) -> None:
    """Run ``count`` successful builds of main on the agent's server, each taking ``seconds``."""
    for _ in range(count):
        job = operator.submit_job("main", COMMIT, trigger=trigger)
        claimed = agent.client.claim_job(agent.name)
        assert claimed is not None
        assert claimed.id == job.id
        clock.advance(seconds)
        agent.client.complete_job(
            job.id,
            status="succeeded",
            duration=seconds,
            server=agent.name,
            fencing_token=claimed.fencing_token,
        )


@pytest.fixture
def fleet(operator: Client, register_agent: RegisterAgent, clock: FakeClock) -> list[Agent]:
    """main set up; build1 builds it in 1000 s, build2 in 600 s; both online now."""
    operator.add_branch("main", repo="/srv/repo", command="make")
    agents = [register_agent("build1"), register_agent("build2")]
    builds(operator, agents[0], clock, 1000, 3)
    builds(operator, agents[1], clock, 600, 3)
    for agent in agents:
        agent.client.heartbeat(agent.name, Metrics(disk_free_bytes=50 * 1024**3))
    return agents


@pytest.mark.usefixtures("fleet")
def test_predict_duration_prints_p50_band_and_what_it_rests_on(run_cli: RunCli) -> None:
    lines = run_cli("predict", "duration", "main", "--server", "build2").stdout.splitlines()
    # The band is calibrated on past errors: build2's first builds were predicted from build1's.
    found = re.fullmatch(r"main on build2: p50 600s \(p10-p90 (\d+)-(\d+)s\)", lines[0])
    assert found is not None, lines[0]
    assert int(found[1]) < 600 <= int(found[2])
    assert lines[1] == "history: 6 successful builds; level: key+branch+server"


@pytest.mark.usefixtures("fleet")
def test_predict_duration_json_has_the_numbers(run_cli: RunCli) -> None:
    data = run_cli("predict", "duration", "main", "--json").json()
    assert (data["branch"], data["server"], data["history"], data["level"]) == (
        "main",
        None,
        6,
        "key+branch",
    )
    assert data["p10"] <= data["p50"] <= data["p90"]


@pytest.mark.usefixtures("fleet")
def test_predict_recommend_names_the_faster_server_and_ranks_the_others(run_cli: RunCli) -> None:
    lines = run_cli("predict", "recommend", "main").stdout.splitlines()
    assert lines[0] == "Recommended: build2"
    assert lines[2].split()[:3] == ["build2", "online", "600s"]
    assert lines[3].split()[:3] == ["build1", "online", "1000s"]


def test_predict_recommend_json_says_why_a_stale_server_was_skipped(
    run_cli: RunCli, fleet: list[Agent], clock: FakeClock
) -> None:
    clock.advance(20)
    fleet[0].client.heartbeat("build1", Metrics(disk_free_bytes=50 * 1024**3))
    data = run_cli("predict", "recommend", "main", "--json").json()
    assert data["server"] == "build1"
    skipped = [choice for choice in data["choices"] if not choice["eligible"]]
    assert [(choice["server"], choice["status"]) for choice in skipped] == [("build2", "stale")]


def test_predicting_an_unknown_branch_is_one_error_line(run_cli: RunCli) -> None:
    assert "unknown branch nope" in run_cli("predict", "duration", "nope").error
    assert "unknown branch nope" in run_cli("predict", "recommend", "nope").error


@pytest.mark.usefixtures("fleet")
def test_predict_stats_prints_the_four_tables(run_cli: RunCli) -> None:
    stdout = run_cli("predict", "stats").stdout
    for title in ("By Branch:", "By Server:", "By Hour (UTC):", "By Day of Week (UTC):"):
        assert title in stdout
    assert "main    6       100 %    800s  800s" in stdout


@pytest.mark.usefixtures("fleet")
def test_predict_stats_json_has_the_tables(run_cli: RunCli) -> None:
    data = run_cli("predict", "stats", "--json").json()
    assert data["builds"] == 6
    assert [row["group"] for row in data["by_server"]] == ["build1", "build2"]


@pytest.mark.usefixtures("fleet")
def test_queue_list_shows_predicted_start_and_finish_of_queued_jobs(
    run_cli: RunCli, operator: Client
) -> None:
    first = operator.submit_job("main", COMMIT)
    second = operator.submit_job("main", COMMIT)
    lines = run_cli("queue", "list", "queued").stdout.splitlines()
    assert lines[0].startswith(f"{first.id} ")
    assert "on:build2" in lines[0]
    assert "on:build1" in lines[1]
    assert lines[1].startswith(f"{second.id} ")
    assert "predicted_start:" in lines[0]
    assert "predicted_finish:" in lines[1]


def test_queue_add_prints_where_and_when_the_new_job_should_run_before_its_id(
    run_cli: RunCli, operator: Client, fleet: list[Agent], clock: FakeClock
) -> None:
    operator.submit_job("main", COMMIT)  # build2 (600 s) takes it; the next waits or goes slow
    outcome = run_cli("queue", "add", "main", COMMIT)
    lines = outcome.stdout.splitlines()
    job_id = int(lines[-1])
    assert lines[0].startswith(f"Added job: {job_id} ")
    # build1 (1000 s, free now) finishes it before build2 (600 s after 600 s) would.
    now = clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    assert lines[1].startswith(f"Forecast: starts {now} on build1, finishes ")
    assert lines[1].endswith("(in 16 min 40 s)")


def test_queue_add_says_why_there_is_no_forecast(run_cli: RunCli, operator: Client) -> None:
    lines = run_cli("queue", "add", "main", COMMIT).stdout.splitlines()
    assert lines[1].startswith("Forecast: none (")
    assert lines[-1].isdigit()


def test_queue_add_no_forecast_prints_the_job_alone(run_cli: RunCli, operator: Client) -> None:
    lines = run_cli("queue", "add", "main", COMMIT, "--no-forecast").stdout.splitlines()
    assert len(lines) == 2
    assert lines[-1].isdigit()


def test_predict_export_writes_a_history_that_evaluate_reads_with_queue_times_and_servers(
    run_cli: RunCli, fleet: list[Agent], tmp_path: Path
) -> None:
    path = tmp_path / "ours.csv"
    assert run_cli("predict", "export", str(path)).stdout.strip() == (
        f"Exported 6 builds to {path}"
    )
    history = read_history(path)
    assert not history.malformed
    assert [row.server for row in history.rows] == ["build1"] * 3 + ["build2"] * 3
    assert all(row.queued_at is not None for row in history.rows)
    assert [row.duration for row in history.rows] == [1000.0] * 3 + [600.0] * 3
    assert {row.project for row in history.rows} == {"main"}
    outcome = CliRunner().invoke(cli, ["predict", "evaluate", str(path), "--json"])
    assert outcome.exit_code == 0, outcome.output
    assert json.loads(outcome.stdout)["wait"]["rows"] == 6


def test_predict_export_limit_is_bounded(run_cli: RunCli, tmp_path: Path) -> None:
    outcome = run_cli("predict", "export", str(tmp_path / "x.csv"), "--limit", "100001")
    assert outcome.exit_code != 0
    assert not (tmp_path / "x.csv").exists()


def test_queue_list_shows_a_running_jobs_expected_time_left(
    run_cli: RunCli, operator: Client, fleet: list[Agent], clock: FakeClock
) -> None:
    job = operator.submit_job("main", COMMIT)
    assert fleet[1].client.claim_job("build2") is not None
    clock.advance(100)
    fleet[1].client.heartbeat("build2", Metrics())
    [line] = run_cli("queue", "list", "running").stdout.splitlines()
    assert line.startswith(f"{job.id} ")
    assert "expected:500s_left" in line


@pytest.mark.usefixtures("fleet")
def test_queue_list_json_adds_the_forecast_to_the_job_fields(
    run_cli: RunCli, operator: Client
) -> None:
    job = operator.submit_job("main", COMMIT)
    [found] = run_cli("queue", "list", "queued", "--json").json()
    assert (found["id"], found["branch"]) == (job.id, "main")
    assert found["forecast"]["server"] == "build2"
    assert found["forecast"]["expected_remaining_seconds"] == 600


@pytest.fixture
def schedule_and_push(
    operator: Client, register_agent: RegisterAgent, clock: FakeClock
) -> list[Agent]:
    """main set up; on build1 (online), scheduled builds take 300 s and pushed ones 100 s,
    six of each, interleaved."""
    operator.add_branch("main", repo="/srv/repo", command="make")
    agent = register_agent("build1")
    for _ in range(6):
        builds(operator, agent, clock, 300, 1, trigger="schedule")
        builds(operator, agent, clock, 100, 1, trigger="push")
    agent.client.heartbeat(agent.name, Metrics(disk_free_bytes=50 * 1024**3))
    return [agent]


@pytest.mark.usefixtures("schedule_and_push")
def test_predict_duration_with_a_trigger_weighs_builds_started_the_same_way(
    run_cli: RunCli,
) -> None:
    scheduled = run_cli("predict", "duration", "main", "--trigger", "schedule", "--json").json()
    pushed = run_cli("predict", "duration", "main", "--trigger", "push", "--json").json()
    assert scheduled["p50"] > 200
    assert pushed["p50"] < 150
    assert (scheduled["trigger"], pushed["trigger"]) == ("schedule", "push")


@pytest.mark.usefixtures("schedule_and_push")
def test_predict_duration_with_a_trigger_says_so(run_cli: RunCli) -> None:
    lines = run_cli("predict", "duration", "main", "--server", "build1", "--trigger", "push")
    assert lines.stdout.startswith("main on build1 (push): p50 100s")


@pytest.mark.usefixtures("schedule_and_push")
def test_predict_recommend_with_a_trigger_predicts_a_build_started_that_way(
    run_cli: RunCli,
) -> None:
    data = run_cli("predict", "recommend", "main", "--trigger", "schedule", "--json").json()
    [choice] = data["choices"]
    assert choice["server"] == "build1"
    assert choice["duration"]["p50"] > 200
    assert choice["duration"]["trigger"] == "schedule"


@pytest.mark.usefixtures("schedule_and_push")
def test_predicting_with_a_malformed_trigger_is_one_error_line(run_cli: RunCli) -> None:
    assert "invalid trigger" in run_cli("predict", "duration", "main", "--trigger", "A B").error
    assert "invalid trigger" in run_cli("predict", "recommend", "main", "--trigger", "").error


# -- predict evaluate ------------------------------------------------------------------------------


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["predict", "evaluate", *args])


def _history(tmp_path: Path) -> Path:
    rows = [*synthetic_rows(300), ("acme/app", "build", "main", "soon", "10", "success")]
    return write_csv(tmp_path / "history.csv", rows)


def test_evaluate_prints_overall_and_per_project_figures_with_the_goal(tmp_path: Path) -> None:
    result = _run(str(_history(tmp_path)))
    assert result.exit_code == 0, result.output
    assert "1 malformed" in result.stdout
    assert "started_at is not an ISO 8601 time" in result.stdout
    for text in ("all projects", "acme/app", "acme/lib", "Jenkins MAPE", "coverage", "Goal"):
        assert text in result.stdout
    assert "PASS" in result.stdout or "MISS" in result.stdout


def test_evaluate_json_is_one_object_with_both_estimators(tmp_path: Path) -> None:
    result = _run(str(_history(tmp_path)), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["malformed"]["count"] == 1
    assert set(report["projects"]) == {"acme/app", "acme/lib"}
    assert report["overall"]["ours"]["rows"] == report["scored"] > 0
    assert report["overall"]["jenkins"]["coverage"] is None
    assert isinstance(report["passed"], bool)


def test_evaluate_of_a_history_with_queue_times_scores_the_wait_forecast_too(
    tmp_path: Path,
) -> None:
    path = write_csv(tmp_path / "queued.csv", queued_rows(300), QUEUED_HEADER)
    lines = _run(str(path)).stdout.splitlines()
    section = lines.index(next(line for line in lines if line.startswith("Queue wait")))
    assert "300 rows scored" in lines[section]
    assert lines[section + 2].startswith("ours (the queue simulated)")
    assert lines[section + 3].startswith("mean of the last 3 waits")
    wait = json.loads(_run(str(path), "--json").stdout)["wait"]
    assert wait["rows"] == 300
    assert 0 <= wait["mae_seconds"] < wait["baseline_mae_seconds"]


def test_evaluate_json_has_no_wait_for_a_history_without_queue_times(tmp_path: Path) -> None:
    assert json.loads(_run(str(_history(tmp_path)), "--json").stdout)["wait"] is None


def test_evaluate_rows_writes_one_line_per_scored_row(tmp_path: Path) -> None:
    out = tmp_path / "rows.csv"
    result = _run(str(_history(tmp_path)), "--rows", str(out), "--json")
    assert result.exit_code == 0, result.output
    with out.open(newline="") as handle:
        lines = list(csv.DictReader(handle))
    assert len(lines) == json.loads(result.stdout)["scored"]
    first = lines[0]
    assert float(first["p10"]) <= float(first["p50"]) <= float(first["p90"])
    assert {"line", "project", "job", "actual", "jenkins", "level"} <= set(first)
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []


def test_evaluate_of_a_missing_file_is_one_error_line(tmp_path: Path) -> None:
    result = _run(str(tmp_path / "absent.csv"))
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: cannot read")


def test_evaluate_of_a_file_without_the_columns_is_one_error_line(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("name,size\nx,1\n")
    result = _run(str(path))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert "missing column" in result.stderr


def test_evaluate_rows_file_gets_the_usual_permissions_not_a_temporary_files(
    tmp_path: Path,
) -> None:
    out = tmp_path / "rows.csv"
    result = _run(str(_history(tmp_path)), "--rows", str(out))
    assert result.exit_code == 0, result.output
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~mask


def test_evaluate_of_a_history_too_short_to_score_says_so_instead_of_nan(
    tmp_path: Path,
) -> None:
    path = write_csv(tmp_path / "short.csv", synthetic_rows(2))
    result = _run(str(path))
    assert result.exit_code == 0, result.output
    assert "no row could be scored" in result.stdout
    assert "nan" not in result.stdout
    report = json.loads(_run(str(path), "--json").stdout)
    assert report["scored"] == 0
    assert "nan" not in json.dumps(report["goals"]).lower()
