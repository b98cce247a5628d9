"""The services refuse a time or duration beyond the bound the API declares, for callers that
do not come through the API's schema: a refusal changes nothing."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from buildcoord.errors import InvalidInput
from buildcoord.models import Metrics, Principal
from buildcoord.services.coordinator import Coordinator
from store_rows import StoreState

from .conftest import RegisterServer

Call = Callable[[Coordinator, Principal, int], object]


def log_at(at: float) -> Call:
    """Append one log entry dated at to the job."""
    return lambda services, operator, job_id: services.logs.append(
        job_id, [{"at": at, "message": "hello"}], by=operator
    )


def archive(days: float) -> Call:
    """Archive read messages older than days."""
    return lambda services, operator, _job_id: services.messages.archive(days=days, by=operator)


def uptime(seconds: float) -> Call:
    """Send build1's heartbeat with an uptime of seconds."""
    return lambda services, operator, _job_id: services.servers.heartbeat(
        "build1", metrics=Metrics(uptime_seconds=seconds), by=operator
    )


@pytest.mark.parametrize(
    ("call", "what"),
    [
        pytest.param(log_at(1e308), "time", id="log-at-1e308"),
        pytest.param(log_at(946_684_799), "time", id="log-at-1999"),
        pytest.param(log_at(4_102_444_801), "time", id="log-at-2100"),
        pytest.param(log_at(math.nan), "time", id="log-at-nan"),
        pytest.param(log_at(-1), "time", id="log-at-negative"),
        pytest.param(archive(36_501), "days", id="archive-days-36501"),
        pytest.param(archive(1e308), "days", id="archive-days-1e308"),
        pytest.param(archive(math.nan), "days", id="archive-days-nan"),
        pytest.param(uptime(36_500 * 86_400 + 1), "uptime", id="uptime-over-a-century"),
        pytest.param(uptime(math.inf), "uptime", id="uptime-inf"),
    ],
)
def test_it_refuses_a_time_beyond_its_bound_and_changes_nothing(
    coordinator: Coordinator,
    operator: Principal,
    register_server: RegisterServer,
    store_state: StoreState,
    call: Call,
    what: str,
) -> None:
    register_server("build1")
    job = coordinator.queue.submit("main", "abc1234", by=operator)
    before = store_state()

    with pytest.raises(InvalidInput, match=what):
        call(coordinator, operator, job.id)

    assert store_state() == before
