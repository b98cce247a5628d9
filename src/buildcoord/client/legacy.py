"""The client's calls to /legacy: a seed installation's files in, the seed's files out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from buildcoord.client.transport import Transport
from buildcoord.models import LegacyImport, LegacyRecord

IMPORT_TIMEOUT = 600.0
"""An import is one transaction over every file: it may take minutes, not seconds."""


class LegacyEndpoints(Transport):
    """Legacy: import a seed checkout, export the state as one, find an imported entry."""

    def import_legacy(self, files: Mapping[str, str], *, dry_run: bool = False) -> LegacyImport:
        """Import the files (relative path -> text) of a seed checkout."""
        body = {"files": dict(files), "dry_run": dry_run}
        found = self._call("POST", "/legacy/import", json=body, timeout=IMPORT_TIMEOUT)
        return self._parse(LegacyImport, found)

    def export_legacy(self) -> dict[str, Any]:
        """The seed's files (relative path -> JSON document) from the state now."""
        return dict(self._call("GET", "/legacy/export", timeout=IMPORT_TIMEOUT)["files"])

    def legacy_record(self, kind: str, key: str) -> LegacyRecord:
        """An imported entry's record, by its seed id or the id it has here."""
        return self._parse(LegacyRecord, self._call("GET", f"/legacy/records/{kind}/{key}"))
