"""Moving a seed installation in (import) and keeping its readers fed (export)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from buildcoord.clock import Clock
from buildcoord.config import Settings
from buildcoord.errors import InvalidInput, NotFound
from buildcoord.legacy import layout, writer
from buildcoord.legacy.reader import read_state
from buildcoord.models import LegacyImport, LegacyRecord, Principal
from buildcoord.services.authority import require_operator, require_viewer
from buildcoord.services.health import HealthService
from buildcoord.services.prediction import PredictionService
from buildcoord.services.queue import QueueService
from buildcoord.services.tokens import hash_secret, new_secret
from buildcoord.services.trends import KEEP_HOURS_SECONDS, KEEP_MINUTES_SECONDS
from buildcoord.store import Store

RECORD_KINDS = ("server", "job", "lock", "message", "log", "manifest")
EXPORTED_FINISHED = 1_000
"""Finished jobs export writes (the newest): the seed's page counts them, it lists none."""
EXPORTED_MESSAGES = 10_000
"""Messages export writes at most (the newest not archived)."""
HISTORY_STEP_SECONDS = 600.0
"""The seed's health history had an entry every 10 minutes."""


class LegacyService:
    """Import a seed checkout's files; render the coordinator's state as the seed's files."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: Settings,
        queue: QueueService,
        prediction: PredictionService,
        health: HealthService,
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.queue = queue
        self.prediction = prediction
        self.health = health

    def import_files(
        self, files: Mapping[str, str], *, dry_run: bool, by: Principal
    ) -> LegacyImport:
        """Bring in what the files (relative path -> text) hold that is not here yet, in one
        transaction; new servers get agent tokens (in the answer, shown once)."""
        require_operator(by, "importing a seed installation")
        try:
            state = read_state(files)
        except layout.NotASeedLayout as error:
            raise InvalidInput(f"{error}; nothing imported") from None
        secrets = {server.name: new_secret() for server in state.servers}
        now = self.clock.now().timestamp()
        outcome, added = self.store.import_legacy_state(
            state,
            token_hashes={name: hash_secret(secret) for name, secret in secrets.items()},
            rank_of=self.queue.rank_of,
            max_attempts=self.settings.max_attempts,
            sample_horizons=(now - KEEP_MINUTES_SECONDS, now - KEEP_HOURS_SECONDS),
            dry_run=dry_run,
            now=now,
            actor=by.actor,
        )
        if not dry_run and outcome.added["job"]:
            self.prediction.relearn()
        tokens = {} if dry_run else {name: secrets[name] for name in added}
        return LegacyImport(
            dry_run=outcome.dry_run,
            files=outcome.files,
            added=outcome.added,
            updated=outcome.updated,
            unchanged=outcome.unchanged,
            notes=outcome.notes,
            tokens=tokens,
        )

    def record(self, kind: str, key: str, *, by: Principal) -> LegacyRecord:
        """The record of an imported entry, by its seed id or by the id it has here."""
        require_viewer(by, "reading imported records")
        if kind not in RECORD_KINDS:
            raise InvalidInput(f"unknown kind {kind!r}: expected one of {', '.join(RECORD_KINDS)}")
        found = self.store.find_legacy_record(kind, key) or self.store.legacy_record_of(kind, key)
        if found is None:
            raise NotFound(f"no {kind} was imported as {key!r}")
        return found

    def export(self, *, by: Principal) -> dict[str, Any]:
        """The seed's files (relative path -> JSON document) from the state now."""
        require_viewer(by, "exporting the state as the seed's files")
        now = self.clock.now().timestamp()
        job_records = self.store.legacy_records_of("job")
        seed_ids = {local: record.legacy_id for local, record in job_records.items()}
        job_attributes = {local: record.attributes for local, record in job_records.items()}
        open_jobs = self.store.list_jobs(statuses=["running", "queued", "blocked"], limit=100_000)
        finished = self.store.list_jobs(
            statuses=["succeeded", "failed", "cancelled"], limit=EXPORTED_FINISHED
        )
        everyone = sorted([*open_jobs, *finished], key=lambda job: job.id)
        # A dependency outside the exported jobs still shows under its seed id.
        files: dict[str, Any] = {
            "coordination/jobs.json": writer.jobs_file(everyone, seed_ids, job_attributes, now),
            "coordination/locks.json": writer.locks_file(self.store.list_locks(now=now), now),
        }
        message_records = self.store.legacy_records_of("message")
        files["coordination/messages.json"] = writer.messages_file(
            self.store.list_messages(
                recipient=None, unread_only=False, archived=False, limit=EXPORTED_MESSAGES
            ),
            {local: record.legacy_id for local, record in message_records.items()},
            {local: record.attributes for local, record in message_records.items()},
        )
        server_attributes = {
            name: record.attributes
            for name, record in self.store.legacy_records_of("server").items()
        }
        running = {job.server: job for job in open_jobs if job.status == "running" and job.server}
        fleet = self.health.fleet(by=by)
        for server in fleet.servers:
            files.update(
                writer.server_files(
                    server,
                    server_attributes.get(server.name, {}),
                    running.get(server.name),
                    seed_ids,
                )
            )
        samples = [
            sample
            for sample in self.store.list_fleet_samples("minute", now - KEEP_MINUTES_SECONDS)
            if sample.at.timestamp() % HISTORY_STEP_SECONDS == 0
        ]
        passed, failed, seconds = self.store.outcomes_between(now - 86_400.0, now + 1.0)
        files["shared/health_dashboard.json"] = writer.health_file(
            fleet,
            samples,
            server_attributes,
            (passed, failed, seconds / passed if passed else None),
        )
        return files
