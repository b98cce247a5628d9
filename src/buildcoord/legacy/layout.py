"""Which files of a seed checkout are read, and collecting them from a directory."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

JOBS = "coordination/jobs.json"
LOCKS = "coordination/locks.json"
MESSAGES = "coordination/messages.json"
HEALTH = "shared/health_dashboard.json"
EXPECTED = (JOBS, LOCKS, MESSAGES, HEALTH)
"""The shared files a seed checkout has; each missing one is noted."""

SERVER_FOLDER = re.compile(r"build[A-Za-z0-9._-]{1,64}")
ARCHIVE = re.compile(r"coordination/archive/messages[_-][0-9-]{6,7}\.json")
HEARTBEAT = re.compile(rf"({SERVER_FOLDER.pattern})/heartbeat\.json")
STATUS = re.compile(rf"({SERVER_FOLDER.pattern})/status\.json")
# A file's path is its record's id (at most 255 characters): names up to 160 are read.
LOG = re.compile(rf"({SERVER_FOLDER.pattern})/logs/[^/]{{1,160}}\.json")
MANIFEST = re.compile(rf"({SERVER_FOLDER.pattern})/artifacts/[^/]{{1,160}}\.json")
READ = (ARCHIVE, HEARTBEAT, STATUS, LOG, MANIFEST)

MAX_FILES = 100_000
MAX_FILE_BYTES = 64 * 1024 * 1024


class NotASeedLayout(ValueError):
    """The directory holds none of the seed's files: nothing is imported."""


def is_read(path: str) -> bool:
    """Whether the importer reads the file at this path (relative, with / separators)."""
    return path in EXPECTED or any(pattern.fullmatch(path) for pattern in READ)


def is_seed_layout(paths: list[str]) -> bool:
    """A seed checkout has coordination/jobs.json, locks.json or messages.json, or a server
    folder with its heartbeat.json or status.json."""
    return any(
        path in (JOBS, LOCKS, MESSAGES) or HEARTBEAT.fullmatch(path) or STATUS.fullmatch(path)
        for path in paths
    )


def seed_files(root: Path) -> Iterator[tuple[str, Path]]:
    """(relative path, file) of every file under root the importer reads, in path order;
    symbolic links are not followed out of root."""
    resolved = root.resolve()
    candidates = [
        *(root / path for path in EXPECTED),
        *sorted((root / "coordination" / "archive").glob("*.json")),
        *sorted(root.glob("build*/*.json")),
        *sorted(root.glob("build*/logs/*.json")),
        *sorted(root.glob("build*/artifacts/*.json")),
    ]
    for candidate in candidates:
        relative = candidate.relative_to(root).as_posix()
        if not is_read(relative) or not candidate.is_file():
            continue
        if not candidate.resolve().is_relative_to(resolved):
            continue
        yield relative, candidate


def collect(root: Path) -> dict[str, str]:
    """The text of every file under root the importer reads (NotASeedLayout when none of the
    seed's own files is there; ValueError past the bounds)."""
    if not root.is_dir():
        raise NotASeedLayout(f"{root} is not a directory")
    found: dict[str, str] = {}
    for relative, path in seed_files(root):
        if len(found) >= MAX_FILES:
            raise ValueError(f"{root} has more than {MAX_FILES:,} seed files to read")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ValueError(
                f"{relative} is {size:,} bytes; one file of an import may have at most "
                f"{MAX_FILE_BYTES:,}"
            )
        found[relative] = path.read_bytes().decode("utf-8", errors="replace")
    if not is_seed_layout(list(found)):
        raise NotASeedLayout(
            f"{root} is not a seed checkout: it has none of {JOBS}, {LOCKS}, {MESSAGES} or a "
            "buildN/heartbeat.json or buildN/status.json"
        )
    return found
