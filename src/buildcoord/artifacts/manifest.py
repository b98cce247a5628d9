"""Artifact manifests: every file under a root with its size and MD5, SHA-256 and SHA-512.

A bottom-layer module (it imports only models, errors and hashing), so that the agent, the
CLI and the services can all use it.

Hashing (each file read once, every core busy to the end) is ``hashing.py``.

Symlinks are recorded, never followed: a link pointing outside the root must not pull a
foreign file into the manifest.
"""

from __future__ import annotations

import fnmatch
import json
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from buildcoord.artifacts.hashing import DIGESTS, ProgressCallback, hash_files
from buildcoord.errors import InvalidInput
from buildcoord.models import ArtifactFile

MANIFEST_FORMAT = "buildcoord-manifest"
MANIFEST_VERSION = 1
# Named selections of package files, matched on file names at any depth.
PRESETS: dict[str, tuple[str, ...]] = {"packages": ("*.deb", "*.rpm", "*.tar.gz", "*.war")}


@dataclass(frozen=True)
class Manifest:
    """A manifest document: the files of one build and where they came from."""

    files: list[ArtifactFile]
    created_at: datetime
    job: int | None = None
    server: str | None = None
    branch: str | None = None
    commit: str | None = None
    # The globs the files were selected with (empty: every file), so that verify knows
    # which files on disk count as EXTRA.
    patterns: tuple[str, ...] = ()

    @property
    def artifact_count(self) -> int:
        """Number of entries (files and symlinks)."""
        return len(self.files)

    @property
    def total_size(self) -> int:
        """Bytes of the regular files (a symlink counts for nothing)."""
        return sum(item.size for item in self.files if item.kind == "file")

    def to_dict(self) -> dict[str, Any]:
        """The JSON document, files sorted by path."""
        return {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "job": self.job,
            "server": self.server,
            "branch": self.branch,
            "commit": self.commit,
            "created_at": self.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "patterns": list(self.patterns),
            "artifact_count": self.artifact_count,
            "total_size": self.total_size,
            "files": [_entry(item) for item in sorted(self.files, key=lambda f: f.path)],
        }

    def to_json(self) -> str:
        """Deterministic JSON: sorted keys, sorted files, two-space indent, final newline."""
        # ensure_ascii: a file name that is not UTF-8 (a surrogate escape) still round-trips.
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=True) + "\n"


def _entry(item: ArtifactFile) -> dict[str, Any]:
    if item.kind == "symlink":
        return {"path": item.path, "kind": "symlink", "size": item.size, "target": item.link_target}
    return {
        "path": item.path,
        "kind": "file",
        "size": item.size,
        "md5": item.md5,
        "sha256": item.sha256,
        "sha512": item.sha512,
    }


# --- creating -----------------------------------------------------------------------------------


def create_manifest(
    root: Path,
    *,
    job: int | None = None,
    server: str | None = None,
    branch: str | None = None,
    commit: str | None = None,
    patterns: Sequence[str] = (),
    created_at: datetime | None = None,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
    exclude: Sequence[Path] = (),
) -> Manifest:
    """Hash the files under root (those matching patterns, if any, less the exclude paths)
    into a Manifest."""
    files = build_manifest(
        root, patterns=patterns, progress=progress, workers=workers, exclude=exclude
    )
    return Manifest(
        files=files,
        created_at=created_at or datetime.now(UTC),
        job=job,
        server=server,
        branch=branch,
        commit=commit,
        patterns=tuple(patterns),
    )


def build_manifest(
    root: Path,
    *,
    workers: int | None = None,
    patterns: Sequence[str] = (),
    progress: ProgressCallback | None = None,
    exclude: Sequence[Path] = (),
) -> list[ArtifactFile]:
    """Return the manifest of every regular file and symlink under root, sorted by path."""
    excluded = {path.absolute() for path in exclude}
    entries = [entry for entry in scan(root, patterns) if entry[1].absolute() not in excluded]
    links = [_link_entry(relative, path) for relative, path, mode, _ in entries if _is_link(mode)]
    regular = [(relative, path, size) for relative, path, mode, size in entries if _is_file(mode)]
    hashed = hash_files(regular, workers=workers, progress=progress)
    return sorted([*hashed, *links], key=lambda item: item.path)


def select_patterns(patterns: Iterable[str], preset: str | None) -> tuple[str, ...]:
    """The globs given plus a preset's (``packages``), deduplicated in order."""
    chosen = list(patterns)
    if preset is not None:
        if preset not in PRESETS:
            raise InvalidInput(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
        chosen += PRESETS[preset]
    return tuple(dict.fromkeys(chosen))


def matches(relative: str, patterns: Sequence[str]) -> bool:
    """Whether a relative path is selected: a glob without '/' matches the file name at any
    depth, one with '/' the whole relative path; no patterns select everything."""
    if not patterns:
        return True
    name = relative.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(relative if "/" in glob else name, glob) for glob in patterns)


