"""buildcoord: coordinate builds across a fleet of build servers."""

from __future__ import annotations

__version__ = "0.1.0"
