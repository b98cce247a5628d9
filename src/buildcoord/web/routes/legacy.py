"""/api/v1/legacy: move a seed installation in (import) and keep its readers fed (export)."""

from __future__ import annotations

from fastapi import APIRouter

from buildcoord.models import LegacyImport, LegacyRecord
from buildcoord.web.auth import Caller, Services
from buildcoord.web.schemas import LegacyExport, LegacyImportIn

router = APIRouter(prefix="/legacy", tags=["legacy"])


@router.post("/import")
def import_(body: LegacyImportIn, services: Services, caller: Caller) -> LegacyImport:
    """Import a seed checkout's files in one transaction (dry_run: roll it back, report)."""
    return services.legacy.import_files(body.files, dry_run=body.dry_run, by=caller)


@router.get("/export")
def export(services: Services, caller: Caller) -> LegacyExport:
    """The state now, as the seed's files."""
    return LegacyExport(files=services.legacy.export(by=caller))


@router.get("/records/{kind}/{key}")
def record(kind: str, key: str, services: Services, caller: Caller) -> LegacyRecord:
    """An imported entry's record, by its seed id or the id it has here."""
    return services.legacy.record(kind, key, by=caller)
