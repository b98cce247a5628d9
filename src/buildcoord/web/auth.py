"""Bearer-token authentication as a FastAPI dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from buildcoord.models import Principal
from buildcoord.services.coordinator import Coordinator


def coordinator(request: Request) -> Coordinator:
    """The app's services."""
    found: Coordinator = request.app.state.coordinator
    return found


def principal(request: Request) -> Principal:
    """Authenticate the request's bearer token."""
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    services: Coordinator = request.app.state.coordinator
    return services.tokens.authenticate(secret.strip() if scheme.lower() == "bearer" else None)


Services = Annotated[Coordinator, Depends(coordinator)]
Caller = Annotated[Principal, Depends(principal)]
