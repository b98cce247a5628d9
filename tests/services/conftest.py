"""Fixtures for service tests: a real store per backend, a fake clock, principals."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from sqlalchemy import select

from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.models import Principal
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store
from buildcoord.store.engine import read_transaction
from buildcoord.store.schema import metadata

RegisterServer = Callable[..., Principal]
StoreState = Callable[[], dict[str, list[tuple[Any, ...]]]]


@pytest.fixture
def clock() -> FakeClock:
    """A clock that only moves when a test advances it."""
    return FakeClock()


@pytest.fixture
def store(migrated_db_url: str) -> Iterator[Store]:
    """A migrated store on an empty database of each backend."""
    opened = Store.open(migrated_db_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def settings() -> Settings:
    """The default settings."""
    return Settings()


@pytest.fixture
def coordinator(store: Store, settings: Settings, clock: FakeClock) -> Coordinator:
    """Every service over the test's store, settings and clock."""
    return Coordinator(store, settings, clock)


@pytest.fixture
def operator() -> Principal:
    """An operator, allowed to administer everything."""
    return Principal("operator", "admin")


@pytest.fixture
def reader() -> Principal:
    """A read-only dashboard principal."""
    return Principal("read", "dashboard")


@pytest.fixture
def register_server(coordinator: Coordinator, operator: Principal) -> RegisterServer:
    """Register a server (with optional labels) and return its agent principal."""

    def register(name: str = "build1", labels: Sequence[str] = ()) -> Principal:
        coordinator.servers.register(name, labels, by=operator)
        return Principal("agent", f"agent {name}", server=name)

    return register


@pytest.fixture
def store_state(store: Store) -> StoreState:
    """Return a function that reads every row of every table, to prove nothing changed."""

    def read_all() -> dict[str, list[tuple[Any, ...]]]:
        state: dict[str, list[tuple[Any, ...]]] = {}
        with read_transaction(store.engine) as conn:
            for table in metadata.sorted_tables:
                order = list(table.primary_key.columns) or list(table.columns)
                rows = conn.execute(select(table).order_by(*order)).all()
                state[table.name] = [tuple(row) for row in rows]
        return state

    return read_all


@pytest.fixture
def build1(register_server: RegisterServer) -> Principal:
    """The agent of a registered server build1, without labels."""
    return register_server("build1")


@pytest.fixture
def build2(register_server: RegisterServer) -> Principal:
    """The agent of a second registered server build2, without labels."""
    return register_server("build2")
