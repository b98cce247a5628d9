"""Repeated failed authentication from one address is slowed down (429 with Retry-After)
without locking out the other addresses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store
from buildcoord.web.app import create_app
from buildcoord.web.throttle import FailedAuthThrottle
from inprocess import ADMIN_TOKEN, API, bearer

ALLOWED = 3


@pytest.fixture
def clients(store: Store) -> Iterator[tuple[TestClient, TestClient]]:
    """An attacker's and a colleague's client, from two addresses, on one coordinator that
    allows 3 failures a minute."""
    settings = Settings(admin_token=ADMIN_TOKEN, auth_failures_allowed=ALLOWED)
    coordinator = Coordinator(store, settings, FakeClock())
    coordinator.start()
    app = create_app(coordinator)
    with (
        TestClient(app, client=("192.0.2.66", 4000)) as attacker,
        TestClient(app, client=("192.0.2.7", 4001)) as colleague,
    ):
        yield attacker, colleague


def test_an_address_that_keeps_failing_waits_and_the_others_do_not(
    clients: tuple[TestClient, TestClient],
) -> None:
    attacker, colleague = clients
    for guess in range(ALLOWED):
        answer = attacker.get(f"{API}/servers", headers=bearer(f"guess-{guess}"))
        assert answer.status_code == 401
    refused = attacker.get(f"{API}/servers", headers=bearer(ADMIN_TOKEN))
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "192.0.2.66" in refused.json()["error"]
    # Not even the dashboard's login form answers it now; the colleague is not held up.
    assert attacker.post("/login", data={"token": ADMIN_TOKEN}).status_code == 429
    assert colleague.get(f"{API}/servers", headers=bearer(ADMIN_TOKEN)).status_code == 200
    assert colleague.post("/login", data={"token": "nope"}).status_code == 401


def test_failed_logins_on_the_dashboard_count_too(
    clients: tuple[TestClient, TestClient],
) -> None:
    attacker, _colleague = clients
    for guess in range(ALLOWED):
        assert attacker.post("/login", data={"token": f"guess-{guess}"}).status_code == 401
    assert attacker.get(f"{API}/servers", headers=bearer(ADMIN_TOKEN)).status_code == 429


def test_the_wait_ends_a_window_after_the_oldest_failure_and_memory_stays_bounded() -> None:
    now = [1000.0]
    throttle = FailedAuthThrottle(2, 60.0, max_addresses=3, clock=lambda: now[0])
    throttle.failed("a")
    now[0] += 10
    throttle.failed("a")
    assert throttle.retry_after("a") == 50
    now[0] += 50
    assert throttle.retry_after("a") is None
    for address in ("b", "c", "d", "e"):
        throttle.failed(address)
        throttle.failed(address)
    assert throttle.retry_after("b") is None  # forgotten: only the 3 latest are kept
    assert throttle.retry_after("e") == 60
    assert FailedAuthThrottle(0, 60.0).retry_after("a") is None
