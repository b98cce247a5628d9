"""The health monitor: rules judged on an injected clock, one open alert per (rule, subject),
repeats counted, resolution after a clear spell, acknowledgement — on both databases."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

import pytest

from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.errors import Conflict, Forbidden, InvalidInput, NotFound
from buildcoord.models import Alert, Metrics, Principal
from buildcoord.services import maintenance
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store

from .queue_helpers import COMMIT, build_on

RegisterServer = Callable[..., Principal]
GIB = 1024**3
ROOMY = Metrics(disk_free_bytes=200 * GIB, disk_total_bytes=500 * GIB)


def beat(coordinator: Coordinator, agent: Principal, metrics: Metrics = ROOMY) -> None:
    assert agent.server is not None
    coordinator.servers.heartbeat(agent.server, metrics=metrics, by=agent)


def open_alerts(coordinator: Coordinator, operator: Principal, rule: str) -> list[Alert]:
    return coordinator.alerts.list_alerts(rule=rule, by=operator)


def alert_event_kinds(store: Store, subject: str) -> list[str]:
    return [event.kind for event in store.events.list_events(subject=subject)]


@pytest.fixture
def main_branch(coordinator: Coordinator, operator: Principal) -> None:
    coordinator.branches.add("main", repo="/srv/repo", command="make", by=operator)


def test_a_server_that_misses_three_heartbeats_opens_one_alert_and_repeats_count_on_it(
    coordinator: Coordinator, store: Store, operator: Principal, build1: Principal, clock: FakeClock
) -> None:
    beat(coordinator, build1)
    clock.advance(coordinator.settings.stale_after_seconds - 1)
    assert coordinator.monitor.step().opened == []

    clock.advance(2)
    first = coordinator.monitor.step()
    clock.advance(30)
    second = coordinator.monitor.step()

    [alert] = open_alerts(coordinator, operator, "heartbeat_stale")
    assert [opened.id for opened in first.opened] == [alert.id]
    assert (second.opened, second.repeated) == ([], 1)
    assert (alert.subject, alert.severity, alert.count) == ("build1", "warning", 2)
    assert "no heartbeat for 46 s" in alert.summary
    assert alert_event_kinds(store, "heartbeat_stale:build1") == [
        "alert.opened",
        "alert.repeated",
    ]


def test_a_registered_server_that_never_started_raises_nothing(
    coordinator: Coordinator, operator: Principal, build1: Principal, clock: FakeClock
) -> None:
    clock.advance(3600)
    assert coordinator.monitor.step().opened == []


def test_an_alert_resolves_only_after_its_condition_stayed_clear_long_enough(
    coordinator: Coordinator, store: Store, operator: Principal, build1: Principal, clock: FakeClock
) -> None:
    resolve_after = coordinator.settings.resolve_after_seconds
    beat(coordinator, build1)
    clock.advance(20)
    [alert] = coordinator.monitor.step().opened

    # It comes back, then flaps: the clear spell starts again each time it fires.
    beat(coordinator, build1)
    coordinator.monitor.step()
    assert coordinator.alerts.get(alert.id, by=operator).clear_since is not None
    clock.advance(20)
    assert coordinator.monitor.step().opened == []  # stale again: the same alert
    assert coordinator.alerts.get(alert.id, by=operator).clear_since is None
    beat(coordinator, build1)
    assert coordinator.monitor.step().resolved == []  # a new clear spell starts here
    for _ in range(int(resolve_after // 10) - 1):
        clock.advance(5)
        beat(coordinator, build1)
        clock.advance(5)
        assert coordinator.monitor.step().resolved == []
    clock.advance(5)
    beat(coordinator, build1)
    clock.advance(5)
    [resolved] = coordinator.monitor.step().resolved

    assert resolved.id == alert.id
    assert resolved.resolved_at == clock.now()
    assert open_alerts(coordinator, operator, "heartbeat_stale") == []
    assert alert_event_kinds(store, "heartbeat_stale:build1")[-1] == "alert.resolved"
    # A new spell opens a new alert.
    clock.advance(20)
    [again] = coordinator.monitor.step().opened
    assert again.id != alert.id


def test_a_server_silent_past_the_offline_limit_opens_a_critical_alert(
    coordinator: Coordinator, operator: Principal, build1: Principal, clock: FakeClock
) -> None:
    beat(coordinator, build1)
    clock.advance(coordinator.settings.offline_after_seconds)
    coordinator.monitor.step()

    [offline] = open_alerts(coordinator, operator, "server_offline")
    assert (offline.subject, offline.severity) == ("build1", "critical")
    assert offline.summary == "build1 is offline: no heartbeat for 5 min"


@pytest.mark.parametrize(
    ("free_gib", "total_gib", "low"),
    [(1.5, 500, True), (10, 500, True), (30, 500, False), (3, 20, False)],
)
def test_disk_low_fires_under_five_percent_or_two_gib_free(
    coordinator: Coordinator,
    operator: Principal,
    build1: Principal,
    free_gib: float,
    total_gib: float,
    low: bool,
) -> None:
    metrics = Metrics(disk_free_bytes=int(free_gib * GIB), disk_total_bytes=total_gib * GIB)
    beat(coordinator, build1, metrics)
    coordinator.monitor.step()

    found = open_alerts(coordinator, operator, "disk_low")
    assert [alert.subject for alert in found] == (["build1"] if low else [])


def test_a_branch_that_fails_after_passing_is_broken_until_its_next_pass(
    coordinator: Coordinator,
    store: Store,
    operator: Principal,
    build1: Principal,
    main_branch: None,
) -> None:
    build_on(coordinator, build1, operator, "failed", commit="a" * 40)  # never passed: not broken
    coordinator.monitor.step()
    assert open_alerts(coordinator, operator, "branch_broken") == []
    passed = build_on(coordinator, build1, operator, "succeeded", commit="b" * 40)
    first_failure = build_on(coordinator, build1, operator, "failed", commit="c" * 40)
    build_on(coordinator, build1, operator, "failed", commit="d" * 40)
    coordinator.monitor.step()

    [broken] = open_alerts(coordinator, operator, "branch_broken")
    assert (broken.subject, broken.severity) == ("main", "critical")
    assert broken.details["first_failed_job"] == first_failure
    assert broken.details["last_passed_job"] == passed
    assert broken.details["failed_builds"] == 2

    build_on(coordinator, build1, operator, "succeeded", commit="e" * 40)
    [resolved] = coordinator.monitor.step().resolved  # at once: no clear spell for this rule
    assert resolved.id == broken.id


def test_a_branch_failing_more_than_half_its_last_builds_raises_a_failure_rate_alert(
    coordinator: Coordinator, operator: Principal, build1: Principal, main_branch: None
) -> None:
    window = coordinator.settings.failure_rate_builds
    for number in range(window):
        build_on(coordinator, build1, operator, "succeeded" if number < 5 else "failed")
    coordinator.monitor.step()
    assert open_alerts(coordinator, operator, "failure_rate") == []  # 5 of 10: not over half

    build_on(coordinator, build1, operator, "failed")
    coordinator.monitor.step()
    [rate] = open_alerts(coordinator, operator, "failure_rate")
    assert rate.summary == "main: 6 of its last 10 builds failed"


def test_a_long_backlog_raises_one_queue_alert(
    coordinator: Coordinator, operator: Principal, clock: FakeClock
) -> None:
    settings = coordinator.settings
    for _ in range(settings.backlog_jobs + 1):
        coordinator.queue.submit("main", COMMIT, by=operator)
    coordinator.monitor.step()
    assert open_alerts(coordinator, operator, "backlog") == []  # not waiting long yet

    clock.advance(settings.backlog_minutes * 60)
    coordinator.monitor.step()
    [backlog] = open_alerts(coordinator, operator, "backlog")
    assert backlog.subject == "queue"
    assert backlog.details["waiting_jobs"] == settings.backlog_jobs + 1


def test_coordinators_stepping_at_once_open_one_alert_per_subject(
    store: Store, settings: Settings, clock: FakeClock, operator: Principal
) -> None:
    coordinators = [Coordinator(store, settings, clock) for _ in range(4)]
    for number in range(5):
        name = f"build{number}"
        coordinators[0].servers.register(name, (), by=operator)
        beat(coordinators[0], Principal("agent", f"agent {name}", server=name))
    clock.advance(settings.offline_after_seconds)
    start = threading.Barrier(len(coordinators))
    errors: list[BaseException] = []

    def step(coordinator: Coordinator) -> None:
        start.wait()
        try:
            for _ in range(3):
                coordinator.monitor.step()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=step, args=(each,)) for each in coordinators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    for rule in ("heartbeat_stale", "server_offline"):
        found = open_alerts(coordinators[0], operator, rule)
        assert sorted(alert.subject for alert in found) == [f"build{n}" for n in range(5)]
        assert all(alert.count == 12 for alert in found)
        for alert in found:
            assert alert_event_kinds(store, f"{rule}:{alert.subject}").count("alert.opened") == 1


def test_an_operator_acknowledges_an_open_alert_once(
    coordinator: Coordinator,
    store: Store,
    operator: Principal,
    reader: Principal,
    build1: Principal,
    clock: FakeClock,
) -> None:
    beat(coordinator, build1)
    clock.advance(20)
    [alert] = coordinator.monitor.step().opened
    with pytest.raises(Forbidden):
        coordinator.alerts.acknowledge(alert.id, by=reader)

    acknowledged = coordinator.alerts.acknowledge(alert.id, by=operator)
    clock.advance(5)
    again = coordinator.alerts.acknowledge(alert.id, by=operator)

    assert acknowledged.acknowledged_at == again.acknowledged_at
    assert acknowledged.acknowledged_by == operator.actor
    assert alert_event_kinds(store, "heartbeat_stale:build1").count("alert.acknowledged") == 1
    with pytest.raises(NotFound):
        coordinator.alerts.acknowledge(alert.id + 1000, by=operator)


def test_a_resolved_alert_cannot_be_acknowledged(
    coordinator: Coordinator, operator: Principal, build1: Principal, main_branch: None
) -> None:
    build_on(coordinator, build1, operator, "succeeded")
    build_on(coordinator, build1, operator, "failed")
    [broken] = coordinator.monitor.step().opened
    build_on(coordinator, build1, operator, "succeeded")
    coordinator.monitor.step()

    with pytest.raises(Conflict, match="resolved"):
        coordinator.alerts.acknowledge(broken.id, by=operator)
    assert coordinator.alerts.get(broken.id, by=operator).acknowledged_at is None
    everything = coordinator.alerts.list_alerts(include_resolved=True, by=operator)
    assert [alert.id for alert in everything if alert.rule == "branch_broken"] == [broken.id]


def test_listing_alerts_of_an_unknown_rule_or_past_the_limit_is_refused(
    coordinator: Coordinator, operator: Principal
) -> None:
    with pytest.raises(InvalidInput, match="no rule 'disk_full'"):
        coordinator.alerts.list_alerts(rule="disk_full", by=operator)
    with pytest.raises(InvalidInput, match="limit"):
        coordinator.alerts.list_alerts(limit=0, by=operator)


def test_a_disabled_rule_never_fires_and_an_unknown_one_is_refused(
    store: Store, settings: Settings, clock: FakeClock, operator: Principal
) -> None:
    quiet = dataclasses.replace(settings, monitor_disabled_rules="heartbeat_stale, disk_low")
    coordinator = Coordinator(store, quiet, clock)
    coordinator.servers.register("build1", (), by=operator)
    beat(coordinator, Principal("agent", "agent build1", server="build1"))
    clock.advance(60)
    coordinator.monitor.step()
    assert open_alerts(coordinator, operator, "heartbeat_stale") == []

    wrong = dataclasses.replace(settings, monitor_disabled_rules="heartbeat_stael")
    with pytest.raises(InvalidInput, match="no rule heartbeat_stael"):
        Coordinator(store, wrong, clock)


def test_maintenance_steps_the_monitor_every_monitor_seconds(
    coordinator: Coordinator, operator: Principal, build1: Principal, clock: FakeClock
) -> None:
    beat(coordinator, build1)
    assert maintenance.step(coordinator).alerts_opened == []  # the first step, nothing wrong
    clock.advance(20)
    assert maintenance.step(coordinator).alerts_opened == []  # not due: 20 s since the last
    clock.advance(coordinator.settings.monitor_seconds - 20)
    [opened] = maintenance.step(coordinator).alerts_opened

    assert coordinator.alerts.get(opened, by=operator).rule == "heartbeat_stale"


def test_a_silence_marks_its_rules_alerts_silenced_until_it_ends(
    coordinator: Coordinator,
    store: Store,
    operator: Principal,
    register_server: RegisterServer,
    clock: FakeClock,
) -> None:
    for name in ("build1", "build2"):
        beat(coordinator, register_server(name))
    clock.advance(20)
    coordinator.monitor.step()
    one = coordinator.alerts.silence("heartbeat_stale", "build1", seconds=3600, by=operator)

    marked = {a.subject: a.silenced for a in open_alerts(coordinator, operator, "heartbeat_stale")}
    assert marked == {"build1": True, "build2": False}
    every = coordinator.alerts.silence(
        "heartbeat_stale", seconds=60, comment="upgrade", by=operator
    )
    assert all(a.silenced for a in open_alerts(coordinator, operator, "heartbeat_stale"))
    clock.advance(60)  # the rule-wide silence runs out; build1's own goes on
    marked = {a.subject: a.silenced for a in open_alerts(coordinator, operator, "heartbeat_stale")}
    assert marked == {"build1": True, "build2": False}

    ended = coordinator.alerts.unsilence(one.id, by=operator)
    assert ended.until == clock.now()
    assert not any(a.silenced for a in open_alerts(coordinator, operator, "heartbeat_stale"))
    assert [s.id for s in coordinator.alerts.list_silences(by=operator)] == []
    listed = coordinator.alerts.list_silences(include_ended=True, by=operator)
    assert [s.id for s in listed] == [every.id, one.id]
    kinds = alert_event_kinds(store, "heartbeat_stale:build1")
    assert kinds[-2:] == ["alert.silenced", "alert.unsilenced"]
    with pytest.raises(Conflict, match="already ended"):
        coordinator.alerts.unsilence(one.id, by=operator)


@pytest.mark.parametrize(
    ("rule", "subject", "seconds", "comment", "error"),
    [
        ("disk_full", None, 60, "", "no rule 'disk_full'"),
        ("disk_low", None, 0, "", "silence duration"),
        ("disk_low", None, 91 * 86_400, "", "silence duration"),
        ("disk_low", "x" * 201, 60, "", "alert subject"),
        ("disk_low", None, 60, "c" * 501, "comment"),
    ],
)
def test_a_bad_silence_is_refused_and_changes_nothing(
    coordinator: Coordinator,
    operator: Principal,
    rule: str,
    subject: str | None,
    seconds: float,
    comment: str,
    error: str,
) -> None:
    with pytest.raises(InvalidInput, match=error):
        coordinator.alerts.silence(rule, subject, seconds=seconds, comment=comment, by=operator)
    assert coordinator.alerts.list_silences(include_ended=True, by=operator) == []


def test_only_operators_silence_and_end_silences(
    coordinator: Coordinator, operator: Principal, reader: Principal, build1: Principal
) -> None:
    for who in (reader, build1):
        with pytest.raises(Forbidden):
            coordinator.alerts.silence("disk_low", seconds=60, by=who)
    made = coordinator.alerts.silence("disk_low", seconds=60, by=operator)
    with pytest.raises(Forbidden):
        coordinator.alerts.unsilence(made.id, by=reader)
    with pytest.raises(NotFound):
        coordinator.alerts.unsilence(made.id + 1, by=operator)
    assert [s.id for s in coordinator.alerts.list_silences(by=reader)] == [made.id]


@pytest.mark.parametrize(
    ("skew", "summary"),
    [
        (45.0, "build1: its clock is 45 s ahead of the coordinator's"),
        (-120.0, "build1: its clock is 120 s behind the coordinator's"),
        (10.0, None),
    ],
)
def test_an_agent_whose_clock_is_off_by_more_than_the_limit_raises_clock_skew(
    coordinator: Coordinator,
    operator: Principal,
    build1: Principal,
    skew: float,
    summary: str | None,
) -> None:
    beat(coordinator, build1, Metrics(clock_skew_seconds=skew))
    coordinator.monitor.step()

    found = [alert.summary for alert in open_alerts(coordinator, operator, "clock_skew")]
    assert found == ([] if summary is None else [summary])


def test_an_agent_reporting_problems_raises_agent_unhealthy_until_it_stops(
    coordinator: Coordinator, operator: Principal, build1: Principal, clock: FakeClock
) -> None:
    beat(coordinator, build1, Metrics(problems=("git is not on PATH",)))
    [alert] = [a for a in coordinator.monitor.step().opened if a.rule == "agent_unhealthy"]
    assert (alert.severity, alert.summary) == ("critical", "build1: git is not on PATH")
    assert coordinator.servers.get("build1", by=operator).metrics == Metrics(
        problems=("git is not on PATH",)
    )

    beat(coordinator, build1, Metrics())
    coordinator.monitor.step()
    clock.advance(coordinator.settings.resolve_after_seconds)
    beat(coordinator, build1, Metrics())
    assert [a.id for a in coordinator.monitor.step().resolved] == [alert.id]


@pytest.mark.parametrize(
    ("metrics", "error"),
    [
        (Metrics(problems=tuple(f"p{n}" for n in range(11))), "at most 10 problems"),
        (Metrics(problems=("x" * 201,)), "agent problem"),
        (Metrics(clock_skew_seconds=float("inf")), "clock_skew_seconds"),
        (Metrics(clock_skew_seconds=float("nan")), "clock_skew_seconds"),
    ],
)
def test_nonsense_agent_health_figures_are_refused_and_never_stored(
    coordinator: Coordinator, operator: Principal, build1: Principal, metrics: Metrics, error: str
) -> None:
    with pytest.raises(InvalidInput, match=error):
        beat(coordinator, build1, metrics)
    assert coordinator.servers.get("build1", by=operator).last_heartbeat_at is None


def test_a_job_running_past_its_timeout_is_stuck_until_it_finishes(
    coordinator: Coordinator, operator: Principal, build1: Principal, clock: FakeClock
) -> None:
    coordinator.branches.add(
        "main", repo="/srv/repo", command="make", timeout_seconds=600, by=operator
    )
    coordinator.queue.submit("main", COMMIT, by=operator)
    assignment = coordinator.agents.claim("build1", by=build1)
    assert assignment is not None
    job = assignment.job
    clock.advance(590)
    coordinator.monitor.step()
    assert open_alerts(coordinator, operator, "job_stuck") == []

    clock.advance(20)
    coordinator.monitor.step()
    [stuck] = open_alerts(coordinator, operator, "job_stuck")
    assert stuck.subject == f"job:{job.id}"
    assert stuck.summary == (
        f"job {job.id} (main on build1) has run 10 min, past the 10 min it should take at most"
    )

    coordinator.queue.complete(
        job.id, status="failed", server="build1", fencing_token=job.fencing_token, by=build1
    )
    assert [alert.id for alert in coordinator.monitor.step().resolved] == [stuck.id]


def test_a_job_running_past_three_times_its_predicted_p90_is_stuck(
    coordinator: Coordinator, operator: Principal, build1: Principal, clock: FakeClock
) -> None:
    coordinator.branches.add("main", repo="/srv/repo", command="make", by=operator)
    for _ in range(8):
        coordinator.queue.submit("main", COMMIT, by=operator)
        assignment = coordinator.agents.claim("build1", by=build1)
        assert assignment is not None
        clock.advance(100)
        coordinator.queue.complete(
            assignment.job.id,
            status="succeeded",
            server="build1",
            fencing_token=assignment.job.fencing_token,
            by=build1,
        )
    coordinator.queue.submit("main", COMMIT, by=operator)
    running = coordinator.agents.claim("build1", by=build1)
    assert running is not None
    clock.advance(250)
    coordinator.monitor.step()
    assert open_alerts(coordinator, operator, "job_stuck") == []  # under 3 x ~100 s

    clock.advance(100)
    coordinator.monitor.step()
    [stuck] = open_alerts(coordinator, operator, "job_stuck")
    assert stuck.subject == f"job:{running.job.id}"
    assert 290 <= stuck.details["stuck_after_seconds"] <= 340


def test_an_expired_lock_taken_back_raises_lock_recovered_once(
    coordinator: Coordinator, store: Store, operator: Principal, clock: FakeClock
) -> None:
    coordinator.monitor.step()  # the monitor's cursor starts here
    coordinator.locks.acquire("deploy", "ci-runner-7", ttl=10, by=operator)
    clock.advance(11)
    assert len(coordinator.locks.recover_expired()) == 1

    [recovered] = [a for a in coordinator.monitor.step().opened if a.rule == "lock_recovered"]
    assert (recovered.subject, recovered.details["holder"]) == ("deploy", "ci-runner-7")
    assert recovered.summary == "lock deploy expired in the hands of ci-runner-7 and was released"
    assert [a.id for a in coordinator.monitor.step().resolved] == [recovered.id]
    assert all(a.rule != "lock_recovered" for a in coordinator.monitor.step().opened)


def test_a_servers_own_labels_override_the_disk_low_limits_for_it(
    coordinator: Coordinator, operator: Principal, register_server: RegisterServer
) -> None:
    big = register_server("big", labels=["disk_low_gib=50"])
    small = register_server("small", labels=["disk_low_percent=1", "disk_low_gib=0.5"])
    beat(coordinator, big, Metrics(disk_free_bytes=30 * GIB, disk_total_bytes=1000 * GIB))
    beat(coordinator, small, Metrics(disk_free_bytes=1 * GIB, disk_total_bytes=50 * GIB))
    coordinator.monitor.step()

    [low] = open_alerts(coordinator, operator, "disk_low")
    assert low.subject == "big"  # 30 GiB is under its 50; small's 1 GiB (2 %) is over its limits
    assert (low.details["limit_gib"], low.details["limit_percent"]) == (50.0, 5.0)


def test_a_coordinator_that_starts_does_not_take_old_heartbeats_for_a_stale_fleet(
    store: Store,
    settings: Settings,
    operator: Principal,
    coordinator: Coordinator,
    build1: Principal,
    clock: FakeClock,
) -> None:
    beat(coordinator, build1)
    clock.advance(120)  # the coordinator was down two minutes
    restarted = Coordinator(store, settings, clock)
    assert restarted.monitor.step().opened == []  # the agent has not had time to come back

    clock.advance(settings.stale_after_seconds + settings.heartbeat_interval_seconds)
    [stale] = restarted.monitor.step().opened  # it did not come back: now it counts
    assert (stale.rule, stale.subject) == ("heartbeat_stale", "build1")
