"""/api/v1/agents/{server}: the agent's claim (with the build recipe) and its live session."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from buildcoord.models import Assignment
from buildcoord.web import responses
from buildcoord.web.auth import Caller, Services

router = APIRouter(prefix="/agents/{server}", tags=["agents"])

KEEPALIVE_SECONDS = 1.0


@router.post("/claim", response_model=Assignment, responses={204: {"description": "no work"}})
def claim(server: str, services: Services, caller: Caller) -> Response:
    """Lease the next job this agent can build; 204 when there is none."""
    return responses.record_or_no_content(services.agents.claim(server, by=caller))


@router.get("/session")
async def session(server: str, request: Request, services: Services, caller: Caller) -> Response:
    """An event stream the agent keeps open while it runs.

    It carries ``cancel`` events for the agent's cancelled jobs, ``orders`` while it has
    orders to carry out (cleanup, git tags) and a keepalive every second.
    When it drops (the agent died: its socket closed) and the agent does not reconnect
    within the grace, its leases end at once and its jobs go back to the queue.
    """
    session_id = await run_in_threadpool(services.agents.open_session, server, by=caller)
    shutting_down = request.app.state.shutting_down
    opened = services.clock.now().timestamp()

    async def stream() -> AsyncIterator[str]:
        told: set[int] = set()
        try:
            yield f"event: hello\ndata: {json.dumps({'session': session_id})}\n\n"
            while True:
                await asyncio.sleep(KEEPALIVE_SECONDS)
                cancelled = await run_in_threadpool(
                    services.agents.cancelled_jobs, server, since=opened
                )
                for job in cancelled:
                    if job.id not in told:
                        told.add(job.id)
                        payload = json.dumps({"job_id": job.id, "reason": job.reason})
                        yield f"event: cancel\ndata: {payload}\n\n"
                if await run_in_threadpool(services.orders.has_pending, server):
                    yield "event: orders\ndata: {}\n\n"
                yield ": keepalive\n\n"
        finally:
            # A coordinator going down is not an agent going away: record nothing then.
            if not shutting_down():
                services.agents.close_session(session_id)
                services.agents.schedule_lost_agent_check()

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
