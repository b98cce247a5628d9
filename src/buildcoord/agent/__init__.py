"""The agent that runs on every build server: claims jobs, builds them, reports.

This package's ``__init__`` imports nothing: ``python -m buildcoord.agent.supervisor`` runs
once per build and must start fast.
"""
