"""Every read command takes --json and prints JSON a script can parse."""

from __future__ import annotations

import pytest

from buildcoord.client import Client
from buildcoord.clock import FakeClock
from inprocess import RunCli


@pytest.fixture
def populated(operator: Client, clock: FakeClock) -> None:
    """One of everything: a server, two jobs, a lock, a message."""
    operator.register_server("build1", ["mvn"])
    operator.submit_job("main", "abc1234")
    operator.submit_job("main", "abc1235")
    operator.acquire_lock("deploy", "build1", ttl=10)
    operator.send_message(
        sender="build1", recipient="all", type="info", subject="hello", body="world"
    )
    clock.advance(11)


@pytest.mark.usefixtures("populated")
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(["servers", "list"], list, id="servers-list"),
        pytest.param(["servers", "show", "build1"], dict, id="servers-show"),
        pytest.param(["queue", "list"], list, id="queue-list"),
        pytest.param(["queue", "list", "queued"], list, id="queue-list-status"),
        pytest.param(["queue", "show", "1"], dict, id="queue-show"),
        pytest.param(["queue", "next", "--server", "build1"], dict, id="queue-next"),
        pytest.param(["lock", "list"], list, id="lock-list"),
        pytest.param(["lock", "recover"], list, id="lock-recover"),
        pytest.param(["msg", "list"], list, id="msg-list"),
        pytest.param(["msg", "list", "--to", "build1", "--unread"], list, id="msg-list-unread"),
        pytest.param(["msg", "show", "1"], dict, id="msg-show"),
        pytest.param(["msg", "stats"], dict, id="msg-stats"),
        pytest.param(["token", "list"], list, id="token-list"),
    ],
)
def test_a_read_command_prints_valid_json(run_cli: RunCli, args: list[str], expected: type) -> None:
    data = run_cli(*args, "--json").json()
    assert isinstance(data, expected)
    assert data


def test_queue_list_json_carries_the_job_fields(run_cli: RunCli, operator: Client) -> None:
    job = operator.submit_job("main", "abc1234", priority=3)
    [found] = run_cli("queue", "list", "--json").json()
    assert (found["id"], found["branch"], found["priority"]) == (job.id, "main", 3)
    assert found["created_at"] == "2026-01-01T00:00:00Z"
