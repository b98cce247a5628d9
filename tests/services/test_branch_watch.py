"""Watching branches: polling, quiet periods, schedules, queue-all, unreachable repositories.

Every test runs against real git repositories with commits made in the test.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import threading
import time
from pathlib import Path

import pytest

from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.errors import Conflict, InvalidInput
from buildcoord.models import BROADCAST, BranchCheck, Principal
from buildcoord.services import maintenance
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store
from gitrepos import commit, git


@pytest.fixture
def settings() -> Settings:
    """Polling every 5 minutes, a 15-second quiet period, superseded builds cancelled."""
    return Settings(branch_check_minutes=5.0, branch_quiet_seconds=15.0)


def jobs_of(coordinator: Coordinator, branch: str) -> list[tuple[str, str]]:
    """(commit, status) of every job of branch, oldest first."""
    found = coordinator.store.jobs.list_jobs(branch=branch, limit=1000)
    return [(job.commit, job.status) for job in reversed(found)]


def test_adding_a_branch_records_its_tip_and_queues_nothing(
    coordinator: Coordinator, operator: Principal, origin: Path
) -> None:
    tip = git(origin, "rev-parse", "main")
    branch = coordinator.branches.add("main", repo=str(origin), command="make", by=operator)
    assert branch.seen_commit == tip
    assert jobs_of(coordinator, "main") == []
    assert [c.outcome for c in coordinator.branch_watch.check_updates(by=operator)] == ["unchanged"]
    assert jobs_of(coordinator, "main") == []


def test_adding_a_branch_with_build_now_queues_its_tip(
    coordinator: Coordinator, operator: Principal, origin: Path
) -> None:
    tip = git(origin, "rev-parse", "main")
    coordinator.branches.add("main", repo=str(origin), command="make", build_now=True, by=operator)
    assert jobs_of(coordinator, "main") == [(tip, "queued")]


def test_adding_a_hundred_branches_starts_no_build(
    coordinator: Coordinator, operator: Principal, origin: Path
) -> None:
    for number in range(100):
        git(origin, "branch", f"feature/{number}")
        coordinator.branches.add(f"feature/{number}", repo=str(origin), command="m", by=operator)
    coordinator.branch_watch.check_updates(by=operator)
    assert coordinator.store.jobs.count_by_status() == {}


def test_a_new_tip_is_queued_once_however_often_updates_are_checked(
    coordinator: Coordinator, operator: Principal, origin: Path
) -> None:
    coordinator.branches.add("main", repo=str(origin), command="make", by=operator)
    new = commit(origin)
    outcomes = [coordinator.branch_watch.check_updates(by=operator)[0] for _ in range(5)]
    assert [o.outcome for o in outcomes] == [
        "queued",
        "unchanged",
        "unchanged",
        "unchanged",
        "unchanged",
    ]
    assert jobs_of(coordinator, "main") == [(new, "queued")]
    assert coordinator.branches.get("main", by=operator).seen_commit == new


def test_a_commit_built_before_is_not_queued_again_when_it_comes_back(
    coordinator: Coordinator, operator: Principal, origin: Path
) -> None:
    coordinator.branches.add("main", repo=str(origin), command="make", by=operator)
    first = commit(origin)
    coordinator.branch_watch.check_updates(by=operator)
    [job] = coordinator.store.jobs.list_jobs(branch="main")
    coordinator.queue.cancel(job.id, by=operator)  # finished, as failed or succeeded would be
    second = commit(origin)
    coordinator.branch_watch.check_updates(by=operator)
    git(origin, "reset", "-q", "--hard", first)  # a force-push back to the built commit
    [check] = coordinator.branch_watch.check_updates(by=operator)
    assert check.outcome == "known"
    assert [c for c, _ in jobs_of(coordinator, "main")] == [first, second]


def test_a_branch_named_twice_in_one_check_is_looked_at_once(
    coordinator: Coordinator, operator: Principal, origin: Path
) -> None:
    coordinator.branches.add("main", repo=str(origin), command="make", by=operator)
    tip = commit(origin)
    checks = coordinator.branch_watch.check_updates(["main", "main"], by=operator)
    assert [(c.branch, c.outcome, c.commit) for c in checks] == [("main", "queued", tip)]


@pytest.mark.parametrize("coordinators", [1, 2])
def test_concurrent_update_checks_queue_a_new_tip_once(
    migrated_db_url: str, operator: Principal, origin: Path, coordinators: int
) -> None:
    stores = [Store.open(migrated_db_url) for _ in range(coordinators)]
    try:
        services = [Coordinator(store, Settings()) for store in stores]
        services[0].branches.add("main", repo=str(origin), command="make", by=operator)
        new = commit(origin)
        barrier = threading.Barrier(8)
        errors: list[BaseException] = []

        def check(index: int) -> None:
            try:
                barrier.wait()
                for _ in range(3):
                    services[index % coordinators].branch_watch.check_updates(by=operator)
            except BaseException as exc:  # reported below, with the thread's own traceback
                errors.append(exc)

        threads = [threading.Thread(target=check, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert jobs_of(services[0], "main") == [(new, "queued")]
    finally:
        for store in stores:
            store.close()


def test_a_burst_of_pushes_ends_in_one_build_of_the_newest_tip(
    coordinator: Coordinator, operator: Principal, origin: Path, clock: FakeClock
) -> None:
    coordinator.branches.add("main", repo=str(origin), command="make", by=operator)
    watch = coordinator.branch_watch
    assert [c.outcome for c in watch.step()] == ["unchanged"]
    for _ in range(3):
        commit(origin)
        clock.advance(300)  # a poll every 5 minutes, each seeing a tip that is still moving
        assert [c.outcome for c in watch.step()] == ["waiting"]
        clock.advance(5)
    newest = commit(origin)
    clock.advance(300)
    assert [c.outcome for c in watch.step()] == ["waiting"]
    assert watch.due() is False
    clock.advance(15)
    assert watch.due() is True  # the re-check of a waiting tip does not wait for the next poll
    [check] = watch.step()
    assert (check.outcome, check.commit) == ("queued", newest)
    assert jobs_of(coordinator, "main") == [(newest, "queued")]


def test_queueing_a_newer_tip_cancels_the_still_queued_build_it_supersedes(
    coordinator: Coordinator, operator: Principal, origin: Path
) -> None:
    coordinator.branches.add("main", repo=str(origin), command="make", by=operator)
    older = commit(origin)
    coordinator.branch_watch.check_updates(by=operator)
    newer = commit(origin)
    coordinator.branch_watch.check_updates(by=operator)
    assert jobs_of(coordinator, "main") == [(older, "cancelled"), (newer, "queued")]
    [cancelled] = coordinator.store.jobs.list_jobs(branch="main", statuses=["cancelled"])
    assert cancelled.reason == f"superseded by {newer[:12]}"


def test_a_build_queued_by_hand_is_never_superseded_by_a_push(
    coordinator: Coordinator, operator: Principal, origin: Path
) -> None:
    coordinator.branches.add("main", repo=str(origin), command="make", by=operator)
    older = commit(origin)
    by_hand = coordinator.queue.submit("main", older, by=operator)
    coordinator.branch_watch.check_updates(by=operator)  # older is known: the tip moves on
    newer = commit(origin)
    coordinator.branch_watch.check_updates(by=operator)
    assert jobs_of(coordinator, "main") == [(older, "queued"), (newer, "queued")]
    assert coordinator.store.jobs.get_job(by_hand.id).trigger == "manual"


@pytest.mark.parametrize("settings", [Settings(cancel_superseded_builds=False)])
def test_superseded_builds_stay_queued_when_the_setting_is_off(
    coordinator: Coordinator, operator: Principal, origin: Path
) -> None:
    coordinator.branches.add("main", repo=str(origin), command="make", by=operator)
    older = commit(origin)
    coordinator.branch_watch.check_updates(by=operator)
    newer = commit(origin)
    coordinator.branch_watch.check_updates(by=operator)
    assert jobs_of(coordinator, "main") == [(older, "queued"), (newer, "queued")]


def test_a_running_build_of_the_superseded_tip_is_left_running(
    coordinator: Coordinator, operator: Principal, origin: Path
) -> None:
    coordinator.branches.add("main", repo=str(origin), command="make", by=operator)
    older = commit(origin)
    coordinator.branch_watch.check_updates(by=operator)
    coordinator.servers.register("build1", by=operator)
    assert coordinator.queue.claim_next("build1", by=operator) is not None
    newer = commit(origin)
    coordinator.branch_watch.check_updates(by=operator)
    assert jobs_of(coordinator, "main") == [(older, "running"), (newer, "queued")]


def test_a_scheduled_branch_is_queued_at_each_due_time(
    coordinator: Coordinator, operator: Principal, origin: Path, clock: FakeClock
) -> None:
    # The clock starts at 2026-01-01 00:00 UTC; "30 */6 * * *" fires at 00:30, 06:30, ...
    coordinator.branches.add(
        "main",
        repo=str(origin),
        command="make",
        auto_build=False,
        schedule="30 */6 * * *",
        by=operator,
    )
    branch = coordinator.branches.get("main", by=operator)
    assert branch.next_scheduled_at is not None
    assert branch.next_scheduled_at.isoformat() == "2026-01-01T00:30:00+00:00"
    watch = coordinator.branch_watch
    first = commit(origin)
    clock.advance(29 * 60)
    assert watch.step() == []  # 00:29: not yet, and auto-build is off
    clock.advance(60)
    assert [(c.outcome, c.commit) for c in watch.step()] == [("queued", first)]
    assert watch.step() == []  # fired once for 00:30
    clock.advance(6 * 3600)  # 06:30: same tip, already built: nothing new
    assert [c.outcome for c in watch.step()] == ["known"]
    second = commit(origin)
    clock.advance(6 * 3600)
    assert [(c.outcome, c.commit) for c in watch.step()] == [("queued", second)]
    later = coordinator.branches.get("main", by=operator).next_scheduled_at
    assert later is not None
    assert later.isoformat() == "2026-01-01T18:30:00+00:00"
    assert [c for c, _ in jobs_of(coordinator, "main")] == [first, second]


def test_a_schedule_missed_while_no_coordinator_ran_fires_once(
    coordinator: Coordinator, operator: Principal, origin: Path, clock: FakeClock
) -> None:
    coordinator.branches.add(
        "main", repo=str(origin), command="m", auto_build=False, schedule="@hourly", by=operator
    )
    commit(origin)
    clock.advance(10 * 3600)
    assert [c.outcome for c in coordinator.branch_watch.step()] == ["queued"]
    assert coordinator.branch_watch.step() == []
    assert len(jobs_of(coordinator, "main")) == 1


def test_a_schedule_due_while_its_branch_was_off_does_not_fire_when_it_is_turned_on(
    coordinator: Coordinator, operator: Principal, origin: Path, clock: FakeClock
) -> None:
    coordinator.branches.add(
        "main", repo=str(origin), command="m", auto_build=False, schedule="@hourly", by=operator
    )
    coordinator.branches.update("main", enabled=False, by=operator)
    commit(origin)
    clock.advance(2 * 3600 + 60)  # 02:01: two runs came and went while it was off
    coordinator.branches.update("main", enabled=True, by=operator)
    assert coordinator.branch_watch.step() == []
    clock.advance(3600)  # 03:01: the first run due since it was turned on
    assert [c.outcome for c in coordinator.branch_watch.step()] == ["queued"]


@pytest.mark.parametrize(
    "schedule", ["* * * *", "60 * * * *", "*/0 * * * *", "0 0 30 2 *", "5-1 * * * *", "x * * * *"]
)
def test_an_invalid_schedule_is_refused_with_the_reason(
    coordinator: Coordinator, operator: Principal, origin: Path, schedule: str
) -> None:
    with pytest.raises(InvalidInput, match="invalid schedule"):
        coordinator.branches.add(
            "main", repo=str(origin), command="make", schedule=schedule, by=operator
        )
    coordinator.branches.add("main", repo=str(origin), command="make", by=operator)
    with pytest.raises(InvalidInput, match="invalid schedule"):
        coordinator.branches.update("main", schedule=schedule, by=operator)


def test_a_disabled_branch_is_never_polled_nor_queued(
    coordinator: Coordinator, operator: Principal, origin: Path, clock: FakeClock
) -> None:
    coordinator.branches.add(
        "main", repo=str(origin), command="make", schedule="* * * * *", by=operator
    )
    coordinator.branches.update("main", enabled=False, by=operator)
    before = coordinator.branches.get("main", by=operator).checked_at
    commit(origin)
    clock.advance(3600)
    assert coordinator.branch_watch.step() == []
    assert coordinator.branch_watch.check_updates(by=operator) == []
    assert coordinator.branch_watch.queue_all(by=operator) == []
    assert jobs_of(coordinator, "main") == []
    assert coordinator.branches.get("main", by=operator).checked_at == before


def test_toggling_a_branch_back_on_queues_the_tip_it_missed(
    coordinator: Coordinator, operator: Principal, origin: Path
) -> None:
    coordinator.branches.add("main", repo=str(origin), command="make", by=operator)
    coordinator.branches.update("main", enabled=False, by=operator)
    new = commit(origin)
    coordinator.branch_watch.check_updates(by=operator)
    coordinator.branches.update("main", enabled=True, by=operator)
    coordinator.branch_watch.check_updates(by=operator)
    assert jobs_of(coordinator, "main") == [(new, "queued")]


def test_an_unreachable_repository_is_shown_alerted_once_and_other_branches_go_on(
    coordinator: Coordinator, operator: Principal, origin: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    git(origin, "clone", "-q", str(origin), str(broken))
    git(broken, "branch", "gone")
    coordinator.branches.add("gone", repo=str(broken), command="make", by=operator)
    git(origin, "branch", "other")
    coordinator.branches.add("other", repo=str(origin), command="make", by=operator)
    subprocess.run(["rm", "-rf", str(broken)], check=True)
    new = commit(origin, "other")
    outcomes = []
    for _ in range(3):
        checks = {c.branch: c for c in coordinator.branch_watch.check_updates(by=operator)}
        assert str(broken) in checks["gone"].detail
        outcomes.append((checks["gone"].outcome, checks["other"].outcome))
    assert outcomes == [("failed", "queued")] + [("failed", "unchanged")] * 2
    assert jobs_of(coordinator, "other") == [(new, "queued")]
    shown = coordinator.branches.get("gone", by=operator)
    assert shown.check_error is not None
    assert str(broken) in shown.check_error
    alerts = coordinator.messages.list_messages(recipient=BROADCAST, by=operator)
    assert [(m.type, m.subject) for m in alerts] == [
        ("error", "branch gone: cannot read its repository")
    ]
    kinds = [e.kind for e in coordinator.store.events.list_events(subject="branch:gone")]
    assert kinds.count("branch.check_failed") == 1


def test_a_repository_that_can_be_read_again_clears_the_error(
    coordinator: Coordinator, operator: Principal, origin: Path, tmp_path: Path
) -> None:
    moved = tmp_path / "moved"
    coordinator.branches.add("main", repo=str(origin), command="make", by=operator)
    origin.rename(moved)
    coordinator.branch_watch.check_updates(by=operator)
    assert coordinator.branches.get("main", by=operator).check_error is not None
    moved.rename(origin)
    [check] = coordinator.branch_watch.check_updates(by=operator)
    assert check.outcome == "unchanged"
    assert coordinator.branches.get("main", by=operator).check_error is None
    kinds = [e.kind for e in coordinator.store.events.list_events(subject="branch:main")]
    assert kinds[-2:] == ["branch.check_failed", "branch.check_recovered"]


def test_a_branch_missing_from_its_repository_is_a_check_error(
    coordinator: Coordinator, operator: Principal, origin: Path
) -> None:
    coordinator.branches.add("nope", repo=str(origin), command="make", by=operator)
    [check] = coordinator.branch_watch.check_updates(by=operator)
    assert check.outcome == "failed"
    assert "does not exist" in check.detail


def test_the_first_tip_of_a_branch_added_while_unreachable_is_recorded_not_built(
    coordinator: Coordinator, operator: Principal, origin: Path, tmp_path: Path
) -> None:
    moved = tmp_path / "moved"
    origin.rename(moved)
    branch = coordinator.branches.add("main", repo=str(origin), command="make", by=operator)
    assert branch.seen_commit is None
    moved.rename(origin)
    [check] = coordinator.branch_watch.check_updates(by=operator)
    assert check.outcome == "recorded"
    assert jobs_of(coordinator, "main") == []


def test_queue_all_queues_each_enabled_branch_at_its_remote_tip(
    coordinator: Coordinator, operator: Principal, origin: Path
) -> None:
    # The origin's checkout stays on main while feature moves on: a local HEAD would be wrong.
    feature = commit(origin, "feature")
    git(origin, "checkout", "-q", "main")
    main = git(origin, "rev-parse", "HEAD")
    coordinator.branches.add("main", repo=str(origin), command="make", by=operator)
    coordinator.branches.add("feature", repo=str(origin), command="make", by=operator)
    coordinator.branches.add("off", repo=str(origin), command="make", enabled=False, by=operator)
    checks = coordinator.branch_watch.queue_all(by=operator)
    assert sorted((c.branch, c.outcome, c.commit) for c in checks) == [
        ("feature", "queued", feature),
        ("main", "queued", main),
    ]
    again = coordinator.branch_watch.queue_all(by=operator)
    assert {c.outcome for c in again} == {"known"}
    assert jobs_of(coordinator, "feature") == [(feature, "queued")]
    assert jobs_of(coordinator, "off") == []


def test_a_waiting_tip_whose_repository_becomes_unreadable_is_not_read_again_every_second(
    coordinator: Coordinator, operator: Principal, origin: Path, clock: FakeClock, tmp_path: Path
) -> None:
    coordinator.branches.add("main", repo=str(origin), command="make", by=operator)
    watch = coordinator.branch_watch
    watch.step()  # the first poll
    commit(origin)
    clock.advance(300)
    assert [c.outcome for c in watch.step()] == ["waiting"]
    origin.rename(tmp_path / "moved")
    clock.advance(15)
    assert [c.outcome for c in watch.step()] == ["failed"]
    clock.advance(1)
    assert watch.due() is False  # the next look is a quiet period away, not a second


SECRET = "webhook-secret-for-tests"


def push(coordinator: Coordinator, tip: str) -> str:
    """Deliver a signed push webhook of main at tip; the outcome."""
    body = json.dumps({"ref": "refs/heads/main", "after": tip}).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return coordinator.branch_watch.receive_push(body, signature).outcome


@pytest.mark.parametrize(
    "settings",
    [Settings(branch_check_minutes=0.0, branch_quiet_seconds=15.0, webhook_secret=SECRET)],
)
def test_a_pushed_tip_whose_repository_cannot_be_read_for_a_while_is_built_without_polling(
    coordinator: Coordinator, operator: Principal, origin: Path, clock: FakeClock, tmp_path: Path
) -> None:
    coordinator.branches.add("main", repo=str(origin), command="make", by=operator)
    tip = commit(origin)
    assert push(coordinator, tip) == "waiting"
    moved = tmp_path / "moved"
    origin.rename(moved)
    clock.advance(15)
    assert [c.outcome for c in coordinator.branch_watch.step()] == ["failed"]
    moved.rename(origin)
    clock.advance(15)
    assert [c.outcome for c in coordinator.branch_watch.step()] == ["queued"]
    assert jobs_of(coordinator, "main") == [(tip, "queued")]


@pytest.mark.parametrize(
    "settings",
    [Settings(branch_check_minutes=5.0, branch_quiet_seconds=15.0, webhook_secret=SECRET)],
)
def test_a_push_to_a_branch_never_read_is_built_even_when_its_first_recheck_fails(
    coordinator: Coordinator, operator: Principal, origin: Path, clock: FakeClock, tmp_path: Path
) -> None:
    moved = tmp_path / "moved"
    origin.rename(moved)
    assert (
        coordinator.branches.add("main", repo=str(origin), command="m", by=operator).seen_commit
        is None
    )
    moved.rename(origin)
    tip = commit(origin)
    assert push(coordinator, tip) == "waiting"
    origin.rename(moved)
    clock.advance(15)
    assert [c.outcome for c in coordinator.branch_watch.step()] == ["failed"]
    moved.rename(origin)
    clock.advance(300)
    coordinator.branch_watch.step()
    assert jobs_of(coordinator, "main") == [(tip, "queued")]


@pytest.mark.parametrize("change", ["disable", "no-auto-build", "remove"])
def test_a_waiting_tip_of_a_branch_no_longer_watched_is_forgotten(
    coordinator: Coordinator, operator: Principal, origin: Path, clock: FakeClock, change: str
) -> None:
    coordinator.branches.add("main", repo=str(origin), command="make", by=operator)
    watch = coordinator.branch_watch
    watch.step()
    commit(origin)
    clock.advance(300)
    assert [c.outcome for c in watch.step()] == ["waiting"]
    if change == "remove":
        coordinator.branches.remove("main", by=operator)
    elif change == "disable":
        coordinator.branches.update("main", enabled=False, by=operator)
    else:
        coordinator.branches.update("main", auto_build=False, by=operator)
    clock.advance(15)
    assert watch.step() == []
    clock.advance(1)
    assert watch.due() is False


@pytest.mark.parametrize("settings", [Settings(branch_check_timeout_seconds=1.0)])
def test_a_repository_that_hangs_is_given_up_after_the_timeout_with_the_processes_git_started(
    coordinator: Coordinator,
    operator: Principal,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An ssh that connects and then never answers, as a stuck server's would.
    hang = tmp_path / "hang"
    pid_file = tmp_path / "ssh.pid"
    ssh = tmp_path / "ssh"
    ssh.write_text(f"#!/bin/sh\n[ -e {hang} ] || exit 1\necho $$ > {pid_file}\nexec sleep 60\n")
    ssh.chmod(0o755)
    monkeypatch.setenv("GIT_SSH_COMMAND", str(ssh))
    coordinator.branches.add("main", repo="ssh://git.example.com/r.git", command="m", by=operator)
    hang.touch()
    [check] = coordinator.branch_watch.check_updates(by=operator)
    assert check.outcome == "failed"
    assert "took longer than 1 s" in check.detail
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(pid), "the ssh git started outlived git's timeout"


def _running(pid: int) -> bool:
    """Whether the process exists and is not a zombie waiting to be reaped."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.parametrize(
    "settings",
    [Settings(branch_check_minutes=0.0, branch_quiet_seconds=15.0, webhook_secret=SECRET)],
)
def test_a_commit_the_repository_lacks_is_not_queued_when_its_push_comes_again_after_quiet(
    coordinator: Coordinator, operator: Principal, origin: Path, clock: FakeClock
) -> None:
    coordinator.branches.add("main", repo=str(origin), command="make", by=operator)
    assert push(coordinator, "1" * 40) == "waiting"
    clock.advance(20)
    assert push(coordinator, "1" * 40) == "waiting"  # only a look at the repository queues
    coordinator.branch_watch.step()
    assert jobs_of(coordinator, "main") == []


