"""A coordinator that goes away (a restart) loses nothing: the agent waits it out."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from buildcoord.agent.agent import Agent
from buildcoord.agent.options import AgentOptions
from buildcoord.agent.session import SessionKeeper
from buildcoord.client import Client
from inprocess import BASE_URL, RegisterAgent, TestClient

from .conftest import Background, SourceRepo, output_of, wait_for, wait_for_output

pytestmark = pytest.mark.timeout(60)


class Switch(httpx.BaseTransport):
    """A transport that fails every request like a stopped coordinator while ``down``."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.down = False
        self.refused = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            self.refused += 1
            raise httpx.ConnectError("connection refused", request=request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def switched(app: FastAPI, register_agent: RegisterAgent) -> Iterator[tuple[Client, Switch]]:
    """build1's client, whose coordinator the test can take down and bring back."""
    registered = register_agent("build1")
    with TestClient(app, base_url=BASE_URL) as http:
        switch = Switch(http._transport)
        http._transport = switch
        yield Client(BASE_URL, registered.token, http=http), switch


def test_a_build_goes_on_while_the_coordinator_is_down_and_its_report_lands_after(
    operator: Client, switched: tuple[Client, Switch], source: SourceRepo, tmp_path: Path
) -> None:
    client, switch = switched
    go = tmp_path / "go"
    command = f"echo started; while [ ! -e {go} ]; do sleep 0.02; done; echo finished"
    operator.add_branch("main", repo=source.url, command=command)
    job = operator.submit_job("main")
    agent = Agent(client, AgentOptions(name="build1", workdir=tmp_path / "build1"))
    running = Background(agent.step)
    wait_for_output(operator, job.id, "started")

    switch.down = True
    go.touch()
    wait_for(lambda: switch.refused >= 2, what="the agent to retry")
    time.sleep(0.3)
    assert operator.get_job(job.id).status == "running"
    switch.down = False

    assert running.result(timeout=10) is True
    assert operator.get_job(job.id).status == "succeeded"
    assert output_of(operator, job.id) == ["started", "finished"]


def test_the_session_opens_as_soon_as_the_coordinator_is_reachable(
    switched: tuple[Client, Switch],
) -> None:
    client, switch = switched
    switch.down = True
    session = SessionKeeper(client, "build1", lambda _job, _reason: None)
    session.start()
    try:
        wait_for(lambda: switch.refused >= 2, what="reconnection attempts")
        assert not session.connected.is_set()

        switch.down = False

        assert session.connected.wait(2.0)
    finally:
        session.stop()
