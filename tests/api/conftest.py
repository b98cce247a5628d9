"""Fixtures for HTTP API tests: the real app in process (defined in tests/inprocess.py)."""

from __future__ import annotations

from inprocess import (  # noqa: F401 - fixtures are found by name
    app,
    connect,
    coordinator,
    http,
    operator,
    register_agent,
    settings,
)
from seeded import reseed, world  # noqa: F401 - fixtures are found by name
