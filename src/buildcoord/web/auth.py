"""Bearer-token authentication as a FastAPI dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from buildcoord.models import Principal
from buildcoord.services.authority import refuse_build
from buildcoord.services.coordinator import Coordinator

# Both dependencies are coroutines: FastAPI runs a plain function dependency in the thread
# pool, one hop per dependency per request. Only a token missing from the cache (see
# services/tokens.py) takes a hop, to read the database.


async def coordinator(request: Request) -> Coordinator:
    """The app's services."""
    found: Coordinator = request.app.state.coordinator
    return found


async def principal(request: Request) -> Principal:
    """Authenticate the request's bearer token; a build's token is refused here (403)."""
    found = await build_or_principal(request)
    refuse_build(found)
    return found


async def build_or_principal(request: Request) -> Principal:
    """Authenticate the request's bearer token, a build's included (for its job's log only)."""
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    services: Coordinator = request.app.state.coordinator
    token = secret.strip() if scheme.lower() == "bearer" else None
    known = services.tokens.cached(token)
    if known is not None:
        return known
    return await run_in_threadpool(services.tokens.authenticate, token)


Services = Annotated[Coordinator, Depends(coordinator)]
Caller = Annotated[Principal, Depends(principal)]
# Only the route appending to a job's log takes this one: the services check the rest.
LogWriter = Annotated[Principal, Depends(build_or_principal)]
