"""All services over one store and clock: what the web app and maintenance loop hold."""

from __future__ import annotations

from buildcoord.clock import Clock, SystemClock
from buildcoord.config import Settings
from buildcoord.services.agents import AgentService
from buildcoord.services.artifacts import ArtifactService
from buildcoord.services.branch_watch import BranchWatch
from buildcoord.services.branches import BranchService
from buildcoord.services.comparisons import ComparisonService
from buildcoord.services.locks import LockService
from buildcoord.services.logs import LogService
from buildcoord.services.messages import MessageService
from buildcoord.services.orders import OrderService
from buildcoord.services.outcomes import BuildOutcomes
from buildcoord.services.prediction import PredictionService
from buildcoord.services.queue import QueueService
from buildcoord.services.rollback import RollbackService
from buildcoord.services.servers import ServerService
from buildcoord.services.system import SystemService
from buildcoord.services.tokens import TokenService
from buildcoord.store import Store


class Coordinator:
    """The services of one coordinator process."""

    def __init__(self, store: Store, settings: Settings, clock: Clock | None = None) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock or SystemClock()
        self.queue = QueueService(store, self.clock, settings)
        self.locks = LockService(store, self.clock, settings)
        self.messages = MessageService(store, self.clock, settings)
        self.servers = ServerService(store, self.clock, settings)
        self.tokens = TokenService(store, self.clock)
        self.branches = BranchService(store, self.clock, self.queue)
        self.logs = LogService(store, self.clock)
        self.agents = AgentService(store, self.clock, settings, self.queue.finished)
        self.orders = OrderService(store, self.clock)
        self.artifacts = ArtifactService(store, self.clock, settings, self.orders)
        self.rollback = RollbackService(store, self.clock, self.orders)
        self.comparisons = ComparisonService(store, self.clock)
        self.system = SystemService(store, self.clock)
        self.branch_watch = BranchWatch(store, self.clock, settings, self.queue, self.messages)
        outcomes = BuildOutcomes(store, self.artifacts, self.rollback, self.comparisons)
        self.queue.finished.append(outcomes.job_finished)
        self.prediction = PredictionService(store, self.clock, settings, self.servers)
        self.queue.finished.append(self.prediction.job_finished)

    def start(self) -> None:
        """Prepare a freshly opened store: admin token, aging policy."""
        if self.settings.admin_token:
            self.tokens.install_admin_token(self.settings.admin_token)
        self.queue.apply_aging_policy()
        now = self.clock.now().timestamp()
        self.store.extend_job_leases(
            until=now + self.settings.job_lease_seconds, now=now, actor="system:startup"
        )
