"""Idle agents are told of work over their session instead of polling for it.

The agents here poll so rarely (once a minute) that only the push can explain a claim
within seconds; the safety poll is shown by losing the push on purpose.
"""

from __future__ import annotations

import time

import pytest

from buildcoord.agent import orders
from buildcoord.client import Client

from .conftest import Background, MakeAgent, SourceRepo, wait_for

pytestmark = pytest.mark.timeout(60)

RARELY = 60.0  # a poll interval no test waits for


def test_an_idle_agent_claims_a_queued_job_when_told_without_polling(
    operator: Client, make_agent: MakeAgent, source: SourceRepo
) -> None:
    operator.add_branch("main", repo=source.url, command="echo built")
    agent = make_agent(poll_interval=RARELY, safety_poll_interval=RARELY)
    running = Background(agent.run)
    wait_for(agent._session.connected.is_set, what="the session to open")
    time.sleep(0.3)  # the agent's claim at connect found nothing: it is idle now

    queued = time.monotonic()
    job = operator.submit_job("main")

    wait_for(lambda: operator.get_job(job.id).status == "succeeded", what="the build")
    assert time.monotonic() - queued < 5.0
    agent.request_stop()
    running.result(timeout=10)


def test_a_lost_push_is_covered_by_the_safety_poll(
    operator: Client, make_agent: MakeAgent, source: SourceRepo
) -> None:
    operator.add_branch("main", repo=source.url, command="echo built")
    agent = make_agent(poll_interval=RARELY, safety_poll_interval=1.0)
    running = Background(agent.run)
    wait_for(agent._session.connected.is_set, what="the session to open")
    agent._session.on_work = None  # every `work` message from now on is lost

    job = operator.submit_job("main")

    wait_for(
        lambda: operator.get_job(job.id).status == "succeeded",
        timeout=5.0,
        what="the safety poll to claim the job",
    )
    agent.request_stop()
    running.result(timeout=10)


def test_without_its_session_an_agent_polls_at_its_poll_interval(
    operator: Client, make_agent: MakeAgent, source: SourceRepo
) -> None:
    operator.add_branch("main", repo=source.url, command="echo built")
    agent = make_agent(poll_interval=0.05, safety_poll_interval=RARELY)
    agent._session.start = lambda: None  # type: ignore[method-assign]  # never connects

    running = Background(agent.run)
    job = operator.submit_job("main")

    wait_for(lambda: operator.get_job(job.id).status == "succeeded", what="the poll to claim")
    agent.request_stop()
    running.result(timeout=10)


def test_orders_are_polled_every_ten_minutes_with_a_session_and_every_half_minute_without(
    make_agent: MakeAgent,
) -> None:
    agent = make_agent()
    assert agent.orders.session_open is agent._session.connected

    agent._session.connected.clear()
    assert agent.orders.poll_seconds() == orders.POLL_SECONDS == 30.0
    agent._session.connected.set()
    assert agent.orders.poll_seconds() == orders.SESSION_POLL_SECONDS == 600.0


def test_an_agent_whose_session_opens_after_start_does_not_poll_orders_at_the_short_interval(
    make_agent: MakeAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(orders, "POLL_SECONDS", 1.0)  # without a session
    monkeypatch.setattr(orders, "WAIT_SLICE_SECONDS", 0.05)
    agent = make_agent()
    fetches: list[float] = []
    fetch = agent.client.pending_orders

    def counted(server: str) -> object:
        fetches.append(time.monotonic())
        return fetch(server)

    monkeypatch.setattr(agent.client, "pending_orders", counted)
    agent.orders.start()  # fetches once at start, then waits the short interval
    wait_for(lambda: fetches, what="the fetch at start")
    agent._session.connected.set()  # the session opens during that wait

    time.sleep(2.5)  # past the short interval: the wait now runs to the session's ten minutes
    agent.orders.stop()
    assert len(fetches) == 1
