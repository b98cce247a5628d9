"""``buildcoord up``: a coordinator on embedded SQLite plus N local agents, with a live status.

``run`` starts and stops the fleet, ``fleet`` supervises its child processes, ``status``
shows it, and ``demo`` with ``demo_builds`` is the sample project of ``up --demo``. The
command itself (its options) is ``buildcoord.cli.up``.
"""
