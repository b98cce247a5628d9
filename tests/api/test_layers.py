"""The web layer reaches the store only through the services' methods.

import-linter forbids ``buildcoord.web`` importing ``buildcoord.store``; this test closes the
other door: no attribute named ``store`` (or ``_store``, ``engine``) is read anywhere in
web/, so a route cannot walk from the Coordinator or a service to the store.
"""

from __future__ import annotations

import ast
from pathlib import Path

import buildcoord.web

WEB = Path(buildcoord.web.__file__).parent
STORE_DOORS = {"store", "_store", "engine"}


def store_reaches(source: str) -> list[str]:
    """Each ``.store``-like attribute read in source, as ``line: expression``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in STORE_DOORS:
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_web_module_reaches_the_store_through_an_attribute() -> None:
    reaches = {
        str(path.relative_to(WEB)): store_reaches(path.read_text())
        for path in sorted(WEB.rglob("*.py"))
    }
    assert {path: found for path, found in reaches.items() if found} == {}
    assert "routes/system.py" in reaches  # the walk did read the routes


def test_the_check_sees_a_route_reaching_the_store() -> None:
    route = "def events(services):\n    return services.store.events.list_events()\n"
    assert store_reaches(route) == ["2: services.store"]
    assert store_reaches("services.queue._store.jobs") != []