def scan(root: Path, patterns: Sequence[str] = ()) -> list[tuple[str, Path, int, int]]:
    """(relative POSIX path, path, lstat mode, size) of every selected entry that is not a
    directory; directories are never entered through a symlink."""
    if not root.is_dir():
        what = "is not a directory" if root.exists() else "does not exist"
        raise InvalidInput(f"artifact directory {root} {what}")
    found: list[tuple[str, Path, int, int]] = []
    pending = [root]
    while pending:
        directory = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                path = Path(entry.path)
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    pending.append(path)
                    continue
                relative = path.relative_to(root).as_posix()
                if matches(relative, patterns):
                    found.append((relative, path, info.st_mode, info.st_size))
    return found


def _is_link(mode: int) -> bool:
    return stat.S_ISLNK(mode)


def _is_file(mode: int) -> bool:
    # Sockets, FIFOs and devices are not artifacts: reading a FIFO would block forever.
    return stat.S_ISREG(mode)


def _link_entry(relative: str, path: Path) -> ArtifactFile:
    target = os.readlink(path)
    return ArtifactFile(
        path=relative, size=len(os.fsencode(target)), kind="symlink", link_target=target
    )


# --- loading -----------------------------------------------------------------------------------

_HEX_LENGTHS = {"md5": 32, "sha256": 64, "sha512": 128}
_TOP_KEYS = {
    "format",
    "version",
    "job",
    "server",
    "branch",
    "commit",
    "created_at",
    "patterns",
    "artifact_count",
    "total_size",
    "files",
}
_FILE_KEYS = {"path", "kind", "size", "md5", "sha256", "sha512"}
_LINK_KEYS = {"path", "kind", "size", "target"}


def load_manifest(path: Path) -> Manifest:
    """Read and strictly validate a manifest file; InvalidInput naming the file otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InvalidInput(f"manifest {path} does not exist") from exc
    except IsADirectoryError as exc:
        raise InvalidInput(f"manifest {path} is a directory, not a file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read manifest {path}: {exc}") from exc
    return parse_manifest(text, str(path))


def parse_manifest(text: str, source: str = "manifest") -> Manifest:
    """Parse a manifest document; every problem is an InvalidInput naming source and entry."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{source} is not JSON: {exc.msg} at line {exc.lineno}") from exc
    if not isinstance(data, dict):
        raise InvalidInput(f"{source} is not a buildcoord manifest (not a JSON object)")
    if data.get("format") != MANIFEST_FORMAT:
        raise InvalidInput(
            f"{source} is not a buildcoord manifest (format is not {MANIFEST_FORMAT!r})"
        )
    if data.get("version") != MANIFEST_VERSION:
        raise InvalidInput(
            f"{source}: unsupported manifest version {data.get('version')!r} "
            f"(this buildcoord reads version {MANIFEST_VERSION})"
        )
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise InvalidInput(f"{source}: unknown field(s) {', '.join(unknown)}")
    raw_files = data.get("files")
    if not isinstance(raw_files, list):
        raise InvalidInput(f"{source}: 'files' must be a list")
    files: list[ArtifactFile] = []
    seen: set[str] = set()
    for number, raw in enumerate(raw_files, start=1):
        item = _parse_entry(raw, f"{source}: entry {number}")
        if item.path in seen:
            raise InvalidInput(f"{source}: entry {number}: duplicate path {item.path!r}")
        seen.add(item.path)
        files.append(item)
    patterns = data.get("patterns", [])
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise InvalidInput(f"{source}: 'patterns' must be a list of strings")
    manifest = Manifest(
        files=sorted(files, key=lambda f: f.path),
        created_at=_parse_time(data.get("created_at"), source),
        job=_optional(data, "job", int, source),
        server=_optional(data, "server", str, source),
        branch=_optional(data, "branch", str, source),
        commit=_optional(data, "commit", str, source),
        patterns=tuple(patterns),
    )
    for key, derived in (
        ("artifact_count", manifest.artifact_count),
        ("total_size", manifest.total_size),
    ):
        if key in data and data[key] != derived:
            raise InvalidInput(f"{source}: {key} says {data[key]!r} but the files give {derived}")
    return manifest


def _optional(data: dict[str, Any], key: str, kind: type, source: str) -> Any:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InvalidInput(f"{source}: {key!r} must be {kind.__name__} or null, not {value!r}")
    return value


