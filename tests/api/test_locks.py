"""/api/v1/locks: leases with fencing tokens, semaphores, recovery, and refused requests."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from buildcoord.client import Client
from buildcoord.clock import FakeClock
from inprocess import ADMIN_TOKEN, API, RegisterAgent, bearer, error_of
from store_rows import StoreState

OPERATOR = bearer(ADMIN_TOKEN)


def acquire(http: TestClient, body: dict[str, Any], token: str = ADMIN_TOKEN) -> Any:
    """Acquire a lock over raw HTTP, insisting it succeeds; return the grant."""
    response = http.post(f"{API}/locks/acquire", json=body, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


# --- the main paths ---------------------------------------------------------------------------


def test_acquiring_a_free_lock_returns_fencing_token_1(http: TestClient) -> None:
    grant = acquire(http, {"name": "deploy", "holder": "build1", "ttl": 60})
    assert grant["token"] == 1
    assert grant["holder"] == "build1"
    assert grant["reentered"] is False
    assert grant["expires_at"] == "2026-01-01T00:01:00Z"


def test_fencing_tokens_increase_across_holders(http: TestClient, operator: Client) -> None:
    first = acquire(http, {"name": "deploy", "holder": "build1"})
    operator.release_lock("deploy", "build1")
    second = acquire(http, {"name": "deploy", "holder": "build2"})
    assert second["token"] > first["token"]


def test_the_same_holder_reacquires_with_the_same_token_and_a_fresh_expiry(
    http: TestClient, clock: FakeClock
) -> None:
    first = acquire(http, {"name": "deploy", "holder": "build1", "ttl": 60})
    clock.advance(30)
    again = acquire(http, {"name": "deploy", "holder": "build1", "ttl": 60})
    assert again["reentered"] is True
    assert again["token"] == first["token"]
    assert again["expires_at"] == "2026-01-01T00:01:30Z"


def test_a_lock_name_with_spaces_and_quotes_works(http: TestClient, operator: Client) -> None:
    name = "release \"v1\" 'final' lock"
    grant = acquire(http, {"name": name, "holder": "build1"})
    assert grant["name"] == name
    assert [lock.name for lock in operator.list_locks()] == [name]
    response = http.post(
        f"{API}/locks/release", json={"name": name, "holder": "build1"}, headers=OPERATOR
    )
    assert response.json() == {"released": ["build1"]}


def test_listing_locks_shows_holders_and_expired_leases(http: TestClient, clock: FakeClock) -> None:
    acquire(http, {"name": "deploy", "holder": "build1", "ttl": 10})
    clock.advance(11)
    locks = http.get(f"{API}/locks", headers=OPERATOR).json()
    assert [(lock["name"], lock["capacity"]) for lock in locks] == [("deploy", 1)]
    [holder] = locks[0]["holders"]
    assert (holder["holder"], holder["token"], holder["expired"]) == ("build1", 1, True)


def test_renewing_extends_a_lease(http: TestClient, clock: FakeClock) -> None:
    grant = acquire(http, {"name": "deploy", "holder": "build1", "ttl": 60})
    clock.advance(50)
    response = http.post(
        f"{API}/locks/renew",
        json={"name": "deploy", "holder": "build1", "token": grant["token"], "ttl": 60},
        headers=OPERATOR,
    )
    assert response.status_code == 200
    assert response.json()["expires_at"] == "2026-01-01T00:01:50Z"


def test_the_holder_releases_its_lease(http: TestClient, operator: Client) -> None:
    acquire(http, {"name": "deploy", "holder": "build1"})
    response = http.post(
        f"{API}/locks/release", json={"name": "deploy", "holder": "build1"}, headers=OPERATOR
    )
    assert response.status_code == 200
    assert response.json() == {"released": ["build1"]}
    assert operator.list_locks()[0].holders == ()


def test_an_operator_forces_a_release_of_every_holder(http: TestClient) -> None:
    acquire(http, {"name": "pool", "holder": "build1", "capacity": 2})
    acquire(http, {"name": "pool", "holder": "build2"})
    response = http.post(
        f"{API}/locks/release", json={"name": "pool", "force": True}, headers=OPERATOR
    )
    assert sorted(response.json()["released"]) == ["build1", "build2"]


def test_a_semaphore_admits_up_to_its_capacity(http: TestClient, store_state: StoreState) -> None:
    acquire(http, {"name": "pool", "holder": "build1", "capacity": 2})
    acquire(http, {"name": "pool", "holder": "build2"})
    before = store_state()
    response = http.post(
        f"{API}/locks/acquire", json={"name": "pool", "holder": "build3"}, headers=OPERATOR
    )
    assert "build1, build2" in error_of(response, 409)
    assert store_state() == before


def test_an_agent_takes_a_lock_as_itself(http: TestClient, register_agent: RegisterAgent) -> None:
    agent = register_agent("build1")
    grant = acquire(http, {"name": "deploy", "holder": "build1"}, token=agent.token)
    assert grant["holder"] == "build1"


def test_recover_releases_expired_leases_and_posts_a_message(
    http: TestClient, operator: Client, clock: FakeClock
) -> None:
    acquire(http, {"name": "deploy", "holder": "build1", "ttl": 10})
    acquire(http, {"name": "other", "holder": "build2", "ttl": 100})
    clock.advance(11)
    response = http.post(f"{API}/locks/recover", headers=OPERATOR)
    assert response.status_code == 200
    assert [(lock["name"], lock["holder"]) for lock in response.json()] == [("deploy", "build1")]
    [message] = operator.list_messages()
    assert message.sender == "system"
    assert "Released expired lock 'deploy' that was held by build1" in message.body


# --- refused requests -------------------------------------------------------------------------


def test_acquiring_a_held_lock_gets_409_naming_the_holder(
    http: TestClient, store_state: StoreState
) -> None:
    acquire(http, {"name": "deploy", "holder": "build1"})
    before = store_state()
    response = http.post(
        f"{API}/locks/acquire", json={"name": "deploy", "holder": "build2"}, headers=OPERATOR
    )
    assert "held by build1" in error_of(response, 409)
    assert store_state() == before


@pytest.mark.parametrize("action", ["release", "renew"])
def test_a_holder_mismatch_gets_409_and_changes_nothing(
    http: TestClient, store_state: StoreState, action: str
) -> None:
    acquire(http, {"name": "deploy", "holder": "build1"})
    before = store_state()
    response = http.post(
        f"{API}/locks/{action}", json={"name": "deploy", "holder": "build2"}, headers=OPERATOR
    )
    assert "held by build1, not build2" in error_of(response, 409)
    assert store_state() == before


@pytest.mark.parametrize("action", ["release", "renew"])
def test_a_stale_lock_token_gets_409_and_changes_nothing(
    http: TestClient, operator: Client, store_state: StoreState, action: str
) -> None:
    old = acquire(http, {"name": "deploy", "holder": "build1"})
    operator.release_lock("deploy", "build1")
    acquire(http, {"name": "deploy", "holder": "build1"})
    before = store_state()
    response = http.post(
        f"{API}/locks/{action}",
        json={"name": "deploy", "holder": "build1", "token": old["token"]},
        headers=OPERATOR,
    )
    assert "stale fencing token" in error_of(response, 409)
    assert store_state() == before


def test_releasing_an_unknown_lock_gets_404(http: TestClient, store_state: StoreState) -> None:
    before = store_state()
    response = http.post(
        f"{API}/locks/release", json={"name": "nope", "holder": "build1"}, headers=OPERATOR
    )
    assert "nope" in error_of(response, 404)
    assert store_state() == before


def test_releasing_without_a_holder_or_force_gets_422(
    http: TestClient, store_state: StoreState
) -> None:
    acquire(http, {"name": "deploy", "holder": "build1"})
    before = store_state()
    response = http.post(f"{API}/locks/release", json={"name": "deploy"}, headers=OPERATOR)
    error_of(response, 422)
    assert store_state() == before


def test_an_agent_cannot_force_a_release(
    http: TestClient, register_agent: RegisterAgent, store_state: StoreState
) -> None:
    agent = register_agent("build1")
    acquire(http, {"name": "deploy", "holder": "build2"})
    before = store_state()
    response = http.post(
        f"{API}/locks/release",
        json={"name": "deploy", "holder": "build2", "force": True},
        headers=bearer(agent.token),
    )
    error_of(response, 403)
    assert store_state() == before


def test_an_agent_cannot_take_a_lock_for_another_holder(
    http: TestClient, register_agent: RegisterAgent, store_state: StoreState
) -> None:
    agent = register_agent("build1")
    before = store_state()
    response = http.post(
        f"{API}/locks/acquire",
        json={"name": "deploy", "holder": "build2"},
        headers=bearer(agent.token),
    )
    assert "build1" in error_of(response, 403)
    assert store_state() == before


def test_a_read_token_cannot_take_a_lock(
    http: TestClient, operator: Client, store_state: StoreState
) -> None:
    secret = operator.create_token("dashboard", kind="read").secret
    before = store_state()
    response = http.post(
        f"{API}/locks/acquire", json={"name": "deploy", "holder": "build1"}, headers=bearer(secret)
    )
    error_of(response, 403)
    assert store_state() == before


@pytest.mark.parametrize(
    ("change", "mentions"),
    [
        pytest.param({"ttl": 0}, "ttl", id="ttl-zero"),
        pytest.param({"ttl": "60"}, "ttl", id="ttl-string"),
        pytest.param({"ttl": 8 * 24 * 3600}, "ttl", id="ttl-over-a-week"),
        pytest.param({"capacity": 0}, "capacity", id="capacity-zero"),
        pytest.param({"name": ""}, "lock name", id="name-empty"),
        pytest.param({"holder": "two words"}, "holder", id="holder-invalid"),
        pytest.param({"holder": "h\n"}, "holder", id="holder-trailing-newline"),
        pytest.param({"owner": "build1"}, "owner", id="unknown-field"),
    ],
)
def test_acquiring_with_bad_input_gets_422_and_changes_nothing(
    http: TestClient, store_state: StoreState, change: dict[str, Any], mentions: str
) -> None:
    before = store_state()
    body = {"name": "deploy", "holder": "build1", **change}
    response = http.post(f"{API}/locks/acquire", json=body, headers=OPERATOR)
    assert mentions in error_of(response, 422)
    assert store_state() == before
