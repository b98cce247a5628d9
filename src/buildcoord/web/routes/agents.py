"""/api/v1/agents/{server}: the agent's claim (with the build recipe) and its live session."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from buildcoord.models import Assignment
from buildcoord.web import responses
from buildcoord.web.auth import Caller, Services

router = APIRouter(prefix="/agents/{server}", tags=["agents"])

KEEPALIVE_SECONDS = 5.0
"""A comment line every 5 s: the agent's read timeout (15 s) tells it a coordinator is gone.
A dead agent is noticed without it: its socket closes and the stream ends at once."""

INBOX_LIMIT = 1000
"""The most events waiting for one session's stream; past it they are dropped (an agent that
reads nothing for that long is dead, and its safety poll catches up when it is not)."""


@router.post("/claim", response_model=Assignment, responses={204: {"description": "no work"}})
def claim(server: str, services: Services, caller: Caller) -> Response:
    """Lease the next job this agent can build; 204 when there is none."""
    return responses.record_or_no_content(services.agents.claim(server, by=caller))


@router.get("/session")
async def session(server: str, request: Request, services: Services, caller: Caller) -> Response:
    """An event stream the agent keeps open while it runs.

    It carries ``work`` when a job this agent could claim is queued (the agent claims),
    ``cancel`` for the agent's cancelled jobs, ``orders`` when it has orders to carry out
    (cleanup, git tags), and a keepalive comment every 5 s. Nothing here reads the database
    while the stream is open: the process's change feed tells it (services/agent_sessions.py).
    When it drops (the agent died: its socket closed) and the agent does not reconnect
    within the grace, its leases end at once and its jobs go back to the queue.
    """
    session_id = await run_in_threadpool(services.agents.open_session, server, by=caller)
    shutting_down = request.app.state.shutting_down
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(INBOX_LIMIT)

    def offer(item: tuple[str, dict[str, Any]]) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            inbox.put_nowait(item)

    def deliver(name: str, data: dict[str, Any]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server is stopping
            loop.call_soon_threadsafe(offer, (name, data))

    opened = services.clock.now().timestamp()
    try:
        live = await run_in_threadpool(services.sessions.join, server, deliver, now=opened)
    except BaseException:
        services.agents.close_session(session_id)
        raise

    async def stream() -> AsyncIterator[str]:
        try:
            yield f"event: hello\ndata: {json.dumps({'session': session_id})}\n\n"
            while True:
                try:
                    name, data = await asyncio.wait_for(inbox.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                yield f"event: {name}\ndata: {json.dumps(data)}\n\n"
        finally:
            services.sessions.leave(live)
            # A coordinator going down is not an agent going away: record nothing then.
            if not shutting_down():
                services.agents.close_session(session_id)
                services.agents.schedule_lost_agent_check()

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
