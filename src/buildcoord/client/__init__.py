"""The typed HTTP client shared by the CLI and the agent.

``Client`` is one class to its callers; its methods live by domain, one module per group of
endpoints (the same groups as ``web/routes/``), each a class over ``transport.Transport``.
"""

from __future__ import annotations

from buildcoord.client.agents import AgentEndpoints
from buildcoord.client.alerts import AlertEndpoints
from buildcoord.client.artifacts import ArtifactEndpoints
from buildcoord.client.branches import BranchEndpoints
from buildcoord.client.fleet import FleetEndpoints
from buildcoord.client.legacy import LegacyEndpoints
from buildcoord.client.locks import LockEndpoints
from buildcoord.client.logs import LogEndpoints
from buildcoord.client.messages import MessageEndpoints
from buildcoord.client.orders import OrderEndpoints
from buildcoord.client.prediction import PredictionEndpoints
from buildcoord.client.queue import QueueEndpoints
from buildcoord.client.rollback import RollbackEndpoints
from buildcoord.client.servers import ServerEndpoints
from buildcoord.client.system import SystemEndpoints
from buildcoord.client.tokens import TokenEndpoints


class Client(
    ServerEndpoints,
    QueueEndpoints,
    PredictionEndpoints,
    LockEndpoints,
    MessageEndpoints,
    TokenEndpoints,
    SystemEndpoints,
    BranchEndpoints,
    AgentEndpoints,
    LogEndpoints,
    OrderEndpoints,
    ArtifactEndpoints,
    RollbackEndpoints,
    AlertEndpoints,
    FleetEndpoints,
    LegacyEndpoints,
):
    """Talks to one coordinator's /api/v1 with one bearer token."""


__all__ = ["Client"]
