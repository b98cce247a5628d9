"""/api/v1/fleet: the fleet at a glance."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from buildcoord.models import FleetHealth, FleetSample
from buildcoord.web.auth import Caller, Services

router = APIRouter(prefix="/fleet", tags=["fleet"])


@router.get("")
def fleet(services: Services, caller: Caller) -> FleetHealth:
    """Servers online and their figures, build success over 24 h and 7 days, each branch's
    recent durations, the queue's depth, open alerts."""
    return services.health.fleet(by=caller)


@router.get("/trends")
def trends(
    services: Services, caller: Caller, window: Literal["24h", "30d"] = "24h"
) -> list[FleetSample]:
    """The fleet's samples: one a minute over 24 hours, or one an hour over 30 days."""
    return services.trends.samples(window, by=caller)
