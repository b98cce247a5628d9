"""The fleet's trend: a sample per minute, an hour's roll-up, bounded tables — on both
backends, with an injected clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.errors import InvalidInput
from buildcoord.models import Metrics, Principal
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store
from buildcoord.store.fleet_samples import SampleFigures

from .queue_helpers import COMMIT, build_on

RegisterServer = Callable[..., Principal]
HOUR_START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(HOUR_START)


def test_each_minute_is_sampled_once_with_its_builds_and_gauges(
    coordinator: Coordinator,
    store: Store,
    settings: Settings,
    operator: Principal,
    reader: Principal,
    register_server: RegisterServer,
    clock: FakeClock,
) -> None:
    coordinator.branches.add("main", repo="/srv/repo", command="make", by=operator)
    build1 = register_server("build1")
    register_server("build2")
    other = Coordinator(store, settings, clock)  # a second coordinator on the same database
    assert coordinator.trends.sample_if_due() is False  # the first, partial minute
    other.trends.sample_if_due()
    clock.advance(60)
    build_on(coordinator, build1, operator, "succeeded", duration=30.0)
    build_on(coordinator, build1, operator, "failed", duration=30.0)
    coordinator.queue.submit("main", COMMIT, by=operator)
    clock.advance(55)
    coordinator.servers.heartbeat("build1", metrics=Metrics(), by=build1)
    clock.advance(5)

    stored = [coordinator.trends.sample_if_due(), other.trends.sample_if_due()]
    assert sorted(stored) == [False, True]
    assert coordinator.trends.sample_if_due() is False  # the same minute again

    [sample] = coordinator.trends.samples("24h", by=reader)
    assert sample.at == datetime(2026, 3, 2, 10, 1, tzinfo=UTC)
    assert (sample.servers_online, sample.servers_total) == (1, 2)
    assert (sample.queued, sample.running, sample.blocked) == (1, 0, 0)
    assert (sample.passed, sample.failed, sample.mean_duration_seconds) == (1, 1, 30.0)
    assert sample.success_rate == 0.5


def test_an_hour_is_rolled_up_from_its_minutes(
    coordinator: Coordinator, operator: Principal, reader: Principal, clock: FakeClock
) -> None:
    coordinator.trends.sample_if_due()
    for minute in range(60):
        clock.advance(60)
        if minute == 30:
            coordinator.queue.submit("main", COMMIT, by=operator)
        coordinator.trends.sample_if_due()

    minutes = coordinator.trends.samples("24h", by=reader)
    [hour] = coordinator.trends.samples("30d", by=reader)
    assert len(minutes) == 60
    assert (hour.period, hour.at) == ("hour", HOUR_START)
    assert hour.queued == pytest.approx(sum(m.queued for m in minutes) / 60, abs=0.01)
    assert (hour.passed, hour.failed) == (0, 0)


def test_samples_past_their_keeping_are_deleted_when_an_hour_ends(
    coordinator: Coordinator, store: Store, reader: Principal, clock: FakeClock
) -> None:
    now = clock.now().timestamp()
    figures = SampleFigures(1, 1, 0, 0, 0, 0, 0, 0)
    for period, age in (("minute", 25 * 3600), ("minute", 23 * 3600)):
        store.record_fleet_sample(period, now - age, figures)
    for period, age in (("hour", 31 * 86_400), ("hour", 29 * 86_400)):
        store.record_fleet_sample(period, now - age, figures)
    coordinator.trends.sample_if_due()
    clock.advance(59 * 60)
    coordinator.trends.sample_if_due()
    clock.advance(60)  # the minute that closes the hour
    coordinator.trends.sample_if_due()

    minutes = coordinator.trends.samples("24h", by=reader)
    hours = coordinator.trends.samples("30d", by=reader)
    ages = [round((clock.now().timestamp() - m.at.timestamp()) / 60) for m in minutes]
    assert ages == [24 * 60, 2, 1]  # the one 25 hours old is gone
    assert len(hours) == 2  # the one 29 days old, and the hour just rolled up
    with store.engine.connect() as conn:
        total = conn.exec_driver_sql("SELECT count(*) FROM fleet_samples").scalar_one()
    assert total == 5


def test_an_unknown_window_is_refused(coordinator: Coordinator, reader: Principal) -> None:
    with pytest.raises(InvalidInput, match="window must be one of 24h, 30d"):
        coordinator.trends.samples("7d", by=reader)
