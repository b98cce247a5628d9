"""Two `serve` processes on one PostgreSQL: both step the monitor and both run a sender for
the same notifier, yet one alert opens, it resolves once, and each notification is sent once."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildcoord.models import Job, Metrics
from live_fleet import LiveFleet, git, live_fleet, make_repository, wait_for
from loopback_http import Receiver

pytestmark = pytest.mark.timeout(180)

SECRET = "two-coordinators-hook-key"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


def test_two_coordinators_on_one_postgresql_open_resolve_and_notify_each_alert_once(
    tmp_path: Path, postgres_url: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    config = tmp_path / "buildcoord.toml"
    config.write_text(
        "[[notifiers]]\n"
        'name = "hook"\n'
        'kind = "webhook"\n'
        f'url = "{receiver.url}"\n'
        'secret_env = "HOOK_SECRET"\n'
    )
    settings = {
        "config": str(config),
        "monitor_seconds": "1",
        "heartbeat_interval_seconds": "1",
        "resolve_after_seconds": "2",
    }
    with (
        live_fleet(tmp_path / "a", db=postgres_url, **settings) as first,
        live_fleet(tmp_path / "b", db=postgres_url, **settings) as second,
    ):
        token = first.register("build1")
        fleets: tuple[LiveFleet, LiveFleet] = (first, second)
        with second.client(token) as agent:
            agent.heartbeat("build1", Metrics())
        with first.client() as operator:

            def seen_often() -> int | None:
                found = operator.list_alerts(rule="heartbeat_stale")
                return found[0].id if found and found[0].count >= 4 else None

            alert_id = wait_for("the stale alert seen by several steps", seen_often, timeout=30)
            wait_for("the opening sent", lambda: len(receiver.posts) >= 1 or None, timeout=30)

            # Heartbeats again, through either coordinator, until the alert resolves.
            deadline = time.monotonic() + 30
            for fleet in itertools.cycle(fleets):
                with fleet.client(token) as agent:
                    agent.heartbeat("build1", Metrics())
                if operator.get_alert(alert_id).resolved_at is not None:
                    break
                assert time.monotonic() < deadline, "the alert did not resolve"
                time.sleep(0.3)

            def both_sent() -> bool:
                deliveries = operator.alert_deliveries(alert_id)
                return len(deliveries) == 2 and all(d.sent_at for d in deliveries)

            wait_for("both deliveries sent", both_sent, timeout=30)
            time.sleep(1.5)  # a second sender, had it claimed too, would have posted by now
            alerts = operator.list_alerts(include_resolved=True, rule="heartbeat_stale")
            events = operator.list_events(subject="heartbeat_stale:build1", limit=1000)
            deliveries = operator.alert_deliveries(alert_id)

    assert [alert.id for alert in alerts] == [alert_id]
    kinds = [event.kind for event in events]
    assert kinds.count("alert.opened") == 1
    assert kinds.count("alert.resolved") == 1
    assert [(d.event, d.attempts) for d in deliveries] == [("opened", 1), ("resolved", 1)]
    assert [document["event"] for document in receiver.documents()] == ["opened", "resolved"]
    for post in receiver.posts:
        expected = hmac.new(SECRET.encode(), post["body"], hashlib.sha256).hexdigest()
        assert post["headers"]["X-Buildcoord-Signature-256"] == f"sha256={expected}"


def commit_to(repo: Path, branch: str, number: int) -> str:
    """Commit a change to a branch of the repository; its id."""
    git(repo, "checkout", "-q", branch)
    (repo / "change.txt").write_text(f"{branch} change {number}\n")
    git(repo, "add", "change.txt")
    git(repo, "commit", "-q", "-m", f"{branch} change {number}")
    return git(repo, "rev-parse", "HEAD").strip()


def test_two_coordinators_poll_schedule_build_and_tag_each_commit_once(
    tmp_path: Path, postgres_url: str
) -> None:
    repo = tmp_path / "repo"
    make_repository(repo, {"build.sh": "#!/usr/bin/env bash\necho built\n"})
    git(repo, "branch", "nightly")
    settings = {
        "branch_check_minutes": "0.02",  # both coordinators poll every 1.2 s
        "branch_quiet_seconds": "0.5",
        "heartbeat_interval_seconds": "1",
    }
    with (
        live_fleet(tmp_path / "a", db=postgres_url, **settings) as first,
        live_fleet(tmp_path / "b", db=postgres_url, **settings) as second,
        first.client() as operator,
    ):
        operator.add_branch("main", repo=str(repo), command="./build.sh")
        operator.add_branch(
            "nightly", repo=str(repo), command="./build.sh", auto_build=False, schedule="* * * * *"
        )
        first.register("build1")
        first.start_agent("build1", url=f"{first.url},{second.url}")
        nightly = commit_to(repo, "nightly", 0)  # for the next minute's scheduled run

        def jobs() -> list[Job]:
            return operator.list_jobs(limit=1000)

        commits = []
        for number in range(3):
            commits.append(commit_to(repo, "main", number))
            wait_for(
                f"commit {number} built",
                lambda: any(j.commit == commits[-1] and j.status == "succeeded" for j in jobs()),
                timeout=60,
                interval=0.2,
            )
            time.sleep(2.5)  # both coordinators poll again meanwhile
        wait_for(
            "the scheduled run",
            lambda: any(j.commit == nightly and j.status == "succeeded" for j in jobs()),
            timeout=75,
            interval=0.5,
        )
        time.sleep(2.5)
        found = jobs()
        tags = git(repo, "tag", "--list", "build-success-*").split()

    assert Counter((j.branch, j.commit, j.trigger) for j in found) == Counter(
        [*(("main", commit, "push") for commit in commits), ("nightly", nightly, "schedule")]
    )
    assert {j.status for j in found} == {"succeeded"}
    assert len(set(tags)) == len(tags) == len(found)
