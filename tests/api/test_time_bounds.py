"""Every time, duration and day count a client sends is bounded: beyond the bound a 422,
and nothing stored (datetime arithmetic on such a value would overflow later, as a 500)."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from buildcoord.client import Client
from inprocess import (
    ADMIN_TOKEN,
    API,
    RegisterAgent,
    bearer,
    error_of,
    with_value,
)
from store_rows import StoreState

OPERATOR = bearer(ADMIN_TOKEN)
WEEK = 7 * 24 * 3600

# (what, path with {job} for the running job, body with VALUE where the number goes)
REQUESTS: dict[str, tuple[str, dict[str, Any]]] = {
    "lock ttl": ("/locks/acquire", {"name": "deploy", "holder": "ci", "ttl": "VALUE"}),
    "lock renewal ttl": ("/locks/renew", {"name": "held", "holder": "ci", "ttl": "VALUE"}),
    "archive days": ("/messages/archive", {"days": "VALUE"}),
    "uptime": ("/servers/build1/heartbeat", {"metrics": {"uptime_seconds": "VALUE"}}),
    "branch timeout": (
        "/branches",
        {"name": "dev", "repo": "/srv/repo", "timeout_seconds": "VALUE"},
    ),
    "build duration": (
        "/jobs/{job}/complete",
        {"status": "succeeded", "duration": "VALUE"},
    ),
    "log entry time": ("/jobs/{job}/log", {"entries": [{"at": "VALUE", "message": "hello"}]}),
}

OUT_OF_BOUNDS = [
    ("lock ttl", 0),
    ("lock ttl", WEEK + 1),
    ("lock ttl", 1e308),
    ("lock renewal ttl", -1),
    ("lock renewal ttl", 1e308),
    ("archive days", -1),
    ("archive days", 36_501),
    ("archive days", 1e308),
    ("uptime", -1),
    ("uptime", 1e308),
    ("branch timeout", 0),
    ("branch timeout", WEEK + 0.5),
    ("branch timeout", 1e308),
    ("build duration", -1),
    ("build duration", WEEK + 0.5),
    ("build duration", 1e12),
    ("build duration", 1e308),
    ("log entry time", 0),
    ("log entry time", -1),
    ("log entry time", 946_684_799),  # just before 2000-01-01
    ("log entry time", 4_102_444_801),  # just after 2100-01-01
    ("log entry time", 1e308),
]


@pytest.fixture
def running_job(operator: Client, register_agent: RegisterAgent) -> int:
    """A job running on build1 (its id), and a lock named "held" held by ci."""
    agent = register_agent("build1")
    operator.acquire_lock("held", "ci")
    operator.submit_job("main", "abc1234")
    job = agent.client.claim_job("build1")
    assert job is not None
    return job.id


@pytest.mark.parametrize(("what", "value"), OUT_OF_BOUNDS)
def test_a_time_or_duration_out_of_its_bounds_is_refused_and_changes_nothing(
    http: TestClient, running_job: int, store_state: StoreState, what: str, value: float
) -> None:
    path, body = REQUESTS[what]
    before = store_state()

    response = http.post(
        API + path.format(job=running_job), json=with_value(body, value), headers=OPERATOR
    )

    error_of(response, 422)
    assert store_state() == before


@pytest.mark.parametrize(
    ("what", "value"),
    [
        ("lock ttl", WEEK),
        ("archive days", 36_500),
        ("uptime", 36_500 * 86_400),
        ("branch timeout", WEEK),
        ("build duration", 0),
        ("build duration", WEEK),
        ("log entry time", 946_684_800),
        ("log entry time", 4_102_444_800),
    ],
)
def test_a_time_or_duration_at_its_bound_is_accepted(
    http: TestClient, running_job: int, what: str, value: float
) -> None:
    path, body = REQUESTS[what]
    response = http.post(
        API + path.format(job=running_job), json=with_value(body, value), headers=OPERATOR
    )
    assert response.status_code in (200, 201), response.text


def test_the_openapi_document_declares_the_bounds(http: TestClient) -> None:
    schemas = http.get("/openapi.json").json()["components"]["schemas"]

    def bounds(model: str, field: str) -> tuple[Any, Any]:
        [number] = [
            choice
            for choice in schemas[model]["properties"][field]["anyOf"]
            if choice.get("type") == "number"
        ]
        low = number.get("minimum", number.get("exclusiveMinimum"))
        return low, number["maximum"]

    assert bounds("CompleteIn", "duration") == (0, WEEK)
    assert bounds("LogEntryIn", "at") == (946_684_800, 4_102_444_800)
    assert bounds("LockAcquireIn", "ttl") == (0, WEEK)
    assert bounds("LockRenewIn", "ttl") == (0, WEEK)
    assert bounds("ArchiveIn", "days") == (0, 36_500)
    assert bounds("MetricsIn", "uptime_seconds") == (0, 36_500 * 86_400)
    assert bounds("BranchIn", "timeout_seconds") == (0, WEEK)
