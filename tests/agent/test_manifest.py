"""build_manifest: sizes and three digests of every file, symlinks recorded, not followed."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from buildcoord.artifacts.hashing import CHUNK_BYTES
from buildcoord.artifacts.manifest import build_manifest
from buildcoord.errors import InvalidInput


def test_each_file_has_its_size_md5_sha256_and_sha512(tmp_path: Path) -> None:
    # Larger than one read chunk, so the chunked hashing is what is checked.
    data = os.urandom(2 * CHUNK_BYTES + 123)
    (tmp_path / "big.bin").write_bytes(data)

    [item] = build_manifest(tmp_path)

    assert item.path == "big.bin"
    assert item.size == len(data)
    assert item.md5 == hashlib.md5(data).hexdigest()
    assert item.sha256 == hashlib.sha256(data).hexdigest()
    assert item.sha512 == hashlib.sha512(data).hexdigest()
    assert item.kind == "file"


def test_paths_are_relative_posix_paths_in_sorted_order(tmp_path: Path) -> None:
    for name in ("b.txt", "a/z.txt", "a/b/c.txt", "A.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)

    paths = [item.path for item in build_manifest(tmp_path, workers=3)]

    assert paths == ["A.txt", "a/b/c.txt", "a/z.txt", "b.txt"]


def test_a_symlink_is_recorded_with_its_target_and_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("not an artifact")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside / "secret")
    (root / "dirlink").symlink_to(outside)

    found = {item.path: item for item in build_manifest(root)}

    assert set(found) == {"dirlink", "link"}
    link = found["link"]
    assert (link.kind, link.link_target) == ("symlink", str(outside / "secret"))
    assert link.size == len(str(outside / "secret"))
    assert link.sha256 is None


def test_an_empty_directory_has_an_empty_manifest(tmp_path: Path) -> None:
    assert build_manifest(tmp_path) == []


def test_a_missing_root_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        build_manifest(tmp_path / "nope")
