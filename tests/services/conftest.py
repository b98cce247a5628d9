"""Fixtures for service tests: default settings, every service over the store, principals.

The store, its state, the clock and the operator come from tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.models import Principal
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store

RegisterServer = Callable[..., Principal]


@pytest.fixture
def settings() -> Settings:
    """The default settings."""
    return Settings()


@pytest.fixture
def coordinator(store: Store, settings: Settings, clock: FakeClock) -> Coordinator:
    """Every service over the test's store, settings and clock."""
    return Coordinator(store, settings, clock)


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
def build1(register_server: RegisterServer) -> Principal:
    """The agent of a registered server build1, without labels."""
    return register_server("build1")


@pytest.fixture
def build2(register_server: RegisterServer) -> Principal:
    """The agent of a second registered server build2, without labels."""
    return register_server("build2")
