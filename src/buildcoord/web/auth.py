"""Bearer-token authentication as a FastAPI dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from buildcoord.models import Principal
from buildcoord.services.authority import refuse_build
from buildcoord.services.coordinator import Coordinator
from buildcoord.web.guard import request_principal

# Both dependencies are coroutines: FastAPI runs a plain function dependency in the thread
# pool, one hop per dependency per request. The token itself was checked by the request guard
# (web/guard.py) before the body was read.


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
    """Who sent the request as the request guard authenticated them, a build included."""
    return request_principal(request.scope.get("state", {}))


Services = Annotated[Coordinator, Depends(coordinator)]
Caller = Annotated[Principal, Depends(principal)]
# Only the route appending to a job's log takes this one: the services check the rest.
LogWriter = Annotated[Principal, Depends(build_or_principal)]
