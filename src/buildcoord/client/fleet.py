"""The client's call to /fleet: the fleet at a glance."""

from __future__ import annotations

from buildcoord.client.transport import Transport
from buildcoord.models import FleetHealth, FleetSample


class FleetEndpoints(Transport):
    """Fleet health."""

    def fleet_health(self) -> FleetHealth:
        """Servers, build outcomes, branches, queue depth and open alerts, now."""
        return self._parse(FleetHealth, self._call("GET", "/fleet"))

    def fleet_trends(self, window: str = "24h") -> list[FleetSample]:
        """The fleet's samples over 24 hours (a minute each) or 30 days (an hour each)."""
        data = self._call("GET", "/fleet/trends", params={"window": window})
        return self._parse(list[FleetSample], data)
