"""Fixtures for the dashboard's in-process tests: the real app (tests/inprocess.py)."""

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
