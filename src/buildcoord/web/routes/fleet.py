"""/api/v1/fleet: the fleet at a glance."""

from __future__ import annotations

from fastapi import APIRouter

from buildcoord.models import FleetHealth
from buildcoord.web.auth import Caller, Services

router = APIRouter(prefix="/fleet", tags=["fleet"])


@router.get("")
def fleet(services: Services, caller: Caller) -> FleetHealth:
    """Servers online and their figures, build success over 24 h and 7 days, each branch's
    recent durations, the queue's depth, open alerts."""
    return services.health.fleet(by=caller)
