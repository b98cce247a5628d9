"""POST /api/v1/maintenance/step: one pass of lease expiry, lock recovery and server status."""

from __future__ import annotations

from starlette.testclient import TestClient

from buildcoord.client import Client
from buildcoord.clock import FakeClock
from buildcoord.models import Metrics
from inprocess import ADMIN_TOKEN, API, RegisterAgent, bearer, error_of
from store_rows import StoreState

OPERATOR = bearer(ADMIN_TOKEN)


def test_a_step_requeues_expired_job_leases(
    http: TestClient, operator: Client, register_agent: RegisterAgent, clock: FakeClock
) -> None:
    agent = register_agent("build1")
    job = operator.submit_job("main", "abc1234")
    agent.client.claim_job("build1")
    clock.advance(31)
    response = http.post(f"{API}/maintenance/step", headers=OPERATOR)
    assert response.status_code == 200
    assert response.json()["requeued_or_failed_jobs"] == [job.id]
    requeued = operator.get_job(job.id)
    assert (requeued.status, requeued.attempt, requeued.server) == ("queued", 2, None)


def test_a_step_releases_expired_locks(
    http: TestClient, operator: Client, clock: FakeClock
) -> None:
    operator.acquire_lock("deploy", "build1", ttl=60)
    operator.acquire_lock("cache", "build2", ttl=600)
    clock.advance(61)
    response = http.post(f"{API}/maintenance/step", headers=OPERATOR)
    assert response.json()["released_locks"] == ["deploy (build1)"]
    holders = {lock.name: [held.holder for held in lock.holders] for lock in operator.list_locks()}
    assert holders == {"cache": ["build2"], "deploy": []}
    assert [message.sender for message in operator.list_messages()] == ["system"]


def test_a_step_leaves_live_leases_alone(
    http: TestClient,
    operator: Client,
    register_agent: RegisterAgent,
    clock: FakeClock,
    store_state: StoreState,
) -> None:
    agent = register_agent("build1")
    operator.submit_job("main", "abc1234")
    agent.client.claim_job("build1")
    operator.acquire_lock("deploy", "build1", ttl=60)
    clock.advance(29)
    before = store_state()
    report = http.post(f"{API}/maintenance/step", headers=OPERATOR).json()
    assert report["requeued_or_failed_jobs"] == []
    assert report["released_locks"] == []
    after = store_state()
    for table in ("jobs", "locks", "lock_holders", "messages"):
        assert after[table] == before[table], table
    # The only event is the operator's request itself (the audit trail's record of it).
    added = [row for row in after["events"] if row not in before["events"]]
    assert [(row[2], row[3]) for row in added] == [
        ("operator:admin (BUILDCOORD_ADMIN_TOKEN)", "maintenance.step")
    ]


def test_a_step_archives_old_read_messages(
    http: TestClient, operator: Client, clock: FakeClock
) -> None:
    message = operator.send_message(
        sender="build1", recipient="build2", type="info", subject="old news", body=""
    )
    operator.mark_message_read(message.id)
    clock.advance(31 * 86400)
    report = http.post(f"{API}/maintenance/step", headers=OPERATOR).json()
    assert report["archived_messages"] == 1
    assert operator.list_messages() == []
    assert [found.id for found in operator.list_messages(archived="yes")] == [message.id]


def test_a_step_records_servers_going_stale(
    http: TestClient, operator: Client, register_agent: RegisterAgent, clock: FakeClock
) -> None:
    agent = register_agent("build1")
    agent.client.heartbeat("build1", Metrics(cpu_percent=10.0))
    clock.advance(16)
    report = http.post(f"{API}/maintenance/step", headers=OPERATOR).json()
    assert report["server_changes"] == [["build1", "online", "stale"]]
    kinds = [event.kind for event in operator.list_events(subject="server:build1")]
    assert kinds[-1] == "server.stale"


def test_an_agent_cannot_run_a_step(
    http: TestClient, register_agent: RegisterAgent, store_state: StoreState
) -> None:
    agent = register_agent("build1")
    before = store_state()
    error_of(http.post(f"{API}/maintenance/step", headers=bearer(agent.token)), 403)
    assert store_state() == before
