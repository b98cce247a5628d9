"""Hashing files fast: MD5, SHA-256 and SHA-512 of many files, every core busy to the end.

Each file is read once. hashlib releases the GIL on large updates, so threads hash in
parallel. A small file is one task (its three digests updated per chunk). A large file is
split into three *streams*, one per digest, over chunks read once and shared; a worker always
advances the started stream with the most work left, so the last big file of a tree does not
leave a core idle while one thread grinds through its three digests alone (see
docs/benchmarks.md for the figures).

A bottom-layer module (it imports only models and errors): manifests (``manifest.py``) are
built and verified with it.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buildcoord.errors import InvalidInput
from buildcoord.models import ArtifactFile

CHUNK_BYTES = 1024 * 1024
# Files at least this big are hashed as three digest streams that two cores can share.
SPLIT_BYTES = 8 * CHUNK_BYTES
# How far (in chunks) one stream of a split file may run ahead of its slowest sibling: this
# bounds the chunks held in memory per file.
MAX_AHEAD_CHUNKS = 16
DIGESTS = ("md5", "sha256", "sha512")


@dataclass(frozen=True, slots=True)
class Progress:
    """How far hashing has got; handed to the progress callback."""

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int


ProgressCallback = Callable[[Progress], None]


def hash_files(
    files: Sequence[tuple[str, Path, int]],
    *,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> list[ArtifactFile]:
    """Hash (relative path, path, expected size) files in parallel; results in input order."""
    if workers is None:
        workers = min(8, os.cpu_count() or 1)
    scheduler = _Scheduler(files, progress)
    threads = [
        threading.Thread(target=scheduler.work, name=f"manifest-hash-{n}", daemon=True)
        for n in range(max(1, min(workers, len(files))) - 1)
    ]
    for thread in threads:
        thread.start()
    scheduler.work()  # the calling thread works too
    for thread in threads:
        thread.join()
    return scheduler.results()


@dataclass
class _Stream:
    """One digest (or, for a small file, all three) advancing over a file's chunks."""

    names: tuple[str, ...]
    weight: float  # seconds per byte, for picking the stream with the most work left
    whole: bool  # a small file: the whole file in one step, all three digests per chunk
    hashes: list[Any] = field(default_factory=list)
    next_chunk: int = 0
    busy: bool = False
    done: bool = False


@dataclass
class _File:
    index: int
    relative: str
    path: Path
    size: int
    streams: list[_Stream] = field(default_factory=list)
    handle: Any = None
    chunks: dict[int, bytes] = field(default_factory=dict)
    last_chunk: int | None = None  # index of the short (or empty) chunk that ends the file
    hashed_bytes: int = 0


