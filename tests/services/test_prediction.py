"""Live predictions from build history: durations, the best server, queue forecasts, stats."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.errors import InvalidInput, NotFound
from buildcoord.models import Metrics, Principal
from buildcoord.services import maintenance
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store

COMMIT = "0123456789abcdef0123456789abcdef01234567"
OPERATOR = Principal("operator", "admin")
GIB = 1024**3


def agent(name: str) -> Principal:
    """The agent principal of a server."""
    return Principal("agent", f"agent {name}", server=name)


def beat(coordinator: Coordinator, name: str, disk_gb: float = 100.0) -> None:
    """A heartbeat from server name: it is online now."""
    metrics = Metrics(disk_free_bytes=int(disk_gb * GIB))
    coordinator.servers.heartbeat(name, metrics=metrics, by=agent(name))


def online(coordinator: Coordinator, *names: str) -> None:
    """Register servers and make them online."""
    for name in names:
        coordinator.servers.register(name, by=OPERATOR)
        beat(coordinator, name)


def setup_branch(coordinator: Coordinator, name: str = "main") -> None:
    """Set up a branch with a build command (agents claim only those)."""
    coordinator.branches.add(name, repo="/srv/repo", command="make", by=OPERATOR)


def build(
    coordinator: Coordinator,
    clock: FakeClock,
    server: str,
    seconds: float,
    *,
    branch: str = "main",
    status: str = "succeeded",
    trigger: str | None = None,
) -> None:
    """Run one build of branch on server taking ``seconds`` (the queue must be empty)."""
    job = coordinator.queue.submit(branch, COMMIT, trigger=trigger, by=OPERATOR)
    claimed = coordinator.queue.claim_next(server, by=agent(server))
    assert claimed is not None
    assert claimed.id == job.id
    clock.advance(seconds)
    coordinator.queue.complete(
        job.id,
        status=status,
        duration=seconds,
        server=server,
        fencing_token=claimed.fencing_token,
        by=agent(server),
    )


def schedule_and_push_builds(coordinator: Coordinator, clock: FakeClock, rounds: int = 6) -> None:
    """Interleaved builds of main on build1: scheduled ones take 300 s, pushed ones 100 s."""
    for _ in range(rounds):
        build(coordinator, clock, "build1", 300, trigger="schedule")
        build(coordinator, clock, "build1", 100, trigger="push")


@pytest.fixture
def services(coordinator: Coordinator) -> Coordinator:
    """A coordinator with main set up and two online servers."""
    setup_branch(coordinator)
    online(coordinator, "build1", "build2")
    return coordinator


def test_predict_duration_rests_on_the_branch_and_servers_own_builds(
    services: Coordinator, clock: FakeClock
) -> None:
    for _ in range(4):
        build(services, clock, "build1", 100)

    estimate = services.prediction.duration("main", "build1", by=OPERATOR)

    assert estimate.p50 == pytest.approx(100)
    assert estimate.p10 <= estimate.p50 <= estimate.p90
    assert (estimate.history, estimate.level, estimate.server) == (4, "key+branch+server", "build1")


def test_predict_duration_falls_back_along_the_chain(
    services: Coordinator, clock: FakeClock
) -> None:
    setup_branch(services, "feature/x")
    build(services, clock, "build1", 100)
    build(services, clock, "build1", 110)
    prediction = services.prediction

    assert prediction.duration("main", "build1", by=OPERATOR).level == "key"
    build(services, clock, "build1", 105)
    assert prediction.duration("main", "build1", by=OPERATOR).level == "key+branch+server"
    assert prediction.duration("main", "build2", by=OPERATOR).level == "key+branch"
    assert prediction.duration("main", by=OPERATOR).level == "key+branch"
    # A branch with no build of its own borrows from every build key.
    fresh = prediction.duration("feature/x", by=OPERATOR)
    assert (fresh.level, fresh.history) == ("global", 3)


def test_failed_builds_do_not_move_the_predicted_duration(
    services: Coordinator, clock: FakeClock
) -> None:
    for _ in range(3):
        build(services, clock, "build1", 100)
    build(services, clock, "build1", 5, status="failed")

    assert services.prediction.duration("main", by=OPERATOR).p50 == pytest.approx(100)


def test_predicting_an_unknown_branch_is_not_found(services: Coordinator) -> None:
    with pytest.raises(NotFound, match="unknown branch nope"):
        services.prediction.duration("nope", by=OPERATOR)
    with pytest.raises(NotFound, match="unknown branch nope"):
        services.prediction.recommend("nope", by=OPERATOR)


def test_predicting_with_no_successful_build_says_there_is_nothing_to_predict_from(
    services: Coordinator,
) -> None:
    with pytest.raises(NotFound, match="no prediction available"):
        services.prediction.duration("main", by=OPERATOR)


def test_recommend_picks_the_faster_idle_server(services: Coordinator, clock: FakeClock) -> None:
    for _ in range(3):
        build(services, clock, "build1", 1000)
        build(services, clock, "build2", 600)
    beat(services, "build1")
    beat(services, "build2")

    recommendation = services.prediction.recommend("main", by=OPERATOR)

    assert recommendation.server == "build2"
    first, second = recommendation.choices
    assert (first.server, first.eligible, first.remaining_seconds) == ("build2", True, 0.0)
    assert first.finish_seconds == pytest.approx(600)
    assert second.finish_seconds == pytest.approx(1000)
    assert "idle" in first.reason


def test_recommend_avoids_a_stale_server_and_says_why(
    services: Coordinator, clock: FakeClock
) -> None:
    for _ in range(3):
        build(services, clock, "build1", 1000)
        build(services, clock, "build2", 600)
    beat(services, "build2")
    clock.advance(services.settings.stale_after_seconds + 1)
    beat(services, "build1")  # build2 missed three heartbeats since

    recommendation = services.prediction.recommend("main", by=OPERATOR)

    assert recommendation.server == "build1"
    skipped = {choice.server: choice for choice in recommendation.choices if not choice.eligible}
    assert list(skipped) == ["build2"]
    assert skipped["build2"].reason.startswith("stale: last heartbeat")


def test_recommend_skips_a_server_low_on_disk(services: Coordinator, clock: FakeClock) -> None:
    for _ in range(3):
        build(services, clock, "build1", 1000)
        build(services, clock, "build2", 600)
    beat(services, "build1")
    beat(services, "build2", disk_gb=1.0)

    recommendation = services.prediction.recommend("main", by=OPERATOR)

    assert recommendation.server == "build1"
    [skipped] = [choice for choice in recommendation.choices if not choice.eligible]
    assert skipped.server == "build2"
    assert "low disk: 1.0 GiB free" in skipped.reason


def test_recommend_counts_the_work_a_busy_server_has_left(
    services: Coordinator, clock: FakeClock
) -> None:
    for _ in range(3):
        build(services, clock, "build1", 450)
        build(services, clock, "build2", 300)
    services.queue.submit("main", COMMIT, by=OPERATOR)
    assert services.queue.claim_next("build2", by=agent("build2")) is not None
    clock.advance(100)
    beat(services, "build1")
    beat(services, "build2")

    recommendation = services.prediction.recommend("main", by=OPERATOR)

    assert recommendation.server == "build1"
    busy = next(choice for choice in recommendation.choices if choice.server == "build2")
    assert busy.remaining_seconds == pytest.approx(200)
    assert busy.finish_seconds == pytest.approx(200 + 300)
    assert "1 running" in busy.reason


def test_the_queue_forecast_runs_queued_jobs_in_claim_order_on_the_servers(
    services: Coordinator, clock: FakeClock
) -> None:
    for _ in range(3):
        build(services, clock, "build1", 100)
        build(services, clock, "build2", 100)
    running = services.queue.submit("main", COMMIT, by=OPERATOR)
    assert services.queue.claim_next("build1", by=agent("build1")) is not None
    clock.advance(40)
    beat(services, "build1")
    beat(services, "build2")
    queued = [services.queue.submit("main", COMMIT, by=OPERATOR) for _ in range(3)]
    now = clock.now()

    forecasts = services.prediction.forecast()

    assert forecasts[running.id].expected_remaining_seconds == pytest.approx(60)
    plan = [forecasts[job.id] for job in queued]
    assert [forecast.server for forecast in plan] == ["build2", "build1", "build2"]
    assert [forecast.predicted_start for forecast in plan] == [
        now,
        now + timedelta(seconds=60),
        now + timedelta(seconds=100),
    ]
    assert [forecast.predicted_finish for forecast in plan] == [
        now + timedelta(seconds=100),
        now + timedelta(seconds=160),
        now + timedelta(seconds=200),
    ]


def test_the_running_jobs_forecasts_alone_are_those_of_the_whole_queue_forecast(
    services: Coordinator, clock: FakeClock
) -> None:
    for _ in range(3):
        build(services, clock, "build1", 100)
        build(services, clock, "build2", 250)
    first = services.queue.submit("main", COMMIT, by=OPERATOR)
    second = services.queue.submit("main", COMMIT, by=OPERATOR)
    assert services.queue.claim_next("build1", by=agent("build1")) is not None
    clock.advance(30)
    assert services.queue.claim_next("build2", by=agent("build2")) is not None
    clock.advance(400)  # build1's has overrun its band: half of what is left of it
    beat(services, "build1")
    beat(services, "build2")
    services.queue.submit("main", COMMIT, by=OPERATOR)
    running = services.queue.list_jobs(status="running", by=OPERATOR)
    assert {job.id for job in running} == {first.id, second.id}

    alone = services.prediction.running_forecasts(running)

    whole = services.prediction.forecast()
    assert alone == {job.id: whole[job.id] for job in running}


def test_a_queued_job_no_online_server_can_take_has_no_forecast_and_a_note(
    services: Coordinator, clock: FakeClock
) -> None:
    build(services, clock, "build1", 100)
    job = services.queue.submit("main", COMMIT, labels=["gpu"], by=OPERATOR)

    forecast = services.prediction.forecast()[job.id]

    assert forecast.predicted_start is None
    assert forecast.note == "no online server has its labels"


def test_a_queued_job_pinned_to_a_server_is_forecast_on_that_server(
    services: Coordinator, clock: FakeClock
) -> None:
    build(services, clock, "build1", 100)
    build(services, clock, "build2", 300)
    beat(services, "build1")
    beat(services, "build2")
    job = services.queue.submit("main", COMMIT, labels=["server=build2"], by=OPERATOR)

    forecast = services.prediction.forecast()[job.id]

    assert (forecast.server, forecast.expected_remaining_seconds) == ("build2", 300)


def test_recommend_for_a_pinned_branch_skips_every_other_server(
    services: Coordinator, clock: FakeClock
) -> None:
    services.branches.add(
        "pinned", repo="/srv/repo", command="make", labels=["server=build2"], by=OPERATOR
    )
    build(services, clock, "build1", 100)
    build(services, clock, "build2", 300, branch="pinned")
    beat(services, "build1")
    beat(services, "build2")

    recommendation = services.prediction.recommend("pinned", by=OPERATOR)

    assert recommendation.server == "build2"
    skipped = [choice for choice in recommendation.choices if not choice.eligible]
    assert [(choice.server, choice.reason) for choice in skipped] == [
        ("build1", "lacks the branch's labels: server=build2")
    ]


def test_a_queued_job_waiting_on_any_dependency_without_a_forecast_has_no_forecast(
    services: Coordinator, clock: FakeClock
) -> None:
    for _ in range(3):
        build(services, clock, "build1", 100)
    services.branches.add("by-hand", repo="/srv/repo", command=None, by=OPERATOR)
    running = services.queue.submit("main", COMMIT, by=OPERATOR)
    assert services.queue.claim_next("build1", by=agent("build1")) is not None
    unpredictable = services.queue.submit("by-hand", COMMIT, by=OPERATOR)
    beat(services, "build1")
    beat(services, "build2")
    waiting = services.queue.submit(
        "main", COMMIT, depends_on=[running.id, unpredictable.id], by=OPERATOR
    )

    forecasts = services.prediction.forecast()

    assert forecasts[running.id].expected_remaining_seconds == pytest.approx(100)
    assert forecasts[unpredictable.id].predicted_finish is None
    assert forecasts[waiting.id].predicted_start is None
    assert forecasts[waiting.id].note == "it waits for dependencies that have no forecast"


def test_stats_tables_count_builds_by_branch_server_hour_and_day(
    services: Coordinator, clock: FakeClock
) -> None:
    setup_branch(services, "dev")
    build(services, clock, "build1", 100)
    build(services, clock, "build1", 300)
    build(services, clock, "build2", 50, status="failed")
    build(services, clock, "build2", 20, branch="dev")

    stats = services.prediction.stats(by=OPERATOR)

    assert stats.builds == 4
    by_branch = {row.group: row for row in stats.by_branch}
    assert (by_branch["main"].count, by_branch["main"].succeeded) == (3, 2)
    assert by_branch["main"].success_rate == pytest.approx(2 / 3, abs=1e-4)
    assert (by_branch["main"].mean_duration, by_branch["main"].median_duration) == (200, 200)
    assert [row.group for row in stats.by_server] == ["build1", "build2"]
    assert [(row.group, row.count) for row in stats.by_hour] == [("00", 4)]
    assert [(row.group, row.count) for row in stats.by_day_of_week] == [("Thu", 4)]


def test_the_predictor_learns_new_builds_without_reading_history_again(
    services: Coordinator, store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        build(services, clock, "build1", 100)
    assert services.prediction.duration("main", by=OPERATOR).p50 == pytest.approx(100)
    reads: list[int] = []
    original = store.history.recent_builds
    monkeypatch.setattr(
        store.history, "recent_builds", lambda limit: reads.append(limit) or original(limit)
    )
    for _ in range(6):
        build(services, clock, "build1", 200)

    assert services.prediction.duration("main", by=OPERATOR).p50 == pytest.approx(200, rel=1e-3)
    assert reads == []


def test_the_maintenance_loop_feeds_the_model_its_history_before_any_question(
    services: Coordinator, store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        build(services, clock, "build1", 100)
    fresh = Coordinator(store, services.settings, clock)  # a coordinator process just started
    assert not fresh.prediction.ready
    stop = threading.Event()
    loop = threading.Thread(target=maintenance.run_until, args=(fresh, stop, 0.05))
    loop.start()
    try:
        deadline = time.monotonic() + 30
        while not fresh.prediction.ready and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        loop.join(timeout=30)
    assert fresh.prediction.ready
    reads: list[int] = []
    original = store.history.recent_builds
    monkeypatch.setattr(
        store.history, "recent_builds", lambda limit: reads.append(limit) or original(limit)
    )
    assert fresh.prediction.duration("main", by=OPERATOR).p50 == pytest.approx(100)
    assert reads == []  # the question did not load the history: the loop had


def test_a_second_coordinator_learns_the_builds_the_first_recorded(
    services: Coordinator,
    store: Store,
    settings: Settings,
    clock: FakeClock,
) -> None:
    other = Coordinator(store, settings, clock)  # a second coordinator (or serve worker)
    for _ in range(3):
        build(services, clock, "build1", 100)
    assert other.prediction.duration("main", by=OPERATOR).p50 == pytest.approx(100)
    for _ in range(6):
        build(services, clock, "build1", 200)

    assert other.prediction.duration("main", by=OPERATOR).p50 == pytest.approx(200, rel=1e-3)
    # Each build is fed once, whichever process recorded it.
    for _ in range(2):
        build(other, clock, "build1", 300)
    seen = other.prediction.duration("main", by=OPERATOR)
    assert seen.history == services.prediction.duration("main", by=OPERATOR).history


# -- triggers -------------------------------------------------------------------------------------


def test_predict_duration_weighs_past_builds_started_by_the_same_trigger(
    services: Coordinator, clock: FakeClock
) -> None:
    schedule_and_push_builds(services, clock)

    scheduled = services.prediction.duration("main", trigger="schedule", by=OPERATOR)
    pushed = services.prediction.duration("main", trigger="push", by=OPERATOR)
    either = services.prediction.duration("main", by=OPERATOR)

    assert scheduled.p50 > 200
    assert pushed.p50 < 150
    assert either.p50 < 200  # without a trigger the cheaper half of the history wins
    assert (scheduled.trigger, pushed.trigger, either.trigger) == ("schedule", "push", None)


def test_the_trigger_reaches_the_predictor_however_it_learnt_the_builds(
    services: Coordinator,
    store: Store,
    settings: Settings,
    clock: FakeClock,
) -> None:
    caught_up = Coordinator(store, settings, clock)
    caught_up.prediction.forecast()  # loaded now, before any build: it learns by catching up
    schedule_and_push_builds(services, clock)
    loaded = Coordinator(store, settings, clock)  # loads the history at its first question

    for coordinator in (services, caught_up, loaded):
        assert coordinator.prediction.duration("main", trigger="schedule", by=OPERATOR).p50 > 200
        assert coordinator.prediction.duration("main", trigger="push", by=OPERATOR).p50 < 150


def test_the_queue_forecast_predicts_each_job_with_its_own_trigger(
    services: Coordinator, clock: FakeClock
) -> None:
    schedule_and_push_builds(services, clock)
    running = services.queue.submit("main", COMMIT, trigger="schedule", by=OPERATOR)
    assert services.queue.claim_next("build1", by=agent("build1")) is not None
    clock.advance(50)
    beat(services, "build1")
    beat(services, "build2")
    pushed = services.queue.submit("main", COMMIT, trigger="push", by=OPERATOR)
    scheduled = services.queue.submit("main", COMMIT, trigger="schedule", by=OPERATOR)

    forecasts = services.prediction.forecast()

    remaining = forecasts[running.id].expected_remaining_seconds
    assert remaining is not None
    assert remaining > 150  # a 300 s build 50 s in, not a 100 s one

    def predicted_seconds(job_id: int) -> float:
        forecast = forecasts[job_id]
        assert forecast.predicted_start is not None
        assert forecast.predicted_finish is not None
        return (forecast.predicted_finish - forecast.predicted_start).total_seconds()

    assert predicted_seconds(pushed.id) < 150
    assert predicted_seconds(scheduled.id) > 200


def test_recommend_predicts_a_build_started_by_the_given_trigger(
    services: Coordinator, clock: FakeClock
) -> None:
    schedule_and_push_builds(services, clock)
    beat(services, "build1")
    beat(services, "build2")

    scheduled = services.prediction.recommend("main", trigger="schedule", by=OPERATOR)
    pushed = services.prediction.recommend("main", trigger="push", by=OPERATOR)

    assert scheduled.choices[0].duration is not None
    assert pushed.choices[0].duration is not None
    assert scheduled.choices[0].duration.p50 > 200
    assert scheduled.choices[0].duration.trigger == "schedule"
    assert pushed.choices[0].duration.p50 < 150


def test_predicting_with_a_malformed_trigger_is_refused(
    services: Coordinator, clock: FakeClock
) -> None:
    build(services, clock, "build1", 100)
    with pytest.raises(InvalidInput, match="invalid trigger"):
        services.prediction.duration("main", trigger="Pull Request", by=OPERATOR)
    with pytest.raises(InvalidInput, match="invalid trigger"):
        services.prediction.recommend("main", trigger="", by=OPERATOR)
