"""What started a job: each way of queueing records its trigger, attempts keep it, history
copies it. Every test runs on both backends, the branch tests against real git repositories."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
from sqlalchemy import text

from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.errors import InvalidInput
from buildcoord.models import Principal
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store
from buildcoord.store.engine import make_engine, write_transaction
from buildcoord.store.migrate import upgrade
from gitrepos import commit
from store_rows import StoreState

COMMIT = "0123456789abcdef0123456789abcdef01234567"
SECRET = "webhook-secret-for-tests"
BAD_TRIGGERS = ["", "Push", "1push", "-push", "pull request", "pull.request", "é", "x" * 33]
GOOD_TRIGGERS = ["a", "pull_request", "merge-queue", "ci2", "x" * 32]


@pytest.fixture
def settings() -> Settings:
    """Polling every 5 minutes, no quiet period (a new tip is queued at once), webhooks on."""
    return Settings(branch_check_minutes=5.0, branch_quiet_seconds=0.0, webhook_secret=SECRET)


def triggers_of(coordinator: Coordinator, branch: str = "main") -> list[str | None]:
    """The trigger of every job of branch, oldest first."""
    return [job.trigger for job in reversed(coordinator.store.jobs.list_jobs(branch=branch))]


def push_payload(branch: str, after: str) -> bytes:
    """A GitHub-style push payload."""
    return json.dumps({"ref": f"refs/heads/{branch}", "after": after}).encode()


def signature(body: bytes) -> str:
    """The X-Hub-Signature-256 header value for body."""
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


# -- submitting -----------------------------------------------------------------------------------


def test_a_job_submitted_without_a_trigger_is_manual(
    coordinator: Coordinator, operator: Principal
) -> None:
    job = coordinator.queue.submit("main", COMMIT, by=operator)

    assert job.trigger == "manual"
    assert coordinator.store.jobs.get_job(job.id).trigger == "manual"


def test_a_job_submitted_with_a_trigger_stores_it(
    coordinator: Coordinator, operator: Principal, subtests: pytest.Subtests
) -> None:
    for trigger in GOOD_TRIGGERS:
        with subtests.test(trigger=trigger):
            job = coordinator.queue.submit("main", COMMIT, trigger=trigger, by=operator)
            assert coordinator.store.jobs.get_job(job.id).trigger == trigger


def test_a_bad_trigger_is_refused_and_nothing_is_stored(
    coordinator: Coordinator,
    operator: Principal,
    store_state: StoreState,
    subtests: pytest.Subtests,
) -> None:
    before = store_state()

    for trigger in [*BAD_TRIGGERS, "push\n"]:
        with subtests.test(trigger=trigger), pytest.raises(InvalidInput, match="invalid trigger"):
            coordinator.queue.submit("main", COMMIT, trigger=trigger, by=operator)

    assert store_state() == before


def test_the_submitted_event_records_the_trigger(
    coordinator: Coordinator, operator: Principal
) -> None:
    job = coordinator.queue.submit("main", COMMIT, trigger="pull_request", by=operator)

    [submitted] = coordinator.store.events.list_events(subject=f"job:{job.id}")
    assert submitted.after is not None
    assert submitted.after["trigger"] == "pull_request"


def test_retried_and_requeued_attempts_keep_their_jobs_trigger(
    coordinator: Coordinator, operator: Principal, build1: Principal, clock: FakeClock
) -> None:
    job = coordinator.queue.submit("main", COMMIT, trigger="pull_request", by=operator)
    first = coordinator.queue.claim_next("build1", by=build1)
    assert first is not None
    assert first.trigger == "pull_request"
    clock.advance(10)
    failed = coordinator.queue.complete(
        job.id, status="failed", server="build1", fencing_token=first.fencing_token, by=build1
    )
    assert failed.trigger == "pull_request"

    retried = coordinator.queue.retry(job.id, by=operator)
    assert (retried.attempt, retried.trigger) == (2, "pull_request")
    assert coordinator.queue.claim_next("build1", by=build1) is not None
    clock.advance(coordinator.settings.job_lease_seconds + 1)
    [requeued] = coordinator.queue.expire_leases()

    assert (requeued.attempt, requeued.status, requeued.trigger) == (3, "queued", "pull_request")


# -- the branch watch -----------------------------------------------------------------------------


def test_a_new_tip_found_by_check_updates_is_queued_as_a_push(
    coordinator: Coordinator, operator: Principal, origin: Path
) -> None:
    coordinator.branches.add("main", repo=str(origin), command="make", by=operator)
    commit(origin)

    [check] = coordinator.branch_watch.check_updates(by=operator)

    assert check.outcome == "queued"
    assert triggers_of(coordinator) == ["push"]


def test_a_new_tip_found_by_the_poller_is_queued_as_a_push(
    coordinator: Coordinator, operator: Principal, origin: Path
) -> None:
    coordinator.branches.add("main", repo=str(origin), command="make", by=operator)
    commit(origin)

    assert [check.outcome for check in coordinator.branch_watch.step()] == ["queued"]
    assert triggers_of(coordinator) == ["push"]


def test_a_webhook_push_is_queued_as_a_push(
    coordinator: Coordinator, operator: Principal, origin: Path
) -> None:
    coordinator.branches.add("main", repo=str(origin), command="make", by=operator)
    body = push_payload("main", commit(origin))

    check = coordinator.branch_watch.receive_push(body, signature(body))

    assert check.outcome == "queued"
    assert triggers_of(coordinator) == ["push"]


def test_a_scheduled_run_is_queued_as_schedule(
    coordinator: Coordinator, operator: Principal, origin: Path, clock: FakeClock
) -> None:
    coordinator.branches.add(
        "main", repo=str(origin), command="make", auto_build=False, schedule="@hourly", by=operator
    )
    commit(origin)
    clock.advance(3600)

    assert [check.outcome for check in coordinator.branch_watch.step()] == ["queued"]
    assert triggers_of(coordinator) == ["schedule"]


def test_queue_all_queues_manual_builds(
    coordinator: Coordinator, operator: Principal, origin: Path
) -> None:
    coordinator.branches.add("main", repo=str(origin), command="make", by=operator)

    [check] = coordinator.branch_watch.queue_all(by=operator)

    assert check.outcome == "queued"
    assert triggers_of(coordinator) == ["manual"]


def test_adding_a_branch_with_build_now_queues_a_manual_build(
    coordinator: Coordinator, operator: Principal, origin: Path
) -> None:
    coordinator.branches.add("main", repo=str(origin), command="make", build_now=True, by=operator)

    assert triggers_of(coordinator) == ["manual"]


# -- build history --------------------------------------------------------------------------------


def test_a_finished_builds_history_row_carries_its_jobs_trigger(
    coordinator: Coordinator, operator: Principal, build1: Principal, clock: FakeClock
) -> None:
    coordinator.branches.add("main", repo="/srv/repo", command="make", by=operator)
    for trigger in ("schedule", "push"):
        job = coordinator.queue.submit("main", COMMIT, trigger=trigger, by=operator)
        claimed = coordinator.queue.claim_next("build1", by=build1)
        assert claimed is not None
        assert claimed.id == job.id
        clock.advance(60)
        coordinator.queue.complete(
            job.id,
            status="succeeded",
            server="build1",
            fencing_token=claimed.fencing_token,
            by=build1,
        )

    history = coordinator.store.history
    assert [record.trigger for record in history.recent_builds(10)] == ["schedule", "push"]
    assert [record.trigger for record in history.finished_since(0.0)] == ["schedule", "push"]


def test_a_cancelled_running_build_records_its_trigger_too(
    coordinator: Coordinator, operator: Principal, build1: Principal, clock: FakeClock
) -> None:
    job = coordinator.queue.submit("main", COMMIT, trigger="pull_request", by=operator)
    assert coordinator.queue.claim_next("build1", by=build1) is not None
    clock.advance(5)
    coordinator.queue.cancel(job.id, by=operator)

    [record] = coordinator.store.history.recent_builds(10)
    assert (record.result, record.trigger) == ("cancelled", "pull_request")


def test_jobs_and_history_from_before_migration_0006_have_no_trigger(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0005")
        with write_transaction(engine) as conn:
            conn.execute(
                text(
                    'INSERT INTO jobs (id, branch, "commit", priority, status, attempt,'
                    " max_attempts, labels, depends_on, pending_deps, rank, fencing_token,"
                    " created_at, queued_at, started_at, finished_at, duration)"
                    " VALUES (1, 'main', :commit, 5, 'succeeded', 1, 3, '', '', 0, 1.0, 1,"
                    " 0.0, 0.0, 1.0, 61.0, 60.0)"
                ),
                {"commit": COMMIT},
            )
            conn.execute(
                text(
                    "INSERT INTO build_history (job_id, attempt, branch, build_key, server,"
                    ' "commit", queued_at, started_at, finished_at, duration, queue_wait, result,'
                    " hour_of_day, day_of_week)"
                    " VALUES (1, 1, 'main', 'key', 'build1', :commit, 0.0, 1.0, 61.0, 60.0, 1.0,"
                    " 'succeeded', 0, 3)"
                ),
                {"commit": COMMIT},
            )
        upgrade(engine)
    finally:
        engine.dispose()

    store = Store.open(db_url)
    try:
        assert store.jobs.get_job(1).trigger is None
        [record] = store.history.recent_builds(10)
        assert (record.job_id, record.trigger) == (1, None)
    finally:
        store.close()
