"""All services over one store and clock: what the web app and maintenance loop hold."""

from __future__ import annotations

from buildcoord.clock import Clock, SystemClock
from buildcoord.config import Settings
from buildcoord.services.agent_sessions import AgentSessions
from buildcoord.services.agents import AgentService
from buildcoord.services.alerts import AlertService
from buildcoord.services.artifacts import ArtifactService
from buildcoord.services.branch_watch import BranchWatch
from buildcoord.services.branches import BranchService
from buildcoord.services.comparisons import ComparisonService
from buildcoord.services.feed import ChangeFeed
from buildcoord.services.health import HealthService
from buildcoord.services.legacy import LegacyService
from buildcoord.services.locks import LockService
from buildcoord.services.logs import LogService
from buildcoord.services.messages import MessageService
from buildcoord.services.monitor import Monitor
from buildcoord.services.notifications import NotificationService
from buildcoord.services.orders import OrderService
from buildcoord.services.outcomes import BuildOutcomes
from buildcoord.services.prediction import PredictionService
from buildcoord.services.queue import QueueService
from buildcoord.services.rollback import RollbackService
from buildcoord.services.servers import ServerService
from buildcoord.services.system import SystemService
from buildcoord.services.tokens import TokenService
from buildcoord.services.trends import TrendService
from buildcoord.store import Store


class Coordinator:
    """The services of one coordinator process, wired together here and nowhere else."""

    def __init__(self, store: Store, settings: Settings, clock: Clock | None = None) -> None:
        self.store = store  # for maintenance and tests; the web layer never reaches it
        self.settings = settings
        self.clock = clock = clock or SystemClock()
        self.locks = LockService(store, clock, settings)
        self.messages = MessageService(store, clock, settings)
        self.servers = ServerService(store, clock, settings)
        # One reader of the event log per process; live sessions hear from it, and the
        # token cache trusts its entries longer while it follows.
        self.feed = ChangeFeed(store, clock)
        self.tokens = TokenService(store, clock, feed=self.feed)
        self.logs = LogService(store, clock)
        self.orders = OrderService(store, clock)
        self.artifacts = ArtifactService(store, clock, settings, self.orders)
        self.rollback = RollbackService(store, clock, self.orders)
        self.comparisons = ComparisonService(store, clock)
        self.system = SystemService(store, clock)
        self.prediction = PredictionService(store, clock, settings, self.servers)
        outcomes = BuildOutcomes(store, self.artifacts, self.rollback, self.comparisons)
        # Every job's transition goes through the queue; after each terminal one, these run.
        self.queue = QueueService(
            store,
            clock,
            settings,
            finished=(outcomes.job_finished, self.prediction.job_finished),
        )
        self.agents = AgentService(store, clock, settings, self.queue)
        self.sessions = AgentSessions(store, clock, self.feed)
        self.branches = BranchService(store, clock, self.queue)
        self.branch_watch = BranchWatch(store, clock, settings, self.queue, self.messages)
        self.alerts = AlertService(store, clock)
        self.notifications = NotificationService(store, clock, settings)
        self.health = HealthService(store, clock, self.servers)
        self.legacy = LegacyService(
            store, clock, settings, self.queue, self.prediction, self.health
        )
        self.trends = TrendService(store, clock, self.servers)
        self.monitor = Monitor(store, clock, settings, self.notifications, self.prediction)

    def start(self) -> None:
        """Prepare a freshly opened store: admin token, aging policy, running leases."""
        if self.settings.admin_token:
            self.tokens.install_admin_token(self.settings.admin_token)
        self.queue.apply_aging_policy()
        self.queue.extend_leases_at_start()