def _parse_time(value: object, source: str) -> datetime:
    if not isinstance(value, str):
        raise InvalidInput(f"{source}: 'created_at' must be an ISO 8601 time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"{source}: 'created_at' {value!r} is not an ISO 8601 time") from exc
    if moment.tzinfo is None:
        raise InvalidInput(f"{source}: 'created_at' {value!r} has no time zone")
    return moment


def check_relative_path(path: object, where: str) -> str:
    """A manifest path: relative, POSIX, no '..', '.' or empty parts; InvalidInput otherwise."""
    if not isinstance(path, str) or not path:
        raise InvalidInput(f"{where}: 'path' must be a non-empty string")
    if path.startswith("/"):
        raise InvalidInput(f"{where}: path {path!r} is absolute")
    if "\0" in path:
        raise InvalidInput(f"{where}: path {path!r} contains a NUL byte")
    parts = path.split("/")
    if ".." in parts:
        raise InvalidInput(f"{where}: path {path!r} contains '..'")
    if "" in parts or "." in parts:
        raise InvalidInput(f"{where}: path {path!r} is not normalised (empty or '.' part)")
    return str(PurePosixPath(path))


def _parse_entry(raw: object, where: str) -> ArtifactFile:
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where}: not a JSON object")
    path = check_relative_path(raw.get("path"), where)
    where = f"{where} ({path})"
    kind = raw.get("kind")
    if kind not in ("file", "symlink"):
        raise InvalidInput(f"{where}: 'kind' must be 'file' or 'symlink'")
    expected = _FILE_KEYS if kind == "file" else _LINK_KEYS
    if set(raw) != expected:
        wrong = sorted(set(raw) ^ expected)
        raise InvalidInput(f"{where}: missing or unknown field(s) {', '.join(wrong)}")
    size = raw["size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidInput(f"{where}: 'size' must be a non-negative integer")
    if kind == "symlink":
        target = raw["target"]
        if not isinstance(target, str) or not target:
            raise InvalidInput(f"{where}: 'target' must be a non-empty string")
        return ArtifactFile(path=path, size=size, kind="symlink", link_target=target)
    digests: dict[str, str] = {}
    for name, length in _HEX_LENGTHS.items():
        value = raw[name]
        if not isinstance(value, str) or len(value) != length or value.strip("0123456789abcdef"):
            raise InvalidInput(f"{where}: {name!r} must be {length} lowercase hex digits")
        digests[name] = value
    return ArtifactFile(
        path=path, size=size, md5=digests["md5"], sha256=digests["sha256"], sha512=digests["sha512"]
    )


# --- verifying ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    """The verdict on one path: OK, MISSING, MISMATCH (with what differs) or EXTRA."""

    path: str
    status: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        """Whether this path passed."""
        return self.status == "OK"


def verify_manifest(
    manifest: Manifest,
    root: Path,
    *,
    ignore: Sequence[Path] = (),
    workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> list[Check]:
    """Check every entry against the files under root, and report files it does not list
    (those matching its patterns) as EXTRA; ``ignore`` names files that are never EXTRA
    (the manifest itself, when it lives in the root)."""
    on_disk = {
        relative: (path, mode, size) for relative, path, mode, size in scan(root, manifest.patterns)
    }
    ignored = {p.resolve() for p in ignore}
    checks: dict[str, Check] = {}
    to_hash: list[tuple[str, Path, int]] = []
    expected = {item.path: item for item in manifest.files}
    for item in manifest.files:
        found = on_disk.get(item.path)
        if found is None:
            checks[item.path] = Check(item.path, "MISSING")
            continue
        path, mode, size = found
        if item.kind == "symlink":
            if not _is_link(mode):
                checks[item.path] = Check(item.path, "MISMATCH", "expected a symlink")
            elif (target := os.readlink(path)) != item.link_target:
                checks[item.path] = Check(
                    item.path, "MISMATCH", f"link target {target!r}, expected {item.link_target!r}"
                )
            else:
                checks[item.path] = Check(item.path, "OK")
        elif not _is_file(mode):
            checks[item.path] = Check(item.path, "MISMATCH", "expected a regular file")
        else:
            to_hash.append((item.path, path, size))
    for actual in hash_files(to_hash, workers=workers, progress=progress):
        item = expected[actual.path]
        differ = [name for name in DIGESTS if getattr(actual, name) != getattr(item, name)]
        if actual.size != item.size:
            differ.insert(0, f"size ({actual.size} bytes, expected {item.size})")
        checks[actual.path] = (
            Check(actual.path, "MISMATCH", ", ".join(differ) + " differ")
            if differ
            else Check(actual.path, "OK")
        )
    for relative, (path, mode, _) in on_disk.items():
        if relative in expected:
            continue
        if _is_link(mode) or (_is_file(mode) and path.resolve() not in ignored):
            checks[relative] = Check(relative, "EXTRA", "not in the manifest")
    return [checks[key] for key in sorted(checks)]