IMMEDIATE_PUSHES = Settings(
    branch_check_minutes=0.0, branch_quiet_seconds=0.0, webhook_secret=SECRET
)


def signed_push(coordinator: Coordinator, tip: str, delivery: str) -> BranchCheck:
    """Deliver a signed push webhook of main at tip with a delivery id."""
    body = json.dumps({"ref": "refs/heads/main", "after": tip}).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return coordinator.branch_watch.receive_push(body, signature, delivery)


@pytest.mark.parametrize(
    "settings",
    [Settings(branch_check_minutes=0.0, branch_quiet_seconds=0.0, webhook_secret=SECRET)],
)
def test_a_delivery_accepted_by_one_coordinator_is_refused_by_another(
    coordinator: Coordinator,
    operator: Principal,
    origin: Path,
    settings: Settings,
    clock: FakeClock,
    migrated_db_url: str,
) -> None:
    coordinator.branches.add("main", repo=str(origin), command="make", by=operator)
    tip = commit(origin)
    assert signed_push(coordinator, tip, "delivery-1").outcome == "queued"
    other_store = Store.open(migrated_db_url)
    try:
        other = Coordinator(other_store, settings, clock)
        with pytest.raises(Conflict, match="delivery-1"):
            signed_push(other, commit(origin), "delivery-1")
    finally:
        other_store.close()
    assert jobs_of(coordinator, "main") == [(tip, "queued")]


@pytest.mark.parametrize(
    "settings",
    [Settings(branch_check_minutes=0.0, branch_quiet_seconds=0.0, webhook_secret=SECRET)],
)
def test_maintenance_forgets_deliveries_older_than_a_week(
    coordinator: Coordinator, operator: Principal, origin: Path, clock: FakeClock
) -> None:
    coordinator.branches.add("main", repo=str(origin), command="make", by=operator)
    signed_push(coordinator, commit(origin), "old")
    clock.advance(6 * 86400)
    signed_push(coordinator, commit(origin), "recent")
    clock.advance(1.5 * 86400)
    assert maintenance.step(coordinator).forgotten_webhook_deliveries == 1
    assert signed_push(coordinator, commit(origin), "old").outcome == "queued"
    with pytest.raises(Conflict):
        signed_push(coordinator, commit(origin), "recent")
