"""legacy import and export over the real store (SQLite and PostgreSQL), on the seed's real,
sanitised state (../shared/seed/legacy-state) and on copies of it made worse."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from buildcoord.cli.legacy import write_documents
from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.errors import Forbidden, InvalidInput
from buildcoord.legacy.layout import collect
from buildcoord.models import LegacyImport, Principal
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "legacy-state"
"""A copy of ../shared/seed/legacy-state: a real, sanitised seed installation's state."""
SECONDS_FORM = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?Z")


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _import(coordinator: Coordinator, root: Path, operator: Principal) -> LegacyImport:
    return coordinator.legacy.import_files(collect(root), dry_run=False, by=operator)


@pytest.fixture
def seed(tmp_path: Path) -> Path:
    """A copy of the sample checkout the test may change."""
    return Path(shutil.copytree(SAMPLE, tmp_path / "seed"))


def _state(coordinator: Coordinator, operator: Principal) -> dict[str, Any]:
    """What an operator sees, in terms that do not depend on local ids."""
    legacy = coordinator.legacy
    jobs = coordinator.queue.list_jobs(status="all", limit=10_000, by=operator)
    messages = coordinator.messages.list_messages(archived=None, limit=10_000, by=operator)
    return {
        "servers": sorted(
            (server.name, server.labels, server.last_heartbeat_at)
            for server in coordinator.servers.list_servers(by=operator)
        ),
        "jobs": sorted(
            (
                legacy.record("job", str(job.id), by=operator).legacy_id,
                job.branch,
                job.commit,
                job.status,
                job.priority,
                job.server,
                job.created_at,
                job.started_at,
                job.finished_at,
                job.duration,
            )
            for job in jobs
        ),
        "locks": sorted(
            (lock.name, tuple(holder.holder for holder in lock.holders))
            for lock in coordinator.locks.list_locks(by=operator)
        ),
        "messages": sorted(
            (
                legacy.record("message", str(message.id), by=operator).legacy_id,
                message.sender,
                message.recipient,
                message.type,
                message.subject,
                message.body,
                message.created_at,
                message.read,
                message.ack_required,
                message.acknowledged_by,
                message.archived_at is not None,
            )
            for message in messages
        ),
    }


def test_importing_the_sample_brings_in_what_its_files_hold(
    coordinator: Coordinator, operator: Principal
) -> None:
    jobs = _load(SAMPLE / "coordination" / "jobs.json")["jobs"]
    messages = _load(SAMPLE / "coordination" / "messages.json")["messages"]
    archived = [
        message
        for path in sorted((SAMPLE / "coordination" / "archive").glob("*.json"))
        for message in _load(path)
    ]
    locks = _load(SAMPLE / "coordination" / "locks.json")["locks"]
    folders = sorted(
        path.name
        for path in SAMPLE.glob("build*")
        if (path / "heartbeat.json").is_file() or (path / "status.json").is_file()
    )
    buildable = [job for job in jobs if job.get("branch") and job.get("commit")]

    outcome = _import(coordinator, SAMPLE, operator)

    assert outcome.added["server"] == len(folders)
    assert sorted(server.name for server in coordinator.servers.list_servers(by=operator)) == (
        folders
    )
    assert sorted(outcome.tokens) == folders
    found = coordinator.queue.list_jobs(status="all", limit=1000, by=operator)
    assert len(found) == outcome.added["job"] == len(buildable)
    assert [lock.name for lock in coordinator.locks.list_locks(by=operator)] == sorted(locks)
    stats = coordinator.messages.stats(by=operator)
    assert stats.total + stats.archived == len(messages) + len(archived)
    assert stats.archived == len(archived)
    assert stats.unread == sum(1 for message in messages if message.get("read") is not True)
    skipped = {note.entry for note in outcome.notes if note.skipped}
    assert {job["id"] for job in jobs} - {job["id"] for job in buildable} <= skipped


