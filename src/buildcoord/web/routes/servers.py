"""/api/v1/servers: registration, heartbeats and quarantine."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from buildcoord.models import Metrics, RotatedToken, Server
from buildcoord.web.auth import Caller, Services
from buildcoord.web.schemas import (
    HeartbeatIn,
    QuarantineIn,
    RegisteredServer,
    RotateTokenIn,
    ServerIn,
)

router = APIRouter(prefix="/servers", tags=["servers"])


@router.post("", status_code=status.HTTP_201_CREATED)
def register(body: ServerIn, services: Services, caller: Caller) -> RegisteredServer:
    """Register a server; the response holds its agent token, shown only once."""
    server, token = services.servers.register(body.name, body.labels, by=caller)
    return RegisteredServer(server=server, token=token)


@router.get("")
def list_servers(services: Services, caller: Caller) -> list[Server]:
    """List servers with their live status."""
    return services.servers.list_servers(by=caller)


@router.get("/{name}")
def get(name: str, services: Services, caller: Caller) -> Server:
    """Show one server."""
    return services.servers.get(name, by=caller)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def remove(name: str, services: Services, caller: Caller) -> Response:
    """Forget a server and revoke its agent token."""
    services.servers.remove(name, by=caller)
    return Response(status_code=204)


@router.post("/{name}/quarantine")
def quarantine(name: str, body: QuarantineIn, services: Services, caller: Caller) -> Server:
    """Stop giving a server new work (operators); its running jobs go on."""
    return services.servers.quarantine(name, body.reason, by=caller)


@router.post("/{name}/rotate-token")
def rotate_token(
    name: str, body: RotateTokenIn, services: Services, caller: Caller
) -> RotatedToken:
    """A new agent token for the server (shown once); the old one is valid for the grace."""
    return services.servers.rotate_token(name, grace_seconds=body.grace_seconds, by=caller)


@router.post("/{name}/resume")
def resume(name: str, services: Services, caller: Caller) -> Server:
    """Give a quarantined server work again (operators)."""
    return services.servers.resume(name, by=caller)


@router.post("/{name}/heartbeat")
def heartbeat(name: str, body: HeartbeatIn, services: Services, caller: Caller) -> Server:
    """Record a heartbeat with system metrics."""
    figures = body.metrics.model_dump()
    return services.servers.heartbeat(
        name,
        metrics=Metrics(**figures),
        agent_version=body.agent_version,
        labels=body.labels,
        by=caller,
    )
