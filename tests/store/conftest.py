"""Fixtures for store tests: a migrated store per backend, a fake clock, an operator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from buildcoord.clock import FakeClock
from buildcoord.models import Principal
from buildcoord.store import Store


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
def operator() -> Principal:
    """An operator, allowed to administer everything."""
    return Principal("operator", "admin")
