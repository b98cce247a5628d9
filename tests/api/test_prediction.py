"""/api/v1/predict and the forecasts in /api/v1/jobs, over HTTP in process."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert
from starlette.testclient import TestClient

from buildcoord.client import Client
from buildcoord.clock import FakeClock
from buildcoord.models import Metrics
from buildcoord.store import Store
from buildcoord.store.engine import write_transaction
from buildcoord.store.history import build_key
from buildcoord.store.schema import build_history
from inprocess import ADMIN_TOKEN, API, Agent, RegisterAgent, bearer, error_of

OPERATOR = bearer(ADMIN_TOKEN)
COMMIT = "abc1234"
GIB = 1024**3


def builds(
    operator: Client,
    agent: Client,
    server: str,
    clock: FakeClock,
    seconds: float,
    count: int,
    trigger: str | None = None,
) -> None:
    """Run ``count`` successful builds of main on server, each taking ``seconds``."""
    for _ in range(count):
        job = operator.submit_job("main", COMMIT, trigger=trigger)
        claimed = agent.claim_job(server)
        assert claimed is not None
        assert claimed.id == job.id
        clock.advance(seconds)
        agent.complete_job(
            job.id,
            status="succeeded",
            duration=seconds,
            server=server,
            fencing_token=claimed.fencing_token,
        )


def test_predict_duration_gives_p50_band_history_and_level(
    http: TestClient, operator: Client, register_agent: RegisterAgent, clock: FakeClock
) -> None:
    operator.add_branch("main", repo="/srv/repo", command="make")
    build1 = register_agent("build1")
    builds(operator, build1.client, "build1", clock, 120, 3)

    response = http.get(
        f"{API}/predict/duration", params={"branch": "main", "server": "build1"}, headers=OPERATOR
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["p50"], body["history"], body["level"]) == (120, 3, "key+branch+server")
    assert body["p10"] <= body["p50"] <= body["p90"]


def test_predicting_an_unknown_branch_is_a_404(http: TestClient) -> None:
    for endpoint in ("duration", "recommend"):
        response = http.get(
            f"{API}/predict/{endpoint}", params={"branch": "nope"}, headers=OPERATOR
        )
        assert "unknown branch nope" in error_of(response, 404)


def test_recommend_over_http_names_the_faster_idle_server(
    operator: Client, register_agent: RegisterAgent, clock: FakeClock
) -> None:
    operator.add_branch("main", repo="/srv/repo", command="make")
    slow, fast = register_agent("build1"), register_agent("build2")
    builds(operator, slow.client, "build1", clock, 1000, 3)
    builds(operator, fast.client, "build2", clock, 600, 3)
    for agent in (slow, fast):
        agent.client.heartbeat(agent.name, Metrics(disk_free_bytes=50 * GIB))

    recommendation = operator.recommend_server("main")

    assert recommendation.server == "build2"
    assert [choice.server for choice in recommendation.choices] == ["build2", "build1"]


def test_the_job_list_carries_forecasts_in_claim_order(
    http: TestClient, operator: Client, register_agent: RegisterAgent, clock: FakeClock
) -> None:
    operator.add_branch("main", repo="/srv/repo", command="make")
    build1 = register_agent("build1")
    builds(operator, build1.client, "build1", clock, 100, 3)
    build1.client.heartbeat("build1", Metrics())
    first = operator.submit_job("main", COMMIT)
    second = operator.submit_job("main", COMMIT)

    queued = http.get(f"{API}/jobs", params={"status": "queued"}, headers=OPERATOR).json()

    assert [job["id"] for job in queued] == [first.id, second.id]
    starts = [job["forecast"]["predicted_start"] for job in queued]
    finishes = [job["forecast"]["predicted_finish"] for job in queued]
    assert starts == ["2026-01-01T00:05:00Z", "2026-01-01T00:06:40Z"]
    assert finishes == ["2026-01-01T00:06:40Z", "2026-01-01T00:08:20Z"]


def test_queueing_a_job_answers_with_its_predicted_start_and_finish_behind_the_queue(
    http: TestClient, operator: Client, register_agent: RegisterAgent, clock: FakeClock
) -> None:
    operator.add_branch("main", repo="/srv/repo", command="make")
    build1 = register_agent("build1")
    builds(operator, build1.client, "build1", clock, 100, 3)
    build1.client.heartbeat("build1", Metrics())
    running = operator.submit_job("main", COMMIT)
    assert build1.client.claim_job("build1") is not None
    clock.advance(40)  # the running build has 60 s left of its 100
    build1.client.heartbeat("build1", Metrics())
    operator.submit_job("main", COMMIT)

    response = http.post(f"{API}/jobs", json={"branch": "main", "commit": COMMIT}, headers=OPERATOR)

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["branch"], body["status"]) == ("main", "queued")
    # Behind the running job (60 s left) and the queued one (100 s): starts in 160 s.
    assert body["forecast"] == {
        "job_id": body["id"],
        "server": "build1",
        "predicted_start": "2026-01-01T00:08:20Z",
        "predicted_finish": "2026-01-01T00:10:00Z",
        "expected_remaining_seconds": 260.0,
        "note": None,
    }
    assert running.id < body["id"]


def test_a_job_queued_ahead_by_priority_is_forecast_before_the_jobs_it_outranks(
    operator: Client, register_agent: RegisterAgent, clock: FakeClock
) -> None:
    operator.add_branch("main", repo="/srv/repo", command="make")
    build1 = register_agent("build1")
    builds(operator, build1.client, "build1", clock, 100, 3)
    build1.client.heartbeat("build1", Metrics())
    for _ in range(3):
        operator.submit_job("main", COMMIT, priority=5)

    urgent = operator.submit_job_with_forecast("main", COMMIT, priority=1)

    assert urgent.forecast is not None
    assert urgent.forecast.expected_remaining_seconds == 100  # next, not behind the three
    assert urgent.forecast.predicted_start == clock.now()


@pytest.mark.parametrize(
    ("setup", "note"),
    [
        pytest.param("no history", "no build has succeeded yet", id="nothing learnt"),
        pytest.param("no server", "no online server has its labels", id="nowhere to run"),
        pytest.param("blocked", "it is blocked", id="blocked"),
    ],
)
def test_a_job_queued_without_a_forecast_says_why(
    http: TestClient,
    operator: Client,
    register_agent: RegisterAgent,
    clock: FakeClock,
    setup: str,
    note: str,
) -> None:
    operator.add_branch("main", repo="/srv/repo", command="make")
    body: dict[str, object] = {"branch": "main", "commit": COMMIT}
    if setup != "no server":
        build1 = register_agent("build1")
        build1.client.heartbeat("build1", Metrics())
    if setup == "blocked":
        builds(operator, build1.client, "build1", clock, 100, 3)
        failed = operator.submit_job("main", COMMIT)
        claimed = build1.client.claim_job("build1")
        assert claimed is not None
        build1.client.complete_job(
            failed.id,
            status="failed",
            exit_code=1,
            server="build1",
            fencing_token=claimed.fencing_token,
        )
        body["depends_on"] = [failed.id]

    response = http.post(f"{API}/jobs", json=body, headers=OPERATOR)

    assert response.status_code == 201, response.text
    forecast = response.json()["forecast"]
    assert forecast["predicted_start"] is None
    assert forecast["predicted_finish"] is None
    assert note in forecast["note"]


def test_queueing_a_job_with_forecast_false_answers_the_job_alone(http: TestClient) -> None:
    response = http.post(
        f"{API}/jobs",
        params={"forecast": "false"},
        json={"branch": "main", "commit": COMMIT},
        headers=OPERATOR,
    )
    assert response.status_code == 201, response.text
    assert response.json()["forecast"] is None


def test_the_job_list_leaves_forecasts_out_when_asked(http: TestClient, operator: Client) -> None:
    operator.submit_job("main", COMMIT)
    listed = http.get(f"{API}/jobs", params={"forecast": "false"}, headers=OPERATOR).json()
    assert [job["forecast"] for job in listed] == [None]


def test_stats_over_http_has_the_four_tables(
    operator: Client, register_agent: RegisterAgent, clock: FakeClock
) -> None:
    build1 = register_agent("build1")
    builds(operator, build1.client, "build1", clock, 60, 2)

    stats = operator.history_stats()

    assert stats.builds == 2
    assert [(row.group, row.count, row.mean_duration) for row in stats.by_branch] == [
        ("main", 2, 60)
    ]
    assert [row.group for row in stats.by_server] == ["build1"]
    assert stats.by_hour[0].group == "00"
    assert stats.by_day_of_week[0].group == "Thu"


def test_predict_duration_over_http_weighs_builds_started_by_the_asked_trigger(
    http: TestClient, operator: Client, register_agent: RegisterAgent, clock: FakeClock
) -> None:
    operator.add_branch("main", repo="/srv/repo", command="make")
    build1 = register_agent("build1")
    for _ in range(6):
        builds(operator, build1.client, "build1", clock, 300, 1, trigger="schedule")
        builds(operator, build1.client, "build1", clock, 100, 1, trigger="push")

    def p50(trigger: str) -> float:
        params = {"branch": "main", "trigger": trigger}
        response = http.get(f"{API}/predict/duration", params=params, headers=OPERATOR)
        assert response.status_code == 200, response.text
        assert response.json()["trigger"] == trigger
        value: float = response.json()["p50"]
        return value

    assert p50("schedule") > 200
    assert p50("push") < 150


def test_predicting_with_a_malformed_trigger_is_a_422_naming_the_trigger(
    http: TestClient, operator: Client, register_agent: RegisterAgent, clock: FakeClock
) -> None:
    operator.add_branch("main", repo="/srv/repo", command="make")
    builds(operator, register_agent("build1").client, "build1", clock, 100, 1)
    for endpoint in ("duration", "recommend"):
        params = {"branch": "main", "trigger": "Pull Request"}
        response = http.get(f"{API}/predict/{endpoint}", params=params, headers=OPERATOR)
        assert "invalid trigger" in error_of(response, 422)


# --- durations stored before they were bounded ------------------------------------------------

ABSURD_DURATIONS = [1e12, 1e308, 5e-324, 0.0, -5.0, math.nan]
MONTH = timedelta(days=30)


def store_success(store: Store, job_id: int, duration: float) -> None:
    """Write a successful build of main (command make) straight into the history, as one
    recorded before durations were bounded; NaN only where the database keeps it."""
    if math.isnan(duration) and store.engine.dialect.name == "sqlite":
        pytest.skip("SQLite stores NaN as NULL, which the column refuses")
    at = datetime(2025, 12, 31, tzinfo=UTC).timestamp()
    with write_transaction(store.engine) as conn:
        conn.execute(
            insert(build_history).values(
                job_id=job_id,
                attempt=1,
                branch="main",
                build_key=build_key("main", "make"),
                server="build1",
                commit=COMMIT,
                queued_at=at,
                started_at=at,
                finished_at=at + 100,
                duration=duration,
                queue_wait=0.0,
                result="succeeded",
                hour_of_day=0,
                day_of_week=2,
                trigger="manual",
            )
        )


@pytest.fixture
def absurd_history(
    request: pytest.FixtureRequest, operator: Client, register_agent: RegisterAgent, store: Store
) -> Agent:
    """Branch main whose only success on record lasted request.param seconds; build1 online."""
    operator.add_branch("main", repo="/srv/repo", command="make")
    build1 = register_agent("build1")
    build1.client.heartbeat("build1", Metrics(disk_free_bytes=50 * GIB))
    recorded = operator.submit_job("main", COMMIT)
    operator.cancel_job(recorded.id)
    store_success(store, recorded.id, request.param)
    return build1


@pytest.mark.parametrize("absurd_history", ABSURD_DURATIONS, indirect=True)
def test_the_queue_forecasts_answer_while_a_branch_with_an_absurd_stored_duration_runs(
    http: TestClient, operator: Client, absurd_history: Agent, clock: FakeClock
) -> None:
    operator.submit_job("main", COMMIT)
    assert absurd_history.client.claim_job("build1") is not None
    operator.submit_job("main", COMMIT)
    horizon = clock.now() + MONTH

    answers = {
        path: http.get(f"{API}{path}", headers=OPERATOR)
        for path in ("/jobs", "/predict/queue", "/predict/recommend?branch=main", "/predict/stats")
    }

    assert {path: answer.status_code for path, answer in answers.items()} == dict.fromkeys(
        answers, 200
    )
    forecasts = answers["/predict/queue"].json()
    finishes = [item["predicted_finish"] for item in forecasts if item["predicted_finish"]]
    assert all(datetime.fromisoformat(finish) <= horizon for finish in finishes)


@pytest.mark.parametrize("absurd_history", ABSURD_DURATIONS, indirect=True)
def test_builds_after_an_absurd_stored_duration_are_learnt_without_a_hook_failure(
    http: TestClient,
    operator: Client,
    absurd_history: Agent,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The model is fed the history, absurd build included.
    assert http.get(f"{API}/predict/queue", headers=OPERATOR).status_code == 200

    builds(operator, absurd_history.client, "build1", clock, 100, 3)

    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    estimate = operator.predict_duration("main", "build1")
    assert estimate.p50 == 100
    assert estimate.p10 <= estimate.p50 <= estimate.p90 <= 7 * 24 * 3600
