"""The store: the only package that speaks SQL. One class per noun, composed into ``Store``."""

from __future__ import annotations

from sqlalchemy import Engine

from buildcoord.store.artifacts import ArtifactSetStore, ArtifactStore
from buildcoord.store.branches import BranchStore
from buildcoord.store.comparisons import ComparisonStore
from buildcoord.store.engine import checkpoint_wal, make_engine
from buildcoord.store.events import EventStore
from buildcoord.store.history import HistoryStore
from buildcoord.store.jobs import JobStore
from buildcoord.store.locks import LockStore
from buildcoord.store.logs import LogStore
from buildcoord.store.messages import MessageStore
from buildcoord.store.migrate import upgrade
from buildcoord.store.orders import OrderStore
from buildcoord.store.rollback import RollbackStore
from buildcoord.store.servers import ServerStore
from buildcoord.store.sessions import SessionStore
from buildcoord.store.settings import SettingStore
from buildcoord.store.tokens import TokenStore
from buildcoord.store.webhook_deliveries import WebhookDeliveryStore


class Store:
    """Every table's SQL, sharing one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.jobs = JobStore(engine)
        self.locks = LockStore(engine)
        self.messages = MessageStore(engine)
        self.servers = ServerStore(engine)
        self.tokens = TokenStore(engine)
        self.events = EventStore(engine)
        self.settings = SettingStore(engine)
        self.branches = BranchStore(engine)
        self.logs = LogStore(engine)
        self.artifacts = ArtifactStore(engine)
        self.sessions = SessionStore(engine)
        self.artifact_sets = ArtifactSetStore(engine)
        self.rollback = RollbackStore(engine)
        self.comparisons = ComparisonStore(engine)
        self.orders = OrderStore(engine)
        self.history = HistoryStore(engine)
        self.webhook_deliveries = WebhookDeliveryStore(engine)

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Open the database at url, bringing its schema up to date first unless told not to."""
        engine = make_engine(url)
        if migrate:
            upgrade(engine)
        return cls(engine)

    def checkpoint(self) -> tuple[int, int] | None:
        """Checkpoint an SQLite WAL without waiting (see engine.checkpoint_wal); else None."""
        return checkpoint_wal(self.engine)

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()


__all__ = ["Store", "upgrade"]
