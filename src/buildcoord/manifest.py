"""Artifact manifests: every file under a root with its size and MD5, SHA-256 and SHA-512.

A bottom-layer module (it imports only models and errors), so that the agent, the CLI and
later the services can all use it. Each file is read once, in 1 MiB chunks that update the
three hashes together, and files are hashed on a thread pool: hashlib releases the GIL on
large updates, so threads hash in parallel. Symlinks are recorded, never followed: a link
pointing outside the root must not pull a foreign file into the manifest.
"""

from __future__ import annotations

import hashlib
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from buildcoord.errors import InvalidInput
from buildcoord.models import ArtifactFile

CHUNK_BYTES = 1024 * 1024


def build_manifest(root: Path, *, workers: int | None = None) -> list[ArtifactFile]:
    """Return the manifest of every regular file and symlink under root, sorted by path."""
    if not root.is_dir():
        what = "is not a directory" if root.exists() else "does not exist"
        raise InvalidInput(f"artifact directory {root} {what}")
    files: list[tuple[str, Path]] = []
    links: list[ArtifactFile] = []
    for relative, path, mode in _walk(root):
        if stat.S_ISLNK(mode):
            target = os.readlink(path)
            links.append(
                ArtifactFile(
                    path=relative,
                    size=len(os.fsencode(target)),
                    kind="symlink",
                    link_target=target,
                )
            )
        elif stat.S_ISREG(mode):
            files.append((relative, path))
        # Sockets, FIFOs and devices are not artifacts: reading a FIFO would block forever.
    if workers is None:
        workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        hashed = list(pool.map(lambda item: hash_file(*item), files))
    return sorted([*hashed, *links], key=lambda item: item.path)


def hash_file(relative: str, path: Path) -> ArtifactFile:
    """Hash one regular file in a single read pass."""
    md5 = hashlib.md5(usedforsecurity=False)
    sha256 = hashlib.sha256()
    sha512 = hashlib.sha512()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            size += len(chunk)
            md5.update(chunk)
            sha256.update(chunk)
            sha512.update(chunk)
    return ArtifactFile(
        path=relative,
        size=size,
        md5=md5.hexdigest(),
        sha256=sha256.hexdigest(),
        sha512=sha512.hexdigest(),
    )


def _walk(root: Path) -> list[tuple[str, Path, int]]:
    """(relative POSIX path, path, lstat mode) of every entry that is not a directory."""
    found: list[tuple[str, Path, int]] = []
    pending = [root]
    while pending:
        directory = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                path = Path(entry.path)
                mode = entry.stat(follow_symlinks=False).st_mode
                if stat.S_ISDIR(mode):
                    pending.append(path)
                else:
                    found.append((path.relative_to(root).as_posix(), path, mode))
    return found
