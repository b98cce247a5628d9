"""Entry point for ``python -m buildcoord``."""

from __future__ import annotations

from buildcoord.cli import main

if __name__ == "__main__":
    main()
