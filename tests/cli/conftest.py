"""Fixtures for CLI tests: the real CLI over the real app in process (see tests/inprocess.py)."""

from __future__ import annotations

from inprocess import (  # noqa: F401 - fixtures are found by name
    app,
    connect,
    coordinator,
    http,
    operator,
    register_agent,
    run_cli,
    settings,
)
