"""The client's call to /fleet: the fleet at a glance."""

from __future__ import annotations

from buildcoord.client.transport import Transport
from buildcoord.models import FleetHealth


class FleetEndpoints(Transport):
    """Fleet health."""

    def fleet_health(self) -> FleetHealth:
        """Servers, build outcomes, branches, queue depth and open alerts, now."""
        return self._parse(FleetHealth, self._call("GET", "/fleet"))