def test_an_imported_job_keeps_its_seed_id_times_server_and_unmodelled_fields(
    coordinator: Coordinator, operator: Principal
) -> None:
    _import(coordinator, SAMPLE, operator)
    record = coordinator.legacy.record("job", "job_1761781030", by=operator)
    job = coordinator.queue.get(int(record.local_id), by=operator)
    assert (job.status, job.server, job.priority) == ("succeeded", "build1", 1)
    assert job.started_at is not None
    assert job.started_at.isoformat() == "2025-10-29T23:37:18+00:00"
    assert job.duration == 7100
    assert record.attributes["type"] == "package"
    assert record.attributes["description"].startswith("CloudStack 4.21")
    # The same record, asked by the id the job has here.
    assert coordinator.legacy.record("job", str(job.id), by=operator).legacy_id == record.legacy_id


def test_importing_twice_changes_nothing_and_a_dry_run_stores_nothing(
    coordinator: Coordinator, operator: Principal
) -> None:
    dry = coordinator.legacy.import_files(collect(SAMPLE), dry_run=True, by=operator)
    assert dry.dry_run
    assert dry.tokens == {}
    assert coordinator.servers.list_servers(by=operator) == []
    assert coordinator.messages.stats(by=operator).total == 0

    first = _import(coordinator, SAMPLE, operator)
    assert first.added == dry.added
    before = _state(coordinator, operator)
    second = _import(coordinator, SAMPLE, operator)
    assert sum(second.added.values()) == 0
    assert sum(second.updated.values()) == 0
    assert second.unchanged == first.added
    assert second.tokens == {}
    assert _state(coordinator, operator) == before


def test_a_second_import_picks_up_what_the_seed_did_since(
    coordinator: Coordinator, operator: Principal, seed: Path
) -> None:
    _import(coordinator, seed, operator)
    path = seed / "coordination" / "messages.json"
    document = _load(path)
    unread = next(m for m in document["messages"] if m.get("read") is False)
    unread["read"] = True
    document["messages"].append(
        {
            "id": "msg_1763700000_4242",
            "from": "build1",
            "to": "all",
            "type": "warning",
            "subject": "disk low",
            "body": "build1 has 2 GB left",
            "timestamp": "2025-11-21 08:15",
            "read": False,
        }
    )
    path.write_text(json.dumps(document), encoding="utf-8")

    again = _import(coordinator, seed, operator)

    assert again.added["message"] == 1
    assert again.updated["message"] == 1
    new = coordinator.legacy.record("message", "msg_1763700000_4242", by=operator)
    message = coordinator.messages.get(int(new.local_id), by=operator)
    assert message.created_at.isoformat() == "2025-11-21T08:15:00+00:00"
    read = coordinator.legacy.record("message", unread["id"], by=operator)
    assert coordinator.messages.get(int(read.local_id), by=operator).read