class _Scheduler:
    """Hands out hashing steps to worker threads; all bookkeeping under one condition."""

    def __init__(
        self, files: Sequence[tuple[str, Path, int]], progress: ProgressCallback | None
    ) -> None:
        ordered = sorted(enumerate(files), key=lambda item: -item[1][2])
        self._unstarted = [_File(i, relative, path, size) for i, (relative, path, size) in ordered]
        self._started: list[_File] = []
        self._finished: dict[int, ArtifactFile] = {}
        self._total = len(files)
        self._bytes_total = sum(size for _, _, size in files)
        self._digest_bytes_done = 0  # bytes hashed, counted once per digest: exact integers
        self._progress = progress
        self._error: BaseException | None = None
        self._condition = threading.Condition()
        self._local = threading.local()
        split = any(f.size >= SPLIT_BYTES for f in self._unstarted)
        self._weights = _digest_weights() if split else {}

    def results(self) -> list[ArtifactFile]:
        if self._error is not None:
            raise self._error
        return [self._finished[i] for i in range(self._total)]

    def work(self) -> None:
        """Take steps until every file is hashed (or a step failed)."""
        while True:
            with self._condition:
                try:
                    step = self._next_step()
                except BaseException as exc:
                    self._fail(exc, None)
                    return
                if step is None:
                    return
            file, stream = step
            try:
                advanced = self._advance(file, stream)
            except BaseException as exc:  # any failure stops every worker and is re-raised
                with self._condition:
                    self._fail(exc, file)
                return
            with self._condition:
                self._settle(file, stream, advanced)

    def _next_step(self) -> tuple[_File, _Stream] | None:
        while self._error is None:
            best: tuple[float, _File, _Stream] | None = None
            for file in self._started:
                for stream in file.streams:
                    if self._ready(file, stream):
                        left = stream.weight * max(file.size - stream.next_chunk * CHUNK_BYTES, 0)
                        if best is None or left > best[0]:
                            best = (left, file, stream)
            if best is None and self._unstarted:
                file = self._start(self._unstarted.pop(0))
                best = (0.0, file, file.streams[0])
            if best is not None:
                best[2].busy = True
                return best[1], best[2]
            if not self._started:
                return None
            self._condition.wait()
        return None

    def _ready(self, file: _File, stream: _Stream) -> bool:
        if stream.busy or stream.done:
            return False
        slowest = min(s.next_chunk for s in file.streams if not s.done)
        return stream.next_chunk - slowest < MAX_AHEAD_CHUNKS

    def _start(self, file: _File) -> _File:
        try:
            file.handle = file.path.open("rb")
        except OSError as exc:
            raise InvalidInput(f"cannot read {file.relative}: {exc.strerror}") from exc
        if file.size >= SPLIT_BYTES:
            file.streams = [
                _Stream((name,), self._weights[name], False, [_new_hash(name)]) for name in DIGESTS
            ]
        else:
            file.streams = [_Stream(DIGESTS, 0.0, True, [_new_hash(name) for name in DIGESTS])]
        self._started.append(file)
        return file

    def _advance(self, file: _File, stream: _Stream) -> int:
        """One step outside the lock: a whole small file, or one chunk of one digest."""
        if stream.whole:
            size = 0
            buffer = self._buffer()
            view = memoryview(buffer)
            while read := file.handle.readinto(buffer):
                size += read
                for digest in stream.hashes:
                    digest.update(view[:read])
            return size
        index = stream.next_chunk
        chunk = file.chunks.get(index)
        if chunk is None:
            chunk = os.pread(file.handle.fileno(), CHUNK_BYTES, index * CHUNK_BYTES)
            with self._condition:
                chunk = file.chunks.setdefault(index, chunk)  # a racing reader's copy wins
                if len(chunk) < CHUNK_BYTES:
                    file.last_chunk = index
        stream.hashes[0].update(chunk)
        return len(chunk)

    def _buffer(self) -> bytearray:
        """This thread's read buffer: allocating (and zeroing) 1 MiB per small file would
        cost more than hashing it."""
        buffer: bytearray | None = getattr(self._local, "buffer", None)
        if buffer is None:
            buffer = self._local.buffer = bytearray(CHUNK_BYTES)
        return buffer

    def _settle(self, file: _File, stream: _Stream, advanced: int) -> None:
        stream.busy = False
        if stream.whole:
            stream.done = True
            file.hashed_bytes = advanced
            self._digest_bytes_done += advanced * len(DIGESTS)
        else:
            self._digest_bytes_done += advanced
            if stream.names[0] == DIGESTS[0]:
                file.hashed_bytes += advanced
            stream.done = file.last_chunk is not None and stream.next_chunk == file.last_chunk
            stream.next_chunk += 1
            slowest = min((s.next_chunk for s in file.streams), default=0)
            for index in [i for i in file.chunks if i < slowest]:
                del file.chunks[index]
        if all(s.done for s in file.streams):
            self._finish(file)
        if self._progress is not None:
            self._progress(
                Progress(
                    len(self._finished),
                    self._total,
                    self._digest_bytes_done // len(DIGESTS),
                    self._bytes_total,
                )
            )
        self._condition.notify_all()

    def _finish(self, file: _File) -> None:
        file.handle.close()
        self._started.remove(file)
        digests = {
            name: h.hexdigest()
            for s in file.streams
            for name, h in zip(s.names, s.hashes, strict=True)
        }
        self._finished[file.index] = ArtifactFile(
            path=file.relative,
            size=file.hashed_bytes,
            md5=digests["md5"],
            sha256=digests["sha256"],
            sha512=digests["sha512"],
        )

    def _fail(self, exc: BaseException, file: _File | None) -> None:
        if isinstance(exc, OSError) and file is not None:
            exc = InvalidInput(f"cannot read {file.relative}: {exc.strerror or exc}")
        if self._error is None:
            self._error = exc
        for started in self._started:
            if started.handle is not None:
                started.handle.close()
        self._started.clear()
        self._unstarted.clear()
        self._condition.notify_all()


def _new_hash(name: str) -> Any:
    return hashlib.new(name, usedforsecurity=False) if name == "md5" else hashlib.new(name)


_WEIGHTS: dict[str, float] = {}


def _digest_weights() -> dict[str, float]:
    """Seconds per byte of each digest on this machine (measured once per process): md5 is
    the slowest with SHA extensions, SHA-256 the slowest without."""
    if not _WEIGHTS:
        sample = bytes(CHUNK_BYTES)
        for name in DIGESTS:
            digest = _new_hash(name)
            started = time.perf_counter()
            for _ in range(4):
                digest.update(sample)
            _WEIGHTS[name] = (time.perf_counter() - started) / (4 * CHUNK_BYTES)
    return _WEIGHTS