def test_import_then_export_then_import_into_an_empty_coordinator_gives_the_same_state(
    coordinator: Coordinator, operator: Principal, tmp_path: Path, clock: FakeClock
) -> None:
    _import(coordinator, SAMPLE, operator)
    exported = tmp_path / "exported"
    write_documents(exported, coordinator.legacy.export(by=operator))
    other = Store.open(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        second = Coordinator(other, Settings(), clock)
        _import(second, exported, operator)
        assert _state(second, operator) == _state(coordinator, operator)
    finally:
        other.close()


def test_exported_files_have_the_seed_readers_field_names_timestamps_and_status_words(
    coordinator: Coordinator, operator: Principal
) -> None:
    _import(coordinator, SAMPLE, operator)
    files = coordinator.legacy.export(by=operator)
    jobs = files["coordination/jobs.json"]
    assert set(jobs) == {"jobs", "metadata"}
    for job in jobs["jobs"]:
        assert {"id", "priority", "branch", "commit", "status", "assigned_to"} <= set(job)
        assert job["status"] in ("queued", "running", "completed", "failed", "cancelled")
        for key in ("created_at", "started_at", "completed_at"):
            assert job[key] is None or SECONDS_FORM.fullmatch(job[key])
    for message in files["coordination/messages.json"]["messages"]:
        assert {"id", "from", "to", "type", "subject", "body", "timestamp", "read"} <= set(message)
        assert SECONDS_FORM.fullmatch(message["timestamp"])
        assert isinstance(message["read"], bool)
    for name, lock in files["coordination/locks.json"]["locks"].items():
        assert set(lock) == {"locked_by", "locked_at", "expires_at"}, name
    status = files["build1/status.json"]
    # What the seed's page reads of a server (docs/index.html).
    assert status["status"] in ("idle", "building", "offline")
    assert SECONDS_FORM.fullmatch(status["timestamp"])
    assert isinstance(status["system"]["cpu_usage"], float)
    assert status["capabilities"]["cores"] == 32
    assert (status["ip"], status["manager"]) == ("192.0.2.10", "Codex")
    heartbeat = files["build1/heartbeat.json"]
    assert set(heartbeat) >= {"server", "timestamp", "uptime_seconds", "healthy"}
    health = files["shared/health_dashboard.json"]
    assert set(health["aggregate"]) >= {"servers_online", "servers_total", "queued_jobs"}
    assert {server["server"] for server in health["servers"]} == {
        "build1",
        "build2",
        "build3",
        "build4",
    }


def test_a_bad_file_and_bad_entries_among_good_ones_are_noted_and_the_rest_imports(
    coordinator: Coordinator, operator: Principal, seed: Path
) -> None:
    (seed / "coordination" / "messages.json").write_text("{not json", encoding="utf-8")
    status = _load(seed / "build1" / "status.json")
    status["system"]["cpu_usage"] = "45%"
    (seed / "build1" / "status.json").write_text(json.dumps(status), encoding="utf-8")
    jobs = _load(seed / "coordination" / "jobs.json")
    jobs["jobs"][0]["priority"] = "high"
    jobs["jobs"].append({"branch": "main", "commit": "abcdef1", "status": "queued"})
    (seed / "coordination" / "jobs.json").write_text(json.dumps(jobs), encoding="utf-8")
    (seed / "coordination" / "locks.json").unlink()

    outcome = _import(coordinator, seed, operator)

    notes = {(note.path, note.entry): note.reason for note in outcome.notes}
    assert "not JSON" in notes[("coordination/messages.json", None)]
    assert "45%" in notes[("build1/status.json", "build1")]
    assert "priority" in notes[("coordination/jobs.json", "job_1761781030")]
    assert "no id" in notes[("coordination/jobs.json", "#4")]
    assert "not there" in notes[("coordination/locks.json", None)]
    # The rest is in: every server (build1 from its heartbeat), the good job, no messages.
    assert len(coordinator.servers.list_servers(by=operator)) == 4
    assert [job.commit for job in coordinator.queue.list_jobs(status="all", by=operator)] == [
        "d8e22ab0af7881b17ddd086bcae2a42a74bfc661"
    ]
    assert outcome.added["message"] == 0


def test_a_directory_that_is_not_a_seed_checkout_is_refused_and_nothing_is_imported(
    coordinator: Coordinator, operator: Principal
) -> None:
    with pytest.raises(InvalidInput, match="not a seed checkout"):
        coordinator.legacy.import_files({"README.md": "# hello"}, dry_run=False, by=operator)
    assert coordinator.servers.list_servers(by=operator) == []


def test_seed_jobs_in_every_status_and_with_dependencies_are_mapped(
    coordinator: Coordinator, operator: Principal
) -> None:
    def job(seed_id: str, status: str, **more: Any) -> dict[str, Any]:
        return {
            "id": seed_id,
            "branch": "main",
            "commit": "abcdef1",
            "status": status,
            "priority": 5,
            "assigned_to": "build1",
            "created_at": "2025-11-01T10:00:00Z",
            "started_at": "2025-11-01T10:01:00Z",
            "completed_at": "2025-11-01T10:05:00Z",
            **more,
        }

    document = {
        "jobs": [
            job("job_5", "queued", dependencies=["job_1"]),
            job("job_1", "completed"),
            job("job_2", "failed"),
            job("job_3", "running"),
            job("job_4", "half-done"),
            job("job_6", "queued", dependencies=["job_2"]),
            job("job_7", "queued", dependencies=["job_404"]),
            job("job_8", "queued", dependencies=["job_9"]),
            job("job_9", "queued", dependencies=["job_8"]),
        ]
    }
    outcome = coordinator.legacy.import_files(
        {"coordination/jobs.json": json.dumps(document)}, dry_run=False, by=operator
    )

    def status(seed_id: str) -> tuple[str, str | None]:
        local = int(coordinator.legacy.record("job", seed_id, by=operator).local_id)
        found = coordinator.queue.get(local, by=operator)
        return found.status, found.reason or found.blocked_reason

    assert status("job_1") == ("succeeded", None)
    assert status("job_2") == ("failed", None)
    assert status("job_3")[0] == "cancelled"
    assert "running under the seed" in str(status("job_3")[1])
    assert status("job_4")[0] == "cancelled"
    assert "half-done" in str(status("job_4")[1])
    assert status("job_5") == ("queued", None)
    assert status("job_6")[0] == "blocked"
    notes = {note.entry: note.reason for note in outcome.notes}
    assert "job_404" in notes["job_7"]
    assert "cycle" in notes["job_8"]
    assert "cycle" in notes["job_9"]


@pytest.mark.parametrize(
    ("stamp", "iso"),
    [
        ("2025-11-20T18:27:35Z", "2025-11-20T18:27:35+00:00"),
        ("2025-11-20T18:27:35.123456Z", "2025-11-20T18:27:35.123456+00:00"),
        ("2025-11-20 18:27", "2025-11-20T18:27:00+00:00"),
    ],
)
def test_all_three_seed_timestamp_forms_are_read_as_utc(
    coordinator: Coordinator, operator: Principal, stamp: str, iso: str
) -> None:
    message = {
        "id": "m1",
        "from": "build1",
        "to": "build2",
        "type": "info",
        "subject": "s",
        "body": "b",
        "timestamp": stamp,
        "read": False,
    }
    coordinator.legacy.import_files(
        {"coordination/messages.json": json.dumps({"messages": [message]})},
        dry_run=False,
        by=operator,
    )
    local = int(coordinator.legacy.record("message", "m1", by=operator).local_id)
    assert coordinator.messages.get(local, by=operator).created_at.isoformat() == iso


def test_text_no_database_can_store_is_refused_with_its_file(
    coordinator: Coordinator, operator: Principal
) -> None:
    hostile = (
        '{"messages": [{"id": "m\\u0000", "from": "build1", "to": "all", "type": "info",'
        ' "subject": "s", "body": "b", "timestamp": "2025-11-20 18:27"}]}'
    )
    outcome = coordinator.legacy.import_files(
        {"coordination/messages.json": hostile}, dry_run=False, by=operator
    )
    assert outcome.added["message"] == 0
    assert any(
        note.path == "coordination/messages.json" and "NUL" in note.reason for note in outcome.notes
    )


def test_a_read_only_token_may_export_but_not_import(
    coordinator: Coordinator, reader: Principal
) -> None:
    with pytest.raises(Forbidden):
        coordinator.legacy.import_files(collect(SAMPLE), dry_run=False, by=reader)
    assert "coordination/jobs.json" in coordinator.legacy.export(by=reader)


def test_importing_a_checkout_our_export_wrote_brings_nothing_of_ours_in_twice(
    coordinator: Coordinator, operator: Principal, tmp_path: Path
) -> None:
    _import(coordinator, SAMPLE, operator)
    coordinator.queue.submit("main", "abcdef1", by=operator)
    coordinator.messages.send(
        sender="build1", recipient="all", type="info", subject="native", body="here", by=operator
    )
    exported = tmp_path / "exported"
    write_documents(exported, coordinator.legacy.export(by=operator))

    again = _import(coordinator, exported, operator)

    assert again.added["job"] == again.added["message"] == 0
    assert len(coordinator.queue.list_jobs(status="all", by=operator)) == 3


def test_structured_logs_manifests_and_the_health_history_come_in_with_their_jobs(
    coordinator: Coordinator, operator: Principal, clock: FakeClock
) -> None:
    jobs = {
        "jobs": [
            {
                "id": "job_1",
                "branch": "main",
                "commit": "abcdef1",
                "status": "completed",
                "assigned_to": "build1",
                "created_at": "2025-12-31T10:00:00Z",
                "started_at": "2025-12-31T10:00:00Z",
                "completed_at": "2025-12-31T10:07:00Z",
            }
        ]
    }
    log = {
        "log_id": "job_1_20251231T100000Z",
        "job_id": "job_1",
        "server": "build1",
        "events": [
            {"timestamp": "2025-12-31T10:00:01Z", "level": "info", "message": "Executing: mvn"},
            {"timestamp": "2025-12-31T10:06:59Z", "level": "success", "message": "done"},
        ],
        "status": "success",
    }
    digest = "a" * 64
    manifest = {
        "job_id": "job_1",
        "server": "build1",
        "build_dir": "/root/artifacts/host/debs/20251231T100700Z",
        "artifacts": [
            {
                "name": "a.deb",
                "path": "/root/artifacts/host/debs/20251231T100700Z/pool/a.deb",
                "size_bytes": 6,
                "checksums": {"md5": "b" * 32, "sha256": digest, "sha512": "c" * 128},
            }
        ],
    }
    now = clock.now().timestamp()  # 2026-01-01T00:00:00Z
    history = [
        {"timestamp": stamp, "servers_online": online, "queued_jobs": 3}
        for stamp, online in (
            ("2025-12-31T23:40:00Z", 1),
            ("2025-12-31T23:50:00Z", 3),
            ("2025-12-15T08:00:00Z", 2),
            ("2025-10-01T08:00:00Z", 2),  # beyond the 30 days trends keep
        )
    ]
    files = {
        "coordination/jobs.json": json.dumps(jobs),
        "build1/logs/job_1_20251231T100000Z.json": json.dumps(log),
        "build1/artifacts/job_1_manifest.json": json.dumps(manifest),
        "shared/health_dashboard.json": json.dumps({"servers": [{}] * 4, "history": history}),
    }

    outcome = coordinator.legacy.import_files(files, dry_run=False, by=operator)

    assert (outcome.added["log"], outcome.added["manifest"]) == (1, 1)
    local = int(coordinator.legacy.record("job", "job_1", by=operator).local_id)
    entries = coordinator.logs.entries(local, by=operator)
    assert [(entry.level, entry.message) for entry in entries] == [
        ("info", "Executing: mvn"),
        ("success", "done"),
    ]
    [artifact] = coordinator.artifacts.manifest(local, by=operator)
    assert (artifact.path, artifact.size, artifact.sha256) == ("pool/a.deb", 6, digest)
    minutes = coordinator.trends.samples("24h", by=operator)
    assert [(sample.servers_online, sample.servers_total) for sample in minutes] == [
        (1, 4),
        (3, 4),
    ]
    hours = coordinator.trends.samples("30d", by=operator)
    assert [sample.servers_online for sample in hours] == [2, 2]  # Dec 15th; 23:00's mean
    assert any("older than the 30 days" in note.reason for note in outcome.notes)
    assert now - minutes[0].at.timestamp() == 20 * 60


@pytest.mark.parametrize(
    "stamp", ["2025-13-45T10:00:00Z", "2025-02-30 10:00", "2025-11-20T25:00:00Z", 7, None]
)
def test_a_timestamp_of_no_date_there_is_skips_its_entry_with_a_note(
    coordinator: Coordinator, operator: Principal, stamp: object
) -> None:
    message = {"id": "m1", "from": "build1", "to": "all", "type": "info", "subject": "s",
               "body": "b", "timestamp": stamp, "read": False}  # fmt: skip
    outcome = coordinator.legacy.import_files(
        {"coordination/messages.json": json.dumps({"messages": [message]})},
        dry_run=False,
        by=operator,
    )
    assert outcome.added["message"] == 0
    [note] = [note for note in outcome.notes if note.entry == "m1"]
    assert "timestamp" in note.reason
